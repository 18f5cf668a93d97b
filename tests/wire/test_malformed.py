"""Every reason a parser gives for refusing bytes: only MalformedPacket, and the right one;
and a TCP option of bad length, which ends the option list but refuses nothing."""

from __future__ import annotations

import re

import pytest

from netemu.wire import (
    NOP,
    BadChecksum,
    MalformedOption,
    MalformedPacket,
    MssOption,
    TimestampOption,
    build_tcp_frame,
    parse_frame,
    pseudo_header_sum,
)
from netemu.wire.arp import ArpPacket
from netemu.wire.ethernet import EthernetFrame
from netemu.wire.frame import _parse_frame_general, parse_tcp_frame
from netemu.wire.icmp import IcmpEcho
from netemu.wire.ipv4 import IPv4Packet
from netemu.wire.tcp import TcpSegment, WindowScaleOption, parse_options

from .frames import IP_A, IP_B, arp_frame, icmp_frame, syn_frame, tcp_frame

ETH = 14
IP = 34  # start of the TCP header in a frame without IPv4 options


def raises(exc: type[Exception], pattern: str, fn, *args) -> MalformedPacket:
    with pytest.raises(exc) as info:
        fn(*args)
    assert isinstance(info.value, MalformedPacket)
    assert re.search(pattern, info.value.reason), info.value.reason
    return info.value


def patched(buf: bytes, offset: int, new: bytes) -> bytes:
    return buf[:offset] + new + buf[offset + len(new) :]


def refix_ip_checksum(buf: bytes) -> bytes:
    """Recompute the IPv4 header checksum after a deliberate header change."""
    from netemu.wire.checksum import internet_checksum

    hlen = (buf[ETH] & 0xF) * 4
    hdr = bytearray(buf[ETH : ETH + hlen])
    hdr[10:12] = b"\x00\x00"
    hdr[10:12] = internet_checksum(bytes(hdr)).to_bytes(2, "big")
    return buf[:ETH] + bytes(hdr) + buf[ETH + hlen :]


# --- truncation ------------------------------------------------------------------


def test_truncated_ethernet() -> None:
    raises(MalformedPacket, r"truncated Ethernet header \(13 bytes\)", parse_frame, bytes(13))
    raises(MalformedPacket, r"truncated Ethernet header \(0 bytes\)", parse_frame, b"")
    raises(MalformedPacket, r"truncated Ethernet header", EthernetFrame.parse, bytes(5))


def test_truncated_ipv4_header() -> None:
    frame = tcp_frame()
    raises(MalformedPacket, r"truncated IPv4 header \(19 bytes\)", parse_frame, frame[: ETH + 19])
    raises(MalformedPacket, r"truncated IPv4 header", IPv4Packet.parse, frame[ETH : ETH + 10])


def test_truncated_ipv4_packet_is_total_length_mismatch() -> None:
    frame = tcp_frame()
    raises(
        MalformedPacket, r"total length \d+ exceeds the \d+ bytes received", parse_frame, frame[:-1]
    )


def test_truncated_tcp_header() -> None:
    raises(MalformedPacket, r"truncated TCP header \(19 bytes\)", TcpSegment.parse, bytes(19))
    # In a frame: IPv4 total length says 39, so only 19 bytes of TCP.
    frame = tcp_frame((), b"")
    short = refix_ip_checksum(patched(frame, ETH + 2, (39).to_bytes(2, "big")))[: ETH + 39]
    raises(MalformedPacket, r"truncated TCP header \(19 bytes\)", parse_frame, short)


def test_truncated_arp_and_icmp() -> None:
    raises(MalformedPacket, r"truncated ARP packet \(27 bytes\)", ArpPacket.parse, bytes(27))
    raises(MalformedPacket, r"truncated ARP packet", parse_frame, arp_frame()[: ETH + 20])
    raises(MalformedPacket, r"truncated ICMP header \(7 bytes\)", IcmpEcho.parse, bytes(7))


# --- IPv4 ---------------------------------------------------------------------------


def test_bad_ip_version() -> None:
    frame = patched(tcp_frame(), ETH, b"\x65")
    raises(MalformedPacket, r"IP version 6, not 4", parse_frame, frame)


@pytest.mark.parametrize("ihl", [0, 1, 4])
def test_bad_ihl(ihl: int) -> None:
    frame = patched(tcp_frame(), ETH, bytes([0x40 | ihl]))
    raises(MalformedPacket, rf"bad IHL {ihl}$", parse_frame, frame)


def test_ihl_overruns_buffer() -> None:
    buf = patched(tcp_frame()[ETH : ETH + 40], 0, b"\x4f")  # 60-byte header, 40 bytes here
    raises(MalformedPacket, r"IHL 15 overruns the 40 bytes received", IPv4Packet.parse, buf)


def test_total_length_shorter_than_header() -> None:
    frame = refix_ip_checksum(patched(tcp_frame(), ETH + 2, (19).to_bytes(2, "big")))
    raises(MalformedPacket, r"total length 19 shorter than header 20", parse_frame, frame)


def test_total_length_exceeds_received() -> None:
    frame = tcp_frame()
    total = len(frame) - ETH
    longer = refix_ip_checksum(patched(frame, ETH + 2, (total + 1).to_bytes(2, "big")))
    raises(
        MalformedPacket,
        rf"total length {total + 1} exceeds the {total} bytes received",
        parse_frame,
        longer,
    )


def test_bad_ipv4_checksum() -> None:
    frame = tcp_frame()
    bad = patched(frame, ETH + 10, bytes([frame[ETH + 10] ^ 0x40]))
    err = raises(BadChecksum, r"bad IPv4 header checksum", parse_frame, bad)
    assert isinstance(err, MalformedPacket)
    parse_frame(bad, verify=False)  # offloaded: not checked


def test_unsupported_arp() -> None:
    frame = arp_frame()
    raises(
        MalformedPacket,
        r"unsupported ARP \(htype 6,",
        parse_frame,
        patched(frame, ETH, b"\x00\x06"),
    )
    raises(MalformedPacket, r"hlen 8, plen 4", parse_frame, patched(frame, ETH + 4, b"\x08"))


# --- TCP ------------------------------------------------------------------------------


@pytest.mark.parametrize("doff", [0, 1, 4])
def test_bad_data_offset(doff: int) -> None:
    frame = patched(tcp_frame(), IP + 12, bytes([doff << 4]))
    raises(MalformedPacket, rf"bad TCP data offset {doff}$", parse_frame, frame, False)


def test_data_offset_overruns_segment() -> None:
    frame = patched(tcp_frame((), b""), IP + 12, b"\xf0")  # 60-byte header in 20 bytes
    raises(
        MalformedPacket,
        r"TCP data offset 15 overruns the 20-byte segment",
        parse_frame,
        frame,
        False,
    )
    raises(MalformedPacket, r"TCP data offset 15 overruns", TcpSegment.parse, frame[IP:])


def test_bad_tcp_checksum() -> None:
    frame = tcp_frame()
    bad = patched(frame, len(frame) - 1, bytes([frame[-1] ^ 1]))  # a payload bit
    raises(BadChecksum, r"bad TCP checksum", parse_frame, bad)
    assert parse_frame(bad, verify=False).tcp.payload[-1] == frame[-1] ^ 1
    seg = bad[IP:]
    raises(
        BadChecksum,
        r"bad TCP checksum",
        TcpSegment.parse,
        seg,
        pseudo_header_sum(IP_A, IP_B, 6, len(seg)),
    )
    TcpSegment.parse(seg)  # no pseudo-header sum: not verified


def test_bad_icmp_checksum() -> None:
    frame = icmp_frame()
    bad = patched(frame, len(frame) - 1, bytes([frame[-1] ^ 1]))
    raises(BadChecksum, r"bad ICMP checksum", parse_frame, bad)
    assert parse_frame(bad, verify=False).icmp is not None


# --- TCP options ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("opts", "before", "pattern"),
    [
        (b"\x02", (), r"kind 2 truncated \(no length byte\)"),
        (b"\x01\x01\x01\x08", (NOP, NOP, NOP), r"kind 8 truncated \(no length byte\)"),
        (b"\x02\x00", (), r"kind 2 has bad length 0$"),
        (b"\x08\x01", (), r"kind 8 has bad length 1$"),
        (b"\x02\x04\x05\xb4\xfe\x01\x01\x01", (MssOption(1460),), r"kind 254 has bad length 1$"),
        (b"\x02\x05\x05\xb4", (), r"kind 2 length 5 overruns the header \(4 bytes left\)"),
        (b"\x01\x08\x0a\x00", (NOP,), r"kind 8 length 10 overruns the header \(3 bytes left\)"),
        (b"\x05\x0a" + bytes(6), (), r"kind 5 length 10 overruns the header"),
        (b"\xfe\xff" + bytes(6), (), r"kind 254 length 255 overruns the header"),
        (
            b"\x01\x01\x08\x0a" + bytes(8) + b"\x08\x0a\x00\x00",
            (NOP, NOP, TimestampOption(0, 0)),
            r"kind 8 length 10 overruns the header \(4 bytes left\)",
        ),
    ],
)
def test_rfc9293_option_with_bad_length_stops_parsing_keeps_segment(
    opts: bytes, before: tuple, pattern: str
) -> None:
    # RFC 9293 §3.1 (MUST-7): "A TCP implementation MUST be prepared to handle an illegal
    # option length (e.g., zero)". Linux stops reading options at it and keeps the segment
    # (tcp_parse_options: "silly options", "don't parse partial options"). So the codec
    # keeps the options before it, then the rest of the area verbatim as a MalformedOption
    # saying why, and the frame parses (issue 17, 7: it raised MalformedPacket, and the
    # host and `netemu show` lost the whole frame).
    parsed, padding = parse_options(opts, 0, len(opts))
    *head, bad = parsed
    assert tuple(head) == before and padding == b""
    assert isinstance(bad, MalformedOption) and re.search(pattern, bad.reason), bad
    assert bad.raw == opts[len(b"".join(o.emit() for o in before)) :] and bad.kind == bad.raw[0]
    # The same option area inside a frame (NOPs in front to fill it to a multiple of 4),
    # through the fast path's dispatch, the lean decoder and the general path: one
    # segment, its payload, byte-identical out again.
    fill = -len(opts) % 4
    opts = b"\x01" * fill + opts
    frame = bytearray(tcp_frame((), b"data"))
    frame[IP + 12] = (5 + len(opts) // 4) << 4
    frame[IP + 20 : IP + 20] = opts
    frame[ETH + 2 : ETH + 4] = (len(frame) - ETH).to_bytes(2, "big")
    frame = refix_ip_checksum(bytes(frame))
    f = parse_frame(frame, False)
    assert f.tcp.options == (NOP,) * fill + parsed and f.tcp.payload == b"data"
    assert f.tcp.malformed_option == bad
    assert f == _parse_frame_general(frame, False)
    assert parse_tcp_frame(frame, False) == (f.ip.src, f.ip.dst, f.tcp)
    assert f.emit() == frame
    assert TcpSegment.parse(frame[IP:]) == f.tcp


def test_segment_with_malformed_option_emits_it_verbatim() -> None:
    # A hand-made segment (a scenario's or a test's) carries such an option as it is.
    seg = TcpSegment(1, 2, 3, 4, 0x10, 5, b"", (NOP, NOP, MalformedOption(b"\xfe\x01")))
    raw = seg.emit(IP_A, IP_B)
    assert raw[12] >> 4 == 6 and raw[20:24] == b"\x01\x01\xfe\x01"
    back = TcpSegment.parse(raw, pseudo_header_sum(IP_A, IP_B, 6, len(raw)))
    assert back.options == seg.options and back.malformed_option.reason.endswith("length 1")


def test_options_after_eol_are_padding_not_errors() -> None:
    opts, padding = parse_options(b"\x01\x00\x02\xff", 0, 4)
    assert [type(o).__name__ for o in opts] == ["NopOption", "EolOption"]
    assert padding == b"\x02\xff"


def test_known_kind_with_unexpected_length_is_raw() -> None:
    from netemu.wire import RawOption

    area = (
        b"\x02\x03\x05"
        b"\x03\x04\x05\x06"
        b"\x04\x03\x00"
        b"\x05\x06\x00\x00\x00\x01"
        b"\x08\x06\x00\x00\x00\x02"
        b"\x03\x03\x0e"
    )
    opts, padding = parse_options(area, 0, len(area))
    assert opts == (
        RawOption(2, b"\x05"),
        RawOption(3, b"\x05\x06"),
        RawOption(4, b"\x00"),
        RawOption(5, b"\x00\x00\x00\x01"),
        RawOption(8, b"\x00\x00\x00\x02"),
        WindowScaleOption(14),
    )
    assert padding == b""


def test_valid_frames_parse() -> None:
    for frame in (tcp_frame(), syn_frame(), arp_frame(), icmp_frame()):
        parse_frame(frame)


def test_rfc9293_option_with_bad_length_segment_in_netemu_show(tmp_path) -> None:
    # Such a segment parses, so `netemu show` draws it (issue 17, 7: it vanished, counted
    # among the frames that are not TCP), tagged "[bad opt]" as tcpdump tags it; the
    # HTML tooltip says why. The inferred states follow Linux: a FIN whose bad option
    # starts 18 or more bytes before the end of the option area is dropped unread
    # (tcp.dropped_unread), so CLOSE-WAIT comes with the clean FIN after it.
    from netemu.trace.infer import show, trace_from_pcap
    from netemu.trace.pcap import write_pcap_frames

    a, b = ("198.18.0.1", 40000), ("198.18.0.2", 8080)

    def frame(src, dst, flags, seq, ack, payload=b"", tail=b""):
        seg = TcpSegment(src[1], dst[1], seq, ack, flags, 502, payload)
        raw = bytearray(seg.emit(src[0], dst[0]))
        raw[20:20] = tail
        raw[12] = (20 + len(tail)) << 2
        seg = TcpSegment.parse(bytes(raw))
        seg.checksum = None
        mac = ("02:00:00:00:00:01", "02:00:00:00:00:02")
        return build_tcp_frame(
            *(mac if src == a else mac[::-1]), IPv4Packet(src[0], dst[0], 6), seg
        )

    near = b"\x01\x01\x01\x01\xfe\x01\x00\x00"  # the bad option 4 bytes before the end
    far = b"\xfe\x01" + bytes(18)  # 20 bytes before it
    frames = [
        frame(a, b, 0x02, 1000, 0),
        frame(b, a, 0x12, 5000, 1001),
        frame(a, b, 0x10, 1001, 5001),
        frame(a, b, 0x18, 1001, 5001, b"hello", near),
        frame(b, a, 0x10, 5001, 1006),
        frame(a, b, 0x11, 1006, 5001, b"", far),
        frame(a, b, 0x11, 1006, 5001),
    ]
    path = tmp_path / "bad.pcap"
    write_pcap_frames(path, [(1.0 + i / 10, f) for i, f in enumerate(frames)])
    text = show(path, tmp_path / "bad.html")
    assert "PSH+ACK seq=1 ack=1 len=5 win=502 [bad opt]" in text
    assert "FIN+ACK seq=6 ack=1 len=0 win=502 [bad opt]" in text
    assert "kind 254 has bad length 1: options stop here" in (tmp_path / "bad.html").read_text()
    trace = trace_from_pcap(path)
    server = [(round(s.t, 1), s.new) for s in trace.states if s.local == b]
    assert (0.6, "CLOSE-WAIT") in server and (0.5, "CLOSE-WAIT") not in server  # frame #7
