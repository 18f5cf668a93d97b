"""The text ladder fits the terminal: as wide as COLUMNS (never narrower than 80; 100
when COLUMNS is unset and the output is not a terminal). What would not fit is cut
with "…" (a segment's label, a state's text) or, for a note, continued on the next
lines: the terminal never wraps a line of the diagram."""

from __future__ import annotations

import re

import pytest

from netemu.trace import Trace
from netemu.trace.ladder import ladder_width, render_ladder_html, render_ladder_text

from .conftest import ISN_EMU, ISN_PEER, full_conversation

LONG_NOTE = (
    "expect_segment: no segment matched [expect_segment flags=+P, len=1000, dir=in] "
    "within 3 s; seen: ← [.] seq=1 ack=1001 win=501 len=0: flags . (want +P)"
)


def _busy_trace() -> Trace:
    """The full conversation, plus a note and a segment whose label are long."""
    b = full_conversation()
    b.note(0.7, LONG_NOTE, "fail")
    b.inn(0.8, "PA", ISN_PEER + 8, ISN_EMU + 8, b"x" * 1000, win=65535, note="retransmission")
    b.trace.frames.sort(key=lambda f: f.t)
    return b.trace


def _widths(text: str) -> list[int]:
    return [len(line) for line in text.splitlines()]


@pytest.mark.parametrize("columns", [80, 160])
def test_every_line_fits_columns(columns: int, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("COLUMNS", str(columns))
    text = render_ladder_text(_busy_trace(), title="a title")
    assert max(_widths(text)) <= columns, "\n".join(
        line for line in text.splitlines() if len(line) > columns
    )
    # the note is all there, over as many lines as it takes
    flat = re.sub(r"\s+", " ", " ".join(x.strip(" ┄") for x in text.splitlines()))
    assert LONG_NOTE in flat, flat
    long_label = [line for line in text.splitlines() if "seq=8 ack=8 len=1000" in line]
    assert len(long_label) == 1
    if columns == 80:
        # cut to fit between the lifelines, not wrapped
        assert re.search(r"│<─+ PSH\+ACK seq=8 ack=8 len=1000 (win=\d*)?… ─+│", long_label[0]), (
            long_label
        )
        assert max(_widths(text)) > 76  # and as wide as it may be
    else:
        assert re.search(r"len=1000 win=\d+ ─", long_label[0]) and "…" not in long_label[0]
        assert max(_widths(text)) > 100  # wider than the 80 column one, not wrapped


def test_the_default_is_100_columns_and_never_below_80(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("COLUMNS", raising=False)  # and pytest's stdout is no terminal
    assert ladder_width() == 100
    assert max(_widths(render_ladder_text(_busy_trace()))) <= 100
    monkeypatch.setenv("COLUMNS", "40")
    assert ladder_width() == 80
    assert max(_widths(render_ladder_text(_busy_trace()))) <= 80


def test_the_html_keeps_every_label_whole(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("COLUMNS", "80")
    page = render_ladder_html(_busy_trace())
    assert re.search(r">PSH\+ACK seq=8 ack=8 len=1000 win=\d+</text>", page)  # the SVG's
