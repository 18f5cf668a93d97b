"""Whole frames: Ethernet + (ARP | IPv4 + (TCP | ICMP echo | raw payload))."""

from __future__ import annotations

import struct
from dataclasses import dataclass

from .addr import ip_to_str, mac_to_str
from .arp import ArpPacket
from .errors import MalformedPacket
from .ethernet import ETH_HEADER, ETH_HEADER_LEN, ETHERTYPE_ARP, ETHERTYPE_IPV4, EthernetFrame
from .icmp import IcmpEcho
from .ipv4 import PROTO_ICMP, PROTO_TCP, IPv4Packet
from .tcp import TcpSegment, parse_options


@dataclass(slots=True)
class Frame:
    """A parsed frame. The decoded layers are set where the frame carries them;
    ``eth.payload`` holds the network-layer bytes only when no layer below was
    decoded (another EtherType). ``trailer`` is link padding after the IPv4
    total length or the ARP packet (Ethernet frames are at least 60 bytes)."""

    eth: EthernetFrame
    arp: ArpPacket | None = None
    ip: IPv4Packet | None = None
    tcp: TcpSegment | None = None
    icmp: IcmpEcho | None = None
    trailer: bytes = b""

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
        return head + self.eth.payload


_ETH_IP_TCP = struct.Struct("!6s6sHBBHHHBBH4s4sHHIIHHHH")  # 14 + 20 + 20 bytes


def parse_frame(buf: bytes, verify: bool = True) -> Frame:
    """Parse a frame from the wire. ``verify=False`` skips checksum checks (for
    frames whose checksum the sender left to offload: PACKET_AUXDATA says so)."""
    # Fast path: a regular Ethernet + IPv4 (no options, not a fragment) + TCP frame
    # decoded with one unpack. Anything irregular, including every error, takes the
    # general path below, which owns the validation messages.
    n = len(buf)
    if n >= 54 and buf[14] == 0x45 and buf[23] == 6 and buf[12] == 8 and buf[13] == 0:
        (dst, src, _, _, tos, total, ident, frag, ttl, _, ipsum, sip, dip,
         sport, dport, seq, ack, off_flags, win, csum, urg) = _ETH_IP_TCP.unpack_from(buf)
        opt_end = 34 + (off_flags >> 12) * 4
        end = 14 + total
        if not frag & 0x3FFF and 54 <= opt_end <= end <= n and (not verify or (
                not int.from_bytes(buf[14:34], "big") % 0xFFFF
                and _tcp_sum_ok(buf, end))):
            if opt_end > 54:
                options, padding = parse_options(buf, 54, opt_end)
            else:
                options, padding = (), b""
            tcp = TcpSegment(sport, dport, seq, ack, off_flags & 0x0FFF, win, buf[opt_end:end],
                             options, urg, csum, padding)
            ip = IPv4Packet(ip_to_str(sip), ip_to_str(dip), 6, buf[34:end], ttl, tos, ident,
                            frag >> 13, 0, b"", ipsum)
            eth = EthernetFrame(mac_to_str(dst), mac_to_str(src), 0x0800)
            return Frame(eth, None, ip, tcp, None, buf[end:] if end < n else b"")
    return _parse_frame_general(buf, verify)


def _tcp_sum_ok(buf: bytes, end: int) -> bool:
    """TCP checksum over buf[34:end] and the pseudo-header (see checksum.verifies)."""
    v = int.from_bytes(buf[34:end], "big")
    if (end - 34) & 1:
        v <<= 8
    v += int.from_bytes(buf[26:34], "big") + 6 + end - 34
    return v % 0xFFFF == 0


def _parse_frame_general(buf: bytes, verify: bool) -> Frame:
    if len(buf) < ETH_HEADER_LEN:
        raise MalformedPacket(f"truncated Ethernet header ({len(buf)} bytes)")
    dst, src, et = ETH_HEADER.unpack_from(buf)
    eth = EthernetFrame(mac_to_str(dst), mac_to_str(src), et)
    if et == ETHERTYPE_IPV4:
        ip = IPv4Packet.parse(buf, verify, ETH_HEADER_LEN)
        frame = Frame(eth, None, ip)
        end = ETH_HEADER_LEN + (buf[16] << 8 | buf[17])  # the IPv4 total length
        if len(buf) > end:
            frame.trailer = bytes(buf[end:])
        if not ip.flags & 1 and not ip.fragment_offset:  # fragments stay undecoded
            proto = ip.protocol
            if proto == PROTO_TCP:
                pseudo = None
                if verify:
                    pseudo = int.from_bytes(buf[26:34], "big") + PROTO_TCP + len(ip.payload)
                frame.tcp = TcpSegment.parse(ip.payload, pseudo)
            elif proto == PROTO_ICMP and ip.payload[:1] in (b"\x00", b"\x08"):
                frame.icmp = IcmpEcho.parse(ip.payload, verify)
        return frame
    if et == ETHERTYPE_ARP:
        arp = ArpPacket.parse(buf[ETH_HEADER_LEN:])
        return Frame(eth, arp, trailer=bytes(buf[ETH_HEADER_LEN + 28:]))
    eth.payload = bytes(buf[ETH_HEADER_LEN:])
    return Frame(eth)


def build_tcp_frame(src_mac: str, dst_mac: str, ip: IPv4Packet, tcp: TcpSegment) -> bytes:
    """Ethernet + IPv4 + TCP bytes (``ip.payload`` is ignored; the segment is the payload)."""
    seg = tcp.emit(ip.src, ip.dst)
    return EthernetFrame(dst_mac, src_mac, ETHERTYPE_IPV4).header() + ip.header(len(seg)) + seg
