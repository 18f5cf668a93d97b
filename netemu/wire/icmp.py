"""ICMP echo request/reply (RFC 792), enough for `ping` to work against a host."""

from __future__ import annotations

import struct
from dataclasses import dataclass

from .checksum import internet_checksum, verifies, word_sum
from .errors import BadChecksum, MalformedPacket

ICMP_HEADER = struct.Struct("!BBHHH")
ICMP_ECHO_REPLY = 0
ICMP_ECHO_REQUEST = 8


@dataclass(slots=True)
class IcmpEcho:
    type: int
    code: int
    identifier: int
    sequence: int
    payload: bytes = b""
    checksum: int | None = None

    @classmethod
    def parse(cls, buf: bytes, verify: bool = True) -> IcmpEcho:
        if len(buf) < ICMP_HEADER.size:
            raise MalformedPacket(f"truncated ICMP header ({len(buf)} bytes)")
        if verify and not verifies(word_sum(buf)):
            raise BadChecksum("bad ICMP checksum")
        typ, code, csum, ident, seq = ICMP_HEADER.unpack_from(buf)
        return cls(typ, code, ident, seq, bytes(buf[ICMP_HEADER.size :]), csum)

    def emit(self) -> bytes:
        body = (
            ICMP_HEADER.pack(self.type, self.code, 0, self.identifier, self.sequence) + self.payload
        )
        csum = internet_checksum(body) if self.checksum is None else self.checksum
        return body[:2] + csum.to_bytes(2, "big") + body[4:]
