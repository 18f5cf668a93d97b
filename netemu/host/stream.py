"""Byte streams over the emulated host's connections, in anyio's style."""

from __future__ import annotations

from typing import TYPE_CHECKING

import anyio
from anyio.abc import ByteStream

from ..tcp import Connection, State
from ..tcp.events import ConnectionReset, TimedOut

if TYPE_CHECKING:
    from .host import Host

_SENDING = (State.ESTABLISHED, State.CLOSE_WAIT, State.SYN_SENT, State.SYN_RECEIVED)


class TcpStream(ByteStream):
    """``send``, ``receive``, ``send_eof``, ``aclose`` and ``abort`` on one connection.

    ``receive`` raises ``anyio.EndOfStream`` once the peer's FIN has been read up
    to, and ``anyio.BrokenResourceError`` after a reset or a timeout.
    """

    def __init__(self, host: Host, conn: Connection) -> None:
        self.host = host
        self.conn = conn

    @property
    def state(self) -> State:
        return self.conn.state

    def _broken(self) -> bool:
        return any(
            isinstance(e, ConnectionReset | TimedOut)
            for e in self.host.event_log.get(self.conn, ())
        )

    async def send(self, item: bytes) -> None:
        conn, host = self.conn, self.host
        view = memoryview(item)
        while view:
            if conn.state not in _SENDING or conn.fin_queued:
                raise anyio.BrokenResourceError(f"cannot send in {conn.state}")
            n = conn.send(view)
            view = view[n:]
            host.touch(conn)
            if view:
                await host.wait_for(
                    conn, lambda c: c.send_buffer_free > 0 or c.state not in _SENDING
                )

    async def receive(self, max_bytes: int = 65536) -> bytes:
        conn, host = self.conn, self.host
        await host.wait_for(conn, lambda c: c.readable > 0 or c.at_eof or c.state is State.CLOSED)
        data = conn.read(max_bytes)
        if data:
            host.touch(conn)  # a window update may be due
            return data
        if self._broken():
            raise anyio.BrokenResourceError(f"connection {conn.state}: reset or timed out")
        raise anyio.EndOfStream

    async def receive_exactly(self, n: int) -> bytes:
        buf = bytearray()
        while len(buf) < n:
            buf += await self.receive(n - len(buf))
        return bytes(buf)

    async def send_eof(self) -> None:
        self.conn.shutdown()
        self.host.touch(self.conn)

    async def aclose(self) -> None:
        if self.conn.state is not State.CLOSED:
            self.conn.close()
            self.host.touch(self.conn)

    def abort(self) -> None:
        self.conn.abort()
        self.host.touch(self.conn)

    async def wait_state(self, state: State, timeout: float | None = None) -> None:
        await self.host.wait_for(self.conn, lambda c: c.state is state, timeout)


class TcpListener:
    def __init__(self, host: Host, port: int) -> None:
        self.host = host
        self.port = port

    async def accept(self, timeout: float | None = None) -> TcpStream:
        conn = await self.host.accept_connection(self.port, timeout)
        return TcpStream(self.host, conn)

    async def aclose(self) -> None:
        self.host.unlisten(self.port)
