"""What a captured frame holds: the IP packet carrying a TCP segment under its link
layer and tunnels, or why there is none (``netemu show``, docs/trace.md).

``decode_link(linktype, data)`` is the one function that reads link layers:

- link types: Ethernet, Linux cooked v1 and v2, raw IPv4/IPv6, BSD loopback and
  null (the address family in either byte order; IPv6 as 10, 24, 28 or 30);
- under them: 802.1Q/802.1ad VLAN tags (0x8100, 0x88a8, 0x9100, stacked), MPLS
  label stacks (0x8847/0x8848, the payload IPv4 or IPv6 by its first nibble),
  PPPoE sessions (0x8864, PPP protocol 0x0021/0x0057);
- tunnels in IP: GRE (checksum, key, sequence; IP, MPLS, transparent Ethernet,
  ERSPAN I/II/III inside), VXLAN (UDP 4789), Geneve (UDP 6081), IP-in-IP and 6in4;
- IPv6 extension headers (``netemu.wire.ipv6``): a fragment other than the first
  holds no TCP header and is skipped; fragments are not reassembled (the first is
  drawn with the bytes it carries).

The packet returned is whole as far as its IP header says: a frame cut at the
capture's snap length is padded with zeros to the IP length (the segment keeps its
true length; the note says "truncated"), and an IPv4 total length of 0 (a TSO/GSO
packet captured before the NIC filled it) is taken from the captured bytes.
"""

from __future__ import annotations

import struct
from typing import NamedTuple

from ..wire import MalformedPacket
from ..wire.ipv6 import IPv6Packet

LINKTYPE_NULL = 0
LINKTYPE_ETHERNET = 1
LINKTYPE_RAW = 101
LINKTYPE_LOOP = 108
LINKTYPE_LINUX_SLL = 113
LINKTYPE_IPV4 = 228
LINKTYPE_IPV6 = 229
LINKTYPE_LINUX_SLL2 = 276
DLT_RAW = (12, 14)  # what some systems write for raw IP instead of 101

ET_IPV4 = 0x0800
ET_IPV6 = 0x86DD
_VLAN = frozenset({0x8100, 0x88A8, 0x9100})
_MPLS = frozenset({0x8847, 0x8848})
_PPPOE_SESSION = 0x8864
_TEB = 0x6558  # transparent Ethernet bridging: an Ethernet frame inside
_ERSPAN_2 = 0x88BE
_ERSPAN_3 = 0x22EB
_AF_INET6 = frozenset({10, 24, 28, 30})  # Linux, Net/OpenBSD, FreeBSD, Darwin
_VXLAN_PORT = 4789
_GENEVE_PORT = 6081
_MAX_DEPTH = 6  # tunnels in tunnels

_ETHER_NAMES = {
    0x0806: "ARP",
    0x8035: "RARP",
    0x8863: "PPPoE discovery",
    0x88CC: "LLDP",
    0x888E: "EAPOL",
    0x8809: "slow protocols (LACP)",
    0x88F7: "PTP",
    0x8906: "FCoE",
}
_IP_NAMES = {1: "ICMP", 2: "IGMP", 17: "UDP", 50: "ESP", 58: "ICMPv6", 89: "OSPF", 132: "SCTP"}


class Decoded(NamedTuple):
    """The IP packet (IPv4 or IPv6) that carries a TCP segment, whole as far as its
    header says, with a note (truncated, TSO length); or None and why not."""

    packet: bytes | None
    reason: str | None = None
    note: str | None = None


def _skip(reason: str) -> Decoded:
    return Decoded(None, reason)


def link_payload(linktype: int, data: bytes) -> tuple[int, int] | str:
    """(EtherType, offset of what follows) of a frame of ``linktype``, or why it has
    none (an unsupported link type, a runt)."""
    n = len(data)
    if linktype == LINKTYPE_ETHERNET:
        if n < 14:
            return "truncated link-layer header"
        et = data[12] << 8 | data[13]
        return (et, 14) if et >= 0x0600 else "not IP (802.3 LLC)"
    if linktype == LINKTYPE_LINUX_SLL:
        return (data[14] << 8 | data[15], 16) if n >= 16 else "truncated link-layer header"
    if linktype == LINKTYPE_LINUX_SLL2:
        return (data[0] << 8 | data[1], 20) if n >= 20 else "truncated link-layer header"
    if linktype in (LINKTYPE_RAW, LINKTYPE_IPV4, LINKTYPE_IPV6, *DLT_RAW):
        return _by_version(data, 0)
    if linktype in (LINKTYPE_NULL, LINKTYPE_LOOP):
        if n < 4:
            return "truncated link-layer header"
        family = struct.unpack_from(">I", data)[0]
        if linktype == LINKTYPE_NULL and family > 0xFFFF:  # written in the host's order
            family = struct.unpack_from("<I", data)[0]
        if family == 2:
            return ET_IPV4, 4
        if family in _AF_INET6:
            return ET_IPV6, 4
        return f"not IP (address family {family})"
    return f"unsupported link type {linktype}"


def _by_version(data: bytes, off: int) -> tuple[int, int] | str:
    if off >= len(data):
        return "truncated before the IP header"
    version = data[off] >> 4
    if version == 4:
        return ET_IPV4, off
    if version == 6:
        return ET_IPV6, off
    return f"not IP (version {version})"


def decode_link(linktype: int, data: bytes) -> Decoded:
    """The IP packet carrying a TCP segment in a frame of ``linktype``, or why there
    is none. Never raises for any bytes."""
    got = link_payload(linktype, data)
    if isinstance(got, str):
        return _skip(got)
    try:
        return _ether(data, got[1], got[0], 0)
    except (MalformedPacket, struct.error, IndexError) as e:  # pragma: no cover - guarded
        return _skip(f"malformed ({e})")


def as_ethernet(linktype: int, data: bytes) -> Decoded:
    """A captured frame as the Ethernet frame a Trace keeps (``Decoded.packet``): a
    regular Ethernet/IPv4/TCP frame as it is (its quick check costs next to nothing),
    any other the IP packet ``decode_link`` finds, behind its own MAC addresses (zeros
    where the link type has none) and the EtherType of its IP version."""
    if (
        linktype == LINKTYPE_ETHERNET
        and len(data) >= 54
        and data[12] == 8
        and data[13] == 0
        and data[14] == 0x45
        and data[23] == 6
        and not (data[20] & 0x1F or data[21])
        and 40 <= (data[16] << 8 | data[17]) <= len(data) - 14
    ):
        return Decoded(data)
    got = decode_link(linktype, data)
    pkt = got.packet
    if pkt is None:
        return got
    head = data[:12] if linktype == LINKTYPE_ETHERNET else bytes(12)
    et = b"\x86\xdd" if pkt[0] >> 4 == 6 else b"\x08\x00"
    return Decoded(head + et + pkt, None, got.note)


def _ether(data: bytes, off: int, et: int, depth: int) -> Decoded:
    """What follows ``data[off:]`` of EtherType ``et``: VLAN tags, MPLS, PPPoE, IP."""
    n = len(data)
    while True:
        if et == ET_IPV4:
            return _ipv4(data, off, depth)
        if et == ET_IPV6:
            return _ipv6(data, off, depth)
        if et in _VLAN:
            if off + 4 > n:
                return _skip("truncated VLAN tag")
            et = data[off + 2] << 8 | data[off + 3]
            off += 4
        elif et in _MPLS:
            while True:
                if off + 4 > n:
                    return _skip("truncated MPLS label stack")
                off += 4
                if data[off - 2] & 1:  # bottom of stack
                    break
            got = _by_version(data, off)
            if isinstance(got, str):
                return _skip("MPLS payload " + got)
            et = got[0]
        elif et == _PPPOE_SESSION:
            if off + 8 > n:
                return _skip("truncated PPPoE header")
            ppp = data[off + 6] << 8 | data[off + 7]
            off += 8
            if ppp == 0x0021:
                et = ET_IPV4
            elif ppp == 0x0057:
                et = ET_IPV6
            else:
                return _skip(f"PPPoE: not IP (PPP protocol 0x{ppp:04x})")
        else:
            name = _ETHER_NAMES.get(et)
            return _skip(name or f"not IP (EtherType 0x{et:04x})")


def _ethernet(data: bytes, off: int, depth: int) -> Decoded:
    if off + 14 > len(data):
        return _skip("truncated inner Ethernet header")
    return _ether(data, off + 14, data[off + 12] << 8 | data[off + 13], depth)


def _tcp_reason(data: bytes, off: int) -> str | None:
    """Why the TCP header at ``data[off:]`` cannot be read, if it cannot. Its 20 fixed
    bytes are enough: options a snap length cut off are taken as zeros (end of option
    list) with the payload, and the segment is drawn, as tshark draws it."""
    if off + 20 > len(data):
        return "truncated before TCP header"
    doff = data[off + 12] >> 4
    if doff < 5:
        return f"malformed TCP header (data offset {doff})"
    return None


# A frame whose TCP header the snap length cut (its options): drawn, with this note, and
# given no analysis (netemu.trace.analysis skips it), as tshark stops at the cut.
TCP_CUT = "truncated: the TCP header is cut short (options unknown; no analysis)"


def _cut_options(pkt: bytes, tcp: int, captured: int) -> bytes | None:
    """``pkt`` with the TCP options at ``pkt[tcp + 20:]`` zeroed (end of option list)
    when fewer than the header's bytes were captured (``captured``: bytes of ``pkt``
    that are real); None when the header was whole."""
    hlen = (pkt[tcp + 12] >> 4) * 4
    if tcp + hlen <= captured:
        return None
    return pkt[: tcp + 20] + bytes(hlen - 20) + pkt[tcp + hlen :]


def _ipv4(data: bytes, off: int, depth: int) -> Decoded:
    n = len(data)
    if off + 20 > n:
        return _skip("truncated IP header")
    vihl = data[off]
    if vihl >> 4 != 4:
        return _skip(f"not IP (version {vihl >> 4} in an IPv4 frame)")
    hlen = (vihl & 0xF) * 4
    if hlen < 20:
        return _skip(f"malformed IPv4 header (IHL {vihl & 0xF})")
    if off + hlen > n:
        return _skip("truncated IP header")
    total = data[off + 2] << 8 | data[off + 3]
    frag = (data[off + 6] << 8 | data[off + 7]) & 0x1FFF
    if frag:
        return _skip("IPv4 fragment (not first)")
    proto = data[off + 9]
    note = None
    if total == 0:  # TSO/GSO: the NIC fills it in
        total = n - off
        note = "IPv4 total length 0 (TSO): length taken from the captured bytes"
    elif total < hlen:
        return _skip(f"malformed IPv4 header (total length {total})")
    if proto != 6:
        return _tunnel(data, off + hlen, min(off + total, n), proto, depth)
    reason = _tcp_reason(data, off + hlen)
    if reason:
        return _skip(reason)
    pkt = data[off : off + total]
    if note:
        pkt = pkt[:2] + total.to_bytes(2, "big") + pkt[4:] if total <= 0xFFFF else b""
        if not pkt:
            return _skip("TSO packet over 64 KiB")
    elif len(pkt) < total:
        captured = len(pkt)
        note = f"truncated: {captured} of {total} IP bytes captured (the rest taken as zeros)"
        pkt += bytes(total - captured)
        cut = _cut_options(pkt, hlen, captured)
        if cut is not None:
            pkt, note = cut, TCP_CUT
    return Decoded(pkt, None, note)


def _ipv6(data: bytes, off: int, depth: int) -> Decoded:
    try:
        ip = IPv6Packet.parse(data, off, allow_short=True)
    except MalformedPacket as e:
        return _skip("truncated before TCP header" if "overruns" in e.reason else str(e.reason))
    if ip.later_fragment:
        return _skip("IPv6 fragment (not first)")
    start = off + 40 + sum(len(raw) for _, raw in ip.extensions)
    end = start + len(ip.payload)  # within the captured bytes
    if ip.next_header != 6:
        return _tunnel(data, start, end, ip.next_header, depth)
    reason = _tcp_reason(data, start)
    if reason:
        return _skip(reason)
    note = None
    pkt = data[off:end]
    if data[off + 4] == data[off + 5] == 0:  # payload length 0: TSO/GSO, or a jumbogram
        size = end - off - 40
        if size > 0xFFFF:
            return _skip("IPv6 jumbogram")
        pkt = pkt[:4] + size.to_bytes(2, "big") + pkt[6:]
        note = "IPv6 payload length 0 (TSO): length taken from the captured bytes"
    elif ip.missing:
        captured = len(pkt)
        total = captured + ip.missing
        note = f"truncated: {captured} of {total} IP bytes captured (the rest taken as zeros)"
        pkt += bytes(ip.missing)
        cut = _cut_options(pkt, start - off, captured)
        if cut is not None:
            pkt, note = cut, TCP_CUT
    return Decoded(pkt, None, note)


def _tunnel(data: bytes, off: int, end: int, proto: int, depth: int) -> Decoded:
    """An IP packet's payload that is not TCP: a tunnel to look into, or a reason."""
    if depth >= _MAX_DEPTH:
        return _skip("tunnels nested too deep")
    inner = data[:end] if end < len(data) else data
    if proto == 4:
        return _ipv4(inner, off, depth + 1)
    if proto == 41:
        return _ipv6(inner, off, depth + 1)
    if proto == 47:
        return _gre(inner, off, depth + 1)
    if proto == 17 and off + 8 <= end:
        sport, dport = struct.unpack_from(">HH", data, off)
        if _VXLAN_PORT in (dport, sport) and off + 16 <= end and data[off + 8] & 0x08:
            return _ethernet(inner, off + 16, depth + 1)
        if _GENEVE_PORT in (dport, sport) and off + 16 <= end:
            return _geneve(inner, off + 8, depth + 1)
    return _skip(f"not TCP ({_IP_NAMES.get(proto, f'IP protocol {proto}')})")


def _gre(data: bytes, off: int, depth: int) -> Decoded:
    n = len(data)
    if off + 4 > n:
        return _skip("truncated GRE header")
    flags, proto = struct.unpack_from(">HH", data, off)
    if flags & 7:
        return _skip(f"GRE version {flags & 7}")
    if flags & 0x4000:
        return _skip("GRE with routing (RFC 1701)")
    off += 4 + 4 * bool(flags & 0x8000) + 4 * bool(flags & 0x2000) + 4 * bool(flags & 0x1000)
    if proto == _TEB:
        return _ethernet(data, off, depth)
    if proto == _ERSPAN_2:  # type I has no sequence number and no header
        return _ethernet(data, off + 8 if flags & 0x1000 else off, depth)
    if proto == _ERSPAN_3:
        if off + 12 > n:
            return _skip("truncated ERSPAN header")
        return _ethernet(data, off + 12 + 8 * (data[off + 11] & 1), depth)
    if off > n:
        return _skip("truncated GRE header")
    return _ether(data, off, proto, depth)


def _geneve(data: bytes, off: int, depth: int) -> Decoded:
    opt_len = (data[off] & 0x3F) * 4
    proto = data[off + 2] << 8 | data[off + 3]
    off += 8 + opt_len
    if proto == _TEB:
        return _ethernet(data, off, depth)
    return _ether(data, off, proto, depth)
