"""``netemu run -j N``: up to N files at once, each in a process and a lab of its own,
with one progress display; the run directories, verdicts, reports (input order) and
exit code are those of ``-j 1`` (netemu.cli.run).

Each file runs in a child forked from this process once every file is loaded and every
module a run needs is imported (``_prepare_gc``): a file costs a fork (~5 ms), where a
fresh ``python -m netemu run FILE`` costs an interpreter and its imports (~0.25 s of
CPU here, which on 2 cores ate most of what running two at once gains). This process
starts no thread before it forks (the live display refreshes from its own loop, not
rich's refresh thread), so a child is a whole copy: its own event loop (``asyncio.run``
in the child), its own signal handling, its own lab (its namespaces, its lock file and
tracefs instance named by its own run id, its ports from a lab slot of its own:
netemu.lab.registry).

A child:
  - leads its own process group: a Ctrl-C at the terminal reaches this process only,
    which passes the signal on to each child it started, by pid, once; each child then
    ends as ``-j 1`` ends on that signal (its lab torn down, what it saw written);
  - gets ``PR_SET_PDEATHSIG(SIGTERM)``: this process SIGKILLed, each child ends its run
    as SIGTERM ends one;
  - reads /dev/null; its stdout and stderr go to a pipe this process prints from whole,
    after the file's verdict line (never interleaved with another file's);
  - sends its step results and outcome as pickled messages on another pipe (close-on-
    exec: the lab's own processes do not hold it, so its end of file is the child's).

What is printed: on a terminal, a live table (file, status, steps done, seconds) with
each file's verdict line above it as it finishes; otherwise one verdict line per file
as it finishes. Then each failed file as ``-j 1`` prints it (its steps, its ladder
unless -q, its verdict), whole, in input order; then the summary table.
"""

from __future__ import annotations

import argparse
import contextlib
import ctypes
import os
import pickle
import selectors
import signal
import struct
import sys
import threading
import time
import traceback
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, NoReturn

from ..run.result import Outcome, StepResult
from .console import is_terminal, make_console
from .run import Loaded, Run, _run_dir, _step_printer, _verdict, finish

PR_SET_PDEATHSIG = 1
_HEADER = struct.Struct("!I")
_SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)
_GRACE = 60.0  # seconds an interrupted child has to tear its lab down before SIGKILL


@dataclass
class Job:
    """One file of the run: its child process and what the child has said."""

    index: int
    run: Run
    run_dir: Path | None = None
    pid: int = 0
    msg_fd: int = -1  # pickled messages (close-on-exec: EOF when the child is gone)
    log_fd: int = -1  # the child's stdout and stderr
    msg: bytearray = field(default_factory=bytearray)
    log: bytearray = field(default_factory=bytearray)
    steps: list[StepResult] = field(default_factory=list)
    t0: float = 0.0
    t1: float | None = None
    outcome: Outcome | None = None
    code: int | None = None  # the child's exit code, as -j 1's process would end

    @property
    def name(self) -> str:
        return self.run.source.name

    @property
    def status(self) -> str:
        if not self.pid:
            return "waiting"
        if self.t1 is None:
            return "running"
        if self.outcome is not None:
            return "pass" if self.outcome.passed else "FAIL"
        return "error"

    @property
    def stop_code(self) -> int | None:
        """The exit code -j 1 would have ended with at this file, before the files after
        it (an environment problem: 3; a crash: 1; a signal: 128 + it), or None."""
        if self.t1 is None or self.outcome is not None:
            return None
        return self.code if self.code else 1


# --- the child ---------------------------------------------------------------------------


def _sender(fd: int) -> Callable[[tuple[Any, ...]], None]:
    lock = threading.Lock()  # (a .pkt run reports steps from its system-call thread too)

    def send(message: tuple[Any, ...]) -> None:
        data = pickle.dumps(message, protocol=pickle.HIGHEST_PROTOCOL)
        with lock:
            view = memoryview(_HEADER.pack(len(data)) + data)
            while view:
                view = view[os.write(fd, view) :]

    return send


def _child_setup(parent: int, log_w: int) -> None:
    os.setpgid(0, 0)
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGTERM, 0, 0, 0)
    if os.getppid() != parent:  # the parent died before prctl: follow it
        os._exit(128 + signal.SIGTERM)
    null = os.open(os.devnull, os.O_RDONLY)
    os.dup2(null, 0)
    os.dup2(log_w, 1)
    os.dup2(log_w, 2)
    os.close(null)
    os.close(log_w)
    sys.stdout, sys.stderr = sys.__stdout__, sys.__stderr__  # (a live display's proxies)
    signal.signal(signal.SIGINT, signal.default_int_handler)


def _child_run(job: Job, send: Callable[[tuple[Any, ...]], None]) -> int:
    import asyncio

    from ..lab.core import LabError
    from ..run.result import EnvironmentProblem
    from ..run.rundir import discard_run_dir

    assert job.run_dir is not None
    try:
        outcome = asyncio.run(job.run.start(job.run_dir, lambda r: send(("step", r))))
    except (EnvironmentProblem, LabError) as e:  # as -j 1: exit 3, no empty run directory
        print(f"netemu run: {job.name}: {e}", file=sys.stderr)
        discard_run_dir(job.run_dir)  # nothing left behind
        return 3
    send(("done", outcome.passed, outcome.run_dir, outcome.report, outcome.ladder))
    return 0


def _child(job: Job, parent: int, msg_w: int, log_w: int) -> NoReturn:
    """The forked child: runs ``job`` and exits with -j 1's code for it; never returns
    into the parent's frames."""
    code = 1
    try:
        _child_setup(parent, log_w)
        code = _child_run(job, _sender(msg_w))
    except KeyboardInterrupt:
        code = 130
    except SystemExit as e:  # SIGTERM, SIGHUP: 128 + the signal
        code = e.code if isinstance(e.code, int) else 1
    except BaseException:
        traceback.print_exc()
        code = 1
    finally:
        with contextlib.suppress(BaseException):
            sys.stdout.flush()
            sys.stderr.flush()
            import atexit

            atexit._run_exitfuncs()  # lab.core's: a lab left open is closed
        os._exit(code)


# --- the pool of children ---------------------------------------------------------------------


class _Pool:
    def __init__(self) -> None:
        self.sel = selectors.DefaultSelector()
        self.running: dict[int, Job] = {}  # pid -> job

    def start(self, job: Job) -> None:
        msg_r, msg_w = os.pipe()
        log_r, log_w = os.pipe()
        sys.stdout.flush()
        sys.stderr.flush()
        parent = os.getpid()
        pid = os.fork()
        if pid == 0:
            os.close(msg_r)
            os.close(log_r)
            _child(job, parent, msg_w, log_w)
        with contextlib.suppress(OSError):  # (the child does it too: whoever is first)
            os.setpgid(pid, pid)
        os.close(msg_w)
        os.close(log_w)
        job.pid, job.msg_fd, job.log_fd, job.t0 = pid, msg_r, log_r, time.monotonic()
        self.running[pid] = job
        for fd in (msg_r, log_r):
            os.set_blocking(fd, False)
            self.sel.register(fd, selectors.EVENT_READ, job)

    def poll(self, timeout: float) -> list[Job]:
        """Reads what the children said; returns the jobs whose child has ended."""
        ended = []
        for key, _ in self.sel.select(timeout):
            job: Job = key.data
            if job.t1 is not None:  # (its other pipe's event, in the same select)
                continue
            if not self._read(job, key.fd) and key.fd == job.msg_fd:
                self._reap(job)
                ended.append(job)
        return ended

    def _read(self, job: Job, fd: int) -> bool:
        """False at end of file."""
        while True:
            try:
                data = os.read(fd, 1 << 16)
            except BlockingIOError:
                return True
            if not data:
                return False
            (job.msg if fd == job.msg_fd else job.log).extend(data)
            if fd == job.msg_fd:
                self._messages(job)

    def _messages(self, job: Job) -> None:
        buf = job.msg
        while len(buf) >= _HEADER.size:
            (n,) = _HEADER.unpack_from(buf)
            if len(buf) < _HEADER.size + n:
                return
            message = pickle.loads(buf[_HEADER.size : _HEADER.size + n])
            del buf[: _HEADER.size + n]
            if message[0] == "step":
                job.steps.append(message[1])
            elif message[0] == "done":
                _, passed, run_dir, report, ladder = message
                job.outcome = Outcome(job.run.source, passed, run_dir, report, ladder)

    def _reap(self, job: Job) -> None:
        _, status = os.waitpid(job.pid, 0)
        job.code = os.waitstatus_to_exitcode(status)
        if job.code < 0:  # ended by a signal, as a shell reports it
            job.code = 128 - job.code
        job.t1 = time.monotonic()
        del self.running[job.pid]
        for fd in (job.msg_fd, job.log_fd):
            if fd == job.log_fd:  # what is left of its output (a lab's process may hold
                self._read(job, fd)  # the pipe open after the child: no waiting for it)
            self.sel.unregister(fd)
            os.close(fd)

    def interrupt(self, sig: int) -> list[Job]:
        """``sig`` to every child (by pid, once), then their ends, SIGKILL after
        _GRACE s; the jobs that ended meanwhile."""
        for pid in self.running:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, sig)
        ended: list[Job] = []
        deadline = time.monotonic() + _GRACE
        while self.running:
            left = deadline - time.monotonic()
            if left <= 0:
                for pid in self.running:
                    with contextlib.suppress(ProcessLookupError):
                        os.kill(pid, signal.SIGKILL)
                deadline = float("inf")
            ended += self.poll(min(max(left, 0.0), 0.5) if left > 0 else 0.5)
        return ended


@contextlib.contextmanager
def _signals_ignored() -> Iterator[None]:
    """While the children tear their labs down after a signal: further signals change
    nothing (each child already has its one)."""
    old = {sig: signal.signal(sig, lambda s, f: None) for sig in _SIGNALS}
    try:
        yield
    finally:
        for sig, handler in old.items():
            signal.signal(sig, handler)


# --- what is printed --------------------------------------------------------------------------


class _Display:
    """Plain lines: one verdict per file as it finishes (then its output, whole)."""

    def __init__(self, console: Any, jobs: list[Job]) -> None:
        self.console = console
        self.jobs = jobs

    def __enter__(self) -> _Display:
        return self

    def __exit__(self, *exc: object) -> None:
        pass

    def tick(self) -> None:
        pass

    def finished(self, job: Job) -> None:
        if job.outcome is not None:
            _verdict(self.console, job.run.source, job.outcome, True)
        elif job.code is not None and job.code > 128:
            self.console.print(f"[red]STOP[/red] {job.name}: ended by signal {job.code - 128}")
        if job.log:
            sys.stdout.flush()
            sys.stderr.write(job.log.decode(errors="replace"))
            sys.stderr.flush()


class _LiveDisplay(_Display):
    """On a terminal: a table of every file, redrawn from the pool's loop (rich's own
    refresh thread would be a thread in a process that forks)."""

    def __enter__(self) -> _LiveDisplay:
        from rich.live import Live

        self.live = Live(self._table(), console=self.console, auto_refresh=False, transient=True)
        self.live.start()
        self.drawn = 0.0
        return self

    def __exit__(self, *exc: object) -> None:
        self.live.stop()

    def tick(self) -> None:
        now = time.monotonic()
        if now - self.drawn >= 0.1:  # (a step's message wakes the loop: 10 draws/s at most)
            self.drawn = now
            self.live.update(self._table(), refresh=True)

    def _table(self) -> Any:
        from rich.table import Table

        table = Table(title=f"netemu run -j: {len(self.jobs)} files")
        for col in ("file", "status", "steps", "seconds"):
            table.add_column(col)
        now = time.monotonic()
        colour = {"pass": "green", "FAIL": "red", "error": "red", "running": "yellow"}
        for job in self.jobs:
            status = job.status
            seconds = ((job.t1 or now) - job.t0) if job.pid else None
            table.add_row(
                job.name,
                f"[{colour[status]}]{status}[/]" if status in colour else status,
                f"{len(job.steps)}/{len(job.run.source.steps)}",
                "" if seconds is None else f"{seconds:.1f}",
            )
        return table


def _details(console: Any, job: Job, quiet: bool) -> None:
    """A failed file, as -j 1 prints it."""
    sc = job.run.source
    console.print(
        f"[bold]{sc.name}[/bold] — {sc.description.strip()}"
        if sc.description
        else f"[bold]{sc.name}[/bold]"
    )
    on_step = _step_printer(console)
    for res in job.steps:
        on_step(res)
    assert job.outcome is not None
    _verdict(console, sc, job.outcome, quiet)


# --- the run ------------------------------------------------------------------------------

# What a run imports (and caches) only once it has begun: done here, once, before the
# children are forked, or each child pays it again (~70 ms of CPU for a scenario:
# anyio's backend, the raw link, sock_diag, pydantic's search of every installed
# package's entry points for its plugins).
_WARM = {
    "": ("netemu.link.raw", "netemu.link.ring", "netemu.lab.diag", "netemu.lab.rtnl"),
    "yaml": (
        "netemu.lab.kernel",
        "anyio._backends._asyncio",
        "anyio.streams.memory",
        "anyio.streams.stapled",
        "anyio.to_thread",
        "pydantic.dataclasses",
    ),
    "pkt": ("netemu.pkt.live", "netemu.pkt.sockdata", "netemu.trace.infer"),
}


def _warm(kinds: set[str]) -> None:
    import importlib

    for kind in ("", *sorted(kinds)):
        for name in _WARM.get(kind, ()):
            with contextlib.suppress(ImportError):
                importlib.import_module(name)
    if "yaml" in kinds:
        with contextlib.suppress(ImportError):
            from pydantic.plugin._loader import get_plugins

            get_plugins()  # cached for the children


def _first_stop(jobs: list[Job]) -> int | None:
    """The code of the first file (input order) that stopped the run, as with -j 1."""
    return next((c for j in jobs if (c := j.stop_code) is not None), None)


def _loop(args: argparse.Namespace, jobs: list[Job], pool: _Pool, display: _Display) -> int:
    """Starts files while fewer than -j run; 0, or why the run stopped starting them."""
    waiting = list(jobs)
    stop = 0
    while waiting or pool.running:
        while waiting and not stop and len(pool.running) < args.jobs:
            job = waiting.pop(0)
            job.run_dir = _run_dir(args.output, job.name, False)
            if job.run_dir is None:  # (why is on stderr) -j 1 stops here: exit 2
                job.code, job.t1 = 2, time.monotonic()
                stop = 2
                break
            pool.start(job)
        for job in pool.poll(0.25):
            display.finished(job)
            if job.stop_code is not None:
                stop = stop or job.stop_code
        display.tick()
        if stop:
            waiting.clear()
    return stop


def run_parallel(args: argparse.Namespace, loaded: Loaded) -> int:
    """The files of ``loaded``, up to ``args.jobs`` at once; -j 1's exit code."""
    _warm({run.kind for run in loaded.runs})
    console = make_console()  # rich on a terminal; plain text (no rich import) otherwise
    jobs = [Job(i, run) for i, run in enumerate(loaded.runs)]
    pool = _Pool()
    display = (_LiveDisplay if is_terminal() else _Display)(console, jobs)
    try:
        with display:
            stop = _loop(args, jobs, pool, display)
    except (KeyboardInterrupt, SystemExit) as e:
        code = 130 if isinstance(e, KeyboardInterrupt) else e.code
        sig = signal.SIGINT if isinstance(e, KeyboardInterrupt) else int(code or 143) - 128
        with _signals_ignored():
            for job in pool.interrupt(sig):
                display.finished(job)
        return int(code) if isinstance(code, int) else 1
    for job in jobs:  # (-j 1 prints a failed file whole as it ends, before any stop)
        if job.outcome is not None and not job.outcome.passed:
            _details(console, job, args.quiet)
    if stop:
        # No summary, no reports: as -j 1. Files already running when the stop came
        # ran to their end (their run directories stay); none was started after it.
        return _first_stop(jobs) or stop
    outcomes = [j.outcome for j in jobs if j.outcome is not None]
    late = [
        f"{o.scenario.name}: {o.report['netemu_late']}"
        for o in outcomes
        if o.report.get("netemu_late")
    ]
    return finish(console, args, outcomes, loaded, late)
