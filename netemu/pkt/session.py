"""One .pkt run, end to end, like ``netemu.scenario.session.run_scenario``: lab up,
kernel agent, host, the script, then the run directory (trace.pcap, ladder.txt,
ladder.html, report.json) and the lab down."""

from __future__ import annotations

import asyncio
import shlex
import socket
import sys
import time
from pathlib import Path
from typing import Any

from .load import PktScript
from .model import Command


async def run_pkt(sc: PktScript, run_dir: Path, *, on_step: Any = None,
                  strict_timing: bool = True, tolerance_usecs: int | None = None,
                  seed: int | None = None, write: bool = True) -> Any:
    """Run a loaded script in a fresh lab; returns a ``netemu.scenario.session.Outcome``
    (``.report`` also holds ``timing``: every checked time, and ``notes``)."""
    t0 = time.monotonic()
    cwd = Path(sc.path).resolve().parent
    # System calls run on threads of this process: with Python's default GIL switch
    # interval (5 ms) each call's hand-back waits for it (~2 ms a call measured here,
    # where packetdrill's calls take microseconds); 50 us makes it ~0.1 ms.
    switch = sys.getswitchinterval()
    sys.setswitchinterval(5e-5)
    seen: dict[str, Any] = {}  # how far it got: an interrupted run writes that
    try:
        return await _run_pkt(sc, run_dir, cwd, t0, on_step=on_step, strict_timing=strict_timing,
                              tolerance_usecs=tolerance_usecs, seed=seed, write=write,
                              seen=seen)
    except (asyncio.CancelledError, KeyboardInterrupt, SystemExit):
        # Ctrl-C, SIGTERM/SIGHUP: the run directory keeps what was seen (issue 17, 6),
        # as a scenario's does (scenario/session.py Progress).
        if write and seen.get("trace") is not None:
            from ..lab.core import signals_deferred

            with signals_deferred():
                runner = seen.get("runner")
                results = [*seen.get("results", []), *(runner.results if runner else [])]
                where = f" at line {results[-1].line}" if results else ""
                _write(sc, run_dir, seen["trace"], results, time.monotonic() - t0,
                       f"interrupted{where} (a signal)", False, [], [], strict_timing,
                       tolerance_usecs, {}, {}, result="interrupted")
                print(f"netemu run: {sc.name}: interrupted{where}; what was seen is in "
                      f"{run_dir}", file=sys.stderr)
        raise
    finally:
        sys.setswitchinterval(switch)


async def _run_pkt(sc: PktScript, run_dir: Path, cwd: Path, t0: float, *, on_step: Any,
                   strict_timing: bool, tolerance_usecs: int | None, seed: int | None,
                   write: bool, seen: dict[str, Any]) -> Any:
    from ..host import Host
    from ..lab.core import Lab
    from ..scenario.session import Outcome
    from ..trace.record import NoteRecord, Trace
    from .commands import run_command
    from .live import LiveKernel
    from .runner import PktRunner, StepResult

    passed = False
    error: str | None = None
    notes: list[str] = []
    results: list[StepResult] = []
    timing: list[Any] = []
    runner: PktRunner | None = None
    phases: dict[str, float] = {}
    phases_extra: dict[str, Any] = {}
    cleanup_result: Any = None
    late: str | None = None
    with Lab(congestion=sc.congestion, peer_ifname="tun0", peer_tx_offload=True,
             mtu=sc.mtu) as lab:
        trace = Trace(emulator_ip=lab.emu_ip, peer_ip=lab.peer_ip)
        seen.update(trace=trace, results=results)
        # Plain sockets, no packet rings: a script moves a handful of segments, and the
        # rings' set-up and teardown cost ~60 ms (as in the YAML runner, docs/lab.md).
        host = await Host(lab.open_link(tx_ring=0, rx_ring=0), lab.emu_ip, lab.emu_mac,
                          trace=trace).start()
        try:
            await host.resolve(lab.peer_ip)
            # packetdrill routes its remote address through tun0 by a route of its own
            # (which scripts change: `ip route change <remote> ... advmss 600`).
            # Added when a command names a route (a process costs ~5 ms a script).
            texts = [ev.action.text for ev in (*sc.script.init_commands, *sc.script.events)
                     if isinstance(ev.action, Command)]
            if any("route" in t for t in texts):
                await run_command(lab, f"ip -4 route add {lab.emu_ip}/32 dev tun0", cwd)
            inits = [*(("script", x, 0) for x in sc.init_scripts),
                     *(("command", ev.action.text, ev.line)  # type: ignore[union-attr]
                       for ev in sc.script.init_commands)]
            for kind, text, line in inits:
                res = StepResult(0, line, "command", text if kind == "command" else
                                 f"--init_scripts {text}")
                argv_text = text if kind == "command" else shlex.quote(text)
                out = await run_command(lab, argv_text, cwd, addresses=(sc, lab))
                res.status = "pass" if out.returncode == 0 else "fail"
                if out.output.strip():
                    notes.extend(f"`{text}`: {ln}" for ln in out.output.strip().splitlines()[-5:])
                if out.returncode != 0:
                    res.message = f"`{text}` exited with status {out.returncode}" + (
                        f": {out.output.strip().splitlines()[-1]}" if out.output.strip() else "")
                results.append(res)
                if on_step is not None:
                    on_step(res)
                if out.returncode != 0:
                    break
            if lab.cc_per_socket:
                trace.notes.append(NoteRecord(time.monotonic(), lab.notes[-1], "note"))
            if all(r.status == "pass" for r in results):
                kernel = LiveKernel(
                    new_socket=lambda f, t, p: _peer_socket(lab, f, t, p),
                    local_ip=lab.peer_ip, remote_ip=lab.emu_ip, script_local=sc.local_ip,
                    script_remote=sc.remote_ip, bind_port=sc.bind_port,
                    connect_port=sc.connect_port,
                    congestion=sc.congestion if lab.cc_per_socket else None, cwd=str(cwd))
                runner = PktRunner(sc, lab=lab, host=host, kernel=kernel, on_step=on_step,
                                   strict_timing=strict_timing, tolerance_usecs=tolerance_usecs,
                                   seed=seed)
                seen["runner"] = runner
                await runner.start()
                phases["setup"] = time.monotonic() - t0
                try:
                    passed = await runner.run()
                finally:
                    await runner.stop()
                    runner.flush_reports()
                    _peer_states_from_packets(trace, lab.peer_ip)
                if sc.cleanup is not None:  # packetdrill runs it, passed or failed
                    ev = sc.cleanup
                    res = StepResult(len(sc.script.events) + 1, ev.line, "command", ev.source)
                    out = await run_command(lab, ev.action.text, cwd,  # type: ignore[union-attr]
                                            addresses=(sc, lab))
                    res.status = "pass" if out.returncode == 0 else "fail"
                    if out.returncode != 0:
                        res.message = (f"cleanup command exited with status {out.returncode}"
                                       + (f": {out.output.strip().splitlines()[-1]}"
                                          if out.output.strip() else ""))
                    cleanup_result = res
                    if on_step is not None:
                        on_step(res)
                phases["script"] = time.monotonic() - t0 - phases["setup"]
                results.extend(runner.results)
                if cleanup_result is not None:
                    results.append(cleanup_result)
                notes.extend(runner.notes)
                timing = [t.as_dict() for t in runner.timing]
                phases_extra["punctuality"] = runner.punctuality()
                late = runner.netemu_late
        except Exception as e:  # the lab, the host: a failed run
            error = f"{type(e).__name__}: {e}"
        finally:
            host.close()
        notes = [*lab.notes, *notes]
    duration = time.monotonic() - t0
    if "script" in phases:
        phases["teardown"] = duration - phases["setup"] - phases["script"]
    failed = [r for r in results if r.status == "fail"]
    if late is not None:
        error = late
    if error is None and failed:
        f = failed[0]
        error = f"line {f.line} {f.action}: {f.message}"
    passed = passed and error is None and not failed
    report: dict[str, Any] = {}
    ladder = ""
    if write:
        ladder, report = _write(sc, run_dir, trace, results, duration, error, passed, notes,
                                timing, strict_timing, tolerance_usecs, phases,
                                {"netemu_late": late, **phases_extra})
    else:
        report = {"scenario": sc.name, "result": "pass" if passed else "fail",
                  "duration": duration, "error": error, "timing": timing, "notes": notes,
                  "phases": phases, "netemu_late": late, **phases_extra,
                  "steps": [r.as_dict() for r in results]}
    return Outcome(sc, passed, run_dir, report, ladder)  # type: ignore[arg-type]


def _peer_socket(lab: Any, family: int, stype: int, proto: int) -> socket.socket:
    """A socket in the peer namespace, made by this thread (a setns there and back,
    ~0.03 ms) instead of the namespace's own thread (~0.5 ms a hop): a script's
    ``socket()`` is an event like any other and must not be late."""
    from ..lab.netns import in_netns

    assert lab.peer_ns is not None
    with in_netns(lab.peer_ns.fd):
        return socket.socket(family, stype, proto)


def _peer_states_from_packets(trace: Any, peer_ip: str) -> None:
    """The kernel's states for the ladder, inferred from the packets after the script
    (``trace.infer``), marked as such: sock_diag is not polled during a .pkt run (its
    socket lock delays the kernel under test), and packetdrill shows no states at all."""
    from ..trace.infer import infer_trace
    from ..trace.record import PeerStateRecord

    try:
        inf = infer_trace(trace)
    except Exception:  # a ladder without the peer's states beats a failed run
        return
    for st in inf.states:
        if st.local[0] == peer_ip:
            trace.peer_states.append(PeerStateRecord(
                st.t, st.local, st.remote, st.new, {"cause": st.cause}, old=st.old,
                source="inferred"))
    trace.peer_states.sort(key=lambda r: r.t)
    trace.peer_source = "inferred"
    trace.peer_source_note = ("inferred from the packets after the script: tracepoints and "
                              "sock_diag are not read during a .pkt run")


def _write(sc: PktScript, run_dir: Path, trace: Any, results: list[Any], duration: float,
           error: str | None, passed: bool, notes: list[str], timing: list[Any],
           strict: bool, tolerance_usecs: int | None,
           phases: dict[str, float], more: dict[str, Any],
           result: str | None = None) -> tuple[str, dict[str, Any]]:
    from ..trace.atomic import atomic_write_text
    from ..trace.ladder import render_ladder_texts, write_ladder_html
    from ..trace.pcap import write_pcap
    from ..trace.report import write_report

    run_dir.mkdir(parents=True, exist_ok=True)
    write_pcap(trace, run_dir / "trace.pcap")
    whole, ladder = render_ladder_texts(trace, title=sc.name)
    atomic_write_text(run_dir / "ladder.txt", whole)
    write_ladder_html(trace, run_dir / "ladder.html", title=sc.name)
    report = write_report(
        run_dir / "report.json", scenario=sc.name,
        result=result or ("pass" if passed else "fail"),
        trace=trace, steps=[r.as_dict() for r in results], duration=duration, error=error,
        extra={"description": sc.description, "source": str(sc.path), "format": "packetdrill",
               "scheduled_seconds": round(sc.scheduled_seconds(), 6),
               "tolerance_usecs": tolerance_usecs if tolerance_usecs is not None
               else sc.tolerance_usecs, "strict_timing": strict, "timing": timing,
               "notes": notes,
               "phases": {k: round(v, 6) for k, v in phases.items()}, **more})
    return ladder, report
