"""The ladder as a self-contained HTML page (``ladder.html``): an index of the
conversations, one inline SVG per conversation (each side's states as bands, rows
positioned so the script can space them by time), each conversation's data as JSON
for its detail panel and graphs (``ladder_data``), the script and style
(``ladder_assets``), and the text ladder at the bottom. Nothing is fetched. A trace
beyond the limits goes on over pages (``write_ladder_html``). docs/trace.md,
"ladder.html".

Layer rule: draws a ``Ladder`` (``ladder_model``); the text ladder is ``ladder_text``'s.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Iterator
from pathlib import Path

from .atomic import atomic_open
from .conv import Conversation, SegmentView, ep_str
from .ladder_assets import CSS, JS
from .ladder_data import index_row, page_json, section_segments, section_series, seg_marks
from .ladder_model import (
    DEFAULT_ROLES,
    Ladder,
    LadderLimits,
    Row,
    Section,
    build_ladder,
    ladder_pages,
    seg_annotations,
    seg_class,
)
from .ladder_text import line_str, note_text, text_lines
from .record import StateRecord, Trace

# --- HTML + SVG ----------------------------------------------------------------------------

CHAR_W = 7.8  # px per character of the 13px monospace font
ROW_H = 24
HEAD_H = 64

_COLOURS = {
    "syn": "#2e7d32",
    "fin": "#a15c00",
    "rst": "#c62828",
    "data": "#1565c0",
    "ack": "#455a64",
    "inject": "#e65100",
    "drop": "#c62828",
}

_BAND_STATES = frozenset(
    [
        "CLOSED",
        "LISTEN",
        "SYN-SENT",
        "SYN-RECEIVED",
        "ESTABLISHED",
        "FIN-WAIT-1",
        "FIN-WAIT-2",
        "CLOSING",
        "TIME-WAIT",
        "CLOSE-WAIT",
        "LAST-ACK",
    ]
)
# The page's files: at most this many (ladder.html, ladder-2.html, …), each within the
# limits; the conversations beyond the last are listed in the index, not drawn.
MAX_PAGES = 10


def _e(s: object) -> str:
    """``html.escape(str(s), quote=True)``, the same replacements, without importing
    html: its entity tables cost ~1 ms of every run that writes a ladder."""
    return (
        str(s)
        .replace("&", "&amp;")
        .replace("<", "&lt;")
        .replace(">", "&gt;")
        .replace('"', "&quot;")
        .replace("'", "&#x27;")
    )


def _svg_section(sec: Section, n: int) -> str:
    lx, rx, width = _svg_layout(sec)
    height = HEAD_H + ROW_H * (len(sec.rows) + 1)
    p = _svg_head(sec, n, lx, rx, width, height)
    p.extend(_bands(sec, lx, rx))
    y = ROW_H * 0.5  # a row's middle, in its own group
    k = 0  # the segment's place in the section's data
    for i, r in enumerate(sec.rows):
        attrs = f'transform="translate(0,{HEAD_H + ROW_H * i})" data-t="{r.t:.6f}"'
        if r.seg is not None:
            marks = " ".join(m.replace(" ", "-") for m in seg_marks(r.seg))
            attrs += f' data-k="{seg_class(r.seg)}" data-i="{k}"'
            attrs += f' data-m="{_e(marks)}"' if marks else ""
            k += 1
        p.append(f'<g class="r" {attrs}><text class="time" x="10" y="{y + 4:.1f}">{r.t:.3f}</text>')
        p.extend(_svg_row(r, n, lx, rx, y, width))
        p.append("</g>")
    p.append("</svg>")
    return "\n".join(p)


def _band_class(state: str) -> str:
    name = state.split(" ")[0]
    return name if name in _BAND_STATES else "other"


def _bands(sec: Section, lx: float, rx: float) -> list[str]:
    """Each side's states as bands along its lifeline: from the row where a state
    begins to the row where the next one does (``data-a``, ``data-b``: rows)."""
    out: list[str] = []
    current: dict[str, tuple[str, int]] = {}

    def close(side: str, end: int) -> None:
        if side in current:
            state, a = current.pop(side)
            x = lx - 7 if side == "left" else rx + 2
            y0, y1 = HEAD_H + ROW_H * (a + 0.5), HEAD_H + ROW_H * (end + 0.5)
            out.append(
                f'<rect class="band b-{_band_class(state)}" x="{x:.1f}" y="{y0:.1f}" '
                f'width="5" height="{y1 - y0:.1f}" data-a="{a}" data-b="{end}">'
                f"<title>{_e(state)}</title></rect>"
            )

    for i, r in enumerate(sec.rows):
        changes: list[tuple[str, str]] = []
        if r.kind == "init":
            changes = [(side, st) for side, st in zip(("left", "right"), r.init, strict=True) if st]
        elif r.kind == "state" and not r.state.startswith("listener "):
            changes = [(r.side, r.state)]
        for side, state in changes:
            close(side, i)
            current[side] = (state, i)
    for side in list(current):
        close(side, len(sec.rows))
    return out


def _svg_layout(sec: Section) -> tuple[float, float, int]:
    """Where the two lifelines go (``lx``, ``rx``) and the picture's width: lanes as
    wide as their longest label."""
    rows = sec.rows
    labels = [r.seg.label() for r in rows if r.seg is not None]
    cc_texts = [r.detail for r in rows if r.kind == "cc"]
    left_states = [r.state for r in rows if r.kind in ("state", "cc") and r.side == "left"]
    left_states += [r.init[0] for r in rows if r.kind == "init"]
    right_texts = [r.state for r in rows if r.kind in ("state", "pcc", "pev") and r.side == "right"]
    right_texts += [r.init[1] for r in rows if r.kind == "init"]
    for r in rows:
        if r.seg is not None:
            right_texts.append("  ".join(t for t, _ in seg_annotations(r.seg)))
    head_l = max(len(sec.left_label), len(sec.left_role))
    head_r = max(len(sec.right_label), len(sec.right_role))
    wl = max(
        120.0, max((len(s) for s in left_states), default=0) * CHAR_W + 28, head_l * CHAR_W / 2 + 20
    )
    lx = 120 + wl
    lw = max(
        380.0,
        max((len(s) for s in labels), default=0) * CHAR_W + 70,
        max((len(s) for s in cc_texts), default=0) * CHAR_W + 30,
    )
    rx = lx + lw
    wr = max(
        140.0, max((len(s) for s in right_texts), default=0) * CHAR_W + 30, head_r * CHAR_W / 2 + 20
    )
    notes = [note_text(r.note) for r in rows if r.note is not None]
    notes += [r.detail for r in rows if r.kind == "gap"]
    width = int(max(rx + wr, max((len(s) for s in notes), default=0) * CHAR_W + lx + 24))
    return lx, rx, width


def _svg_head(sec: Section, n: int, lx: float, rx: float, width: int, height: int) -> list[str]:
    """The SVG's opening, its arrowheads, the header boxes and the lifelines."""
    p: list[str] = []
    p.append(
        f'<svg class="ladder" width="{width}" height="{height}" '
        f'viewBox="0 0 {width} {height}" role="img" aria-label="{_e(sec.title)}">'
    )
    p.append("<defs>")
    for cls, colour in _COLOURS.items():
        p.append(
            f'<marker id="ah{n}-{cls}" viewBox="0 0 10 10" refX="10" refY="5" '
            f'markerWidth="9" markerHeight="9" orient="auto-start-reverse">'
            f'<path d="M0,0 L10,5 L0,10 z" fill="{colour}"/></marker>'
        )
    p.append("</defs>")
    for x, label, role in (
        (lx, sec.left_label, sec.left_role),
        (rx, sec.right_label, sec.right_role),
    ):
        w = max(len(label), len(role)) * CHAR_W + 20
        p.append(
            f'<rect x="{x - w / 2:.1f}" y="6" width="{w:.1f}" height="42" rx="5" '
            'fill="#f5f5f5" stroke="#9e9e9e"/>'
        )
        p.append(f'<text class="host" x="{x:.1f}" y="24" text-anchor="middle">{_e(label)}</text>')
        p.append(f'<text class="role" x="{x:.1f}" y="41" text-anchor="middle">{_e(role)}</text>')
        p.append(f'<line class="life" x1="{x:.1f}" y1="48" x2="{x:.1f}" y2="{height - 6}"/>')
    p.append(f'<text class="time" x="10" y="{HEAD_H - 6}">time (s)</text>')
    return p


def _svg_row(r: Row, n: int, lx: float, rx: float, y: float, width: int) -> list[str]:
    """One row's picture (its time aside), at height ``y``: its SVG elements."""
    if r.kind == "init":
        return [
            _state_box(state, side, lx, rx, y, "init", "initial state")
            for side, state in (("left", r.init[0]), ("right", r.init[1]))
            if state
        ]
    if r.kind == "state":
        return [_state_box(r.state, r.side, lx, rx, y, r.side, r.detail)]
    if r.kind in ("pcc", "pev"):
        return [
            _state_box(r.state, "right", lx, rx, y, "cc" if r.kind == "pcc" else "kev", r.detail)
        ]
    if r.kind == "cc":
        return [
            f'<g class="cc"><title>{_e(r.state + ": " + r.detail)}</title>'
            f"{_state_box(r.state, 'left', lx, rx, y, 'cc', '')}"
            f'<text class="ccd" x="{lx + 10:.1f}" y="{y + 4.5:.1f}">{_e(r.detail)}'
            "</text></g>"
        ]
    if r.kind == "note":
        assert r.note is not None
        kind = r.note.kind if r.note.kind in ("step", "pass", "fail") else "note"
        text = note_text(r.note)
        tw = len(text) * CHAR_W + 12
        return [
            f'<g class="note {kind}"><line x1="70" y1="{y:.1f}" x2="{width - 6}" '
            f'y2="{y:.1f}"/><rect x="{lx + 4:.1f}" y="{y - 9:.1f}" width="{tw:.1f}" '
            f'height="18" fill="#fff"/><text x="{lx + 10:.1f}" y="{y + 4:.1f}">'
            f"{_e(text)}</text></g>"
        ]
    if r.kind == "gap":
        tw = len(r.detail) * CHAR_W + 12
        return [
            f'<g class="gap"><rect x="{lx - 3:.1f}" y="{y - 10:.1f}" '
            f'width="{max(tw + 10, rx - lx + 6):.1f}" height="20"/>'
            f'<text x="{lx + 10:.1f}" y="{y + 4:.1f}">{_e(r.detail)}</text></g>'
        ]
    assert r.seg is not None
    return [_svg_arrow(r.seg, n, lx, rx, y)]


def _state_box(state: str, side: str, lx: float, rx: float, y: float, cls: str, detail: str) -> str:
    w = len(state) * CHAR_W + 14
    x = lx - 8 - w if side == "left" else rx + 8
    tip = f"<title>{_e(detail)}</title>" if detail else ""
    return (
        f'<g class="st {cls}">{tip}<rect x="{x:.1f}" y="{y - 10:.1f}" width="{w:.1f}" '
        f'height="20"/><text x="{x + 7:.1f}" y="{y + 4.5:.1f}">{_e(state)}</text></g>'
    )


def _svg_arrow(v: SegmentView, n: int, lx: float, rx: float, y: float) -> str:
    cls = seg_class(v)
    colour = _COLOURS[cls]
    ly = y + 6  # the line sits under its label
    x1, x2 = (lx, rx) if v.left_to_right else (rx, lx)
    if v.dropped:
        x2 = x1 + (x2 - x1) * 0.82
    dash = ' stroke-dasharray="7 3"' if v.injected else ""
    tip = [
        f"frame #{v.index + 1}  {ep_str(v.src)} → {ep_str(v.dst)}",
        f"{v.flags}  seq={v.tcp.seq} ack={v.tcp.ack} (raw)",
        f"win={v.window} (field {v.tcp.window}) len={v.length}",
    ]
    if v.options_str():
        tip.append(v.options_str())
    for text, _ in seg_annotations(v):
        tip.append(text)
    p = [f'<g class="seg {cls}"><title>{_e(chr(10).join(tip))}</title>']
    p.append(f'<text class="num" x="72" y="{y + 4:.1f}">#{v.index + 1}</text>')
    if v.dropped:
        p.append(
            f'<line x1="{x1:.1f}" y1="{ly:.1f}" x2="{x2:.1f}" y2="{ly:.1f}" '
            f'stroke="{colour}" stroke-width="1.8"{dash}/>'
        )
        for dx, dy in ((-4.5, -4.5), (-4.5, 4.5)):
            p.append(
                f'<line x1="{x2 + dx:.1f}" y1="{ly + dy:.1f}" x2="{x2 - dx:.1f}" '
                f'y2="{ly - dy:.1f}" stroke="{colour}" stroke-width="2.4"/>'
            )
    else:
        p.append(
            f'<line x1="{x1:.1f}" y1="{ly:.1f}" x2="{x2:.1f}" y2="{ly:.1f}" '
            f'stroke="{colour}" stroke-width="1.8"{dash} marker-end="url(#ah{n}-{cls})"/>'
        )
    p.append(
        f'<text class="lbl" x="{(x1 + x2) / 2:.1f}" y="{ly - 7:.1f}" text-anchor="middle" '
        f'fill="{colour}">{_e(v.label())}</text>'
    )
    ann = seg_annotations(v)
    if ann:
        x = rx + 10
        for text, style in ann:
            p.append(f'<text class="ann {style}" x="{x:.1f}" y="{y + 4:.1f}">{_e(text)}</text>')
            x += (len(text) + 2) * CHAR_W
    p.append("</g>")
    return "".join(p)


# --- the page ------------------------------------------------------------------------------

_KIND_NAMES = {
    "syn": "SYN",
    "data": "data",
    "ack": "ACK",
    "fin": "FIN",
    "rst": "RST",
    "inject": "injected (dashed)",
    "drop": "dropped (✗)",
}


def _contents(ladder: Ladder) -> tuple[list[str], list[str], set[str]]:
    """What the page draws: the kinds of segment (legend order), every mark, and the
    kinds of row."""
    kinds: set[str] = set()
    marks: list[str] = []
    rows: set[str] = set()
    for sec in ladder.sections:
        for r in sec.rows:
            rows.add(r.kind)
            if r.seg is not None:
                kinds.add(seg_class(r.seg))
                for m in seg_marks(r.seg):
                    if m not in marks:
                        marks.append(m)
    return [k for k in _KIND_NAMES if k in kinds], marks, rows


def _legend(kinds: list[str], marks: list[str], rows: set[str]) -> str:
    """Legend entries for what the page holds, and nothing else."""
    p = ['<div class="legend">']
    for cls in kinds:
        p.append(f'<span><b style="background:{_COLOURS[cls]}"></b>{_e(_KIND_NAMES[cls])}</span>')
    other = [m for m in marks if m not in ("dropped", "injected", "inject")]
    if other:
        p.append(f"<span>[mark]: {_e(', '.join(other))}</span>")
    if rows & {"state", "init"}:
        p.append(
            '<span><i class="b-ESTABLISHED" style="background:#42a5f5"></i>'
            "a side's state (band along its lifeline)</span>"
        )
    if "cc" in rows:
        p.append("<span>congestion phase (dashed amber box)</span>")
    if rows & {"pcc", "pev"}:
        p.append("<span>peer kernel's congestion and events (red box)</span>")
    if "gap" in rows:
        p.append("<span>… segments left out (dashed grey box)</span>")
    p.append("</div>")
    return "\n".join(p)


def _controls(kinds: list[str], marks: list[str]) -> str:
    """The filters and the rows' spacing; hidden until the script shows them."""
    boxes = "".join(
        f'<label><input type="checkbox" data-k="{k}" checked> {_e(_KIND_NAMES[k])}</label>'
        for k in kinds
    )
    options = "".join(f'<option value="{_e(m.replace(" ", "-"))}">{_e(m)}</option>' for m in marks)
    return (
        '<div id="controls" hidden><fieldset>Rows: <label><input type="radio" name="mode" '
        'value="order" checked> by order</label><label><input type="radio" name="mode" '
        'value="time"> by time</label><button type="button" data-zoom="2">zoom in</button> '
        '<button type="button" data-zoom="0.5">zoom out</button></fieldset><fieldset>'
        '<label>Connection <input id="fconn" type="search" placeholder="address, port or #n">'
        f"</label></fieldset><fieldset>Show: {boxes}</fieldset><fieldset><label>Marked "
        f'<select id="fmark"><option value="">anything</option>{options}</select></label>'
        "</fieldset></div>"
    )


def _page_head(ladder: Ladder, nav: str, pages_notice: str) -> str:
    """The page up to the index: title, legend, how to read it, notices, controls."""
    page_title = ladder.title or "netemu ladder"
    if ladder.page > 1:
        page_title += f" (page {ladder.page})"
    kinds, marks, rows = _contents(ladder)
    p = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        f"<title>{_e(page_title)}</title>",
        f"<style>{CSS}</style></head><body>",
        f"<h1>{_e(page_title)}</h1>",
        nav,
        _legend(kinds, marks, rows),
    ]
    how = (
        "Sequence and acknowledgment numbers are relative to each side's ISN, as in "
        "Wireshark. Click an arrow for its fields, options, marks and raw bytes; hover a "
        "state for its cause. Rows go by order; “by time” spaces them by time instead."
    )
    if "cc" in rows:
        how += (
            " Congestion phases (lower case, dashed) are our side's slow-start, "
            "congestion-avoidance, fast-recovery and loss, with cwnd and ssthresh in bytes."
        )
    p.append(f"<p>{_e(how)}</p>")
    for text in (ladder.notice(), pages_notice):
        if text:
            p.append(f'<p class="notice">{_e(text)}</p>')
    if not ladder.sections:
        p.append("<p>No TCP segments.</p>")
    p.append(_controls(kinds, marks))
    return "\n".join(p) + "\n"


_INDEX_HEAD = (
    "#",
    "conversation",
    "segments",
    "bytes →",
    "bytes ←",
    "start (s)",
    "duration (s)",
    "dropped",
    "resent",
    "left side's states",
    "right side's states",
)


def _index_chunks(ladder: Ladder, where: dict[int, str] | None) -> Iterator[str]:
    """The index: every conversation (``where``: the file each drawn one is in, "" for
    this page) or this page's, with its counts and a link to its section."""
    if where is None:
        convs = [s.conv for s in ladder.sections]
        where = {c.number: "" for c in convs}
    else:
        convs = ladder.everything
    if not convs:
        return
    shown = convs[: max(ladder.limits.max_listed, len(ladder.sections))]
    yield (
        f'<h2 id="index">Connections ({len(convs):,})</h2>\n<table class="index"><tr>'
        + "".join(
            f'<th class="l">{h}</th>'
            if h in ("conversation", "#") or "states" in h
            else f"<th>{h}</th>"
            for h in map(_e, _INDEX_HEAD)
        )
        + "</tr>\n"
    )
    for i in range(0, len(shown), 500):
        yield "".join(_index_row(c, ladder.t0, where) for c in shown[i : i + 500])
    yield "</table>\n"
    if len(shown) < len(convs):
        rest = convs[len(shown) :]
        yield (
            f"<p>… and {len(rest):,} more ({sum(c.count for c in rest):,} segments), "
            f"beyond {len(shown):,} lines.</p>\n"
        )


def _index_row(conv: Conversation, t0: float, where: dict[int, str]) -> str:
    d = index_row(conv, t0)
    n = conv.number
    place = where.get(n)
    link = f'<a href="{_e(place)}#c{n}">#{n}</a>' if place is not None else f"#{n} (not drawn)"
    cells = (
        f'<td class="l">{link}</td><td class="l">{_e(d["title"])}</td>'
        f"<td>{d['segs']:,}</td><td>{d['lr']:,}</td><td>{d['rl']:,}</td>"
        f"<td>{d['start']:.3f}</td><td>{d['dur']:.3f}</td><td>{d['drop']:,}</td>"
        f'<td>{d["rtx"]:,}</td><td class="l st">{_e(" → ".join(d["ls"]) or "-")}</td>'
        f'<td class="l st">{_e(" → ".join(d["rs"]) or "-")}</td>'
    )
    return f'<tr data-n="{n}" data-title="{_e(d["title"])}">{cells}</tr>\n'


def _section_html(trace: Trace, ladder: Ladder, sec: Section) -> str:
    """A conversation: its header, ladder, graphs' place, and its data."""
    n = sec.conv.number
    head = (
        f'<section class="conv" id="c{n}" data-n="{n}" data-title="{_e(sec.title)}" '
        f'data-left="{_e(sec.left_role)}" data-right="{_e(sec.right_role)}">'
        f"<h2>{_e(sec.title)}</h2>\n"
    )
    notice = sec.notice(ladder.limits)
    if notice:
        head += f'<p class="notice">{_e(notice)}</p>\n'
    data = {
        "segs": section_segments(sec, ladder.t0),
        "graphs": section_series(trace, sec.conv, ladder.t0),
    }
    return (
        head
        + _svg_section(sec, n)
        + '\n<div class="graphs"></div>\n'
        + f'<script type="application/json" id="d{n}">{page_json(data)}</script>\n</section>\n'
    )


def _html_chunks(
    trace: Trace,
    ladder: Ladder,
    nav: str = "",
    where: dict[int, str] | None = None,
    pages_notice: str = "",
) -> Iterator[str]:
    """One page of the ladder, a piece at a time (one section at most)."""
    yield _page_head(ladder, nav, pages_notice)
    yield from _index_chunks(ladder, where)
    for sec in ladder.sections:
        yield _section_html(trace, ladder, sec)
    if ladder.other_frames:
        yield f"<p>{_e(ladder.skipped_text())}.</p>\n"
    yield "<details><summary>Text ladder</summary><pre>"
    sep = ""
    for line in text_lines(ladder):
        yield sep + _e(line_str(line))
        sep = "\n"
    yield (
        '</pre></details>\n<aside id="detail" hidden><button type="button">close</button>'
        f'<div id="detail-body"></div></aside>\n<script>{JS}</script>\n</body></html>\n'
    )


def render_ladder_html(
    trace: Trace,
    *,
    roles: tuple[str, str] = DEFAULT_ROLES,
    title: str | None = None,
    extra_states: Iterable[StateRecord] = (),
    limits: LadderLimits | None = None,
) -> str:
    """A self-contained HTML page: one inline SVG ladder per conversation, an index,
    graphs, a segment's detail on click, and the text ladder at the bottom; one page,
    within ``limits`` (``DEFAULT_LIMITS``): the conversations beyond are in the
    index, not drawn."""
    ladder = build_ladder(trace, roles=roles, title=title, extra_states=extra_states, limits=limits)
    where = {s.conv.number: "" for s in ladder.sections}
    return "".join(_html_chunks(trace, ladder, where=where))


def page_name(path: Path, page: int) -> str:
    """The file of a page: ladder.html, ladder-2.html, …"""
    return path.name if page == 1 else f"{path.stem}-{page}{path.suffix}"


def _nav(path: Path, page: int, total: int | None, has_next: bool) -> str:
    if total == 1:
        return ""
    links = []
    if page > 1:
        links.append(f'<a href="{_e(page_name(path, 1))}#index">index (page 1)</a>')
        links.append(f'<a href="{_e(page_name(path, page - 1))}">← page {page - 1}</a>')
    if total is not None:
        links += [f'<a href="{_e(page_name(path, k))}">page {k}</a>' for k in range(2, total + 1)]
    elif has_next:
        links.append(f'<a href="{_e(page_name(path, page + 1))}">page {page + 1} →</a>')
    return '<p class="nav">' + " ".join(links) + "</p>"


def write_ladder_html(
    trace: Trace,
    path: str | os.PathLike[str],
    *,
    roles: tuple[str, str] = DEFAULT_ROLES,
    title: str | None = None,
    extra_states: Iterable[StateRecord] = (),
    limits: LadderLimits | None = None,
    max_pages: int = MAX_PAGES,
) -> list[Path]:
    """Write ladder.html atomically, a section at a time; a trace beyond ``limits``
    goes on over up to ``max_pages`` files (ladder-2.html, …: ``page_name``), the
    first with the index of every conversation. Returns the files, first first."""
    path = Path(path)
    pages = ladder_pages(
        trace,
        roles=roles,
        title=title,
        extra_states=extra_states,
        limits=limits,
        max_pages=max_pages,
    )
    first = next(pages)
    where = {s.conv.number: "" for s in first.sections}
    written = [path]
    cur = next(pages, None)
    while cur is not None:
        nxt = next(pages, None)
        name = page_name(path, cur.page)
        where.update((s.conv.number, name) for s in cur.sections)
        nav = _nav(path, cur.page, None, nxt is not None)
        convs = [s.conv.number for s in cur.sections]
        notice = (
            f"Page {cur.page} of a large trace's ladder: conversations #{convs[0]} to "
            f"#{convs[-1]}. The index of every conversation is on page 1."
        )
        _write(path.with_name(name), _html_chunks(trace, cur, nav, None, notice))
        written.append(path.with_name(name))
        cur = nxt
    total = len(written)
    notice = ""
    if total > 1:
        notice = (
            f"This ladder goes on over {total} pages (at most "
            f"{first.limits.max_conversations:,} conversations and "
            f"{first.limits.max_total_rows:,} rows a page): the index below links "
            "every conversation drawn to its page."
        )
    _write(path, _html_chunks(trace, first, _nav(path, 1, total, False), where, notice))
    return written


def _write(path: Path, chunks: Iterable[str]) -> None:
    with atomic_open(path) as f:
        for chunk in chunks:
            f.write(chunk.encode("utf-8"))
