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
    """Bytes from ``seq`` on, at ``buf[head:]``: acknowledged bytes only move
    the head (a bytearray that is cut at the front copies itself whole on its
    next append), and are dropped in bulk. The connection slices ``buf`` itself
    to form a data segment (no call per segment); only the queue changes it."""

    __slots__ = ("buf", "head", "limit", "seq")

    def __init__(self, limit: int) -> None:
        self.limit = limit  # the send buffer's size (TcpConfig.snd_buf)
        self.buf = bytearray()
        self.head = 0
        self.seq = 0  # the sequence number of the first byte held

    def __len__(self) -> int:
        return len(self.buf) - self.head

    def push(self, data: bytes | bytearray | memoryview) -> int:
        """Append what fits of ``data``; returns how many bytes were taken."""
        room = self.limit - (len(self.buf) - self.head)
        if room >= len(data):
            self.buf += data  # no slice: one copy, into the buffer
            return len(data)
        if room <= 0:
            return 0
        self.buf += memoryview(data)[:room]
        return room

    def held(self) -> bytes:
        """All bytes held (a copy)."""
        return bytes(memoryview(self.buf)[self.head :])

    def after(self, seq: int) -> int:
        """How many bytes are held at and after sequence number ``seq``."""
        return len(self.buf) - self.head - seq_diff(seq, self.seq)

    def end(self) -> int:
        """The sequence number just past the last byte held (where a FIN goes)."""
        return (self.seq + len(self.buf) - self.head) & MASK

    def acknowledge(self, ack: int) -> int:
        """Everything before ``ack`` is acknowledged: drop those bytes; returns
        how many (the SYN and FIN take no byte here)."""
        head = self.head
        buf = self.buf
        acked = (ack - self.seq) & MASK  # seq_diff, inlined
        if acked >= 0x80000000:
            return 0  # below the first byte held: none is covered
        if acked > len(buf) - head:
            acked = len(buf) - head  # (the FIN takes no byte here)
        if acked:
            head += acked
            if head >= 65536 and 2 * head >= len(buf):
                self.buf = buf[head:]  # drop the acknowledged half at once
                head = 0
            self.head = head
            self.seq = (self.seq + acked) & MASK
        return acked
