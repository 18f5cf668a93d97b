"""``netemu convert test.pkt``: the equivalent YAML scenario of a packetdrill script.

The scenario uses a raw connection (netemu's endpoint sends nothing by itself):
``<`` packets become ``inject`` steps, ``>`` packets ``expect_segment`` (dir: in), system
calls ``peer:`` steps on the kernel agent, relative times ``sleep`` steps. What the
YAML format cannot say is kept as a comment at its place (the script line is
quoted above each group of steps):

- return values, errnos, fcntl/poll/getsockopt checks and ``%{ }%`` assertions;
- timing tolerance (``expect_segment`` gets a ``within`` window, no lower bound);
- a blocking call (``...``) is moved after the packets that complete it, since YAML
  steps run one after the other;
- one TSO-sized ``>`` packet becomes one ``expect_segment`` per MSS-sized segment;
- an inbound ``TS ecr`` is sent as written (``netemu run X.pkt`` maps it to the
  kernel's real TS value; a YAML run does not);
- shell commands: their ``net.*`` sysctls (found statically) go to ``sysctls:``.

Run the .pkt itself (``netemu run X.pkt``) for packetdrill's exact semantics.
"""

from __future__ import annotations

from typing import Any

from .calls import DEFAULT_PORT, Call
from .load import PktScript
from .model import Code, Command, Event, PacketSpec, Syscall


def _flow(value: Any) -> str:
    import yaml

    text = yaml.safe_dump(
        value, default_flow_style=True, sort_keys=False, width=10_000, allow_unicode=True
    )
    return text.strip().removesuffix("...").strip()


def _duration(seconds: float) -> str:
    ms = round(seconds * 1000, 3)
    return f"{ms:g}ms"


def _flags(pkt: PacketSpec) -> str:
    return "none" if pkt.flags_text == "-" else pkt.flags_text


class _Converter:
    def __init__(self, sc: PktScript) -> None:
        self.sc = sc
        self.lines: list[str] = []
        self.socks: dict[int, dict[str, Any]] = {}  # fd -> {port, opts, kind}
        self.deferred: list[tuple[Event, list[str]]] = []
        self.mss_in: int | None = None  # MSS we (netemu) announced in our SYN
        self.mss_out = 1460
        self.ts = False
        self.step_count = 0
        self._calls: dict[int, Call | None] = {}
        self._why: dict[int, str] = {}

    # -- output
    def comment(self, text: str) -> None:
        for line in text.splitlines() or [""]:
            self.lines.append(f"  # {line}".rstrip())

    def step(self, value: Any, out: list[str] | None = None) -> None:
        (self.lines if out is None else out).append(f"  - {_flow(value)}")
        self.step_count += 1

    # -- the whole script
    def run(self) -> str:
        sc = self.sc
        kind, port = self._connection()
        head: dict[str, Any] = {"name": sc.name}
        peer: dict[str, Any] = {"kind": "kernel"}
        if sc.congestion:
            peer["congestion_control"] = sc.congestion
        sysctls = {k: v for k, v in sc.sysctls.items() if k != "net.ipv4.tcp_congestion_control"}
        out = [
            f"# Converted from {sc.path} by `netemu convert`.",
            "# `netemu run` on the .pkt itself keeps packetdrill's exact semantics",
            "# (return values, timing tolerance, TS ecr mapping, %{ }% assertions).",
            f"name: {_flow(head['name'])}",
        ]
        if sc.description:
            out.append(f"description: {_flow(sc.description)}")
        out.append(f"peer: {_flow(peer)}")
        if sysctls:
            out.append(f"sysctls: {_flow(sysctls)}")
        conn = {"raw": True, ("port" if kind == "passive" else "local_port"): port}
        out.append(f"connections: {_flow({'c': conn})}")
        out.append("steps:")
        for ev in sc.script.init_commands:
            self.comment(
                f"line {ev.line}: {ev.source} (its net.* sysctls are under 'sysctls:' above)"
            )
        t = 0.0
        for ev in sc.script.events:
            t = self.event(ev, t)
        self.flush_deferred()
        if self.step_count == 0:
            self.step({"sleep": "0ms", "note": "nothing this script does has a YAML step"})
        return "\n".join(out + self.lines) + "\n"

    def _connection(self) -> tuple[str, int]:
        """passive (the kernel listens: netemu connects to its port) or active."""
        port = DEFAULT_PORT
        for ev in self.sc.script.events:
            a = ev.action
            if isinstance(a, Syscall):
                call = self._call(a)
                if call is None:
                    continue
                if call.name == "bind" and call.port:
                    port = call.port
                if call.name == "listen":
                    return "passive", port
                if call.name == "connect":
                    return "active", call.port or DEFAULT_PORT
            if isinstance(a, PacketSpec):
                return ("passive" if a.direction == "<" else "active"), port
        return "passive", port

    def flush_deferred(self) -> None:
        for ev, steps in self.deferred:
            self.comment(
                f"line {ev.line}: {ev.source}  (a blocking call: its result "
                "arrives after the packets above)"
            )
            self.lines.extend(steps)
        self.deferred = []

    def event(self, ev: Event, t: float) -> float:
        tm = ev.time
        if tm.kind in ("abs", "range"):
            gap = max(tm.start - t, 0.0)
            t = max(t, tm.start)
        elif tm.kind in ("rel", "rrange"):
            gap = tm.start
            t += tm.start
        else:
            gap = 0.0
        a = ev.action
        if isinstance(a, Syscall):
            self.flush_deferred()
        self.comment(f"line {ev.line}: {ev.source}")
        is_expect = isinstance(a, PacketSpec) and a.direction == ">"
        if gap > 0 and not is_expect:
            self.step({"sleep": _duration(gap)})
        if isinstance(a, PacketSpec):
            if a.direction == "<":
                self.inject(a)
            else:
                self.expect(a, gap, tm.end - tm.start if tm.end is not None else 0.0)
        elif isinstance(a, Syscall):
            self.syscall(ev, a)
        elif isinstance(a, Command):
            self.comment(
                "  (a shell command: its net.* sysctls are under 'sysctls:' above; "
                "YAML runs nothing else)"
            )
        elif isinstance(a, Code):
            self.comment("  (a TCP_INFO assertion: only `netemu run` on the .pkt checks it)")
        return t

    # -- packets
    def _options(self, pkt: PacketSpec) -> list[Any]:
        out: list[Any] = []
        for o in pkt.options or ():
            if o.kind in ("nop", "eol"):
                out.append(o.kind)
            elif o.kind == "sackOK":
                out.append("sackok")
            elif o.kind in ("mss", "wscale"):
                out.append({o.kind: o.value})
            elif o.kind == "sack":
                out.append({"sack": [list(b) for b in o.value]})
            elif o.kind == "TS":
                out.append({"ts": list(o.value)})
        return out

    def inject(self, pkt: PacketSpec) -> None:
        step: dict[str, Any] = {"flags": _flags(pkt), "seq": pkt.start}
        if pkt.ack is not None:
            step["ack"] = pkt.ack
        step["win"] = 65535 if pkt.win is None else pkt.win
        if pkt.length:
            step["bytes"] = pkt.length
        opts = self._options(pkt)
        if opts:
            step["options"] = opts
        for o in pkt.options or ():
            if o.kind == "mss" and pkt.flags & 0x02:
                self.mss_in = o.value
            if o.kind == "TS":
                self.ts = True
                if pkt.flags & 0x10 and o.value[1]:
                    self.comment(
                        "  (TS ecr is sent as written: a YAML run does not map it "
                        "to the kernel's TS value)"
                    )
        self.step({"inject": step})

    def _expect_options(self, pkt: PacketSpec) -> dict[str, Any] | None:
        if pkt.options_any:
            return None
        want: dict[str, Any] = {
            "mss": False,
            "wscale": False,
            "sackok": False,
            "ts": False,
            "sack": False,
        }
        for o in pkt.options or ():
            if o.kind in ("mss", "wscale"):
                want[o.kind] = o.value
            elif o.kind == "sackOK":
                want["sackok"] = True
            elif o.kind == "TS":
                want["ts"] = "*"
            elif o.kind == "sack":
                want["sack"] = [list(b) for b in o.value]
        return want

    def expect(self, pkt: PacketSpec, gap: float, span: float) -> None:
        within = _duration(max(3.0, gap + span + 1.0))
        for o in pkt.options or ():
            if o.kind == "mss" and pkt.flags & 0x02:
                self.mss_out = o.value
        mss = min(self.mss_in or 536, self.mss_out) - (12 if self.ts else 0)
        pieces = [(pkt.start, pkt.length)]
        if pkt.length > mss > 0:
            pieces = [
                (pkt.start + off, min(mss, pkt.length - off)) for off in range(0, pkt.length, mss)
            ]
            self.comment(
                f"  (one {pkt.length}-byte TSO packet: {len(pieces)} segments of at "
                f"most {mss} bytes on the wire)"
            )
        for i, (seq, length) in enumerate(pieces):
            last = i == len(pieces) - 1
            flags = _flags(pkt)
            if len(pieces) > 1:  # the kernel may push any piece; a FIN rides on the last
                base = flags.replace("P", "").replace("F", "")
                flags = "+" + (base + "F" if last and "F" in flags else base)
            step: dict[str, Any] = {"dir": "in", "flags": flags, "seq": seq & 0xFFFFFFFF}
            if pkt.ack is not None and pkt.flags & 0x10:
                step["ack"] = pkt.ack
            step["len"] = length
            if pkt.win is not None:
                step["win"] = pkt.win
            opts = self._expect_options(pkt)
            if opts is not None:
                step["options"] = opts
            if i == 0:
                step["within"] = within
            self.step({"expect_segment": step})

    # -- system calls
    def _call(self, sc: Syscall) -> Call | None:
        """The call as the converter knows it (``calls.normalize``), None when YAML
        has no step for it (it stays a comment)."""
        from .calls import normalize
        from .parser import PktError

        key = id(sc)
        if key not in self._calls:
            try:
                self._calls[key] = normalize(sc, self.sc.path, sc.line, sc.col)
            except PktError as e:
                self._calls[key] = None
                self._why[key] = e.message
        return self._calls[key]

    def syscall(self, ev: Event, sc: Syscall) -> None:
        call = self._call(sc)
        if call is None:
            self.comment(f"  (not converted: {self._why.get(id(sc), 'unsupported')})")
            return
        blocking = sc.end is not None
        steps: list[str] = []
        note = self._call_steps(call, steps)
        if note:
            self.comment(f"  ({note})")
        if blocking and call.name != "connect" and steps:
            self.deferred.append((ev, steps))
            self.comment("  (blocking: its step comes after the packets that complete it)")
        else:
            self.lines.extend(steps)

    def _call_steps(self, call: Call, out: list[str]) -> str | None:
        name = call.name
        s = self.socks.get(call.fd or -1)
        if name == "socket":
            self.socks[call.ret] = {"port": None, "opts": {}, "open": False}
            return "socket(): created by the next listen or connect"
        if s is None:
            return f"{name}() on fd {call.fd}: no such socket in the YAML"
        if call.errno is not None and name not in ("connect",):
            return f"expects -1 {call.errno}: a YAML run does not check results"
        if name == "bind":
            s["port"] = call.port or DEFAULT_PORT
            return None
        if name == "setsockopt":
            if s["open"]:
                self.step({"peer": {"setsockopt": {call.option: call.value}}}, out)
            else:
                s["opts"][call.option] = call.value
            return None
        if name == "listen":
            lst: dict[str, Any] = {"port": s["port"] or DEFAULT_PORT}
            if call.backlog:
                lst["backlog"] = max(call.backlog, 1)
            if s["opts"]:
                lst["setsockopt"] = s["opts"]
            s["open"] = True
            self.step({"peer": {"listen": lst}}, out)
            return None
        if name == "accept":
            self.socks[call.ret] = {"port": None, "opts": {}, "open": True}
            self.step({"peer": "accept"}, out)
            return None
        if name == "connect":
            con: dict[str, Any] = {"port": call.port or DEFAULT_PORT, "wait": False}
            if s["port"]:
                con["local_port"] = s["port"]
            if s["opts"]:
                con["setsockopt"] = s["opts"]
            s["open"] = True
            self.step({"peer": {"connect": con}}, out)
            return None
        if name in ("read", "recv", "recvfrom"):
            if call.ret > 0:
                self.step({"peer": {"read": call.ret}}, out)
                return None
            return "a read that returns 0 (end of stream): not a YAML step"
        if name in ("write", "send", "sendto"):
            if call.ret > 0:
                self.step({"peer": {"send": {"bytes": call.ret}}}, out)
            return None
        if name == "close":
            if s.get("open"):
                self.step({"peer": "close"}, out)
            self.socks.pop(call.fd or -1, None)
            return None
        if name == "shutdown":
            how = {"rd": "read", "wr": "write", "rdwr": "both"}[call.how or "wr"]
            self.step({"peer": {"shutdown": how}}, out)
            return None
        return f"{name}(): checks only; a YAML run does not make this call"


def to_yaml(sc: PktScript) -> str:
    """The YAML scenario for a loaded script (it validates with ``netemu validate``)."""
    return _Converter(sc).run()
