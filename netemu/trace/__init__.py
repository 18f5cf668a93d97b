"""netemu.trace: what happened in a run — the record, pcap, ladder, reports.

The runner writes a run directory with::

    write_pcap(trace, run / "trace.pcap")
    write_ladder_text(trace, run / "ladder.txt")    # and print_ladder(trace) to the terminal
    write_ladder_html(trace, run / "ladder.html")
    write_report(run / "report.json", scenario=..., result=..., trace=trace, steps=[...])
    write_junit(path, [report, ...])                # --junit

and ``netemu show any.pcap`` is ``show(path, html_out)``.
"""

from .infer import infer_trace, show, trace_from_pcap
from .ladder import (
    print_ladder,
    render_ladder_html,
    render_ladder_text,
    write_ladder_html,
    write_ladder_text,
)
from .pcap import read_pcap, write_pcap
from .record import FrameRecord, NoteRecord, PeerStateRecord, StateRecord, Trace
from .report import JUnitCase, build_report, write_junit, write_report

__all__ = [
    "FrameRecord", "JUnitCase", "NoteRecord", "PeerStateRecord", "StateRecord", "Trace",
    "build_report", "infer_trace", "print_ladder", "read_pcap", "render_ladder_html",
    "render_ladder_text", "show", "trace_from_pcap", "write_junit", "write_ladder_html",
    "write_ladder_text", "write_pcap", "write_report",
]
