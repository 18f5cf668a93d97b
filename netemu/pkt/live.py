"""Real system calls, as packetdrill makes them: in the peer namespace, in this process.

packetdrill's test process makes each system call itself, so a call leaves within
microseconds of its scheduled time and every argument reaches the kernel as written.
netemu does the same: a socket is created on the peer namespace's thread (a socket
belongs to the namespace it was created in, whichever thread uses it later), and every
call on it is the real call on the real fd, made by this process: inline when it
should not block, on a worker thread when the script says it blocks (so it blocks that
thread, as packetdrill's syscall thread does). Which is the runner's choice.

``LiveKernel.call(sc)`` runs one parsed ``Syscall`` and returns a ``Result``: the
return value, the errno, and the first mismatch between what the kernel gave back in
an output argument (``getsockopt``'s value, ``poll``'s revents, ``recvmsg``'s flags
and control messages, ``epoll_wait``'s events...) and what the script says. The
runner compares the return value and errno as packetdrill's ``end_syscall`` does.

Script file descriptors are packetdrill's: the script's number maps to the live fd
(``socket(...) = 3`` gives script fd 3 whatever the kernel numbered it).

Addresses: a sockaddr written as ``...`` is packetdrill's default: the local address
and ``--bind_port`` for ``bind``, the remote address and ``--connect_port`` for
``connect``/``sendto``; written addresses equal to the script's local or remote
address are mapped to the lab's.
"""

from __future__ import annotations

import contextlib
import errno as _errno
import fcntl
import os
import select
import socket
import struct
import time
from dataclasses import dataclass, field
from typing import Any

from .model import Expr, Syscall

# Linux values of the symbols scripts use (packetdrill's symbols_linux.c has the same).
SYMBOLS: dict[str, int] = {
    "AF_UNSPEC": 0, "AF_INET": 2, "PF_INET": 2, "AF_INET6": 10, "PF_INET6": 10,
    "SOCK_STREAM": 1, "SOCK_DGRAM": 2, "SOCK_RAW": 3,
    "IPPROTO_IP": 0, "IPPROTO_TCP": 6, "IPPROTO_UDP": 17, "IPPROTO_IPV6": 41,
    "IPPROTO_ICMP": 1, "IPPROTO_ICMPV6": 58,
    "SOCK_NONBLOCK": 0o4000, "SOCK_CLOEXEC": 0o2000000,
    "SOL_SOCKET": 1, "SOL_TCP": 6, "SOL_IP": 0, "SOL_IPV6": 41, "SOL_UDP": 17,
    "O_RDONLY": 0, "O_WRONLY": 1, "O_RDWR": 2, "O_CREAT": 0o100, "O_TRUNC": 0o1000,
    "O_APPEND": 0o2000, "O_NONBLOCK": 0o4000, "O_NDELAY": 0o4000, "O_CLOEXEC": 0o2000000,
    "F_DUPFD": 0, "F_GETFD": 1, "F_SETFD": 2, "F_GETFL": 3, "F_SETFL": 4, "FD_CLOEXEC": 1,
    "SHUT_RD": 0, "SHUT_WR": 1, "SHUT_RDWR": 2,
    "MSG_OOB": 0x1, "MSG_PEEK": 0x2, "MSG_DONTROUTE": 0x4, "MSG_CTRUNC": 0x8,
    "MSG_TRUNC": 0x20, "MSG_DONTWAIT": 0x40, "MSG_EOR": 0x80, "MSG_WAITALL": 0x100,
    "MSG_ERRQUEUE": 0x2000, "MSG_NOSIGNAL": 0x4000, "MSG_MORE": 0x8000,
    "MSG_FASTOPEN": 0x20000000, "MSG_ZEROCOPY": 0x4000000, "MSG_CMSG_CLOEXEC": 0x40000000,
    "MSG_SPLICE_PAGES": 0x8000000,
    "POLLIN": 0x1, "POLLPRI": 0x2, "POLLOUT": 0x4, "POLLERR": 0x8, "POLLHUP": 0x10,
    "POLLNVAL": 0x20, "POLLRDNORM": 0x40, "POLLRDBAND": 0x80, "POLLWRNORM": 0x100,
    "POLLWRBAND": 0x200, "POLLMSG": 0x400, "POLLRDHUP": 0x2000,
    "EPOLLIN": 0x1, "EPOLLPRI": 0x2, "EPOLLOUT": 0x4, "EPOLLERR": 0x8, "EPOLLHUP": 0x10,
    "EPOLLRDNORM": 0x40, "EPOLLRDBAND": 0x80, "EPOLLWRNORM": 0x100, "EPOLLWRBAND": 0x200,
    "EPOLLMSG": 0x400, "EPOLLRDHUP": 0x2000, "EPOLLEXCLUSIVE": 1 << 28,
    "EPOLLWAKEUP": 1 << 29, "EPOLLONESHOT": 1 << 30, "EPOLLET": 1 << 31,
    "EPOLL_CTL_ADD": 1, "EPOLL_CTL_DEL": 2, "EPOLL_CTL_MOD": 3, "EPOLL_CLOEXEC": 0o2000000,
    "SPLICE_F_MOVE": 1, "SPLICE_F_NONBLOCK": 2, "SPLICE_F_MORE": 4, "SPLICE_F_GIFT": 8,
    # SOL_SOCKET options
    "SO_DEBUG": 1, "SO_REUSEADDR": 2, "SO_TYPE": 3, "SO_ERROR": 4, "SO_DONTROUTE": 5,
    "SO_BROADCAST": 6, "SO_SNDBUF": 7, "SO_RCVBUF": 8, "SO_KEEPALIVE": 9, "SO_OOBINLINE": 10,
    "SO_NO_CHECK": 11, "SO_PRIORITY": 12, "SO_LINGER": 13, "SO_BSDCOMPAT": 14,
    "SO_REUSEPORT": 15, "SO_PASSCRED": 16, "SO_PEERCRED": 17, "SO_RCVLOWAT": 18,
    "SO_SNDLOWAT": 19, "SO_RCVTIMEO": 20, "SO_SNDTIMEO": 21, "SO_BINDTODEVICE": 25,
    "SO_ATTACH_FILTER": 26, "SO_TIMESTAMP": 29, "SO_ACCEPTCONN": 30, "SO_SNDBUFFORCE": 32,
    "SO_RCVBUFFORCE": 33, "SO_PASSSEC": 34, "SO_TIMESTAMPNS": 35, "SO_MARK": 36,
    "SO_TIMESTAMPING": 37, "SO_PROTOCOL": 38, "SO_DOMAIN": 39, "SO_RXQ_OVFL": 40,
    "SO_PEEK_OFF": 42, "SO_BUSY_POLL": 46, "SO_MAX_PACING_RATE": 47,
    "SO_INCOMING_CPU": 49, "SO_ZEROCOPY": 60, "SO_TXTIME": 61,
    "SCM_RIGHTS": 1, "SCM_TIMESTAMP": 29, "SCM_TIMESTAMPNS": 35, "SCM_TIMESTAMPING": 37,
    "SCM_TSTAMP_SND": 0, "SCM_TSTAMP_SCHED": 1, "SCM_TSTAMP_ACK": 2,
    "SOF_TIMESTAMPING_TX_HARDWARE": 1 << 0, "SOF_TIMESTAMPING_TX_SOFTWARE": 1 << 1,
    "SOF_TIMESTAMPING_RX_HARDWARE": 1 << 2, "SOF_TIMESTAMPING_RX_SOFTWARE": 1 << 3,
    "SOF_TIMESTAMPING_SOFTWARE": 1 << 4, "SOF_TIMESTAMPING_SYS_HARDWARE": 1 << 5,
    "SOF_TIMESTAMPING_RAW_HARDWARE": 1 << 6, "SOF_TIMESTAMPING_OPT_ID": 1 << 7,
    "SOF_TIMESTAMPING_TX_SCHED": 1 << 8, "SOF_TIMESTAMPING_TX_ACK": 1 << 9,
    "SOF_TIMESTAMPING_OPT_CMSG": 1 << 10, "SOF_TIMESTAMPING_OPT_TSONLY": 1 << 11,
    "SOF_TIMESTAMPING_OPT_STATS": 1 << 12, "SOF_TIMESTAMPING_OPT_PKTINFO": 1 << 13,
    "SOF_TIMESTAMPING_OPT_TX_SWHW": 1 << 14,
    "SO_EE_ORIGIN_NONE": 0, "SO_EE_ORIGIN_LOCAL": 1, "SO_EE_ORIGIN_ICMP": 2,
    "SO_EE_ORIGIN_ICMP6": 3, "SO_EE_ORIGIN_TXSTATUS": 4, "SO_EE_ORIGIN_ZEROCOPY": 5,
    "SO_EE_ORIGIN_TIMESTAMPING": 4, "SO_EE_CODE_ZEROCOPY_COPIED": 1,
    # IPPROTO_IP / IPV6 options
    "IP_TOS": 1, "IP_TTL": 2, "IP_HDRINCL": 3, "IP_OPTIONS": 4, "IP_RECVERR": 11,
    "IP_MTU_DISCOVER": 10, "IP_MTU": 14, "IP_FREEBIND": 15, "IP_TRANSPARENT": 19,
    "IP_BIND_ADDRESS_NO_PORT": 24, "IP_PMTUDISC_DONT": 0, "IP_PMTUDISC_WANT": 1,
    "IP_PMTUDISC_DO": 2, "IP_PMTUDISC_PROBE": 3,
    "IPV6_RECVERR": 25, "IPV6_TCLASS": 67, "IPV6_MTU_DISCOVER": 23, "IPV6_V6ONLY": 26,
    # IPPROTO_TCP options
    "TCP_NODELAY": 1, "TCP_MAXSEG": 2, "TCP_CORK": 3, "TCP_KEEPIDLE": 4, "TCP_KEEPINTVL": 5,
    "TCP_KEEPCNT": 6, "TCP_SYNCNT": 7, "TCP_LINGER2": 8, "TCP_DEFER_ACCEPT": 9,
    "TCP_WINDOW_CLAMP": 10, "TCP_INFO": 11, "TCP_QUICKACK": 12, "TCP_CONGESTION": 13,
    "TCP_MD5SIG": 14, "TCP_THIN_LINEAR_TIMEOUTS": 16, "TCP_THIN_DUPACK": 17,
    "TCP_USER_TIMEOUT": 18, "TCP_REPAIR": 19, "TCP_REPAIR_QUEUE": 20, "TCP_QUEUE_SEQ": 21,
    "TCP_REPAIR_OPTIONS": 22, "TCP_FASTOPEN": 23, "TCP_TIMESTAMP": 24,
    "TCP_NOTSENT_LOWAT": 25, "TCP_CC_INFO": 26, "TCP_SAVE_SYN": 27, "TCP_SAVED_SYN": 28,
    "TCP_REPAIR_WINDOW": 29, "TCP_FASTOPEN_CONNECT": 30, "TCP_ULP": 31,
    "TCP_MD5SIG_EXT": 32, "TCP_FASTOPEN_KEY": 33, "TCP_FASTOPEN_NO_COOKIE": 34,
    "TCP_ZEROCOPY_RECEIVE": 35, "TCP_INQ": 36, "TCP_CM_INQ": 36, "TCP_TX_DELAY": 37,
    # ioctls
    "SIOCINQ": 0x541B, "FIONREAD": 0x541B, "SIOCOUTQ": 0x5411, "TIOCOUTQ": 0x5411,
    "SIOCOUTQNSD": 0x894B, "FIONBIO": 0x5421, "SIOCATMARK": 0x8905,
    # tcp_info's constants (packetdrill's, for %{ }% and getsockopt)
    "TCPI_OPT_TIMESTAMPS": 1, "TCPI_OPT_SACK": 2, "TCPI_OPT_WSCALE": 4, "TCPI_OPT_ECN": 8,
    "TCPI_OPT_ECN_SEEN": 16, "TCPI_OPT_SYN_DATA": 32, "TCPI_OPT_USEC_TS": 64,
    "TCP_ESTABLISHED": 1, "TCP_SYN_SENT": 2, "TCP_SYN_RECV": 3, "TCP_FIN_WAIT1": 4,
    "TCP_FIN_WAIT2": 5, "TCP_TIME_WAIT": 6, "TCP_CLOSE": 7, "TCP_CLOSE_WAIT": 8,
    "TCP_LAST_ACK": 9, "TCP_LISTEN": 10, "TCP_CLOSING": 11, "TCP_NEW_SYN_RECV": 12,
    "TCP_CA_Open": 0, "TCP_CA_Disorder": 1, "TCP_CA_CWR": 2, "TCP_CA_Recovery": 3,
    "TCP_CA_Loss": 4, "TCP_INFINITE_SSTHRESH": 0x7FFFFFFF,
}
for _name in dir(_errno):
    if _name.startswith("E") and isinstance(getattr(_errno, _name), int):
        SYMBOLS.setdefault(_name, getattr(_errno, _name))

# System calls netemu makes (packetdrill's full list but its PSP calls and cap_set).
CALLS = ("socket", "bind", "listen", "accept", "connect", "read", "readv", "recv",
         "recvfrom", "recvmsg", "write", "writev", "send", "sendto", "sendmsg", "fcntl",
         "ioctl", "close", "shutdown", "getsockopt", "setsockopt", "poll", "open",
         "sendfile", "epoll_create", "epoll_ctl", "epoll_wait", "pipe", "splice")
# How many arguments each call takes (packetdrill checks them: "expected N args").
ARITY: dict[str, tuple[int, ...]] = {
    "socket": (3,), "bind": (3,), "listen": (2,), "accept": (3,), "connect": (3,),
    "read": (3,), "readv": (3,), "recv": (4,), "recvfrom": (6,), "recvmsg": (3,),
    "write": (3,), "writev": (3,), "send": (4,), "sendto": (6,), "sendmsg": (3,),
    "fcntl": (2, 3), "ioctl": (3,), "close": (1,), "shutdown": (2,), "getsockopt": (5,),
    "setsockopt": (5,), "poll": (3,), "open": (2, 3), "sendfile": (4,),
    "epoll_create": (1,), "epoll_ctl": (4,), "epoll_wait": (4,), "pipe": (1,),
    "splice": (6,)}
# Calls whose result is a new file descriptor (packetdrill's CHECK_FD).
FD_CALLS = ("socket", "accept", "open", "epoll_create")

_BIG = 1 << 64


class ScriptValueError(Exception):
    """An argument the script wrote that cannot be turned into a system call argument."""

    def __init__(self, message: str, expr: Expr | None = None) -> None:
        super().__init__(message)
        self.expr = expr


def value(e: Expr) -> Any:
    """A script expression's value: int, bytes (strings), list, dict (structs), None
    (``NULL``), ``...`` (Ellipsis)."""
    k = e.kind
    if k == "int":
        return int(e.value)
    if k == "ellipsis":
        return ...
    if k == "null":
        return None
    if k == "word":
        if e.value in SYMBOLS:
            return SYMBOLS[e.value]
        if e.value == "NULL":
            return None
        raise ScriptValueError(f"unknown symbol {e.value!r}", e)
    if k == "string":
        return e.value.encode("latin-1", "replace")
    if k == "or":
        v = 0
        for item in e.value:
            x = value(item)
            if not isinstance(x, int):
                raise ScriptValueError(f"'|' of a non-integer: {item.text()}", item)
            v |= x
        return v
    if k == "binop":
        op, a, b = e.value
        x, y = value(a), value(b)
        if not isinstance(x, int) or not isinstance(y, int):
            raise ScriptValueError(f"{op!r} of a non-integer: {e.text()}", e)
        return {"|": x | y, "&": x & y, "+": x + y, "-": x - y, "*": x * y,
                "<<": x << y, ">>": x >> y}.get(op, x | y)
    if k == "assign":  # name=value outside braces: the value
        return value(e.value[1])
    if k == "list":
        return [value(x) for x in e.value]
    if k == "struct":
        return {key: value(x) for key, x in e.value.items()}
    if k == "call":
        name, args = e.value
        vals = [value(a) for a in args]
        if name == "htons" and len(vals) == 1:
            return int(vals[0]) & 0xFFFF
        if name == "htonl" and len(vals) == 1:
            return int(vals[0]) & 0xFFFFFFFF
        if name in ("inet_addr", "inet6_addr") and len(vals) == 1:
            return vals[0].decode() if isinstance(vals[0], bytes) else vals[0]
        raise ScriptValueError(f"unknown function {name}()", e)
    raise ScriptValueError(f"cannot use {e.text()!r} here", e)


def check_symbols(e: Expr) -> None:
    """Raise ``ScriptValueError`` for an unknown symbol anywhere in ``e`` (load time)."""
    k = e.kind
    if k == "word" and e.value not in SYMBOLS and e.value != "NULL":
        raise ScriptValueError(f"unknown symbol {e.value!r}", e)
    if k in ("list", "or"):
        for x in e.value:
            check_symbols(x)
    elif k == "assign":
        check_symbols(e.value[1])
    elif k == "struct":
        for x in e.value.values():
            check_symbols(x)
    elif k == "call":
        for x in e.value[1]:
            check_symbols(x)
    elif k == "binop":
        check_symbols(e.value[1])
        check_symbols(e.value[2])


def errno_name(n: int) -> str:
    return _errno.errorcode.get(n, str(n))


@dataclass
class Result:
    ret: int
    errno: int = 0
    mismatch: str | None = None  # an output argument differs from the script's
    new_fds: list[tuple[int, int]] = field(default_factory=list)  # (script fd, live fd)
    started: float = 0.0  # time.monotonic() when the call entered the kernel
    ended: float = 0.0
    peer: tuple[str, int] | None = None  # accept/connect: the remote address
    local: tuple[str, int] | None = None

    def text(self) -> str:
        if self.ret == -1 and self.errno:
            return f"-1 {errno_name(self.errno)} ({os.strerror(self.errno)})"
        return str(self.ret)


@dataclass
class Fd:
    """One live file descriptor of the script."""

    script: int
    obj: Any  # socket.socket, select.epoll, or an int (pipe end, file)
    kind: str  # socket, epoll, pipe, file
    listening: bool = False
    port: int | None = None  # the bound/local port of a socket
    epoll_data: dict[int, int] = field(default_factory=dict)  # live fd -> script fd
    tfo_key: bytes | None = None  # setsockopt(TCP_FASTOPEN_KEY): a listener's own key

    @property
    def fileno(self) -> int:
        return self.obj if isinstance(self.obj, int) else self.obj.fileno()


def _i(v: Any, what: str, e: Expr | None = None) -> int:
    if isinstance(v, list) and len(v) == 1:
        v = v[0]
    if isinstance(v, bool) or not isinstance(v, int):
        raise ScriptValueError(f"{what}: expected an integer, got {v!r}", e)
    return v


class LiveKernel:
    """The script's file descriptors and its system calls on them. Not thread-safe by
    design beyond what the runner needs: one call at a time, plus at most one blocking
    call in flight (as packetdrill)."""

    def __init__(self, *, new_socket: Any, local_ip: str, remote_ip: str,
                 script_local: str = "192.168.0.1", script_remote: str = "192.0.2.1",
                 bind_port: int = 8080, connect_port: int = 8080, congestion: str | None = None,
                 cwd: str = ".") -> None:
        self.new_socket = new_socket  # (family, type, proto) -> socket in the peer netns
        self.local_ip = local_ip
        self.remote_ip = remote_ip
        self.script_local = script_local
        self.script_remote = script_remote
        self.bind_port = bind_port
        self.connect_port = connect_port
        self.congestion = congestion
        self.cwd = cwd
        self.fds: dict[int, Fd] = {}
        self._values: dict[int, tuple[Syscall, list[Any], Any]] = {}
        # Script time 0 on CLOCK_REALTIME (software timestamps use it), set by the runner
        # at time 0; and packetdrill's --tolerance_usecs, for timestamps in cmsgs.
        self.t0_realtime: float | None = None
        self.tolerance_us = 4000

    def script_to_realtime_us(self, script_us: int) -> int | None:
        if self.t0_realtime is None:
            return None
        return int(self.t0_realtime * 1e6) + script_us

    # ------------------------------------------------------------------ helpers
    def fd(self, script_fd: Any) -> Fd:
        if not isinstance(script_fd, int) or script_fd not in self.fds:
            raise OSError(_errno.EBADF, "no such script fd")
        return self.fds[script_fd]

    def sock(self, script_fd: Any) -> socket.socket:
        f = self.fd(script_fd)
        if f.kind != "socket":
            raise OSError(_errno.ENOTSOCK, "not a socket")
        return f.obj

    def script_fd_of(self, live: int) -> int:
        for f in self.fds.values():
            if f.fileno == live:
                return f.script
        return live

    def _map_ip(self, ip: str) -> str:
        if ip == self.script_local:
            return self.local_ip
        if ip == self.script_remote:
            return self.remote_ip
        return ip

    def sockaddr(self, v: Any, *, local: bool) -> tuple[str, int]:
        if v is ... or v is None:
            return (self.local_ip, self.bind_port) if local else (self.remote_ip,
                                                                  self.connect_port)
        if isinstance(v, dict):
            port = v.get("sin_port", v.get("sin6_port", ...))
            addr = v.get("sin_addr", v.get("sin6_addr", ...))
            dport = self.bind_port if local else self.connect_port
            ip = (self.local_ip if local else self.remote_ip) if addr is ... else \
                self._map_ip(str(addr))
            return ip, dport if port is ... else int(port)
        raise ScriptValueError(f"cannot use {v!r} as a socket address")

    def add(self, script_fd: int, obj: Any, kind: str, *, cloexec: bool = False,
            **kw: Any) -> Fd:
        """A new live fd for ``script_fd``. Python opens every fd close-on-exec; the
        call the script made did not unless it asked (``SOCK_CLOEXEC``, ``O_CLOEXEC``),
        so ``fcntl(F_GETFD)`` gives what packetdrill's own call gives."""
        f = Fd(script_fd, obj, kind, **kw)
        os.set_inheritable(f.fileno, not cloexec)
        old = self.fds.pop(script_fd, None)
        if old is not None:
            self._close_obj(old)
        self.fds[script_fd] = f
        return f

    @staticmethod
    def _close_obj(f: Fd) -> None:
        try:
            if isinstance(f.obj, int):
                os.close(f.obj)
            else:
                f.obj.close()
        except OSError:
            pass

    def close_all(self) -> None:
        """End of the script: wake blocked calls (shutdown) and close every fd."""
        for f in list(self.fds.values()):
            if f.kind == "socket":
                with contextlib.suppress(OSError):
                    f.obj.shutdown(socket.SHUT_RDWR)
        for f in list(self.fds.values()):
            self._close_obj(f)
        self.fds.clear()

    # ------------------------------------------------------------------ entry
    def call(self, sc: Syscall) -> Result:
        # A script's arguments are constants: evaluated once per call site.
        got = self._values.get(id(sc))
        if got is None or got[0] is not sc:
            got = self._values[id(sc)] = (
                sc, [value(a) for a in sc.args],
                value(sc.ret) if sc.ret.kind != "ellipsis" else ...)
        _sc, args, expected = got
        args = list(args)  # a call may not change what the next one reads
        fn = getattr(self, "do_" + sc.name, None)
        if fn is None:
            raise ScriptValueError(f"system call {sc.name!r} is not supported")
        res = Result(0)
        res.started = time.monotonic()
        try:
            out = fn(sc, args, expected, res)
            res.ret = out if isinstance(out, int) else res.ret
        except OSError as e:
            res.ret, res.errno = -1, e.errno or 0
        res.ended = time.monotonic()
        return res

    # ------------------------------------------------------------------ sockets
    def do_socket(self, sc: Syscall, a: list[Any], want: Any, res: Result) -> int:
        # ``...`` for the domain: the script's address family (IPv4 here).
        family = socket.AF_INET if a[0] is ... else _i(a[0], "socket() domain")
        stype, proto = _i(a[1], "socket() type"), _i(a[2], "socket() protocol")
        s = self.new_socket(family, stype, proto)
        if self.congestion and (stype & 0xF) == socket.SOCK_STREAM:
            with contextlib.suppress(OSError):
                s.setsockopt(socket.IPPROTO_TCP, SYMBOLS["TCP_CONGESTION"],
                             self.congestion.encode())
        sfd = want if isinstance(want, int) and want >= 0 else s.fileno()
        self.add(sfd, s, "socket", cloexec=bool(stype & SYMBOLS["SOCK_CLOEXEC"]))
        res.new_fds.append((sfd, s.fileno()))
        return s.fileno()

    def do_bind(self, sc: Syscall, a: list[Any], want: Any, res: Result) -> int:
        f = self.fd(a[0])
        addr = self.sockaddr(a[1], local=True)
        self.sock(a[0]).bind(addr)
        f.port = addr[1]
        return 0

    def do_listen(self, sc: Syscall, a: list[Any], want: Any, res: Result) -> int:
        f = self.fd(a[0])
        s = self.sock(a[0])
        s.listen(_i(a[1], "listen() backlog"))
        f.listening = True
        f.port = s.getsockname()[1]
        return 0

    def do_accept(self, sc: Syscall, a: list[Any], want: Any, res: Result) -> int:
        s = self.sock(a[0])
        fd, addr = s._accept()  # type: ignore[attr-defined]
        new = socket.socket(s.family, socket.SOCK_STREAM, 0, fileno=fd)
        sfd = want if isinstance(want, int) and want >= 0 else fd
        self.add(sfd, new, "socket", port=new.getsockname()[1])
        res.new_fds.append((sfd, fd))
        res.peer = addr
        res.local = new.getsockname()
        return fd

    def do_connect(self, sc: Syscall, a: list[Any], want: Any, res: Result) -> int:
        s = self.sock(a[0])
        if isinstance(a[1], int):  # a bare family: connect(fd, AF_UNSPEC, ...) disconnects
            return _libc_connect_family(s.fileno(), a[1])
        addr = self.sockaddr(a[1], local=False)
        res.peer = addr
        try:
            s.connect(addr)
        finally:
            try:
                res.local = s.getsockname()
                self.fd(a[0]).port = res.local[1]
            except OSError:
                pass
        return 0

    def do_shutdown(self, sc: Syscall, a: list[Any], want: Any, res: Result) -> int:
        self.sock(a[0]).shutdown(_i(a[1], "shutdown() how"))
        return 0

    def do_close(self, sc: Syscall, a: list[Any], want: Any, res: Result) -> int:
        f = self.fd(a[0])
        del self.fds[f.script]
        if isinstance(f.obj, int):
            os.close(f.obj)
        else:
            f.obj.close()
        return 0

    # ------------------------------------------------------------------ data
    @staticmethod
    def _count(v: Any, what: str) -> int:
        return _i(v, what)

    def do_read(self, sc: Syscall, a: list[Any], want: Any, res: Result) -> int:
        f = self.fd(a[0])
        n = self._count(a[2], "read() count")
        if a[1] is None:  # NULL buffer: the kernel's EFAULT, as written
            return _libc_call("read", f.fileno, None, n)
        return len(os.read(f.fileno, n))

    def do_write(self, sc: Syscall, a: list[Any], want: Any, res: Result) -> int:
        f = self.fd(a[0])
        n = self._count(a[2], "write() count")
        if a[1] is None:
            return _libc_call("write", f.fileno, None, n)
        return os.write(f.fileno, _payload(a[1], n))

    def do_recv(self, sc: Syscall, a: list[Any], want: Any, res: Result) -> int:
        f = self.fd(a[0])
        n = self._count(a[2], "recv() count")
        flags = _i(a[3], "recv() flags") if len(a) > 3 else 0
        if a[1] is None:
            return _libc_call("recv", f.fileno, None, n, flags)
        return len(self.sock(a[0]).recv(n, flags))

    def do_recvfrom(self, sc: Syscall, a: list[Any], want: Any, res: Result) -> int:
        f = self.fd(a[0])
        n = self._count(a[2], "recvfrom() count")
        flags = _i(a[3], "recvfrom() flags") if len(a) > 3 else 0
        if a[1] is None:
            return _libc_call("recv", f.fileno, None, n, flags)
        return len(self.sock(a[0]).recvfrom(n, flags)[0])

    def do_send(self, sc: Syscall, a: list[Any], want: Any, res: Result) -> int:
        f = self.fd(a[0])
        n = self._count(a[2], "send() count")
        flags = _i(a[3], "send() flags") if len(a) > 3 else 0
        if a[1] is None:
            return _libc_call("send", f.fileno, None, n, flags)
        return self.sock(a[0]).send(_payload(a[1], n), flags)

    def do_sendto(self, sc: Syscall, a: list[Any], want: Any, res: Result) -> int:
        f = self.fd(a[0])
        n = self._count(a[2], "sendto() count")
        flags = _i(a[3], "sendto() flags") if len(a) > 3 else 0
        s = self.sock(a[0])
        if a[1] is None:
            return _libc_call("send", f.fileno, None, n, flags)
        if len(a) > 4 and isinstance(a[4], int):  # a bare family (AF_UNSPEC): as written
            return _libc_sendto_family(f.fileno, n, flags, a[4])
        if len(a) > 4 and a[4] is not None:  # `...`: packetdrill's remote address
            addr = self.sockaddr(a[4], local=False)
            res.peer = addr
            try:
                return s.sendto(_payload(a[1], n), flags, addr)
            finally:
                try:
                    res.local = s.getsockname()
                    self.fd(a[0]).port = res.local[1]
                except OSError:
                    pass
        return s.send(_payload(a[1], n), flags)

    @staticmethod
    def _iov_lens(v: Any, what: str) -> list[int]:
        if v is ... or v is None:
            return []
        if not isinstance(v, list):
            v = [v]
        out = []
        for item in v:
            if isinstance(item, dict):
                n = item.get("iov_len", item.get("1", 0))
            else:
                n = item
            out.append(0 if n is ... else _i(n, what))
        return out

    def do_writev(self, sc: Syscall, a: list[Any], want: Any, res: Result) -> int:
        f = self.fd(a[0])
        lens = self._iov_lens(a[1], "writev() iov_len")
        return os.writev(f.fileno, [bytes(n) for n in lens])

    def do_readv(self, sc: Syscall, a: list[Any], want: Any, res: Result) -> int:
        f = self.fd(a[0])
        lens = self._iov_lens(a[1], "readv() iov_len")
        return os.readv(f.fileno, [bytearray(n) for n in lens])

    def do_sendmsg(self, sc: Syscall, a: list[Any], want: Any, res: Result) -> int:
        s = self.sock(a[0])
        msg = a[1] if isinstance(a[1], dict) else {}
        flags = _i(a[2], "sendmsg() flags") if len(a) > 2 else 0
        lens = self._iov_lens(msg.get("msg_iov", ...), "sendmsg() iov_len")
        anc = []
        for c in msg.get("msg_control", []) if isinstance(msg.get("msg_control"), list) else []:
            if isinstance(c, dict):
                data = c.get("cmsg_data", b"")
                if isinstance(data, int):
                    data = struct.pack("i", data)
                elif isinstance(data, list):
                    data = b"".join(struct.pack("i", int(x)) for x in data)
                elif not isinstance(data, bytes):
                    data = b""
                anc.append((int(c.get("cmsg_level", 0)), int(c.get("cmsg_type", 0)), data))
        name = msg.get("msg_name", ...)
        addr = None
        if isinstance(name, dict) or flags & SYMBOLS["MSG_FASTOPEN"]:
            addr = self.sockaddr(name, local=False)
        buffers = [bytes(n) for n in lens]
        if addr is not None:
            return s.sendmsg(buffers, anc, flags, addr)
        return s.sendmsg(buffers, anc, flags)

    def do_recvmsg(self, sc: Syscall, a: list[Any], want: Any, res: Result) -> int:
        s = self.sock(a[0])
        msg = a[1] if isinstance(a[1], dict) else {}
        flags = _i(a[2], "recvmsg() flags") if len(a) > 2 else 0
        lens = self._iov_lens(msg.get("msg_iov", ...), "recvmsg() iov_len")
        ctl = msg.get("msg_control", ...)
        data, anc, mflags, _addr = s.recvmsg(sum(lens) or 0, 4096 if ctl is not ... else 0,
                                              flags)
        want_flags = msg.get("msg_flags", ...)
        if want_flags is not ... and isinstance(want_flags, int) and want_flags != mflags:
            res.mismatch = (f"recvmsg(): msg_flags: expected {flag_names(want_flags, 'MSG_')} "
                            f"but got {flag_names(mflags, 'MSG_')}")
        elif isinstance(ctl, list):
            res.mismatch = _compare_cmsgs(ctl, anc, self.script_to_realtime_us,
                                          self.tolerance_us)
        return len(data)

    def do_sendfile(self, sc: Syscall, a: list[Any], want: Any, res: Result) -> int:
        out, inp = self.fd(a[0]), self.fd(a[1])
        off = a[2]
        off = off[0] if isinstance(off, list) and off else (None if off in (None, ...) else off)
        return os.sendfile(out.fileno, inp.fileno, off, _i(a[3], "sendfile() count"))

    def do_splice(self, sc: Syscall, a: list[Any], want: Any, res: Result) -> int:
        src, dst = self.fd(a[0]), self.fd(a[2])
        return os.splice(src.fileno, dst.fileno, _i(a[4], "splice() len"),
                         flags=_i(a[5], "splice() flags") if len(a) > 5 else 0)

    def do_pipe(self, sc: Syscall, a: list[Any], want: Any, res: Result) -> int:
        r, w = os.pipe()
        fds = a[0] if isinstance(a[0], list) and len(a[0]) == 2 else [r, w]
        for sfd, live in zip(fds, (r, w), strict=True):
            sfd = sfd if isinstance(sfd, int) else live
            self.add(sfd, live, "pipe")
            res.new_fds.append((sfd, live))
        return 0

    def do_open(self, sc: Syscall, a: list[Any], want: Any, res: Result) -> int:
        path = a[0].decode() if isinstance(a[0], bytes) else str(a[0])
        flags = _i(a[1], "open() flags") if len(a) > 1 else 0
        mode = _i(a[2], "open() mode") if len(a) > 2 else 0o644
        fd = os.open(path if os.path.isabs(path) else os.path.join(self.cwd, path), flags, mode)
        sfd = want if isinstance(want, int) and want >= 0 else fd
        self.add(sfd, fd, "file", cloexec=bool(flags & SYMBOLS["O_CLOEXEC"]))
        res.new_fds.append((sfd, fd))
        return fd

    # ------------------------------------------------------------------ control
    def do_fcntl(self, sc: Syscall, a: list[Any], want: Any, res: Result) -> int:
        f = self.fd(a[0])
        cmd = _i(a[1], "fcntl() cmd")
        if len(a) > 2:
            return fcntl.fcntl(f.fileno, cmd, _i(a[2], "fcntl() arg"))
        return fcntl.fcntl(f.fileno, cmd)

    def do_ioctl(self, sc: Syscall, a: list[Any], want: Any, res: Result) -> int:
        f = self.fd(a[0])
        req = _i(a[1], "ioctl() request")
        buf = bytearray(4)
        if len(a) > 2 and isinstance(a[2], list) and a[2] and isinstance(a[2][0], int) \
                and req == SYMBOLS["FIONBIO"]:
            buf = bytearray(struct.pack("i", a[2][0]))
        ret = fcntl.ioctl(f.fileno, req, buf, True)
        got = struct.unpack("i", buf)[0]
        if len(a) > 2 and isinstance(a[2], list) and a[2] and isinstance(a[2][0], int) \
                and req != SYMBOLS["FIONBIO"] and got != a[2][0]:
            res.mismatch = f"ioctl(): expected value {a[2][0]} but got {got}"
        return ret

    def do_setsockopt(self, sc: Syscall, a: list[Any], want: Any, res: Result) -> int:
        s = self.sock(a[0])
        level, name = _i(a[1], "level"), _i(a[2], "option name")
        optlen = a[4] if len(a) > 4 else ...
        v = a[3]
        if v is None:
            s.setsockopt(level, name, None, _i(optlen, "optlen") if optlen is not ... else 0)
            return 0
        raw = _pack_opt(v, optlen)
        if isinstance(optlen, int) and len(raw) != optlen:
            raw = raw[:optlen].ljust(optlen, b"\0")
        s.setsockopt(level, name, raw)
        if level == socket.IPPROTO_TCP and name == SYMBOLS["TCP_FASTOPEN_KEY"] \
                and len(raw) >= 16:
            self.fd(a[0]).tfo_key = raw[:16]  # the listener's own key makes its cookies
        return 0

    def do_getsockopt(self, sc: Syscall, a: list[Any], want: Any, res: Result) -> int:
        s = self.sock(a[0])
        level, name = _i(a[1], "level"), _i(a[2], "option name")
        v = a[3] if len(a) > 3 else ...
        lenv = a[4] if len(a) > 4 else ...
        want_len = lenv[0] if isinstance(lenv, list) and lenv else (
            lenv if isinstance(lenv, int) else None)
        buflen = want_len if isinstance(want_len, int) else 256
        raw = s.getsockopt(level, name, max(buflen, 1))
        if v is ...:
            pass
        elif isinstance(v, list) and len(v) == 1 and isinstance(v[0], int):
            fmt = {1: "B", 2: "H"}.get(len(raw), "I")
            got = struct.unpack(fmt, raw[:struct.calcsize(fmt)].ljust(struct.calcsize(fmt),
                                                                       b"\0"))[0]
            if got & 0xFFFFFFFF != v[0] & 0xFFFFFFFF:
                res.mismatch = (f"getsockopt(): bad optval: expected {v[0]} but got {got}")
        elif isinstance(v, bytes):
            got_s = raw.split(b"\0", 1)[0]
            if got_s != v.split(b"\0", 1)[0]:
                res.mismatch = f"getsockopt(): bad optval: expected {v!r} but got {got_s!r}"
        elif isinstance(v, dict) and name == SYMBOLS["SO_LINGER"]:
            on, secs = struct.unpack("ii", raw[:8].ljust(8, b"\0"))
            w_on, w_secs = v.get("onoff", v.get("0", ...)), v.get("linger", v.get("1", ...))
            if (w_on is not ... and w_on != on) or (w_secs is not ... and w_secs != secs):
                res.mismatch = f"getsockopt(): bad linger: got onoff={on} linger={secs}"
        elif v is not None:  # never a silent pass on a value netemu cannot compare
            res.mismatch = (f"getsockopt(): netemu cannot compare an optval of this shape "
                            f"yet: {v!r}")
        if not res.mismatch and isinstance(want_len, int) and want_len != len(raw):
            res.mismatch = f"getsockopt(): bad optlen: expected {want_len} but got {len(raw)}"
        return 0

    # ------------------------------------------------------------------ waiting
    def do_poll(self, sc: Syscall, a: list[Any], want: Any, res: Result) -> int:
        entries = a[0] if isinstance(a[0], list) else []
        p = select.poll()
        order = []
        for ent in entries:
            sfd = ent.get("fd", ent.get("0"))
            live = self.fd(sfd).fileno if sfd in self.fds else -1
            ev = ent.get("events", ent.get("1", 0))
            if live >= 0:
                p.register(live, ev if isinstance(ev, int) else 0)
            order.append((sfd, live, ent.get("revents", ent.get("2", ...))))
        timeout = _i(a[2], "poll() timeout") if len(a) > 2 else 0
        got = dict(p.poll(timeout))
        for sfd, live, want_rev in order:
            rev = got.get(live, 0) if live >= 0 else SYMBOLS["POLLNVAL"]
            if isinstance(want_rev, int) and rev != want_rev:
                res.mismatch = (f"poll(): expected revents of {flag_names(want_rev, 'POLL')} "
                                f"but got {flag_names(rev, 'POLL')} for fd {sfd}")
                break
        return len([1 for _s, live, _w in order if got.get(live, 0)])

    def do_epoll_create(self, sc: Syscall, a: list[Any], want: Any, res: Result) -> int:
        ep = select.epoll(sizehint=_i(a[0], "epoll_create() size") if a else -1)
        sfd = want if isinstance(want, int) and want >= 0 else ep.fileno()
        self.add(sfd, ep, "epoll")
        res.new_fds.append((sfd, ep.fileno()))
        return ep.fileno()

    def do_epoll_ctl(self, sc: Syscall, a: list[Any], want: Any, res: Result) -> int:
        ep = self.fd(a[0])
        if ep.kind != "epoll":
            raise OSError(_errno.EINVAL, "not an epoll fd")
        op = _i(a[1], "epoll_ctl() op")
        target = self.fd(a[2])
        ev = a[3] if len(a) > 3 and isinstance(a[3], dict) else {}
        mask = ev.get("events", 0)
        mask = mask if isinstance(mask, int) else 0
        if op == SYMBOLS["EPOLL_CTL_ADD"]:
            ep.obj.register(target.fileno, mask)
        elif op == SYMBOLS["EPOLL_CTL_MOD"]:
            ep.obj.modify(target.fileno, mask)
        elif op == SYMBOLS["EPOLL_CTL_DEL"]:
            ep.obj.unregister(target.fileno)
        else:
            raise OSError(_errno.EINVAL, "bad epoll_ctl op")
        data = ev.get("fd", ev.get("u32", ev.get("u64", ev.get("ptr", target.script))))
        ep.epoll_data[target.fileno] = data if isinstance(data, int) else target.script
        return 0

    def do_epoll_wait(self, sc: Syscall, a: list[Any], want: Any, res: Result) -> int:
        ep = self.fd(a[0])
        if ep.kind != "epoll":
            raise OSError(_errno.EINVAL, "not an epoll fd")
        maxevents = _i(a[2], "epoll_wait() maxevents")
        timeout = _i(a[3], "epoll_wait() timeout") if len(a) > 3 else 0
        got = ep.obj.poll(timeout / 1000 if timeout >= 0 else -1, maxevents)
        wants = a[1] if isinstance(a[1], list) else [a[1]]
        for i, w in enumerate(wants):
            if not isinstance(w, dict):
                break
            # packetdrill compares the script's event even when fewer came back (the
            # array it passed was zeroed): expecting EPOLLOUT where none came fails.
            live, mask = got[i] if i < len(got) else (-1, 0)
            if i >= len(got):
                w_ev = w.get("events", ...)
                if isinstance(w_ev, int) and w_ev != 0:
                    res.mismatch = (f"epoll_wait(): expected events "
                                    f"{flag_names(w_ev, 'EPOLL')} but got 0")
                break
            w_ev = w.get("events", ...)
            if isinstance(w_ev, int) and w_ev != mask:
                res.mismatch = (f"epoll_wait(): expected events {flag_names(w_ev, 'EPOLL')} "
                                f"but got {flag_names(mask, 'EPOLL')}")
                break
            w_fd = w.get("fd", w.get("u32", w.get("u64", ...)))
            data = ep.epoll_data.get(live, self.script_fd_of(live))
            if isinstance(w_fd, int) and w_ev != 0 and w_fd != data:
                res.mismatch = f"epoll_wait(): expected data {w_fd} but got {data}"
                break
        return len(got)


def _payload(buf: Any, n: int) -> bytes:
    if isinstance(buf, bytes):
        return buf[:n].ljust(n, b"\0")
    return bytes(n)


def _pack_opt(v: Any, optlen: Any) -> bytes:
    if isinstance(v, bytes):
        return v
    if isinstance(v, int):
        v = [v]
    if isinstance(v, list):
        if optlen == 1 and len(v) == 1:
            return struct.pack("B", v[0] & 0xFF)
        return b"".join(struct.pack("I", int(x) & 0xFFFFFFFF) for x in v
                        if isinstance(x, int))
    if isinstance(v, dict):
        if "onoff" in v or "linger" in v:
            return struct.pack("ii", int(v.get("onoff", 0)), int(v.get("linger", 0)))
        return b"".join(struct.pack("I", int(x) & 0xFFFFFFFF) for x in v.values()
                        if isinstance(x, int))
    raise ScriptValueError(f"cannot pass {v!r} as a socket option value")


def flag_names(mask: int, prefix: str) -> str:
    names = []
    rest = mask
    for name, bit in SYMBOLS.items():
        if name.startswith(prefix) and bit and bit & (bit - 1) == 0 and rest & bit:
            names.append(name)
            rest &= ~bit
    if rest:
        names.append(hex(rest))
    return "|".join(names) or "0"


def _compare_cmsgs(want: list[Any], got: list[tuple[int, int, bytes]],
                   to_real: Any = None, tol_us: int = 4000) -> str | None:
    """recvmsg's control messages against the script's: level, type, a
    ``sock_extended_err`` (error queue) field by field as written, and a
    ``scm_timestamping`` as packetdrill checks it: each timestamp the script gives (not
    0) within --tolerance_usecs of that script time on the kernel's clock."""
    if len(want) != len(got):
        return f"recvmsg(): expected {len(want)} control messages but got {len(got)}"
    for w, (level, ctype, data) in zip(want, got, strict=True):
        if not isinstance(w, dict):
            continue
        wl, wt = w.get("cmsg_level", ...), w.get("cmsg_type", ...)
        if (isinstance(wl, int) and wl != level) or (isinstance(wt, int) and wt != ctype):
            return (f"recvmsg(): control message: expected level {wl} type {wt} but got "
                    f"level {level} type {ctype}")
        d = w.get("cmsg_data", ...)
        if isinstance(d, dict | list) and ctype == SYMBOLS["SCM_TIMESTAMPING"] \
                and level == SYMBOLS["SOL_SOCKET"]:
            stamps = d if isinstance(d, list) else [d]
            for i, ts in enumerate(stamps[:3]):
                if not isinstance(ts, dict) or len(data) < 16 * (i + 1):
                    continue
                sec, nsec = ts.get("scm_sec", ts.get("tv_sec", 0)), \
                    ts.get("scm_nsec", ts.get("tv_nsec", 0))
                if not isinstance(sec, int) or not isinstance(nsec, int) or (not sec and
                                                                           not nsec):
                    continue  # packetdrill: a 0 timestamp is not checked
                a_sec, a_nsec = struct.unpack("qq", data[16 * i:16 * i + 16])
                actual = a_sec * 1_000_000 + a_nsec // 1000
                exp = to_real(sec * 1_000_000 + nsec // 1000) if to_real else None
                if exp is None:
                    continue
                if abs(exp - actual) > tol_us:
                    return (f"recvmsg(): bad timestamp {i} in scm_timestamping: expected "
                            f"{(exp - to_real(0)) / 1e6:.6f} s, got "
                            f"{(actual - to_real(0)) / 1e6:.6f} s (tolerance "
                            f"{tol_us / 1000:.1f} ms)")
        if isinstance(d, int):  # TCP_CM_INQ and other int-valued messages
            got = int.from_bytes(data[:4], "little", signed=True) if len(data) >= 4 else None
            if got != d:
                return f"recvmsg(): cmsg_data of type {ctype}: expected {d} but got {got}"
            continue
        if d is not ... and not (isinstance(d, dict | list) and (
                ctype == SYMBOLS["SCM_TIMESTAMPING"] or (isinstance(d, dict)
                                                          and "ee_errno" in d))):
            # Never a silent pass: a shape netemu does not compare is said so.
            return (f"recvmsg(): netemu cannot compare this cmsg_data yet (level {level}, "
                    f"type {ctype}): {d!r}")
        if isinstance(d, dict) and "ee_errno" in d and len(data) >= 16:
            vals = dict(zip(("ee_errno", "ee_origin", "ee_type", "ee_code", "ee_pad",
                             "ee_info", "ee_data"), struct.unpack("IBBBBII", data[:16]),
                            strict=True))
            for k, x in d.items():
                if isinstance(x, int) and k in vals and vals[k] != x:
                    return f"recvmsg(): sock_extended_err.{k}: expected {x} but got {vals[k]}"
    return None


_LIBC: Any = None


def _libc_call(name: str, fd: int, buf: Any, n: int, *flags: int) -> int:
    """A call with a NULL buffer reaches the kernel as written (EFAULT, or 0 for n=0)."""
    global _LIBC
    import ctypes

    if _LIBC is None:
        _LIBC = ctypes.CDLL(None, use_errno=True)
    fn = getattr(_LIBC, name)
    fn.restype = ctypes.c_ssize_t
    ret = fn(ctypes.c_int(fd), ctypes.c_void_p(None), ctypes.c_size_t(n),
             *[ctypes.c_int(f) for f in flags])
    if ret < 0:
        e = ctypes.get_errno()
        raise OSError(e, os.strerror(e))
    return int(ret)


def _libc() -> Any:
    global _LIBC
    import ctypes

    if _LIBC is None:
        _LIBC = ctypes.CDLL(None, use_errno=True)
    return _LIBC


def _libc_connect_family(fd: int, family: int) -> int:
    """``connect`` to a sockaddr that is only a family (``AF_UNSPEC``: the kernel
    disconnects the socket, as packetdrill's scripts use it)."""
    import ctypes

    addr = struct.pack("=H14x", family)
    ret = _libc().connect(ctypes.c_int(fd), ctypes.c_char_p(addr), ctypes.c_uint(len(addr)))
    if ret < 0:
        e = ctypes.get_errno()
        raise OSError(e, os.strerror(e))
    return int(ret)


def _libc_sendto_family(fd: int, n: int, flags: int, family: int) -> int:
    """``sendto`` with a sockaddr that is only a family (packetdrill's ``AF_UNSPEC``
    argument): the kernel decides what such an address means."""
    global _LIBC
    import ctypes

    if _LIBC is None:
        _LIBC = ctypes.CDLL(None, use_errno=True)
    addr = struct.pack("=H14x", family)
    buf = ctypes.create_string_buffer(max(n, 1))
    fn = _LIBC.sendto
    fn.restype = ctypes.c_ssize_t
    ret = fn(ctypes.c_int(fd), buf, ctypes.c_size_t(n), ctypes.c_int(flags),
             ctypes.c_char_p(addr), ctypes.c_uint(len(addr)))
    if ret < 0:
        e = ctypes.get_errno()
        raise OSError(e, os.strerror(e))
    return int(ret)
