"""ICMPv6 (RFC 4443) and neighbour discovery (RFC 4861): echo, packet too big,
destination unreachable, neighbour solicitation and advertisement.

The checksum covers the IPv6 pseudo-header (RFC 4443 §2.3), so parsing and emitting
take the addresses. ``Icmp6`` holds any message as its type, code and the bytes after
the checksum; the properties read the fields of the kinds netemu answers, and the
``echo``/``packet_too_big``/... constructors build them. NDP options are kept as
bytes (``options``); ``link_layer_option`` reads the source or target link-layer
address one carries.
"""

from __future__ import annotations

import socket
import struct
from dataclasses import dataclass

from .addr import _ADDR_SUM, _MAC_RAW, _MAC_STR
from .checksum import mod_ffff, word_sum
from .errors import BadChecksum, MalformedPacket

ICMP6_DEST_UNREACHABLE = 1
ICMP6_PACKET_TOO_BIG = 2
ICMP6_TIME_EXCEEDED = 3
ICMP6_ECHO_REQUEST = 128
ICMP6_ECHO_REPLY = 129
ND_ROUTER_SOLICITATION = 133
ND_NEIGHBOR_SOLICITATION = 135
ND_NEIGHBOR_ADVERTISEMENT = 136
# NDP option types (RFC 4861 §4.6.1).
ND_OPT_SOURCE_LL = 1
ND_OPT_TARGET_LL = 2
# Neighbour advertisement flags (RFC 4861 §4.4): Router, Solicited, Override.
NA_ROUTER = 0x80000000
NA_SOLICITED = 0x40000000
NA_OVERRIDE = 0x20000000
NH_ICMPV6 = 58
# An error message carries as much of the invoking packet as fits in the minimum MTU.
IPV6_MIN_MTU = 1280
_ERROR_ROOM = IPV6_MIN_MTU - 40 - 8

_HEADER = struct.Struct("!BBH")
_WORD = struct.Struct("!I")


def solicited_node(ip: str) -> str:
    """The solicited-node multicast address of ``ip`` (RFC 4291 §2.7.1)."""
    raw = socket.inet_pton(socket.AF_INET6, ip)
    return socket.inet_ntop(socket.AF_INET6, bytes.fromhex("ff0200000000000000000001ff") + raw[13:])


def multicast_mac(ip: str) -> str:
    """The Ethernet address of IPv6 multicast address ``ip`` (RFC 2464 §7)."""
    return _MAC_STR[b"\x33\x33" + socket.inet_pton(socket.AF_INET6, ip)[12:]]


def _sum(src: str, dst: str, body_len: int) -> int:
    return _ADDR_SUM[src] + _ADDR_SUM[dst] + body_len + NH_ICMPV6


@dataclass(slots=True)
class Icmp6:
    """One ICMPv6 message: ``body`` is every byte after the checksum."""

    type: int
    code: int
    body: bytes = b""
    checksum: int | None = None  # None: computed on emit

    @classmethod
    def parse(cls, buf: bytes, src: str, dst: str, verify: bool = True) -> Icmp6:
        """The message in ``buf`` (exactly its bytes), sent from ``src`` to ``dst``."""
        if len(buf) < 4:
            raise MalformedPacket(f"truncated ICMPv6 header ({len(buf)} bytes)")
        typ, code, csum = _HEADER.unpack_from(buf)
        if verify:
            v = word_sum(buf) + _sum(src, dst, len(buf))
            if mod_ffff(v):
                raise BadChecksum(f"bad ICMPv6 checksum {csum:#06x}")
        return cls(typ, code, bytes(buf[4:]), csum)

    def emit(self, src: str, dst: str) -> bytes:
        body = self.body
        csum = self.checksum
        if csum is None:
            s = mod_ffff(
                (self.type << 8 | self.code) + word_sum(body) + _sum(src, dst, 4 + len(body))
            )
            csum = 0xFFFF - s if s else 0  # (the sum is never 0: 58 is in it)
        return _HEADER.pack(self.type, self.code, csum) + body

    # -- what the kinds netemu reads carry ----------------------------------------
    @property
    def identifier(self) -> int:
        """Echo: the identifier."""
        return int.from_bytes(self.body[0:2], "big")

    @property
    def sequence(self) -> int:
        """Echo: the sequence number."""
        return int.from_bytes(self.body[2:4], "big")

    @property
    def data(self) -> bytes:
        """Echo: the data; packet too big, destination unreachable: the invoking packet."""
        return self.body[4:]

    @property
    def mtu(self) -> int:
        """Packet too big: the next hop's MTU."""
        return int.from_bytes(self.body[0:4], "big")

    @property
    def target(self) -> str:
        """Neighbour solicitation and advertisement: the target address."""
        if len(self.body) < 20:
            raise MalformedPacket(f"truncated neighbour discovery message ({len(self.body)} bytes)")
        return socket.inet_ntop(socket.AF_INET6, self.body[4:20])

    @property
    def flags(self) -> int:
        """Neighbour advertisement: R, S, O (``NA_*``) in the first word."""
        return int.from_bytes(self.body[0:4], "big")

    @property
    def options(self) -> bytes:
        """Neighbour solicitation and advertisement: the NDP options' bytes."""
        return self.body[20:]

    def link_layer_option(self, kind: int) -> str | None:
        """The MAC of the first NDP option ``kind`` (``ND_OPT_SOURCE_LL`` or
        ``ND_OPT_TARGET_LL``), None when absent; MalformedPacket for a bad option."""
        opts = self.options
        i = 0
        while i + 2 <= len(opts):
            size = opts[i + 1] * 8
            if size == 0 or i + size > len(opts):
                raise MalformedPacket(f"bad NDP option length {opts[i + 1]}")
            if opts[i] == kind and size == 8:
                return _MAC_STR[opts[i + 2 : i + 8]]
            i += size
        return None

    # -- building ----------------------------------------------------------------
    @classmethod
    def echo(cls, request: bool, identifier: int, sequence: int, data: bytes = b"") -> Icmp6:
        kind = ICMP6_ECHO_REQUEST if request else ICMP6_ECHO_REPLY
        return cls(kind, 0, _WORD.pack(identifier << 16 | sequence) + data)

    @classmethod
    def packet_too_big(cls, mtu: int, invoking: bytes) -> Icmp6:
        return cls(ICMP6_PACKET_TOO_BIG, 0, _WORD.pack(mtu) + invoking[:_ERROR_ROOM])

    @classmethod
    def dest_unreachable(cls, code: int, invoking: bytes) -> Icmp6:
        return cls(ICMP6_DEST_UNREACHABLE, code, b"\0\0\0\0" + invoking[:_ERROR_ROOM])

    @classmethod
    def neighbor_solicitation(cls, target: str, source_mac: str | None = None) -> Icmp6:
        """With ``source_mac`` a source link-layer address option (not for DAD's,
        whose source is the unspecified address)."""
        opt = b"" if source_mac is None else b"\x01\x01" + _MAC_RAW[source_mac]
        return cls(
            ND_NEIGHBOR_SOLICITATION,
            0,
            b"\0\0\0\0" + socket.inet_pton(socket.AF_INET6, target) + opt,
        )

    @classmethod
    def neighbor_advertisement(
        cls, target: str, target_mac: str | None, flags: int = NA_SOLICITED | NA_OVERRIDE
    ) -> Icmp6:
        opt = b"" if target_mac is None else b"\x02\x01" + _MAC_RAW[target_mac]
        return cls(
            ND_NEIGHBOR_ADVERTISEMENT,
            0,
            _WORD.pack(flags) + socket.inet_pton(socket.AF_INET6, target) + opt,
        )
