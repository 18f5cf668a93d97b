"""The ladder as text: ``ladder.txt`` (every label whole) and the coloured rich
renderable for the terminal, from one row model (``ladder_model``).

Layer rule: draws a ``Ladder``; ``ladder_html`` embeds these lines in its page.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Iterator
from typing import TYPE_CHECKING, Any

from .atomic import atomic_write_text
from .conv import Conversation, SegmentView, new_state, normalize_state
from .ladder_model import (
    DEFAULT_LIMITS,
    DEFAULT_ROLES,
    Ladder,
    LadderLimits,
    Row,
    Section,
    build_ladder,
    seg_annotations,
    seg_class,
)
from .record import NoteRecord, StateRecord, Trace

if TYPE_CHECKING:
    from rich.console import Console, RenderableType

# --- text ------------------------------------------------------------------------------

_TEXT_STYLES = {
    "time": "dim",
    "num": "dim",
    "left": "bold cyan",
    "right": "bold magenta",
    "syn": "green",
    "fin": "yellow",
    "rst": "bold red",
    "data": "bright_blue",
    "ack": "white",
    "drop": "red",
    "inject": "bold dark_orange",
    "mark": "yellow",
    "analysis": "bold yellow",
    "sack": "dim cyan",
    "fnote": "italic",
    "step": "bold",
    "pass": "bold green",
    "fail": "bold red",
    "note": "dim italic",
    "title": "bold",
    "label": "bold",
    "role": "dim",
    "life": "dim",
    "init": "cyan",
    "cc": "dark_orange",
    "ccd": "dark_orange italic",
    "gap": "dim italic",
    "notice": "bold yellow",
}

Span = tuple[str, str]  # (text, style key)
Line = list[Span]


def note_text(note: NoteRecord) -> str:
    prefix = {"step": "▸ ", "pass": "✓ ", "fail": "✗ FAIL: "}.get(note.kind, "")
    return prefix + note.text


def ladder_width() -> int:
    """How wide the text ladder may be: ``COLUMNS``, else the terminal's width, else 100
    (output that is no terminal); never below 80."""
    import shutil

    return max(80, shutil.get_terminal_size((100, 24)).columns)


def _fit(line: Line, width: int) -> Line:
    """``line`` cut to ``width`` characters, its end "…" where it was cut."""
    if sum([len(t) for t, _ in line]) <= width:
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
    head = text[: max(0, width - 1)]
    space = head.rfind(" ")
    if space > 0 and len(head) - space <= 8:
        head = head[: space + 1]
    return head + "…"


def text_lines(ladder: Ladder, width: int | None = None) -> Iterator[Line]:
    """The text ladder's lines, each at most ``width`` characters (``ladder_width()``),
    one section at a time."""
    width = ladder_width() if width is None else max(80, width)
    for line in _text_lines_in(ladder, width):
        yield _fit(line, width)


def line_str(line: Line) -> str:
    return "".join([t for t, _ in line]).rstrip()


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
    max_index = max(
        (r.seg.index for s in ladder.sections for r in s.rows if r.seg is not None), default=0
    )
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
        for part in _wrap(f"({ladder.skipped_text()})", min(width, 100)):
            yield [(part, "note")]


def listed_row(conv: Conversation, t0: float) -> list[str]:
    """A conversation not drawn, as the table of those lists it: conversation number,
    the conversation (before the counts: a narrow terminal cuts the counts, never which
    conversation a row is), segments, payload bytes each way, dropped segments, resent
    segments, first and last time, each side's last state."""
    last_l = normalize_state(new_state(conv.states[-1])) if conv.states else "-"
    right = normalize_state(new_state(conv.peer_states[-1])) if conv.peer_states else "-"
    return [
        str(conv.number),
        conv.title().removeprefix("TCP "),
        f"{conv.count:,}",
        f"{conv.payload_bytes.get(conv.left, 0):,}",
        f"{conv.payload_bytes.get(conv.right, 0):,}",
        f"{conv.dropped:,}",
        f"{conv.retransmissions:,}",
        f"{conv.start - t0:.3f}",
        f"{conv.end - t0:.3f}",
        last_l,
        right,
    ]


LISTED_HEAD = [
    "#",
    "conversation",
    "segments",
    "bytes →",
    "bytes ←",
    "dropped",
    "resent",
    "first(s)",
    "last(s)",
    "left state",
    "right state",
]


def _listed_lines(ladder: Ladder, width: int) -> Iterator[Line]:
    rest = len(ladder.listed) + ladder.unlisted
    title = f"{rest:,} more conversation{'s' if rest != 1 else ''}, not drawn"
    yield [(f"── {title} ", "title"), ("─" * max(4, min(width, 100) - len(title) - 4), "life")]
    rows = [listed_row(c, ladder.t0) for c in ladder.listed]
    widths = [max(len(h), *(len(r[i]) for r in rows)) for i, h in enumerate(LISTED_HEAD)]

    def line(cells: list[str], style: str) -> Line:
        out = [cells[0].rjust(widths[0]), cells[1].ljust(widths[1])]
        out += [c.rjust(w) for c, w in zip(cells[2:9], widths[2:9], strict=True)]
        out += [c.ljust(w) for c, w in zip(cells[9:], widths[9:], strict=True)]
        return [(" " + "  ".join(out).rstrip(), style)]

    yield line(LISTED_HEAD, "label")
    for r in rows:
        yield line(r, "")
    if ladder.unlisted:
        yield [
            (
                f" … and {ladder.unlisted:,} more ({ladder.unlisted_segments:,} segments), "
                f"beyond {ladder.limits.max_listed:,} lines",
                "note",
            )
        ]


def _section_lines(
    sec: Section, wn: int, width: int = 100, limits: LadderLimits = DEFAULT_LIMITS
) -> list[Line]:
    """One section's lines within ``width``: the lane between the lifelines is as wide
    as its labels want; where a line would not fit, it narrows to what the labels need,
    then further (labels cut with "…") down to leaving 14 columns right of the right
    lifeline for the peer's state (" ESTABLISHED …"); what still does not fit, ``_fit``
    cuts."""
    rows = sec.rows
    segs = [r.seg for r in rows if r.seg is not None]
    labels = [v.label() for v in segs]
    cc_texts = [r.detail for r in rows if r.kind == "cc"]
    lw = max([40, *(len(s) + 8 for s in labels), *(len(s) + 3 for s in cc_texts)])
    snug = max([24, *(len(s) + (7 if v.dropped else 5) for v, s in zip(segs, labels, strict=True))])
    # what a segment's line shows besides its lane, made once for every drawing of it
    drawn = {
        id(v): (s, seg_class(v), seg_annotations(v)) for v, s in zip(segs, labels, strict=True)
    }
    left_states = [r.state for r in rows if r.kind in ("state", "cc") and r.side == "left"]
    left_states += [r.init[0] for r in rows if r.kind == "init"]
    head_l = f"{sec.left_label} ({sec.left_role})"
    wl = max([12, *(len(s) for s in left_states), len(head_l) // 2 + 1])
    prefix_w = 8 + 1 + wn + 1
    right = 14  # " ESTABLISHED …"
    wl = min(wl, max(12, width - prefix_w - 2 - 24 - right))  # a long left state gives way
    floor = max(24, width - (prefix_w + wl + 1) - 1 - right)
    lines = _section_drawn(sec, wn, width, wl, lw, drawn)
    for narrowest in (snug, floor):  # labels whole; then only to leave the 14 columns
        over = max((sum(len(t) for t, _ in line) for line in lines[1:]), default=0) - width
        if over <= 0 or lw <= narrowest:
            continue
        lw = max(narrowest, lw - over)
        lines = _section_drawn(sec, wn, width, wl, lw, drawn)
    notice = sec.notice(limits)
    if notice:  # under the title and the endpoints
        lines[2:2] = [
            [(" " * (8 + 1 + wn + 1), ""), (part, "notice")]
            for part in _wrap(notice, max(40, min(width, 100) - 8 - wn - 2))
        ]
    return lines


def _section_drawn(
    sec: Section, wn: int, width: int, wl: int, lw: int, drawn: dict[int, tuple[str, str, Any]]
) -> list[Line]:
    """One section's lines with the left column ``wl`` wide and the lane ``lw``; ``drawn``:
    each segment's label, style and annotations, by its id."""
    prefix_w = 8 + 1 + wn + 1
    pad = " " * prefix_w
    lcol = prefix_w + wl + 1  # column of the left lifeline
    rcol = lcol + 1 + lw  # column of the right lifeline

    out = _section_head(sec, width, prefix_w, lcol, rcol)
    life = [(pad + " " * wl + " ", ""), ("│", "life"), (" " * lw, ""), ("│", "life")]
    out.append(life)
    blank = (" " * (wn + 1), "")
    for r in sec.rows:
        time = (f"{r.t:8.3f} ", "time")
        if r.kind in ("init", "state", "cc", "pcc", "pev"):
            out.append(_state_line(r, time, blank, wl, lw))
        elif r.kind == "note":
            out.extend(_note_lines(r, time, blank, width, prefix_w, rcol))
        elif r.kind == "gap":
            out.extend(_gap_lines(r, time, blank, width, wl, lw, lcol))
        else:
            out.append(_segment_line(r, time, wn, wl, lw, drawn[id(r.seg)]))
    out.append(life)
    return out


def _section_head(sec: Section, width: int, prefix_w: int, lcol: int, rcol: int) -> list[Line]:
    """A section's title line, then each endpoint centred over its lifeline."""
    head_l = f"{sec.left_label} ({sec.left_role})"
    head_r = f"{sec.right_label} ({sec.right_role})"
    title: Line = [
        (f"── {sec.title} ", "title"),
        ("─" * max(4, min(rcol + 12, width) - len(sec.title) - 4), "life"),
    ]
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
    return [title, hl]


def _state_line(r: Row, time: Span, blank: Span, wl: int, lw: int) -> Line:
    """An init, state, cc, pcc or pev row: a state or an event beside its lifeline."""
    if r.kind == "init":
        return [
            time,
            blank,
            (r.init[0].rjust(wl) + " ", "init"),
            ("│", "life"),
            (" " * lw, ""),
            ("│", "life"),
            (" " + r.init[1] if r.init[1] else "", "init"),
        ]
    if r.kind == "state" and r.side == "left":
        return [
            time,
            blank,
            (_cut(r.state, wl).rjust(wl) + " ", "left"),
            ("│", "life"),
            (" " * lw, ""),
            ("│", "life"),
        ]
    if r.kind == "cc":
        # cwnd, ssthresh and the cause whole: when the lane is narrower, over the
        # right lifeline (nothing is on its right in this row)
        detail = " " + r.detail
        return [
            time,
            blank,
            (_cut(r.state, wl).rjust(wl) + " ", "cc"),
            ("│", "life"),
            *(
                [(detail.ljust(lw), "ccd"), ("│", "life")]
                if len(detail) <= lw
                else [(detail, "ccd")]
            ),
        ]
    style = {"state": "right", "pcc": "cc", "pev": "rst"}[r.kind]
    return [
        time,
        blank,
        (" " * wl + " ", ""),
        ("│", "life"),
        (" " * lw, ""),
        ("│", "life"),
        (" " + r.state, style),
    ]


def _note_lines(
    r: Row, time: Span, blank: Span, width: int, prefix_w: int, rcol: int
) -> list[Line]:
    """A note across the lanes, on over the next lines when it is longer than the width."""
    assert r.note is not None
    style = r.note.kind if r.note.kind in _TEXT_STYLES else "note"
    # A note too long for the width goes on over the next lines (its words
    # whole): cut, a failure's message would lose what it says.
    room = width - prefix_w - 3 - 2 - 3
    first, *more = _wrap(note_text(r.note), room)
    text = f" {first} "
    fill = max(3, min(rcol - prefix_w - len(text) - 3, width - prefix_w - 3 - len(text)))
    lines: list[Line] = [[time, blank, ("┄┄┄" + text + "┄" * fill, style)]]
    lines.extend([(" " * prefix_w, ""), ("    " + part, style)] for part in more)
    return lines


def _gap_lines(
    r: Row, time: Span, blank: Span, width: int, wl: int, lw: int, lcol: int
) -> list[Line]:
    """A gap: dotted lifelines and what was left out between them."""
    # dotted lifelines, and what was left out between them (on over the right
    # one and the next lines when the lane is narrower)
    first, *more = _wrap_parts(r.detail, max(24, width - lcol - 3))
    text = " " + first
    lines: list[Line] = [
        [
            time,
            blank,
            (" " * wl + " ", ""),
            ("┆", "life"),
            *([(text.ljust(lw), "gap"), ("┆", "life")] if len(text) <= lw else [(text, "gap")]),
        ]
    ]
    lines.extend([(" " * lcol, ""), ("┆", "life"), (" " + part, "gap")] for part in more)
    return lines


def _segment_line(
    r: Row, time: Span, wn: int, wl: int, lw: int, drawn: tuple[str, str, Any]
) -> Line:
    """A segment: its number, its arrow across the lane, its annotations on the right
    (``drawn``: its label, style and annotations)."""
    v = r.seg
    assert v is not None
    label, style, notes = drawn
    num = f"#{v.index + 1}".rjust(wn)
    line: Line = [
        time,
        (num + " ", "num"),
        (" " * wl + " ", ""),
        ("│", "life"),
        (_arrow(v, lw, label), style),
        ("│", "life"),
    ]
    for text, style in notes:
        line.append(("  " if style == "fnote" or line[-1][1] == "fnote" else " ", ""))
        line.append((text, style))
    return line


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


def _arrow(v: SegmentView, lw: int, label: str) -> str:
    """``v``'s arrow, ``lw`` wide, with its ``label``."""
    body_char = "═" if v.injected else "─"
    body_w = lw - 1 - (2 if v.dropped else 0)
    label = f" {_cut(label, body_w - 4)} "  # a body character each side, at least
    a = max(1, (body_w - len(label)) // 2)
    b = max(1, body_w - len(label) - a)
    body = body_char * a + label + body_char * b
    if v.left_to_right:
        return body + ("✗  " if v.dropped else ">")
    return ("  ✗" if v.dropped else "<") + body


def _render_text(ladder: Ladder, width: int | None) -> str:
    return "".join(line_str(line) + "\n" for line in text_lines(ladder, width)) or "\n"


def render_ladder_text(
    trace: Trace,
    *,
    roles: tuple[str, str] = DEFAULT_ROLES,
    title: str | None = None,
    extra_states: Iterable[StateRecord] = (),
    width: int | None = None,
    limits: LadderLimits | None = None,
) -> str:
    """The ladder as plain text (what ladder.txt holds), at most ``width`` columns
    (default ``ladder_width()``: COLUMNS, the terminal's, or 100; at least 80), within
    ``limits`` (``DEFAULT_LIMITS``)."""
    ladder = build_ladder(trace, roles=roles, title=title, extra_states=extra_states, limits=limits)
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


def ladder_renderable(
    trace: Trace,
    *,
    roles: tuple[str, str] = DEFAULT_ROLES,
    title: str | None = None,
    extra_states: Iterable[StateRecord] = (),
    width: int | None = None,
    limits: LadderLimits | None = None,
) -> RenderableType:
    """The ladder as a rich Text with colour, for ``Console.print``."""
    from rich.text import Text

    ladder = build_ladder(trace, roles=roles, title=title, extra_states=extra_states, limits=limits)
    out = Text(no_wrap=True, overflow="ignore")
    for line in text_lines(ladder, width):
        for text, style in line:
            out.append(text, style=_TEXT_STYLES.get(style, ""))
        out.append("\n")
    return out


def print_ladder(trace: Trace, console: Console | None = None, **kw: Any) -> None:
    """Print the coloured ladder to the terminal (plain when it is not a terminal)."""
    from rich.console import Console

    (console or Console(soft_wrap=True)).print(ladder_renderable(trace, **kw))
