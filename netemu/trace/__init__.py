"""netemu.trace: what happened in a run — the record, pcap, ladder, reports.

The runner writes a run directory with::

    write_pcap(trace, run / "trace.pcap")
    write_ladder_text(trace, run / "ladder.txt")    # and print_ladder(trace) to the terminal
    write_ladder_html(trace, run / "ladder.html")
    write_report(run / "report.json", scenario=..., result=..., trace=trace, steps=[...])
    write_junit(path, [report, ...])                # --junit

and ``netemu show any.pcap`` is ``show(path, html_out)``.
"""

from typing import TYPE_CHECKING, Any

# Submodules load on first use (PEP 562): a run needs the record, pcap, ladder and
# report, not state inference (``netemu show``) nor JUnit's XML.
_EXPORTS = {
    "infer": ("infer_trace", "show", "trace_from_pcap"),
    "ladder": (
        "print_ladder",
        "render_ladder_html",
        "render_ladder_text",
        "write_ladder_html",
        "write_ladder_text",
    ),
    "pcap": ("read_pcap", "write_pcap"),
    "record": (
        "CongestionRecord",
        "FrameRecord",
        "NoteRecord",
        "PeerStateRecord",
        "StateRecord",
        "Trace",
    ),
    "report": ("JUnitCase", "build_report", "write_junit", "write_report"),
}
_WHERE = {name: module for module, names in _EXPORTS.items() for name in names}

if TYPE_CHECKING:
    from .infer import infer_trace, show, trace_from_pcap
    from .ladder import (
        print_ladder,
        render_ladder_html,
        render_ladder_text,
        write_ladder_html,
        write_ladder_text,
    )
    from .pcap import read_pcap, write_pcap
    from .record import (
        CongestionRecord,
        FrameRecord,
        NoteRecord,
        PeerStateRecord,
        StateRecord,
        Trace,
    )
    from .report import JUnitCase, build_report, write_junit, write_report


def __getattr__(name: str) -> Any:
    module = _WHERE.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    import importlib

    value = getattr(importlib.import_module(f"{__name__}.{module}"), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *_WHERE})


__all__ = [
    "CongestionRecord",
    "FrameRecord",
    "JUnitCase",
    "NoteRecord",
    "PeerStateRecord",
    "StateRecord",
    "Trace",
    "build_report",
    "infer_trace",
    "print_ladder",
    "read_pcap",
    "render_ladder_html",
    "render_ladder_text",
    "show",
    "trace_from_pcap",
    "write_junit",
    "write_ladder_html",
    "write_ladder_text",
    "write_pcap",
    "write_report",
]
