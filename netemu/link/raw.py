"""``RawLink``: the emulator's wire, an AF_PACKET socket on its veth, inside its namespace.

Opened on the emulator namespace's thread (a packet socket belongs to the namespace
it was created in, and resolves interface indexes there), with protocol 0 (so it
receives nothing), then given its BPF filter, then bound by ifindex to ETH_P_ALL:
no unfiltered frame can slip in between.

The filter passes ARP whose target is our IP, broadcast ARP (gratuitous ARP, so
the host can track the peer's MAC) and IPv4 whose destination is our IP; nothing
else reaches Python. Our own sends are not looped back (PACKET_IGNORE_OUTGOING,
and ``PACKET_OUTGOING`` frames are skipped if the kernel lacks it).

Each received frame comes with ``csum_not_ready``: ``PACKET_AUXDATA``'s
``tp_status & TP_STATUS_CSUMNOTREADY``, i.e. the sender left its checksum to an
offload that never ran (the lab turns tx offload off on the peer, so on a lab
veth this is always False). The caller parses such frames with ``verify=False``.

Receiving reads a ``PACKET_RX_RING`` (TPACKET_V2, 4096 slots of 2 KiB) mapped
into our memory: no system call per frame or per batch, ~1.3 µs of CPU per frame
here against ~2.6 µs with ``recvmmsg`` (x86-64 only: reading a slot's status and
then its frame relies on x86's load ordering). A frame longer than a slot (a GSO
frame from a peer with offload on, a jumbo frame) is also queued whole on the socket
(``PACKET_COPY_THRESH``) and read from there with ``recvmmsg``, which is the whole
receive path where there is no ring: ctypes, preallocated buffers, one system call
per batch, no per-frame interface-name lookup (CPython's ``recvmsg`` does an
``SIOCGIFNAME`` ioctl per AF_PACKET frame; ~310k frames/s against ~165k).

Sending writes a ``PACKET_TX_RING`` on a second socket (bound with protocol 0, so it
receives nothing): a batch is copied into the ring's slots and one ``send()`` hands
it to the kernel, which transmits each slot as it would a plain ``send()``. A
frame longer than the MTU + 14 (or than a slot) goes by plain ``send()`` on the
receiving socket, in order, so that the kernel's error reaches the caller. On the
bench (netemu → kernel over the lab's veth) the two rings took the emulator's
system time from 5 to 6 µs to ~3 µs per data frame.
"""

from __future__ import annotations

import contextlib
import ctypes
import errno
import fcntl
import mmap
import os
import platform
import socket
import struct
import time
from collections.abc import Callable, Sequence
from typing import Protocol, TypeVar

from ..linux import libc, run_in_netns

_T = TypeVar("_T")


class NamespaceThread(Protocol):
    """A thread parked in a network namespace that runs callables there (lab's
    ``NsThread``)."""

    def call(self, fn: Callable[[], _T], /) -> _T: ...


ETH_P_ALL = 0x0003
ETH_P_ARP = 0x0806
ETH_P_IP = 0x0800
SOL_PACKET = 263
PACKET_AUXDATA = 8
PACKET_STATISTICS = 6
PACKET_IGNORE_OUTGOING = 23
PACKET_OUTGOING = 4
PACKET_RX_RING = 5
PACKET_COPY_THRESH = 7
PACKET_TX_RING = 13
PACKET_LOSS = 14
PACKET_VERSION = 10
TPACKET_V2 = 1
TP_STATUS_KERNEL = 0
TP_STATUS_USER = 0x1
TP_STATUS_COPY = 0x2
TP_STATUS_AVAILABLE = 0
TP_STATUS_SEND_REQUEST = 1
SIOCGIFMTU = 0x8921
SO_ATTACH_FILTER = 26
SO_RCVBUFFORCE = 33
SO_SNDBUFFORCE = 32
TP_STATUS_CSUMNOTREADY = 0x8
AUXDATA = struct.Struct("=IIIHHHH")  # tp_status, tp_len, tp_snaplen, tp_mac, tp_net, vlan...
_ANC_SIZE = socket.CMSG_SPACE(AUXDATA.size)
SO_TIMESTAMPNS = 35  # SCM_TIMESTAMPNS: struct timespec, CLOCK_REALTIME
_TIMESPEC = struct.Struct("=qq")
_ANC_SIZE_TS = _ANC_SIZE + socket.CMSG_SPACE(_TIMESPEC.size)

# classic BPF
BPF_LD_H_ABS = 0x28
BPF_LD_W_ABS = 0x20
BPF_JEQ_K = 0x15
BPF_RET_K = 0x06
SNAPLEN = 262144


def bpf_program(ip: str | None) -> list[tuple[int, int, int, int]]:
    """(code, jt, jf, k) instructions: ARP for ``ip`` or to broadcast, IPv4 to ``ip``.
    ``ip=None``: all ARP and all IPv4."""
    accept = (BPF_RET_K, 0, 0, SNAPLEN)
    drop = (BPF_RET_K, 0, 0, 0)
    if ip is None:
        return [
            (BPF_LD_H_ABS, 0, 0, 12),
            (BPF_JEQ_K, 1, 0, ETH_P_ARP),
            (BPF_JEQ_K, 0, 1, ETH_P_IP),
            accept,
            drop,
        ]
    k = struct.unpack("!I", socket.inet_aton(ip))[0]
    return [
        (BPF_LD_H_ABS, 0, 0, 12),  # 0: EtherType
        (BPF_JEQ_K, 0, 6, ETH_P_ARP),  # 1: ARP? else -> 8
        (BPF_LD_W_ABS, 0, 0, 38),  # 2: ARP target protocol address
        (BPF_JEQ_K, 8, 0, k),  # 3: ours -> accept (12)
        (BPF_LD_W_ABS, 0, 0, 0),  # 4: destination MAC, first 4 bytes
        (BPF_JEQ_K, 0, 7, 0xFFFFFFFF),  # 5: else drop (13)
        (BPF_LD_H_ABS, 0, 0, 4),  # 6: destination MAC, last 2 bytes
        (BPF_JEQ_K, 4, 5, 0xFFFF),  # 7: broadcast -> accept (12), else drop (13)
        (BPF_JEQ_K, 0, 4, ETH_P_IP),  # 8: IPv4? else drop (13)
        (BPF_LD_W_ABS, 0, 0, 30),  # 9: IPv4 destination
        (BPF_JEQ_K, 0, 2, k),  # 10: ours -> 11, else drop (13)
        (BPF_RET_K, 0, 0, SNAPLEN),  # 11
        accept,  # 12
        drop,  # 13
    ]


def _attach_filter(sock: socket.socket, program: list[tuple[int, int, int, int]]) -> None:
    raw = b"".join(struct.pack("=HBBI", *ins) for ins in program)
    buf = ctypes.create_string_buffer(raw, len(raw))
    fprog = struct.pack("@HP", len(program), ctypes.addressof(buf))  # struct sock_fprog
    sock.setsockopt(socket.SOL_SOCKET, SO_ATTACH_FILTER, fprog)


# --- recvmmsg, via ctypes (x86-64 / aarch64 layouts: 64-bit pointers) ---------------------

_MMSG = 64  # sizeof(struct mmsghdr): msghdr (56) + msg_len (4) + padding
_NAME_SLOT = 32  # >= sizeof(struct sockaddr_ll) (20)
_CTL_SLOT = 64  # >= CMSG_SPACE(sizeof(struct tpacket_auxdata)) (40)
_MSGHDR = struct.Struct("=QI4xQQQQi4xI4x")
_U32 = struct.Struct("=I")
_CMSG_AUX = struct.Struct("=QiiI")  # cmsg_len, cmsg_level, cmsg_type, tp_status


def _address(buf: bytearray) -> int:
    return ctypes.addressof(ctypes.c_char.from_buffer(buf))  # also pins buf's size


class _RecvMMsg:
    """``n`` receive slots of ``slot`` bytes, with their sockaddr_ll and control buffers."""

    def __init__(self, fd: int, n: int, slot: int) -> None:
        self.fd, self.n, self.slot = fd, n, slot
        self.rx = bytearray(n * slot)
        self.rxv = memoryview(self.rx)
        self.ctl = bytearray(n * _CTL_SLOT)
        self.names = bytearray(n * _NAME_SLOT)
        self.iov = bytearray(n * 16)
        self.msgs = bytearray(n * _MMSG)
        rx, ctl, names, iov = (_address(b) for b in (self.rx, self.ctl, self.names, self.iov))
        for i in range(n):
            struct.pack_into("=QQ", self.iov, i * 16, rx + i * slot, slot)
            _MSGHDR.pack_into(
                self.msgs,
                i * _MMSG,
                names + i * _NAME_SLOT,
                _NAME_SLOT,
                iov + i * 16,
                1,
                ctl + i * _CTL_SLOT,
                _CTL_SLOT,
                0,
                0,
            )
        self.pristine = bytes(self.msgs)  # the kernel rewrites namelen/controllen: reset
        self.addr = _address(self.msgs)
        fn = libc().recvmmsg
        fn.argtypes = [ctypes.c_int, ctypes.c_void_p, ctypes.c_uint, ctypes.c_int, ctypes.c_void_p]
        fn.restype = ctypes.c_int
        self.fn = fn

    def recv(self, max_frames: int) -> tuple[list[tuple[bytes, bool]], bool]:
        """(frames, more): ``more`` when every slot asked for was filled."""
        k = min(max_frames, self.n)
        self.msgs[: k * _MMSG] = self.pristine[: k * _MMSG]
        r = self.fn(self.fd, self.addr, k, socket.MSG_DONTWAIT, None)
        if r <= 0:
            e = ctypes.get_errno()
            if r == 0 or e in (errno.EAGAIN, errno.EINTR):
                return [], False
            raise OSError(e, f"recvmmsg: {os.strerror(e)}")
        out = []
        msgs, names, ctl, rxv, slot = self.msgs, self.names, self.ctl, self.rxv, self.slot
        u32, aux = _U32.unpack_from, _CMSG_AUX.unpack_from
        for i in range(r):
            if names[i * _NAME_SLOT + 10] == PACKET_OUTGOING:  # sll_pkttype
                continue
            (length,) = u32(msgs, i * _MMSG + 56)
            _, level, kind, status = aux(ctl, i * _CTL_SLOT)
            start = i * slot
            out.append(
                (
                    bytes(rxv[start : start + min(length, slot)]),
                    level == SOL_PACKET
                    and kind == PACKET_AUXDATA
                    and bool(status & TP_STATUS_CSUMNOTREADY),
                )
            )
        return out, r == k


# --- sendmmsg, via ctypes: short frames ------------------------------------------------------

_SHORT_FRAME = 256  # frames up to this long go by sendmmsg rather than the transmit ring
_IOV_LEN = struct.Struct("=Q")


class _SendMMsg:
    """Short frames (pure ACKs, SYNs, RSTs) copied into ``n`` slots of ``slot`` bytes and
    sent by one ``sendmmsg`` on the link's socket. The transmit ring hands the kernel a
    frame's bytes past the first 14 as a reference to the ring's page, which the frame's
    crossing into the peer's namespace turns into a page allocated and copied, and which
    IPv4 then pulls back into the header: for a 66-byte ACK that is dearer than a copy
    into a plain buffer (a bulk receive, which sends an ACK for every second segment,
    took ~0.4 µs more per segment through the ring here)."""

    def __init__(self, fd: int, n: int = 64, slot: int = _SHORT_FRAME) -> None:
        self.fd, self.n, self.slot = fd, n, slot
        self.buf = bytearray(n * slot)
        self.iov = bytearray(n * 16)
        self.msgs = bytearray(n * _MMSG)
        buf, iov = _address(self.buf), _address(self.iov)
        for i in range(n):
            struct.pack_into("=QQ", self.iov, i * 16, buf + i * slot, 0)
            _MSGHDR.pack_into(self.msgs, i * _MMSG, 0, 0, iov + i * 16, 1, 0, 0, 0, 0)
        self.addr = _address(self.msgs)
        fn = libc().sendmmsg
        fn.argtypes = [ctypes.c_int, ctypes.c_void_p, ctypes.c_uint, ctypes.c_int]
        fn.restype = ctypes.c_int
        self.fn = fn

    def send(self, frames: Sequence[bytes], start: int, end: int) -> int:
        """Send ``frames[start:end]`` (none longer than a slot) in order; returns how many
        the kernel took (fewer when its buffer is full). The kernel's error for a frame
        it refuses (EMSGSIZE, EINVAL) is raised."""
        buf, iov, slot, pack = self.buf, self.iov, self.slot, _IOV_LEN.pack_into
        sent = 0
        while start < end:
            k = min(end - start, self.n)
            for i in range(k):
                f = frames[start + i]
                size = len(f)
                buf[i * slot : i * slot + size] = f
                pack(iov, i * 16 + 8, size)
            r = self.fn(self.fd, self.addr, k, socket.MSG_DONTWAIT)
            if r < 0:
                e = ctypes.get_errno()
                if e in (errno.EAGAIN, errno.EINTR):
                    return sent
                raise OSError(e, f"sendmmsg: {os.strerror(e)}")
            # Fewer than k: the next frame failed; the next call reports why (or EAGAIN).
            sent += r
            start += r
        return sent


# --- PACKET_RX_RING (TPACKET_V2): frames read from shared memory, no system call ----------

_RX_FRAME = 2048  # slot: tpacket2_hdr, sockaddr_ll, the frame at tp_mac (66): MTU 1500 fits
_RX_HDR = struct.Struct("=IIIH")  # tp_status, tp_len, tp_snaplen, tp_mac
_RX_PKTTYPE = 42  # TPACKET_ALIGN(sizeof(tpacket2_hdr)) + offsetof(sockaddr_ll, sll_pkttype)
_ZERO4 = bytes(4)
# The kernel fills a slot, then sets its status: reading the status and then the frame
# needs loads kept in order, which x86 guarantees (Python has no barrier to offer).
RX_RING_OK = platform.machine() in ("x86_64", "AMD64") and struct.calcsize("P") == 8


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


class RawLink:
    """A non-blocking AF_PACKET socket on one interface of one namespace."""

    def __init__(
        self,
        sock: socket.socket,
        ifindex: int,
        ip: str | None,
        bufsize: int = 65536 + 64,
        batch: int = 64,
        tx_ring: _TxRing | None = None,
        rx_ring: int = 0,
    ) -> None:
        # The ports a Host on this link hands out (set by a lab: its slot's block).
        self.ephemeral: range | None = None
        self._sock = sock
        self.ifindex = ifindex
        self.ip = ip
        self.bufsize = bufsize  # a frame longer than this is truncated (GSO max: 64 KiB)
        # With a receive ring, recvmmsg only fetches the odd frame too long for a slot.
        self._rmm = (
            _RecvMMsg(sock.fileno(), 1 if rx_ring else batch, bufsize)
            if struct.calcsize("P") == 8
            else None
        )
        self._tx = tx_ring
        # With a transmit ring, short frames go by sendmmsg on this socket (it has no ring).
        self._smm = _SendMMsg(sock.fileno()) if tx_ring is not None else None
        self._rx = _RxRing(sock, rx_ring) if rx_ring else None
        self.rx_frames = 0
        self.tx_frames = 0
        self.rx_stamps: dict[int, float] | None = None  # enable_rx_timestamps()

    @classmethod
    def open(
        cls,
        netns: NamespaceThread | int,
        ifindex: int,
        ip: str | None,
        *,
        filtered: bool = True,
        rcvbuf: int = 8 << 20,
        sndbuf: int = 4 << 20,
        batch: int = 64,
        bufsize: int = 65536 + 64,
        tx_ring: int = 512,
        rx_ring: int = 4096,
    ) -> RawLink:
        """Open on ``ifindex`` inside ``netns``: an ``NsThread`` (its ``call`` is used) or a
        namespace fd. ``ip``: our IPv4 address, for the filter (None: all ARP and IPv4).
        ``filtered=False``: no filter at all, every frame (a capture, a test).
        ``batch``: frames per ``recvmmsg``; ``bufsize``: the longest frame kept whole;
        ``tx_ring``: slots of the transmit ring (0: one ``send()`` per frame);
        ``rx_ring``: slots of the receive ring (2 KiB each; 0: ``recvmmsg`` only)."""
        rx_ring = rx_ring if RX_RING_OK else 0

        def make() -> socket.socket:
            s = socket.socket(socket.AF_PACKET, socket.SOCK_RAW | socket.SOCK_CLOEXEC, 0)
            try:
                if filtered:
                    _attach_filter(s, bpf_program(ip))
                s.setsockopt(SOL_PACKET, PACKET_AUXDATA, 1)
                # before Linux 4.20 this fails, and recv_batch skips them by pkttype
                with contextlib.suppress(OSError):
                    s.setsockopt(SOL_PACKET, PACKET_IGNORE_OUTGOING, 1)
                for opt, fallback, size in (
                    (SO_RCVBUFFORCE, socket.SO_RCVBUF, rcvbuf),
                    (SO_SNDBUFFORCE, socket.SO_SNDBUF, sndbuf),
                ):
                    try:
                        s.setsockopt(socket.SOL_SOCKET, opt, size)
                    except PermissionError:
                        s.setsockopt(socket.SOL_SOCKET, fallback, size)
                if rx_ring:
                    _RxRing.setup(s, rx_ring)
                _bind_ifindex(s, ifindex)
                s.setblocking(False)
            except BaseException:
                s.close()
                raise
            return s

        def make_tx() -> _TxRing | None:
            if not tx_ring or struct.calcsize("P") != 8:
                return None
            t = socket.socket(socket.AF_PACKET, socket.SOCK_RAW | socket.SOCK_CLOEXEC, 0)
            try:
                _TxRing.setup(t, tx_ring)
                try:
                    t.setsockopt(socket.SOL_SOCKET, SO_SNDBUFFORCE, sndbuf)
                except PermissionError:
                    t.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, sndbuf)
                _bind_ifindex(t, ifindex, 0)  # protocol 0: this socket receives nothing
                t.setblocking(False)
                return _TxRing(t, _ifmtu(t, ifindex) + 14, tx_ring)
            except OSError:  # no TX_RING here (or no mmap): plain sends
                t.close()
                return None

        def make_both() -> tuple[socket.socket, _TxRing | None]:
            s = make()
            try:
                return s, make_tx()
            except BaseException:
                s.close()
                raise

        if isinstance(netns, int):
            sock, ring = run_in_netns(netns, make_both)
        else:
            sock, ring = netns.call(make_both)
        try:
            return cls(
                sock, ifindex, ip, bufsize=bufsize, batch=batch, tx_ring=ring, rx_ring=rx_ring
            )
        except BaseException:
            sock.close()
            if ring is not None:
                ring.close()
            raise

    # -- the file descriptor --------------------------------------------------------------------
    def fileno(self) -> int:
        return self._sock.fileno()

    @property
    def closed(self) -> bool:
        return self._sock.fileno() < 0

    def close(self) -> None:
        if self._rx is not None:
            self._rx.close()
            self._rx = None
        self._sock.close()
        self._rmm = None
        if self._tx is not None:
            self._tx.close()
            self._tx = None

    def __enter__(self) -> RawLink:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- receiving ------------------------------------------------------------------------------
    def recv_batch(self, max_frames: int = 64) -> list[tuple[bytes, bool]]:
        """Frames waiting now (up to ``max_frames``), as ``(frame, csum_not_ready)``; an
        empty list when none (EAGAIN)."""
        rmm = self._rmm
        if self._rx is not None and rmm is not None:
            out = self._rx.recv(max_frames, lambda: rmm.recv(1)[0])
            self.rx_frames += len(out)
            return out
        if rmm is None:
            return self._recv_batch_msg(max_frames)
        out, more = rmm.recv(max_frames)
        while more and len(out) < max_frames:
            got, more = rmm.recv(max_frames - len(out))
            out += got
        self.rx_frames += len(out)
        return out

    def enable_rx_timestamps(self) -> None:
        """Note when the kernel received each frame (``SO_TIMESTAMPNS``), on the
        ``time.monotonic`` clock, in ``rx_stamps`` (``id(frame bytes)`` -> seconds; the
        reader pops them): a frame read late still has its true time. This takes the
        portable path (one ``recvmsg`` per frame): for links that carry a few frames
        whose times matter (a packetdrill script), not for bulk."""
        if self._rx is not None:
            raise ValueError("receive timestamps need a link without a receive ring")
        self._sock.setsockopt(socket.SOL_SOCKET, SO_TIMESTAMPNS, 1)
        self._rmm = None
        self._real_to_mono = time.time() - time.monotonic()
        self.rx_stamps = {}

    def _recv_batch_msg(self, max_frames: int) -> list[tuple[bytes, bool]]:
        """The portable path: one ``recvmsg`` per frame."""
        out: list[tuple[bytes, bool]] = []
        recvmsg = self._sock.recvmsg
        bufsize = self.bufsize
        stamps = self.rx_stamps
        while len(out) < max_frames:
            try:
                data, anc, _flags, addr = recvmsg(bufsize, _ANC_SIZE_TS)
            except (BlockingIOError, InterruptedError):
                break
            if addr[2] == PACKET_OUTGOING:
                continue
            not_ready = False
            for level, kind, cdata in anc:
                if level == SOL_PACKET and kind == PACKET_AUXDATA:
                    not_ready = bool(int.from_bytes(cdata[:4], "little") & TP_STATUS_CSUMNOTREADY)
                elif (
                    stamps is not None
                    and level == socket.SOL_SOCKET
                    and kind == SO_TIMESTAMPNS
                    and len(cdata) >= 16
                ):
                    sec, nsec = _TIMESPEC.unpack_from(cdata)
                    stamps[id(data)] = sec + nsec / 1e9 - self._real_to_mono
            out.append((data, not_ready))
        self.rx_frames += len(out)
        return out

    def stats(self) -> dict[str, int]:
        """Kernel counters since the last call: frames received, and dropped (queue full)."""
        packets, drops = struct.unpack(
            "=II", self._sock.getsockopt(SOL_PACKET, PACKET_STATISTICS, 8)
        )
        return {"packets": packets, "drops": drops}

    # -- sending ----------------------------------------------------------------------------------
    def send(self, frame: bytes) -> None:
        """Send one frame (raises ``BlockingIOError`` if the socket buffer is full)."""
        if self.send_batch((frame,)) == 0:
            raise BlockingIOError(errno.EAGAIN, "AF_PACKET send buffer full")

    def send_batch(self, frames: Sequence[bytes]) -> int:
        """Send frames in order; returns how many went (fewer only when the socket
        buffer filled up: retry the rest when writable). Through the transmit ring:
        the frames are copied into its slots and one system call sends them all (ctypes
        ``sendmmsg`` measured no faster than a ``send()`` loop here; the ring saves the
        per-frame system call and Python call). Without a ring: one ``send()`` each."""
        ring = self._tx
        if ring is None:
            return self._send_plain(frames)
        sent = self._send_ring(ring, frames)
        self.tx_frames += sent
        return sent

    def _send_ring(self, ring: _TxRing, frames: Sequence[bytes]) -> int:
        done = 0  # frames of this batch the kernel has taken
        i, n, max_len = 0, len(frames), ring.max_len
        smm = self._smm
        min_len = _SHORT_FRAME + 1 if smm is not None else 14
        while True:
            j = ring.put(frames, i, min_len, max_len)
            done += ring.flush()
            if j == n or done < j:
                return done
            f = frames[j]
            if min_len <= len(f) <= max_len:
                # Stopped at a slot still the kernel's: the flush may have freed it.
                if j == i:  # not one slot since the last flush: the ring is full
                    return done
                i = j
                continue
            if smm is not None and len(f) <= _SHORT_FRAME:
                # A run of short frames, after what was queued, in one sendmmsg.
                end = j + 1
                while end < n and len(frames[end]) <= _SHORT_FRAME:
                    end += 1
                k = smm.send(frames, j, end)
                done += k
                if k < end - j:
                    return done
                i = end
                continue
            # Not a frame for the ring: sent plainly (after what was queued), so that
            # the kernel's own error (EMSGSIZE, EINVAL) reaches the caller.
            try:
                self._sock.send(f)
            except BlockingIOError:
                return done
            done += 1
            i = j + 1

    def _send_plain(self, frames: Sequence[bytes]) -> int:
        send = self._sock.send
        for i, f in enumerate(frames):
            try:
                send(f)
            except BlockingIOError:
                self.tx_frames += i
                return i
        self.tx_frames += len(frames)
        return len(frames)


def _bind_ifindex(sock: socket.socket, ifindex: int, protocol: int = ETH_P_ALL) -> None:
    """bind() with a ``struct sockaddr_ll`` naming the interface by index."""
    sll = struct.pack("=HHiHBB8s", socket.AF_PACKET, socket.htons(protocol), ifindex, 0, 0, 0, b"")
    buf = ctypes.create_string_buffer(sll, len(sll))
    if libc().bind(sock.fileno(), buf, len(sll)) != 0:
        e = ctypes.get_errno()
        raise OSError(e, f"bind AF_PACKET to ifindex {ifindex}: {os.strerror(e)}")


def _ifmtu(sock: socket.socket, ifindex: int) -> int:
    """The MTU of ``ifindex`` (in the namespace ``sock`` was opened in)."""
    ifr = struct.pack("=16si20x", b"", ifindex)
    name = fcntl.ioctl(sock.fileno(), 0x8910, ifr)[:16]  # SIOCGIFNAME: index -> name
    out = fcntl.ioctl(sock.fileno(), SIOCGIFMTU, struct.pack("=16si20x", name, 0))
    return struct.unpack_from("=i", out, 16)[0]
