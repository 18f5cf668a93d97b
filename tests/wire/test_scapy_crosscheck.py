"""netemu's codec against scapy, the independent oracle, both ways.

netemu → scapy: records netemu emits are dissected by scapy into the same field
values, with the checksums scapy computes. scapy → netemu: frames scapy builds
are parsed by netemu into the same values and re-emitted byte-identical, also
from records whose checksums netemu recomputes.
"""

from __future__ import annotations

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from scapy.compat import raw
from scapy.layers.inet import ICMP, IP, TCP, IPOption, TCPOptions, in4_chksum
from scapy.layers.l2 import ARP, Ether
from scapy.packet import Padding, Raw
from scapy.utils import checksum

from netemu.wire import (
    EOL,
    NOP,
    SACK_PERMITTED,
    ArpPacket,
    EolOption,
    EthernetFrame,
    Frame,
    IcmpEcho,
    IPv4Packet,
    MalformedOption,
    MssOption,
    NopOption,
    RawOption,
    SackOption,
    SackPermittedOption,
    TcpSegment,
    TimestampOption,
    WindowScaleOption,
    build_tcp_frame,
    parse_frame,
)
from netemu.wire.frame import _parse_frame_general

from .frames import MAC_A, MAC_B

CHECKS = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])

u8 = st.integers(0, 0xFF)
u16 = st.integers(0, 0xFFFF)
u32 = st.integers(0, 0xFFFFFFFF)
macs = st.binary(min_size=6, max_size=6).map(lambda b: b.hex(":"))
ips = st.ip_addresses(v=4).map(str)
# Kinds neither netemu nor scapy decode (scapy knows 14, 15, 19, 25, 28, 29, 34).
UNKNOWN_KINDS = [k for k in range(6, 256) if k not in (8, 14, 15, 19, 25, 28, 29, 34)]

OPTIONS = st.one_of(
    st.just(NOP),
    st.builds(MssOption, u16),
    st.builds(WindowScaleOption, u8),
    st.just(SACK_PERMITTED),
    st.builds(SackOption, st.lists(st.tuples(u32, u32), min_size=1, max_size=4).map(tuple)),
    st.builds(TimestampOption, u32, u32),
    st.builds(RawOption, st.sampled_from(UNKNOWN_KINDS), st.binary(max_size=12)),
)


@st.composite
def option_lists(draw: st.DrawFn, allow_eol: bool = True, budget: int = 40) -> tuple[tuple, bytes]:
    """(options, padding) fitting the option area; maybe an EOL then junk."""
    options, size = [], 0
    for option in draw(st.lists(OPTIONS, max_size=10)):
        n = len(option.emit())
        if size + n <= budget:
            options.append(option)
            size += n
    padding = b""
    if allow_eol and size < 40 and draw(st.booleans()):
        options.append(EOL)
        padding = draw(st.binary(max_size=39 - size))
    return tuple(options), padding


def scapy_option(option: object) -> tuple:
    """How scapy represents (and dissects) one netemu option."""
    t = type(option)
    if t is NopOption:
        return ("NOP", None)
    if t is EolOption:
        return ("EOL", None)
    if t is MssOption:
        return ("MSS", option.mss)
    if t is WindowScaleOption:
        return ("WScale", option.shift)
    if t is SackPermittedOption:
        return ("SAckOK", b"")
    if t is SackOption:
        return ("SAck", tuple(edge for block in option.blocks for edge in block))
    if t is TimestampOption:
        return ("Timestamp", (option.tsval, option.tsecr))
    assert t is RawOption
    return (option.kind, option.data)


def assert_checksums_agree(frame: bytes, ip_hlen: int = 20) -> None:
    """The stored checksums are the ones scapy computes for the same bytes."""
    ip = Ether(frame)[IP]
    header = bytearray(frame[14 : 14 + ip_hlen])
    header[10:12] = b"\x00\x00"
    assert checksum(bytes(header)) == int.from_bytes(frame[24:26], "big")
    seg = bytearray(frame[14 + ip_hlen : 14 + ip.len])
    stored = int.from_bytes(seg[16:18], "big")
    seg[16:18] = b"\x00\x00"
    assert in4_chksum(6, ip, bytes(seg)) == stored


def assert_fast_equals_general(frame: bytes) -> None:
    assert parse_frame(frame) == _parse_frame_general(frame, True)


# --- TCP: netemu emits, scapy dissects ----------------------------------------------


@CHECKS
@given(
    src_mac=macs,
    dst_mac=macs,
    src=ips,
    dst=ips,
    ttl=u8,
    tos=u8,
    ident=u16,
    ip_flags=st.sampled_from([0, 2, 4, 6]),
    sport=u16,
    dport=u16,
    seq=u32,
    ack=u32,
    flags=st.integers(0, 0xFFF),
    window=u16,
    urgent=u16,
    opts=option_lists(),
    payload=st.binary(max_size=80),
)
def test_netemu_tcp_frames_dissected_by_scapy(
    src_mac,
    dst_mac,
    src,
    dst,
    ttl,
    tos,
    ident,
    ip_flags,
    sport,
    dport,
    seq,
    ack,
    flags,
    window,
    urgent,
    opts,
    payload,
) -> None:
    options, padding = opts
    ip = IPv4Packet(src, dst, 6, ttl=ttl, tos=tos, identification=ident, flags=ip_flags)
    seg = TcpSegment(
        sport, dport, seq, ack, flags, window, payload, options, urgent, padding=padding
    )
    frame = build_tcp_frame(src_mac, dst_mac, ip, seg)

    p = Ether(frame)
    assert (p.dst, p.src, p.type) == (dst_mac, src_mac, 0x0800)
    sip, stcp = p[IP], p[TCP]
    assert (
        sip.version,
        sip.ihl,
        sip.tos,
        sip.len,
        sip.id,
        int(sip.flags),
        sip.frag,
        sip.ttl,
        sip.proto,
        sip.src,
        sip.dst,
    ) == (4, 5, tos, len(frame) - 14, ident, ip_flags, 0, ttl, 6, src, dst)
    assert (
        stcp.sport,
        stcp.dport,
        stcp.seq,
        stcp.ack,
        stcp.reserved << 9 | int(stcp.flags),
        stcp.window,
        stcp.urgptr,
    ) == (sport, dport, seq, ack, flags, window, urgent)
    assert stcp.dataofs == frame[46] >> 4
    # scapy stops at an EOL, as netemu does; emission pads with EOL bytes.
    expected = [scapy_option(o) for o in options]
    assert stcp.options[: len(expected)] == expected
    assert all(o == ("EOL", None) for o in stcp.options[len(expected) :])
    assert raw(stcp.payload) == payload
    assert_checksums_agree(frame)

    # netemu reads its own frame back, the fast path agreeing with the general one.
    f = parse_frame(frame)
    assert f.tcp.options[: len(options)] == options
    assert (f.tcp.src_port, f.tcp.seq, f.tcp.ack, f.tcp.flags, f.tcp.payload) == (
        sport,
        seq,
        ack,
        flags,
        payload,
    )
    assert f.emit() == frame
    assert_fast_equals_general(frame)


# --- TCP: scapy builds, netemu parses ---------------------------------------------------


@st.composite
def scapy_options(draw: st.DrawFn) -> list:
    """A scapy option list; after an EOL come more options, which are padding to both."""
    options, _ = draw(option_lists(allow_eol=False, budget=39))
    listed = [scapy_option(o) for o in options]
    if draw(st.booleans()):
        cut = draw(st.integers(0, len(listed)))
        listed.insert(cut, ("EOL", None))
    return listed


@CHECKS
@given(
    src_mac=macs,
    dst_mac=macs,
    src=ips,
    dst=ips,
    ttl=u8,
    tos=u8,
    ident=u16,
    ip_flags=st.sampled_from(["", "DF", "evil", "DF+evil"]),
    sport=u16,
    dport=u16,
    seq=u32,
    ack=u32,
    flags=st.integers(0, 0xFFF),
    window=u16,
    urgent=u16,
    options=scapy_options(),
    payload=st.binary(max_size=80),
)
def test_scapy_tcp_frames_parsed_by_netemu(
    src_mac,
    dst_mac,
    src,
    dst,
    ttl,
    tos,
    ident,
    ip_flags,
    sport,
    dport,
    seq,
    ack,
    flags,
    window,
    urgent,
    options,
    payload,
) -> None:
    pkt = (
        Ether(src=src_mac, dst=dst_mac)
        / IP(src=src, dst=dst, ttl=ttl, tos=tos, id=ident, flags=ip_flags)
        / TCP(
            sport=sport,
            dport=dport,
            seq=seq,
            ack=ack,
            reserved=flags >> 9,
            flags=flags & 0x1FF,
            window=window,
            urgptr=urgent,
            options=options,
        )
    )
    if payload:
        pkt = pkt / Raw(payload)
    frame = raw(pkt)
    dissected = Ether(frame)
    sip, stcp = dissected[IP], dissected[TCP]

    f = parse_frame(frame)
    assert (f.eth.dst, f.eth.src, f.eth.ethertype) == (dst_mac, src_mac, 0x0800)
    ip, tcp = f.ip, f.tcp
    assert (
        ip.src,
        ip.dst,
        ip.protocol,
        ip.ttl,
        ip.tos,
        ip.identification,
        ip.flags,
        ip.fragment_offset,
        ip.options,
        ip.checksum,
        ip.total_length,
    ) == (src, dst, 6, ttl, tos, ident, int(sip.flags), 0, b"", sip.chksum, sip.len)
    assert (
        tcp.src_port,
        tcp.dst_port,
        tcp.seq,
        tcp.ack,
        tcp.flags,
        tcp.window,
        tcp.urgent,
        tcp.checksum,
        tcp.payload,
    ) == (sport, dport, seq, ack, flags, window, urgent, stcp.chksum, payload)
    assert [scapy_option(o) for o in tcp.options] == stcp.options
    assert f.trailer == b""

    # Byte-identical out again: as parsed, and from records with checksums recomputed.
    assert f.emit() == frame
    ip.checksum = tcp.checksum = None
    assert build_tcp_frame(src_mac, dst_mac, ip, tcp) == frame
    assert_fast_equals_general(frame)


# --- TCP: an option of bad length, scapy builds, both dissect --------------------------


@st.composite
def bad_option_areas(draw: st.DrawFn) -> tuple[tuple, bytes]:
    """(options, option area): the options, then one whose length byte is missing,
    below 2 or past the area's end, and junk to the area's end (a multiple of 4)."""
    options, _ = draw(option_lists(allow_eol=False, budget=39))
    good = b"".join(o.emit() for o in options)
    size = 4 * draw(st.integers(len(good) // 4 + 1, 10))
    left = size - len(good)
    kind = draw(st.integers(2, 255))
    if left == 1:
        return options, good + bytes((kind,))
    length = draw(st.one_of(st.sampled_from([0, 1]), st.integers(left + 1, 255)))
    return options, good + bytes((kind, length)) + draw(
        st.binary(min_size=left - 2, max_size=left - 2)
    )


@CHECKS
@given(
    src=ips,
    dst=ips,
    seq=u32,
    ack=u32,
    flags=st.integers(0, 0x1FF),
    window=u16,
    area=bad_option_areas(),
    payload=st.binary(max_size=40),
)
def test_bad_length_option_read_up_to_as_scapy_reads_it(
    src, dst, seq, ack, flags, window, area, payload
) -> None:
    # An option of bad length ends netemu's option list, as it ends Linux's
    # (tcp_parse_options), and the segment is kept: scapy reads the options before it
    # the same way and dissects an option of the same kind next (it reads on, with a
    # length of at least 2; Linux and netemu do not). The bytes go back out unchanged.
    options, area = area
    pkt = (
        Ether(src=MAC_A, dst=MAC_B)
        / IP(src=src, dst=dst)
        / TCP(
            sport=1,
            dport=2,
            seq=seq,
            ack=ack,
            flags=flags,
            window=window,
            dataofs=5 + len(area) // 4,
        )
        / Raw(area + payload)
    )
    frame = raw(pkt)
    f = parse_frame(frame)  # scapy's checksums verify
    *head, bad = f.tcp.options
    assert tuple(head) == options and isinstance(bad, MalformedOption)
    assert bad.raw == area[len(b"".join(o.emit() for o in options)) :]
    assert (f.tcp.seq, f.tcp.ack, f.tcp.flags, f.tcp.window, f.tcp.payload) == (
        seq,
        ack,
        flags,
        window,
        payload,
    )
    dissected = Ether(frame)[TCP].options
    assert dissected[: len(options)] == [scapy_option(o) for o in options]
    name = dissected[len(options)][0]
    assert TCPOptions[1].get(name, name) == bad.kind
    assert f.emit() == frame
    assert_checksums_agree(frame)
    assert_fast_equals_general(frame)


# --- IPv4 options, fragments, Ethernet trailers --------------------------------------------

IP_OPTIONS = st.sampled_from(
    [
        b"\x01\x01\x01\x00",  # NOP NOP NOP EOL
        b"\x94\x04\x00\x00",  # router alert
        b"\x07\x07\x04\x00\x00\x00\x00\x00",  # record route, one slot, EOL
        b"\x01" * 40,
    ]
)


@CHECKS
@given(ip_options=IP_OPTIONS, opts=option_lists(), payload=st.binary(max_size=40))
def test_ipv4_options_both_ways(ip_options: bytes, opts, payload: bytes) -> None:
    options, padding = opts
    ip = IPv4Packet("198.18.0.1", "198.18.0.2", 6, identification=3, options=ip_options)
    seg = TcpSegment(1, 2, 3, 4, 0x18, 5, payload, options, padding=padding)
    frame = build_tcp_frame("02:00:00:00:00:01", "02:00:00:00:00:02", ip, seg)
    p = Ether(frame)
    assert p[IP].ihl == 5 + len(ip_options) // 4
    assert raw(p[IP])[20 : p[IP].ihl * 4] == ip_options
    assert (p[TCP].sport, raw(p[TCP].payload)) == (1, payload)
    assert_checksums_agree(frame, 20 + len(ip_options))

    # scapy builds the same options, netemu reads them back.
    pkt = (
        Ether(src=MAC_A, dst=MAC_B)
        / IP(src="1.2.3.4", dst="5.6.7.8", options=[IPOption(ip_options)])
        / TCP(options=[scapy_option(o) for o in options])
        / Raw(payload or b"x")
    )
    built = raw(pkt)
    f = parse_frame(built)
    assert f.ip.options == ip_options
    assert f.tcp is not None and f.tcp.payload == (payload or b"x")
    assert f.emit() == built
    assert_fast_equals_general(built)


@CHECKS
@given(mf=st.booleans(), offset=st.integers(0, 0x1FFF), payload=st.binary(max_size=60))
def test_fragments_recognised_not_decoded(mf: bool, offset: int, payload: bytes) -> None:
    if not mf and not offset:
        offset = 1
    # scapy's fragment of a TCP segment: netemu keeps the bytes, decodes no TCP.
    pkt = (
        Ether(src=MAC_A, dst=MAC_B)
        / IP(src="1.2.3.4", dst="5.6.7.8", flags="MF" if mf else 0, frag=offset, proto=6)
        / Raw(raw(TCP(sport=80, dport=81) / payload))
    )
    frame = raw(pkt)
    f = parse_frame(frame)
    assert f.ip.is_fragment and f.tcp is None
    assert (bool(f.ip.flags & 1), f.ip.fragment_offset) == (mf, offset)
    assert f.ip.payload == raw(pkt[Raw])
    assert f.emit() == frame

    # netemu's fragment, dissected by scapy.
    ip = IPv4Packet("1.2.3.4", "5.6.7.8", 6, payload, flags=1 if mf else 0, fragment_offset=offset)
    frame = Frame(EthernetFrame("02:00:00:00:00:02", "02:00:00:00:00:01", 0x0800), ip=ip).emit()
    p = Ether(frame)
    assert (int(p[IP].flags) & 1, p[IP].frag) == (int(mf), offset)
    assert parse_frame(frame).tcp is None


@CHECKS
@given(
    trailer=st.binary(min_size=1, max_size=30), opts=option_lists(), payload=st.binary(max_size=10)
)
def test_ethernet_trailer_preserved(trailer: bytes, opts, payload: bytes) -> None:
    options, _ = opts
    pkt = (
        Ether(src=MAC_A, dst=MAC_B)
        / IP(src="1.2.3.4", dst="5.6.7.8")
        / TCP(options=[scapy_option(o) for o in options])
        / Raw(payload or b"p")
    )
    frame = raw(pkt) + trailer
    assert raw(Ether(frame)[Padding]) == trailer
    f = parse_frame(frame)
    assert f.trailer == trailer
    assert f.emit() == frame
    assert_fast_equals_general(frame)


# --- ARP and ICMP echo -----------------------------------------------------------------


@CHECKS
@given(
    op=st.sampled_from([1, 2]),
    smac=macs,
    sip=ips,
    tmac=macs,
    tip=ips,
    trailer=st.sampled_from([b"", bytes(18)]),
)
def test_arp_both_ways(op: int, smac: str, sip: str, tmac: str, tip: str, trailer: bytes) -> None:
    arp = ArpPacket(op, smac, sip, tmac, tip)
    frame = Frame(EthernetFrame("ff:ff:ff:ff:ff:ff", smac, 0x0806), arp=arp, trailer=trailer).emit()
    a = Ether(frame)[ARP]
    assert (a.op, a.hwsrc, a.psrc, a.hwdst, a.pdst) == (op, smac, sip, tmac, tip)
    assert (a.hwtype, a.ptype, a.hwlen, a.plen) == (1, 0x0800, 6, 4)

    built = (
        raw(
            Ether(src=smac, dst="ff:ff:ff:ff:ff:ff")
            / ARP(op=op, hwsrc=smac, psrc=sip, hwdst=tmac, pdst=tip)
        )
        + trailer
    )
    f = parse_frame(built)
    assert f.arp == arp and f.trailer == trailer
    assert f.emit() == built


@CHECKS
@given(
    echo_type=st.sampled_from([0, 8]),
    ident=u16,
    seq=u16,
    payload=st.binary(max_size=64),
    src=ips,
    dst=ips,
)
def test_icmp_echo_both_ways(
    echo_type: int, ident: int, seq: int, payload: bytes, src: str, dst: str
) -> None:
    ip = IPv4Packet(src, dst, 1, identification=ident)
    echo = IcmpEcho(echo_type, 0, ident, seq, payload)
    frame = Frame(
        EthernetFrame("02:00:00:00:00:02", "02:00:00:00:00:01", 0x0800), ip=ip, icmp=echo
    ).emit()
    i = Ether(frame)[ICMP]
    assert (i.type, i.code, i.id, i.seq, raw(i.payload)) == (echo_type, 0, ident, seq, payload)
    body = bytearray(frame[34:])
    body[2:4] = b"\x00\x00"
    assert checksum(bytes(body)) == i.chksum

    built = raw(
        Ether(src=MAC_A, dst=MAC_B)
        / IP(src=src, dst=dst)
        / ICMP(type=echo_type, id=ident, seq=seq)
        / Raw(payload)
    )
    f = parse_frame(built)
    assert (f.icmp.type, f.icmp.identifier, f.icmp.sequence, f.icmp.payload) == (
        echo_type,
        ident,
        seq,
        payload,
    )
    assert f.emit() == built
    f.icmp.checksum = None
    f.ip.checksum = None
    assert f.emit() == built
