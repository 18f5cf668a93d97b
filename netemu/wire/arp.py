"""ARP for IPv4 over Ethernet (RFC 826)."""

from __future__ import annotations

import struct
from dataclasses import dataclass

from .addr import _IP_INT, _IP_STR, _MAC_RAW, _MAC_STR
from .errors import MalformedPacket

ARP_PACKET = struct.Struct("!HHBBH6sI6sI")
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
        """Parse the ARP packet at the start of ``buf``; bytes after its 28 are ignored."""
        if len(buf) < ARP_LEN:
            raise MalformedPacket(f"truncated ARP packet ({len(buf)} bytes)")
        htype, ptype, hlen, plen, op, sha, spa, tha, tpa = ARP_PACKET.unpack_from(buf)
        if htype != _HTYPE_ETHERNET or ptype != _PTYPE_IPV4 or hlen != 6 or plen != 4:
            raise MalformedPacket(
                f"unsupported ARP (htype {htype}, ptype {ptype:#06x}, hlen {hlen}, plen {plen})"
            )
        return cls(op, _MAC_STR[sha], _IP_STR[spa], _MAC_STR[tha], _IP_STR[tpa])

    def emit(self) -> bytes:
        return ARP_PACKET.pack(
            _HTYPE_ETHERNET,
            _PTYPE_IPV4,
            6,
            4,
            self.op,
            _MAC_RAW[self.sender_mac],
            _IP_INT[self.sender_ip],
            _MAC_RAW[self.target_mac],
            _IP_INT[self.target_ip],
        )
