"""ARP for IPv4 over Ethernet (RFC 826)."""

from __future__ import annotations

import struct
from dataclasses import dataclass

from .addr import ip_to_bytes, ip_to_str, mac_to_bytes, mac_to_str
from .errors import MalformedPacket

ARP_PACKET = struct.Struct("!HHBBH6s4s6s4s")
ARP_LEN = ARP_PACKET.size  # 28
ARP_REQUEST = 1
ARP_REPLY = 2
_HTYPE_ETHERNET = 1
_PTYPE_IPV4 = 0x0800


@dataclass(slots=True)
class ArpPacket:
    op: int
    sender_mac: str
    sender_ip: str
    target_mac: str
    target_ip: str

    @classmethod
    def parse(cls, buf: bytes) -> ArpPacket:
        if len(buf) < ARP_LEN:
            raise MalformedPacket(f"truncated ARP packet ({len(buf)} bytes)")
        htype, ptype, hlen, plen, op, sha, spa, tha, tpa = ARP_PACKET.unpack_from(buf)
        if htype != _HTYPE_ETHERNET or ptype != _PTYPE_IPV4 or hlen != 6 or plen != 4:
            raise MalformedPacket(
                f"unsupported ARP (htype {htype}, ptype {ptype:#06x}, hlen {hlen}, plen {plen})"
            )
        return cls(op, mac_to_str(sha), ip_to_str(spa), mac_to_str(tha), ip_to_str(tpa))

    def emit(self) -> bytes:
        return ARP_PACKET.pack(
            _HTYPE_ETHERNET, _PTYPE_IPV4, 6, 4, self.op,
            mac_to_bytes(self.sender_mac), ip_to_bytes(self.sender_ip),
            mac_to_bytes(self.target_mac), ip_to_bytes(self.target_ip),
        )
