"""Links without root: two endpoints joined by an AF_UNIX SOCK_SEQPACKET pair.

Same interface as netemu.link.RawLink (fileno, recv_batch, send, send_batch,
close), so two emulated hosts can talk to each other in one asyncio loop in
tests that have no namespaces.
"""

from __future__ import annotations

import socket


class SocketPairLink:
    def __init__(self, sock: socket.socket) -> None:
        self._sock = sock
        sock.setblocking(False)
        self.sent = 0
        self.received = 0

    def fileno(self) -> int:
        return self._sock.fileno()

    def recv_batch(self, max_frames: int = 256) -> list[tuple[bytes, bool]]:
        out: list[tuple[bytes, bool]] = []
        recv = self._sock.recv
        try:
            while len(out) < max_frames:
                out.append((recv(65536), False))
        except (BlockingIOError, InterruptedError):
            pass
        self.received += len(out)
        return out

    def send(self, frame: bytes) -> None:
        try:
            self._sock.send(frame)
            self.sent += 1
        except (BlockingIOError, InterruptedError):
            pass  # a full queue drops the frame, as a wire would

    def send_batch(self, frames: list[bytes]) -> int:
        """Send in order; returns how many went (the rest: the queue was full)."""
        before = self.sent
        for i, f in enumerate(frames):
            self.send(f)
            if self.sent == before + i:
                return i
        return len(frames)

    def close(self) -> None:
        self._sock.close()


def socketpair_links() -> tuple[SocketPairLink, SocketPairLink]:
    a, b = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
    for s in (a, b):
        s.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 4 << 20)
        s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4 << 20)
    return SocketPairLink(a), SocketPairLink(b)
