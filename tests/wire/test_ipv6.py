"""netemu.wire.ipv6 against scapy's IPv6 and extension headers."""

from __future__ import annotations

import contextlib
import random

import pytest
from scapy.all import (
    TCP,
    IPv6,
    IPv6ExtHdrDestOpt,
    IPv6ExtHdrFragment,
    IPv6ExtHdrHopByHop,
    IPv6ExtHdrRouting,
    Jumbo,
    Raw,
)

from netemu.wire import IPv6Packet, MalformedPacket


def test_extension_headers_are_walked_to_tcp() -> None:
    p = (
        IPv6(src="2001:db8::1", dst="2001:db8:0:0:1::2", hlim=7, tc=3, fl=0x12345)
        / IPv6ExtHdrHopByHop()
        / IPv6ExtHdrRouting(addresses=["2001:db8::9"])
        / IPv6ExtHdrDestOpt()
        / IPv6ExtHdrFragment(offset=0, m=1, id=7)
        / TCP(sport=1, dport=80, flags="S")
        / Raw(b"abc")
    )
    raw = bytes(p) + b"\0" * 6  # link padding is ignored
    ip = IPv6Packet.parse(raw)
    assert (ip.src, ip.dst) == ("2001:db8::1", "2001:db8::1:0:0:2")  # RFC 5952 text
    assert (ip.hop_limit, ip.traffic_class, ip.flow_label) == (7, 3, 0x12345)
    assert [t for t, _ in ip.extensions] == [0, 43, 60, 44]
    assert ip.next_header == 6 and ip.payload == bytes(p[TCP])
    assert ip.fragment is not None and ip.fragment.identification == 7
    assert ip.is_fragment and not ip.later_fragment
    assert ip.emit() == bytes(p)


def test_a_later_fragment_stops_the_walk() -> None:
    p = IPv6(src="::1", dst="::2") / IPv6ExtHdrFragment(offset=10, m=0, id=9, nh=6) / Raw(b"x" * 16)
    ip = IPv6Packet.parse(bytes(p))
    assert ip.later_fragment and ip.next_header == 6 and ip.payload == b"x" * 16


def test_lengths_zero_jumbo_and_short() -> None:
    p = bytearray(bytes(IPv6(src="::1", dst="::2") / TCP() / Raw(b"y" * 100)))
    p[4:6] = b"\0\0"  # a TSO capture: the length from the bytes present
    assert len(IPv6Packet.parse(bytes(p)).payload) == 120
    jumbo = IPv6(src="::1", dst="::2", plen=0) / IPv6ExtHdrHopByHop(
        options=[Jumbo(jumboplen=70000)]
    )
    ip = IPv6Packet.parse(bytes(jumbo) + b"z" * 200, allow_short=True)
    assert ip.missing == 70000 - 8 - 200
    full = bytes(IPv6(src="::1", dst="::2") / TCP() / Raw(b"y" * 100))
    with pytest.raises(MalformedPacket, match="exceeds"):
        IPv6Packet.parse(full[:80])
    assert IPv6Packet.parse(full[:80], allow_short=True).missing == 80  # of 120


def test_any_bytes_parse_or_raise_malformed() -> None:
    rng = random.Random(6)
    base = bytes(
        IPv6(src="::1", dst="::2") / IPv6ExtHdrHopByHop() / IPv6ExtHdrRouting() / TCP() / Raw(b"q")
    )
    for _ in range(2000):
        data = bytearray(base[: rng.randrange(len(base) + 1)])
        for _ in range(rng.randint(0, 4)):
            if data:
                data[rng.randrange(len(data))] = rng.randrange(256)
        with contextlib.suppress(MalformedPacket):
            IPv6Packet.parse(bytes(data), allow_short=rng.random() < 0.5)
