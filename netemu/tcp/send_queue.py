"""The send queue of one connection: the user's bytes not yet acknowledged,
sent or not (RFC 9293 §3.3.1, Figure 3: the data from SND.UNA on).

``seq`` is the sequence number of the first byte held; the sequence variables
(SND.UNA, SND.NXT, SND.MAX) are the connection's, and ask the queue for bytes
by sequence number.

Layer rule: imports only netemu.wire.
"""

from __future__ import annotations

from ..wire.seq import MASK, seq_diff


class SendQueue:
    """Bytes from ``seq`` on, at ``_buf[_head:]``: acknowledged bytes only move
    the head (a bytearray that is cut at the front copies itself whole on its
    next append), and are dropped in bulk."""

    __slots__ = ("_buf", "_head", "limit", "seq")

    def __init__(self, limit: int) -> None:
        self.limit = limit  # the send buffer's size (TcpConfig.snd_buf)
        self._buf = bytearray()
        self._head = 0
        self.seq = 0  # the sequence number of the first byte held

    def __len__(self) -> int:
        return len(self._buf) - self._head

    def push(self, data: bytes) -> int:
        """Append what fits of ``data``; returns how many bytes were taken."""
        room = self.limit - (len(self._buf) - self._head)
        if room >= len(data):
            self._buf += data  # no slice: one copy, into the buffer
            return len(data)
        if room <= 0:
            return 0
        self._buf += memoryview(data)[:room]
        return room

    def held(self) -> bytes:
        """All bytes held (a copy)."""
        return bytes(memoryview(self._buf)[self._head:])

    def after(self, seq: int) -> int:
        """How many bytes are held at and after sequence number ``seq``."""
        return len(self._buf) - self._head - seq_diff(seq, self.seq)

    def end(self) -> int:
        """The sequence number just past the last byte held (where a FIN goes)."""
        return (self.seq + len(self._buf) - self._head) & MASK

    def take(self, seq: int, n: int) -> tuple[bytes, bool] | None:
        """Up to ``n`` bytes from ``seq`` (a copy), and whether they reach the
        end of the queue; None if ``seq`` lies before the queue."""
        off = (seq - self.seq) & MASK  # seq_diff, inlined
        if off >= 0x80000000:
            return None
        buf = self._buf
        start = self._head + off
        payload = bytes(memoryview(buf)[start:start + n])  # one copy, not two
        return payload, start + len(payload) == len(buf)

    def acknowledge(self, ack: int) -> int:
        """Everything before ``ack`` is acknowledged: drop those bytes; returns
        how many (the SYN and FIN take no byte here)."""
        head = self._head
        buf = self._buf
        acked = min(max(seq_diff(ack, self.seq), 0), len(buf) - head)
        if acked:
            head += acked
            if head >= 65536 and 2 * head >= len(buf):
                self._buf = buf[head:]  # drop the acknowledged half at once
                head = 0
            self._head = head
            self.seq = (self.seq + acked) & MASK
        return acked
