"""IPv6 headers (RFC 8200) and their extension headers.

``IPv6Packet.parse`` reads the fixed header and walks the extension-header chain
(hop-by-hop, routing, fragment, destination options, AH, mobility, HIP, shim6) to
the upper-layer protocol: ``next_header`` is that protocol and ``payload`` its
bytes. A fragment header ends the walk when its offset is not 0 (the rest is the
middle of the original packet); fragments are recognised, never reassembled. ESP
and No Next Header end it too (``payload`` is what follows them).

Lengths: a payload length of 0 with no Jumbo Payload option is what a capture of a
TSO/GSO packet holds (the kernel leaves the field to the NIC); ``parse`` then takes
the bytes present. ``allow_short`` lets the packet be shorter than its payload
length says (a capture cut at its snap length): ``missing`` counts the bytes absent.
"""

from __future__ import annotations

import socket
import struct
from dataclasses import dataclass

from .addr import _Interned
from .errors import MalformedPacket

IPV6_HEADER = struct.Struct("!IHBB16s16s")
IPV6_HEADER_LEN = 40
NH_HOP_BY_HOP = 0
NH_TCP = 6
NH_UDP = 17
NH_ROUTING = 43
NH_FRAGMENT = 44
NH_ESP = 50
NH_AH = 51
NH_ICMPV6 = 58
NH_NO_NEXT = 59
NH_DEST_OPTS = 60
# Extension headers in the generic format (next header, length in 8-octet units - 1).
_GENERIC = frozenset({NH_HOP_BY_HOP, NH_ROUTING, NH_DEST_OPTS, 135, 139, 140})
_JUMBO_OPTION = 0xC2

_IPV6_STR: _Interned[bytes, str] = _Interned(lambda raw: socket.inet_ntop(socket.AF_INET6, raw))


_IPV6_RAW: _Interned[str, bytes] = _Interned(lambda text: socket.inet_pton(socket.AF_INET6, text))


def ipv6_to_str(raw: bytes) -> str:
    """16 address bytes in the compact text form (RFC 5952): ``2001:db8::1``."""
    return _IPV6_STR[raw]


def ipv6_to_bytes(text: str) -> bytes:
    return _IPV6_RAW[text]


@dataclass(slots=True, frozen=True)
class IPv6Fragment:
    """A Fragment header: offset in 8-octet units, More Fragments, identification."""

    offset: int
    more: bool
    identification: int


@dataclass(slots=True)
class IPv6Packet:
    src: str
    dst: str
    next_header: int  # the upper-layer protocol, after the extension headers
    payload: bytes = b""  # the upper layer's bytes (or, in a later fragment, the data)
    hop_limit: int = 64
    traffic_class: int = 0
    flow_label: int = 0
    # Each extension header in order: (its type, its bytes as on the wire).
    extensions: tuple[tuple[int, bytes], ...] = ()
    fragment: IPv6Fragment | None = None
    missing: int = 0  # bytes the payload length counts that the buffer did not hold

    @property
    def is_fragment(self) -> bool:
        return self.fragment is not None and (self.fragment.more or self.fragment.offset != 0)

    @property
    def later_fragment(self) -> bool:
        """A fragment other than the first: no upper-layer header in it."""
        return self.fragment is not None and self.fragment.offset != 0

    @classmethod
    def parse(cls, buf: bytes, offset: int = 0, *, allow_short: bool = False) -> IPv6Packet:
        """Parse the IPv6 packet at ``buf[offset:]``; bytes past its payload length
        (link padding) are ignored."""
        n = len(buf) - offset
        if n < IPV6_HEADER_LEN:
            raise MalformedPacket(f"truncated IPv6 header ({n} bytes)")
        vtf, plen, nh, hlim, src, dst = IPV6_HEADER.unpack_from(buf, offset)
        if vtf >> 28 != 6:
            raise MalformedPacket(f"IP version {vtf >> 28}, not 6")
        start = offset + IPV6_HEADER_LEN
        have = n - IPV6_HEADER_LEN
        if plen == 0:
            plen = _jumbo_length(buf, start, nh, have)
        missing = 0
        if plen > have:
            if not allow_short:
                raise MalformedPacket(f"payload length {plen} exceeds the {have} bytes received")
            missing, plen = plen - have, have
        end = start + plen
        exts, nh, i, frag = _walk(buf, start, end, nh)
        return cls(
            ipv6_to_str(src),
            ipv6_to_str(dst),
            nh,
            buf[i:end],
            hlim,
            (vtf >> 20) & 0xFF,
            vtf & 0xFFFFF,
            exts,
            frag,
            missing,
        )

    def header(self, payload_length: int | None = None) -> bytes:
        """The fixed header and the extension headers as held, for an upper-layer
        payload of ``payload_length`` bytes (default: ``payload``'s). The extension
        headers' next-header bytes are written as held, so they must chain to
        ``next_header``."""
        ext = b"".join(raw for _, raw in self.extensions)
        first = self.extensions[0][0] if self.extensions else self.next_header
        vtf = 6 << 28 | (self.traffic_class & 0xFF) << 20 | (self.flow_label & 0xFFFFF)
        head = IPV6_HEADER.pack(
            vtf,
            len(ext) + (len(self.payload) if payload_length is None else payload_length),
            first,
            self.hop_limit,
            _IPV6_RAW[self.src],
            _IPV6_RAW[self.dst],
        )
        return head + ext if ext else head

    def emit(self) -> bytes:
        """The header, the extension headers as held, and the payload."""
        return self.header() + self.payload


def _jumbo_length(buf: bytes, start: int, nh: int, have: int) -> int:
    """A zero payload length's meaning: the Jumbo Payload option's length when a
    hop-by-hop header carries one, else the bytes present (a TSO/GSO capture)."""
    if nh == NH_HOP_BY_HOP and have >= 8:
        end = min(start + (buf[start + 1] + 1) * 8, start + have)
        i = start + 2
        while i + 2 <= end:
            kind = buf[i]
            if kind == 0:  # Pad1
                i += 1
                continue
            if kind == _JUMBO_OPTION and i + 6 <= end and buf[i + 1] == 4:
                return int.from_bytes(buf[i + 2 : i + 6], "big")
            i += 2 + buf[i + 1]
    return have


def _walk(
    buf: bytes, i: int, end: int, nh: int
) -> tuple[tuple[tuple[int, bytes], ...], int, int, IPv6Fragment | None]:
    """The extension headers from ``buf[i]`` on: (headers, upper-layer protocol, its
    offset, the fragment header if any)."""
    exts: list[tuple[int, bytes]] = []
    frag: IPv6Fragment | None = None
    while True:
        if nh in _GENERIC or nh == NH_AH:
            if i + 2 > end:
                raise MalformedPacket(f"truncated IPv6 extension header {nh}")
            size = (buf[i + 1] + 2) * 4 if nh == NH_AH else (buf[i + 1] + 1) * 8
        elif nh == NH_FRAGMENT:
            size = 8
        else:
            return tuple(exts), nh, i, frag
        if i + size > end:
            raise MalformedPacket(f"IPv6 extension header {nh} overruns the packet")
        raw = buf[i : i + size]
        exts.append((nh, raw))
        if nh == NH_FRAGMENT:
            off_flags = int.from_bytes(raw[2:4], "big")
            frag = IPv6Fragment(
                off_flags >> 3, bool(off_flags & 1), int.from_bytes(raw[4:8], "big")
            )
            if frag.offset:
                return tuple(exts), raw[0], i + size, frag
        nh = raw[0]
        i += size
