"""Processes a lab starts: in a namespace, in their own process group, dying with us.

Each child is forked from the namespace's ``NsThread`` (so it starts in that
namespace, no ``nsenter`` needed), gets ``PR_SET_PDEATHSIG(SIGKILL)`` (delivered
when that thread, which lives as long as the lab, dies: on SIGKILL of netemu too),
leads a new process group (so its own children are stopped with it), and carries
``NETEMU_RUN=<runid>`` so ``netemu lab clean`` can recognise anything that escaped.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import time
from collections.abc import Callable, Mapping, Sequence
from typing import IO, Any

PR_SET_PDEATHSIG = 1


def _make_preexec(parent: int) -> Callable[[], None]:
    from ..linux import libc

    prctl = libc().prctl  # resolved before fork: the child only calls it

    def preexec() -> None:
        prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
        if os.getppid() != parent:  # the parent died before prctl: follow it
            os._exit(1)

    return preexec


class LabProcess:
    """A process started by a lab. ``stop()`` signals its whole process group."""

    def __init__(
        self,
        popen: subprocess.Popen[Any],
        name: str,
        *,
        stop_signal: int = signal.SIGTERM,
        stop_timeout: float = 1.0,
    ) -> None:
        self.popen = popen
        self.pid = popen.pid
        self.name = name
        self.stop_signal = stop_signal
        self.stop_timeout = stop_timeout

    def __repr__(self) -> str:
        return f"<LabProcess {self.name} pid={self.pid} rc={self.popen.returncode}>"

    @property
    def returncode(self) -> int | None:
        return self.popen.poll()

    @property
    def running(self) -> bool:
        return self.popen.poll() is None

    def signal_group(self, sig: int) -> None:
        """Signal the process group. Only while the leader is not reaped: until then its
        pid, hence the group id, cannot be reused by anyone else."""
        if self.popen.returncode is None:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(self.pid, sig)

    def wait(self, timeout: float | None = None) -> int:
        return self.popen.wait(timeout)

    def stop(self, timeout: float | None = None) -> int:
        """``stop_signal`` to the group, wait up to ``timeout`` (default ``stop_timeout``),
        then SIGKILL the group; reap. Idempotent."""
        p = self.popen
        if p.returncode is None and _exited_unreaped(self.pid):
            # The leader is gone but not reaped: sweep its group before reaping it.
            self.signal_group(signal.SIGKILL)
        elif p.returncode is None:
            timeout = self.stop_timeout if timeout is None else timeout
            if self.stop_signal != signal.SIGKILL and timeout > 0:
                self.signal_group(self.stop_signal)
                deadline = time.monotonic() + timeout
                while time.monotonic() < deadline and not _exited_unreaped(self.pid):
                    time.sleep(0.005)
            self.signal_group(signal.SIGKILL)
        rc = p.wait()
        for f in (p.stdin, p.stdout, p.stderr):
            if f is not None:
                with contextlib.suppress(OSError):
                    f.close()
        return rc


def _exited_unreaped(pid: int) -> bool:
    """True when ``pid`` (our child) has exited; it stays a zombie, so its group id stays
    ours."""
    try:
        info = os.waitid(os.P_PID, pid, os.WEXITED | os.WNOHANG | os.WNOWAIT)
    except ChildProcessError:
        return True
    return info is not None


def spawn(
    argv: Sequence[str],
    *,
    env: Mapping[str, str],
    name: str | None = None,
    stdin: int | IO[Any] | None = None,
    stdout: int | IO[Any] | None = None,
    stderr: int | IO[Any] | None = None,
    cwd: str | None = None,
    stop_signal: int = signal.SIGTERM,
    stop_timeout: float = 1.0,
    pass_fds: Sequence[int] = (),
) -> LabProcess:
    """Start ``argv`` from the *calling thread* (call it on a lab's ``NsThread``)."""
    popen = subprocess.Popen(
        list(argv),
        env=dict(env),
        stdin=stdin,
        stdout=stdout,
        stderr=stderr,
        cwd=cwd,
        preexec_fn=_make_preexec(os.getpid()),
        process_group=0,
        close_fds=True,
        pass_fds=tuple(pass_fds),
    )
    return LabProcess(
        popen, name or os.path.basename(argv[0]), stop_signal=stop_signal, stop_timeout=stop_timeout
    )


def stop_all(procs: Sequence[LabProcess]) -> None:
    """Stop the processes still running, at once: each gets its ``stop_signal``, then
    up to the longest ``stop_timeout`` to exit, then SIGKILL."""
    procs = [p for p in procs if p.popen.returncode is None]
    if not procs:
        return
    for p in procs:
        if p.stop_signal != signal.SIGKILL and p.stop_timeout > 0:
            p.signal_group(p.stop_signal)
    deadline = time.monotonic() + max(p.stop_timeout for p in procs)
    for p in procs:
        with contextlib.suppress(subprocess.TimeoutExpired):
            p.popen.wait(max(0.0, deadline - time.monotonic()))
    for p in procs:
        p.stop(timeout=0)
