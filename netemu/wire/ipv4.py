"""IPv4 headers (RFC 791). Fragments are recognised and reported, never reassembled."""

from __future__ import annotations

import struct
from dataclasses import dataclass

from .addr import _IP_INT, _IP_STR
from .errors import BadChecksum, MalformedPacket

IPV4_HEADER = struct.Struct("!BBHHHBBHII")  # addresses as 32-bit ints
IPV4_MIN_LEN = 20
PROTO_ICMP = 1
PROTO_TCP = 6
# Flag bits (RFC 791 §3.1; the third, 0x4, is reserved): Don't Fragment, More Fragments.
FLAG_DF = 0x2
FLAG_MF = 0x1


@dataclass(slots=True)
class IPv4Packet:
    src: str
    dst: str
    protocol: int
    payload: bytes = b""
    ttl: int = 64
    tos: int = 0
    identification: int = 0
    flags: int = FLAG_DF
    fragment_offset: int = 0  # in 8-byte units, as on the wire
    options: bytes = b""  # kept as raw bytes, a multiple of 4 long
    checksum: int | None = None  # None: computed on emit

    @property
    def is_fragment(self) -> bool:
        return bool(self.flags & FLAG_MF) or self.fragment_offset != 0

    @property
    def total_length(self) -> int:
        return IPV4_MIN_LEN + len(self.options) + len(self.payload)

    @classmethod
    def parse(cls, buf: bytes, verify: bool = True, offset: int = 0) -> IPv4Packet:
        """Parse the IPv4 packet at ``buf[offset:]``; bytes past its total length
        (link padding) are ignored."""
        if type(buf) is not bytes:
            buf = bytes(buf)
        n = len(buf) - offset
        if n < IPV4_MIN_LEN:
            raise MalformedPacket(f"truncated IPv4 header ({n} bytes)")
        vihl, tos, total, ident, frag, ttl, proto, csum, src, dst = IPV4_HEADER.unpack_from(
            buf, offset
        )
        if vihl >> 4 != 4:
            raise MalformedPacket(f"IP version {vihl >> 4}, not 4")
        hlen = (vihl & 0xF) * 4
        if hlen < IPV4_MIN_LEN:
            raise MalformedPacket(f"bad IHL {vihl & 0xF}")
        if hlen > n:
            raise MalformedPacket(f"IHL {vihl & 0xF} overruns the {n} bytes received")
        if total < hlen:
            raise MalformedPacket(f"total length {total} shorter than header {hlen}")
        if total > n:
            raise MalformedPacket(f"total length {total} exceeds the {n} bytes received")
        if verify and int.from_bytes(buf[offset : offset + hlen], "big") % 0xFFFF:
            # checksum.verifies(), inlined: a header is never all zeros (version 4)
            raise BadChecksum(f"bad IPv4 header checksum {csum:#06x}")
        return cls(
            _IP_STR[src],
            _IP_STR[dst],
            proto,
            buf[offset + hlen : offset + total],
            ttl,
            tos,
            ident,
            frag >> 13,
            frag & 0x1FFF,
            buf[offset + IPV4_MIN_LEN : offset + hlen] if hlen > IPV4_MIN_LEN else b"",
            csum,
        )

    def header(self, payload_length: int | None = None) -> bytes:
        """The header bytes, checksum filled in when ``checksum`` is None."""
        options = self.options
        if options and (len(options) & 3 or len(options) > 40):
            raise ValueError(
                f"IPv4 options must be a multiple of 4 bytes, at most 40 (got {len(options)})"
            )
        hlen = IPV4_MIN_LEN + len(options)
        total = hlen + (len(self.payload) if payload_length is None else payload_length)
        ident = self.identification
        frag = self.flags << 13 | self.fragment_offset
        tos = self.tos
        ttl = self.ttl
        proto = self.protocol
        src = _IP_INT[self.src]
        dst = _IP_INT[self.dst]
        csum = self.checksum
        if csum is None:
            # The word sum straight from the fields (see checksum.py); -s % 0xFFFF is
            # checksum.fold(s) for a sum that is not 0, and the version makes it so.
            s = (0x40 | hlen >> 2) << 8 | tos
            s += total + ident + frag + (ttl << 8 | proto) + src + dst
            if options:
                s += int.from_bytes(options, "big")
            csum = -s % 0xFFFF
        hdr = IPV4_HEADER.pack(
            0x40 | hlen >> 2, tos, total, ident, frag, ttl, proto, csum, src, dst
        )
        return hdr + options if options else hdr

    def emit(self) -> bytes:
        return self.header() + self.payload
