"""Ethernet II frames (IEEE 802.3 with an EtherType)."""

from __future__ import annotations

import struct
from dataclasses import dataclass

from .addr import mac_to_bytes, mac_to_str
from .errors import MalformedPacket

ETH_HEADER = struct.Struct("!6s6sH")
ETH_HEADER_LEN = 14
ETHERTYPE_IPV4 = 0x0800
ETHERTYPE_ARP = 0x0806
ETHERTYPE_IPV6 = 0x86DD
BROADCAST = "ff:ff:ff:ff:ff:ff"

__all__ = ["BROADCAST", "EthernetFrame", "mac_to_bytes", "mac_to_str"]




@dataclass(slots=True)
class EthernetFrame:
    dst: str
    src: str
    ethertype: int
    payload: bytes = b""

    @classmethod
    def parse(cls, buf: bytes) -> EthernetFrame:
        if len(buf) < ETH_HEADER_LEN:
            raise MalformedPacket(f"truncated Ethernet header ({len(buf)} bytes)")
        dst, src, ethertype = ETH_HEADER.unpack_from(buf)
        return cls(mac_to_str(dst), mac_to_str(src), ethertype, bytes(buf[ETH_HEADER_LEN:]))

    def header(self) -> bytes:
        return ETH_HEADER.pack(mac_to_bytes(self.dst), mac_to_bytes(self.src), self.ethertype)

    def emit(self) -> bytes:
        return self.header() + self.payload
