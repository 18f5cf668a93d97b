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
import os
import socket
import struct
import time
from collections.abc import Callable, Sequence
from typing import Protocol, TypeVar

from ..linux import libc, run_in_netns
from .if_packet import (
    ETH_P_ALL,
    ETH_P_ARP,
    ETH_P_IP,
    ETH_P_IPV6,
    PACKET_AUXDATA,
    PACKET_IGNORE_OUTGOING,
    PACKET_OUTGOING,
    PACKET_STATISTICS,
    SIOCGIFMTU,
    SO_ATTACH_FILTER,
    SO_RCVBUFFORCE,
    SO_SNDBUFFORCE,
    SOL_PACKET,
    TP_STATUS_CSUMNOTREADY,
)
from .ring import RX_RING_OK, _RxRing, _TxRing

_T = TypeVar("_T")


class NamespaceThread(Protocol):
    """A thread parked in a network namespace that runs callables there (lab's
    ``NsThread``)."""

    def call(self, fn: Callable[[], _T], /) -> _T: ...


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


def bpf_program(ip: str | None, ip6: str | None = None) -> list[tuple[int, int, int, int]]:
    """(code, jt, jf, k) instructions: ARP for ``ip`` or to broadcast, IPv4 to ``ip``,
    and, with ``ip6``, IPv6 to ``ip6`` or to its solicited-node multicast address
    (neighbour solicitations, RFC 4861). ``ip=None``: all ARP and all IPv4."""
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
    prog = [
        (BPF_LD_H_ABS, 0, 0, 12),  # 0: EtherType
        (BPF_JEQ_K, 0, 6, ETH_P_ARP),  # 1: ARP? else -> 8
        (BPF_LD_W_ABS, 0, 0, 38),  # 2: ARP target protocol address
        (BPF_JEQ_K, 8, 0, k),  # 3: ours -> accept (12)
        (BPF_LD_W_ABS, 0, 0, 0),  # 4: destination MAC, first 4 bytes
        (BPF_JEQ_K, 0, 7, 0xFFFFFFFF),  # 5: else drop (13)
        (BPF_LD_H_ABS, 0, 0, 4),  # 6: destination MAC, last 2 bytes
        (BPF_JEQ_K, 4, 5, 0xFFFF),  # 7: broadcast -> accept (12), else drop (13)
        (BPF_JEQ_K, 0, 4, ETH_P_IP),  # 8: IPv4? else drop (13), or IPv6 (14)
        (BPF_LD_W_ABS, 0, 0, 30),  # 9: IPv4 destination
        (BPF_JEQ_K, 0, 2, k),  # 10: ours -> 11, else drop (13)
        (BPF_RET_K, 0, 0, SNAPLEN),  # 11
        accept,  # 12
        drop,  # 13
    ]
    if ip6 is None:
        return prog
    w = struct.unpack("!4I", socket.inet_pton(socket.AF_INET6, ip6))
    # IPv6: its destination a word at a time, ours or our solicited-node group
    # ff02::1:ffXX:XXXX; anything else is dropped.
    v6: list[tuple[int, int | str, int | str, int]] = [
        (BPF_JEQ_K, 0, "drop", ETH_P_IPV6),  # "v6"
        (BPF_LD_W_ABS, 0, 0, 38),
        (BPF_JEQ_K, "u1", 0, w[0]),
        (BPF_JEQ_K, "m1", "drop", 0xFF020000),
        (BPF_LD_W_ABS, 0, 0, 42),  # "u1"
        (BPF_JEQ_K, 0, "drop", w[1]),
        (BPF_LD_W_ABS, 0, 0, 46),
        (BPF_JEQ_K, 0, "drop", w[2]),
        (BPF_LD_W_ABS, 0, 0, 50),
        (BPF_JEQ_K, "accept", "drop", w[3]),
        (BPF_LD_W_ABS, 0, 0, 42),  # "m1"
        (BPF_JEQ_K, 0, "drop", 0),
        (BPF_LD_W_ABS, 0, 0, 46),
        (BPF_JEQ_K, 0, "drop", 1),
        (BPF_LD_W_ABS, 0, 0, 50),
        (BPF_JEQ_K, "accept", "drop", 0xFF000000 | (w[3] & 0xFFFFFF)),
        accept,  # "accept"
        drop,  # "drop"
    ]
    base = len(prog)
    labels = {"u1": base + 4, "m1": base + 10, "accept": base + 16, "drop": base + 17}
    prog[8] = (BPF_JEQ_K, 0, base - 9, ETH_P_IP)  # 8: IPv4? else -> IPv6's first
    for i, (code, jt, jf, k) in enumerate(v6, base):
        prog.append(
            (
                code,
                labels[jt] - i - 1 if isinstance(jt, str) else jt,
                labels[jf] - i - 1 if isinstance(jf, str) else jf,
                k,
            )
        )
    return prog


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
        try:  # the interface's MTU (a host's IPv6 MSS is this less 60)
            self.mtu = _ifmtu(sock, ifindex)
        except OSError:
            self.mtu = 1500
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
        ip6: str | None = None,
        filtered: bool = True,
        rcvbuf: int = 8 << 20,
        sndbuf: int = 4 << 20,
        batch: int = 64,
        bufsize: int = 65536 + 64,
        tx_ring: int = 512,
        rx_ring: int = 4096,
    ) -> RawLink:
        """Open on ``ifindex`` inside ``netns``: an ``NsThread`` (its ``call`` is used) or a
        namespace fd. ``ip``: our IPv4 address, for the filter (None: all ARP and IPv4);
        ``ip6``: our IPv6 address, if any, for the filter too.
        ``filtered=False``: no filter at all, every frame (a capture, a test).
        ``batch``: frames per ``recvmmsg``; ``bufsize``: the longest frame kept whole;
        ``tx_ring``: slots of the transmit ring (0: one ``send()`` per frame);
        ``rx_ring``: slots of the receive ring (2 KiB each; 0: ``recvmmsg`` only)."""
        rx_ring = rx_ring if RX_RING_OK else 0

        def make_both() -> tuple[socket.socket, _TxRing | None]:
            s = _open_socket(ifindex, ip, filtered, rcvbuf, sndbuf, rx_ring, ip6)
            try:
                return s, _open_tx_ring(ifindex, sndbuf, tx_ring)
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


def _open_socket(
    ifindex: int,
    ip: str | None,
    filtered: bool,
    rcvbuf: int,
    sndbuf: int,
    rx_ring: int,
    ip6: str | None = None,
) -> socket.socket:
    """The link's socket, in the calling thread's namespace: its filter (unless not
    ``filtered``), options and receive ring (``rx_ring`` slots, if any), then bound to
    ``ifindex`` (see ``RawLink.open``)."""
    s = socket.socket(socket.AF_PACKET, socket.SOCK_RAW | socket.SOCK_CLOEXEC, 0)
    try:
        if filtered:
            _attach_filter(s, bpf_program(ip, ip6))
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


def _open_tx_ring(ifindex: int, sndbuf: int, tx_ring: int) -> _TxRing | None:
    """The link's transmit ring of ``tx_ring`` slots on a second socket, in the calling
    thread's namespace; None where there is none (0 slots, no 64-bit pointers, no
    TX_RING or mmap): the link then sends plainly."""
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
