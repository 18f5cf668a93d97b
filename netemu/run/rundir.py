"""The run directory, one writer for every kind of run: trace.pcap (streamed while
the run goes, whole at its end), ladder.txt, ladder.html and report.json; the same
files for a run a signal interrupted (``Progress``); and where a new run directory
goes (``default_run_dir``). Imports the trace's writers and lab.core's signal hold."""

from __future__ import annotations

import asyncio
import contextlib
import re
import sys
import threading
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..trace.record import Trace

if TYPE_CHECKING:
    from ..trace.pcap import PcapStream

Roles = tuple[str, str]
# What an interrupted run had done: (its steps for report.json, " during step 3" or
# the like for the messages, report.json's extra keys).
Account = Callable[[], tuple[list[dict[str, Any]], str, dict[str, Any]]]


OUTPUTS = ("trace.pcap", "ladder.txt", "ladder.html", "report.json")


def discard_run_dir(run_dir: Path) -> None:
    """A run that could not be made (an environment problem: a program not there, a
    sysctl the kernel refuses) leaves nothing behind: the outputs it had begun (the
    streamed trace.pcap) removed, then its directory, made for it, if that leaves it
    empty. Anything else in the directory is kept."""
    for name in OUTPUTS:
        with contextlib.suppress(OSError):
            (run_dir / name).unlink()
    with contextlib.suppress(OSError):
        run_dir.rmdir()


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


def write_run_dir(
    trace: Trace,
    run_dir: Path,
    *,
    name: str,
    result: str,
    steps: list[dict[str, Any]],
    duration: float,
    error: str | None,
    extra: dict[str, Any],
    roles: Roles | None = None,
    drawn: TraceFiles | None = None,
) -> tuple[dict[str, Any], str]:
    """trace.pcap, ladder.txt, ladder.html (``roles``: its two columns, relay mode's
    client and server) and report.json; returns (the report, the ladder for this
    terminal). ``drawn``: the first three, already being written (``TraceFiles``)."""
    from ..trace.report import write_report

    ladder = drawn.result() if drawn is not None else _trace_files(trace, run_dir, name, roles)
    report = write_report(
        run_dir / "report.json",
        scenario=name,
        result=result,
        trace=trace,
        steps=steps,
        duration=duration,
        error=error,
        extra=extra,
    )
    return report, ladder


def _trace_files(trace: Trace, run_dir: Path, name: str, roles: Roles | None) -> str:
    """trace.pcap, ladder.txt and ladder.html; the ladder for this terminal."""
    from ..trace.atomic import atomic_write_text
    from ..trace.ladder import render_ladder_texts, write_ladder_html
    from ..trace.pcap import write_pcap

    kw: dict[str, Any] = {"title": name}
    if roles is not None:
        kw["roles"] = roles
    run_dir.mkdir(parents=True, exist_ok=True)
    write_pcap(trace, run_dir / "trace.pcap")
    whole, ladder = render_ladder_texts(trace, **kw)
    atomic_write_text(run_dir / "ladder.txt", whole)
    write_ladder_html(trace, run_dir / "ladder.html", **kw)
    return ladder


class TraceFiles(threading.Thread):
    """A finished trace's files (trace.pcap, ladder.txt, ladder.html) written on a thread
    of their own while the run's lab goes down, which is mostly waiting on the kernel
    (closing the AF_PACKET socket waits out an RCU grace period): a trivial .pkt run ends
    ~1-4 ms sooner, more when the disk is busy (each file is fsynced). The trace must not
    change once it started; ``write_run_dir(drawn=...)`` waits for it and writes
    report.json. Not a daemon: the interpreter's exit waits for it too, so no file is
    left half-written."""

    def __init__(self, trace: Trace, run_dir: Path, name: str) -> None:
        super().__init__(name="netemu-run-dir")
        self.trace, self.run_dir, self.title = trace, run_dir, name
        self._ladder = ""
        self._error: BaseException | None = None

    def run(self) -> None:
        try:
            self._ladder = _trace_files(self.trace, self.run_dir, self.title, None)
        except BaseException as e:  # handed to the caller by result()
            self._error = e

    def result(self) -> str:
        """The ladder for this terminal, once the files are written (their error, raised)."""
        self.join()
        if self._error is not None:
            raise self._error
        return self._ladder


@contextlib.asynccontextmanager
async def pcap_streamed(
    trace: Trace, run_dir: Path, every: float = 0.2
) -> AsyncIterator[PcapStream]:
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


def _nothing_done() -> tuple[list[dict[str, Any]], str, dict[str, Any]]:
    return [], "", {}


@dataclass
class Progress:
    """How far a run got, for the run directory of one that is interrupted: its
    ``trace`` once the lab is up (None again once the run's own outputs are written),
    and ``account``, what its steps came to."""

    name: str
    run_dir: Path
    t0: float
    roles: Roles | None = None
    trace: Trace | None = None
    account: Account = field(default=_nothing_done)

    def write_interrupted(self) -> None:
        """The pcap and ladders of what was seen, and report.json with ``"result":
        "interrupted"``. Nothing if the lab never came up."""
        from ..lab.core import signals_deferred

        if self.trace is None:
            return
        with signals_deferred():
            steps, where, extra = self.account()
            write_run_dir(
                self.trace,
                self.run_dir,
                name=self.name,
                result="interrupted",
                steps=steps,
                duration=time.monotonic() - self.t0,
                error=f"interrupted{where} (a signal)",
                extra=extra,
                roles=self.roles,
            )
            print(
                f"netemu run: {self.name}: interrupted{where}; what was seen is in {self.run_dir}",
                file=sys.stderr,
            )
