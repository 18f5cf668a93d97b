"""What a packetdrill script is made of, once parsed: events with times, and each
event one action (a TCP packet, a system call, a shell command, a Python snippet).

Plain dataclasses, no netemu imports: the parser, the YAML converter and the runner
all read these. Times are seconds (floats), as packetdrill writes them.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

# Time of an event (packetdrill's event_time):
#   abs    "0.100"           at 0.1 s after the script's start
#   rel    "+.1"             0.1 s after the previous event
#   any    "*"               whenever (no wait, no check)
#   range  "0.1~0.2"         any time in [start, end] (absolute)
#   rrange "+0.1~+0.2"       any time in [prev+start, prev+end]
TimeKind = Literal["abs", "rel", "any", "range", "rrange"]


@dataclass(slots=True)
class TimeSpec:
    kind: TimeKind
    start: float = 0.0
    end: float | None = None  # range end
    text: str = ""

    @property
    def relative(self) -> bool:
        return self.kind in ("rel", "rrange")


@dataclass(slots=True)
class TcpOptionSpec:
    """One option of a scripted packet: ``kind`` is packetdrill's spelling (nop, eol,
    mss, wscale, sackOK, sack, TS); ``value``: mss/wscale int, sack ((l, r), ...),
    TS (val, ecr)."""

    kind: str
    value: Any = None
    line: int = 0
    col: int = 0

    def text(self) -> str:
        if self.kind == "sack":
            return "sack " + " ".join(f"{a}:{b}" for a, b in self.value)
        if self.kind == "TS":
            return f"TS val {self.value[0]} ecr {self.value[1]}"
        if self.value is None:
            return self.kind
        return f"{self.kind} {self.value}"


@dataclass(slots=True)
class PacketSpec:
    """``< S. 0:0(0) ack 1 win 32792 <mss 1460,nop,wscale 7>`` and friends.
    ``direction``: '<' inbound (injected into the kernel), '>' outbound (expected)."""

    direction: Literal["<", ">"]
    flags: int
    flags_text: str
    start: int
    end: int
    length: int
    ack: int | None = None
    win: int | None = None
    options: list[TcpOptionSpec] | None = None  # None: no option list written
    options_any: bool = False  # "<...>": do not check options

    def text(self) -> str:
        s = f"{self.direction} {self.flags_text} {self.start}:{self.end}({self.length})"
        if self.ack is not None:
            s += f" ack {self.ack}"
        if self.win is not None:
            s += f" win {self.win}"
        if self.options_any:
            s += " <...>"
        elif self.options is not None:
            s += " <" + ",".join(o.text() for o in self.options) + ">"
        return s


ExprKind = Literal["ellipsis", "int", "word", "string", "list", "struct", "call", "or"]


@dataclass(slots=True)
class Expr:
    """A system call argument or return value. ``value``: int for int, str for word
    and string, list[Expr] for list and or, dict[str, Expr] (plus positional items
    under "0", "1"...) for struct, (name, list[Expr]) for call."""

    kind: ExprKind
    value: Any = None
    line: int = 0
    col: int = 0

    def text(self) -> str:
        k, v = self.kind, self.value
        if k == "ellipsis":
            return "..."
        if k == "int":
            return str(v)
        if k == "word":
            return v
        if k == "string":
            return '"' + v.replace('"', '\\"') + '"'
        if k == "list":
            return "[" + ", ".join(e.text() for e in v) + "]"
        if k == "or":
            return "|".join(e.text() for e in v)
        if k == "call":
            return f"{v[0]}(" + ", ".join(e.text() for e in v[1]) + ")"
        parts = [(e.text() if key.isdigit() else f"{key}={e.text()}") for key, e in v.items()]
        return "{" + ", ".join(parts) + "}"


@dataclass(slots=True)
class Syscall:
    name: str
    args: list[Expr]
    ret: Expr
    errno: str | None = None
    note: str | None = None
    end: float | None = None  # "...0.200": a blocking call returns at this time
    end_text: str = ""
    line: int = 0  # where the call's name is
    col: int = 0

    def text(self) -> str:
        s = f"{self.name}(" + ", ".join(a.text() for a in self.args) + f") = {self.ret.text()}"
        if self.errno:
            s += f" {self.errno}"
        return s


@dataclass(slots=True)
class Command:
    """A backquoted shell command: run in the kernel's (the peer's) namespace."""

    text: str


@dataclass(slots=True)
class Code:
    """A ``%{ ... }%`` Python snippet over the socket's ``tcpi_*`` (TCP_INFO) values."""

    text: str


Action = PacketSpec | Syscall | Command | Code


@dataclass(slots=True)
class Event:
    line: int
    col: int
    time: TimeSpec
    action: Action
    source: str = ""  # the script text of this event (its first line)

    @property
    def kind(self) -> str:
        a = self.action
        if isinstance(a, PacketSpec):
            return "inject" if a.direction == "<" else "expect"
        if isinstance(a, Syscall):
            return "syscall"
        if isinstance(a, Command):
            return "command"
        return "code"


@dataclass(slots=True)
class ScriptOption:
    name: str
    value: str
    line: int
    col: int


@dataclass
class Script:
    path: str
    events: list[Event] = field(default_factory=list)
    options: list[ScriptOption] = field(default_factory=list)
    init_commands: list[Event] = field(default_factory=list)  # `cmd` before any event
    description: str = ""  # the leading // comment block

    @property
    def name(self) -> str:
        import os

        base = os.path.basename(self.path)
        return base[:-4] if base.endswith(".pkt") else base
