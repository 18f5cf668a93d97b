"""`netemu bench ladder`: what a run's outputs cost as its trace grows (issue 17, 9).

A synthetic trace (no lab): N connections at once, each a handshake, 64 KiB each way
(1448-byte segments, an ACK every second one), the active close, both sides' states
and three scenario steps a connection, every segment built through the codec, as a
run through netemu's host records them. For N = 30, 100, 300 and 1,000 it writes
trace.pcap, ladder.txt, ladder.html and report.json, and reports, all as ratios to
figures of the same run:

- ``text_per_pcap``, ``html_per_pcap``, ``report_per_pcap``: each file's size over
  trace.pcap's (the pcap holds every frame, whatever the ladder's limits);
- ``ladder_peak_per_trace``: the peak resident memory writing the two ladders rose
  above what the process held before, over the bytes of the trace's frames;
  ``report_peak_per_trace`` the same for report.json;
- ``ladder_s_per_parse``: seconds to write the two ladders over seconds to parse every
  frame of the trace once (what any reading of it costs).

The reference for the limits themselves, ``unlimited`` (measured at 300 connections in
the same run): the ladders drawn whole (``LadderLimits`` = ``UNLIMITED``, every segment
of every conversation, as before issue 17, 9), and ``*_vs_unlimited``, the default
limits' figure over it. Before the limits, 300 connections gave a text ladder of 33 MB
and an HTML one of 102 MB, and writing them raised the peak by 0.28 and 0.62 GB
(4 and 9 times the trace).

Peak memory is read from ``/proc/self/status`` (VmHWM, reset through
``/proc/self/clear_refs``); where that cannot be reset, from tracemalloc (Python's
allocations only). ``python -m netemu.bench.ladder [--quick] [--json]``.
"""

from __future__ import annotations

import contextlib
import gc
import os
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from ..trace import Trace
    from ..trace.record import (
        CongestionRecord,
        FrameRecord,
        NoteRecord,
        PeerStateRecord,
        StateRecord,
    )

    Record = FrameRecord | StateRecord | PeerStateRecord | NoteRecord | CongestionRecord

EMU_IP, PEER_IP = "198.18.0.1", "198.18.0.2"
_MACS = ("02:00:00:00:00:01", "02:00:00:00:00:02")
SCALES = (30, 100, 300, 1000)
QUICK_SCALES = (30, 300)
REFERENCE_SCALE = 300


class _Conn:
    """Records one synthetic connection's frames and events (``synthetic_trace``)."""

    def __init__(
        self, c: int, t: float, dt: float, mss: int, events: list[tuple[float, int, Record]]
    ) -> None:
        from ..wire.tcp import MssOption, NopOption, SackPermittedOption, WindowScaleOption

        self.emu, self.peer = (EMU_IP, 40000 + c), (PEER_IP, 8080)
        self.name, self.t, self.dt, self.events = f"c{c}", t, dt, events
        self.syn_opts = (
            MssOption(mss + 12),
            NopOption(),
            WindowScaleOption(7),
            SackPermittedOption(),
        )
        self.payload = bytes(range(256)) * (mss // 256 + 1)

    def _add(self, rec: Record) -> None:
        self.events.append((self.t, len(self.events), rec))

    def seg(
        self, out: bool, flags: int, seq: int, ack: int, n: int = 0, mark: str | None = None
    ) -> None:
        from ..trace.record import FrameRecord
        from ..wire import IPv4Packet, TcpSegment, build_tcp_frame

        self.t += self.dt
        src, dst = (self.emu, self.peer) if out else (self.peer, self.emu)
        syn = flags & 0x02
        tcp = TcpSegment(
            src[1],
            dst[1],
            seq & 0xFFFFFFFF,
            ack & 0xFFFFFFFF,
            flags,
            64240 if syn else 502,
            self.payload[:n],
            self.syn_opts if syn else (),
        )
        data = build_tcp_frame(_MACS[not out], _MACS[out], IPv4Packet(src[0], dst[0], 6), tcp)
        self._add(FrameRecord(self.t, "out" if out else "in", data, mark))

    def state(self, old: str, new: str, cause: str) -> None:
        from ..trace.record import StateRecord

        self._add(StateRecord(self.t, self.name, self.emu, self.peer, old, new, cause))

    def peer_state(self, old: str, new: str) -> None:
        from ..trace.record import PeerStateRecord

        self._add(PeerStateRecord(self.t, self.peer, self.emu, new, old=old, source="kernel"))

    def note(self, text: str) -> None:
        from ..trace.record import NoteRecord

        self._add(NoteRecord(self.t, text, "step"))

    def cc(self, phase: str, cause: str) -> None:
        from ..trace.record import CongestionRecord

        self._add(
            CongestionRecord(self.t, self.name, self.emu, self.peer, 14480, 7240, phase, cause)
        )

    def run(self, c: int, nbytes: int, mss: int, loss_every: int) -> None:
        e, p = 1000 + 7919 * c, 5000 + 104729 * c
        self.note(f"step {3 * c + 1}: connect {self.name}")
        self.state("CLOSED", "SYN-SENT", "connect()")
        self.seg(True, 0x02, e, 0)
        self.seg(False, 0x12, p, e + 1)
        self.state("SYN-SENT", "ESTABLISHED", "recv SYN+ACK")
        self.seg(True, 0x10, e + 1, p + 1)
        self.peer_state("SYN-RECV", "ESTABLISHED")
        self.note(f"step {3 * c + 2}: send {nbytes} bytes on {self.name}, read {nbytes}")
        ends = {}
        for out, base, other in ((True, e + 1, p + 1), (False, p + 1, e + 1)):
            sent = k = 0
            while sent < nbytes:
                n = min(mss, nbytes - sent)
                k += 1
                if loss_every and k % loss_every == 0:
                    self.seg(out, 0x18, base + sent, other, n, mark="dropped")
                    if out:
                        self.cc("fast-recovery", "3 duplicate ACKs")
                    self.seg(out, 0x18, base + sent, other, n)
                    if out:
                        self.cc("congestion-avoidance", "recovered")
                else:
                    self.seg(out, 0x18, base + sent, other, n)
                sent += n
                if k % 2 == 0 or sent >= nbytes:
                    self.seg(not out, 0x10, other, base + sent)
            ends[out] = base + sent
        e_end, p_end = ends[True], ends[False]
        self.note(f"step {3 * c + 3}: close {self.name}")
        self.state("ESTABLISHED", "FIN-WAIT-1", "close()")
        self.seg(True, 0x11, e_end, p_end)
        self.seg(False, 0x10, p_end, e_end + 1)
        self.state("FIN-WAIT-1", "FIN-WAIT-2", "recv ACK")
        self.peer_state("ESTABLISHED", "CLOSE_WAIT")
        self.peer_state("CLOSE_WAIT", "LAST_ACK")
        self.seg(False, 0x11, p_end, e_end + 1)
        self.state("FIN-WAIT-2", "TIME-WAIT", "recv FIN+ACK")
        self.seg(True, 0x10, e_end + 1, p_end + 1)
        self.peer_state("LAST_ACK", "CLOSE")


def synthetic_trace(
    conns: int = 300,
    nbytes: int = 64 * 1024,
    *,
    mss: int = 1448,
    concurrent: bool = True,
    loss_every: int = 0,
) -> Trace:
    """A Trace of ``conns`` connections from netemu (198.18.0.1:40000 …) to a peer
    (198.18.0.2:8080), each sending ``nbytes`` each way and closing: frames built
    through the codec, our states and the peer kernel's, a step note before each
    phase (connect, send, close). ``concurrent``: the connections' segments interleave
    over one stretch of time (every step's note then falls in every conversation);
    else one after another. ``loss_every``: every that many data segments one is
    dropped (marked, as an impairment does) and sent again, with a congestion event
    for each loss (fast-recovery) and its end; the resent copy has no note."""
    from ..trace.record import (
        CongestionRecord,
        FrameRecord,
        NoteRecord,
        PeerStateRecord,
        StateRecord,
        Trace,
    )

    trace = Trace(start=0.0, start_wall=1_700_000_000.0, emulator_ip=EMU_IP, peer_ip=PEER_IP)
    events: list[tuple[float, int, Record]] = []  # (t, order, record)
    dt = conns * 1e-5 if concurrent else 1e-4
    span = dt * (4 * nbytes // mss + 40)
    for c in range(conns):
        _Conn(c, c * 1e-5 if concurrent else c * span, dt, mss, events).run(
            c, nbytes, mss, loss_every
        )
    events.sort(key=lambda ev: (ev[0], ev[1]))
    lists: dict[type, list[Any]] = {
        FrameRecord: trace.frames,
        StateRecord: trace.states,
        PeerStateRecord: trace.peer_states,
        NoteRecord: trace.notes,
        CongestionRecord: trace.congestion,
    }
    for _, _, rec in events:
        lists[type(rec)].append(rec)
    return trace


class PeakMeter:
    """The peak memory a piece of work raises above what the process held before it:
    VmHWM, reset through /proc/self/clear_refs; tracemalloc's peak where that fails."""

    def __init__(self) -> None:
        self.how = "rss"
        try:
            self._reset()
        except OSError:
            self.how = "tracemalloc"

    @staticmethod
    def _kib(field: str) -> int:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith(field + ":"):
                    return int(line.split()[1])
        raise OSError(f"no {field} in /proc/self/status")

    def _reset(self) -> int:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
        return self._kib("VmRSS")

    def measure(self, fn: Callable[[], object]) -> tuple[int, float]:
        """(bytes the peak rose by, seconds) of ``fn()``."""
        gc.collect()
        if self.how == "rss":
            base = self._reset()
            t0 = time.perf_counter()
            fn()
            seconds = time.perf_counter() - t0
            return max(0, self._kib("VmHWM") - base) * 1024, seconds
        import tracemalloc

        tracemalloc.start()
        try:
            t0 = time.perf_counter()
            fn()
            seconds = time.perf_counter() - t0
            return tracemalloc.get_traced_memory()[1], seconds
        finally:
            tracemalloc.stop()


def _parse_seconds(trace: Trace) -> float:
    from ..wire import MalformedPacket, parse_frame

    t0 = time.perf_counter()
    for fr in trace.frames:
        with contextlib.suppress(MalformedPacket):
            parse_frame(fr.data, verify=False)
    return time.perf_counter() - t0


def measure(conns: int, meter: PeakMeter, limits: Any = None) -> dict[str, Any]:
    """The four outputs of a trace of ``conns`` connections of 64 KiB each way, as ratios (module docstring)."""
    from ..trace.ladder import write_ladder_html, write_ladder_text
    from ..trace.pcap import write_pcap
    from ..trace.report import write_report

    trace = synthetic_trace(conns)
    frames = trace.frames
    trace_bytes = sum(len(fr.data) for fr in frames)
    parse_s = min(_parse_seconds(trace) for _ in range(2))
    with tempfile.TemporaryDirectory(prefix="netemu-bench-ladder-") as tmp:
        d = Path(tmp)
        write_pcap(trace, d / "trace.pcap")

        def ladders() -> None:
            write_ladder_text(trace, d / "ladder.txt", limits=limits)
            write_ladder_html(trace, d / "ladder.html", limits=limits)

        ladder_peak, ladder_s = meter.measure(ladders)
        report_peak, _ = meter.measure(
            lambda: write_report(d / "report.json", scenario="bench", result="pass", trace=trace)
        )
        size = {
            name: os.path.getsize(d / name)
            for name in ("trace.pcap", "ladder.txt", "ladder.html", "report.json")
        }
    pcap = size["trace.pcap"]
    return {
        "connections": conns,
        "segments": len(frames),
        "text_per_pcap": round(size["ladder.txt"] / pcap, 4),
        "html_per_pcap": round(size["ladder.html"] / pcap, 4),
        "report_per_pcap": round(size["report.json"] / pcap, 4),
        "ladder_peak_per_trace": round(ladder_peak / trace_bytes, 3),
        "report_peak_per_trace": round(report_peak / trace_bytes, 3),
        "ladder_s_per_parse": round(ladder_s / parse_s, 2),
    }


def run(quick: bool = False) -> dict[str, Any]:
    from ..trace.ladder import UNLIMITED

    meter = PeakMeter()
    scales = [measure(n, meter) for n in (QUICK_SCALES if quick else SCALES)]
    ref = measure(REFERENCE_SCALE, meter, UNLIMITED)
    ours = next(s for s in scales if s["connections"] == REFERENCE_SCALE)
    vs = {
        f"{k}_vs_unlimited": round(ours[k] / ref[k], 4) if ref[k] else None
        for k in ("text_per_pcap", "html_per_pcap", "ladder_peak_per_trace", "ladder_s_per_parse")
    }
    return {"scales": scales, "unlimited": ref, **vs, "memory_from": meter.how}


def render(r: dict[str, Any]) -> str:
    lines = [
        "ladder: outputs of N connections, 64 KiB each way (ratios to the same run's "
        f"pcap, trace and parse; memory from {r['memory_from']})",
        "  conns  segments  text/pcap  html/pcap  report/pcap  ladder peak/trace  "
        "report peak/trace  ladder s/parse",
    ]
    for s in [*r["scales"], {**r["unlimited"], "connections": f"{r['unlimited']['connections']}*"}]:
        lines.append(
            f"  {s['connections']:>5}  {s['segments']:>8}  {s['text_per_pcap']:>9}  "
            f"{s['html_per_pcap']:>9}  {s['report_per_pcap']:>11}  "
            f"{s['ladder_peak_per_trace']:>17}  {s['report_peak_per_trace']:>17}  "
            f"{s['ladder_s_per_parse']:>14}"
        )
    lines.append(
        "  (* every segment drawn: LadderLimits UNLIMITED, the ladders as before issue 17, 9)"
    )
    lines.append(
        f"  at {REFERENCE_SCALE}: text {r['text_per_pcap_vs_unlimited']}, html "
        f"{r['html_per_pcap_vs_unlimited']}, ladder peak "
        f"{r['ladder_peak_per_trace_vs_unlimited']}, time "
        f"{r['ladder_s_per_parse_vs_unlimited']} of unlimited's"
    )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    import argparse
    import json

    ap = argparse.ArgumentParser(
        prog="python -m netemu.bench.ladder", description=__doc__.splitlines()[0]
    )
    ap.add_argument("--quick", action="store_true", help="30 and 300 connections only")
    ap.add_argument("--json", action="store_true", help="print the result as JSON")
    args = ap.parse_args(argv)
    r = run(quick=args.quick)
    print(json.dumps(r, indent=2) if args.json else render(r))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
