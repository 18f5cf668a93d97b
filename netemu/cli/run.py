"""``netemu run`` and ``netemu relay``: their arguments (the impairment overrides,
the run directories, the exit codes), the garbage collector's tuning for a run, and
the dispatch of each file to its kind's runner: a YAML scenario to
netemu.scenario.session, a packetdrill script to netemu.pkt.session. Both kinds
return a ``netemu.run.result.Outcome``; what is printed and summed up is the same."""

from __future__ import annotations

import argparse
import asyncio
import sys
from collections.abc import Callable, Coroutine
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..run.impair import IMPAIR_FIELDS
from ..run.result import OnStep, Outcome, RunSource, StepResult
from . import pkt_argv
from .files import collect

if TYPE_CHECKING:
    from ..pkt.load import PktScript
    from ..scenario.schema import Scenario

Start = Callable[[Path, OnStep], Coroutine[Any, Any, Outcome]]


@dataclass
class Run:
    """A loaded file, ready to run: ``start(run_dir, on_step)`` is its kind's runner."""

    kind: str  # "yaml", "pkt"
    source: RunSource  # the scenario or the script
    start: Start


def parse_overrides(args: argparse.Namespace, prog: str) -> dict[str, float] | None:
    """The impairment options given (``--loss 5%``...), parsed; None (and the problem on
    stderr) when one is bad."""
    if all(getattr(args, name, None) is None for name in IMPAIR_FIELDS):
        return {}  # (and the scenario format's units not imported for a .pkt run)
    from ..scenario import units

    parsers = {
        "loss": units.parse_percent,
        "duplicate": units.parse_percent,
        "reorder": units.parse_percent,
        "corrupt": units.parse_percent,
        "delay": units.parse_duration,
        "jitter": units.parse_duration,
        "rate": units.parse_rate,
    }
    overrides: dict[str, float] = {}
    for name in IMPAIR_FIELDS:
        raw = getattr(args, name, None)
        if raw is None:
            continue
        try:
            overrides[name] = parsers[name](raw)
        except ValueError as e:
            print(f"{prog}: --{name} {raw}: {e}", file=sys.stderr)
            return None
    return overrides


def _exit_on_signal(signum: int, frame: Any) -> None:
    raise SystemExit(128 + signum)


def run_main(args: argparse.Namespace) -> int:
    """`netemu run`: 0 all passed, 1 a scenario failed, 2 bad input, 3 environment; a
    run ended by SIGTERM or SIGHUP exits 128 + the signal (its outputs written first),
    by Ctrl-C 130. The same with -j N (netemu.cli.parallel)."""
    import signal

    old = {
        sig: signal.signal(sig, _exit_on_signal)
        for sig in (signal.SIGTERM, signal.SIGHUP)
        if signal.getsignal(sig) is signal.SIG_DFL
    }
    try:
        return _run_all(args)
    finally:
        for sig, handler in old.items():
            signal.signal(sig, handler)


@dataclass
class Loaded:
    runs: list[Run] = field(default_factory=list)
    bad: bool = False  # a file that could not be read or loaded: exit 2, nothing runs
    errors: list[dict[str, Any]] = field(default_factory=list)  # .pkt of a suite: rows
    left_out: int = 0  # files of a directory an option does not fit (NotForThisRun)


def _pkt_start(script: PktScript, args: argparse.Namespace) -> Start:
    async def start(run_dir: Path, on_step: OnStep) -> Outcome:
        from ..pkt.session import run_pkt

        return await run_pkt(
            script,
            run_dir,
            on_step=on_step,
            strict_timing=not getattr(args, "lenient_timing", False),
            tolerance_usecs=getattr(args, "tolerance_usecs", None),
        )

    return start


def _yaml_start(sc: Scenario, overrides: dict[str, float]) -> Start:
    async def start(run_dir: Path, on_step: OnStep) -> Outcome:
        from ..scenario.session import run_scenario

        return await run_scenario(sc, run_dir, on_step=on_step, overrides=overrides)

    return start


class UsageProblem(Exception):
    """An option that does not fit a file (exit 2, one line)."""


class NotForThisRun(UsageProblem):
    """An option that does not fit a file found in a directory given: the file is left
    out, with a note (``netemu run --ipv6 scenarios/`` runs the scenarios and .pkt
    scripts there and leaves out the ``*v4.pkt`` ones); named on its own, it is a
    UsageProblem."""


def _load_one(
    f: Path, args: argparse.Namespace, overrides: dict[str, float], loaded: Loaded
) -> None:
    ipv6 = getattr(args, "ipv6", False)
    if f.suffix == ".pkt":  # packetdrill scripts: netemu/pkt (docs/packetdrill.md)
        from ..pkt import load_pkt  # for .pkt files only: ~25 ms of imports

        script = load_pkt(f, pkt_argv(args) + (_pkt_ipv6_argv(f, args) if ipv6 else []))
        if script.dry_run:  # packetdrill's --dry_run: parsed and checked only
            print(f"{f}: ok (--dry_run: not run)")
        else:
            loaded.runs.append(Run("pkt", script, _pkt_start(script, args)))
        return
    from ..scenario.loader import load_scenario  # YAML only: PyYAML and the loader

    sc = load_scenario(f)
    if ipv6:
        sc = sc.as_ipv6()
    loaded.runs.append(Run("yaml", sc, _yaml_start(sc, overrides)))


def _pkt_ipv6_argv(f: Path, args: argparse.Namespace) -> list[str]:
    """``--ipv6`` on a .pkt script: packetdrill's ``--ip_version=ipv6`` with run_all.py's
    ``--mtu=1520`` (unless ``--mtu`` is given), so the kernel's MSS stays 1460. A
    script named ``*v4.pkt`` is IPv4-only (run_all.py's rule)."""
    given = getattr(args, "pd_ip_version", None)
    if given not in (None, "ipv6"):
        raise UsageProblem(f"--ipv6 and --ip_version={given} disagree")
    if f.name.endswith("v4.pkt"):
        raise NotForThisRun(f"{f}: --ipv6: an IPv4-only script (its name ends in v4.pkt)")
    return ["--ip_version=ipv6"] + ([] if getattr(args, "pd_mtu", None) else ["--mtu=1520"])


def load_all(files: list[Path], args: argparse.Namespace, overrides: dict[str, float]) -> Loaded:
    """Every file loaded, its problems printed. A suite of .pkt scripts goes on past a
    bad one, as packetdrill's does: it is an error row in the table, the JUnit and the
    JSON."""
    from ..source_error import SourceError

    loaded = Loaded()
    named = {Path(p) for p in getattr(args, "paths", ()) if not Path(p).is_dir()}
    for f in files:
        try:
            _load_one(f, args, overrides, loaded)
        except NotForThisRun as e:
            if f in named:
                print(f"netemu run: {e}", file=sys.stderr)
                loaded.bad = True
            else:  # found in a directory: left out, said so
                print(f"netemu run: left out: {e}", file=sys.stderr)
                loaded.left_out += 1
        except SourceError as e:  # ScenarioError, PktError
            errs = getattr(e, "errors", None) or [e]
            for err in errs:
                print(err, file=sys.stderr)
            if f.suffix == ".pkt" and len(files) > 1:
                loaded.errors.append(
                    {
                        "scenario": f.stem,
                        "result": "error",
                        "error": str(errs[0]),
                        "source": str(f),
                        "steps": [],
                    }
                )
                continue
            loaded.bad = True
        except OSError as e:
            print(f"{f}: {e.strerror or e}", file=sys.stderr)
            loaded.bad = True
        except UsageProblem as e:
            print(f"netemu run: {e}", file=sys.stderr)
            loaded.bad = True
    return loaded


def _environment() -> str | None:
    """Why no run can happen here (exit 3), or None; with what to do about it."""
    from ..run.environment import lab_problem

    problem = lab_problem()
    if problem is None:
        return None
    return problem + (
        " (make install)" if problem.startswith("missing") else " (try: sudo netemu run …)"
    )


def _prepare_gc(kinds: set[str]) -> None:
    """What the runs will import, imported now: netemu.cli keeps the garbage collector
    off while a command imports and loads (no garbage, but thousands of new objects,
    each collection walking them all). Then the imported objects are frozen (never
    walked again) and collections resume for the run itself."""
    import atexit
    import gc
    import importlib

    for name in (
        "netemu.host",
        "netemu.lab.core",
        "netemu.trace.record",
        "netemu.trace.pcap",
        "netemu.trace.ladder",
        "netemu.trace.report",
        *(("netemu.scenario.session",) if "yaml" in kinds else ()),
        *(("netemu.pkt.session",) if "pkt" in kinds else ()),
    ):
        importlib.import_module(name)
    gc.freeze()
    gc.enable()
    # Once the run is over, the interpreter's teardown would walk and free every
    # object the run made (~50 ms, work the OS does anyway): freeze them first.
    atexit.register(gc.freeze)


def _run_dir(output: str | None, name: str, alone: bool) -> Path | None:
    """The run's directory, made (-o DIR for one scenario; else a new one under -o or
    runs/); None (and why on stderr) when it cannot be."""
    from ..run.rundir import default_run_dir

    try:
        if output and alone:
            run_dir = Path(output)
            run_dir.mkdir(parents=True, exist_ok=True)  # (a file there, no right to)
            return run_dir
        return default_run_dir(name, output or "runs")
    except OSError as e:
        print(
            f"netemu run: -o {output}: cannot make the run directory: {e.strerror or e}",
            file=sys.stderr,
        )
        return None


def _step_printer(console: Any) -> OnStep:
    def on_step(res: StepResult) -> None:
        mark = {"pass": "[green]✓[/green]", "fail": "[red]✗[/red]"}.get(res.status, "·")
        console.print(
            f"  {mark} {res.index:>2} line {res.line:<3} {res.text}"
            f" [dim]({res.seconds * 1000:.0f} ms)[/dim]"
        )
        if res.status == "fail":
            console.print(f"       [red]{res.message}[/red]")
        elif res.message:  # what a pass has to say (a segment from before its step)
            console.print(f"       [dim]{res.message}[/dim]")

    return on_step


def _verdict(console: Any, sc: RunSource, outcome: Outcome, quiet: bool) -> None:
    if not quiet:
        console.print(outcome.ladder, highlight=False, markup=False)
    err = outcome.report.get("error")
    status = "[green]PASS[/green]" if outcome.passed else "[red]FAIL[/red]"
    misses = sum(1 for t in outcome.report.get("timing") or () if not t.get("ok", True))
    console.print(
        f"{status} {sc.name}: {len(sc.steps)} steps, "
        f"{outcome.report.get('duration', 0):.2f} s → {outcome.run_dir}"
        + (
            f" ({misses} timing miss{'es' if misses > 1 else ''} noted: --lenient-timing)"
            if misses and outcome.passed
            else ""
        )
        + (f"\n  {err}" if err and not outcome.passed else "")
    )


def _summary(console: Any, outcomes: list[Outcome], errors: list[dict[str, Any]]) -> None:
    from rich.table import Table

    table = Table(title="netemu run")
    for col in ("scenario", "result", "seconds", "run directory"):
        table.add_column(col)
    for o in outcomes:
        table.add_row(
            o.scenario.name,
            "pass" if o.passed else "FAIL",
            f"{o.report.get('duration', 0):.2f}",
            str(o.run_dir),
        )
    for r in errors:
        table.add_row(r["scenario"], "ERROR", "-", r["error"])
    console.print(table)
    failed = sum(not o.passed for o in outcomes)
    console.print(f"{len(outcomes) - failed} passed, {failed} failed, {len(errors)} could not run")


def _write_reports(args: argparse.Namespace, reports: list[dict[str, Any]]) -> None:
    if args.junit:
        from ..trace.report import write_junit

        write_junit(args.junit, reports)
    if args.json:
        import json

        from ..trace.atomic import atomic_write_text

        # (whole or not at all: a Ctrl-C while it is written leaves no empty file)
        atomic_write_text(args.json, json.dumps(reports, indent=2))


def _run_all(args: argparse.Namespace) -> int:
    from ..lab.core import LabError
    from ..run.result import EnvironmentProblem
    from ..run.rundir import discard_run_dir
    from .console import make_console

    overrides = parse_overrides(args, "netemu run")
    if overrides is None:
        return 2
    files = collect(args.paths)
    if not files:
        print("netemu run: no scenario files found", file=sys.stderr)
        return 2
    loaded = load_all(files, args, overrides)
    if loaded.bad or (loaded.errors and not loaded.runs):
        return 2
    if not loaded.runs and loaded.left_out and not loaded.errors:
        print("netemu run: nothing to run: every file was left out (above)", file=sys.stderr)
        return 2
    if not loaded.runs:  # --dry_run: every script parsed and checked
        return 0
    problem = _environment()
    if problem is not None:
        print(f"netemu run: {problem}", file=sys.stderr)
        return 3
    _prepare_gc({run.kind for run in loaded.runs})
    if getattr(args, "jobs", 1) > 1 and len(loaded.runs) > 1:
        from .parallel import run_parallel  # -j N: a process per file, N at once

        return run_parallel(args, loaded)
    console = make_console()  # rich on a terminal; plain text (no rich import) otherwise
    outcomes: list[Outcome] = []
    netemu_late: list[str] = []
    for run in loaded.runs:
        sc = run.source
        run_dir = _run_dir(args.output, sc.name, len(loaded.runs) == 1)
        if run_dir is None:
            return 2
        console.print(
            f"[bold]{sc.name}[/bold] — {sc.description.strip()}"
            if sc.description
            else f"[bold]{sc.name}[/bold]"
        )
        try:
            outcome = asyncio.run(run.start(run_dir, _step_printer(console)))
        except (EnvironmentProblem, LabError) as e:  # (a sysctl the kernel refuses: LabError)
            print(f"netemu run: {sc.name}: {e}", file=sys.stderr)
            discard_run_dir(run_dir)  # nothing left behind
            return 3
        except KeyboardInterrupt as e:  # the run layer said where it was interrupted
            e.said = True  # type: ignore[attr-defined]
            raise
        if outcome.report.get("netemu_late"):
            netemu_late.append(f"{sc.name}: {outcome.report['netemu_late']}")
        outcomes.append(outcome)
        try:
            _verdict(console, sc, outcome, args.quiet)
        except KeyboardInterrupt as e:  # the run had ended: its directory holds its verdict
            verdict = "passed" if outcome.passed else "failed"
            print(
                f"netemu run: {sc.name}: interrupted (Ctrl-C) after the run ended ({verdict}); "
                f"its run directory is whole: {outcome.run_dir}",
                file=sys.stderr,
            )
            e.said = True  # type: ignore[attr-defined]
            raise
    try:
        return finish(console, args, outcomes, loaded, netemu_late)
    except KeyboardInterrupt as e:
        print(
            "netemu run: interrupted (Ctrl-C) after the last run ended, before the summary "
            "and the --json/--junit reports",
            file=sys.stderr,
        )
        e.said = True  # type: ignore[attr-defined]
        raise


def finish(
    console: Any,
    args: argparse.Namespace,
    outcomes: list[Outcome],
    loaded: Loaded,
    netemu_late: list[str],
) -> int:
    """The end of every run of files (netemu.cli.parallel's too): the summary, the
    reports, the exit code."""
    if len(outcomes) + len(loaded.errors) > 1:
        _summary(console, outcomes, loaded.errors)
    _write_reports(args, [*(o.report for o in outcomes), *loaded.errors])
    for line in netemu_late:
        print(f"netemu run: {line}", file=sys.stderr)
    if netemu_late:
        return 3
    if loaded.errors:
        print(f"netemu run: {len(loaded.errors)} script(s) could not run (above)", file=sys.stderr)
        return 2
    return 0 if all(o.passed for o in outcomes) else 1


def relay_main(args: argparse.Namespace) -> int:
    """`netemu relay`: bridge two fresh kernel peers until Ctrl-C (or --seconds), then
    write a run directory. 0 done, 2 bad input, 3 environment."""
    import os

    from ..run.relay import hold_relay
    from ..run.rundir import default_run_dir

    overrides = parse_overrides(args, "netemu relay")
    if overrides is None:
        return 2
    if os.geteuid() != 0:
        print("netemu relay: needs root to create network namespaces", file=sys.stderr)
        return 3
    run_dir = Path(args.output) if args.output else default_run_dir("relay")
    try:
        return asyncio.run(hold_relay(overrides, args.seconds, run_dir, args.seed, ipv6=args.ipv6))
    except KeyboardInterrupt:
        return 130
