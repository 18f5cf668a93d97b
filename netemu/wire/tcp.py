"""TCP segments (RFC 9293 §3.1) and every option a peer may send.

Options keep their order and any bytes after an End-of-Option-List, so a parsed
segment emits back byte-identical. Known options with an unexpected length are
kept as ``RawOption`` (as Linux ignores them) rather than rejected.
"""

from __future__ import annotations

import enum
import struct
from dataclasses import dataclass

from .checksum import fold, pseudo_header_sum
from .errors import BadChecksum, MalformedPacket

TCP_HEADER = struct.Struct("!HHIIHHHH")
TCP_MIN_LEN = 20
MAX_OPTIONS_LEN = 40

# Flag bits of the 12-bit field after the data offset (RFC 9293 §3.1, RFC 3168, RFC 3540).
FIN = 0x001
SYN = 0x002
RST = 0x004
PSH = 0x008
ACK = 0x010
URG = 0x020
ECE = 0x040
CWR = 0x080
NS = 0x100
RESERVED_BITS = 0xE00


class TcpFlags(enum.IntFlag):
    """For display only: the hot path uses the plain ints above."""

    FIN = FIN
    SYN = SYN
    RST = RST
    PSH = PSH
    ACK = ACK
    URG = URG
    ECE = ECE
    CWR = CWR
    NS = NS
    RES1 = 0x200
    RES2 = 0x400
    RES3 = 0x800


_FLAG_LETTERS = ((SYN, "S"), (FIN, "F"), (RST, "R"), (PSH, "P"), (ACK, "."), (URG, "U"),
                 (ECE, "E"), (CWR, "W"), (NS, "N"))


def flags_str(flags: int) -> str:
    """tcpdump-style flags: S, F, R, P, '.' for ACK, U, E, W, N."""
    return "".join(c for bit, c in _FLAG_LETTERS if flags & bit) or "none"


# --- options -----------------------------------------------------------------

OPT_EOL = 0
OPT_NOP = 1
OPT_MSS = 2
OPT_WSCALE = 3
OPT_SACK_PERMITTED = 4
OPT_SACK = 5
OPT_TIMESTAMP = 8


@dataclass(slots=True)
class EolOption:
    def emit(self) -> bytes:
        return b"\x00"


@dataclass(slots=True)
class NopOption:
    def emit(self) -> bytes:
        return b"\x01"


@dataclass(slots=True)
class MssOption:
    mss: int

    def emit(self) -> bytes:
        return b"\x02\x04" + self.mss.to_bytes(2, "big")


@dataclass(slots=True)
class WindowScaleOption:
    shift: int

    def emit(self) -> bytes:
        return bytes((3, 3, self.shift))


@dataclass(slots=True)
class SackPermittedOption:
    def emit(self) -> bytes:
        return b"\x04\x02"


@dataclass(slots=True)
class SackOption:
    blocks: tuple[tuple[int, int], ...]  # (left edge, right edge) pairs

    def emit(self) -> bytes:
        out = bytearray((5, 2 + 8 * len(self.blocks)))
        for left, right in self.blocks:
            out += left.to_bytes(4, "big") + right.to_bytes(4, "big")
        return bytes(out)


@dataclass(slots=True)
class TimestampOption:
    tsval: int
    tsecr: int

    def emit(self) -> bytes:
        return _TS.pack(8, 10, self.tsval, self.tsecr)


@dataclass(slots=True)
class RawOption:
    """Any other option, or a known kind with an unexpected length: kept verbatim."""

    kind: int
    data: bytes

    def emit(self) -> bytes:
        return bytes((self.kind, 2 + len(self.data))) + self.data


TcpOption = (EolOption | NopOption | MssOption | WindowScaleOption | SackPermittedOption
             | SackOption | TimestampOption | RawOption)

EOL = EolOption()
NOP = NopOption()
SACK_PERMITTED = SackPermittedOption()
_TS = struct.Struct("!BBII")
_TS_BODY = struct.Struct("!II")
_NOP_NOP_TS = b"\x01\x01\x08\x0a"


def parse_options(buf: bytes, start: int, end: int) -> tuple[tuple[TcpOption, ...], bytes]:
    """Options in ``buf[start:end]``, and the bytes that follow an EOL (padding)."""
    # Fast path: the NOP NOP TS layout every Linux data segment carries.
    if end - start == 12 and buf[start:start + 4] == _NOP_NOP_TS:
        tsval, tsecr = _TS_BODY.unpack_from(buf, start + 4)
        return (NOP, NOP, TimestampOption(tsval, tsecr)), b""
    opts: list[TcpOption] = []
    append = opts.append
    i = start
    while i < end:
        kind = buf[i]
        if kind == 1:  # NOP
            append(NOP)
            i += 1
            continue
        if kind == 0:  # EOL: the rest is padding
            append(EOL)
            return tuple(opts), bytes(buf[i + 1:end])
        if i + 1 >= end:
            raise MalformedPacket(f"TCP option kind {kind} truncated (no length byte)")
        length = buf[i + 1]
        if length < 2:
            raise MalformedPacket(f"TCP option kind {kind} has bad length {length}")
        nxt = i + length
        if nxt > end:
            raise MalformedPacket(f"TCP option kind {kind} length {length} overruns the header")
        if kind == 8 and length == 10:
            append(TimestampOption(*_TS_BODY.unpack_from(buf, i + 2)))
        elif kind == 2 and length == 4:
            append(MssOption(buf[i + 2] << 8 | buf[i + 3]))
        elif kind == 3 and length == 3:
            append(WindowScaleOption(buf[i + 2]))
        elif kind == 4 and length == 2:
            append(SACK_PERMITTED)
        elif kind == 5 and length > 2 and (length - 2) & 7 == 0:
            vals = struct.unpack_from(f"!{(length - 2) >> 2}I", buf, i + 2)
            append(SackOption(tuple(zip(vals[0::2], vals[1::2], strict=True))))
        else:
            append(RawOption(kind, bytes(buf[i + 2:nxt])))
        i = nxt
    return tuple(opts), b""


def emit_options(options: tuple[TcpOption, ...], padding: bytes = b"") -> bytes:
    """Option bytes padded with zeros (EOL) to a multiple of 4."""
    raw = b"".join([o.emit() for o in options]) + padding
    rem = len(raw) & 3
    if rem:
        raw += b"\x00" * (4 - rem)
    if len(raw) > MAX_OPTIONS_LEN:
        raise ValueError(f"TCP options take {len(raw)} bytes, more than {MAX_OPTIONS_LEN}")
    return raw


# --- the segment --------------------------------------------------------------


@dataclass(slots=True)
class TcpSegment:
    src_port: int
    dst_port: int
    seq: int
    ack: int
    flags: int
    window: int
    payload: bytes = b""
    options: tuple[TcpOption, ...] = ()
    urgent: int = 0
    checksum: int | None = None  # None: computed on emit
    padding: bytes = b""  # option-area bytes after an EOL, kept for exact re-emission

    # -- sequence space ---------------------------------------------------------
    @property
    def seg_len(self) -> int:
        """SEG.LEN: payload plus one for SYN and one for FIN (RFC 9293 §3.4)."""
        return len(self.payload) + (self.flags & SYN and 1) + (self.flags & FIN and 1)

    # -- option accessors (None when absent) ------------------------------------
    def _find(self, cls: type) -> TcpOption | None:
        for o in self.options:
            if type(o) is cls:
                return o
        return None

    @property
    def mss(self) -> int | None:
        o = self._find(MssOption)
        return o.mss if o else None  # type: ignore[union-attr]

    @property
    def wscale(self) -> int | None:
        o = self._find(WindowScaleOption)
        return o.shift if o else None  # type: ignore[union-attr]

    @property
    def sack_permitted(self) -> bool:
        return self._find(SackPermittedOption) is not None

    @property
    def timestamp(self) -> TimestampOption | None:
        return self._find(TimestampOption)  # type: ignore[return-value]

    @property
    def sack_blocks(self) -> tuple[tuple[int, int], ...]:
        o = self._find(SackOption)
        return o.blocks if o else ()  # type: ignore[union-attr]

    @property
    def flag_names(self) -> str:
        return flags_str(self.flags)

    # -- bytes --------------------------------------------------------------------
    @classmethod
    def parse(cls, buf: bytes, pseudo_sum: int | None = None) -> TcpSegment:
        """Parse ``buf`` (exactly the segment). ``pseudo_sum`` is the word sum of the
        IPv4 pseudo-header (see ``pseudo_header_sum``); when given, the checksum is verified."""
        n = len(buf)
        if n < TCP_MIN_LEN:
            raise MalformedPacket(f"truncated TCP header ({n} bytes)")
        sport, dport, seq, ack, off_flags, win, csum, urg = TCP_HEADER.unpack_from(buf)
        hlen = (off_flags >> 12) * 4
        if hlen < TCP_MIN_LEN:
            raise MalformedPacket(f"bad TCP data offset {off_flags >> 12}")
        if hlen > n:
            raise MalformedPacket(f"TCP data offset {off_flags >> 12} overruns the {n}-byte segment")
        if pseudo_sum is not None:
            v = int.from_bytes(buf, "big")
            if n & 1:
                v <<= 8
            v += pseudo_sum
            if v % 0xFFFF or not v:  # checksum.verifies(), inlined on the hot path
                raise BadChecksum(f"bad TCP checksum {csum:#06x}")
        if hlen > TCP_MIN_LEN:
            options, padding = parse_options(buf, TCP_MIN_LEN, hlen)
        else:
            options, padding = (), b""
        return cls(sport, dport, seq, ack, off_flags & 0x0FFF, win, bytes(buf[hlen:]),
                   options, urg, csum, padding)

    def emit(self, src_ip: str, dst_ip: str) -> bytes:
        """Exact segment bytes; the checksum covers the pseudo-header of src_ip → dst_ip."""
        opts = emit_options(self.options, self.padding) if self.options or self.padding else b""
        hlen = TCP_MIN_LEN + len(opts)
        hdr = bytearray(TCP_HEADER.pack(
            self.src_port, self.dst_port, self.seq, self.ack,
            (hlen << 10) | self.flags, self.window, 0, self.urgent,
        ))
        seg = hdr + opts + self.payload if opts or self.payload else hdr
        if self.checksum is None:
            n = len(seg)
            v = int.from_bytes(seg, "big")
            if n & 1:
                v <<= 8
            csum = fold(v + pseudo_header_sum(src_ip, dst_ip, 6, n))
        else:
            csum = self.checksum
        seg[16] = csum >> 8
        seg[17] = csum & 0xFF
        return bytes(seg)

    def summary(self) -> str:
        s = f"{self.src_port} > {self.dst_port} [{flags_str(self.flags)}] seq={self.seq}"
        if self.flags & ACK:
            s += f" ack={self.ack}"
        return s + f" win={self.window} len={len(self.payload)}"
