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

Receiving uses ``recvmmsg`` through ctypes into preallocated buffers: one system
call per batch, and no per-frame interface-name lookup (CPython's ``recvmsg``
does an ``SIOCGIFNAME`` ioctl per AF_PACKET frame to build the address). Measured
here: ~310k frames/s against ~165k with ``recvmsg``.
"""

from __future__ import annotations

import contextlib
import ctypes
import errno
import os
import socket
import struct
from collections.abc import Sequence
from typing import Any

ETH_P_ALL = 0x0003
ETH_P_ARP = 0x0806
ETH_P_IP = 0x0800
SOL_PACKET = 263
PACKET_AUXDATA = 8
PACKET_STATISTICS = 6
PACKET_IGNORE_OUTGOING = 23
PACKET_OUTGOING = 4
SO_ATTACH_FILTER = 26
SO_RCVBUFFORCE = 33
SO_SNDBUFFORCE = 32
TP_STATUS_CSUMNOTREADY = 0x8
TP_STATUS_CSUM_VALID = 0x80
AUXDATA = struct.Struct("=IIIHHHH")  # tp_status, tp_len, tp_snaplen, tp_mac, tp_net, vlan...
_ANC_SIZE = socket.CMSG_SPACE(AUXDATA.size)

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
        (BPF_LD_H_ABS, 0, 0, 12),       # 0: EtherType
        (BPF_JEQ_K, 0, 6, ETH_P_ARP),   # 1: ARP? else -> 8
        (BPF_LD_W_ABS, 0, 0, 38),       # 2: ARP target protocol address
        (BPF_JEQ_K, 8, 0, k),           # 3: ours -> accept (12)
        (BPF_LD_W_ABS, 0, 0, 0),        # 4: destination MAC, first 4 bytes
        (BPF_JEQ_K, 0, 7, 0xFFFFFFFF),  # 5: else drop (13)
        (BPF_LD_H_ABS, 0, 0, 4),        # 6: destination MAC, last 2 bytes
        (BPF_JEQ_K, 4, 5, 0xFFFF),      # 7: broadcast -> accept (12), else drop (13)
        (BPF_JEQ_K, 0, 4, ETH_P_IP),    # 8: IPv4? else drop (13)
        (BPF_LD_W_ABS, 0, 0, 30),       # 9: IPv4 destination
        (BPF_JEQ_K, 0, 2, k),           # 10: ours -> 11, else drop (13)
        (BPF_RET_K, 0, 0, SNAPLEN),     # 11
        accept,                          # 12
        drop,                            # 13
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
        from ..lab.netns import libc

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
            _MSGHDR.pack_into(self.msgs, i * _MMSG, names + i * _NAME_SLOT, _NAME_SLOT,
                              iov + i * 16, 1, ctl + i * _CTL_SLOT, _CTL_SLOT, 0, 0)
        self.pristine = bytes(self.msgs)  # the kernel rewrites namelen/controllen: reset
        self.addr = _address(self.msgs)
        fn = libc().recvmmsg
        fn.argtypes = [ctypes.c_int, ctypes.c_void_p, ctypes.c_uint, ctypes.c_int, ctypes.c_void_p]
        fn.restype = ctypes.c_int
        self.fn = fn

    def recv(self, max_frames: int) -> tuple[list[tuple[bytes, bool]], bool]:
        """(frames, more): ``more`` when every slot asked for was filled."""
        k = min(max_frames, self.n)
        self.msgs[:k * _MMSG] = self.pristine[:k * _MMSG]
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
            out.append((bytes(rxv[start:start + min(length, slot)]),
                        level == SOL_PACKET and kind == PACKET_AUXDATA
                        and bool(status & TP_STATUS_CSUMNOTREADY)))
        return out, r == k


class RawLink:
    """A non-blocking AF_PACKET socket on one interface of one namespace."""

    def __init__(self, sock: socket.socket, ifindex: int, ip: str | None,
                 bufsize: int = 65536 + 64, batch: int = 64) -> None:
        self._sock = sock
        self.ifindex = ifindex
        self.ip = ip
        self.bufsize = bufsize  # a frame longer than this is truncated (GSO max: 64 KiB)
        self._rmm = _RecvMMsg(sock.fileno(), batch, bufsize) if struct.calcsize("P") == 8 else None
        self.rx_frames = 0
        self.tx_frames = 0

    @classmethod
    def open(cls, netns: Any, ifindex: int, ip: str | None, *, filtered: bool = True,
             rcvbuf: int = 8 << 20, sndbuf: int = 4 << 20, batch: int = 64,
             bufsize: int = 65536 + 64) -> RawLink:
        """Open on ``ifindex`` inside ``netns``: an ``NsThread`` (its ``call`` is used) or a
        namespace fd. ``ip``: our IPv4 address, for the filter (None: all ARP and IPv4).
        ``filtered=False``: no filter at all, every frame (a capture, a test).
        ``batch``: frames per ``recvmmsg``; ``bufsize``: the longest frame kept whole."""

        def make() -> socket.socket:
            s = socket.socket(socket.AF_PACKET, socket.SOCK_RAW | socket.SOCK_CLOEXEC, 0)
            try:
                if filtered:
                    _attach_filter(s, bpf_program(ip))
                s.setsockopt(SOL_PACKET, PACKET_AUXDATA, 1)
                # before Linux 4.20 this fails, and recv_batch skips them by pkttype
                with contextlib.suppress(OSError):
                    s.setsockopt(SOL_PACKET, PACKET_IGNORE_OUTGOING, 1)
                for opt, fallback, size in ((SO_RCVBUFFORCE, socket.SO_RCVBUF, rcvbuf),
                                            (SO_SNDBUFFORCE, socket.SO_SNDBUF, sndbuf)):
                    try:
                        s.setsockopt(socket.SOL_SOCKET, opt, size)
                    except PermissionError:
                        s.setsockopt(socket.SOL_SOCKET, fallback, size)
                _bind_ifindex(s, ifindex)
                s.setblocking(False)
            except BaseException:
                s.close()
                raise
            return s

        if hasattr(netns, "call"):
            sock = netns.call(make)
        else:
            from ..lab.netns import run_in_netns

            sock = run_in_netns(int(netns), make)
        return cls(sock, ifindex, ip, bufsize=bufsize, batch=batch)

    # -- the file descriptor --------------------------------------------------------------------
    def fileno(self) -> int:
        return self._sock.fileno()

    @property
    def closed(self) -> bool:
        return self._sock.fileno() < 0

    def close(self) -> None:
        self._sock.close()
        self._rmm = None

    def __enter__(self) -> RawLink:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- receiving ------------------------------------------------------------------------------
    def recv_batch(self, max_frames: int = 64) -> list[tuple[bytes, bool]]:
        """Frames waiting now (up to ``max_frames``), as ``(frame, csum_not_ready)``; an
        empty list when none (EAGAIN)."""
        rmm = self._rmm
        if rmm is None:
            return self._recv_batch_msg(max_frames)
        out, more = rmm.recv(max_frames)
        while more and len(out) < max_frames:
            got, more = rmm.recv(max_frames - len(out))
            out += got
        self.rx_frames += len(out)
        return out

    def _recv_batch_msg(self, max_frames: int) -> list[tuple[bytes, bool]]:
        """The portable path: one ``recvmsg`` per frame."""
        out: list[tuple[bytes, bool]] = []
        recvmsg = self._sock.recvmsg
        bufsize = self.bufsize
        while len(out) < max_frames:
            try:
                data, anc, _flags, addr = recvmsg(bufsize, _ANC_SIZE)
            except (BlockingIOError, InterruptedError):
                break
            if addr[2] == PACKET_OUTGOING:
                continue
            not_ready = False
            for level, kind, cdata in anc:
                if level == SOL_PACKET and kind == PACKET_AUXDATA:
                    not_ready = bool(int.from_bytes(cdata[:4], "little")
                                     & TP_STATUS_CSUMNOTREADY)
            out.append((data, not_ready))
        self.rx_frames += len(out)
        return out

    def stats(self) -> dict[str, int]:
        """Kernel counters since the last call: frames received, and dropped (queue full)."""
        packets, drops = struct.unpack(
            "=II", self._sock.getsockopt(SOL_PACKET, PACKET_STATISTICS, 8))
        return {"packets": packets, "drops": drops}

    # -- sending ----------------------------------------------------------------------------------
    def send(self, frame: bytes) -> None:
        """Send one frame (raises ``BlockingIOError`` if the socket buffer is full)."""
        self._sock.send(frame)
        self.tx_frames += 1

    def send_batch(self, frames: Sequence[bytes]) -> int:
        """Send frames in order; returns how many went (fewer only when the socket
        buffer filled up: retry the rest when writable). A plain loop: ctypes
        ``sendmmsg`` measured no faster here (~310k frames/s either way; the veth
        delivery dominates)."""
        send = self._sock.send
        for i, f in enumerate(frames):
            try:
                send(f)
            except BlockingIOError:
                self.tx_frames += i
                return i
        self.tx_frames += len(frames)
        return len(frames)


def _bind_ifindex(sock: socket.socket, ifindex: int) -> None:
    """bind() with a ``struct sockaddr_ll`` naming the interface by index."""
    from ..lab.netns import libc

    sll = struct.pack("=HHiHBB8s", socket.AF_PACKET, socket.htons(ETH_P_ALL), ifindex, 0, 0, 0,
                      b"")
    buf = ctypes.create_string_buffer(sll, len(sll))
    if libc().bind(sock.fileno(), buf, len(sll)) != 0:
        e = ctypes.get_errno()
        raise OSError(e, f"bind AF_PACKET to ifindex {ifindex}: {os.strerror(e)}")
