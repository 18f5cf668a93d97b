"""Whole frames: Ethernet + (ARP | IPv4 + (TCP | ICMP echo | raw payload) |
IPv6 + (TCP | ICMPv6 | raw payload))."""

from __future__ import annotations

import struct
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from typing import ClassVar, Literal, cast

from . import _codegen
from .addr import _ADDR_SUM, _IP6_PAIR, _IP_PAIR, _MAC_STR, _Interned, ip_to_bytes, ip_to_int
from .arp import ARP_LEN, ArpPacket
from .checksum import SHORT_SUM_BYTES, word_sum_mod
from .errors import MalformedPacket
from .ethernet import (
    ETH_HEADER,
    ETH_HEADER_LEN,
    ETHERTYPE_ARP,
    ETHERTYPE_IPV4,
    ETHERTYPE_IPV6,
    EthernetFrame,
    eth_header,
)
from .icmp import IcmpEcho
from .icmp6 import NH_ICMPV6, Icmp6
from .ipv4 import PROTO_ICMP, PROTO_TCP, IPv4Packet
from .ipv6 import IPv6Packet, ipv6_to_bytes
from .tcp import (
    OPTION_LAYOUTS,
    OptionLayout,
    TcpSegment,
    _parse_options_general,
    option_layout,
    warm_option_decoders,
)


@dataclass(slots=True)
class Frame:
    """A parsed frame. The decoded layers are set where the frame carries them
    (``ip`` for IPv4, ``ip6`` for IPv6; ``tcp`` over either); ``eth.payload`` holds
    the network-layer bytes only when no layer below was decoded (another
    EtherType). ``trailer`` is link padding after the IPv4 total length, the IPv6
    payload length or the ARP packet (Ethernet frames are at least 60 bytes)."""

    eth: EthernetFrame
    arp: ArpPacket | None = None
    ip: IPv4Packet | None = None
    tcp: TcpSegment | None = None
    icmp: IcmpEcho | None = None
    trailer: bytes = b""
    ip6: IPv6Packet | None = None
    icmp6: Icmp6 | None = None

    @property
    def src_ip(self) -> str | None:
        """The source address of either family (None: not an IP frame)."""
        ip = self.ip if self.ip is not None else self.ip6
        return None if ip is None else ip.src

    @property
    def dst_ip(self) -> str | None:
        ip = self.ip if self.ip is not None else self.ip6
        return None if ip is None else ip.dst

    def emit(self) -> bytes:
        """Exact bytes; decoded layers take precedence over ``eth.payload``."""
        head = self.eth.header()
        if self.arp is not None:
            return head + self.arp.emit() + self.trailer
        if self.ip is not None:
            ip = self.ip
            if self.tcp is not None:
                l4 = self.tcp.emit(ip.src, ip.dst)
            elif self.icmp is not None:
                l4 = self.icmp.emit()
            else:
                l4 = ip.payload
            return head + ip.header(len(l4)) + l4 + self.trailer
        if self.ip6 is not None:
            ip6 = self.ip6
            if self.tcp is not None:
                l4 = self.tcp.emit(ip6.src, ip6.dst)
            elif self.icmp6 is not None:
                l4 = self.icmp6.emit(ip6.src, ip6.dst)
            else:
                l4 = ip6.payload
            return head + ip6.header(len(l4)) + l4 + self.trailer
        return head + self.eth.payload


# The fast path: regular Ethernet + IPv4 (no IP options, not a fragment) + TCP
# frames, decoded by generated functions, one per TCP option layout
# (tcp.OPTION_LAYOUTS, plus none and "any"). parse_frame checks the EtherType,
# version/IHL and protocol bytes and picks the decoders by TCP data offset; each
# does one unpack of the three headers and the options, checks the rest of the
# structure, verifies both checksums with big-int sums (see checksum.py), and
# builds the records (see _codegen.py). A decoder returns None when the options
# are not its layout; anything irregular, including every error, goes to the
# general path, which owns the validation messages. The same decoders come in a
# lean build for parse_tcp_frame: the segment and the addresses only (no
# Ethernet, IPv4 or Frame record, no copy of the IPv4 payload), and None for
# anything irregular.
# The Ethernet record of IPv4 frames from one MAC address to another (frozen, so
# shared): the 12 address bytes -> the record, one lookup a frame.
_ETH_IPV4: _Interned[bytes, EthernetFrame] = _Interned(
    lambda macs: EthernetFrame(_MAC_STR[macs[:6]], _MAC_STR[macs[6:]], ETHERTYPE_IPV4)
)
_ETH_IP_TCP = "!12s3xBHHHBxH8sHHIIHHHH"  # 14 + 20 + 20 bytes, addresses as bytes
_IP_TCP = "!15xBHHHBxH8sHHIIHHHH"  # the same without the MACs (lean decoders)
_FRAME_DECODER = """
def decode(buf, n, verify):
    {length_check}({macs}tos, total, ident, frag, ttl, ipsum, ips,
     sport, dport, seq, ack, off_flags, win, csum, urg{names}) = _unpack_from(buf)
    end = 14 + total
    {hlen_line}if frag & 0x3FFF or not {hlen} <= end <= n:
        return _general(buf, verify)
    {layout_check}ip_src, ip_dst, addrs = _IP_PAIR[ips]
    {seg_line}if verify:
        # The IPv4 header's word sum from the fields just unpacked (0x4506: version,
        # IHL and protocol), then the segment's, plus the pseudo-header's (addresses,
        # protocol, TCP length).
        if (0x4506 + tos + total + ident + frag + (ttl << 8) + ipsum + addrs) % 0xFFFF:
            return _general(buf, verify)
        if ({seg_sum} + addrs + total - 14) % 0xFFFF:
            return _general(buf, verify)
    {options_code}
    {records}
    return {result}
"""


# decode(buf, len(buf), verify): the frame (or, lean, the addresses and segment), or
# None when the frame is not the decoder's layout.
FrameDecoder = Callable[[bytes, int, bool], "Frame | None"]
TcpFrameDecoder = Callable[[bytes, int, bool], "tuple[str, str, TcpSegment] | None"]
_Decoder = Callable[[bytes, int, bool], object]


def _compile_frame_decoder(layout: OptionLayout | None, lean: bool = False) -> _Decoder:
    """A decoder for frames whose TCP options are ``layout`` (None: any options);
    ``lean``: one that returns ``(source IP, destination IP, segment)``."""
    hlen, code, fmt, namespace = _options_code(layout)
    records = _records_code(hlen, lean, code)
    src = _FRAME_DECODER.format(**code, records="\n    ".join(records))
    namespace = {
        **namespace,
        "_unpack_from": struct.Struct((_IP_TCP if lean else _ETH_IP_TCP) + fmt).unpack_from,
        "_general": _not_regular if lean else _parse_frame_general,
        "_parse_options_general": _parse_options_general,
        "_word_sum_mod": word_sum_mod,
        "_from_bytes": int.from_bytes,
        "_new": object.__new__,
        "_ETH_IPV4": _ETH_IPV4,
        "_IP_PAIR": _IP_PAIR,
        "IPv4Packet": IPv4Packet,
        "TcpSegment": TcpSegment,
        "Frame": Frame,
    }
    # Code built from the template above and tcp's layouts.
    return cast(_Decoder, _codegen.define(src, namespace, "decode"))


def _options_code(
    layout: OptionLayout | None,
) -> tuple[str, dict[str, str], str, dict[str, object]]:
    """The template's pieces that read the TCP options of ``layout`` (None: any
    options): the header length expression, the code, the options' struct format
    and the names the code uses."""
    if layout is None:
        code = {
            "length_check": "",
            "names": "",
            "hlen": "54 <= hlen",
            "hlen_line": "hlen = 34 + (off_flags >> 12 << 2)\n    ",
            "layout_check": "",
            # Every layout of this length has been tried (it is last in its bucket).
            "options_code": "options, padding = _parse_options_general(buf, 54, hlen)",
        }
        return "hlen", code, "", {}
    hlen = str(54 + layout.length)
    make = "".join(f"{line}\n    " for line in layout.make)
    # A first look at the layout's first kind byte turns most other layouts
    # away before the unpack.
    code = {
        "length_check": f"if n < {hlen}:\n        return _general(buf, verify)\n    "
        f"if buf[54] != {layout.first_kind}:\n        return None\n    "
        if layout.length
        else "",
        "names": "".join(f", {name}" for name in layout.names),
        "hlen": hlen,
        "hlen_line": "",
        "layout_check": f"if not ({layout.check}):\n        return None\n    "
        if layout.check
        else "",
        "options_code": f"{make}options = {layout.options}\n    padding = b''",
    }
    return hlen, code, layout.fmt, layout.namespace


def _records_code(hlen: str, lean: bool, code: dict[str, str]) -> list[str]:
    """The lines that build the decoded records (the segment; unless ``lean``, the
    IPv4 packet and the frame around it too); adds to ``code`` the template's pieces
    that differ between the two kinds of decoder."""
    tcp = _codegen.record(
        "tcp",
        TcpSegment,
        [
            "sport",
            "dport",
            "seq",
            "ack",
            "off_flags & 0x0FFF",
            "win",
            f"buf[{hlen}:end]",
            "options",
            "urg",
            "csum",
            "padding",
        ],
    )
    if lean:
        code.update(
            macs="",
            seg_line="",
            result="ip_src, ip_dst, tcp",
            seg_sum="_word_sum_mod(buf, 34, end)",
        )
        return tcp
    # The segment is copied for the IPv4 record anyway: a short one's word sum
    # is read from that copy (word_sum_mod's first case, inline: the remainder
    # first, so the small terms are added to a small integer; an odd length's
    # padding shifts the remainder, which is congruent).
    code.update(
        macs="macs, ",
        seg_line="seg = buf[34:end]\n    ",
        result="frame",
        seg_sum="((_from_bytes(seg, 'big') % 0xFFFF) << ((total & 1) << 3) "
        f"if total < {20 + SHORT_SUM_BYTES} else _word_sum_mod(buf, 34, end))",
    )
    return [
        "eth = _ETH_IPV4[macs]",
        *_codegen.record(
            "ip",
            IPv4Packet,
            [
                "ip_src",
                "ip_dst",
                "6",
                "seg",
                "ttl",
                "tos",
                "ident",
                "frag >> 13",
                "0",
                'b""',
                "ipsum",
            ],
        ),
        *tcp,
        *_codegen.record(
            "frame",
            Frame,
            ["eth", "None", "ip", "tcp", "None", 'buf[end:] if end < n else b""', "None", "None"],
        ),
    ]


def _not_regular(buf: bytes, verify: bool) -> None:
    return None


def _frame_decoders(doff: int, lean: bool) -> tuple[_Decoder, ...]:
    """The decoders to try, in order, for TCP data offset ``doff`` (5 to 15): its
    layouts, then any."""
    if doff == 5:
        return (_compile_frame_decoder(option_layout(""), lean),)
    return (
        *[
            _compile_frame_decoder(layout, lean)
            for layout in OPTION_LAYOUTS
            if layout.length == (doff - 5) * 4
        ],
        _compile_frame_decoder(None, lean),
    )


def _decoder_table(lean: bool = False) -> list[tuple[_Decoder, ...]]:
    """By TCP data offset (0 to 15), the decoders to try in order; each offset's are
    compiled when its first frame comes (_codegen.lazy)."""
    table: list[tuple[_Decoder, ...]] = [()] * 16
    for doff in range(5, 16):
        table[doff] = _codegen.lazy(table, doff, partial(_frame_decoders, doff, lean))
    return table


def parse_frame(buf: bytes, verify: bool = True) -> Frame:
    """Parse a frame from the wire. ``verify=False`` skips checksum checks (for
    frames whose checksum the sender left to offload: PACKET_AUXDATA says so)."""
    if buf.__class__ is not bytes:
        buf = bytes(buf)
    n = len(buf)
    # IPv4 without options carrying TCP: the decoders rely on these four bytes.
    if n >= 54 and buf[12] == 8 and buf[13] == 0 and buf[14] == 0x45 and buf[23] == 6:
        for decode in _FRAME_DECODERS[buf[46] >> 4]:
            frame = decode(buf, n, verify)
            if frame is not None:
                return frame
    return _parse_frame_general(buf, verify)


def parse_tcp_frame(buf: bytes, verify: bool = True) -> tuple[str, str, TcpSegment] | None:
    """``(source IP, destination IP, segment)`` of a regular Ethernet + IPv4 + TCP
    frame (no IP options, not a fragment, checksums verified unless ``verify`` is
    False), the segment exactly as ``parse_frame`` decodes it; None for any other
    frame, which ``parse_frame`` then tells apart (it owns every error). For a
    receive path that needs no Ethernet or IPv4 record."""
    if buf.__class__ is not bytes:
        buf = bytes(buf)
    n = len(buf)
    if n >= 54 and buf[12] == 8 and buf[13] == 0 and buf[14] == 0x45 and buf[23] == 6:
        for decode in _TCP_DECODERS[buf[46] >> 4]:
            got = decode(buf, n, verify)
            if got is not None:
                return got
    elif n >= 74 and buf[12] == 0x86 and buf[13] == 0xDD and buf[20] == 6 and buf[14] >> 4 == 6:
        return _tcp6(buf, n, verify)
    return None


def _tcp6(buf: bytes, n: int, verify: bool) -> tuple[str, str, TcpSegment] | None:
    """``parse_tcp_frame`` for IPv6 with TCP straight after the fixed header."""
    plen = buf[18] << 8 | buf[19]
    end = 54 + plen
    if plen < 20 or end > n:
        return None
    src, dst, addrs = _IP6_PAIR[buf[22:54]]
    # The checksum with the pseudo-header (addresses, TCP length, next header 6), the
    # segment's word sum read in pieces (word_sum_mod) as the IPv4 decoders read it.
    if verify and (word_sum_mod(buf, 54, end) + addrs + plen + 6) % 0xFFFF:
        return None
    try:
        seg = TcpSegment.parse(buf[54:end])
    except MalformedPacket:
        return None
    return src, dst, seg


def _parse_frame_general(buf: bytes, verify: bool) -> Frame:
    if len(buf) < ETH_HEADER_LEN:
        raise MalformedPacket(f"truncated Ethernet header ({len(buf)} bytes)")
    dst, src, et = ETH_HEADER.unpack_from(buf)
    if et == ETHERTYPE_IPV4:
        ip = IPv4Packet.parse(buf, verify, ETH_HEADER_LEN)
        frame = Frame(_ETH_IPV4[buf[:12]], None, ip)
        end = ETH_HEADER_LEN + (buf[16] << 8 | buf[17])  # the IPv4 total length
        if len(buf) > end:
            frame.trailer = buf[end:]
        if not ip.is_fragment:  # fragments stay undecoded
            proto = ip.protocol
            if proto == PROTO_TCP:
                pseudo = None
                if verify:
                    pseudo = int.from_bytes(buf[26:34], "big") + PROTO_TCP + len(ip.payload)
                frame.tcp = TcpSegment.parse(ip.payload, pseudo)
            elif proto == PROTO_ICMP and ip.payload[:1] in (b"\x00", b"\x08"):
                frame.icmp = IcmpEcho.parse(ip.payload, verify)
        return frame
    if et == ETHERTYPE_IPV6:
        return _parse_ipv6(buf, verify)
    if et == ETHERTYPE_ARP:
        arp = ArpPacket.parse(buf[ETH_HEADER_LEN:])
        return Frame(
            EthernetFrame(_MAC_STR[dst], _MAC_STR[src], et),
            arp,
            trailer=buf[ETH_HEADER_LEN + ARP_LEN :],
        )
    return Frame(EthernetFrame(_MAC_STR[dst], _MAC_STR[src], et, buf[ETH_HEADER_LEN:]))


_ETH_IPV6: _Interned[bytes, EthernetFrame] = _Interned(
    lambda macs: EthernetFrame(_MAC_STR[macs[:6]], _MAC_STR[macs[6:]], ETHERTYPE_IPV6)
)


def _parse_ipv6(buf: bytes, verify: bool) -> Frame:
    """An Ethernet + IPv6 frame: the extension headers walked (ipv6.py), then TCP or
    ICMPv6 decoded unless the packet is a fragment (kept undecoded, as IPv4's are)."""
    ip6 = IPv6Packet.parse(buf, ETH_HEADER_LEN)
    frame = Frame(_ETH_IPV6[buf[:12]], ip6=ip6)
    plen = buf[18] << 8 | buf[19]
    end = ETH_HEADER_LEN + 40 + plen
    if plen and len(buf) > end:  # (a zero length: a jumbogram's or a TSO capture's)
        frame.trailer = buf[end:]
    if not ip6.is_fragment:
        nh = ip6.next_header
        if nh == PROTO_TCP:
            pseudo = None
            if verify:
                pseudo = _ADDR_SUM[ip6.src] + _ADDR_SUM[ip6.dst] + PROTO_TCP + len(ip6.payload)
            frame.tcp = TcpSegment.parse(ip6.payload, pseudo)
        elif nh == NH_ICMPV6:
            frame.icmp6 = Icmp6.parse(ip6.payload, ip6.src, ip6.dst, verify)
    return frame


_FRAME_DECODERS = cast("list[tuple[FrameDecoder, ...]]", _decoder_table())
_TCP_DECODERS = cast("list[tuple[TcpFrameDecoder, ...]]", _decoder_table(lean=True))


def warm_decoders() -> None:
    """Compile every decoder now (~6 ms) rather than on the first frame of its layout
    (up to ~1.3 ms then): for a run whose timing is judged to the millisecond (a .pkt
    script, packetdrill's 4 ms), before its clock starts."""
    for doff in range(5, 16):
        _FRAME_DECODERS[doff] = cast("tuple[FrameDecoder, ...]", _frame_decoders(doff, False))
        _TCP_DECODERS[doff] = cast("tuple[TcpFrameDecoder, ...]", _frame_decoders(doff, True))
    warm_option_decoders()


_ETH_IP = struct.Struct("!16sHHH2sH8s")  # as FrameHead.pack fills it (see its fields)


class FrameHead:
    """The Ethernet and IPv4 headers of TCP frames from one address pair to another,
    as ``build_tcp_frame`` writes them for ``IPv4Packet(src_ip, dst_ip, 6,
    identification=ident)`` (no options, DF, TTL 64, TOS 0): only the total
    length, the identification and the checksum change from frame to frame.
    ``TcpSegment.emit(src_ip, dst_ip, head, ident)`` packs them with the segment."""

    __slots__ = ("addrs", "dst_mac", "pseudo", "start", "word_sum")
    six: ClassVar[Literal[False]] = False  # (FrameHead6's is True)

    def __init__(self, src_mac: str, dst_mac: str, src_ip: str, dst_ip: str) -> None:
        self.dst_mac = dst_mac
        # The MACs, EtherType, version/IHL and TOS: 16 bytes.
        self.start = eth_header(dst_mac, src_mac, ETHERTYPE_IPV4) + b"\x45\x00"
        self.addrs = ip_to_bytes(src_ip) + ip_to_bytes(dst_ip)
        # The pseudo-header's addresses, and the IPv4 header's word sum without
        # the length and the identification (0x4000: DF; 0x4006: TTL, protocol).
        self.pseudo = ip_to_int(src_ip) + ip_to_int(dst_ip)
        self.word_sum = 0x4500 + 0x4000 + 0x4006 + self.pseudo

    def pack(self, total: int, ident: int) -> bytes:
        """The 34 header bytes for an IPv4 total length and identification."""
        # -(word sum) % 0xFFFF is the checksum field: the sum is never 0 here.
        return _ETH_IP.pack(
            self.start,
            total,
            ident,
            0x4000,
            b"\x40\x06",
            -(self.word_sum + total + ident) % 0xFFFF,
            self.addrs,
        )


_ETH_IP6 = struct.Struct("!18sH2s32s")  # as FrameHead6.pack fills it


class FrameHead6:
    """``FrameHead`` for IPv6: the Ethernet and IPv6 headers of TCP frames from one
    address pair to another, as ``build_tcp_frame`` writes them for
    ``IPv6Packet(src_ip, dst_ip, 6)`` (no extension headers, hop limit 64, traffic
    class and flow label 0): only the payload length changes from frame to frame."""

    __slots__ = ("addrs", "dst_mac", "pseudo", "start")
    six: ClassVar[Literal[True]] = True

    def __init__(self, src_mac: str, dst_mac: str, src_ip: str, dst_ip: str) -> None:
        self.dst_mac = dst_mac
        # The MACs, EtherType, version, traffic class and flow label: 18 bytes.
        self.start = eth_header(dst_mac, src_mac, ETHERTYPE_IPV6) + b"\x60\0\0\0"
        self.addrs = ipv6_to_bytes(src_ip) + ipv6_to_bytes(dst_ip)
        self.pseudo = _ADDR_SUM[src_ip] + _ADDR_SUM[dst_ip]  # the pseudo-header's addresses

    def pack(self, total: int, ident: int = 0) -> bytes:
        """The 54 header bytes for what would be an IPv4 total length (the TCP
        segment's length + 20, as ``TcpSegment.emit`` counts for either head);
        ``ident`` is IPv4's and ignored."""
        return _ETH_IP6.pack(self.start, total - 20, b"\x06\x40", self.addrs)


def build_tcp_frame(
    src_mac: str, dst_mac: str, ip: IPv4Packet | IPv6Packet, tcp: TcpSegment
) -> bytes:
    """Ethernet + IP + TCP bytes (``ip.payload`` is ignored; the segment is the payload)."""
    seg = tcp.emit(ip.src, ip.dst)
    if isinstance(ip, IPv6Packet):
        return eth_header(dst_mac, src_mac, ETHERTYPE_IPV6) + ip.header(len(seg)) + seg
    return eth_header(dst_mac, src_mac, ETHERTYPE_IPV4) + ip.header(len(seg)) + seg
