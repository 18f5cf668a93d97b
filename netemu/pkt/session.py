"""One .pkt run, end to end, like ``netemu.scenario.session.run_scenario``: lab up,
kernel agent, host, the script, then the run directory (trace.pcap, ladder.txt,
ladder.html, report.json) and the lab down."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path
from typing import Any

from .load import PktScript


async def run_pkt(sc: PktScript, run_dir: Path, *, on_step: Any = None,
                  strict_timing: bool = False, tolerance_usecs: int | None = None,
                  seed: int | None = None, write: bool = True) -> Any:
    """Run a loaded script in a fresh lab; returns a ``netemu.scenario.session.Outcome``
    (``.report`` also holds ``timing``: every checked time, and ``notes``)."""
    from ..host import Host
    from ..lab.core import Lab
    from ..scenario.session import Outcome
    from ..trace.record import NoteRecord, Trace
    from .runner import PktRunner, StepResult, run_command

    t0 = time.monotonic()
    passed = False
    error: str | None = None
    notes: list[str] = []
    results: list[StepResult] = []
    timing: list[Any] = []
    runner: PktRunner | None = None
    phases: dict[str, float] = {}
    with Lab(congestion=sc.congestion) as lab:
        agent_task = asyncio.create_task(asyncio.to_thread(start_agent, lab))
        import anyio  # noqa: F401  # the agent's async client needs it: import it meanwhile
        trace = Trace(emulator_ip=lab.emu_ip, peer_ip=lab.peer_ip)
        # Plain sockets, no packet rings: a script moves a handful of segments, and the
        # rings' set-up and teardown cost ~60 ms (as in the YAML runner, docs/lab.md).
        host = await Host(lab.open_link(tx_ring=0, rx_ring=0), lab.emu_ip, lab.emu_mac,
                          trace=trace).start()
        try:
            await host.resolve(lab.peer_ip)
            for ev in sc.script.init_commands:
                res = StepResult(0, ev.line, "command", ev.source)
                out = await run_command(lab, ev.action.text, Path(sc.path).resolve().parent)  # type: ignore[union-attr]
                res.status = "pass" if out.returncode == 0 else "fail"
                if out.output.strip():
                    notes.extend(f"`{ev.action.text}`: {line}"  # type: ignore[union-attr]
                                 for line in out.output.strip().splitlines()[-5:])
                if out.returncode != 0:
                    res.message = (f"`{ev.action.text}` exited with status "  # type: ignore[union-attr]
                                   f"{out.returncode}")
                results.append(res)
                if on_step is not None:
                    on_step(res)
            agent = await agent_task
            await agent.aio.ping()  # the async client's first call imports anyio: not at time 0
            if lab.cc_per_socket:
                trace.notes.append(NoteRecord(time.monotonic(), lab.notes[-1], "note"))
            if all(r.status == "pass" for r in results):
                runner = PktRunner(sc, lab=lab, host=host, agent=agent, on_step=on_step,
                                   strict_timing=strict_timing, tolerance_usecs=tolerance_usecs,
                                   seed=seed)
                await runner.start()
                phases["setup"] = time.monotonic() - t0
                try:
                    passed = await runner.run()
                finally:
                    await runner.stop()
                phases["script"] = time.monotonic() - t0 - phases["setup"]
                results.extend(runner.results)
                notes.extend(runner.notes)
                timing = [t.as_dict() for t in runner.timing]
        except Exception as e:  # the lab, the agent, the host: a failed run
            error = f"{type(e).__name__}: {e}"
        finally:
            if not agent_task.done():
                agent_task.cancel()
            host.close()
        notes = [*lab.notes, *notes]
    duration = time.monotonic() - t0
    if "script" in phases:
        phases["teardown"] = duration - phases["setup"] - phases["script"]
    failed = [r for r in results if r.status == "fail"]
    if error is None and failed:
        f = failed[0]
        error = f"line {f.line} {f.action}: {f.message}"
    passed = passed and error is None and not failed
    report: dict[str, Any] = {}
    ladder = ""
    if write:
        ladder, report = _write(sc, run_dir, trace, results, duration, error, passed, notes,
                                timing, strict_timing, tolerance_usecs, phases)
    else:
        report = {"scenario": sc.name, "result": "pass" if passed else "fail",
                  "duration": duration, "error": error, "timing": timing, "notes": notes,
                  "phases": phases,
                  "steps": [r.as_dict() for r in results]}
    return Outcome(sc, passed, run_dir, report, ladder)  # type: ignore[arg-type]


# The kernel agent, started with a 0.1 ms GIL switch interval: with Python's default
# (5 ms) a request waits for the GIL between the agent's reader and handler threads,
# 4 ms per system call on this machine class against 0.25 ms (packetdrill's default
# timing tolerance is 4 ms).
_AGENT_BOOT = ("import sys; sys.setswitchinterval(1e-4); p = sys.argv[1]; "
               "exec(compile(open(p).read(), p, 'exec'), {'__name__': '__main__', "
               "'__file__': p})")


def start_agent(lab: Any) -> Any:
    """``lab.start_agent()``, but with the switch interval above."""
    import subprocess
    import sys

    from ..lab.kernel import AGENT_PATH, KernelAgent

    proc = lab.spawn([sys.executable, "-I", "-S", "-c", _AGENT_BOOT, AGENT_PATH], name="agent",
                     stdin=subprocess.PIPE, stdout=subprocess.PIPE, stop_timeout=0.5)
    agent = KernelAgent(proc)
    agent.ping()
    return agent


def _write(sc: PktScript, run_dir: Path, trace: Any, results: list[Any], duration: float,
           error: str | None, passed: bool, notes: list[str], timing: list[Any],
           strict: bool, tolerance_usecs: int | None,
           phases: dict[str, float]) -> tuple[str, dict[str, Any]]:
    from ..trace.ladder import render_ladder_text, write_ladder_html
    from ..trace.pcap import write_pcap
    from ..trace.report import write_report

    run_dir.mkdir(parents=True, exist_ok=True)
    write_pcap(trace, run_dir / "trace.pcap")
    ladder = render_ladder_text(trace, title=sc.name)
    (run_dir / "ladder.txt").write_text(ladder)
    write_ladder_html(trace, run_dir / "ladder.html", title=sc.name)
    report = write_report(
        run_dir / "report.json", scenario=sc.name, result="pass" if passed else "fail",
        trace=trace, steps=[r.as_dict() for r in results], duration=duration, error=error,
        extra={"description": sc.description, "source": str(sc.path), "format": "packetdrill",
               "scheduled_seconds": round(sc.scheduled_seconds(), 6),
               "tolerance_usecs": tolerance_usecs if tolerance_usecs is not None
               else sc.tolerance_usecs, "strict_timing": strict, "timing": timing,
               "notes": notes,
               "phases": {k: round(v, 6) for k, v in phases.items()}})
    return ladder, report
