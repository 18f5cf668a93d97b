"""Ethernet II frames (IEEE 802.3 with an EtherType)."""

from __future__ import annotations

import struct
from dataclasses import dataclass

from .addr import _MAC_RAW, _MAC_STR, mac_to_bytes, mac_to_str
from .errors import MalformedPacket

ETH_HEADER = struct.Struct("!6s6sH")
ETH_HEADER_LEN = 14
ETHERTYPE_IPV4 = 0x0800
ETHERTYPE_ARP = 0x0806
ETHERTYPE_IPV6 = 0x86DD
BROADCAST = "ff:ff:ff:ff:ff:ff"

__all__ = [
    "BROADCAST",
    "ETHERTYPE_ARP",
    "ETHERTYPE_IPV4",
    "ETHERTYPE_IPV6",
    "ETH_HEADER",
    "ETH_HEADER_LEN",
    "EthernetFrame",
    "eth_header",
    "mac_to_bytes",
    "mac_to_str",
]


def eth_header(dst: str, src: str, ethertype: int) -> bytes:
    """The 14 header bytes."""
    return ETH_HEADER.pack(_MAC_RAW[dst], _MAC_RAW[src], ethertype)


@dataclass(frozen=True, slots=True)
class EthernetFrame:
    """An Ethernet header (and, for an EtherType netemu does not decode, the
    payload). Frozen: parse_frame shares one record among the frames of an
    address pair."""

    dst: str
    src: str
    ethertype: int
    payload: bytes = b""

    @classmethod
    def parse(cls, buf: bytes) -> EthernetFrame:
        if len(buf) < ETH_HEADER_LEN:
            raise MalformedPacket(f"truncated Ethernet header ({len(buf)} bytes)")
        dst, src, ethertype = ETH_HEADER.unpack_from(buf)
        return cls(_MAC_STR[dst], _MAC_STR[src], ethertype, bytes(buf[ETH_HEADER_LEN:]))

    def header(self) -> bytes:
        return eth_header(self.dst, self.src, self.ethertype)

    def emit(self) -> bytes:
        return self.header() + self.payload
