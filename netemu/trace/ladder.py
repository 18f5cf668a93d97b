"""The ladder diagram: Wireshark's flow graph, the picture every TCP tutorial draws.

One section per TCP conversation. Two lifelines, the emulator (or a capture's
client) on the left and the peer on the right, labelled by IP:port; one arrow
per segment with its flags, sequence and acknowledgment numbers relative to
each side's ISN (Wireshark's numbers), payload length and window. Each side's
state changes are written on its own side at the moment they happen; dropped
segments end in a cross (✗), injected ones are drawn with a double line and
tagged [inject]; scenario steps and notes are separator lines. Our congestion
control's phase changes are written on our side too, in lower case (TCP states
are upper case), with cwnd, ssthresh and the cause in the lane beside them
(``ladder_congestion`` says which of the recorded events are drawn).

Three renderings of one row model: plain text (``ladder.txt``), a rich
renderable with colour for the terminal, and self-contained HTML with inline
SVG (``ladder.html``: no scripts, no external fetches).
"""

from __future__ import annotations

import html
import os
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from ..wire import FIN, RST, SYN
from .atomic import atomic_write_text
from .conv import Conversation, SegmentView, conversations, ep_str, normalize_state
from .record import (
    CongestionRecord,
    NoteRecord,
    PeerCongestionRecord,
    PeerEventRecord,
    PeerStateRecord,
    StateRecord,
    Trace,
)

if TYPE_CHECKING:
    from rich.console import Console, RenderableType

DEFAULT_ROLES = ("netemu", "peer")


# --- the row model -------------------------------------------------------------------


@dataclass(slots=True)
class Row:
    t: float  # seconds since the trace started
    # "seg", "state", "note", "init", "cc" (a congestion phase change), "pcc" (the peer
    # kernel's congestion state or ssthresh changed), "pev" (the peer kernel retransmitted
    # or sent/received a reset: its own tracepoints)
    kind: str
    seg: SegmentView | None = None
    side: str = ""  # "left" / "right", for state rows
    state: str = ""  # the state, or the congestion phase for cc rows
    detail: str = ""  # cause or sock_diag info, for tooltips; cwnd, ssthresh, cause for cc
    note: NoteRecord | None = None
    init: tuple[str, str] = ("", "")  # initial states (left, right)


@dataclass
class Section:
    conv: Conversation
    title: str
    left_label: str
    right_label: str
    left_role: str
    right_role: str
    rows: list[Row] = field(default_factory=list)


@dataclass
class Ladder:
    sections: list[Section]
    other_frames: int  # frames that are not TCP segments (ARP, ICMP, malformed)
    title: str | None = None


# How a peer state's source shows beside it: the kernel's own tracepoints need no mark.
SOURCE_MARK = {"kernel": "", "poll": " (polled)", "inferred": " (inferred)"}


def peer_state_label(rec: PeerStateRecord, listener: bool = False) -> str:
    """A peer state as the ladder writes it: "LAST-ACK", "LAST-ACK (polled)",
    "listener :8080 LISTEN"."""
    state = normalize_state(rec.state) + SOURCE_MARK.get(rec.source, f" ({rec.source})")
    return f"listener :{rec.local[1]} {state}" if listener else state


def _state_rows(recs: Iterable[StateRecord | PeerStateRecord], side: str,
                t0: float, listener: bool = False) -> Iterable[tuple[tuple, Row]]:
    last = None
    for n, rec in enumerate(recs):
        if isinstance(rec, StateRecord):
            state = normalize_state(rec.new)
            detail = rec.cause
            r = 3 if rec.cause.startswith("recv") else 1
        else:
            state = peer_state_label(rec, listener)
            how = {"kernel": "kernel tracepoint", "poll": "sock_diag poll"}.get(
                rec.source, rec.source)
            extra = rec.info.get("kernel") or rec.info.get("cause") or ""
            detail = how + (f": {extra}" if extra else "")
            # The kernel's tracepoint times a change when it happened, before the segment
            # it sends leaves: placed by time alone. A poll or inference saw it later.
            r = 1 if rec.source == "kernel" else 3
        if state == last:  # a poller may report a state again
            continue
        last = state
        yield (rec.t, r, n), Row(rec.t - t0, "state", side=side, state=state, detail=detail)


def _peer_cc_rows(recs: Iterable[PeerCongestionRecord],
                  t0: float) -> Iterable[tuple[tuple, Row]]:
    """The peer kernel's congestion state changes (and ssthresh changes): cwnd moves on
    every ACK and stays in report.json."""
    ca, ssthresh = "open", None
    for n, rec in enumerate(recs):
        if rec.ca_state == ca and rec.ssthresh == ssthresh:
            continue
        first = ssthresh is None
        ca, ssthresh = rec.ca_state, rec.ssthresh
        if first and rec.ca_state == "open":
            continue  # the socket's opening figures: nothing happened yet
        # The kernel counts cwnd and ssthresh in segments (netemu's own are bytes).
        text = (f"{rec.ca_state}: cwnd {rec.cwnd} seg, ssthresh {ssthresh_str(rec.ssthresh)}"
                f" seg, srtt {rec.srtt_us / 1000:g} ms")
        yield (rec.t, 3, n), Row(rec.t - t0, "pcc", side="right", state=text,
                                 detail=f"kernel tracepoint: {rec.cause}")


_PEER_EVENT_TEXT = {"retransmit": "kernel retransmits", "send_reset": "kernel sends RST",
                    "receive_reset": "kernel takes RST"}


def _peer_event_rows(recs: Iterable[PeerEventRecord],
                     t0: float) -> Iterable[tuple[tuple, Row]]:
    for n, rec in enumerate(recs):
        text = _PEER_EVENT_TEXT.get(rec.kind, rec.kind)
        if rec.detail and rec.detail != "NOT_SPECIFIED":
            text += f" ({rec.detail})"
        yield (rec.t, 1, n), Row(rec.t - t0, "pev", side="right", state=text,
                                 detail=f"kernel tracepoint tcp_{rec.kind}")


# netemu.tcp.cc.INFINITE_SSTHRESH: ssthresh before the first congestion event
# ("arbitrarily high", RFC 5681 §3.1); not imported, to keep netemu.tcp out of a
# ladder's imports.
INFINITE_SSTHRESH = 0x7FFFFFFF


def ssthresh_str(ssthresh: int) -> str:
    return "∞" if ssthresh >= INFINITE_SSTHRESH else str(ssthresh)


def congestion_text(rec: CongestionRecord) -> str:
    """What the ladder writes beside a phase: "cwnd 14480 ssthresh 8688 (3 duplicate ACKs)"."""
    cause = f" ({rec.cause})" if rec.cause else ""
    return f"cwnd {rec.cwnd} ssthresh {ssthresh_str(rec.ssthresh)}{cause}"


def ladder_congestion(recs: Iterable[CongestionRecord]) -> list[CongestionRecord]:
    """The congestion records of one connection (in time order) that the ladder draws:
    those that change the phase or ssthresh. A connection starts in slow-start with
    an infinite ssthresh, so a restart after idle before any loss (cwnd only) is not
    drawn, nor is anything that only moves cwnd; every phase change is (slow-start →
    congestion-avoidance → fast-recovery → loss …), and so is a congestion event that
    lowers ssthresh again without changing the phase (a second timeout, a loss probe
    that repaired a tail loss). The trace and report.json keep every record."""
    out = []
    phase, ssthresh = "slow-start", INFINITE_SSTHRESH
    for rec in recs:
        if rec.phase != phase or rec.ssthresh != ssthresh:
            out.append(rec)
        phase, ssthresh = rec.phase, rec.ssthresh
    return out


def _cc_rows(recs: Iterable[CongestionRecord], t0: float) -> Iterable[tuple[tuple, Row]]:
    for n, rec in enumerate(ladder_congestion(recs)):
        # At one instant: a timer's (timeout, restart after idle) before the segments
        # it sends, like a state change not caused by a segment; any other is an ACK's
        # doing and comes after the segments that arrived with it.
        r = 1 if rec.cause.startswith(("timeout", "idle")) else 3
        yield (rec.t, r, n), Row(rec.t - t0, "cc", side="left", state=rec.phase,
                                 detail=congestion_text(rec))


def _initial(recs: list[StateRecord | PeerStateRecord]) -> str:
    if recs and isinstance(recs[0], StateRecord) and recs[0].old:
        return normalize_state(recs[0].old)
    return ""


def build_ladder(trace: Trace, *, roles: tuple[str, str] = DEFAULT_ROLES,
                 title: str | None = None,
                 extra_states: Iterable[StateRecord] = ()) -> Ladder:
    """The row model of the ladder: one section per conversation, rows in time order.
    At one instant: notes, then our state changes not caused by a received segment
    (connect() → SYN-SENT comes before the SYN), then segments, then changes caused
    by segments and the peer's observed states. Congestion phase changes
    (``ladder_congestion``) are placed the same way."""
    convs, other = conversations(trace, extra_states)
    t0 = trace.start
    sections = []
    for conv in convs:
        keyed: list[tuple[tuple, Row]] = []
        for n, note in enumerate(conv.notes):
            keyed.append(((note.t, 0, n), Row(note.t - t0, "note", note=note)))
        keyed.extend(_state_rows(conv.states, "left", t0))
        keyed.extend(_state_rows(conv.peer_states, "right", t0))
        keyed.extend(_state_rows(conv.listener_states, "right", t0, listener=True))
        keyed.extend(_peer_cc_rows(conv.peer_congestion, t0))
        keyed.extend(_peer_event_rows(conv.peer_events, t0))
        keyed.extend(_cc_rows(conv.congestion, t0))
        for v in conv.segments:
            keyed.append(((v.t, 2, v.index), Row(v.t - t0, "seg", seg=v)))
        keyed.sort(key=lambda kr: kr[0])
        rows = [r for _, r in keyed]
        init = (_initial(conv.states), _initial(conv.peer_states))
        if any(init):
            rows.insert(0, Row(rows[0].t if rows else 0.0, "init", init=init))
        sections.append(Section(conv, conv.title(), ep_str(conv.left), ep_str(conv.right),
                                roles[0], roles[1], rows))
    return Ladder(sections, other, title)


def _annotations(v: SegmentView) -> list[tuple[str, str]]:
    """(text, style) after the arrow: marks and the frame's note."""
    out = []
    mark = v.mark
    if mark == "dropped":
        out.append(("✗ dropped", "drop"))
    elif v.injected:
        out.append(("[inject]", "inject"))
    elif mark:
        out.append((f"[{mark}]", "mark"))
    if v.frame.note:
        out.append((v.frame.note, "fnote"))
    return out


def _seg_class(v: SegmentView) -> str:
    fl = v.tcp.flags
    if v.dropped:
        return "drop"
    if v.injected:
        return "inject"
    if fl & RST:
        return "rst"
    if fl & SYN:
        return "syn"
    if fl & FIN:
        return "fin"
    if v.length:
        return "data"
    return "ack"


# --- text ------------------------------------------------------------------------------

_TEXT_STYLES = {
    "time": "dim", "num": "dim", "left": "bold cyan", "right": "bold magenta",
    "syn": "green", "fin": "yellow", "rst": "bold red", "data": "bright_blue", "ack": "white",
    "drop": "red", "inject": "bold dark_orange", "mark": "yellow", "fnote": "italic",
    "step": "bold", "pass": "bold green", "fail": "bold red", "note": "dim italic",
    "title": "bold", "label": "bold", "role": "dim", "life": "dim", "init": "cyan",
    "cc": "dark_orange", "ccd": "dark_orange italic",
}

Line = list[tuple[str, str]]  # (text, style key)


def _note_text(note: NoteRecord) -> str:
    prefix = {"step": "▸ ", "pass": "✓ ", "fail": "✗ FAIL: "}.get(note.kind, "")
    return prefix + note.text


def ladder_width() -> int:
    """How wide the text ladder may be: ``COLUMNS``, else the terminal's width, else 100
    (output that is no terminal); never below 80."""
    import shutil

    return max(80, shutil.get_terminal_size((100, 24)).columns)


def _fit(line: Line, width: int) -> Line:
    """``line`` cut to ``width`` characters, its end "…" where it was cut."""
    if sum(len(t) for t, _ in line) <= width:
        return line
    out: Line = []
    room = width
    for text, style in line:
        if len(text) >= room:
            out.append((_cut(text, room), style))
            break
        out.append((text, style))
        room -= len(text)
    return out


def _cut(text: str, width: int) -> str:
    """``text`` in at most ``width`` characters: cut after a whole word if one ends
    near enough, and "…" where it was cut."""
    if len(text) <= width:
        return text
    head = text[:max(0, width - 1)]
    space = head.rfind(" ")
    if space > 0 and len(head) - space <= 8:
        head = head[:space + 1]
    return head + "…"


def _text_lines(ladder: Ladder, width: int | None = None) -> list[Line]:
    """The text ladder's lines, each at most ``width`` characters (``ladder_width()``)."""
    width = ladder_width() if width is None else max(80, width)
    return [_fit(line, width) for line in _text_lines_in(ladder, width)]


def _text_lines_in(ladder: Ladder, width: int) -> list[Line]:
    lines: list[Line] = []
    if ladder.title:
        lines.append([(ladder.title, "title")])
        lines.append([])
    if not ladder.sections:
        lines.append([("(no TCP segments)", "note")])
    max_index = max((v.index for s in ladder.sections for v in s.conv.segments), default=0)
    wn = len(f"#{max_index + 1}")
    for si, sec in enumerate(ladder.sections):
        if si:
            lines.append([])
        lines.extend(_section_lines(sec, wn, width))
    if ladder.other_frames:
        lines.append([])
        lines.append([(f"({ladder.other_frames} frame(s) that are not TCP segments "
                       "are in the pcap but not drawn)", "note")])
    return lines


def _section_lines(sec: Section, wn: int, width: int = 100) -> list[Line]:
    """One section's lines within ``width``: the lane between the lifelines is as wide
    as its labels want; where a line would not fit, it narrows to what the labels need,
    then further (labels cut with "…") down to leaving 14 columns right of the right
    lifeline for the peer's state (" ESTABLISHED …"); what still does not fit, ``_fit``
    cuts."""
    rows = sec.rows
    labels = [r.seg.label() for r in rows if r.seg is not None]
    cc_texts = [r.detail for r in rows if r.kind == "cc"]
    lw = max([40, *(len(s) + 8 for s in labels), *(len(s) + 3 for s in cc_texts)])
    snug = max([24, *(len(r.seg.label()) + (7 if r.seg.dropped else 5) for r in rows
                      if r.seg is not None)])
    left_states = [r.state for r in rows if r.kind in ("state", "cc") and r.side == "left"]
    left_states += [r.init[0] for r in rows if r.kind == "init"]
    head_l = f"{sec.left_label} ({sec.left_role})"
    wl = max([12, *(len(s) for s in left_states), len(head_l) // 2 + 1])
    prefix_w = 8 + 1 + wn + 1
    right = 14  # " ESTABLISHED …"
    wl = min(wl, max(12, width - prefix_w - 2 - 24 - right))  # a long left state gives way
    floor = max(24, width - (prefix_w + wl + 1) - 1 - right)
    lines = _section_drawn(sec, wn, width, wl, lw)
    for narrowest in (snug, floor):  # labels whole; then only to leave the 14 columns
        over = max((sum(len(t) for t, _ in line) for line in lines[1:]), default=0) - width
        if over <= 0 or lw <= narrowest:
            continue
        lw = max(narrowest, lw - over)
        lines = _section_drawn(sec, wn, width, wl, lw)
    return lines


def _section_drawn(sec: Section, wn: int, width: int, wl: int, lw: int) -> list[Line]:
    """One section's lines with the left column ``wl`` wide and the lane ``lw``."""
    rows = sec.rows
    head_l = f"{sec.left_label} ({sec.left_role})"
    head_r = f"{sec.right_label} ({sec.right_role})"
    prefix_w = 8 + 1 + wn + 1
    pad = " " * prefix_w
    lcol = prefix_w + wl + 1  # column of the left lifeline
    rcol = lcol + 1 + lw  # column of the right lifeline

    out: list[Line] = [[(f"── {sec.title} ", "title"),
                        ("─" * max(4, min(rcol + 12, width) - len(sec.title) - 4), "life")]]
    # header: each endpoint centred over its lifeline
    hl = [(" time(s)".ljust(prefix_w), "time")]
    s1, t1 = max(0, lcol - len(head_l) // 2), head_l
    s2, t2 = max(0, rcol - len(head_r) // 2), head_r
    cur = prefix_w
    hl.append((" " * max(0, s1 - cur), ""))
    hl.append((t1, "label"))
    cur = max(cur, s1) + len(t1)
    hl.append((" " * max(1, s2 - cur), ""))
    hl.append((t2, "label"))
    out.append(hl)
    life = [(pad + " " * wl + " ", ""), ("│", "life"), (" " * lw, ""), ("│", "life")]
    out.append(life)
    blank = (" " * (wn + 1), "")
    for r in rows:
        time = (f"{r.t:8.3f} ", "time")
        if r.kind == "init":
            out.append([time, blank, (r.init[0].rjust(wl) + " ", "init"), ("│", "life"),
                        (" " * lw, ""), ("│", "life"),
                        (" " + r.init[1] if r.init[1] else "", "init")])
        elif r.kind == "state" and r.side == "left":
            out.append([time, blank, (_cut(r.state, wl).rjust(wl) + " ", "left"), ("│", "life"),
                        (" " * lw, ""), ("│", "life")])
        elif r.kind == "cc":
            # cwnd, ssthresh and the cause whole: when the lane is narrower, over the
            # right lifeline (nothing is on its right in this row)
            detail = " " + r.detail
            out.append([time, blank, (_cut(r.state, wl).rjust(wl) + " ", "cc"), ("│", "life"),
                        *([(detail.ljust(lw), "ccd"), ("│", "life")] if len(detail) <= lw
                          else [(detail, "ccd")])])
        elif r.kind in ("state", "pcc", "pev"):
            style = {"state": "right", "pcc": "cc", "pev": "rst"}[r.kind]
            out.append([time, blank, (" " * wl + " ", ""), ("│", "life"), (" " * lw, ""),
                        ("│", "life"), (" " + r.state, style)])
        elif r.kind == "note":
            assert r.note is not None
            style = r.note.kind if r.note.kind in _TEXT_STYLES else "note"
            # A note too long for the width goes on over the next lines (its words
            # whole): cut, a failure's message would lose what it says.
            room = width - prefix_w - 3 - 2 - 3
            first, *more = _wrap(_note_text(r.note), room)
            text = f" {first} "
            fill = max(3, min(rcol - prefix_w - len(text) - 3, width - prefix_w - 3 - len(text)))
            out.append([time, blank, ("┄┄┄" + text + "┄" * fill, style)])
            out.extend([(" " * prefix_w, ""), ("    " + part, style)] for part in more)
        else:
            v = r.seg
            assert v is not None
            num = f"#{v.index + 1}".rjust(wn)
            line: Line = [time, (num + " ", "num"), (" " * wl + " ", ""), ("│", "life"),
                          (_arrow(v, lw), _seg_class(v)), ("│", "life")]
            for text, style in _annotations(v):
                line.append(("  " if style == "fnote" else " ", ""))
                line.append((text, style))
            out.append(line)
    out.append(life)
    return out


def _wrap(text: str, width: int) -> list[str]:
    import textwrap

    return textwrap.wrap(text, width, break_on_hyphens=False) or [""]


def _arrow(v: SegmentView, lw: int) -> str:
    body_char = "═" if v.injected else "─"
    body_w = lw - 1 - (2 if v.dropped else 0)
    label = f" {_cut(v.label(), body_w - 4)} "  # a body character each side, at least
    a = max(1, (body_w - len(label)) // 2)
    b = max(1, body_w - len(label) - a)
    body = body_char * a + label + body_char * b
    if v.left_to_right:
        return body + ("✗  " if v.dropped else ">")
    return ("  ✗" if v.dropped else "<") + body


def render_ladder_text(trace: Trace, *, roles: tuple[str, str] = DEFAULT_ROLES,
                       title: str | None = None,
                       extra_states: Iterable[StateRecord] = (),
                       width: int | None = None) -> str:
    """The ladder as plain text (what ladder.txt holds), at most ``width`` columns
    (default ``ladder_width()``: COLUMNS, the terminal's, or 100; at least 80)."""
    ladder = build_ladder(trace, roles=roles, title=title, extra_states=extra_states)
    return "\n".join("".join(t for t, _ in line).rstrip()
                     for line in _text_lines(ladder, width)) + "\n"


# ladder.txt is read later, in an editor or a browser, not in the terminal of the run:
# it keeps every label whole (the lanes are as wide as their labels need).
FILE_WIDTH = 100_000


def render_ladder_texts(trace: Trace, **kw: Any) -> tuple[str, str]:
    """(the ladder for ladder.txt, whole; the ladder for this terminal, ``ladder_width()``
    wide): one text when the whole one fits."""
    whole = render_ladder_text(trace, width=FILE_WIDTH, **kw)
    if max(map(len, whole.splitlines()), default=0) <= ladder_width():
        return whole, whole
    return whole, render_ladder_text(trace, **kw)


def write_ladder_text(trace: Trace, path: str | os.PathLike[str], **kw: Any) -> str:
    """Write ladder.txt atomically (every label whole: ``FILE_WIDTH``); returns the text."""
    kw.setdefault("width", FILE_WIDTH)
    text = render_ladder_text(trace, **kw)
    atomic_write_text(path, text)
    return text


def ladder_renderable(trace: Trace, *, roles: tuple[str, str] = DEFAULT_ROLES,
                      title: str | None = None,
                      extra_states: Iterable[StateRecord] = (),
                      width: int | None = None) -> RenderableType:
    """The ladder as a rich Text with colour, for ``Console.print``."""
    from rich.text import Text

    ladder = build_ladder(trace, roles=roles, title=title, extra_states=extra_states)
    out = Text(no_wrap=True, overflow="ignore")
    for line in _text_lines(ladder, width):
        for text, style in line:
            out.append(text, style=_TEXT_STYLES.get(style, ""))
        out.append("\n")
    return out


def print_ladder(trace: Trace, console: Console | None = None, **kw: Any) -> None:
    """Print the coloured ladder to the terminal (plain when it is not a terminal)."""
    from rich.console import Console

    (console or Console(soft_wrap=True)).print(ladder_renderable(trace, **kw))


# --- HTML + SVG ----------------------------------------------------------------------------

CHAR_W = 7.8  # px per character of the 13px monospace font
ROW_H = 24
HEAD_H = 64

_COLOURS = {
    "syn": "#2e7d32", "fin": "#a15c00", "rst": "#c62828", "data": "#1565c0",
    "ack": "#455a64", "inject": "#e65100", "drop": "#c62828",
}

_CSS = """
body { font-family: system-ui, -apple-system, "Segoe UI", Roboto, "DejaVu Sans", sans-serif;
       margin: 24px; color: #1a1a1a; background: #fff; }
h1 { font-size: 18px; } h2 { font-size: 15px; margin: 28px 0 6px; font-family: monospace; }
svg { display: block; }
svg text { font-family: ui-monospace, SFMono-Regular, Menlo, Consolas, "DejaVu Sans Mono",
           "Liberation Mono", monospace; font-size: 13px; }
.lbl { paint-order: stroke; stroke: #fff; stroke-width: 4px; stroke-linejoin: round; }
.time, .num { fill: #666; } .host { font-weight: bold; } .role { fill: #666; }
.life { stroke: #9e9e9e; stroke-width: 1.5; }
.st rect { stroke-width: 1; rx: 4; } .st text { font-weight: bold; }
.st.left rect { fill: #e0f2f1; stroke: #00796b; } .st.left text { fill: #004d40; }
.st.right rect { fill: #f3e5f5; stroke: #7b1fa2; } .st.right text { fill: #4a148c; }
.st.init rect { fill: #fafafa; stroke: #9e9e9e; } .st.init text { fill: #424242; }
.st.cc rect { fill: #fff3e0; stroke: #e65100; stroke-dasharray: 3 2; }
.st.cc text { fill: #bf360c; font-weight: normal; font-style: italic; }
.st.kev rect { fill: #ffebee; stroke: #c62828; } .st.kev text { fill: #b71c1c; }
.ccd { fill: #bf360c; font-style: italic; }
.note line { stroke: #9e9e9e; stroke-dasharray: 4 3; }
.note text { fill: #424242; font-style: italic; }
.note.step text { font-style: normal; font-weight: bold; fill: #1a1a1a; }
.note.fail text { fill: #c62828; font-weight: bold; font-style: normal; }
.note.pass text { fill: #2e7d32; font-style: normal; }
.ann { fill: #424242; } .ann.drop { fill: #c62828; font-weight: bold; }
.ann.inject { fill: #e65100; font-weight: bold; }
.legend span { display: inline-block; margin-right: 14px; font-size: 13px; }
.legend b { display: inline-block; width: 22px; height: 3px; vertical-align: middle;
            margin-right: 5px; }
details { margin-top: 28px; } pre { font-size: 12px; }
"""


def _e(s: object) -> str:
    return html.escape(str(s), quote=True)


def _svg_section(sec: Section, n: int) -> str:
    rows = sec.rows
    labels = [r.seg.label() for r in rows if r.seg is not None]
    cc_texts = [r.detail for r in rows if r.kind == "cc"]
    left_states = [r.state for r in rows if r.kind in ("state", "cc") and r.side == "left"]
    left_states += [r.init[0] for r in rows if r.kind == "init"]
    right_texts = [r.state for r in rows if r.kind in ("state", "pcc", "pev")
                   and r.side == "right"]
    right_texts += [r.init[1] for r in rows if r.kind == "init"]
    for r in rows:
        if r.seg is not None:
            right_texts.append("  ".join(t for t, _ in _annotations(r.seg)))
    head_l = max(len(sec.left_label), len(sec.left_role))
    head_r = max(len(sec.right_label), len(sec.right_role))
    wl = max(120.0, max((len(s) for s in left_states), default=0) * CHAR_W + 28,
             head_l * CHAR_W / 2 + 20)
    lx = 120 + wl
    lw = max(380.0, max((len(s) for s in labels), default=0) * CHAR_W + 70,
             max((len(s) for s in cc_texts), default=0) * CHAR_W + 30)
    rx = lx + lw
    wr = max(140.0, max((len(s) for s in right_texts), default=0) * CHAR_W + 30,
             head_r * CHAR_W / 2 + 20)
    notes = [_note_text(r.note) for r in rows if r.note is not None]
    width = int(max(rx + wr, max((len(s) for s in notes), default=0) * CHAR_W + lx + 24))
    height = HEAD_H + ROW_H * (len(rows) + 1)
    p: list[str] = []
    p.append(f'<svg width="{width}" height="{height}" viewBox="0 0 {width} {height}" '
             f'role="img" aria-label="{_e(sec.title)}">')
    p.append("<defs>")
    for cls, colour in _COLOURS.items():
        p.append(f'<marker id="ah{n}-{cls}" viewBox="0 0 10 10" refX="10" refY="5" '
                 f'markerWidth="9" markerHeight="9" orient="auto-start-reverse">'
                 f'<path d="M0,0 L10,5 L0,10 z" fill="{colour}"/></marker>')
    p.append("</defs>")
    # header boxes and lifelines
    for x, label, role in ((lx, sec.left_label, sec.left_role),
                           (rx, sec.right_label, sec.right_role)):
        w = max(len(label), len(role)) * CHAR_W + 20
        p.append(f'<rect x="{x - w / 2:.1f}" y="6" width="{w:.1f}" height="42" rx="5" '
                 'fill="#f5f5f5" stroke="#9e9e9e"/>')
        p.append(f'<text class="host" x="{x:.1f}" y="24" text-anchor="middle">{_e(label)}</text>')
        p.append(f'<text class="role" x="{x:.1f}" y="41" text-anchor="middle">{_e(role)}</text>')
        p.append(f'<line class="life" x1="{x:.1f}" y1="48" x2="{x:.1f}" y2="{height - 6}"/>')
    p.append(f'<text class="time" x="10" y="{HEAD_H - 6}">time (s)</text>')
    for i, r in enumerate(rows):
        y = HEAD_H + ROW_H * i + ROW_H * 0.5  # row middle
        p.append(f'<text class="time" x="10" y="{y + 4:.1f}">{r.t:.3f}</text>')
        if r.kind == "init":
            for side, state in (("left", r.init[0]), ("right", r.init[1])):
                if state:
                    p.append(_state_box(state, side, lx, rx, y, "init", "initial state"))
        elif r.kind == "state":
            p.append(_state_box(r.state, r.side, lx, rx, y, r.side, r.detail))
        elif r.kind in ("pcc", "pev"):
            p.append(_state_box(r.state, "right", lx, rx, y,
                                "cc" if r.kind == "pcc" else "kev", r.detail))
        elif r.kind == "cc":
            p.append(f'<g class="cc"><title>{_e(r.state + ": " + r.detail)}</title>'
                     f'{_state_box(r.state, "left", lx, rx, y, "cc", "")}'
                     f'<text class="ccd" x="{lx + 10:.1f}" y="{y + 4.5:.1f}">{_e(r.detail)}'
                     "</text></g>")
        elif r.kind == "note":
            assert r.note is not None
            kind = r.note.kind if r.note.kind in ("step", "pass", "fail") else "note"
            text = _note_text(r.note)
            tw = len(text) * CHAR_W + 12
            p.append(f'<g class="note {kind}"><line x1="70" y1="{y:.1f}" x2="{width - 6}" '
                     f'y2="{y:.1f}"/><rect x="{lx + 4:.1f}" y="{y - 9:.1f}" width="{tw:.1f}" '
                     f'height="18" fill="#fff"/><text x="{lx + 10:.1f}" y="{y + 4:.1f}">'
                     f"{_e(text)}</text></g>")
        else:
            assert r.seg is not None
            p.append(_svg_arrow(r.seg, n, lx, rx, y))
    p.append("</svg>")
    return "\n".join(p)


def _state_box(state: str, side: str, lx: float, rx: float, y: float, cls: str,
               detail: str) -> str:
    w = len(state) * CHAR_W + 14
    x = lx - 8 - w if side == "left" else rx + 8
    tip = f"<title>{_e(detail)}</title>" if detail else ""
    return (f'<g class="st {cls}">{tip}<rect x="{x:.1f}" y="{y - 10:.1f}" width="{w:.1f}" '
            f'height="20"/><text x="{x + 7:.1f}" y="{y + 4.5:.1f}">{_e(state)}</text></g>')


def _svg_arrow(v: SegmentView, n: int, lx: float, rx: float, y: float) -> str:
    cls = _seg_class(v)
    colour = _COLOURS[cls]
    ly = y + 6  # the line sits under its label
    x1, x2 = (lx, rx) if v.left_to_right else (rx, lx)
    if v.dropped:
        x2 = x1 + (x2 - x1) * 0.82
    dash = ' stroke-dasharray="7 3"' if v.injected else ""
    tip = [f"frame #{v.index + 1}  {ep_str(v.src)} → {ep_str(v.dst)}",
           f"{v.flags}  seq={v.tcp.seq} ack={v.tcp.ack} (raw)",
           f"win={v.window} (field {v.tcp.window}) len={v.length}"]
    if v.options_str():
        tip.append(v.options_str())
    for text, _ in _annotations(v):
        tip.append(text)
    p = [f'<g class="seg {cls}"><title>{_e(chr(10).join(tip))}</title>']
    p.append(f'<text class="num" x="72" y="{y + 4:.1f}">#{v.index + 1}</text>')
    if v.dropped:
        p.append(f'<line x1="{x1:.1f}" y1="{ly:.1f}" x2="{x2:.1f}" y2="{ly:.1f}" '
                 f'stroke="{colour}" stroke-width="1.8"{dash}/>')
        for dx, dy in ((-4.5, -4.5), (-4.5, 4.5)):
            p.append(f'<line x1="{x2 + dx:.1f}" y1="{ly + dy:.1f}" x2="{x2 - dx:.1f}" '
                     f'y2="{ly - dy:.1f}" stroke="{colour}" stroke-width="2.4"/>')
    else:
        p.append(f'<line x1="{x1:.1f}" y1="{ly:.1f}" x2="{x2:.1f}" y2="{ly:.1f}" '
                 f'stroke="{colour}" stroke-width="1.8"{dash} marker-end="url(#ah{n}-{cls})"/>')
    p.append(f'<text class="lbl" x="{(x1 + x2) / 2:.1f}" y="{ly - 7:.1f}" text-anchor="middle" '
             f'fill="{colour}">{_e(v.label())}</text>')
    ann = _annotations(v)
    if ann:
        x = rx + 10
        for text, style in ann:
            p.append(f'<text class="ann {style}" x="{x:.1f}" y="{y + 4:.1f}">{_e(text)}</text>')
            x += (len(text) + 2) * CHAR_W
    p.append("</g>")
    return "".join(p)


def render_ladder_html(trace: Trace, *, roles: tuple[str, str] = DEFAULT_ROLES,
                       title: str | None = None,
                       extra_states: Iterable[StateRecord] = ()) -> str:
    """A self-contained HTML page: one inline SVG ladder per conversation, hover
    tooltips with raw numbers and options, and the text ladder at the bottom."""
    ladder = build_ladder(trace, roles=roles, title=title, extra_states=extra_states)
    text = "\n".join("".join(t for t, _ in line).rstrip() for line in _text_lines(ladder))
    page_title = title or "netemu ladder"
    p = ["<!DOCTYPE html>", '<html lang="en"><head><meta charset="utf-8">',
         f"<title>{_e(page_title)}</title>", f"<style>{_CSS}</style></head><body>",
         f"<h1>{_e(page_title)}</h1>", '<div class="legend">']
    for cls, name in (("syn", "SYN"), ("data", "data"), ("ack", "ACK"), ("fin", "FIN"),
                      ("rst", "RST"), ("inject", "injected (dashed)"),
                      ("drop", "dropped (✗)")):
        p.append(f'<span><b style="background:{_COLOURS[cls]}"></b>{_e(name)}</span>')
    p.append("</div>")
    p.append("<p>Sequence and acknowledgment numbers are relative to each side's ISN, as in "
             "Wireshark. Hover an arrow for raw numbers and options, a state for its cause. "
             "Congestion phases (lower case, dashed) are our side's slow-start, "
             "congestion-avoidance, fast-recovery and loss, with cwnd and ssthresh in bytes."
             "</p>")
    if not ladder.sections:
        p.append("<p>No TCP segments.</p>")
    for n, sec in enumerate(ladder.sections):
        p.append(f"<h2>{_e(sec.title)}</h2>")
        p.append(_svg_section(sec, n))
    if ladder.other_frames:
        p.append(f"<p>{ladder.other_frames} frame(s) that are not TCP segments are in the pcap "
                 "but not drawn.</p>")
    p.append(f"<details><summary>Text ladder</summary><pre>{_e(text)}</pre></details>")
    p.append("</body></html>")
    return "\n".join(p) + "\n"


def write_ladder_html(trace: Trace, path: str | os.PathLike[str], **kw: Any) -> None:
    """Write ladder.html atomically."""
    atomic_write_text(path, render_ladder_html(trace, **kw))
