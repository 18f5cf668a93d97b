"""Peer TCP state through sock_diag (what ``ss -tni`` shows), in a lab namespace.

A NETLINK_SOCK_DIAG socket reports on the namespace it was created in, so
``DiagProbe`` must be constructed on the namespace's thread; it can be used from
any thread after. Both families are queried: Go's ``net.Listen("tcp", ":8080")``
is a dual-stack ``[::]`` socket and its peers appear as ``::ffff:198.18.0.1``
(shown here as plain IPv4, with ``family == 6``).

Decoded with ``struct`` rather than pyroute2's ``DiagSocket``: importing pyroute2
costs ~240 ms (a stall a scenario would feel on its first probe), and 0.9.7
decodes ``tcpi_rcv_wscale`` wrongly. The tests check this decoder against
``DiagSocket`` (wscale fixed).
"""

from __future__ import annotations

import itertools
import os
import socket
import struct
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field

from ..sockopts import TCP_STATES

NETLINK_SOCK_DIAG = 4
SOCK_DIAG_BY_FAMILY = 20
SOCK_DESTROY = 21
NLM_F_ACK = 0x4
NLM_F_REQUEST = 0x1
NLM_F_DUMP = 0x300
NLMSG_ERROR = 2
NLMSG_DONE = 3
NLMSG_HDR = struct.Struct("=IHHII")
REQ_V2 = struct.Struct("=BBBxI")  # family, protocol, ext, pad, states
SOCKID_LEN = 48
DIAG_MSG = struct.Struct("=BBBB2s2s16s16sIQIIIII")  # 72 bytes
RTA = struct.Struct("=HH")

INET_DIAG_INFO = 2
INET_DIAG_CONG = 4
INET_DIAG_SHUTDOWN = 8
EXT_INFO = 1 << (INET_DIAG_INFO - 1)
EXT_CONG = 1 << (INET_DIAG_CONG - 1)
ALL_STATES = 0xFFFFFFFF

# struct tcp_info (linux/tcp.h): (name, struct code), in order; bytes 6 and 7 are bit
# fields decoded by hand. Newer kernels append fields: we decode what arrived.
_TCP_INFO_FIELDS = [
    ("state", "B"),
    ("ca_state", "B"),
    ("retransmits", "B"),
    ("probes", "B"),
    ("backoff", "B"),
    ("options", "B"),
    ("_wscale", "B"),
    ("_flags", "B"),
    ("rto", "I"),
    ("ato", "I"),
    ("snd_mss", "I"),
    ("rcv_mss", "I"),
    ("unacked", "I"),
    ("sacked", "I"),
    ("lost", "I"),
    ("retrans", "I"),
    ("fackets", "I"),
    ("last_data_sent", "I"),
    ("last_ack_sent", "I"),
    ("last_data_recv", "I"),
    ("last_ack_recv", "I"),
    ("pmtu", "I"),
    ("rcv_ssthresh", "I"),
    ("rtt", "I"),
    ("rttvar", "I"),
    ("snd_ssthresh", "I"),
    ("snd_cwnd", "I"),
    ("advmss", "I"),
    ("reordering", "I"),
    ("rcv_rtt", "I"),
    ("rcv_space", "I"),
    ("total_retrans", "I"),
    ("pacing_rate", "Q"),
    ("max_pacing_rate", "Q"),
    ("bytes_acked", "Q"),
    ("bytes_received", "Q"),
    ("segs_out", "I"),
    ("segs_in", "I"),
    ("notsent_bytes", "I"),
    ("min_rtt", "I"),
    ("data_segs_in", "I"),
    ("data_segs_out", "I"),
    ("delivery_rate", "Q"),
    ("busy_time", "Q"),
    ("rwnd_limited", "Q"),
    ("sndbuf_limited", "Q"),
    ("delivered", "I"),
    ("delivered_ce", "I"),
    ("bytes_sent", "Q"),
    ("bytes_retrans", "Q"),
    ("dsack_dups", "I"),
    ("reord_seen", "I"),
    ("rcv_ooopack", "I"),
    ("snd_wnd", "I"),
    ("rcv_wnd", "I"),
    ("rehash", "I"),
    ("total_rto", "H"),
    ("total_rto_recoveries", "H"),
    ("total_rto_time", "I"),
]
_TCP_INFO_LAYOUT: list[tuple[str, int, struct.Struct]] = []
_off = 0
for _name, _code in _TCP_INFO_FIELDS:
    _st = struct.Struct("=" + _code)
    _TCP_INFO_LAYOUT.append((_name, _off, _st))
    _off += _st.size
del _off, _name, _code, _st


def decode_tcp_info(raw: bytes) -> dict[str, int]:
    """The fields of ``struct tcp_info`` present in ``raw`` (as the kernel filled it)."""
    out: dict[str, int] = {}
    n = len(raw)
    for name, off, st in _TCP_INFO_LAYOUT:
        if off + st.size > n:
            break
        out[name] = st.unpack_from(raw, off)[0]
    if "_wscale" in out:
        w = out.pop("_wscale")
        out["snd_wscale"] = w & 0xF  # __u8 tcpi_snd_wscale : 4, tcpi_rcv_wscale : 4;
        out["rcv_wscale"] = w >> 4
    if "_flags" in out:
        f = out.pop("_flags")
        out["delivery_rate_app_limited"] = f & 1
        out["fastopen_client_fail"] = (f >> 1) & 3
    return out


def _ip(family: int, raw: bytes) -> str:
    if family == socket.AF_INET:
        return socket.inet_ntop(socket.AF_INET, raw[:4])
    if raw[:12] == b"\0" * 10 + b"\xff\xff":  # ::ffff:a.b.c.d
        return socket.inet_ntop(socket.AF_INET, raw[12:16])
    return socket.inet_ntop(socket.AF_INET6, raw)


@dataclass(frozen=True)
class SockState:
    """One TCP socket as the kernel reports it."""

    state: str  # RFC 9293 name: LISTEN, SYN-SENT, ..., TIME-WAIT, CLOSED
    local: tuple[str, int]  # IPv4-mapped IPv6 addresses are given as IPv4
    remote: tuple[str, int]
    family: int  # 4 or 6: the socket's own family (6 for Go's dual-stack sockets)
    rqueue: int  # bytes not yet read (LISTEN: accept queue length)
    wqueue: int  # bytes not yet acknowledged (LISTEN: backlog)
    inode: int = 0
    uid: int = 0
    timer: int = 0  # 0 none, 1 retransmit, 2 keepalive, 3 TIME-WAIT, 4 zero-window probe
    expires_ms: int = 0
    retrans: int = 0  # idiag_retrans: retransmissions of the timer in force
    cc: str | None = None  # congestion control (INET_DIAG_CONG)
    shutdown: int | None = None  # bit 0: read side shut down (peer's FIN seen), bit 1: write
    tcp_info: dict[str, int] = field(default_factory=dict)

    @property
    def cwnd(self) -> int | None:
        return self.tcp_info.get("snd_cwnd")

    @property
    def rtt_us(self) -> int | None:
        return self.tcp_info.get("rtt")

    @property
    def total_retrans(self) -> int | None:
        return self.tcp_info.get("total_retrans")

    @property
    def snd_wscale(self) -> int | None:
        return self.tcp_info.get("snd_wscale")

    @property
    def rcv_wscale(self) -> int | None:
        return self.tcp_info.get("rcv_wscale")

    def __str__(self) -> str:
        s = (
            f"{self.state:<12} {self.local[0]}:{self.local[1]} -> "
            f"{self.remote[0]}:{self.remote[1]} rq={self.rqueue} wq={self.wqueue}"
        )
        if self.cc:
            s += f" cc={self.cc}"
        if self.tcp_info:
            s += f" cwnd={self.cwnd} rtt={self.rtt_us}us retrans={self.total_retrans}"
        return s


def parse_diag_msg(data: bytes, off: int, end: int) -> SockState:
    (
        family,
        state,
        timer,
        retrans,
        sport,
        dport,
        src,
        dst,
        _ifindex,
        _cookie,
        expires,
        rqueue,
        wqueue,
        uid,
        inode,
    ) = DIAG_MSG.unpack_from(data, off)
    cc = None
    shut = None
    info: dict[str, int] = {}
    a = off + DIAG_MSG.size
    while a + 4 <= end:
        alen, atype = RTA.unpack_from(data, a)
        if alen < 4:
            break
        payload = data[a + 4 : a + alen]
        if atype == INET_DIAG_INFO:
            info = decode_tcp_info(payload)
        elif atype == INET_DIAG_CONG:
            cc = payload.split(b"\0", 1)[0].decode()
        elif atype == INET_DIAG_SHUTDOWN and payload:
            shut = payload[0]
        a += (alen + 3) & ~3
    return SockState(
        state=TCP_STATES.get(state, f"state-{state}"),
        local=(_ip(family, src), int.from_bytes(sport, "big")),
        remote=(_ip(family, dst), int.from_bytes(dport, "big")),
        family=4 if family == socket.AF_INET else 6,
        rqueue=rqueue,
        wqueue=wqueue,
        inode=inode,
        uid=uid,
        timer=timer,
        expires_ms=expires,
        retrans=retrans,
        cc=cc,
        shutdown=shut,
        tcp_info=info,
    )


class DiagProbe:
    """A sock_diag socket bound to the namespace of the thread that makes it."""

    def __init__(self) -> None:
        self.sock = socket.socket(
            socket.AF_NETLINK, socket.SOCK_RAW | socket.SOCK_CLOEXEC, NETLINK_SOCK_DIAG
        )
        self.sock.bind((0, 0))
        self._seq = itertools.count(1)
        self._lock = threading.Lock()

    def close(self) -> None:
        self.sock.close()

    def _request_dump(self, family: int, states: int, ext: int) -> Iterator[tuple[bytes, int, int]]:
        """Send a SOCK_DIAG_BY_FAMILY dump request and yield each socket's message as
        (buffer, offset of its payload, end)."""
        seq = next(self._seq)
        req = REQ_V2.pack(family, socket.IPPROTO_TCP, ext, states) + b"\0" * SOCKID_LEN
        self.sock.send(
            NLMSG_HDR.pack(16 + len(req), SOCK_DIAG_BY_FAMILY, NLM_F_REQUEST | NLM_F_DUMP, seq, 0)
            + req
        )
        while True:
            data = self.sock.recv(1 << 17)
            off = 0
            while off + 16 <= len(data):
                length, kind, _, rseq, _ = NLMSG_HDR.unpack_from(data, off)
                if length < 16:
                    return
                if rseq == seq:
                    if kind == NLMSG_DONE:
                        return
                    if kind == NLMSG_ERROR:
                        (err,) = struct.unpack_from("=i", data, off + 16)
                        if err:
                            raise OSError(-err, f"sock_diag: {os.strerror(-err)}")
                        return
                    if kind == SOCK_DIAG_BY_FAMILY:
                        yield data, off + 16, off + length
                off += (length + 3) & ~3

    def _dump(self, family: int, states: int, ext: int) -> list[SockState]:
        return [
            parse_diag_msg(data, off, end)
            for data, off, end in self._request_dump(family, states, ext)
        ]

    def destroy_all(self) -> int:
        """Abort every TCP socket of the namespace (SOCK_DESTROY, what ``ss -K`` does;
        CONFIG_INET_DIAG_DESTROY). A socket its program closed lingers on its own, an
        orphan retransmitting its FIN for minutes and holding the namespace alive; a lab
        going down ends them, so nothing of a run outlives it (nor reaches the next
        lab's kernel trace). Returns how many were destroyed; errors for sockets already
        gone are ignored (TIME-WAIT sockets cannot be destroyed and send nothing)."""
        n = 0
        with self._lock:
            for fam in (socket.AF_INET, socket.AF_INET6):
                for sockid in self._dump_ids(fam):
                    seq = next(self._seq)
                    req = REQ_V2.pack(fam, socket.IPPROTO_TCP, 0, ALL_STATES) + sockid
                    self.sock.send(
                        NLMSG_HDR.pack(
                            16 + len(req), SOCK_DESTROY, NLM_F_REQUEST | NLM_F_ACK, seq, 0
                        )
                        + req
                    )
                    data = self.sock.recv(1 << 16)
                    if (
                        len(data) >= 20
                        and NLMSG_HDR.unpack_from(data, 0)[1] == NLMSG_ERROR
                        and struct.unpack_from("=i", data, 16)[0] == 0
                    ):
                        n += 1
        return n

    def _dump_ids(self, family: int) -> list[bytes]:
        """The raw ``inet_diag_sockid`` of every socket not in TIME-WAIT."""
        states = ALL_STATES & ~(1 << 6)  # TCP_TIME_WAIT
        # (the id follows the message's family, state, timer and retrans bytes)
        return [
            bytes(data[off + 4 : off + 4 + SOCKID_LEN])
            for data, off, _end in self._request_dump(family, states, 0)
        ]

    def sockets(
        self,
        *,
        port: int | None = None,
        local_port: int | None = None,
        remote_port: int | None = None,
        states: int = ALL_STATES,
        families: tuple[int, ...] = (socket.AF_INET, socket.AF_INET6),
        info: bool = True,
    ) -> list[SockState]:
        """All TCP sockets of both families; ``port`` matches either end. ``info``:
        with tcp_info and the congestion control (the kernel locks each socket to fill
        tcp_info; without, a dump locks none)."""
        ext = EXT_INFO | EXT_CONG if info else 0
        with self._lock:
            socks = [s for fam in families for s in self._dump(fam, states, ext)]
        if port is not None:
            socks = [s for s in socks if port in (s.local[1], s.remote[1])]
        if local_port is not None:
            socks = [s for s in socks if s.local[1] == local_port]
        if remote_port is not None:
            socks = [s for s in socks if s.remote[1] == remote_port]
        return socks
