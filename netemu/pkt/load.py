"""Load a .pkt script: parse it, check every system call and option, and find what
its shell includes set (sysctls, congestion control) before anything runs.

``load_pkt(path)`` returns a ``PktScript`` (duck-compatible with what ``netemu run``
reads of a scenario: ``name``, ``description``, ``steps``) or raises ``PktError``
whose ``errors`` lists every problem as ``file:line:col: message``.
"""

from __future__ import annotations

import re
import shlex
from dataclasses import dataclass, field
from pathlib import Path

from .calls import Call, normalize
from .model import Command, Event, Script, Syscall
from .parser import PktError, parse_file, parse_text

# --option=value lines a script may start with (packetdrill's command-line options).
KNOWN_OPTIONS = {
    "tolerance_usecs": int, "tolerance_percent": float, "ip_version": str,
    "bind_port": int, "connect_port": int, "tcp_ts_tick_usecs": int, "mss": int,
}
IGNORED_OPTIONS = ("verbose", "debug", "non_fatal", "dry_run", "send_omit_free")


@dataclass
class PktScript:
    """A loaded script, ready to run (``netemu.pkt.session.run_pkt``)."""

    script: Script
    calls: dict[int, Call] = field(default_factory=dict)  # id(Syscall) -> Call
    tolerance_usecs: int = 4000
    tolerance_percent: float = 12.5
    sysctls: dict[str, str] = field(default_factory=dict)  # from shell includes, statically
    congestion: str | None = None  # tcp_congestion_control a shell include sets
    includes: list[str] = field(default_factory=list)  # files the commands name

    @property
    def name(self) -> str:
        return self.script.name

    @property
    def description(self) -> str:
        return self.script.description

    @property
    def steps(self) -> list[Event]:
        return self.script.events

    @property
    def path(self) -> str:
        return self.script.path

    @property
    def pkt(self) -> PktScript:  # `netemu run` tells a .pkt run by this attribute
        return self

    def scheduled_seconds(self) -> float:
        """How long the script itself takes, by its own clock: every wait it asks for,
        with no processing time (what a per-script overhead is measured against)."""
        t = 0.0
        latest = 0.0
        for ev in self.script.events:
            k = ev.time.kind
            if k in ("abs", "range"):
                t = max(t, ev.time.start)
            elif k in ("rel", "rrange"):
                t += ev.time.start
            a = ev.action
            if isinstance(a, Syscall) and a.end is not None:
                end = (t - ev.time.start + a.end) if ev.time.relative else a.end
                latest = max(latest, end)
            latest = max(latest, t)
        return latest


def _option(sc: PktScript, opt: object, file: str) -> None:
    name, value = opt.name, opt.value  # type: ignore[attr-defined]
    line, col = opt.line, opt.col  # type: ignore[attr-defined]
    if name in IGNORED_OPTIONS:
        return
    if name not in KNOWN_OPTIONS:
        raise PktError(file, line, col, f"option --{name} is not supported (supported: "
                       f"{', '.join('--' + k for k in KNOWN_OPTIONS)})")
    try:
        v = KNOWN_OPTIONS[name](value)
    except ValueError:
        raise PktError(file, line, col, f"--{name}: bad value {value!r}") from None
    if name == "tolerance_usecs":
        sc.tolerance_usecs = int(v)
    elif name == "tolerance_percent":
        sc.tolerance_percent = float(v)
    elif name == "ip_version" and v != "ipv4":
        raise PktError(file, line, col, f"--ip_version={v} is not supported (ipv4 only)")
    elif name in ("bind_port", "connect_port") and v != 8080:
        raise PktError(file, line, col, f"--{name}={v} is not supported (8080 only)")
    elif name in ("mss", "tcp_ts_tick_usecs"):
        raise PktError(file, line, col, f"option --{name} is not supported")


_ARITH = re.compile(r"\$\(\(([0-9+\-*/() ]+)\)\)")


def _expand(text: str) -> str:
    """The shell's ``$((15*1024*1024))`` arithmetic, which packetdrill's defaults use."""
    def arith(m: re.Match[str]) -> str:
        expr = m.group(1)
        if not re.fullmatch(r"[0-9+\-*/() ]+", expr):
            return m.group(0)
        try:
            return str(int(eval(expr.replace("/", "//"), {"__builtins__": {}})))  # arithmetic only (checked above)
        except Exception:
            return m.group(0)

    return _ARITH.sub(arith, text)


def shell_sysctls(text: str) -> dict[str, str]:
    """``net.*`` sysctls a shell text sets with ``sysctl [-q] [-w] name=value`` or
    ``echo value > /proc/sys/net/...``, in order (later wins)."""
    out: dict[str, str] = {}
    for raw in text.splitlines():
        line = raw.split("#", 1)[0].strip()
        if not line:
            continue
        for part in re.split(r"&&|;|\|\|", line):
            part = _expand(part.strip())
            try:
                words = shlex.split(part)
            except ValueError:
                continue
            words = [w for w in words if not re.fullmatch(r"\d?>+\S*|/dev/null|2>&1", w)]
            if words and words[0] == "sysctl":
                for w in words[1:]:
                    if w.startswith("-") or "=" not in w:
                        continue
                    k, v = w.split("=", 1)
                    if k.startswith("net."):
                        out[k] = " ".join(v.split())
            else:
                m = re.fullmatch(r"echo\s+(.*?)\s*>\s*/proc/sys/(net/[\w/]+)", part)
                if m:
                    out[m.group(2).replace("/", ".")] = " ".join(shlex.split(m.group(1)))
    return out


def _scan_commands(sc: PktScript, events: list[Event], base: Path) -> None:
    for ev in events:
        a = ev.action
        if not isinstance(a, Command):
            continue
        texts = [a.text]
        try:
            words = shlex.split(a.text)
        except ValueError:
            words = []
        for w in words:
            p = (base / w) if not w.startswith("/") else Path(w)
            if w.endswith((".sh", ".bash")) or "/" in w:
                try:
                    if p.is_file():
                        texts.append(p.read_text(errors="replace"))
                        sc.includes.append(str(p))
                except OSError:
                    pass
        for t in texts:
            sc.sysctls.update(shell_sysctls(t))
    cc = sc.sysctls.get("net.ipv4.tcp_congestion_control")
    sc.congestion = cc if cc and re.fullmatch(r"[a-z0-9_]+", cc) else None


def check(script: Script) -> PktScript:
    sc = PktScript(script)
    errors: list[PktError] = []
    file = script.path
    for opt in script.options:
        try:
            _option(sc, opt, file)
        except PktError as e:
            errors.append(e)
    first = script.events[0]
    if first.time.kind not in ("abs", "rel") or first.time.start != 0:
        errors.append(PktError(file, first.line, first.col,
                               f"the first event must be at time 0, not '{first.time.text}'"))
    for ev in script.events:
        if isinstance(ev.action, Syscall):
            try:
                a = ev.action
                sc.calls[id(a)] = normalize(a, file, a.line or ev.line, a.col or ev.col)
            except PktError as e:
                errors.append(e)
    _scan_commands(sc, script.init_commands + script.events, Path(file).resolve().parent)
    if errors:
        first_err = errors[0]
        first_err.errors = errors
        raise first_err
    return sc


def load_pkt(path: str | Path) -> PktScript:
    """Parse and check a .pkt file; ``PktError`` (with ``.errors``) on any problem."""
    try:
        return check(parse_file(path))
    except OSError as e:
        raise PktError(str(path), 0, 0, e.strerror or str(e)) from None


def load_pkt_text(text: str, path: str = "<script>") -> PktScript:
    return check(parse_text(text, path))
