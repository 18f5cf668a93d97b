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

A large trace is drawn within ``LadderLimits`` (docs/trace.md, "Large traces"): a
conversation of more than ``max_rows`` rows is summarised (its first and last rows,
every event with a little context, one line for each stretch left out), and the
conversations beyond ``max_conversations`` or ``max_total_rows`` are listed in a
table instead of drawn. The pcap and report.json are never cut. Segments are read
from the trace one conversation at a time and only those drawn are kept, so the
memory a ladder takes is bounded by the limits, not by the trace.
"""

from __future__ import annotations

import html
import os
import sys
from array import array
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from ..wire import FIN, RST, SYN
from .atomic import atomic_open, atomic_write_text
from .conv import (
    Conversation,
    NotePlacement,
    SegmentView,
    conversations,
    ep_str,
    normalize_state,
)
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


# --- the size policy -------------------------------------------------------------------


@dataclass(frozen=True)
class LadderLimits:
    """How large a ladder may grow (docs/trace.md, "Large traces"). A row is one line
    of the ladder: a segment, a state, a congestion change, a note. The pcap and
    report.json are never cut."""

    # A conversation of more rows than this is summarised: its first and last ``keep``
    # rows are drawn, and between them every event (a state or congestion change of
    # either side, a peer kernel's event, a note, and every SYN, FIN, RST, dropped,
    # injected or otherwise marked segment, retransmission and segment with a note)
    # with ``context`` rows either side; each stretch left out is one line that counts it.
    max_rows: int = 2_000
    keep: int = 250
    context: int = 2
    # The first conversations are drawn until either limit is reached (the first one
    # always is); the others are listed in a table, one line each, up to ``max_listed``
    # lines, then counted.
    max_conversations: int = 200
    max_total_rows: int = 10_000
    max_listed: int = 10_000

    def __post_init__(self) -> None:
        for name in ("max_rows", "keep", "max_conversations", "max_total_rows"):
            if getattr(self, name) < 1:
                raise ValueError(f"LadderLimits.{name} must be at least 1")
        if self.context < 0 or self.max_listed < 0:
            raise ValueError("LadderLimits.context and max_listed cannot be negative")


DEFAULT_LIMITS = LadderLimits()
# Every segment of every conversation drawn, as before there were limits.
UNLIMITED = LadderLimits(max_rows=sys.maxsize, max_conversations=sys.maxsize,
                         max_total_rows=sys.maxsize, max_listed=sys.maxsize)

# A stretch of fewer rows than this is drawn rather than summarised in one line.
_MIN_GAP = 3
# Lines a section takes besides its rows (title, header, lifelines, the blank line
# before it), counted against ``max_total_rows``.
_SECTION_LINES = 5


# --- the row model -------------------------------------------------------------------


@dataclass(slots=True)
class Gap:
    """A stretch of a summarised conversation's segments that is not drawn."""

    t_first: float  # trace times
    t_last: float
    segments: int = 0
    data_lr: int = 0  # data segments left → right (netemu → peer), their bytes, ACKs
    bytes_lr: int = 0
    acks_lr: int = 0
    data_rl: int = 0
    bytes_rl: int = 0
    acks_rl: int = 0

    def add(self, t: float, left_to_right: bool, length: int) -> None:
        self.t_last = t
        self.segments += 1
        if left_to_right:
            if length:
                self.data_lr += 1
                self.bytes_lr += length
            else:
                self.acks_lr += 1
        elif length:
            self.data_rl += 1
            self.bytes_rl += length
        else:
            self.acks_rl += 1

    def text(self) -> str:
        """"… 1,234 segments left out, 0.412 s: → 612 data (886,176 bytes), 3 ACKs;
        ← 619 ACKs"."""
        parts = []
        for arrow, data, nbytes, acks in (("→", self.data_lr, self.bytes_lr, self.acks_lr),
                                          ("←", self.data_rl, self.bytes_rl, self.acks_rl)):
            bits = []
            if data:
                bits.append(f"{data:,} data ({nbytes:,} bytes)")
            if acks:
                bits.append(f"{acks:,} ACK{'s' if acks != 1 else ''}")
            if bits:
                parts.append(f"{arrow} " + ", ".join(bits))
        n = self.segments
        return (f"… {n:,} segment{'s' if n != 1 else ''} left out, "
                f"{self.t_last - self.t_first:.3f} s: " + "; ".join(parts))


@dataclass(slots=True)
class Row:
    t: float  # seconds since the trace started
    # "seg", "state", "note", "init", "cc" (a congestion phase change), "pcc" (the peer
    # kernel's congestion state or ssthresh changed), "pev" (the peer kernel retransmitted
    # or sent/received a reset: its own tracepoints), "gap" (segments not drawn: a
    # summarised conversation's, ``detail`` says what they were)
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
    # Rows it would have whole; when more than ``rows`` hold, it was summarised.
    total_rows: int = 0

    @property
    def summarised(self) -> bool:
        return self.total_rows > len(self.rows)

    def notice(self, limits: LadderLimits) -> str:
        """What a summarised section says under its header ("" when it is whole)."""
        if not self.summarised:
            return ""
        drawn = sum(r.kind != "gap" for r in self.rows)
        return (f"Summarised: {drawn:,} of its {self.total_rows:,} rows are drawn (more than "
                f"{limits.max_rows:,}): the first and last {limits.keep:,}, and every state "
                "and congestion change, note, SYN, FIN, RST, drop, injection, "
                f"retransmission and marked segment, with {limits.context} row(s) either "
                "side; each stretch left out is one line. The pcap holds every segment.")


@dataclass
class Ladder:
    sections: list[Section]
    other_frames: int  # frames that are not TCP segments (ARP, ICMP, malformed)
    title: str | None = None
    limits: LadderLimits = DEFAULT_LIMITS
    # Conversations not drawn (beyond the limits), listed one line each, and how
    # many more there were beyond ``limits.max_listed`` (and their segments).
    listed: list[Conversation] = field(default_factory=list)
    unlisted: int = 0
    unlisted_segments: int = 0
    segments: int = 0  # in all conversations
    t0: float = 0.0

    @property
    def conversations(self) -> int:
        return len(self.sections) + len(self.listed) + self.unlisted

    def notice(self) -> str:
        """What the ladder says at its top when the limits left something out ("" when
        everything is drawn)."""
        parts = []
        n_summ = sum(s.summarised for s in self.sections)
        rest = len(self.listed) + self.unlisted
        lim = self.limits
        if rest:
            why = (f"at most {lim.max_conversations:,} conversations"
                   if len(self.sections) >= lim.max_conversations
                   else f"at most {lim.max_total_rows:,} rows in all")
            parts.append(f"the first {len(self.sections):,} of its {self.conversations:,} "
                         f"conversations are drawn ({why}), the other {rest:,} listed at "
                         "the end")
        if n_summ:
            parts.append(f"{n_summ:,} conversation{'s' if n_summ != 1 else ''} of more than "
                         f"{lim.max_rows:,} rows {'are' if n_summ != 1 else 'is'} summarised")
        if not parts:
            return ""
        n = self.conversations
        return (f"A large trace ({n:,} conversation{'s' if n != 1 else ''}, "
                f"{self.segments:,} segments): " + "; ".join(parts) + ". Nothing is left out of the pcap "
                "(trace.pcap) nor of a run's report.json.")


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


def _other_rows(conv: Conversation, t0: float) -> list[tuple[tuple, Row]]:
    """A conversation's rows that are not segments, keyed for their place in time."""
    keyed: list[tuple[tuple, Row]] = []
    for n, note in enumerate(conv.notes):
        keyed.append(((note.t, 0, n), Row(note.t - t0, "note", note=note)))
    keyed.extend(_state_rows(conv.states, "left", t0))
    keyed.extend(_state_rows(conv.peer_states, "right", t0))
    keyed.extend(_state_rows(conv.listener_states, "right", t0, listener=True))
    keyed.extend(_peer_cc_rows(conv.peer_congestion, t0))
    keyed.extend(_peer_event_rows(conv.peer_events, t0))
    keyed.extend(_cc_rows(conv.congestion, t0))
    keyed.sort(key=lambda kr: kr[0])
    return keyed


def is_event(v: SegmentView) -> bool:
    """A segment a summarised ladder always draws: SYN, FIN or RST; dropped, injected
    or otherwise marked; a retransmission; with a note or an option of bad length."""
    return bool(v.tcp.flags & (SYN | FIN | RST) or v.frame.mark or v.frame.note
                or v.retransmission or v.tcp.malformed_option is not None)


def _section(trace: Trace, conv: Conversation, t0: float, roles: tuple[str, str],
             limits: LadderLimits, others: list[tuple[tuple, Row]]) -> Section:
    init = (_initial(conv.states), _initial(conv.peer_states))
    total = conv.count + len(others) + any(init)
    if total <= limits.max_rows:
        keyed = list(others)
        for v in conv.iter_segments(trace):
            v.drop_payload()
            keyed.append(((v.t, 2, v.index), Row(v.t - t0, "seg", seg=v)))
        keyed.sort(key=lambda kr: kr[0])
        rows = [r for _, r in keyed]
    else:
        rows = _summarised_rows(trace, conv, t0, limits, others)
    if any(init):
        rows.insert(0, Row(rows[0].t if rows else 0.0, "init", init=init))
    return Section(conv, conv.title(), ep_str(conv.left), ep_str(conv.right),
                   roles[0], roles[1], rows, total)


def _summarised_rows(trace: Trace, conv: Conversation, t0: float, limits: LadderLimits,
                     others: list[tuple[tuple, Row]]) -> list[Row]:
    """The rows of a conversation over ``limits.max_rows``, with a "gap" row for each
    stretch left out. Two passes over its segments, holding a few bytes a segment and
    the views drawn: which to draw, then those."""
    ts, lr, length, event = array("d"), bytearray(), array("I"), bytearray()
    for v in conv.iter_segments(trace):
        ts.append(v.t)
        lr.append(v.left_to_right)
        length.append(v.length)
        event.append(is_event(v))
    n = len(ts)
    # Rows in time order: segment j as j, others[k] as -(k + 1); at one instant as
    # build_ladder has them (notes, changes not caused by a segment, segments, the rest).
    seg_order: Iterable[int] = range(n)
    if any(ts[j] > ts[j + 1] for j in range(n - 1)):
        seg_order = sorted(range(n), key=ts.__getitem__)  # stable: ties in frame order
    index = conv.frames
    order = array("q")
    k = 0
    for j in seg_order:
        key = (ts[j], 2, index[j])
        while k < len(others) and others[k][0] < key:
            order.append(-(k + 1))
            k += 1
        order.append(j)
    order.extend(-(i + 1) for i in range(k, len(others)))
    total = len(order)
    chosen = bytearray(total)
    keep = min(limits.keep, total)
    chosen[:keep] = b"\1" * keep
    chosen[total - keep:] = b"\1" * keep
    c = limits.context
    for p in range(total):
        o = order[p]
        if o < 0 or event[o]:
            lo, hi = max(0, p - c), min(total, p + c + 1)
            chosen[lo:hi] = b"\1" * (hi - lo)
    p = 0
    while p < total:  # a stretch too short to be worth a line is drawn
        if chosen[p]:
            p += 1
            continue
        q = p
        while q < total and not chosen[q]:
            q += 1
        if q - p < _MIN_GAP:
            chosen[p:q] = b"\1" * (q - p)
        p = q
    wanted = bytearray(n)
    for p in range(total):
        if chosen[p] and order[p] >= 0:
            wanted[order[p]] = 1
    views: dict[int, SegmentView] = {}
    for j, v in enumerate(conv.iter_segments(trace)):
        if wanted[j]:
            v.drop_payload()
            views[j] = v
    rows: list[Row] = []
    gap: Gap | None = None
    for p in range(total):
        o = order[p]
        if chosen[p]:
            if gap is not None:
                rows.append(Row(gap.t_first - t0, "gap", detail=gap.text()))
                gap = None
            rows.append(Row(views[o].t - t0, "seg", seg=views[o]) if o >= 0
                        else others[-o - 1][1])
        else:
            if gap is None:
                gap = Gap(ts[o], ts[o])
            gap.add(ts[o], bool(lr[o]), length[o])
    if gap is not None:
        rows.append(Row(gap.t_first - t0, "gap", detail=gap.text()))
    return rows


def build_ladder(trace: Trace, *, roles: tuple[str, str] = DEFAULT_ROLES,
                 title: str | None = None,
                 extra_states: Iterable[StateRecord] = (),
                 limits: LadderLimits | None = None) -> Ladder:
    """The row model of the ladder: one section per conversation, rows in time order.
    At one instant: notes, then our state changes not caused by a received segment
    (connect() → SYN-SENT comes before the SYN), then segments, then changes caused
    by segments and the peer's observed states. Congestion phase changes
    (``ladder_congestion``) are placed the same way.

    Within ``limits`` (default ``DEFAULT_LIMITS``; ``UNLIMITED`` draws everything): a
    conversation of more than ``max_rows`` rows is summarised, and the conversations
    after the first ``max_conversations``, or after ``max_total_rows`` rows, are
    listed (``Ladder.listed``) rather than drawn. Segments are read one conversation
    at a time and only those drawn are kept."""
    limits = DEFAULT_LIMITS if limits is None else limits
    convs, other = conversations(trace, extra_states, keep_segments=False, place_notes=False)
    notes = NotePlacement(trace.notes, convs)
    t0 = trace.start
    ladder = Ladder([], other, title, limits, segments=sum(c.count for c in convs), t0=t0)
    used = 0
    full = False
    for conv in convs:
        if not full and ladder.sections and len(ladder.sections) >= limits.max_conversations:
            full = True
        if not full:
            conv.notes = notes.of(conv)
            others = _other_rows(conv, t0)
            whole = conv.count + len(others) + 1
            if ladder.sections and whole <= limits.max_rows \
                    and used + whole + _SECTION_LINES > limits.max_total_rows:
                full = True  # known without reading its segments
                conv.notes = []
            else:
                sec = _section(trace, conv, t0, roles, limits, others)
                cost = len(sec.rows) + _SECTION_LINES
                if ladder.sections and used + cost > limits.max_total_rows:
                    full = True
                    conv.notes = []  # listed: its notes are not drawn
                else:
                    used += cost
                    ladder.sections.append(sec)
                    continue
        if len(ladder.listed) < limits.max_listed:
            ladder.listed.append(conv)
        else:
            ladder.unlisted += 1
            ladder.unlisted_segments += conv.count
    return ladder


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
    "cc": "dark_orange", "ccd": "dark_orange italic", "gap": "dim italic",
    "notice": "bold yellow",
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


def _text_lines(ladder: Ladder, width: int | None = None) -> Iterator[Line]:
    """The text ladder's lines, each at most ``width`` characters (``ladder_width()``),
    one section at a time."""
    width = ladder_width() if width is None else max(80, width)
    for line in _text_lines_in(ladder, width):
        yield _fit(line, width)


def _line_str(line: Line) -> str:
    return "".join(t for t, _ in line).rstrip()


def _text_lines_in(ladder: Ladder, width: int) -> Iterator[Line]:
    if ladder.title:
        yield [(ladder.title, "title")]
        yield []
    notice = ladder.notice()
    if notice:
        for part in _wrap(notice, min(width, 100)):  # a paragraph, also in ladder.txt
            yield [(part, "notice")]
        yield []
    if not ladder.sections:
        yield [("(no TCP segments)", "note")]
    max_index = max((r.seg.index for s in ladder.sections for r in s.rows if r.seg is not None),
                    default=0)
    wn = len(f"#{max_index + 1}")
    for si, sec in enumerate(ladder.sections):
        if si:
            yield []
        yield from _section_lines(sec, wn, width, ladder.limits)
    if ladder.listed or ladder.unlisted:
        yield []
        yield from _listed_lines(ladder, width)
    if ladder.other_frames:
        yield []
        yield [(f"({ladder.other_frames} frame(s) that are not TCP segments "
                "are in the pcap but not drawn)", "note")]


def listed_row(conv: Conversation, t0: float) -> list[str]:
    """A conversation not drawn, as the table of those lists it: conversation number,
    segments, payload bytes each way, dropped segments, retransmissions, first and
    last time, each side's last state, and the conversation."""
    last_l = normalize_state(conv.states[-1].new) if conv.states else "-"
    last_r = conv.peer_states[-1] if conv.peer_states else None
    right = "-" if last_r is None else normalize_state(
        last_r.new if isinstance(last_r, StateRecord) else last_r.state)
    return [str(conv.number), f"{conv.count:,}",
            f"{conv.payload_bytes.get(conv.left, 0):,}",
            f"{conv.payload_bytes.get(conv.right, 0):,}", f"{conv.dropped:,}",
            f"{conv.retransmissions:,}", f"{conv.start - t0:.3f}", f"{conv.end - t0:.3f}",
            last_l, right, conv.title().removeprefix("TCP ")]


LISTED_HEAD = ["#", "segments", "bytes →", "bytes ←", "dropped", "retrans", "first(s)",
               "last(s)", "left state", "right state", "conversation"]


def _listed_lines(ladder: Ladder, width: int) -> Iterator[Line]:
    rest = len(ladder.listed) + ladder.unlisted
    title = f"{rest:,} more conversation{'s' if rest != 1 else ''}, not drawn"
    yield [(f"── {title} ", "title"), ("─" * max(4, min(width, 100) - len(title) - 4), "life")]
    rows = [listed_row(c, ladder.t0) for c in ladder.listed]
    widths = [max(len(h), *(len(r[i]) for r in rows)) for i, h in enumerate(LISTED_HEAD)]

    def line(cells: list[str], style: str) -> Line:
        out = [c.rjust(w) for c, w in zip(cells[:8], widths, strict=False)]
        out += [c.ljust(w) for c, w in zip(cells[8:10], widths[8:10], strict=False)]
        return [(" " + "  ".join([*out, cells[10]]), style)]

    yield line(LISTED_HEAD, "label")
    for r in rows:
        yield line(r, "")
    if ladder.unlisted:
        yield [(f" … and {ladder.unlisted:,} more ({ladder.unlisted_segments:,} segments), "
                f"beyond {ladder.limits.max_listed:,} lines", "note")]


def _section_lines(sec: Section, wn: int, width: int = 100,
                   limits: LadderLimits = DEFAULT_LIMITS) -> list[Line]:
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
    notice = sec.notice(limits)
    if notice:  # under the title and the endpoints
        lines[2:2] = [[(" " * (8 + 1 + wn + 1), ""), (part, "notice")]
                      for part in _wrap(notice, max(40, min(width, 100) - 8 - wn - 2))]
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
        elif r.kind == "gap":
            # dotted lifelines, and what was left out between them (on over the right
            # one and the next lines when the lane is narrower)
            first, *more = _wrap_parts(r.detail, max(24, width - lcol - 3))
            text = " " + first
            out.append([time, blank, (" " * wl + " ", ""), ("┆", "life"),
                        *([(text.ljust(lw), "gap"), ("┆", "life")] if len(text) <= lw
                          else [(text, "gap")])])
            out.extend([(" " * lcol, ""), ("┆", "life"), (" " + part, "gap")] for part in more)
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


def _wrap_parts(text: str, width: int) -> list[str]:
    """``text`` in lines of at most ``width``, broken after its "; " where it can be."""
    lines: list[str] = []
    for part in text.split("; "):
        if lines and len(lines[-1]) + 2 + len(part) <= width:
            lines[-1] += "; " + part
        elif lines:
            lines[-1] += ";"
            lines.extend(_wrap(part, width))
        else:
            lines.extend(_wrap(part, width))
    return lines


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


def _render_text(ladder: Ladder, width: int | None) -> str:
    return "".join(_line_str(line) + "\n" for line in _text_lines(ladder, width)) or "\n"


def render_ladder_text(trace: Trace, *, roles: tuple[str, str] = DEFAULT_ROLES,
                       title: str | None = None,
                       extra_states: Iterable[StateRecord] = (),
                       width: int | None = None,
                       limits: LadderLimits | None = None) -> str:
    """The ladder as plain text (what ladder.txt holds), at most ``width`` columns
    (default ``ladder_width()``: COLUMNS, the terminal's, or 100; at least 80), within
    ``limits`` (``DEFAULT_LIMITS``)."""
    ladder = build_ladder(trace, roles=roles, title=title, extra_states=extra_states,
                          limits=limits)
    return _render_text(ladder, width)


# ladder.txt is read later, in an editor or a browser, not in the terminal of the run:
# it keeps every label whole (the lanes are as wide as their labels need).
FILE_WIDTH = 100_000


def render_ladder_texts(trace: Trace, **kw: Any) -> tuple[str, str]:
    """(the ladder for ladder.txt, whole; the ladder for this terminal, ``ladder_width()``
    wide): one text when the whole one fits. One row model for both."""
    kw.pop("width", None)
    ladder = build_ladder(trace, **kw)
    whole = _render_text(ladder, FILE_WIDTH)
    if max(map(len, whole.splitlines()), default=0) <= ladder_width():
        return whole, whole
    return whole, _render_text(ladder, None)


def write_ladder_text(trace: Trace, path: str | os.PathLike[str], **kw: Any) -> str:
    """Write ladder.txt atomically (every label whole: ``FILE_WIDTH``); returns the text."""
    kw.setdefault("width", FILE_WIDTH)
    text = render_ladder_text(trace, **kw)
    atomic_write_text(path, text)
    return text


def ladder_renderable(trace: Trace, *, roles: tuple[str, str] = DEFAULT_ROLES,
                      title: str | None = None,
                      extra_states: Iterable[StateRecord] = (),
                      width: int | None = None,
                      limits: LadderLimits | None = None) -> RenderableType:
    """The ladder as a rich Text with colour, for ``Console.print``."""
    from rich.text import Text

    ladder = build_ladder(trace, roles=roles, title=title, extra_states=extra_states,
                          limits=limits)
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
.gap rect { fill: #fafafa; stroke: #bdbdbd; stroke-dasharray: 2 2; }
.gap text { fill: #616161; font-style: italic; }
.notice { background: #fff8e1; border-left: 4px solid #f9a825; padding: 6px 10px; }
table.listed { border-collapse: collapse; font-size: 13px; margin-top: 8px; }
table.listed td, table.listed th { padding: 2px 8px; text-align: right;
                                   font-family: ui-monospace, monospace; }
table.listed td:nth-last-child(-n+3), table.listed th:nth-last-child(-n+3) { text-align: left; }
table.listed tr:nth-child(even) { background: #f5f5f5; }
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
    notes += [r.detail for r in rows if r.kind == "gap"]
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
        elif r.kind == "gap":
            tw = len(r.detail) * CHAR_W + 12
            p.append(f'<g class="gap"><rect x="{lx - 3:.1f}" y="{y - 10:.1f}" '
                     f'width="{max(tw + 10, rx - lx + 6):.1f}" height="20"/>'
                     f'<text x="{lx + 10:.1f}" y="{y + 4:.1f}">{_e(r.detail)}</text></g>')
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


def _html_chunks(ladder: Ladder) -> Iterator[str]:
    """ladder.html, a piece at a time (one section's SVG at most)."""
    page_title = ladder.title or "netemu ladder"
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
    notice = ladder.notice()
    if notice:
        p.append(f'<p class="notice">{_e(notice)}'
                 + (' <a href="#listed">The conversations not drawn.</a>'
                    if ladder.listed or ladder.unlisted else "") + "</p>")
    if not ladder.sections:
        p.append("<p>No TCP segments.</p>")
    yield "\n".join(p) + "\n"
    for n, sec in enumerate(ladder.sections):
        head = f"<h2>{_e(sec.title)}</h2>\n"
        notice = sec.notice(ladder.limits)
        if notice:
            head += f'<p class="notice">{_e(notice)}</p>\n'
        yield head + _svg_section(sec, n) + "\n"
    if ladder.listed or ladder.unlisted:
        rest = len(ladder.listed) + ladder.unlisted
        yield (f'<h2 id="listed">{rest:,} more conversation{"s" if rest != 1 else ""}, '
               'not drawn</h2>\n<table class="listed"><tr>'
               + "".join(f"<th>{_e(h)}</th>" for h in LISTED_HEAD) + "</tr>\n")
        for i in range(0, len(ladder.listed), 500):
            yield "".join("<tr>" + "".join(f"<td>{_e(c)}</td>" for c in listed_row(conv, ladder.t0))
                          + "</tr>\n" for conv in ladder.listed[i:i + 500])
        yield "</table>\n"
        if ladder.unlisted:
            yield (f"<p>… and {ladder.unlisted:,} more ({ladder.unlisted_segments:,} segments), "
                   f"beyond {ladder.limits.max_listed:,} lines.</p>\n")
    if ladder.other_frames:
        yield (f"<p>{ladder.other_frames} frame(s) that are not TCP segments are in the pcap "
               "but not drawn.</p>\n")
    yield "<details><summary>Text ladder</summary><pre>"
    sep = ""
    for line in _text_lines(ladder):
        yield sep + _e(_line_str(line))
        sep = "\n"
    yield "</pre></details>\n</body></html>\n"


def render_ladder_html(trace: Trace, *, roles: tuple[str, str] = DEFAULT_ROLES,
                       title: str | None = None,
                       extra_states: Iterable[StateRecord] = (),
                       limits: LadderLimits | None = None) -> str:
    """A self-contained HTML page: one inline SVG ladder per conversation, hover
    tooltips with raw numbers and options, and the text ladder at the bottom; within
    ``limits`` (``DEFAULT_LIMITS``)."""
    ladder = build_ladder(trace, roles=roles, title=title, extra_states=extra_states,
                          limits=limits)
    return "".join(_html_chunks(ladder))


def write_ladder_html(trace: Trace, path: str | os.PathLike[str], *,
                      roles: tuple[str, str] = DEFAULT_ROLES, title: str | None = None,
                      extra_states: Iterable[StateRecord] = (),
                      limits: LadderLimits | None = None) -> None:
    """Write ladder.html atomically, a section at a time."""
    ladder = build_ladder(trace, roles=roles, title=title, extra_states=extra_states,
                          limits=limits)
    with atomic_open(path) as f:
        for chunk in _html_chunks(ladder):
            f.write(chunk.encode("utf-8"))
