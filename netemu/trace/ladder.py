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
SVG (``ladder.html``: an index, rows by order or by time, a segment's detail on
click, state bands, graphs per connection and filters, from its own inline script and
data; no external fetches; a large trace over several pages).

A large trace is drawn within ``LadderLimits`` (docs/trace.md, "Large traces"): a
conversation of more than ``max_rows`` rows is summarised (its first and last rows,
every event with a little context, one line for each stretch left out), and the
conversations beyond ``max_conversations`` or ``max_total_rows`` are listed in a
table instead of drawn. The pcap and report.json are never cut. Segments are read
from the trace one conversation at a time and only those drawn are kept, so the
memory a ladder takes is bounded by the limits, not by the trace.

The model is ``ladder_model``; the renderers ``ladder_text`` and ``ladder_html``.
This module names what the runs and ``netemu show`` use.
"""

from .ladder_html import render_ladder_html, write_ladder_html
from .ladder_model import DEFAULT_LIMITS, UNLIMITED, LadderLimits, build_ladder
from .ladder_text import (
    ladder_width,
    print_ladder,
    render_ladder_text,
    render_ladder_texts,
    write_ladder_text,
)

__all__ = [
    "DEFAULT_LIMITS",
    "UNLIMITED",
    "LadderLimits",
    "build_ladder",
    "ladder_width",
    "print_ladder",
    "render_ladder_html",
    "render_ladder_text",
    "render_ladder_texts",
    "write_ladder_html",
    "write_ladder_text",
]
