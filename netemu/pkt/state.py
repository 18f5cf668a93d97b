"""The connection table of a packetdrill run: the script's file descriptors and the live
connections they stand for, and which connection a script packet belongs to.

packetdrill runs against one "socket under test": the last socket the script made or
listened on, or the connection it accepted or connected. Here the kernel under test is
the lab's peer and netemu's end of each connection is a *raw* port of netemu's host
(it sends nothing by itself), so every connection is a ``Conn``: netemu's port, the
kernel's, and the offsets that turn script sequence numbers into live ones. Everything
that changes the table lives here: packets open connections (``for_inbound``), system
calls open, name and close sockets (``before_call``, ``after_call``).

Layer: imports the script's model and the live kernel's call results only; the pieces
above it (``inbound``, ``outbound``, ``syscalls``) raise ``EventFailed``, which the
runner reports as its step's failure.
"""

from __future__ import annotations

import contextlib
import random
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol

from .model import Syscall

if TYPE_CHECKING:
    import socket

    from ..run.hooks import Hooks
    from ..trace.record import Trace
    from .live import LiveKernel, Result

MASK = 0xFFFFFFFF


class EventFailed(Exception):
    """A script event did not happen as written (its message is the step's)."""


class RawHost(Protocol):
    """What the run needs of netemu's host: its trace, its ports."""

    trace: Trace

    def ephemeral_port(self, peer_ip: str, peer_port: int) -> int: ...


@dataclass
class Conn:
    """The raw connection under test: netemu's end is ``emu_port``."""

    emu_port: int
    kernel_port: int | None
    our_off: int  # netemu's live seq = script seq + our_off
    cursor: int  # next trace frame to look at
    kernel_off: int | None = None  # the kernel's live seq = script seq + kernel_off
    kernel_syn: int = 0  # the script's sequence number of the kernel's SYN
    ts_map: dict[int, int] = field(default_factory=dict)  # script TS val -> live TS val
    first_ts: tuple[int, int] | None = None  # (script, live) of the first mapped TS val
    last_live_ts: int | None = None
    # packetdrill's flow label map (IPv6): (script's, kernel's) of the last one checked.
    flowlabels: tuple[int, int] | None = None
    syn_off: int | None = None  # our_off for SYNs: live = script seq + syn_off
    passive: bool = False  # opened by netemu's SYN (the kernel listened)


@dataclass
class Sock:
    """One script file descriptor."""

    fd: int
    kind: str = "socket"  # socket, listener, conn
    port: int | None = None  # bind port
    conn: Conn | None = None
    disconnected: bool = False  # connect(fd, AF_UNSPEC, ...) since its last connection


def _fd_arg(sc: Syscall) -> int | None:
    """The call's first argument when it is a file descriptor number."""
    return sc.args[0].value if sc.args and sc.args[0].kind == "int" else None


class ConnTable:
    """The script's sockets (``socks``), every connection opened (``all``) and the
    socket under test (``sut``). Each connection's port is claimed in the run's
    ``hooks``: the host leaves its segments to the script."""

    def __init__(
        self,
        host: RawHost,
        hooks: Hooks,
        peer_ip: str,
        rng: random.Random,
        *,
        bind_port: int,
        connect_port: int,
    ) -> None:
        self.host = host
        self.hooks = hooks
        self.peer_ip = peer_ip
        self.rng = rng
        self.bind_port = bind_port
        self.connect_port = connect_port
        self.socks: dict[int, Sock] = {}
        self.all: list[Conn] = []
        self.sut: Sock | Conn | None = None  # packetdrill's socket under test

    def new(self, kernel_port: int | None, emu_port: int | None = None) -> Conn:
        if emu_port is None:
            emu_port = self.host.ephemeral_port(self.peer_ip, kernel_port or 0)
        self.hooks.claim(emu_port)
        conn = Conn(emu_port, kernel_port, self.rng.getrandbits(32), len(self.host.trace.frames))
        self.all.append(conn)
        return conn

    def for_inbound(self) -> Conn:
        """The connection an inbound packet goes on: the one under test, else a new
        passive one to the listening (or bound) port."""
        sut = self.sut
        if isinstance(sut, Conn):
            return sut
        port = self.bind_port
        if isinstance(sut, Sock):
            port = sut.port or self.bind_port
        conn = self.new(port)
        conn.passive = True
        self.sut = conn
        return conn

    def for_outbound(self) -> Conn:
        sut = self.sut
        if isinstance(sut, Conn):
            return sut
        raise EventFailed(
            "no connection to expect a packet on: inject the first packet "
            "('<') or call connect() first"
        )

    def before_call(self, sc: Syscall) -> None:
        """Connection bookkeeping a call needs before it reaches the kernel: an active
        open's SYN leaves during the call."""
        from .live import SYMBOLS, value

        fast = False
        if sc.name in ("sendto", "sendmsg"):
            with contextlib.suppress(Exception):
                flags = value(sc.args[3] if sc.name == "sendto" else sc.args[2])
                fast = isinstance(flags, int) and bool(flags & SYMBOLS["MSG_FASTOPEN"])
        if sc.name != "connect" and not fast:
            return
        fd = _fd_arg(sc)
        s = self.socks.get(fd) if fd is not None else None
        if s is None:
            return
        addr: Any = ...
        with contextlib.suppress(Exception):
            addr = value(sc.args[1] if sc.name == "connect" else sc.args[4])
        if isinstance(addr, int):  # connect(fd, AF_UNSPEC, ...): a disconnect
            s.disconnected = True
            return
        # A connect on a socket that has a connection opens a new one only after a
        # disconnect, or from an accepted socket (its connection was the passive one);
        # otherwise it is a second connect (EALREADY, EISCONN) and sends nothing.
        if s.conn is not None and not (s.disconnected or s.conn.passive):
            return
        s.disconnected = False
        port = self.connect_port
        if isinstance(addr, dict) and isinstance(addr.get("sin_port"), int):
            port = addr["sin_port"]
        conn = self.new(None, emu_port=port)
        conn.cursor = len(self.host.trace.frames)
        s.conn = conn
        s.kind = "conn"
        self.sut = conn

    def after_call(self, sc: Syscall, r: Result, kernel: LiveKernel | None) -> None:
        """The table after a call returned ``r``: new fds, closed ones, bound and
        listening ports, a connection's local port."""
        for sfd, _live in r.new_fds:
            if sc.name == "accept":
                new = Sock(sfd, "conn", port=r.local[1] if r.local else None)
                for conn in self._conns():
                    if r.peer and conn.emu_port == r.peer[1]:
                        new.conn = conn
                self.socks[sfd] = new
            elif sc.name == "socket":
                s = Sock(sfd)
                self.socks[sfd] = s
                self.sut = s
            else:
                self.socks[sfd] = Sock(sfd, "other")
        fd = _fd_arg(sc)
        if fd is None or fd not in self.socks:
            return
        s = self.socks[fd]
        if sc.name == "close" and r.ret == 0:
            del self.socks[fd]
        elif sc.name == "bind" and r.ret == 0:
            f = kernel.fds.get(fd) if kernel else None
            s.port = f.port if f is not None else s.port
        elif sc.name == "listen" and r.ret == 0:
            f = kernel.fds.get(fd) if kernel else None
            s.kind = "listener"
            s.port = f.port if f is not None else s.port
            self.sut = s
        elif s.conn is not None and r.local and r.local[1] and s.conn.kernel_port is None:
            s.conn.kernel_port = r.local[1]

    def _conns(self) -> list[Conn]:
        out = [s.conn for s in self.socks.values() if s.conn is not None]
        if isinstance(self.sut, Conn) and self.sut not in out:
            out.append(self.sut)
        return out

    def sut_socket(self, kernel: LiveKernel | None) -> socket.socket | None:
        """The live socket of packetdrill's socket under test: the accepted or connected
        socket of the connection under test, else the last socket the script made."""
        if kernel is None:
            return None
        sut = self.sut
        cands: list[int] = []
        if isinstance(sut, Conn):
            cands += [fd for fd, s in self.socks.items() if s.conn is sut]
        elif isinstance(sut, Sock):
            cands.append(sut.fd)
        cands += sorted(self.socks, reverse=True)
        for fd in cands:
            f = kernel.fds.get(fd)
            if f is not None and f.kind == "socket":
                obj: socket.socket = f.obj
                return obj
        return None
