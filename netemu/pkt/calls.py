"""System calls of a script, checked and normalised: what each one asks of the kernel.

``normalize(call, file, line)`` turns a parsed ``Syscall`` into a ``Call`` (fd, byte
count, socket option, address...) or raises ``PktError`` naming what is not
supported, at its line. The runner executes ``Call``s through the kernel agent;
the YAML converter writes them as ``peer:`` steps.
"""

from __future__ import annotations

import errno as _errno
from dataclasses import dataclass, field
from typing import Any

from .model import Expr, Syscall
from .parser import PktError
from .symbols import SYMBOLS  # one table of Linux's values, the one the real calls use

SUPPORTED = (
    "socket",
    "bind",
    "listen",
    "accept",
    "connect",
    "read",
    "write",
    "recv",
    "send",
    "sendto",
    "recvfrom",
    "close",
    "shutdown",
    "setsockopt",
    "getsockopt",
    "fcntl",
    "poll",
)

SOCK_NONBLOCK = SYMBOLS["SOCK_NONBLOCK"]
O_NONBLOCK = SYMBOLS["O_NONBLOCK"]
O_RDWR = SYMBOLS["O_RDWR"]
MSG_DONTWAIT = SYMBOLS["MSG_DONTWAIT"]

LEVELS = {
    "SOL_SOCKET": "SOL_SOCKET",
    "IPPROTO_TCP": "IPPROTO_TCP",
    "SOL_TCP": "IPPROTO_TCP",
    "IPPROTO_IP": "IPPROTO_IP",
    "SOL_IP": "IPPROTO_IP",
}

# Socket options the kernel agent sets and reads (netemu/sockopts.py), by level, as
# packetdrill scripts may name them (SO_ERROR: read only).
SOCKOPTS: dict[str, tuple[str, ...]] = {
    "SOL_SOCKET": (
        "SO_REUSEADDR",
        "SO_REUSEPORT",
        "SO_KEEPALIVE",
        "SO_LINGER",
        "SO_RCVBUF",
        "SO_SNDBUF",
        "SO_RCVBUFFORCE",
        "SO_SNDBUFFORCE",
        "SO_RCVLOWAT",
        "SO_ERROR",
    ),
    "IPPROTO_TCP": (
        "TCP_NODELAY",
        "TCP_MAXSEG",
        "TCP_CORK",
        "TCP_KEEPIDLE",
        "TCP_KEEPINTVL",
        "TCP_KEEPCNT",
        "TCP_SYNCNT",
        "TCP_LINGER2",
        "TCP_DEFER_ACCEPT",
        "TCP_WINDOW_CLAMP",
        "TCP_QUICKACK",
        "TCP_CONGESTION",
        "TCP_USER_TIMEOUT",
        "TCP_NOTSENT_LOWAT",
    ),
    "IPPROTO_IP": ("IP_TOS", "IP_TTL"),
}
GET_ONLY = ("SO_ERROR",)

DEFAULT_PORT = 8080  # packetdrill's --bind_port and --connect_port


@dataclass
class Call:
    """A normalised system call. ``ret``: the expected result (-1 with ``errno``)."""

    name: str
    ret: int
    errno: str | None = None
    fd: int | None = None
    nbytes: int | None = None  # read/write/send/recv
    flags: int = 0  # msg flags; fcntl F_SETFL flags; socket type flags
    how: str | None = None  # shutdown: rd, wr, rdwr
    backlog: int | None = None
    port: int | None = None  # bind/connect: the sockaddr's port (None: packetdrill's default)
    host: str | None = None  # bind/connect: the sockaddr's address as written
    option: str | None = None  # setsockopt/getsockopt name (SO_..., TCP_...)
    value: Any = None  # the option value: int, str, [on, secs] for SO_LINGER
    value_any: bool = False  # getsockopt with '...': do not compare
    fcntl_cmd: str | None = None  # F_GETFL / F_SETFL
    polls: list[tuple[int, int, int | None]] = field(default_factory=list)  # fd, events, revents
    timeout_ms: int = 0  # poll


def errno_value(name: str) -> int | None:
    return getattr(_errno, name, None)


# The reads and writes: how many arguments each takes (``_Norm._rw`` reads them).
_RW_NARGS = {"read": 3, "write": 3, "recv": 4, "send": 4, "sendto": 6, "recvfrom": 6}


class _Norm:
    def __init__(self, call: Syscall, file: str, line: int, col: int) -> None:
        self.c = call
        self.file = file
        self.line = line
        self.col = col

    def err(self, message: str, expr: Expr | None = None) -> PktError:
        line = expr.line if expr is not None and expr.line else self.line
        col = expr.col if expr is not None and expr.col else self.col
        return PktError(self.file, line, col, message)

    def nargs(self, *counts: int) -> None:
        n = len(self.c.args)
        if n not in counts:
            want = " or ".join(map(str, counts))
            raise self.err(f"{self.c.name}() takes {want} arguments, got {n}")

    def arg(self, i: int) -> Expr:
        return self.c.args[i]

    def int_of(self, e: Expr, what: str, *, allow_any: bool = False) -> int | None:
        if e.kind == "ellipsis" and allow_any:
            return None
        if e.kind == "int":
            return int(e.value)
        if e.kind == "word" and e.value in SYMBOLS:
            return SYMBOLS[e.value]
        if e.kind == "or":
            v = 0
            for item in e.value:
                x = self.int_of(item, what)
                v |= x or 0
            return v
        if e.kind == "list" and len(e.value) == 1:
            return self.int_of(e.value[0], what, allow_any=allow_any)
        if e.kind == "word":
            raise self.err(f"unsupported symbol '{e.value}' for {what} in {self.c.name}()", e)
        raise self.err(f"expected {what} in {self.c.name}(), got '{e.text()}'", e)

    def fd(self, i: int = 0) -> int:
        e = self.arg(i)
        v = self.int_of(e, "a file descriptor")
        assert v is not None
        return v

    def sockaddr(self, e: Expr) -> tuple[str | None, int | None]:
        if e.kind == "ellipsis":
            return None, None
        if e.kind != "struct":
            raise self.err(
                f"expected a sockaddr ('...' or {{sa_family=AF_INET, sin_port="
                f"htons(8080), sin_addr=inet_addr(\"...\")}}), got '{e.text()}'",
                e,
            )
        fam = e.value.get("sa_family")
        if fam is not None and not (fam.kind == "word" and fam.value in ("AF_INET", "PF_INET")):
            raise self.err(f"address family '{fam.text()}' is not supported (IPv4 only)", fam)
        port = host = None
        p = e.value.get("sin_port")
        if p is not None:
            if p.kind == "call" and p.value[0] == "htons" and len(p.value[1]) == 1:
                port = self.int_of(p.value[1][0], "a port")
            else:
                port = self.int_of(p, "a port")
        a = e.value.get("sin_addr")
        if a is not None:
            if (
                a.kind == "call"
                and a.value[0] == "inet_addr"
                and len(a.value[1]) == 1
                and a.value[1][0].kind == "string"
            ):
                host = a.value[1][0].value
            elif a.kind == "string":
                host = a.value
            elif a.kind == "word" and a.value == "INADDR_ANY":
                host = "0.0.0.0"
            else:
                raise self.err(f"expected inet_addr(\"a.b.c.d\"), got '{a.text()}'", a)
        for key in e.value:
            if key not in ("sa_family", "sin_port", "sin_addr"):
                raise self.err(f"sockaddr field '{key}' is not supported", e.value[key])
        return host, port

    def ret(self) -> tuple[int, str | None]:
        r = self.c.ret
        v = self.int_of(r, "a result")
        assert v is not None
        if self.c.errno is not None and errno_value(self.c.errno) is None:
            raise self.err(f"unknown errno '{self.c.errno}'")
        return v, self.c.errno

    def run(self) -> Call:
        name = self.c.name
        if name not in SUPPORTED:
            raise self.err(
                f"system call '{name}' is not supported (supported: {', '.join(SUPPORTED)})"
            )
        ret, err = self.ret()
        call = Call(name, ret, err)
        if name in _RW_NARGS:
            self._rw(call, _RW_NARGS[name])
        else:
            getattr(self, f"_{name}")(call)
        return call

    # -- one method per call
    def _socket(self, call: Call) -> None:
        self.nargs(3)
        dom, typ, proto = self.c.args
        d = self.int_of(dom, "a domain", allow_any=True)
        if d not in (None, 2):
            raise self.err(f"socket domain '{dom.text()}' is not supported (AF_INET only)", dom)
        t = self.int_of(typ, "a socket type", allow_any=True)
        if t is not None and t & 0xF != 1:
            raise self.err(f"socket type '{typ.text()}' is not supported (SOCK_STREAM only)", typ)
        p = self.int_of(proto, "a protocol", allow_any=True)
        if p not in (None, 0, 6):
            raise self.err(f"protocol '{proto.text()}' is not supported (IPPROTO_TCP only)", proto)
        call.flags = (t or 0) & ~0xF
        if call.ret < 0 and call.errno is None:
            raise self.err("socket() must return the script's file descriptor (e.g. '= 3')")

    def _bind(self, call: Call) -> None:
        self.nargs(3)
        call.fd = self.fd()
        call.host, call.port = self.sockaddr(self.arg(1))

    def _connect(self, call: Call) -> None:
        self.nargs(3)
        call.fd = self.fd()
        call.host, call.port = self.sockaddr(self.arg(1))

    def _listen(self, call: Call) -> None:
        self.nargs(2)
        call.fd = self.fd()
        call.backlog = self.int_of(self.arg(1), "a backlog")

    def _accept(self, call: Call) -> None:
        self.nargs(3)
        call.fd = self.fd()
        for e in self.c.args[1:]:
            if e.kind not in ("ellipsis", "struct", "list"):
                raise self.err(f"expected '...' for accept()'s address, got '{e.text()}'", e)

    def _rw(self, call: Call, nargs: int) -> None:
        self.nargs(nargs)
        call.fd = self.fd()
        buf = self.arg(1)
        if buf.kind not in ("ellipsis", "string"):
            raise self.err(
                f"expected '...' for the buffer of {self.c.name}(), got '{buf.text()}'", buf
            )
        call.nbytes = self.int_of(self.arg(2), "a byte count")
        if call.nbytes is None or call.nbytes < 0:
            raise self.err("the byte count must be a number", self.arg(2))
        if nargs > 3:
            flags = self.int_of(self.arg(3), "flags", allow_any=True) or 0
            if flags & ~MSG_DONTWAIT & ~SYMBOLS["MSG_NOSIGNAL"]:
                raise self.err(
                    f"{self.c.name}() flags '{self.arg(3).text()}' are not "
                    "supported (0, MSG_DONTWAIT, MSG_NOSIGNAL)",
                    self.arg(3),
                )
            call.flags = flags
        for e in self.c.args[4:]:
            if e.kind not in ("ellipsis", "struct", "int", "list"):
                raise self.err(f"expected '...' for the address of {self.c.name}()", e)

    def _close(self, call: Call) -> None:
        self.nargs(1)
        call.fd = self.fd()

    def _shutdown(self, call: Call) -> None:
        self.nargs(2)
        call.fd = self.fd()
        e = self.arg(1)
        how = self.int_of(e, "SHUT_RD, SHUT_WR or SHUT_RDWR")
        if how not in (0, 1, 2):
            raise self.err(f"bad shutdown direction '{e.text()}'", e)
        call.how = ("rd", "wr", "rdwr")[how]

    def _sockopt(self, call: Call, get: bool) -> None:
        self.nargs(5)
        call.fd = self.fd()
        lvl, name, val, _ln = self.c.args[1:]
        if lvl.kind != "word" or lvl.value not in LEVELS:
            raise self.err(
                f"socket option level '{lvl.text()}' is not supported "
                f"(SOL_SOCKET, IPPROTO_TCP/SOL_TCP, IPPROTO_IP)",
                lvl,
            )
        level = LEVELS[lvl.value]
        if name.kind != "word":
            raise self.err(f"expected a socket option name, got '{name.text()}'", name)
        known = SOCKOPTS[level]
        if name.value not in known:
            raise self.err(
                f"socket option {name.value} is not supported at {lvl.value} "
                f"(supported: {', '.join(known)})",
                name,
            )
        if name.value in GET_ONLY and not get:
            raise self.err(f"{name.value} can only be read (getsockopt)", name)
        call.option = name.value
        if val.kind == "ellipsis":
            call.value_any = True
            if not get:
                raise self.err("setsockopt() needs a value", val)
            return
        if call.option == "SO_LINGER":
            if val.kind != "struct" or "onoff" not in val.value or "linger" not in val.value:
                raise self.err("SO_LINGER takes {onoff=1, linger=0}", val)
            call.value = [
                self.int_of(val.value["onoff"], "onoff"),
                self.int_of(val.value["linger"], "linger"),
            ]
        elif call.option == "TCP_CONGESTION":
            s = val.value[0] if val.kind == "list" and len(val.value) == 1 else val
            if s.kind != "string":
                raise self.err('TCP_CONGESTION takes a string, e.g. "cubic"', val)
            call.value = s.value
        else:
            call.value = self.int_of(val, f"a value for {call.option}")

    def _setsockopt(self, call: Call) -> None:
        self._sockopt(call, False)

    def _getsockopt(self, call: Call) -> None:
        self._sockopt(call, True)

    def _fcntl(self, call: Call) -> None:
        self.nargs(2, 3)
        call.fd = self.fd()
        cmd = self.arg(1)
        if cmd.kind != "word" or cmd.value not in ("F_GETFL", "F_SETFL"):
            raise self.err(f"fcntl command '{cmd.text()}' is not supported (F_GETFL, F_SETFL)", cmd)
        call.fcntl_cmd = cmd.value
        if cmd.value == "F_SETFL":
            self.nargs(3)
            call.flags = self.int_of(self.arg(2), "flags") or 0
            if call.flags & ~(O_NONBLOCK | O_RDWR | 1):
                raise self.err(
                    f"fcntl flags '{self.arg(2).text()}' are not supported (O_RDWR, O_NONBLOCK)",
                    self.arg(2),
                )
        else:
            self.nargs(2)

    def _poll(self, call: Call) -> None:
        self.nargs(3)
        fds, _n, timeout = self.c.args
        if fds.kind != "list":
            raise self.err("poll() takes [{fd=N, events=..., revents=...}, ...]", fds)
        for item in fds.value:
            if item.kind != "struct" or "fd" not in item.value or "events" not in item.value:
                raise self.err("expected {fd=N, events=POLL..., revents=POLL...}", item)
            fd = self.int_of(item.value["fd"], "a file descriptor")
            ev = self.int_of(item.value["events"], "poll events")
            rev = item.value.get("revents")
            call.polls.append(
                (fd or 0, ev or 0, None if rev is None else self.int_of(rev, "poll revents"))
            )
        call.timeout_ms = self.int_of(timeout, "a timeout in milliseconds") or 0


def normalize(call: Syscall, file: str, line: int, col: int) -> Call:
    return _Norm(call, file, line, col).run()
