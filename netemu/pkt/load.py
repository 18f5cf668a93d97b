"""Load a .pkt script: parse it, check every system call and option, and find what
its shell includes set (sysctls, congestion control) before anything runs.

``load_pkt(path)`` returns a ``PktScript`` (duck-compatible with what ``netemu run``
reads of a scenario: ``name``, ``description``, ``steps``) or raises ``PktError``
whose ``errors`` lists every problem as ``file:line:col: message``.
"""

from __future__ import annotations

import ipaddress
import re
import shlex
from dataclasses import dataclass, field
from pathlib import Path

from .model import Code, Command, Event, Script, Syscall
from .parser import PktError, parse_file, parse_text

# packetdrill's command-line options (also a script's leading --option=value lines):
# name -> type. Those in IGNORED change nothing in netemu (docs/packetdrill.md says why).
KNOWN_OPTIONS: dict[str, type] = {
    "tolerance_usecs": int,
    "tolerance_percent": float,
    "ip_version": str,
    "bind_port": int,
    "connect_port": int,
    "tcp_ts_tick_usecs": int,
    "mss": int,
    "mtu": int,
    "local_ip": str,
    "remote_ip": str,
    "gateway_ip": str,
    "netmask_ip": str,
    "init_scripts": str,
    "tcp_ts_ecr_scaled": bool,
    "strict_segments": bool,
    "non_fatal": str,
    "dry_run": bool,
    "send_omit_free": bool,
    "speed": int,
    "verbose": bool,
    "debug": bool,
    "is_anyip": bool,
}
# Values the lab can carry out: ports, an IPv4 link's MTU (RFC 791's 68 to a veth's
# 65535), an MSS within it, a finite tolerance.
_RANGES: dict[str, tuple[float, float]] = {
    "bind_port": (1, 65535),
    "connect_port": (1, 65535),
    "mtu": (68, 65535),
    "mss": (1, 65495),
    "tolerance_percent": (0, 100),
    "tcp_ts_tick_usecs": (1, 10**9),
}
IGNORED_OPTIONS = (
    "verbose",
    "debug",
    "send_omit_free",
    "speed",
    "is_anyip",
    "tcp_ts_ecr_scaled",
)
REFUSED_OPTIONS = (
    "wire_client",
    "wire_server",
    "wire_server_ip",
    "wire_server_at",
    "wire_server_port",
    "wire_client_dev",
    "wire_server_dev",
    "so_filename",
    "so_flags",
    "code_command",
    "code_format",
    "code_sockopt",
    "psp_udp_port",
)


@dataclass
class PktScript:
    """A loaded script, ready to run (``netemu.pkt.session.run_pkt``)."""

    script: Script
    tolerance_usecs: int = 4000
    tolerance_percent: float = 12.5
    bind_port: int = 8080
    connect_port: int = 8080
    # "ipv4", "ipv6" (the wire and the sockets IPv6) or "ipv4-mapped-ipv6" (AF_INET6
    # sockets, IPv4 on the wire), as packetdrill's --ip_version.
    ip_version: str = "ipv4"
    # packetdrill's addresses, mapped onto the lab's; with --ip_version=ipv6 and none
    # given, packetdrill's IPv6 defaults (config.c): ``finish_addresses``.
    local_ip: str = "192.168.0.1"
    remote_ip: str = "192.0.2.1"
    netmask_ip: str = "255.255.0.0"
    gateway_ip: str | None = None
    mtu: int = 1500
    mss: int | None = None
    tcp_ts_tick_usecs: int = 0
    strict_segments: bool = False
    dry_run: bool = False
    non_fatal: tuple[str, ...] = ()
    init_scripts: tuple[str, ...] = ()
    defines: dict[str, str] = field(default_factory=dict)
    cleanup: Event | None = None  # the trailing command with no time (packetdrill's cleanup)
    sysctls: dict[str, str] = field(default_factory=dict)  # from shell includes, statically
    congestion: str | None = None  # tcp_congestion_control a shell include sets
    includes: list[str] = field(default_factory=list)  # files the commands name
    given: set[str] = field(default_factory=set)  # the address options set

    @property
    def six(self) -> bool:
        """The wire is IPv6 (``--ip_version=ipv6``)."""
        return self.ip_version == "ipv6"

    @property
    def local_net(self) -> ipaddress.IPv4Network | ipaddress.IPv6Network:
        """The script's local subnet: ``--netmask_ip`` for IPv4, packetdrill's /48
        (DEFAULT_V6_LIVE_PREFIX_LEN) for IPv6."""
        if self.six:
            return ipaddress.IPv6Network(f"{self.local_ip}/48", strict=False)
        return ipaddress.IPv4Network(f"{self.local_ip}/{self.netmask_ip}", strict=False)

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

    def trusted_code(self) -> tuple[int, int]:
        """What a run of this script executes beyond packets and system calls: (shell
        commands, ``%{ }%`` Python snippets). Shell commands: the ``--init_scripts``, the
        init commands, the events' and the cleanup command, each ``/bin/sh -c`` as root in
        the lab's peer namespace from the script's folder (``commands.run_command``); the
        snippets: ``python -m netemu.pkt.code`` there (``commands.run_code_blocks``)."""
        events = [
            *self.script.init_commands,
            *self.script.events,
            *((self.cleanup,) if self.cleanup is not None else ()),
        ]
        shell = len(self.init_scripts) + sum(isinstance(ev.action, Command) for ev in events)
        return shell, sum(isinstance(ev.action, Code) for ev in events)

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


def _option(sc: PktScript, name: str, value: str, file: str, line: int, col: int) -> None:
    if name in REFUSED_OPTIONS:
        raise PktError(
            file,
            line,
            col,
            f"option --{name} is not supported by netemu "
            "(packetdrill's remote and shared-object modes)",
        )
    if name not in KNOWN_OPTIONS:
        raise PktError(
            file,
            line,
            col,
            f"unknown option --{name} (packetdrill's options: "
            f"{', '.join('--' + k for k in sorted(KNOWN_OPTIONS))})",
        )
    kind = KNOWN_OPTIONS[name]
    try:
        v: object = (value in ("", "1", "true", "yes")) if kind is bool else kind(value)
    except ValueError:
        raise PktError(file, line, col, f"--{name}: bad value {value!r}") from None
    if name in IGNORED_OPTIONS:
        return
    lo_hi = _RANGES.get(name)
    if lo_hi is not None and isinstance(v, int | float) and not lo_hi[0] <= v <= lo_hi[1]:
        # (--mtu 100000 failed the lab's set-up with a traceback, --bind_port 70000 a run)
        raise PktError(file, line, col, f"--{name}={value}: out of range ({lo_hi[0]}-{lo_hi[1]})")
    if name == "tolerance_usecs":
        assert isinstance(v, int)  # KNOWN_OPTIONS: an int
        if v <= 0:
            raise PktError(file, line, col, f"bad --tolerance_usecs: {value}")
        sc.tolerance_usecs = v
    elif name == "ip_version":
        if v not in ("ipv4", "ipv6", "ipv4-mapped-ipv6"):
            raise PktError(
                file,
                line,
                col,
                f"--ip_version={v}: unknown (packetdrill's are ipv4, ipv6, ipv4-mapped-ipv6)",
            )
        sc.ip_version = str(v)
    elif name in ("local_ip", "remote_ip", "gateway_ip", "netmask_ip"):
        try:
            ip = ipaddress.ip_address(str(v).split("/", 1)[0])
        except ValueError:
            raise PktError(file, line, col, f"--{name}={v}: not an IP address") from None
        if name == "netmask_ip" and ip.version != 4:
            raise PktError(file, line, col, f"--{name}={v}: an IPv4 netmask (a.b.c.d)")
        setattr(sc, name, str(ip))
        sc.given.add(name)
    elif name == "non_fatal":
        sc.non_fatal = tuple(x for x in str(v).split(",") if x)
    elif name == "init_scripts":
        sc.init_scripts = tuple(x for x in str(v).split(",") if x)
    else:
        setattr(sc, name, v)


# packetdrill's IPv6 defaults (config.c, set_ipv6_defaults): the local address in a
# unique local /48 (packetdrill picks a random host in it), the remote one from the
# documentation prefix, a gateway in the local /48.
V6_DEFAULTS = {
    "local_ip": "fd3d:fa7b:d17d::1",
    "remote_ip": "2001:db8::1",
    "gateway_ip": "fd3d:fa7b:d17d:8888::",
}


def _finish_addresses(sc: PktScript, final: dict[str, tuple[str, str, int, int]]) -> list[PktError]:
    """The addresses of the script's IP version: packetdrill's IPv6 defaults for those
    not given, and every given one of that version (packetdrill: "bad IPv6 address")."""
    errors = []
    want = 6 if sc.six else 4
    for name in ("local_ip", "remote_ip", "gateway_ip"):
        if name not in sc.given:
            if sc.six:
                setattr(sc, name, V6_DEFAULTS[name])
            continue
        if ipaddress.ip_address(getattr(sc, name)).version != want:
            v, where, line, col = final[name]  # (as typed)
            errors.append(
                PktError(
                    where,
                    line,
                    col,
                    f"--{name}={v}: not an IPv{want} address (--ip_version={sc.ip_version})",
                )
            )
    if sc.six and sc.mtu < 1280:
        _, where, line, col = final.get("mtu", ("", "<command line>", 0, 0))
        errors.append(
            PktError(where, line, col, f"--mtu={sc.mtu}: IPv6 needs at least 1280 (RFC 8200)")
        )
    return errors


def split_args(argv: list[str]) -> tuple[list[tuple[str, str]], dict[str, str], list[str]]:
    """packetdrill's command line: ``--name=value``/``--name value`` options, ``-D
    NAME=VALUE`` defines, ``-v``; returns (options, defines, other words)."""
    opts: list[tuple[str, str]] = []
    defines: dict[str, str] = {}
    rest: list[str] = []
    i = 0
    while i < len(argv):
        w = argv[i]
        if w in ("-D", "--define"):
            if i + 1 >= len(argv) or "=" not in argv[i + 1]:
                raise PktError("<command line>", 0, 0, f"{w} needs NAME=VALUE")
            k, v = argv[i + 1].split("=", 1)
            defines[k] = v
            i += 2
            continue
        if w.startswith("-D") and len(w) > 2:
            k, _, v = w[2:].partition("=")
            defines[k] = v
        elif w.startswith("--define="):
            k, _, v = w[len("--define=") :].partition("=")
            defines[k] = v
        elif re.fullmatch(r"-v+", w):
            opts.append(("verbose", "1"))
        elif w.startswith("--"):
            name, eq, v = w[2:].partition("=")
            name = name.replace("-", "_")
            if not eq and KNOWN_OPTIONS.get(name, bool) is not bool and i + 1 < len(argv):
                v = argv[i + 1]
                i += 1
            opts.append((name, v))
        else:
            rest.append(w)
        i += 1
    return opts, defines, rest


_ARITH = re.compile(r"\$\(\(([0-9+\-*/() ]+)\)\)")


def _expand(text: str) -> str:
    """The shell's ``$((15*1024*1024))`` arithmetic, which packetdrill's defaults use."""

    def arith(m: re.Match[str]) -> str:
        expr = m.group(1)
        if not re.fullmatch(r"[0-9+\-*/() ]+", expr):
            return m.group(0)
        try:
            return str(
                int(eval(expr.replace("/", "//"), {"__builtins__": {}}))
            )  # arithmetic only (checked above)
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


def check(
    script: Script, argv: list[str] | None = None, defines: dict[str, str] | None = None
) -> PktScript:
    sc = PktScript(script)
    errors: list[PktError] = []
    file = script.path
    sc.defines = dict(defines or {})
    cli, _defs, _rest = split_args(list(argv or []))
    # packetdrill's order: the script's own --options, then the command line's, which
    # overwrite them (config.c, parse_and_finalize_config): only the value that wins is
    # checked (a script saying --ip_version=ipv6 run with --ip_version=ipv4 is IPv4).
    final: dict[str, tuple[str, str, int, int]] = {}
    for opt in script.options:
        final[opt.name] = (opt.value, file, opt.line, opt.col)
    for name, v in cli:
        final[name] = (v, "<command line>", 0, 0)
    for name, (v, where, line, col) in final.items():
        try:
            _option(sc, name, v, where, line, col)
        except PktError as e:
            errors.append(e)
    errors.extend(_finish_addresses(sc, final))
    # packetdrill's cleanup command: a command with no time after the last event, run
    # at the end whether the script passed or failed (run.c, run_cleanup_command).
    last = script.events[-1] if script.events else None
    if (
        last is not None
        and isinstance(last.action, Command)
        and last.time.text == ""
        and len(script.events) > 1
    ):
        sc.cleanup = last
        script.events = script.events[:-1]
    first = script.events[0]
    if first.time.kind not in ("abs", "rel") or first.time.start != 0:
        errors.append(
            PktError(
                file,
                first.line,
                first.col,
                f"the first event must be at time 0, not '{first.time.text}'",
            )
        )
    for ev in script.events:
        why = _semantic(ev) or _icmp_names(ev, sc.six)
        if why:
            errors.append(PktError(file, ev.line, ev.col, why))
        if isinstance(ev.action, Syscall):
            try:
                _check_call(ev.action, file, ev)
            except PktError as e:
                errors.append(e)
    _scan_commands(sc, script.init_commands + script.events, Path(file).resolve().parent)
    if errors:
        first_err = errors[0]
        first_err.errors = [*errors]
        raise first_err
    return sc


_OPT_LEN = {
    "nop": lambda v: 1,
    "eol": lambda v: 1,
    "mss": lambda v: 4,
    "wscale": lambda v: 3,
    "sackOK": lambda v: 2,
    "sack": lambda v: 2 + 8 * len(v),
    "TS": lambda v: 10,
    "md5": lambda v: 18,
    "FO": lambda v: 2 + (len(v) if isinstance(v, bytes) else 8 if v else 0),
    "FOEXP": lambda v: 4 + (len(v) if isinstance(v, bytes) else 8 if v else 0),
    "ECN": lambda v: 2 + 3 * len(v),
}


def _semantic(ev: Event) -> str | None:
    """packetdrill's semantic checks on an event (parser.y, tcp_packet.c): what its
    grammar refuses, netemu refuses too, rather than run a script packetdrill would not."""
    from .model import Code, PacketSpec

    a, t = ev.action, ev.time
    outbound = isinstance(a, PacketSpec) and a.direction == ">"
    if t.text == "" and isinstance(a, Code | Command):
        return (
            "an event needs a time: a %{ }% block or a command after the first event "
            "is written '+0 %{ ... }%' (packetdrill: syntax error)"
        )
    if t.kind == "any" and not outbound:
        return "event time * can only be used with outbound packets"
    if t.kind in ("range", "rrange") and not outbound:
        return "event time range can only be used with outbound packets"
    if t.end is not None and t.kind in ("range", "rrange") and t.end < t.start:
        return "time range is backwards"
    if isinstance(a, PacketSpec):
        ip = a.ip
        if (
            ip is not None
            and ip.ttl is not None
            and (ip.tos is not None or ip.ecn is not None or ip.flowlabel is not None)
        ):
            return (
                "IP fields: ttl goes alone, '(ttl N)'; tos or ECN may go with a flowlabel "
                "(packetdrill's grammar)"
            )
        if a.options and not a.options_any:
            try:
                n = sum(_OPT_LEN[o.kind](o.value) for o in a.options)
            except (KeyError, TypeError):
                n = 0
            if n > 40:  # the run failed building the segment
                return (
                    f"TCP option list too long: {n} bytes, more than the 40 a TCP header "
                    "holds (packetdrill: TCP option list too long)"
                )
            if n % 4:
                return (
                    f"TCP options are not padded correctly: {n} bytes, not a multiple "
                    "of 4 (add nop or eol)"
                )
    return None


def _icmp_names(ev: Event, six: bool) -> str | None:
    """An ICMP line's type and code must be names of the script's IP version's ICMP
    (packetdrill's parse_icmp_type_and_code: "bad ICMP type/code", before anything
    runs); IPv4's ``frag_needed`` is not ICMPv6's, whose ``packet_too_big`` is."""
    from .fields import icmp_code, icmp_type
    from .model import PacketSpec

    a = ev.action
    if not isinstance(a, PacketSpec) or a.icmp is None:
        return None
    ic, v = a.icmp, "ICMPv6" if six else "ICMP"
    if icmp_type(ic.type, six) is None:
        return f"bad {v} type {ic.type} (packetdrill: semantic error)"
    if ic.code is not None and icmp_code(ic.code, ic.type, six) is None:
        hint = ""
        if six and icmp_code(ic.code) is not None:
            hint = " (an IPv4 code: over IPv6, 'packet_too_big mtu N' says the path MTU)"
        elif not six and icmp_code(ic.code, ic.type, True) is not None:
            hint = " (an ICMPv6 code: run with --ip_version=ipv6?)"
        return f"bad {v} code {ic.code} for {ic.type}{hint} (packetdrill: semantic error)"
    return None


def _check_call(a: Syscall, file: str, ev: Event) -> None:
    from .symbols import CALLS, ScriptValueError, check_symbols

    line, col = a.line or ev.line, a.col or ev.col
    if a.name not in CALLS:
        raise PktError(file, line, col, f"system call '{a.name}' is not supported")
    from .symbols import ARITY

    counts = ARITY.get(a.name, ())
    if counts and len(a.args) not in counts:
        want = " or ".join(map(str, counts))
        raise PktError(file, line, col, f"{a.name}() takes {want} arguments, got {len(a.args)}")
    try:
        for e in (*a.args, a.ret):
            check_symbols(e)
        if a.errno is not None:
            from .symbols import SYMBOLS

            if a.errno not in SYMBOLS:
                raise ScriptValueError(f"unknown errno {a.errno!r}")
    except ScriptValueError as e:
        x = e.expr
        raise PktError(
            file,
            x.line if x is not None and x.line else line,
            x.col if x is not None and x.col else col,
            str(e),
        ) from None


def load_pkt(path: str | Path, argv: list[str] | None = None) -> PktScript:
    """Parse and check a .pkt file with packetdrill's command-line ``argv`` (options and
    ``-D`` defines); ``PktError`` (with ``.errors``) on any problem."""
    _opts, defines, _rest = split_args(list(argv or []))
    try:
        return check(parse_file(path, defines=defines), argv, defines)
    except OSError as e:
        raise PktError(str(path), 0, 0, e.strerror or str(e)) from None


def load_pkt_text(text: str, path: str = "<script>", argv: list[str] | None = None) -> PktScript:
    _opts, defines, _rest = split_args(list(argv or []))
    return check(parse_text(text, path, defines=defines), argv, defines)
