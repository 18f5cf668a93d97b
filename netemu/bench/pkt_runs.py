"""The two sides of `netemu bench pkt-suite`, one script at a time: netemu's verdict
(``run_netemu``, in this process) and packetdrill's (``run_packetdrill``, in a throw-away
network namespace, with the cubic shim ``build_shim`` makes), and the short reasons a
verdict is summed up by (``classify``). The suite, its arguments and its result:
pkt_suite.py.
"""

from __future__ import annotations

import contextlib
import gc
import hashlib
import os
import re
import shlex
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

SHIM_SOURCE = Path(__file__).with_name("cubic_shim.c")


class SuiteError(Exception):
    """Cannot run: ``status`` 2 (bad arguments) or 3 (environment)."""

    def __init__(self, message: str, status: int) -> None:
        super().__init__(message)
        self.status = status


# --- reasons ---------------------------------------------------------------------------

_RULES: tuple[tuple[re.Pattern[str], str], ...] = tuple(
    (re.compile(a), b)
    for a, b in (
        (r"system call '([^']+)' is not supported", "syscall {0}"),
        (r"TCP option '([^']+)' is not supported", "option {0}"),
        (r"socket option '?([A-Za-z0-9_]+)'? is not supported", "sockopt {0}"),
        (r"unsupported symbol '([^']+)'", "symbol {0}"),
        (r"(?<![A-Za-z] )option '?(--[A-Za-z0-9_]+)'? is not supported", "flag {0}"),
        (r"IP header fields", "IP header fields"),
        (r"'([^']+)' in a packet is not supported", "packet {0}"),
    )
)
_PARENS = re.compile(r"\s+\([^()]+\)")
_QUOTED_NAME = re.compile(r"'[A-Za-z_][A-Za-z0-9_.]*'|\"[^\"]*\"")
_NUMBER = re.compile(r"(?<![A-Za-z_])(?:0x[0-9a-fA-F]+|[0-9]+(?:\.[0-9]+)?)(?![A-Za-z_])")


def classify(message: str) -> str:
    """A short reason for a loader's message, the same for every script it stops:
    ``system call 'epoll_wait' is not supported`` -> ``syscall epoll_wait``; otherwise
    the message without its ``(...)`` asides, numbers and quoted names normalized."""
    msg = message.strip().splitlines()[0] if message.strip() else "unknown"
    for pat, fmt in _RULES:
        m = pat.search(msg)
        if m:
            return fmt.format(*m.groups())
    msg = _PARENS.sub("", msg)
    msg = _QUOTED_NAME.sub("'X'", msg)
    msg = _NUMBER.sub("N", msg)
    msg = re.sub(r"\s+", " ", msg).strip()
    return msg[:100] or "unknown"


def _pkt_error_parts(e: BaseException) -> tuple[str, int]:
    """(message, line) of the first problem of a PktError."""
    errors = getattr(e, "errors", None) or [e]
    first = errors[0]
    msg = getattr(first, "message", None)
    if isinstance(msg, str):
        return msg, int(getattr(first, "line", 0) or 0)
    text = str(first)
    m = re.match(r"^[^:]*:(\d+):\d+: (.*)$", text, re.DOTALL)
    if m:
        return m.group(2), int(m.group(1))
    return text, 0


def last_line(text: str) -> str | None:
    lines = [ln.strip() for ln in text.splitlines() if ln.strip()]
    return lines[-1] if lines else None


# --- the shim --------------------------------------------------------------------------


def cache_dir() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "netemu"


def build_shim(directory: Path | None = None) -> Path:
    """The compiled cubic shim (built once per source version); SuiteError(3) without cc."""
    cc = shutil.which("cc") or shutil.which("gcc")
    if cc is None:
        raise SuiteError(
            "no C compiler (`cc`): needed to build the LD_PRELOAD shim that "
            "gives packetdrill's sockets cubic (apt-get install gcc)",
            3,
        )
    src = SHIM_SOURCE.read_bytes()
    tag = hashlib.sha256(src).hexdigest()[:12]
    dirs = [directory] if directory is not None else [cache_dir(), Path(tempfile.gettempdir())]
    last_err = ""
    for d in dirs:
        so = d / f"cubic_shim-{tag}.so"
        if so.is_file():
            return so
        try:
            d.mkdir(parents=True, exist_ok=True)
            fd, tmp = tempfile.mkstemp(prefix=".cubic_shim-", suffix=".so", dir=d)
            os.close(fd)
        except OSError as e:
            last_err = str(e)
            continue
        try:
            out = subprocess.run(
                [cc, "-shared", "-fPIC", "-O2", "-o", tmp, str(SHIM_SOURCE), "-ldl"],
                capture_output=True,
                text=True,
                timeout=120,
            )
            if out.returncode != 0:
                raise SuiteError(
                    f"`cc` could not build {SHIM_SOURCE.name}:\n{out.stderr.strip()}", 3
                )
            os.replace(tmp, so)
            return so
        finally:
            with contextlib.suppress(OSError):
                os.unlink(tmp)
    raise SuiteError(f"no writable folder for the shim: {last_err}", 3)


# --- the runs --------------------------------------------------------------------------


@dataclass
class Verdict:
    verdict: str  # pass / fail / unsupported
    reason: str | None
    seconds: float
    unsupported: str | None = None  # the short reason, when unsupported
    late_runs: int = 0  # netemu's runs thrown away because netemu itself was late


# A run netemu itself started an event of late (``netemu_late``: another process held
# this one off; `netemu run` exits 3 for it) has no verdict on the kernel: it is run
# again, twice at most; late every time, its verdict is "late" (not a pass).
LATE_RETRIES = 2


def run_netemu(path: Path, argv: list[str], timeout: float, keep: Path | None = None) -> Verdict:
    """netemu's verdict on one script; never raises (but KeyboardInterrupt)."""
    import asyncio

    t0 = time.monotonic()
    old_cwd = os.getcwd()
    try:
        os.chdir(path.parent)
        from netemu.pkt import PktError, load_pkt

        try:
            sc = load_pkt(path, argv=argv)
        except PktError as e:
            msg, line = _pkt_error_parts(e)
            short = classify(msg)
            return Verdict(
                "unsupported",
                f"{short} (line {line})" if line else short,
                time.monotonic() - t0,
                short,
            )
        from netemu.pkt.session import run_pkt

        async def go() -> Any:
            with tempfile.TemporaryDirectory(prefix="netemu-pkt-suite-run-") as tmp:
                run_dir = keep if keep is not None else Path(tmp) / "run"
                return await asyncio.wait_for(run_pkt(sc, run_dir, write=keep is not None), timeout)

        # As `netemu run` before its first script (cli.resume_gc): what this process
        # holds (earlier scripts' traces, the loader's objects) moves out of the
        # collector's sight, so no collection walks it in the middle of the script.
        gc.collect()
        gc.freeze()
        late: list[str] = []
        for _ in range(1 + LATE_RETRIES):
            try:
                with contextlib.redirect_stdout(sys.stderr):
                    outcome = asyncio.run(go())
            except TimeoutError:
                return Verdict("fail", f"timeout after {timeout:g} s", time.monotonic() - t0)
            report = outcome.report or {}
            if not report.get("netemu_late"):
                break
            late.append(str(report["netemu_late"]))  # no verdict on the kernel: again
        else:  # late every time: no verdict, and not a pass
            return Verdict("late", late[-1], time.monotonic() - t0, late_runs=len(late))
        if outcome.passed:
            return Verdict("pass", None, time.monotonic() - t0, late_runs=len(late))
        error = report.get("error") or "failed"
        return Verdict("fail", str(error), time.monotonic() - t0, late_runs=len(late))
    except Exception as e:  # a bug or the environment: this script fails, the bench goes on
        return Verdict("fail", f"{type(e).__name__}: {e}", time.monotonic() - t0)
    finally:
        os.chdir(old_cwd)


_NETNS_SH = 'ip link set dev lo up && exec "$0" "$@"'


def packetdrill_command(binary: str, path: Path, argv: list[str]) -> list[str]:
    """In a new network namespace with lo up (as in_netns.sh), packetdrill on ``path``
    (run from its folder)."""
    return ["unshare", "-n", "--", "/bin/sh", "-c", _NETNS_SH, binary, *argv, path.name]


def run_packetdrill(
    binary: str,
    path: Path,
    argv: list[str],
    timeout: float,
    shim: Path | None,
    keep: Path | None = None,
) -> Verdict:
    """packetdrill's verdict on one script: exit status 0 passes."""
    cmd = packetdrill_command(binary, path, argv)
    env = dict(os.environ)
    if shim is not None:
        env["LD_PRELOAD"] = " ".join(x for x in (str(shim), env.get("LD_PRELOAD", "")) if x)
    t0 = time.monotonic()
    try:
        proc = subprocess.Popen(
            cmd,
            cwd=path.parent,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            start_new_session=True,
        )
    except OSError as e:
        return Verdict("fail", f"cannot start: {e}", time.monotonic() - t0)
    timed_out = False
    try:
        out, err = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        timed_out = True
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)  # its own session: packetdrill and its commands
        out, err = proc.communicate()
    finally:
        if proc.poll() is None:  # interrupted
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
    seconds = time.monotonic() - t0
    stdout = out.decode(errors="replace")
    stderr = err.decode(errors="replace")
    if keep is not None:
        keep.parent.mkdir(parents=True, exist_ok=True)
        keep.write_text(
            f"$ cd {shlex.quote(str(path.parent))} && {shlex.join(cmd)}\nexit status: "
            f"{proc.returncode}\n--- stdout\n{stdout}--- stderr\n{stderr}"
        )
    if timed_out:
        return Verdict("fail", f"timeout after {timeout:g} s", seconds)
    if proc.returncode == 0:
        return Verdict("pass", None, seconds)
    reason = last_line(stderr) or last_line(stdout)
    if reason is None:
        rc = proc.returncode
        reason = f"killed by signal {-rc}" if rc < 0 else f"exit status {rc}"
    return Verdict("fail", reason, seconds)
