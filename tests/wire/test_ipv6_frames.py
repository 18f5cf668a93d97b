"""IPv6 frames both ways against scapy: TCP with the IPv6 pseudo-header (the general
path, the lean receive path and FrameHead6's emit path agree), and ICMPv6 (echo,
packet too big, destination unreachable, neighbour solicitation and advertisement)."""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from scapy.layers.inet import TCP
from scapy.layers.inet6 import (
    ICMPv6DestUnreach,
    ICMPv6EchoReply,
    ICMPv6EchoRequest,
    ICMPv6ND_NA,
    ICMPv6ND_NS,
    ICMPv6NDOptDstLLAddr,
    ICMPv6NDOptSrcLLAddr,
    ICMPv6PacketTooBig,
    IPv6,
    IPv6ExtHdrDestOpt,
)
from scapy.layers.l2 import Ether
from scapy.packet import Raw

from netemu.wire import (
    ICMP6_ECHO_REPLY,
    ICMP6_ECHO_REQUEST,
    BadChecksum,
    FrameHead6,
    Icmp6,
    IPv6Packet,
    MssOption,
    NopOption,
    SackPermittedOption,
    TcpSegment,
    TimestampOption,
    WindowScaleOption,
    build_tcp_frame,
    parse_frame,
)
from netemu.wire.checksum import pseudo_header_sum
from netemu.wire.frame import parse_tcp_frame
from netemu.wire.icmp6 import (
    NA_OVERRIDE,
    NA_SOLICITED,
    ND_OPT_SOURCE_LL,
    ND_OPT_TARGET_LL,
    multicast_mac,
    solicited_node,
)

from .frames import MAC_A, MAC_B

CHECKS = settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
ips6 = st.ip_addresses(v=6).map(str)
u16 = st.integers(0, 0xFFFF)
u32 = st.integers(0, 0xFFFFFFFF)
OPTION_SETS = st.sampled_from(
    [
        (),
        (NopOption(), NopOption(), TimestampOption(7, 9)),
        (
            MssOption(1440),
            SackPermittedOption(),
            TimestampOption(1, 0),
            NopOption(),
            WindowScaleOption(7),
        ),
    ]
)


def _scapy_checksum(frame: bytes) -> int:
    p = Ether(frame)
    del p[TCP].chksum
    return int(Ether(bytes(p))[TCP].chksum)


@CHECKS
@given(ips6, ips6, u16, u16, u32, u32, u16, OPTION_SETS, st.binary(max_size=300))
def test_tcp_over_ipv6_both_ways(src, dst, sport, dport, seq, ack, win, options, payload):
    seg = TcpSegment(sport, dport, seq, ack, 0x18, win, payload, options)
    frame = build_tcp_frame(MAC_A, MAC_B, IPv6Packet(src, dst, 6), seg)
    p = Ether(frame)
    assert p[IPv6].src == src or IPv6Packet.parse(frame, 14).src == p[IPv6].src
    assert (p[TCP].sport, p[TCP].dport, p[TCP].seq, p[TCP].ack) == (sport, dport, seq, ack)
    assert p[TCP].chksum == _scapy_checksum(frame)  # the IPv6 pseudo-header's
    # the per-destination head packs the same bytes
    assert seg.emit(src, dst, FrameHead6(MAC_A, MAC_B, src, dst)) == frame
    # scapy's frame parses to the same records, by both receive paths
    fr = parse_frame(bytes(p))
    assert fr.ip6 is not None and fr.tcp is not None and fr.ip is None
    assert (fr.src_ip, fr.dst_ip) == (fr.ip6.src, fr.ip6.dst)
    assert fr.tcp.payload == payload and fr.tcp.options == options
    assert fr.emit() == frame
    lean = parse_tcp_frame(frame)
    assert lean is not None and lean[2] == fr.tcp and lean[:2] == (fr.ip6.src, fr.ip6.dst)


def test_bad_tcp_checksum_over_ipv6() -> None:
    frame = bytearray(
        build_tcp_frame(
            MAC_A,
            MAC_B,
            IPv6Packet("2001:2::1", "2001:2::2", 6),
            TcpSegment(1, 2, 3, 4, 0x10, 5, b"data"),
        )
    )
    frame[-1] ^= 1
    with pytest.raises(BadChecksum):
        parse_frame(bytes(frame))
    assert parse_tcp_frame(bytes(frame)) is None  # the general path owns the error
    assert parse_frame(bytes(frame), verify=False).tcp is not None


def test_extension_headers_then_tcp_and_link_padding() -> None:
    p = (
        Ether(src=MAC_A, dst=MAC_B)
        / IPv6(src="2001:2::2", dst="2001:2::1")
        / IPv6ExtHdrDestOpt()
        / TCP(sport=80, dport=40000, flags="SA")
    )
    raw = bytes(p) + b"\0" * 4
    fr = parse_frame(raw)
    assert fr.tcp is not None and fr.tcp.flags == 0x12 and fr.trailer == b"\0" * 4
    assert fr.emit() == raw
    assert parse_tcp_frame(raw) is None  # not the lean path's (TCP not next)


def test_pseudo_header_sum_of_both_families() -> None:
    v6 = pseudo_header_sum("2001:2::1", "2001:2::2", 6, 20) % 0xFFFF
    assert v6 == (0x2001 + 2 + 1 + 0x2001 + 2 + 2 + 6 + 20) % 0xFFFF
    assert (
        pseudo_header_sum("1.2.3.4", "5.6.7.8", 6, 20) % 0xFFFF
        == (0x102 + 0x304 + 0x506 + 0x708 + 26) % 0xFFFF
    )


SRC, DST = "2001:2::2", "2001:2::1"


@pytest.mark.parametrize(
    ("ours", "theirs"),
    [
        (Icmp6.echo(True, 7, 9, b"ping"), ICMPv6EchoRequest(id=7, seq=9, data=b"ping")),
        (Icmp6.echo(False, 7, 9, b"ping"), ICMPv6EchoReply(id=7, seq=9, data=b"ping")),
        (Icmp6.packet_too_big(1280, b"x" * 60), ICMPv6PacketTooBig(mtu=1280) / Raw(b"x" * 60)),
        (Icmp6.dest_unreachable(4, b"y" * 48), ICMPv6DestUnreach(code=4) / Raw(b"y" * 48)),
        (
            Icmp6.neighbor_solicitation(DST, MAC_A),
            ICMPv6ND_NS(tgt=DST) / ICMPv6NDOptSrcLLAddr(lladdr=MAC_A),
        ),
        (
            Icmp6.neighbor_advertisement(DST, MAC_B),
            ICMPv6ND_NA(tgt=DST, R=0, S=1, O=1) / ICMPv6NDOptDstLLAddr(lladdr=MAC_B),
        ),
    ],
)
def test_icmpv6_against_scapy(ours: Icmp6, theirs) -> None:
    frame = bytes(Ether(src=MAC_A, dst=MAC_B) / IPv6(src=SRC, dst=DST) / theirs)
    assert Icmp6.emit(ours, SRC, DST) == frame[54:]  # checksum with the pseudo-header
    fr = parse_frame(frame)
    assert fr.icmp6 is not None and fr.icmp6.type == ours.type and fr.icmp6.body == ours.body
    assert fr.emit() == frame


def test_icmpv6_fields() -> None:
    echo = Icmp6.echo(True, 0x1234, 0x5678, b"abc")
    assert (echo.type, echo.identifier, echo.sequence, echo.data) == (
        ICMP6_ECHO_REQUEST,
        0x1234,
        0x5678,
        b"abc",
    )
    assert Icmp6.echo(False, 1, 2).type == ICMP6_ECHO_REPLY
    assert Icmp6.packet_too_big(1400, b"z" * 2000).mtu == 1400
    assert len(Icmp6.packet_too_big(1400, b"z" * 2000).emit(SRC, DST)) == 1280 - 40
    ns = Icmp6.neighbor_solicitation(DST, MAC_A)
    assert ns.target == DST and ns.link_layer_option(ND_OPT_SOURCE_LL) == MAC_A
    assert ns.link_layer_option(ND_OPT_TARGET_LL) is None
    na = Icmp6.neighbor_advertisement(DST, MAC_B)
    assert (
        na.flags == NA_SOLICITED | NA_OVERRIDE and na.link_layer_option(ND_OPT_TARGET_LL) == MAC_B
    )
    bad = bytearray(echo.emit(SRC, DST))
    bad[-1] ^= 0xFF
    with pytest.raises(BadChecksum):
        Icmp6.parse(bytes(bad), SRC, DST)


def test_multicast_addresses() -> None:
    assert solicited_node("2001:2::1:2345") == "ff02::1:ff01:2345"
    assert multicast_mac("ff02::1:ff01:2345") == "33:33:ff:01:23:45"
