"""What a packetdrill script is made of, once parsed: events with times, and each
event one action (a packet, a system call, a shell command, a Python snippet).

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
Direction = Literal["<", ">"]  # a packet: injected into the kernel, or expected from it
Ecn = Literal["noecn", "ect0", "ect1", "ce", "ect01"]


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
    """One TCP option of a scripted packet. ``kind`` is packetdrill's spelling and
    ``value`` depends on it:

    - ``nop``, ``eol``, ``sackOK``: None
    - ``mss 1460``, ``wscale 7``: int
    - ``sack 1:2 3:4``: ((1, 2), (3, 4))
    - ``TS val 1 ecr 0``: (val, ecr)
    - ``FO`` / ``FO abcd1234``: Fast Open (kind 34): None (no cookie: a cookie
      request) / the cookie as bytes (b"\\xab\\xcd\\x12\\x34")
    - ``FOEXP`` / ``FOEXP abcd1234``: experimental Fast Open (kind 254, magic
      0xF989): as FO
    - ``md5 000102...0f``: TCP MD5 signature (kind 19): the digest as bytes
    - ``ECN e0b 1 ceb 2 e1b 3``: AccECN (kind 172 when the first field is e0b, 174
      when e1b): the fields in the order written, (("e0b", 1), ("ceb", 2), ("e1b", 3));
      each a 24-bit counter; one, two or three fields

    For FO, FOEXP and md5 a blob that is not hex gives a ``str`` value: the name as
    written, unresolved (packetdrill would take it from a ``--define`` given on its
    command line, as in ``FOEXP TFO_COOKIE``). ``text_value`` keeps what followed the
    option's name as written (``"abcd1234"``; ``""`` when nothing did).
    """

    kind: str
    value: Any = None
    line: int = 0
    col: int = 0
    text_value: str = ""

    def text(self) -> str:
        k, v = self.kind, self.value
        if k == "sack":
            return "sack " + " ".join(f"{a}:{b}" for a, b in v)
        if k == "TS":
            return f"TS val {v[0]} ecr {v[1]}"
        if k == "ECN":
            return "ECN " + " ".join(f"{name} {n}" for name, n in v)
        if k in ("FO", "FOEXP", "md5"):
            blob = self.text_value or (v.hex() if isinstance(v, bytes) else (v or ""))
            return f"{k} {blob}" if blob else k
        if v is None:
            return k
        return f"{k} {v}"


@dataclass(slots=True)
class IpSpec:
    """IP header fields of a packet, written in brackets or parentheses right after
    the direction: ``[ect0]``, ``[noecn]``, ``[ce]``, ``[ect01]``, ``(tos 0x10)``,
    ``[ect1, flowlabel 0x12345]``, ``(flowlabel 0x1)``, ``(ttl 64)``.

    ``ecn``: "noecn", "ect0", "ect1", "ce", or "ect01" (outbound only: either ECT
    codepoint matches). ``tos``: the whole TOS / traffic class byte. ``flowlabel``:
    IPv6's 20-bit flow label. ``ttl``: TTL / hop limit. ``text``: as written,
    brackets included."""

    ecn: Ecn | None = None
    tos: int | None = None
    ttl: int | None = None
    flowlabel: int | None = None
    text: str = ""

    def render(self) -> str:
        if self.text:
            return self.text
        parts: list[str] = []
        if self.ecn is not None:
            parts.append(self.ecn)
        if self.tos is not None:
            parts.append(f"tos {self.tos:#x}")
        if self.flowlabel is not None:
            parts.append(f"flowlabel {self.flowlabel:#x}")
        if self.ttl is not None:
            parts.append(f"ttl {self.ttl}")
        return "[" + ", ".join(parts) + "]"


@dataclass(slots=True)
class IcmpSpec:
    """``icmp unreachable frag_needed mtu 1200 [1:1461(1460)]`` and friends.

    ``type`` / ``code``: as written: packetdrill's names (unreachable,
    packet_too_big, time_exceeded, echo_request...; frag_needed, port_unreachable,
    host_unreachable...), ``type_N`` / ``code_N``, or a name packetdrill would take
    from a --define (kept as written). ``code`` None: none written (code 0).
    ``mtu``: ``mtu N``. ``echo_id``: ``id N``. What the message quotes, in brackets:
    ``echoed`` "tcp" with ``start``/``end``/``length`` for ``[start:end(len)]``;
    "udp" or "raw" with ``length`` for ``[udp (N)]`` / ``[raw (N)]``; None (and the
    three None) when nothing is bracketed. ``text``: as written, from ``icmp``."""

    type: str
    code: str | None = None
    mtu: int | None = None
    start: int | None = None
    end: int | None = None
    length: int | None = None
    text: str = ""
    echo_id: int | None = None
    echoed: Literal["tcp", "udp", "raw"] | None = None

    def render(self) -> str:
        if self.text:
            return self.text
        s = f"icmp {self.type}"
        if self.code is not None:
            s += f" {self.code}"
        if self.mtu is not None:
            s += f" mtu {self.mtu}"
        if self.echo_id is not None:
            s += f" id {self.echo_id}"
        if self.echoed == "tcp":
            s += f" [{self.start}:{self.end}({self.length})]"
        elif self.echoed is not None:
            s += f" [{self.echoed} ({self.length})]"
        return s


@dataclass(slots=True)
class PacketSpec:
    """``< S. 0:0(0) ack 1 win 32792 <mss 1460,nop,wscale 7>`` and friends.
    ``direction``: '<' inbound (injected into the kernel), '>' outbound (expected).

    ``proto``: "tcp" (the default); "udp" for ``< udp (100)``: ``length`` is the UDP
    payload, ``flags`` 0, ``flags_text`` "", ``start``/``end`` 0; "icmp" for ``<
    icmp ...``: ``icmp`` holds the message, ``flags`` 0, ``flags_text`` "",
    ``start``/``end``/``length`` 0.

    ``flags``: the wire bits (see parser.FLAG_BITS; AE, packetdrill's letter ``A``,
    is 0x100). A digit 0-7 among the flags (AccECN's ACE counter, ``S.5``) sets
    E (bit 0), W (bit 1) and AE (bit 2) of ``flags`` from its value and ``ace`` to
    it. ``flags_text``: the flags as written ("-" for none).

    ``ip``: IP header fields (``[ect0]``...), None when none written. ``urg``:
    ``urg N``. ``src_port``/``dst_port``: ``< 1234>8080 S ...`` (None: not written).
    ``psp_spi``: ``< encap psp spi 7 . 1:1(0) ...`` (PSP encapsulation).
    ``ack`` None: not written (packetdrill sends 0).
    """

    direction: Direction
    flags: int
    flags_text: str
    start: int
    end: int
    length: int
    ack: int | None = None
    win: int | None = None
    options: list[TcpOptionSpec] | None = None  # None: no option list written
    options_any: bool = False  # "<...>": do not check options
    urg: int | None = None
    ip: IpSpec | None = None
    proto: Literal["tcp", "udp", "icmp"] = "tcp"
    icmp: IcmpSpec | None = None
    ace: int | None = None
    src_port: int | None = None
    dst_port: int | None = None
    psp_spi: int | None = None

    def text(self) -> str:
        s: str = self.direction
        if self.ip is not None:
            s += " " + self.ip.render()
        if self.psp_spi is not None:
            s += f" encap psp spi {self.psp_spi}"
        ports = f" {self.src_port}>{self.dst_port}" if self.src_port is not None else ""
        if self.proto == "icmp":
            return s + " " + (self.icmp.render() if self.icmp is not None else "icmp")
        if self.proto == "udp":
            return s + f" udp{ports} ({self.length})"
        s += f"{ports} {self.flags_text} {self.start}:{self.end}({self.length})"
        if self.ack is not None:
            s += f" ack {self.ack}"
        if self.win is not None:
            s += f" win {self.win}"
        if self.urg is not None:
            s += f" urg {self.urg}"
        if self.options_any:
            s += " <...>"
        elif self.options is not None:
            s += " <" + ",".join(o.text() for o in self.options) + ">"
        return s


ExprKind = Literal[
    "ellipsis", "int", "word", "string", "list", "struct", "call", "or", "null", "assign"
]


def _quote(s: str) -> str:
    out = []
    for ch in s:
        if ch in '"\\':
            out.append("\\" + ch)
        elif ch == "\n":
            out.append("\\n")
        elif ch == "\t":
            out.append("\\t")
        elif ch == "\r":
            out.append("\\r")
        elif ord(ch) < 0x20 or ord(ch) == 0x7F:
            out.append(f"\\x{ord(ch):02x}")
        else:
            out.append(ch)
    return '"' + "".join(out) + '"'


@dataclass(slots=True)
class Expr:
    """A system call argument or return value. ``kind`` and ``value``:

    - ellipsis ``...``: None
    - int ``3``, ``-1``, ``0x802``: int (a leading 0 is still decimal, as packetdrill)
    - word ``SOCK_STREAM``: str
    - null ``NULL``: None
    - string ``"reno"``: str, C escapes (``\\n``, ``\\x00``, ``\\"``...) decoded;
      adjacent strings (``"ab" "cd"``) are one; ``prefix`` True for ``"ab"...``
    - list ``[1, 2]``: list[Expr]
    - or ``A|B|C``: list[Expr]
    - call ``htons(8080)``, ``inet_addr("192.0.2.1")``: (name, list[Expr])
    - struct ``{fd=3, events=POLLIN}``: dict[str, Expr] keyed by the field name,
      positional items (``{..., 1000}``) under "0", "1"...; a field written with a
      count, ``msg_iov(1)=[...]``, keeps the count on its value Expr's ``count``
      (1), and ``msg_name(...)=...`` sets that Expr's ``count_any`` (count None)
    - assign ``name=value`` outside braces (packetdrill's ``WORD '=' expression``):
      (name, Expr)
    """

    kind: ExprKind
    value: Any = None
    line: int = 0
    col: int = 0
    count: int | None = None  # the N of a struct field written name(N)=...
    count_any: bool = False  # a struct field written name(...)=...
    prefix: bool = False  # a string written "..."... (ellipsis after the quote)

    def text(self) -> str:
        k, v = self.kind, self.value
        if k == "ellipsis":
            return "..."
        if k == "int":
            return str(v)
        if k == "word":
            return v
        if k == "null":
            return "NULL"
        if k == "string":
            return _quote(v) + ("..." if self.prefix else "")
        if k == "list":
            return "[" + ", ".join(e.text() for e in v) + "]"
        if k == "or":
            return "|".join(e.text() for e in v)
        if k == "call":
            return f"{v[0]}(" + ", ".join(e.text() for e in v[1]) + ")"
        if k == "assign":
            return f"{v[0]}={v[1].text()}"
        parts = []
        for key, e in v.items():
            if key.isdigit():
                parts.append(e.text())
            elif e.count_any:
                parts.append(f"{key}(...)={e.text()}")
            elif e.count is not None:
                parts.append(f"{key}({e.count})={e.text()}")
            else:
                parts.append(f"{key}={e.text()}")
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
        if self.note is not None:
            s += f" ({self.note})"
        return s


@dataclass(slots=True)
class Command:
    """A backquoted shell command: run in the kernel's (the peer's) namespace. ``text``
    is exactly what is between the backquotes (backslashes kept: the shell reads
    them, e.g. a ``\\`` line continuation)."""

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
    """``--name=value`` (``value`` "" for a bare ``--name``). A string value loses its
    quotes (``--x="a b"``: ``a b``); ``--define=SYM="a b"`` keeps them (``SYM="a b"``),
    as packetdrill."""

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
