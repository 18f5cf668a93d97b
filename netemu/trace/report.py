"""report.json and JUnit XML.

``write_report`` records one scenario run: its name, result and steps (as the
runner hands them in), every TCP segment in Wireshark's relative numbers, our
state changes, our congestion events (every one, not only those the ladder
draws), the peer's observed states and the notes. ``write_junit`` writes
one JUnit file for any number of scenarios (one testcase each), for CI systems.
Both write atomically.
"""

from __future__ import annotations

import datetime as _dt
import json
import os
import re
import socket
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from .. import __version__
from .analysis import analyze
from .atomic import atomic_open, atomic_write_bytes
from .conv import Conversation, SegmentView, conversations, ep_str, normalize_state
from .record import StateRecord, Trace

REPORT_FORMAT = 1


def _r(x: float) -> float:
    return round(x, 6)


def summarize_segments(trace: Trace) -> list[dict[str, Any]]:
    """One dict per TCP segment, in frame order: frame (pcap frame number), t (s since
    the trace started), direction, conversation, src, dst, flags ("SYN+ACK"), seq and
    ack relative to each side's ISN (ack None without the ACK flag), raw seq/ack,
    len, win (scaled, as Wireshark's tcp.window_size) and win_raw, mark ("dropped",
    "injected", …), note, and Wireshark's TCP analysis (``analysis``: a list of marks;
    ``dup_ack``, ``sack`` and ``dsack`` when they apply)."""
    return _segments(trace, conversations(trace, keep_segments=False, place_notes=False)[0])


def segment_json(v: SegmentView, number: int, t0: float) -> dict[str, Any]:
    """One segment as report.json and ``netemu show --json`` write it."""
    a = v.analysis
    seg = {
        "frame": v.index + 1,
        "t": _r(v.t - t0),
        "direction": v.frame.direction,
        "conversation": number,
        "src": ep_str(v.src),
        "dst": ep_str(v.dst),
        "flags": v.flags,
        "seq": v.rel_seq,
        "ack": v.rel_ack,
        "len": v.length,
        "win": v.window,
        "win_raw": v.tcp.window,
        "seq_raw": v.tcp.seq,
        "ack_raw": v.tcp.ack,
        "mark": v.mark,
        "note": v.frame.note,
        "analysis": list(a.marks) if a is not None else [],
    }
    if a is not None:
        seg.update(a.as_json())
    return seg


def state_json(s: StateRecord, t0: float) -> dict[str, Any]:
    """One state change as report.json and ``netemu show --json`` write it."""
    return {
        "t": _r(s.t - t0),
        "conn": s.conn,
        "local": ep_str(s.local),
        "remote": ep_str(s.remote),
        "old": s.old,
        "new": s.new,
        "cause": s.cause,
        "inferred": s.inferred,
    }


def _segments(trace: Trace, convs: list[Conversation]) -> list[dict[str, Any]]:
    # Each conversation's segments are read again one at a time (nothing but the
    # dicts is kept: a parsed segment holds a copy of its payload).
    out: list[dict[str, Any]] = []
    for conv in convs:
        for v in analyze(conv.iter_segments(trace)):
            out.append(segment_json(v, conv.number, trace.start))
    out.sort(key=lambda d: d["frame"])
    return out


def build_report(
    *,
    scenario: str,
    result: str,
    trace: Trace | None = None,
    steps: Sequence[Mapping[str, Any]] = (),
    duration: float | None = None,
    error: str | None = None,
    extra: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """The report as a dict (what ``write_report`` writes)."""
    rep: dict[str, Any] = {
        "format": REPORT_FORMAT,
        "netemu": __version__,
        "scenario": scenario,
        "result": result,
        "error": error,
        "duration": None if duration is None else _r(duration),
        "steps": [dict(s) for s in steps],
    }
    if trace is not None:
        rep.update(_trace_part(trace))
    if extra:
        rep.update(extra)
    return rep


def _trace_part(trace: Trace) -> dict[str, Any]:
    """What the report says of a trace: its conversations, segments, states, congestion
    events (both sides), the peer's states and events, and the notes (in that order)."""
    t0 = trace.start
    convs, other = conversations(trace, keep_segments=False, place_notes=False)
    return {
        "started_at": _dt.datetime.fromtimestamp(trace.start_wall, _dt.UTC).isoformat(),
        "emulator_ip": trace.emulator_ip,
        "peer_ip": trace.peer_ip,
        "conversations": [
            {
                "number": c.number,
                "left": ep_str(c.left),
                "right": ep_str(c.right),
                "conn": c.conn_name,
                "segments": c.count,
            }
            for c in convs
        ],
        "segments": _segments(trace, convs),
        "other_frames": other,
        "skipped": other.reasons,
        "states": [state_json(s, t0) for s in trace.states],
        "congestion": _congestion(trace, convs),
        "peer_state_source": {
            "source": trace.peer_source or None,
            "note": trace.peer_source_note or None,
            "tracefs_instance": trace.peer_trace_instance or None,
        },
        "peer_states": _peer_states(trace),
        "peer_events": [
            {
                "t": _r(e.t - t0),
                "role": e.role,
                "local": ep_str(e.local),
                "remote": ep_str(e.remote),
                "kind": e.kind,
                "detail": e.detail,
            }
            for e in trace.peer_events
        ],
        "notes": [{"t": _r(n.t - t0), "kind": n.kind, "text": n.text} for n in trace.notes],
    }


def capture_report(trace: Trace, capture: str, damage: str | None = None) -> dict[str, Any]:
    """``netemu show --json``: what a run's report.json says of its trace (the same
    builder: conversations numbered as Wireshark's ``tcp.stream``, segments with
    their conversation, the inferred states as ``states``), for any capture, with
    ``frames`` (every frame of the file read), ``skipped`` (those that hold no TCP
    segment, by reason) and ``damage`` (where the file is damaged, or null)."""
    rep: dict[str, Any] = {
        "format": REPORT_FORMAT,
        "netemu": __version__,
        "capture": capture,
        "frames": len(trace.frames),
        "damage": damage,
    }
    rep.update(_trace_part(trace))
    return rep


def _congestion(trace: Trace, convs: Sequence[Conversation]) -> list[dict[str, Any]]:
    """Both sides' congestion events, in time order, each with its conversation's number."""
    t0 = trace.start
    conv_of = {id(cc): c.number for c in convs for cc in c.congestion}
    conv_of.update({id(pc): c.number for c in convs for pc in c.peer_congestion})
    # Both sides: netemu's own endpoint ("side": "netemu", its phase names) and the
    # peer kernel's sockets ("side": "peer", from tcp_probe / tcp_cong_state_set:
    # srtt_us and the kernel's congestion state as "phase").
    events: list[dict[str, Any]] = [
        {
            "t": _r(c.t - t0),
            "side": "netemu",
            "conn": c.conn,
            "local": ep_str(c.local),
            "remote": ep_str(c.remote),
            "conversation": conv_of.get(id(c)),
            "cwnd": c.cwnd,
            "ssthresh": c.ssthresh,
            "unit": "bytes",
            "phase": c.phase,
            "cause": c.cause,
        }
        for c in trace.congestion
    ]
    events += [
        {
            "t": _r(c.t - t0),
            "side": "peer",
            "role": c.role,
            "local": ep_str(c.local),
            "remote": ep_str(c.remote),
            "conversation": conv_of.get(id(c)),
            "cwnd": c.cwnd,
            "ssthresh": c.ssthresh,
            "unit": "segments",
            "srtt_us": c.srtt_us,
            "phase": c.ca_state,
            "cause": c.cause,
            **c.info,
        }
        for c in trace.peer_congestion
    ]
    events.sort(key=lambda e: e["t"])
    return events


def _peer_states(trace: Trace) -> list[dict[str, Any]]:
    """The peer kernel's observed socket states, normalized, with the kernel's own name."""
    t0 = trace.start
    return [
        {
            "t": _r(s.t - t0),
            "local": ep_str(s.local),
            "remote": ep_str(s.remote),
            "old": normalize_state(s.old) if s.old else None,
            "state": normalize_state(s.state),
            "kernel_state": s.state,
            "source": s.source,
            "listener": int(s.remote[1]) == 0,
            "info": s.info,
        }
        for s in trace.peer_states
    ]


def write_report(
    path: str | os.PathLike[str],
    *,
    scenario: str,
    result: str,
    trace: Trace | None = None,
    steps: Sequence[Mapping[str, Any]] = (),
    duration: float | None = None,
    error: str | None = None,
    extra: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """Write report.json atomically; returns the dict written. ``result`` is "pass",
    "fail" or "error"; values JSON cannot hold (in steps or sock_diag info) are
    written as their str()."""
    rep = build_report(
        scenario=scenario,
        result=result,
        trace=trace,
        steps=steps,
        duration=duration,
        error=error,
        extra=extra,
    )
    # What json.dumps(rep, indent=2, …) + "\n" gives, written as it is encoded: dumps
    # holds every small piece of the text until it joins them (issue 17, 9: 168 MB of
    # them for 43,500 segments).
    encoder = json.JSONEncoder(indent=2, default=str, ensure_ascii=False)
    with atomic_open(path) as f:
        buf: list[str] = []
        for chunk in encoder.iterencode(rep):
            buf.append(chunk)
            if len(buf) >= 4096:
                f.write("".join(buf).encode("utf-8"))
                buf.clear()
        buf.append("\n")
        f.write("".join(buf).encode("utf-8"))
    return rep


# --- JUnit -----------------------------------------------------------------------------


@dataclass
class JUnitCase:
    """One scenario as a JUnit testcase. ``result``: "pass", "fail", "error" or "skip";
    ``message`` is the one-line reason, ``details`` the body (failed steps, diffs)."""

    name: str
    result: str
    time: float = 0.0
    message: str = ""
    details: str = ""
    classname: str = "netemu.scenarios"
    file: str | None = None
    stdout: str = ""

    @classmethod
    def from_report(
        cls, report: Mapping[str, Any], file: str | None = None, stdout: str = ""
    ) -> JUnitCase:
        """A testcase from a ``build_report``/``write_report`` dict: the message is its
        error or the first failing step's, the details list every failing step."""
        failed = [
            s
            for s in report.get("steps", ())
            if str(s.get("result", s.get("status", ""))).lower() in ("fail", "failed", "error")
        ]
        lines = []
        for s in failed:
            what = s.get("step", s.get("name", s.get("action", "")))
            why = s.get("message", s.get("error", s.get("reason", "")))
            where = s.get("line")
            lines.append(f"{'line ' + str(where) + ': ' if where else ''}{what}: {why}".strip())
        message = report.get("error") or (lines[0] if lines else "")
        return cls(
            name=str(report.get("scenario", "scenario")),
            result=str(report.get("result", "error")),
            time=float(report.get("duration") or 0.0),
            message=str(message or ""),
            details="\n".join(lines),
            file=file,
            stdout=stdout,
        )


_XML_BAD = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ud800-\udfff\ufffe\uffff]")


def _x(s: object) -> str:
    """Text XML 1.0 can hold (control characters dropped)."""
    return _XML_BAD.sub("", str(s))


def render_junit(
    cases: Iterable[JUnitCase], suite_name: str = "netemu", timestamp: float | None = None
) -> bytes:
    cases = list(cases)
    fails = sum(c.result in ("fail", "failed") for c in cases)
    errors = sum(
        c.result not in ("pass", "passed", "fail", "failed", "skip", "skipped") for c in cases
    )
    skips = sum(c.result in ("skip", "skipped") for c in cases)
    total_time = f"{sum(c.time for c in cases):.3f}"
    counts = {
        "tests": str(len(cases)),
        "failures": str(fails),
        "errors": str(errors),
        "skipped": str(skips),
        "time": total_time,
    }
    import xml.etree.ElementTree as ET  # only for --junit: not on every run's path

    root = ET.Element("testsuites", {"name": _x(suite_name), **counts})
    when = (
        _dt.datetime.fromtimestamp(timestamp, _dt.UTC)
        if timestamp is not None
        else _dt.datetime.now(_dt.UTC)
    )
    suite = ET.SubElement(
        root,
        "testsuite",
        {
            "name": _x(suite_name),
            **counts,
            "timestamp": when.strftime("%Y-%m-%dT%H:%M:%S"),
            "hostname": _x(socket.gethostname()),
        },
    )
    for c in cases:
        attrs = {"classname": _x(c.classname), "name": _x(c.name), "time": f"{c.time:.3f}"}
        if c.file:
            attrs["file"] = _x(c.file)
        tc = ET.SubElement(suite, "testcase", attrs)
        if c.result in ("fail", "failed"):
            el = ET.SubElement(tc, "failure", {"message": _x(c.message), "type": "AssertionError"})
            el.text = _x(c.details or c.message)
        elif c.result in ("skip", "skipped"):
            ET.SubElement(tc, "skipped", {"message": _x(c.message)})
        elif c.result not in ("pass", "passed"):
            el = ET.SubElement(tc, "error", {"message": _x(c.message), "type": _x(c.result)})
            el.text = _x(c.details or c.message)
        if c.stdout:
            ET.SubElement(tc, "system-out").text = _x(c.stdout)
    ET.indent(root)
    return ET.tostring(root, encoding="utf-8", xml_declaration=True) + b"\n"


def write_junit(
    path: str | os.PathLike[str],
    cases: Iterable[JUnitCase | Mapping[str, Any]],
    suite_name: str = "netemu",
    timestamp: float | None = None,
) -> None:
    """Write a JUnit XML file atomically: one <testsuite> with one <testcase> per
    scenario. ``cases`` may be JUnitCase objects or report dicts (``build_report``)."""
    norm = [c if isinstance(c, JUnitCase) else JUnitCase.from_report(c) for c in cases]
    atomic_write_bytes(path, render_junit(norm, suite_name, timestamp))
