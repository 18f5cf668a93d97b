"""A large synthetic capture for `netemu bench show`, written quickly (plain ``struct``,
no scapy: 200,000 frames in a few seconds).

A realistic mix on Ethernet/IPv4, every TCP segment with Linux's options (NOP NOP TS;
a SYN's MSS, SACK permitted, TS, window scale), frames of all flows interleaved in time:

- a few **bulk** connections (1448-byte segments one way, an ACK every second one),
  losing a segment now and then before the capture point: the receiver's duplicate
  ACKs carry SACK blocks and the sender retransmits it (fast retransmission);
- many **short** connections (handshake, a request, a response of a few segments,
  both FINs), some ending in a RST;
- **non-TCP** frames: ARP, UDP (DNS) and ICMP.
"""

from __future__ import annotations

import os
import random
import struct
from collections.abc import Iterator
from typing import BinaryIO

_ETH = b"\x02\x00\x00\x00\x00\x02\x02\x00\x00\x00\x00\x01\x08\x00"
_ETH_ARP = b"\xff\xff\xff\xff\xff\xff\x02\x00\x00\x00\x00\x01\x08\x06"
_IP = struct.Struct(">BBHHHBBH4s4s")
_TCP = struct.Struct(">HHIIBBHHH")
_TS = struct.Struct(">BBBBII")  # NOP NOP TS
_REC = struct.Struct("<IIII")
ACK, PSH, FIN, SYN, RST = 0x10, 0x08, 0x01, 0x02, 0x04
MSS = 1448
_PAYLOAD = bytes(range(256)) * 8


def _ip(n: int) -> bytes:
    return bytes((10, (n >> 16) & 0xFF, (n >> 8) & 0xFF, n & 0xFF))


def tcp_frame(
    src: bytes, dst: bytes, sport: int, dport: int, seq: int, ack: int, flags: int, **kw: int
) -> bytes:
    """An Ethernet/IPv4/TCP frame (checksums left zero: nothing verifies them)."""
    size, win, ts = kw.get("size", 0), kw.get("win", 2000), kw.get("ts", 1)
    if flags & SYN:
        opts = b"\x02\x04\x05\xb4\x04\x02\x08\x0a" + struct.pack(">II", ts, 0) + b"\x01\x03\x03\x07"
    else:
        opts = _TS.pack(1, 1, 8, 10, ts, ts)
        sack = kw.get("sack")
        if sack:
            opts += b"\x01\x01\x05\x0a" + struct.pack(
                ">II", sack & 0xFFFFFFFF, (sack + MSS) & 0xFFFFFFFF
            )
    thl = 20 + len(opts)
    total = 20 + thl + size
    ip = _IP.pack(0x45, 0, total, 0, 0x4000, 64, 6, 0, src, dst)
    tcp = _TCP.pack(sport, dport, seq & 0xFFFFFFFF, ack & 0xFFFFFFFF, thl << 2, flags, win, 0, 0)
    return _ETH + ip + tcp + opts + _PAYLOAD[:size]


def _bulk(n: int, rng: random.Random, loss_every: int) -> Iterator[bytes]:
    """One bulk transfer, client → server, forever (the caller stops it)."""
    c, s, cp, sp = _ip(n * 2 + 1), _ip(n * 2 + 2), 40000 + n, 5001
    ci, si = rng.getrandbits(32), rng.getrandbits(32)
    yield tcp_frame(c, s, cp, sp, ci, 0, SYN, win=64240)
    yield tcp_frame(s, c, sp, cp, si, ci + 1, SYN | ACK, win=65160)
    yield tcp_frame(c, s, cp, sp, ci + 1, si + 1, ACK, win=502)
    seq, acked, k = 1, 1, 0
    while True:
        k += 1
        if k % loss_every == 0:  # lost before the capture point: dup ACKs, then resent
            lost, seq = seq, seq + MSS
            for _ in range(3):
                yield tcp_frame(c, s, cp, sp, ci + seq, si + 1, ACK | PSH, size=MSS, win=502)
                seq += MSS
                yield tcp_frame(
                    s, c, sp, cp, si + 1, ci + lost, ACK, win=3000, sack=ci + lost + MSS
                )
            yield tcp_frame(c, s, cp, sp, ci + lost, si + 1, ACK | PSH, size=MSS, win=502)
            acked = seq
            yield tcp_frame(s, c, sp, cp, si + 1, ci + acked, ACK, win=3000)
            continue
        yield tcp_frame(c, s, cp, sp, ci + seq, si + 1, ACK | PSH, size=MSS, win=502)
        seq += MSS
        if k % 2 == 0:
            acked = seq
            yield tcp_frame(s, c, sp, cp, si + 1, ci + acked, ACK, win=3000)


def _short(n: int, rng: random.Random) -> Iterator[bytes]:
    """A short request/response connection, closed by FINs (one in 20 by a RST)."""
    c, s = _ip(0x100000 + n % 50000), _ip(0x200000 + n % 7)
    cp, sp = 1024 + n % 60000, 80 + (n % 3) * 363
    ci, si = rng.getrandbits(32), rng.getrandbits(32)
    yield tcp_frame(c, s, cp, sp, ci, 0, SYN, win=64240)
    yield tcp_frame(s, c, sp, cp, si, ci + 1, SYN | ACK, win=65160)
    yield tcp_frame(c, s, cp, sp, ci + 1, si + 1, ACK, win=502)
    req = 200 + rng.randrange(400)
    yield tcp_frame(c, s, cp, sp, ci + 1, si + 1, ACK | PSH, size=req, win=502)
    seq = 1
    for i in range(rng.randrange(1, 5)):
        yield tcp_frame(s, c, sp, cp, si + seq, ci + 1 + req, ACK | PSH, size=MSS, win=509)
        seq += MSS
        if i % 2:
            yield tcp_frame(c, s, cp, sp, ci + 1 + req, si + seq, ACK, win=502)
    cs = ci + 1 + req
    if n % 20 == 0:
        yield tcp_frame(c, s, cp, sp, cs, si + seq, RST | ACK, win=0)
        return
    yield tcp_frame(c, s, cp, sp, cs, si + seq, FIN | ACK, win=502)
    yield tcp_frame(s, c, sp, cp, si + seq, cs + 1, FIN | ACK, win=509)
    yield tcp_frame(c, s, cp, sp, cs + 1, si + seq + 1, ACK, win=502)


def _other(n: int) -> bytes:
    """ARP, a UDP datagram (DNS) or an ICMP echo."""
    a, b = _ip(0x300000 + n % 100), _ip(0x300101)
    kind = n % 3
    if kind == 0:
        return _ETH_ARP + b"\x00\x01\x08\x00\x06\x04\x00\x01" + bytes(6) + a + bytes(6) + b
    body = (
        struct.pack(">HHHH", 53000 + n % 1000, 53, 40, 0) + bytes(32)
        if kind == 1
        else (b"\x08\x00\x00\x00" + struct.pack(">HH", 1, n & 0xFFFF) + bytes(56))
    )
    ip = _IP.pack(0x45, 0, 20 + len(body), 0, 0, 64, 17 if kind == 1 else 1, 0, a, b)
    return _ETH + ip + body


def write_capture(
    path: str | os.PathLike[str],
    size: int = 200_000_000,
    *,
    bulk: int = 6,
    seed: int = 19,
    loss_every: int = 150,
) -> dict[str, int]:
    """Write a classic pcap of about ``size`` bytes: ``bulk`` bulk connections and
    short ones started all along, with non-TCP frames; every flow's frames
    interleaved, 20 µs apart. Returns {"frames", "connections", "bytes"}."""
    rng = random.Random(seed)
    flows: list[Iterator[bytes]] = [_bulk(n, rng, loss_every) for n in range(bulk)]
    shorts = 0
    frames = 0
    with open(path, "wb") as f:
        f.write(struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, 262144, 1))
        written = 24
        t = 1_700_000_000_000_000  # µs
        while written < size:
            r = rng.random()
            if r < 0.02:
                data = _other(frames)
            else:
                if r < 0.045:
                    flows.append(_short(shorts, rng))
                    shorts += 1
                i = (
                    rng.randrange(len(flows))
                    if r < 0.5 or len(flows) <= bulk
                    else (bulk + rng.randrange(len(flows) - bulk))
                )
                data = next(flows[i], b"")
                if not data:  # a short connection ended
                    flows.pop(i)
                    continue
            t += 20
            written += _record(f, t, data)
            frames += 1
    return {"frames": frames, "connections": bulk + shorts, "bytes": written}


def _record(f: BinaryIO, t: int, data: bytes) -> int:
    f.write(_REC.pack(t // 1_000_000, t % 1_000_000, len(data), len(data)))
    f.write(data)
    return 16 + len(data)
