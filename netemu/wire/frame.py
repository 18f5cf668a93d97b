"""Whole frames: Ethernet + (ARP | IPv4 + (TCP | ICMP echo | raw payload))."""

from __future__ import annotations

import struct
from dataclasses import dataclass

from .addr import _IP_STR, _MAC_RAW, _MAC_STR
from .arp import ARP_LEN, ArpPacket
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


# Ethernet + IPv4 without options + TCP header: 14 + 20 + 20 bytes in one unpack.
_unpack_eth_ip_tcp = struct.Struct("!6s6sHBBHHHBBHIIHHIIHHHH").unpack_from


def parse_frame(buf: bytes, verify: bool = True) -> Frame:
    """Parse a frame from the wire. ``verify=False`` skips checksum checks (for
    frames whose checksum the sender left to offload: PACKET_AUXDATA says so)."""
    if buf.__class__ is not bytes:
        buf = bytes(buf)
    # Fast path: a regular Ethernet + IPv4 (no options, not a fragment) + TCP frame,
    # decoded with one unpack and verified with checksums summed from the unpacked
    # fields. Anything irregular, including every error, takes the general path,
    # which owns the validation messages.
    n = len(buf)
    if n >= 54:
        (dst, src, et, vihl, tos, total, ident, frag, ttl, proto, ipsum, sip, dip,
         sport, dport, seq, ack, off_flags, win, csum, urg) = _unpack_eth_ip_tcp(buf)
        end = 14 + total
        hlen = 34 + (off_flags >> 12 << 2)  # end of the TCP header
        if (et == 0x0800 and vihl == 0x45 and proto == 6 and not frag & 0x3FFF
                and 54 <= hlen <= end <= n):
            seg = buf[34:end]
            if verify:
                # IPv4 header: its ten words, 0x4506 being version/IHL and protocol.
                # TCP: the segment and the pseudo-header (addresses, 6, length).
                ok = not (0x4506 + tos + total + ident + frag + (ttl << 8) + ipsum + sip + dip
                          ) % 0xFFFF
                if ok:
                    v = int.from_bytes(seg, "big")
                    if total & 1:
                        v <<= 8
                    ok = not (v + (sip + dip + total - 14)) % 0xFFFF
            else:
                ok = True
            if ok:
                if hlen > 54:
                    options, padding = parse_options(buf, 54, hlen)
                else:
                    options, padding = (), b""
                return Frame(
                    EthernetFrame(_MAC_STR[dst], _MAC_STR[src], 0x0800),
                    None,
                    IPv4Packet(_IP_STR[sip], _IP_STR[dip], 6, seg, ttl, tos, ident, frag >> 13,
                               0, b"", ipsum),
                    TcpSegment(sport, dport, seq, ack, off_flags & 0x0FFF, win, buf[hlen:end],
                               options, urg, csum, padding),
                    None,
                    buf[end:] if end < n else b"",
                )
    return _parse_frame_general(buf, verify)


def _parse_frame_general(buf: bytes, verify: bool) -> Frame:
    if len(buf) < ETH_HEADER_LEN:
        raise MalformedPacket(f"truncated Ethernet header ({len(buf)} bytes)")
    dst, src, et = ETH_HEADER.unpack_from(buf)
    eth = EthernetFrame(_MAC_STR[dst], _MAC_STR[src], et)
    if et == ETHERTYPE_IPV4:
        ip = IPv4Packet.parse(buf, verify, ETH_HEADER_LEN)
        frame = Frame(eth, None, ip)
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
    if et == ETHERTYPE_ARP:
        arp = ArpPacket.parse(buf[ETH_HEADER_LEN:])
        return Frame(eth, arp, trailer=buf[ETH_HEADER_LEN + ARP_LEN:])
    eth.payload = buf[ETH_HEADER_LEN:]
    return Frame(eth)


def build_tcp_frame(src_mac: str, dst_mac: str, ip: IPv4Packet, tcp: TcpSegment) -> bytes:
    """Ethernet + IPv4 + TCP bytes (``ip.payload`` is ignored; the segment is the payload)."""
    seg = tcp.emit(ip.src, ip.dst)
    return _MAC_RAW[dst_mac] + _MAC_RAW[src_mac] + b"\x08\x00" + ip.header(len(seg)) + seg
