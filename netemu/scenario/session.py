"""One scenario run, end to end: lab up, peers, host, steps, then the trace
written out (pcap, ladder.txt, ladder.html, report.json) and the lab down."""

from __future__ import annotations

import asyncio
import contextlib
import re
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # a .pkt run needs no scenario schema (nor pydantic)
    from . import schema as S


class EnvironmentProblem(Exception):
    """Not root, a missing tool: exit code 3."""


@dataclass
class Outcome:
    scenario: S.Scenario
    passed: bool
    run_dir: Path
    report: dict[str, Any]
    ladder: str


def default_run_dir(name: str, base: str | Path = "runs") -> Path:
    """A new run directory, created here: two runs started in the same second (two
    processes) each get their own (it was only chosen here and made at the end, so both
    wrote one)."""
    stamp = time.strftime("%Y%m%d-%H%M%S")
    safe = re.sub(r"[^A-Za-z0-9_.-]+", "-", name).strip("-") or "scenario"
    Path(base).mkdir(parents=True, exist_ok=True)
    n = 1
    while True:
        path = Path(base) / (f"{stamp}-{safe}" if n == 1 else f"{stamp}-{safe}-{n}")
        try:
            path.mkdir()
        except FileExistsError:
            n += 1
            continue
        return path


def _peer_sysctls(sc: S.Scenario) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for peer in sc.peers.values():
        out.update(peer.sysctls)
    return out


def _congestion(sc: S.Scenario) -> str | None:
    algos = {p.congestion_control for p in sc.peers.values() if p.congestion_control}
    return next(iter(algos)) if algos else None


async def run_scenario(sc: S.Scenario, run_dir: Path, *, on_step: Any = None,
                       overrides: dict[str, Any] | None = None) -> Outcome:
    if getattr(sc, "mode", "endpoint") == "relay":  # two kernels bridged: relay_runner.py
        from .relay_runner import run_relay_scenario

        return await run_relay_scenario(sc, run_dir, on_step=on_step,  # type: ignore[no-any-return]
                                        overrides=overrides)
    pipelines = impairments(sc, overrides)
    seed = sc.seed
    isn_secret = None if seed is None else seed.to_bytes(16, "big", signed=True)
    progress = Progress(sc, run_dir, time.monotonic())
    try:
        return await _run_in_lab(sc, run_dir, on_step, pipelines, isn_secret, progress)
    except (asyncio.CancelledError, KeyboardInterrupt, SystemExit):
        # Ctrl-C (the task cancelled) or SIGTERM/SIGHUP (SystemExit in the loop, then the
        # task cancelled as asyncio.run ends): the lab is down by now (its `with` has
        # unwound); the run directory keeps what was seen, marked interrupted.
        progress.write_interrupted()
        raise


@contextlib.asynccontextmanager
async def pcap_streamed(trace: Any, run_dir: Path, every: float = 0.2) -> Any:
    """trace.pcap written as the run goes (every ``every`` s): a run killed by SIGKILL
    keeps its frames up to then (issue 17). The run's end writes it whole."""
    from ..trace.pcap import PcapStream

    run_dir.mkdir(parents=True, exist_ok=True)
    stream = PcapStream(trace, run_dir / "trace.pcap")

    async def flush() -> None:
        while True:
            await asyncio.sleep(every)
            stream.flush()

    task = asyncio.create_task(flush())
    try:
        yield stream
    finally:
        task.cancel()
        stream.close()


@dataclass
class Progress:
    """How far a run got, for the run directory of one that is interrupted."""

    sc: Any
    run_dir: Path
    t0: float
    trace: Any = None
    runner: Any = None
    roles: tuple[str, str] | None = None  # the ladder's (relay mode: client, server)
    extra: dict[str, Any] | None = None  # more for report.json

    def write_interrupted(self) -> None:
        """The pcap and ladders of what was seen, and report.json with ``"result":
        "interrupted"`` (steps not reached: "skipped"). Nothing if the lab never came up."""
        from ..lab.core import signals_deferred

        with signals_deferred():
            self._write_interrupted()

    def _write_interrupted(self) -> None:
        from ..trace.atomic import atomic_write_text
        from ..trace.ladder import render_ladder_texts, write_ladder_html
        from ..trace.pcap import write_pcap
        from ..trace.report import write_report

        sc, run_dir, trace = self.sc, self.run_dir, self.trace
        if trace is None:
            return
        run_dir.mkdir(parents=True, exist_ok=True)
        write_pcap(trace, run_dir / "trace.pcap")
        kw: dict[str, Any] = {"title": sc.name}
        if self.roles is not None:
            kw["roles"] = self.roles
        whole, _ = render_ladder_texts(trace, **kw)
        atomic_write_text(run_dir / "ladder.txt", whole)
        write_ladder_html(trace, run_dir / "ladder.html", **kw)
        results = list(self.runner.results) if self.runner is not None else []
        steps = [r.as_dict() for r in results]
        for st in steps:
            if st.get("status") == "pending":  # the step the signal came during
                st["status"] = "interrupted"
        done = {r.index for r in results}
        steps += [{"index": i, "line": st.line, "action": st.ACTION, "status": "skipped"}
                  for i, st in enumerate(sc.steps, 1) if i not in done]
        where = f" during step {results[-1].index}" if results else ""
        write_report(run_dir / "report.json", scenario=sc.name, result="interrupted",
                     trace=trace, steps=steps, duration=time.monotonic() - self.t0,
                     error=f"interrupted{where} (a signal)",
                     extra={"description": sc.description, "seed": sc.seed,
                            **(self.extra or {})})
        print(f"netemu run: {sc.name}: interrupted{where}; what was seen is in {run_dir}",
              file=sys.stderr)


async def _run_in_lab(sc: Any, run_dir: Path, on_step: Any, pipelines: tuple[Any, Any],
                      isn_secret: bytes | None, progress: Progress) -> Outcome:
    from ..host import Host
    from ..lab.core import Lab, signals_deferred
    from ..trace.record import NoteRecord, Trace
    from .runner import Runner

    trace: Trace | None = None
    runner: Runner | None = None
    passed = False
    error: str | None = None
    with contextlib.ExitStack() as hold:
        async with contextlib.AsyncExitStack() as stack:  # (the pcap as the run goes)
            with Lab(peer_sysctls=_peer_sysctls(sc), congestion=_congestion(sc)) as lab:
                if lab.cc_per_socket:  # only the kernel agent can have it (per socket)
                    for name, peer in sc.peers.items():
                        if peer.congestion_control and peer.kind != "kernel":
                            allowed = Path("/proc/sys/net/ipv4/tcp_allowed_congestion_control")
                            raise EnvironmentProblem(
                                f"peer {name!r} ({peer.kind}) wants congestion control "
                                f"{peer.congestion_control}, and this host lets a network namespace "
                                f"default only to {allowed.read_text().strip()} ({allowed}): only "
                                "the kernel agent sets it, per socket")
                trace = Trace(emulator_ip=lab.emu_ip, peer_ip=lab.peer_ip)
                progress.trace = trace
                for note in lab.notes:  # e.g. the congestion control set per socket
                    trace.notes.append(NoteRecord(time.monotonic(), note, "note"))
                # Plain AF_PACKET sockets, no packet rings: a scenario scripts a handful of
                # segments, and the rings' set-up and teardown (an 8 MiB mapping, RCU grace
                # periods on close) cost ~60 ms of every run, more than a whole trivial run
                # spends with its lab up; they pay off on bulk transfers (docs/lab.md).
                link = lab.open_link(tx_ring=0, rx_ring=0)
                # Each frame at the time the kernel took it in, on the clock of the peer kernel's
                # tracepoints: the ladder orders both sides' events by it (one recvmsg a frame:
                # a scenario's handful, not bulk; docs/trace.md).
                link.enable_rx_timestamps()
                host = await Host(link, lab.emu_ip, lab.emu_mac,
                                  config=sc.config_for(None), isn_secret=isn_secret,
                                  trace=trace).start()
                host.record_rx_stamps = True
                host.impair_out, host.impair_in = pipelines
                runner = Runner(sc, lab=lab, host=host, on_step=on_step)
                progress.runner = runner
                try:
                    try:
                        await stack.enter_async_context(pcap_streamed(trace, run_dir))
                        await runner.start_peers()
                    except FileNotFoundError as e:  # a command: peer's program is not there
                        raise EnvironmentProblem(
                            f"peer program not found: {e.filename or e} (the scenario's "
                            "`command:`)") from None
                    passed = await runner.run()
                except EnvironmentProblem:
                    raise
                except Exception as e:  # a peer that would not start, the lab: a failed run
                    error = f"{type(e).__name__}: {e}"
                finally:
                    # From the run's end to its outputs written, signals wait (a SIGTERM
                    # between the lab's teardown and the report killed the process with
                    # only the pcap written).
                    hold.enter_context(signals_deferred())
                    await runner.stop()
                    host.close()
        progress.trace = None  # finished: the outputs below are the run's
        return _write_outputs(sc, run_dir, trace, runner, passed, error,
                              time.monotonic() - progress.t0)


def _write_outputs(sc: Any, run_dir: Path, trace: Any, runner: Any, passed: bool,
                   error: str | None, duration: float) -> Outcome:
    from ..trace.atomic import atomic_write_text
    from ..trace.ladder import render_ladder_texts, write_ladder_html
    from ..trace.pcap import write_pcap
    from ..trace.report import write_report

    run_dir.mkdir(parents=True, exist_ok=True)
    write_pcap(trace, run_dir / "trace.pcap")
    whole, ladder = render_ladder_texts(trace, title=sc.name)
    atomic_write_text(run_dir / "ladder.txt", whole)
    write_ladder_html(trace, run_dir / "ladder.html", title=sc.name)
    steps = [r.as_dict() for r in runner.results]
    if error is None:
        error = runner.failure()
    report = write_report(run_dir / "report.json", scenario=sc.name,
                          result="pass" if passed and error is None else "fail", trace=trace,
                          steps=steps, duration=duration, error=error,
                          extra={"description": sc.description,
                                 # the seeds the run used: the scenario's (ISNs, ports)
                                 # and its impairment pipelines' (network.seed, else
                                 # the scenario's, else 0), so a run can be repeated
                                 "seed": sc.seed,
                                 "network_seed": (sc.network.seed if sc.network.seed
                                                  is not None else (sc.seed or 0))})
    return Outcome(sc, passed and error is None, run_dir, report, ladder)


# netem names the schema accepts, and the ImpairConfig field each maps to.
_IMPAIR_FIELDS = ("loss", "delay", "jitter", "reorder", "duplicate", "corrupt", "rate")


def impairments(sc: S.Scenario, overrides: dict[str, Any] | None = None) -> tuple[Any, Any]:
    """(out, in) pipelines from the scenario's `network:` block, with command-line
    overrides applied to both directions; None where a direction is unimpaired."""
    given = []
    for d in ("out", "in"):
        values = {k: getattr(sc.network.direction(d), k) for k in _IMPAIR_FIELDS}
        values.update({k: v for k, v in (overrides or {}).items() if v is not None})
        given.append({k: float(v) for k, v in values.items() if v is not None})
    if not any(given):
        return None, None  # nothing set: no pipelines, and netemu.impair left unimported

    from ..impair import ImpairConfig, Impairment

    seed = sc.network.seed if sc.network.seed is not None else (sc.seed or 0)
    out = []
    for i, values in enumerate(given):
        cfg = ImpairConfig(**values, limit=100_000)
        out.append(Impairment(cfg, seed=seed * 2 + i) if cfg.active else None)
    return out[0], out[1]


def collect(paths: list[str]) -> list[Path]:
    """Scenario files from files and directories (*.yaml, *.yml, packetdrill's *.pkt),
    in order."""
    out: list[Path] = []
    for p in map(Path, paths):
        if p.is_dir():
            out.extend(sorted(q for q in p.rglob("*")
                              if q.suffix in (".yaml", ".yml", ".pkt")))
        else:
            out.append(p)
    return out


def _exit_on_signal(signum: int, frame: Any) -> None:
    raise SystemExit(128 + signum)


def main(args: Any) -> int:
    """`netemu run`: 0 all passed, 1 a scenario failed, 2 bad input, 3 environment; a
    run ended by SIGTERM or SIGHUP exits 128 + the signal (its outputs written first),
    by Ctrl-C 130."""
    import signal

    old = {sig: signal.signal(sig, _exit_on_signal) for sig in (signal.SIGTERM, signal.SIGHUP)
           if signal.getsignal(sig) is signal.SIG_DFL}
    try:
        return _main(args)
    finally:
        for sig, handler in old.items():
            signal.signal(sig, handler)


def _main(args: Any) -> int:
    import os
    import shutil
    import sys

    from ..lab.core import LabError
    from ..source_error import SourceError
    from . import units

    overrides: dict[str, Any] = {}
    for name, parse in (("loss", units.parse_percent), ("duplicate", units.parse_percent),
                        ("reorder", units.parse_percent), ("corrupt", units.parse_percent),
                        ("delay", units.parse_duration), ("jitter", units.parse_duration),
                        ("rate", units.parse_rate)):
        raw = getattr(args, name, None)
        if raw is None:
            continue
        try:
            overrides[name] = parse(raw)
        except ValueError as e:
            print(f"netemu run: --{name} {raw}: {e}", file=sys.stderr)
            return 2
    files = collect(args.paths)
    if not files:
        print("netemu run: no scenario files found", file=sys.stderr)
        return 2
    scenarios = []
    bad = False
    bad_pkt = 0
    load_errors: list[dict[str, Any]] = []
    from ..cli import pkt_argv

    pd_argv = pkt_argv(args)
    for f in files:
        try:
            if f.suffix == ".pkt":  # packetdrill scripts: netemu/pkt (docs/packetdrill.md)
                from ..pkt import load_pkt  # for .pkt files only: ~25 ms of imports

                sc_pkt = load_pkt(f, pd_argv)
                if sc_pkt.dry_run:  # packetdrill's --dry_run: parsed and checked only
                    print(f"{f}: ok (--dry_run: not run)")
                else:
                    scenarios.append(sc_pkt)
                continue
            from .loader import load_scenario  # YAML only: PyYAML and the loader

            scenarios.append(load_scenario(f))
        except SourceError as e:  # ScenarioError, PktError
            for err in getattr(e, "errors", None) or [e]:
                print(err, file=sys.stderr)
            if f.suffix == ".pkt" and len(files) > 1:
                # a suite of scripts: the others still run, as packetdrill's; this one is
                # an error row in the table, the JUnit and the JSON
                bad_pkt += 1
                errs = getattr(e, "errors", None) or [e]
                load_errors.append({"scenario": f.stem, "result": "error",
                                    "error": str(errs[0]), "source": str(f), "steps": []})
                continue
            bad = True
        except OSError as e:
            print(f"{f}: {e.strerror or e}", file=sys.stderr)
            bad = True
    if bad or (bad_pkt and not scenarios):
        return 2
    if not scenarios:  # --dry_run: every script parsed and checked
        return 0
    if os.geteuid() != 0:
        print("netemu run: needs root to create network namespaces (try: sudo netemu run …)",
              file=sys.stderr)
        return 3
    missing = [t for t in ("ip", "ethtool") if shutil.which(t) is None]
    if missing:
        print(f"netemu run: missing tools: {', '.join(missing)} (make install)", file=sys.stderr)
        return 3

    import atexit
    import gc
    import importlib

    from .console import make_console

    # What the runs will import, imported now: netemu/cli.py keeps the garbage collector
    # off while a command imports and loads (no garbage, but thousands of new objects,
    # each collection walking them all). Then the imported objects are frozen (never
    # walked again) and collections resume for the run itself.
    kinds = {"pkt" if getattr(sc, "pkt", None) is not None else "yaml" for sc in scenarios}
    for name in ("..host", "..lab.core", "..trace.record", "..trace.pcap", "..trace.ladder",
                 "..trace.report", *((".runner",) if "yaml" in kinds else ()),
                 *(("..pkt.session", "..pkt.runner") if "pkt" in kinds else ())):
        importlib.import_module(name, __package__)
    gc.freeze()
    gc.enable()
    # Once the run is over, the interpreter's teardown would walk and free every
    # object the run made (~50 ms, work the OS does anyway): freeze them first.
    atexit.register(gc.freeze)
    console = make_console()  # rich on a terminal; plain text (no rich import) otherwise
    outcomes = []
    netemu_late: list[str] = []
    for sc in scenarios:
        try:
            if args.output and len(scenarios) == 1:
                run_dir = Path(args.output)
                run_dir.mkdir(parents=True, exist_ok=True)  # (a file there, no right to)
            else:
                run_dir = default_run_dir(sc.name, args.output or "runs")
        except OSError as e:
            print(f"netemu run: -o {args.output}: cannot make the run directory: "
                  f"{e.strerror or e}", file=sys.stderr)
            return 2
        console.print(f"[bold]{sc.name}[/bold] — {sc.description.strip()}" if sc.description
                      else f"[bold]{sc.name}[/bold]")

        def on_step(res: Any) -> None:
            mark = {"pass": "[green]✓[/green]", "fail": "[red]✗[/red]"}.get(res.status, "·")
            console.print(f"  {mark} {res.index:>2} line {res.line:<3} {res.text}"
                          f" [dim]({res.seconds * 1000:.0f} ms)[/dim]")
            if res.status == "fail":
                console.print(f"       [red]{res.message}[/red]")
            elif res.message:  # what a pass has to say (a segment from before its step)
                console.print(f"       [dim]{res.message}[/dim]")

        try:
            if getattr(sc, "pkt", None) is not None:
                from ..pkt.session import run_pkt
                outcome = asyncio.run(run_pkt(
                    sc, run_dir, on_step=on_step,  # type: ignore[arg-type]
                    strict_timing=not getattr(args, "lenient_timing", False),
                    tolerance_usecs=getattr(args, "tolerance_usecs", None)))
                if outcome.report.get("netemu_late"):
                    netemu_late.append(f"{sc.name}: {outcome.report['netemu_late']}")
            else:
                outcome = asyncio.run(run_scenario(sc, run_dir, on_step=on_step,
                                                   overrides=overrides))
        except (EnvironmentProblem, LabError) as e:  # (a sysctl the kernel refuses: LabError)
            print(f"netemu run: {sc.name}: {e}", file=sys.stderr)
            with contextlib.suppress(OSError):
                run_dir.rmdir()  # made for this run, still empty: nothing left behind
            return 3
        outcomes.append(outcome)
        if not args.quiet:
            console.print(outcome.ladder, highlight=False, markup=False)
        err = outcome.report.get("error")
        status = "[green]PASS[/green]" if outcome.passed else "[red]FAIL[/red]"
        misses = sum(1 for t in outcome.report.get("timing") or () if not t.get("ok", True))
        console.print(f"{status} {sc.name}: {len(sc.steps)} steps, "
                      f"{outcome.report.get('duration', 0):.2f} s → {run_dir}"
                      + (f" ({misses} timing miss{'es' if misses > 1 else ''} noted: "
                         "--lenient-timing)" if misses and outcome.passed else "")
                      + (f"\n  {err}" if err and not outcome.passed else ""))
    if len(outcomes) + len(load_errors) > 1:
        from rich.table import Table

        table = Table(title="netemu run")
        for col in ("scenario", "result", "seconds", "run directory"):
            table.add_column(col)
        for o in outcomes:
            table.add_row(o.scenario.name, "pass" if o.passed else "FAIL",
                          f"{o.report.get('duration', 0):.2f}", str(o.run_dir))
        for r in load_errors:
            table.add_row(r["scenario"], "ERROR", "-", r["error"])
        console.print(table)
        failed = sum(not o.passed for o in outcomes)
        console.print(f"{len(outcomes) - failed} passed, {failed} failed, "
                      f"{len(load_errors)} could not run")
    if args.junit:
        from ..trace.report import write_junit
        write_junit(args.junit, [*(o.report for o in outcomes), *load_errors])
    if args.json:
        import json
        Path(args.json).write_text(json.dumps([*(o.report for o in outcomes), *load_errors],
                                              indent=2))
    if netemu_late:
        for line in netemu_late:
            print(f"netemu run: {line}", file=sys.stderr)
        return 3
    if bad_pkt:
        print(f"netemu run: {bad_pkt} script(s) could not run (above)", file=sys.stderr)
        return 2
    return 0 if all(o.passed for o in outcomes) else 1
