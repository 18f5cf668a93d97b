"""100,000 random and mutated byte strings (400,000 with NETEMU_SOAK=1, as ``make
soak`` runs it): the parsers raise nothing but
MalformedPacket, the fast path agrees with the general one, and whatever parses
emits back byte-identical. A plain seeded loop (fast, reproducible), in four
shards so pytest-xdist can spread them."""

from __future__ import annotations

import os
import random

import pytest

from netemu.wire import MalformedPacket, parse_frame
from netemu.wire.arp import ArpPacket
from netemu.wire.checksum import internet_checksum
from netemu.wire.ethernet import EthernetFrame
from netemu.wire.frame import _parse_frame_general
from netemu.wire.icmp import IcmpEcho
from netemu.wire.ipv4 import IPv4Packet
from netemu.wire.tcp import TcpSegment, parse_options

from .frames import valid_frames

TOTAL = 400_000 if os.environ.get("NETEMU_SOAK") else 100_000
SHARDS = 4
SEEDS = valid_frames()
# Offsets whose bytes steer parsing: EtherType, version/IHL, total length, flags and
# fragment offset, protocol, TCP data offset, and the first option bytes.
HOT = (12, 13, 14, 16, 17, 20, 21, 23, 46, 47, 54, 55, 56, 57)
INTERESTING = (
    0x00,
    0x01,
    0x02,
    0x04,
    0x05,
    0x06,
    0x08,
    0x0A,
    0x45,
    0x46,
    0x4F,
    0x50,
    0x7F,
    0x80,
    0xA0,
    0xF0,
    0xFF,
)


def refix_checksums(buf: bytearray) -> None:
    """Make the IPv4 and TCP checksums of a mutated frame right again where its
    lengths allow, so that verifying parsers look past them."""
    if len(buf) < 34 or buf[12:14] != b"\x08\x00":
        return
    hlen = (buf[14] & 0xF) * 4
    end = 14 + int.from_bytes(buf[16:18], "big")
    if hlen < 20 or 14 + hlen > min(end, len(buf)):
        return
    buf[24:26] = b"\x00\x00"
    buf[24:26] = internet_checksum(bytes(buf[14 : 14 + hlen])).to_bytes(2, "big")
    start = 14 + hlen
    if buf[23] == 6 and end - start >= 20:
        buf[start + 16 : start + 18] = b"\x00\x00"
        pseudo = bytes(buf[26:34]) + bytes((0, 6)) + (end - start).to_bytes(2, "big")
        csum = internet_checksum(pseudo + bytes(buf[start:end]))
        buf[start + 16 : start + 18] = csum.to_bytes(2, "big")


def mutate(rng: random.Random) -> bytes:
    buf = _mutate(rng)
    if rng.random() < 0.5:
        fixed = bytearray(buf)
        refix_checksums(fixed)
        return bytes(fixed)
    return buf


def _mutate(rng: random.Random) -> bytes:
    kind = rng.randrange(8)
    if kind == 0:  # pure random
        return rng.randbytes(rng.randrange(0, 100))
    buf = bytearray(rng.choice(SEEDS))
    if kind == 1:  # truncated
        return bytes(buf[: rng.randrange(len(buf) + 1)])
    if kind == 2:  # bit flips
        for _ in range(rng.randrange(1, 4)):
            i = rng.randrange(len(buf))
            buf[i] ^= 1 << rng.randrange(8)
    elif kind == 3:  # random bytes replaced
        for _ in range(rng.randrange(1, 5)):
            buf[rng.randrange(len(buf))] = rng.randrange(256)
    elif kind in (4, 5):  # a steering byte set to an interesting value
        for _ in range(rng.randrange(1, 3)):
            i = rng.choice(HOT)
            if i < len(buf):
                buf[i] = rng.choice(INTERESTING)
    elif kind == 6:  # random option area
        for i in range(54, min(len(buf), 54 + rng.randrange(1, 41))):
            buf[i] = rng.choice(INTERESTING) if rng.random() < 0.5 else rng.randrange(256)
    else:  # extended or cut in the middle
        i = rng.randrange(len(buf))
        if rng.random() < 0.5:
            buf[i:i] = rng.randbytes(rng.randrange(1, 20))
        else:
            del buf[i : i + rng.randrange(1, 20)]
    return bytes(buf)


def outcome(parse, buf: bytes, *args) -> object:
    try:
        return parse(buf, *args)
    except MalformedPacket as e:
        return (type(e), e.reason)


@pytest.mark.parametrize("shard", range(SHARDS))
def test_fuzz_parsers_raise_only_malformed(shard: int) -> None:
    rng = random.Random(0x5EED + shard)
    parsed = 0
    for _ in range(TOTAL // SHARDS):
        buf = mutate(rng)
        for verify in (True, False):
            fast = outcome(parse_frame, buf, verify)
            assert fast == outcome(_parse_frame_general, buf, verify), buf.hex()
            if not isinstance(fast, tuple):
                parsed += 1
                assert fast.emit() == buf, buf.hex()
        ip = buf[14:]
        seg = buf[34:]
        outcome(EthernetFrame.parse, buf)
        outcome(ArpPacket.parse, ip)
        outcome(IPv4Packet.parse, ip, True)
        outcome(IPv4Packet.parse, buf, False, 14)
        outcome(TcpSegment.parse, seg)
        outcome(TcpSegment.parse, seg, 0x1234)
        outcome(IcmpEcho.parse, ip)
        outcome(parse_options, seg, 0, min(len(seg), 40))
    assert parsed > TOTAL // SHARDS // 10  # the mutations keep plenty of frames valid
