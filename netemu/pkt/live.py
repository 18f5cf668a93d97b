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
import ipaddress
import os
import select
import socket
import struct
import time
from dataclasses import dataclass, field
from typing import Any

from . import libc
from .model import Expr, Syscall
from .sockdata import compare_cmsgs, pack_opt, payload_bytes
from .symbols import (
    FD_CALLS,
    SYMBOLS,
    ScriptValueError,
    errno_name,
    flag_names,
    value,
)

# The runner reads the script's values here too (``live.SYMBOLS``, ``live.value`` ...).
__all__ = ["FD_CALLS", "SYMBOLS", "Fd", "LiveKernel", "Result", "errno_name", "value"]


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


def _other_family(s: socket.socket, ip: str) -> bool:
    """A sockaddr of the other IP family than the socket's (a script's explicit
    ``sa_family=AF_INET`` address on an ``AF_INET6`` socket, or the reverse)."""
    if s.family not in (socket.AF_INET, socket.AF_INET6):
        return False
    return (":" in ip) != (s.family == socket.AF_INET6)


class LiveKernel:
    """The script's file descriptors and its system calls on them. Not thread-safe by
    design beyond what the runner needs: one call at a time, plus at most one blocking
    call in flight (as packetdrill)."""

    def __init__(
        self,
        *,
        new_socket: Any,
        family: int = socket.AF_INET,
        local_ip: str,
        remote_ip: str,
        script_local: str = "192.168.0.1",
        script_remote: str = "192.0.2.1",
        bind_port: int = 8080,
        connect_port: int = 8080,
        congestion: str | None = None,
        cwd: str = ".",
    ) -> None:
        self.new_socket = new_socket  # (family, type, proto) -> socket in the peer netns
        # The script's family (``...`` as socket()'s domain); its sockets' addresses
        # (IPv4-mapped ones for packetdrill's ipv4-mapped-ipv6: pkt.addrs).
        self.family = family
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
        """A script's address as the lab's: its local and remote ones (written as given
        or IPv4-mapped), others as written."""
        try:
            a = ipaddress.ip_address(ip)
        except ValueError:
            return ip
        if isinstance(a, ipaddress.IPv6Address) and a.ipv4_mapped is not None:
            a = a.ipv4_mapped
        for script, live in (
            (self.script_local, self.local_ip),
            (self.script_remote, self.remote_ip),
        ):
            if a == ipaddress.ip_address(script):
                return live
        return ip

    def sockaddr(
        self, v: Any, *, local: bool, sock: socket.socket | None = None
    ) -> tuple[str, int]:
        """A script's sockaddr (``...``: packetdrill's local or remote address and port)
        for ``sock``: an ``AF_INET`` socket of an IPv4-mapped run takes the plain IPv4
        address."""
        if v is ... or v is None:
            ip, port = (
                (self.local_ip, self.bind_port) if local else (self.remote_ip, self.connect_port)
            )
        elif isinstance(v, dict):
            fam = v.get("sa_family", v.get("sin6_family", ...))
            p: Any = v.get("sin_port", v.get("sin6_port", ...))
            addr = v.get("sin_addr", v.get("sin6_addr", ...))
            dport = self.bind_port if local else self.connect_port
            ip = (
                (self.local_ip if local else self.remote_ip)
                if addr is ...
                else self._map_ip(str(addr))
            )
            port = dport if p is ... else int(p)
            if fam == socket.AF_INET:  # written as IPv4: a sockaddr_in, whatever the socket
                return ip.removeprefix("::ffff:"), port
            if fam == socket.AF_INET6 and ":" not in ip:
                return "::ffff:" + ip, port
        else:
            raise ScriptValueError(f"cannot use {v!r} as a socket address")
        if sock is not None and sock.family == socket.AF_INET and ip.startswith("::ffff:"):
            ip = ip.removeprefix("::ffff:")
        return ip, port

    def add(self, script_fd: int, obj: Any, kind: str, *, cloexec: bool = False, **kw: Any) -> Fd:
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
                sc,
                [value(a) for a in sc.args],
                value(sc.ret) if sc.ret.kind != "ellipsis" else ...,
            )
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
        # ``...`` for the domain: the script's address family (--ip_version's).
        family = self.family if a[0] is ... else _i(a[0], "socket() domain")
        stype, proto = _i(a[1], "socket() type"), _i(a[2], "socket() protocol")
        s = self.new_socket(family, stype, proto)
        if self.congestion and (stype & 0xF) == socket.SOCK_STREAM:
            with contextlib.suppress(OSError):
                s.setsockopt(
                    socket.IPPROTO_TCP, SYMBOLS["TCP_CONGESTION"], self.congestion.encode()
                )
        sfd = want if isinstance(want, int) and want >= 0 else s.fileno()
        self.add(sfd, s, "socket", cloexec=bool(stype & SYMBOLS["SOCK_CLOEXEC"]))
        res.new_fds.append((sfd, s.fileno()))
        return s.fileno()

    def do_bind(self, sc: Syscall, a: list[Any], want: Any, res: Result) -> int:
        f = self.fd(a[0])
        s = self.sock(a[0])
        addr = self.sockaddr(a[1], local=True, sock=s)
        if _other_family(s, addr[0]):
            libc.addr_call("bind", s.fileno(), libc.sockaddr_in(*addr))
        else:
            s.bind(addr)
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
            return libc.connect_family(s.fileno(), a[1])
        addr = self.sockaddr(a[1], local=False, sock=s)
        res.peer = addr
        if _other_family(s, addr[0]):  # the kernel's answer, not Python's refusal
            return libc.addr_call("connect", s.fileno(), libc.sockaddr_in(*addr))
        try:
            s.connect(addr)
        finally:
            self._bound_to(s, a[0], res)
        return 0

    def _bound_to(self, s: socket.socket, script_fd: Any, res: Result) -> None:
        """After a connect or sendto: the local address the kernel gave the socket."""
        try:
            res.local = s.getsockname()
            self.fd(script_fd).port = res.local[1]
        except OSError:
            pass

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
            return libc.null_buffer_call("read", f.fileno, n)
        return len(os.read(f.fileno, n))

    def do_write(self, sc: Syscall, a: list[Any], want: Any, res: Result) -> int:
        f = self.fd(a[0])
        n = self._count(a[2], "write() count")
        if a[1] is None:
            return libc.null_buffer_call("write", f.fileno, n)
        return os.write(f.fileno, payload_bytes(a[1], n))

    def _recv_args(self, a: list[Any], call: str) -> tuple[int, int, int | None]:
        """recv()/recvfrom()'s count and flags; the count read through a NULL buffer
        (None: a real buffer, read by the caller)."""
        f = self.fd(a[0])
        n = self._count(a[2], f"{call}() count")
        flags = _i(a[3], f"{call}() flags") if len(a) > 3 else 0
        null = libc.null_buffer_call("recv", f.fileno, n, flags) if a[1] is None else None
        return n, flags, null

    def do_recv(self, sc: Syscall, a: list[Any], want: Any, res: Result) -> int:
        n, flags, null = self._recv_args(a, "recv")
        return null if null is not None else len(self.sock(a[0]).recv(n, flags))

    def do_recvfrom(self, sc: Syscall, a: list[Any], want: Any, res: Result) -> int:
        n, flags, null = self._recv_args(a, "recvfrom")
        return null if null is not None else len(self.sock(a[0]).recvfrom(n, flags)[0])

    def do_send(self, sc: Syscall, a: list[Any], want: Any, res: Result) -> int:
        f = self.fd(a[0])
        n = self._count(a[2], "send() count")
        flags = _i(a[3], "send() flags") if len(a) > 3 else 0
        if a[1] is None:
            return libc.null_buffer_call("send", f.fileno, n, flags)
        return self.sock(a[0]).send(payload_bytes(a[1], n), flags)

    def do_sendto(self, sc: Syscall, a: list[Any], want: Any, res: Result) -> int:
        f = self.fd(a[0])
        n = self._count(a[2], "sendto() count")
        flags = _i(a[3], "sendto() flags") if len(a) > 3 else 0
        s = self.sock(a[0])
        if a[1] is None:
            return libc.null_buffer_call("send", f.fileno, n, flags)
        if len(a) > 4 and isinstance(a[4], int):  # a bare family (AF_UNSPEC): as written
            return libc.sendto_family(f.fileno, n, flags, a[4])
        if len(a) > 4 and a[4] is not None:  # `...`: packetdrill's remote address
            addr = self.sockaddr(a[4], local=False, sock=s)
            res.peer = addr
            try:
                return s.sendto(payload_bytes(a[1], n), flags, addr)
            finally:
                self._bound_to(s, a[0], res)
        return s.send(payload_bytes(a[1], n), flags)

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
            addr = self.sockaddr(name, local=False, sock=s)
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
        data, anc, mflags, _addr = s.recvmsg(sum(lens) or 0, 4096 if ctl is not ... else 0, flags)
        want_flags = msg.get("msg_flags", ...)
        if want_flags is not ... and isinstance(want_flags, int) and want_flags != mflags:
            res.mismatch = (
                f"recvmsg(): msg_flags: expected {flag_names(want_flags, 'MSG_')} "
                f"but got {flag_names(mflags, 'MSG_')}"
            )
        elif isinstance(ctl, list):
            res.mismatch = compare_cmsgs(ctl, anc, self.script_to_realtime_us, self.tolerance_us)
        return len(data)

    def do_sendfile(self, sc: Syscall, a: list[Any], want: Any, res: Result) -> int:
        out, inp = self.fd(a[0]), self.fd(a[1])
        off = a[2]
        off = off[0] if isinstance(off, list) and off else (None if off in (None, ...) else off)
        return os.sendfile(out.fileno, inp.fileno, off, _i(a[3], "sendfile() count"))

    def do_splice(self, sc: Syscall, a: list[Any], want: Any, res: Result) -> int:
        src, dst = self.fd(a[0]), self.fd(a[2])
        return os.splice(
            src.fileno,
            dst.fileno,
            _i(a[4], "splice() len"),
            flags=_i(a[5], "splice() flags") if len(a) > 5 else 0,
        )

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
        if (
            len(a) > 2
            and isinstance(a[2], list)
            and a[2]
            and isinstance(a[2][0], int)
            and req == SYMBOLS["FIONBIO"]
        ):
            buf = bytearray(struct.pack("i", a[2][0]))
        ret = fcntl.ioctl(f.fileno, req, buf, True)
        got = struct.unpack("i", buf)[0]
        if (
            len(a) > 2
            and isinstance(a[2], list)
            and a[2]
            and isinstance(a[2][0], int)
            and req != SYMBOLS["FIONBIO"]
            and got != a[2][0]
        ):
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
        raw = pack_opt(v, optlen)
        if isinstance(optlen, int) and len(raw) != optlen:
            raw = raw[:optlen].ljust(optlen, b"\0")
        s.setsockopt(level, name, raw)
        if level == socket.IPPROTO_TCP and name == SYMBOLS["TCP_FASTOPEN_KEY"] and len(raw) >= 16:
            self.fd(a[0]).tfo_key = raw[:16]  # the listener's own key makes its cookies
        return 0

    def do_getsockopt(self, sc: Syscall, a: list[Any], want: Any, res: Result) -> int:
        s = self.sock(a[0])
        level, name = _i(a[1], "level"), _i(a[2], "option name")
        v = a[3] if len(a) > 3 else ...
        lenv = a[4] if len(a) > 4 else ...
        want_len = (
            lenv[0]
            if isinstance(lenv, list) and lenv
            else (lenv if isinstance(lenv, int) else None)
        )
        buflen = want_len if isinstance(want_len, int) else 256
        raw = s.getsockopt(level, name, max(buflen, 1))
        if v is ...:
            pass
        elif isinstance(v, list) and len(v) == 1 and isinstance(v[0], int):
            fmt = {1: "B", 2: "H"}.get(len(raw), "I")
            got = struct.unpack(
                fmt, raw[: struct.calcsize(fmt)].ljust(struct.calcsize(fmt), b"\0")
            )[0]
            if got & 0xFFFFFFFF != v[0] & 0xFFFFFFFF:
                res.mismatch = f"getsockopt(): bad optval: expected {v[0]} but got {got}"
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
            res.mismatch = f"getsockopt(): netemu cannot compare an optval of this shape yet: {v!r}"
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
                res.mismatch = (
                    f"poll(): expected revents of {flag_names(want_rev, 'POLL')} "
                    f"but got {flag_names(rev, 'POLL')} for fd {sfd}"
                )
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
                    res.mismatch = (
                        f"epoll_wait(): expected events {flag_names(w_ev, 'EPOLL')} but got 0"
                    )
                break
            w_ev = w.get("events", ...)
            if isinstance(w_ev, int) and w_ev != mask:
                res.mismatch = (
                    f"epoll_wait(): expected events {flag_names(w_ev, 'EPOLL')} "
                    f"but got {flag_names(mask, 'EPOLL')}"
                )
                break
            w_fd = w.get("fd", w.get("u32", w.get("u64", ...)))
            data = ep.epoll_data.get(live, self.script_fd_of(live))
            if isinstance(w_fd, int) and w_ev != 0 and w_fd != data:
                res.mismatch = f"epoll_wait(): expected data {w_fd} but got {data}"
                break
        return len(got)
