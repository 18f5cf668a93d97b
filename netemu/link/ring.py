"""The link's mapped rings (TPACKET_V2): ``_RxRing``, the receive ring of its socket,
and ``_TxRing``, a second socket with a transmit ring. ``RawLink`` (``raw``) opens
and uses them; see its module's docstring for what they save."""

from __future__ import annotations

import contextlib
import mmap
import os
import socket
import struct
from collections.abc import Callable, Sequence

from .if_packet import (
    PACKET_COPY_THRESH,
    PACKET_LOSS,
    PACKET_OUTGOING,
    PACKET_RX_RING,
    PACKET_TX_RING,
    PACKET_VERSION,
    SOL_PACKET,
    TP_STATUS_AVAILABLE,
    TP_STATUS_COPY,
    TP_STATUS_CSUMNOTREADY,
    TP_STATUS_SEND_REQUEST,
    TP_STATUS_USER,
    TPACKET_V2,
)

# --- PACKET_RX_RING (TPACKET_V2): frames read from shared memory, no system call ----------

_RX_FRAME = 2048  # slot: tpacket2_hdr, sockaddr_ll, the frame at tp_mac (66): MTU 1500 fits
_RX_HDR = struct.Struct("=IIIH")  # tp_status, tp_len, tp_snaplen, tp_mac
_RX_PKTTYPE = 42  # TPACKET_ALIGN(sizeof(tpacket2_hdr)) + offsetof(sockaddr_ll, sll_pkttype)
_ZERO4 = bytes(4)
# The kernel fills a slot, then sets its status: reading the status and then the frame
# needs loads kept in order, which x86 guarantees (Python has no barrier to offer).
# (os.uname: what platform.machine() reads on Linux, without importing platform, ~1.5 ms
# of every run's start.)
RX_RING_OK = os.uname().machine == "x86_64" and struct.calcsize("P") == 8


def _ring_req(slot: int, frames: int) -> tuple[int, bytes]:
    """(size, struct tpacket_req) for ``frames`` slots of ``slot`` bytes in 64 KiB blocks."""
    block = 1 << 16
    per_block = block // slot
    blocks = max(-(-frames // per_block), 1)
    return block * blocks, struct.pack("=IIII", block, blocks, slot, blocks * per_block)


class _RxRing:
    """The receive ring of the link's socket (TPACKET_V2: one slot per frame, handed to
    us as soon as it is written; TPACKET_V3's blocks would hold a lone frame back until
    their timeout). A frame too long for a slot (a GSO frame when the peer offloads) is
    also queued whole on the socket (``PACKET_COPY_THRESH``; the slot says
    ``TP_STATUS_COPY``) and read from there, in order. The socket is readable while a
    slot waits for us."""

    def __init__(self, sock: socket.socket, frames: int) -> None:
        size, _ = _ring_req(_RX_FRAME, frames)
        self.map = mmap.mmap(sock.fileno(), size, mmap.MAP_SHARED, mmap.PROT_READ | mmap.PROT_WRITE)
        self.n = size // _RX_FRAME
        self.head = 0

    @staticmethod
    def setup(sock: socket.socket, frames: int) -> None:
        sock.setsockopt(SOL_PACKET, PACKET_VERSION, TPACKET_V2)
        sock.setsockopt(SOL_PACKET, PACKET_COPY_THRESH, 1)
        sock.setsockopt(SOL_PACKET, PACKET_RX_RING, _ring_req(_RX_FRAME, frames)[1])

    def recv(
        self, max_frames: int, copied: Callable[[], list[tuple[bytes, bool]]]
    ) -> list[tuple[bytes, bool]]:
        """Up to ``max_frames`` frames, as ``(frame, csum_not_ready)``; ``copied()``
        reads the socket's queue (a list of such pairs) for a ``TP_STATUS_COPY`` slot."""
        out: list[tuple[bytes, bool]] = []
        m, head, n = self.map, self.head, self.n
        unpack = _RX_HDR.unpack_from
        append = out.append
        for _ in range(max_frames):
            off = head * _RX_FRAME
            status, _len, snap, mac = unpack(m, off)
            if not status & TP_STATUS_USER:
                break
            if m[off + _RX_PKTTYPE] != PACKET_OUTGOING:
                if status & TP_STATUS_COPY:  # the whole frame is on the socket's queue
                    whole = copied()
                    data = whole[0][0] if whole else m[off + mac : off + mac + snap]
                else:
                    data = m[off + mac : off + mac + snap]
                append((data, (status & TP_STATUS_CSUMNOTREADY) != 0))
            m[off : off + 4] = _ZERO4  # TP_STATUS_KERNEL: the slot is the kernel's again
            head = head + 1 if head + 1 < n else 0
        self.head = head
        return out

    def close(self) -> None:
        with contextlib.suppress(BufferError, ValueError):
            self.map.close()


# --- PACKET_TX_RING (TPACKET_V2): many frames, one system call -----------------------------

_TX_FRAME = 2048  # ring slot: the 32-byte tpacket2_hdr, then the frame (MTU 1500 fits)
_TX_DATA = 32  # TPACKET2_HDRLEN - sizeof(struct sockaddr_ll): where the kernel reads the frame
_TX_LENS = struct.Struct("=II")  # tp_len, tp_snaplen (after the 4-byte tp_status)


class _TxRing:
    """A second AF_PACKET socket, bound to the same interface with protocol 0 (it receives
    nothing), with a TPACKET_V2 transmit ring: frames are copied into shared slots and
    one ``send()`` hands them all to the kernel, which builds and transmits one skb per
    slot exactly as it does for a plain ``send()`` (same checks, same path through the
    device). Slots go back to us when the kernel frees the skb (on a veth, as the peer
    namespace receives it; the kernel copies the slot's pages first, since they are
    marked zero-copy, so a slot is never reused under a queued skb).

    Frames longer than ``max_len`` (the interface MTU + 14) are not for the ring: the
    caller sends those the plain way, where the kernel's error (EMSGSIZE) reaches it.
    """

    def __init__(self, sock: socket.socket, max_len: int, frames: int = 512) -> None:
        self.sock = sock
        size, _ = _ring_req(_TX_FRAME, frames)
        self.n = size // _TX_FRAME
        self.max_len = min(max_len, _TX_FRAME - _TX_DATA)
        self.map = mmap.mmap(sock.fileno(), size, mmap.MAP_SHARED, mmap.PROT_READ | mmap.PROT_WRITE)
        self.head = 0  # the next slot to fill (the kernel's own head trails or equals it)
        self.queued: list[int] = []  # slots filled since the last flush
        self.send = sock.send

    @staticmethod
    def setup(sock: socket.socket, frames: int = 512) -> None:
        """Socket options (before bind): TPACKET_V2, drop-don't-stall, the ring itself."""
        sock.setsockopt(SOL_PACKET, PACKET_VERSION, TPACKET_V2)
        # A slot the kernel rejects is skipped, not left to block the ring (we only put
        # frames the kernel takes: 14 bytes to MTU + 14).
        sock.setsockopt(SOL_PACKET, PACKET_LOSS, 1)
        sock.setsockopt(SOL_PACKET, PACKET_TX_RING, _ring_req(_TX_FRAME, frames)[1])

    def put(self, frames: Sequence[bytes], start: int, min_len: int, max_len: int) -> int:
        """Copy ``frames[start:]`` into the next slots, stopping at a slot that is still
        the kernel's or at a frame that is not for the ring (shorter than ``min_len`` or
        longer than ``max_len``); returns the index it stopped at."""
        m, head, n, queued = self.map, self.head, self.n, self.queued
        pack, append = _TX_LENS.pack_into, queued.append
        i = start
        for i in range(start, len(frames)):
            f = frames[i]
            size = len(f)
            off = head * _TX_FRAME
            # tp_status's low byte: SEND_REQUEST, SENDING or WRONG_FORMAT: not ours yet.
            if m[off] or not min_len <= size <= max_len:
                self.head = head
                return i
            m[off + _TX_DATA : off + _TX_DATA + size] = f
            pack(m, off + 4, size, size)  # tp_len, tp_snaplen
            m[off] = TP_STATUS_SEND_REQUEST  # last: the slot is the kernel's from here on
            append(off)
            head = head + 1 if head + 1 < n else 0
        self.head = head
        return len(frames)

    def flush(self) -> int:
        """Hand the queued slots to the kernel; returns how many it took. Those it did
        not take (its socket buffer full) are withdrawn: the ring is back where the
        kernel stopped, and the caller resends them later."""
        queued = self.queued
        if not queued:
            return 0
        self.queued = []
        with contextlib.suppress(BlockingIOError, InterruptedError):
            self.send(b"", socket.MSG_DONTWAIT)
        m = self.map
        if m[queued[-1]] != TP_STATUS_SEND_REQUEST:  # the kernel goes in order: all taken
            return len(queued)
        for i, off in enumerate(queued):
            if m[off] == TP_STATUS_SEND_REQUEST:  # the kernel stopped here
                for rest in queued[i:]:
                    m[rest] = TP_STATUS_AVAILABLE
                self.head = off // _TX_FRAME
                return i
        return len(queued)  # not reached

    def close(self) -> None:
        with contextlib.suppress(BufferError, ValueError):
            self.map.close()
        self.sock.close()
