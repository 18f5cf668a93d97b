"""The ladder as a self-contained HTML page (``ladder.html``): one inline SVG per
conversation, hover tooltips with raw numbers and options, the text ladder at the
bottom. No scripts, no external fetches.

Layer rule: draws a ``Ladder`` (``ladder_model``); the text ladder is ``ladder_text``'s.
"""

from __future__ import annotations

import html
import os
from collections.abc import Iterable, Iterator

from .atomic import atomic_open
from .conv import SegmentView, ep_str
from .ladder_model import (
    DEFAULT_ROLES,
    Ladder,
    LadderLimits,
    Row,
    Section,
    build_ladder,
    seg_annotations,
    seg_class,
)
from .ladder_text import LISTED_HEAD, line_str, listed_row, note_text, text_lines
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
    lx, rx, width = _svg_layout(sec)
    height = HEAD_H + ROW_H * (len(sec.rows) + 1)
    p = _svg_head(sec, n, lx, rx, width, height)
    for i, r in enumerate(sec.rows):
        y = HEAD_H + ROW_H * i + ROW_H * 0.5  # row middle
        p.append(f'<text class="time" x="10" y="{y + 4:.1f}">{r.t:.3f}</text>')
        p.extend(_svg_row(r, n, lx, rx, y, width))
    p.append("</svg>")
    return "\n".join(p)


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
        f'<svg width="{width}" height="{height}" viewBox="0 0 {width} {height}" '
        f'role="img" aria-label="{_e(sec.title)}">'
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


def _html_chunks(ladder: Ladder) -> Iterator[str]:
    """ladder.html, a piece at a time (one section's SVG at most)."""
    yield _page_head(ladder)
    for n, sec in enumerate(ladder.sections):
        head = f"<h2>{_e(sec.title)}</h2>\n"
        notice = sec.notice(ladder.limits)
        if notice:
            head += f'<p class="notice">{_e(notice)}</p>\n'
        yield head + _svg_section(sec, n) + "\n"
    if ladder.listed or ladder.unlisted:
        yield from _listed_chunks(ladder)
    if ladder.other_frames:
        yield f"<p>{_e(ladder.skipped_text())}.</p>\n"
    yield "<details><summary>Text ladder</summary><pre>"
    sep = ""
    for line in text_lines(ladder):
        yield sep + _e(line_str(line))
        sep = "\n"
    yield "</pre></details>\n</body></html>\n"


def _page_head(ladder: Ladder) -> str:
    """The page up to the first section: title, legend, how to read it, the notice."""
    page_title = ladder.title or "netemu ladder"
    p = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        f"<title>{_e(page_title)}</title>",
        f"<style>{_CSS}</style></head><body>",
        f"<h1>{_e(page_title)}</h1>",
        '<div class="legend">',
    ]
    for cls, name in (
        ("syn", "SYN"),
        ("data", "data"),
        ("ack", "ACK"),
        ("fin", "FIN"),
        ("rst", "RST"),
        ("inject", "injected (dashed)"),
        ("drop", "dropped (✗)"),
    ):
        p.append(f'<span><b style="background:{_COLOURS[cls]}"></b>{_e(name)}</span>')
    p.append("</div>")
    p.append(
        "<p>Sequence and acknowledgment numbers are relative to each side's ISN, as in "
        "Wireshark. Hover an arrow for raw numbers and options, a state for its cause. "
        "Congestion phases (lower case, dashed) are our side's slow-start, "
        "congestion-avoidance, fast-recovery and loss, with cwnd and ssthresh in bytes."
        "</p>"
    )
    notice = ladder.notice()
    if notice:
        p.append(
            f'<p class="notice">{_e(notice)}'
            + (
                ' <a href="#listed">The conversations not drawn.</a>'
                if ladder.listed or ladder.unlisted
                else ""
            )
            + "</p>"
        )
    if not ladder.sections:
        p.append("<p>No TCP segments.</p>")
    return "\n".join(p) + "\n"


def _listed_chunks(ladder: Ladder) -> Iterator[str]:
    """The table of the conversations not drawn (500 rows a piece), and how many more."""
    rest = len(ladder.listed) + ladder.unlisted
    yield (
        f'<h2 id="listed">{rest:,} more conversation{"s" if rest != 1 else ""}, '
        'not drawn</h2>\n<table class="listed"><tr>'
        + "".join(f"<th>{_e(h)}</th>" for h in LISTED_HEAD)
        + "</tr>\n"
    )
    for i in range(0, len(ladder.listed), 500):
        yield "".join(
            "<tr>" + "".join(f"<td>{_e(c)}</td>" for c in listed_row(conv, ladder.t0)) + "</tr>\n"
            for conv in ladder.listed[i : i + 500]
        )
    yield "</table>\n"
    if ladder.unlisted:
        yield (
            f"<p>… and {ladder.unlisted:,} more ({ladder.unlisted_segments:,} segments), "
            f"beyond {ladder.limits.max_listed:,} lines.</p>\n"
        )


def render_ladder_html(
    trace: Trace,
    *,
    roles: tuple[str, str] = DEFAULT_ROLES,
    title: str | None = None,
    extra_states: Iterable[StateRecord] = (),
    limits: LadderLimits | None = None,
) -> str:
    """A self-contained HTML page: one inline SVG ladder per conversation, hover
    tooltips with raw numbers and options, and the text ladder at the bottom; within
    ``limits`` (``DEFAULT_LIMITS``)."""
    ladder = build_ladder(trace, roles=roles, title=title, extra_states=extra_states, limits=limits)
    return "".join(_html_chunks(ladder))


def write_ladder_html(
    trace: Trace,
    path: str | os.PathLike[str],
    *,
    roles: tuple[str, str] = DEFAULT_ROLES,
    title: str | None = None,
    extra_states: Iterable[StateRecord] = (),
    limits: LadderLimits | None = None,
) -> None:
    """Write ladder.html atomically, a section at a time."""
    ladder = build_ladder(trace, roles=roles, title=title, extra_states=extra_states, limits=limits)
    with atomic_open(path) as f:
        for chunk in _html_chunks(ladder):
            f.write(chunk.encode("utf-8"))
