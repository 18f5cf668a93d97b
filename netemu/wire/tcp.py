"""TCP segments (RFC 9293 §3.1) and every option a peer may send.

Options keep their order and any bytes after an End-of-Option-List, so a parsed
segment emits back byte-identical. Known options with an unexpected length are
kept as ``RawOption`` (as Linux ignores them) rather than rejected. An option whose
length byte is missing, below 2 or runs past the header ends the parse as it ends
Linux's (``tcp_parse_options``: "silly options", "don't parse partial options"):
the segment keeps the options before it, then a ``MalformedOption`` holding the rest
of the option area verbatim; the segment itself is not refused.
"""

from __future__ import annotations

import enum
import struct
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from functools import partial
from typing import TYPE_CHECKING, TypeVar, cast

from . import _codegen
from .addr import _ADDR_SUM, _Interned
from .checksum import mod_ffff as _mod_ffff
from .checksum import word_sum_mod as _word_sum_mod
from .errors import BadChecksum, MalformedPacket

if TYPE_CHECKING:
    from .frame import FrameHead, FrameHead6

TCP_HEADER = struct.Struct("!HHIIHHHH")
_unpack_header = TCP_HEADER.unpack_from
_pack_header = TCP_HEADER.pack
_pack_header_ts = struct.Struct("!HHIIHHHHIII").pack  # the header, then NOP NOP TSopt
# Ethernet + IPv4 headers as a FrameHead packs them (see frame.py), then the above.
_pack_frame_ts = struct.Struct("!16sHHH2sH8sHHIIHHHHIII").pack
# Ethernet + IPv6 headers as a FrameHead6 packs them, then the header with NOP NOP TSopt.
_pack_frame6_ts = struct.Struct("!18sH2s32sHHIIHHHHIII").pack
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
NS = 0x100  # (the top three bits, 0xE00, are reserved)


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


_FLAG_LETTERS = (
    (SYN, "S"),
    (FIN, "F"),
    (RST, "R"),
    (PSH, "P"),
    (ACK, "."),
    (URG, "U"),
    (ECE, "E"),
    (CWR, "W"),
    (NS, "N"),
)


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

_MSS = struct.Struct("!BBH")
_WS = struct.Struct("!BBB")
_TS = struct.Struct("!BBII")
_TS_BODY = struct.Struct("!II")
# SACK bodies by option length: 1 to 4 blocks (a 5th would not fit in 40 bytes).
_SACK_BODY = {2 + 8 * n: struct.Struct(f"!{2 * n}I") for n in range(1, 5)}


@dataclass(slots=True)
class EolOption:
    def emit(self) -> bytes:
        return b"\x00"


@dataclass(slots=True)
class NopOption:
    def emit(self) -> bytes:
        return b"\x01"


@dataclass(frozen=True, slots=True)
class MssOption:
    mss: int

    def emit(self) -> bytes:
        return _MSS.pack(2, 4, self.mss)


@dataclass(frozen=True, slots=True)
class WindowScaleOption:
    shift: int

    def emit(self) -> bytes:
        return _WS.pack(3, 3, self.shift)


@dataclass(slots=True)
class SackPermittedOption:
    def emit(self) -> bytes:
        return b"\x04\x02"


@dataclass(slots=True)
class SackOption:
    blocks: tuple[tuple[int, int], ...]  # (left edge, right edge) pairs

    def emit(self) -> bytes:
        blocks = self.blocks
        return bytes((5, 2 + 8 * len(blocks))) + _SACK_BODY[2 + 8 * len(blocks)].pack(
            *[edge for block in blocks for edge in block]
        )


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


@dataclass(frozen=True, slots=True)
class MalformedOption:
    """Where the option list stops: an option whose length byte is missing, is below 2,
    or runs past the end of the header, and every byte after it in the option area,
    verbatim (``raw`` starts at its kind byte). Linux reads a segment's options up to
    such an option, ignores the rest and processes the segment (``tcp_parse_options``),
    so a parsed segment carries the options before it, then this, last."""

    raw: bytes

    @property
    def kind(self) -> int:
        return self.raw[0]

    @property
    def length(self) -> int | None:
        """The length byte; None when the option area ends before it."""
        return self.raw[1] if len(self.raw) > 1 else None

    @property
    def reason(self) -> str:
        kind, length, left = self.kind, self.length, len(self.raw)
        if length is None:
            return f"TCP option kind {kind} truncated (no length byte)"
        if length < 2:
            return f"TCP option kind {kind} has bad length {length}"
        if length > left:
            return f"TCP option kind {kind} length {length} overruns the header ({left} bytes left)"
        return f"TCP option kind {kind} length {length}: the option list stopped here"

    def emit(self) -> bytes:
        return self.raw


TcpOption = (
    EolOption
    | NopOption
    | MssOption
    | WindowScaleOption
    | SackPermittedOption
    | SackOption
    | TimestampOption
    | RawOption
    | MalformedOption
)
_Opt = TypeVar("_Opt", bound=TcpOption)

EOL = EolOption()
NOP = NopOption()
SACK_PERMITTED = SackPermittedOption()
# A parsed MSS or window-scale option is a value, shared by every frame that
# carries it (the records are frozen): one per value seen, not one per frame.
MSS_OPTIONS: Mapping[int, MssOption] = _Interned(MssOption)
WSCALE_OPTIONS: Mapping[int, WindowScaleOption] = _Interned(WindowScaleOption)


def _parse_options_general(buf: bytes, start: int, end: int) -> tuple[tuple[TcpOption, ...], bytes]:
    """Any option area, option by option. Never raises: a bad length ends the list
    with a ``MalformedOption`` (see the module's docstring)."""
    opts: list[TcpOption] = []
    append = opts.append
    i = start
    while i < end:
        kind = buf[i]
        if kind == OPT_NOP:
            append(NOP)
            i += 1
            continue
        if kind == OPT_EOL:  # the rest is padding
            append(EOL)
            return tuple(opts), buf[i + 1 : end]
        nxt = i + buf[i + 1] if i + 1 < end else end + 1
        if nxt < i + 2 or nxt > end:  # no length byte, a length below 2, or an overrun
            append(MalformedOption(buf[i:end]))
            return tuple(opts), b""
        length = nxt - i
        if kind == OPT_TIMESTAMP and length == 10:
            append(TimestampOption(*_TS_BODY.unpack_from(buf, i + 2)))
        elif kind == OPT_MSS and length == 4:
            append(MSS_OPTIONS[buf[i + 2] << 8 | buf[i + 3]])
        elif kind == OPT_WSCALE and length == 3:
            append(WSCALE_OPTIONS[buf[i + 2]])
        elif kind == OPT_SACK_PERMITTED and length == 2:
            append(SACK_PERMITTED)
        elif kind == OPT_SACK and length in _SACK_BODY:
            edges = _SACK_BODY[length].unpack_from(buf, i + 2)
            append(SackOption(tuple(zip(edges[0::2], edges[1::2], strict=True))))
        else:
            append(RawOption(kind, buf[i + 2 : nxt]))
        i = nxt
    return tuple(opts), b""


# Layouts of the option area that real stacks send all the time, decoded by
# generated code: one unpack, a compare of every kind and length byte against the
# layout, and the records built straight from the unpacked values (see
# _codegen.py). Anything else, or any mismatch, takes the general path above;
# tests/wire checks every layout against it. frame.py compiles the same layouts
# into whole-frame decoders.
#
# A token is: the fixed kind (and length) bytes, the body's struct format, and
# the record: a singleton's name, an interned table (its one value the key), or a
# class and its field values.
_TOKENS: dict[str, tuple[bytes, str, str, tuple[str, ...]]] = {
    "NOP": (bytes((OPT_NOP,)), "", "NOP", ()),
    "MSS": (bytes((OPT_MSS, 4)), "H", "MSS_OPTIONS", ("{}",)),
    "WS": (bytes((OPT_WSCALE, 3)), "B", "WSCALE_OPTIONS", ("{}",)),
    "SACKOK": (bytes((OPT_SACK_PERMITTED, 2)), "", "SACK_PERMITTED", ()),
    "TS": (bytes((OPT_TIMESTAMP, 10)), "II", "TimestampOption", ("{}", "{}")),
    **{
        f"SACK{n}": (
            bytes((OPT_SACK, 2 + 8 * n)),
            "II" * n,
            "SackOption",
            ("(" + "({}, {}), " * n + ")",),
        )
        for n in range(1, 5)
    },
}
LAYOUT_SPECS = (  # most common first within each length
    "NOP NOP TS",  # Linux data segments
    "MSS SACKOK TS NOP WS",  # Linux SYN and SYN-ACK
    "MSS NOP NOP SACKOK NOP WS",  # Linux SYN without timestamps
    "MSS NOP WS NOP NOP SACKOK",  # Windows SYN
    "MSS",
    # Linux ACKs with SACK blocks, with and without timestamps.
    "NOP NOP TS NOP NOP SACK1",
    "NOP NOP TS NOP NOP SACK2",
    "NOP NOP TS NOP NOP SACK3",
    "NOP NOP SACK1",
    "NOP NOP SACK2",
    "NOP NOP SACK3",
    "NOP NOP SACK4",
)


@dataclass(frozen=True)
class OptionLayout:
    """Pieces of generated code decoding one layout, for embedding in a decoder."""

    spec: str
    length: int  # bytes of option area
    first_kind: int | None  # the first option's kind
    fmt: str  # struct format of the area (no byte-order prefix)
    names: tuple[str, ...]  # a variable per unpacked value
    check: str  # expression: every kind and length byte is as the layout says
    make: tuple[str, ...]  # statements building the option records
    options: str  # expression: the options tuple
    namespace: dict[str, object]  # globals the code needs


def option_layout(spec: str) -> OptionLayout:
    fmt, head = "", b""
    names: list[str] = []
    checks: list[str] = []
    make: list[str] = []
    items: list[str] = []
    namespace: dict[str, object] = {
        "_new": object.__new__,
        "NOP": NOP,
        "SACK_PERMITTED": SACK_PERMITTED,
    }

    def flush_head() -> None:
        # Fixed bytes are unpacked as ints of 4, 2 or 1 bytes: comparing small ints
        # is cheaper than comparing bytes objects.
        nonlocal fmt, head
        while head:
            size = 4 if len(head) >= 4 else 2 if len(head) >= 2 else 1
            names.append(f"o_k{len(names)}")
            checks.append(f"{names[-1]} == {int.from_bytes(head[:size], 'big'):#x}")
            fmt += {4: "I", 2: "H", 1: "B"}[size]
            head = head[size:]

    for token in spec.split():
        token_head, body, record, args = _TOKENS[token]
        head += token_head
        if not body:
            items.append(record)
            continue
        flush_head()
        body_names = [f"o_v{len(names) + j}" for j in range(len(body))]
        names.extend(body_names)
        values = iter(body_names)
        fmt += body
        obj = f"o_{len(items)}"
        namespace[record] = made = globals()[record]
        fields = [arg.format(*[next(values) for _ in range(arg.count("{}"))]) for arg in args]
        if isinstance(made, _Interned):
            make.append(f"{obj} = {record}[{fields[0]}]")
        else:
            make += _codegen.record(obj, made, fields)
        items.append(obj)
    flush_head()
    first_kind = _TOKENS[spec.split()[0]][0][0] if spec else None
    return OptionLayout(
        spec,
        struct.calcsize("!" + fmt),
        first_kind,
        fmt,
        tuple(names),
        " and ".join(checks),
        tuple(make),
        "(" + "".join(f"{item}, " for item in items) + ")",
        namespace,
    )


OptionDecoder = Callable[[bytes, int], "tuple[TcpOption, ...] | None"]


def _compile_option_decoder(layout: OptionLayout) -> OptionDecoder:
    """decode(buf, start) -> the options, or None when the bytes are not this layout."""
    body = "\n        ".join(layout.make)
    src = (
        f"def decode(buf, start):\n"
        f"    {', '.join(layout.names)}, = _unpack_from(buf, start)\n"
        f"    if {layout.check}:\n"
        f"        {body}\n"
        f"        return {layout.options}\n"
        f"    return None\n"
    )
    namespace = {**layout.namespace, "_unpack_from": struct.Struct("!" + layout.fmt).unpack_from}
    # Code built from the fixed _TOKENS table above.
    return cast(OptionDecoder, _codegen.define(src, namespace, "decode"))


OPTION_LAYOUTS = tuple(option_layout(spec) for spec in LAYOUT_SPECS)


def _option_decoders(length: int) -> tuple[OptionDecoder, ...]:
    return tuple(
        _compile_option_decoder(layout) for layout in OPTION_LAYOUTS if layout.length == length
    )


# option-area length -> decoders to try, in order (compiled on first use: _codegen.lazy)
_DECODERS: dict[int, tuple[OptionDecoder, ...]] = {}
for _length in dict.fromkeys(layout.length for layout in OPTION_LAYOUTS):
    _DECODERS[_length] = _codegen.lazy(_DECODERS, _length, partial(_option_decoders, _length))
del _length


def warm_option_decoders() -> None:
    """Compile every option decoder now (see frame.warm_decoders)."""
    for length in _DECODERS:
        _DECODERS[length] = _option_decoders(length)


def parse_options(buf: bytes, start: int, end: int) -> tuple[tuple[TcpOption, ...], bytes]:
    """Options in ``buf[start:end]``, and the bytes that follow an EOL (padding)."""
    for decode in _DECODERS.get(end - start, ()):
        options = decode(buf, start)
        if options is not None:
            return options, b""
    return _parse_options_general(buf, start, end)


def emit_options(options: tuple[TcpOption, ...], padding: bytes = b"") -> bytes:
    """Option bytes padded with zeros (EOL) to a multiple of 4."""
    raw = b"".join([o.emit() for o in options])
    if padding:
        raw += padding
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
    def _find(self, cls: type[_Opt]) -> _Opt | None:
        for o in self.options:
            if isinstance(o, cls):  # (no option class has subclasses)
                return o
        return None

    @property
    def mss(self) -> int | None:
        o = self._find(MssOption)
        return o.mss if o else None

    @property
    def wscale(self) -> int | None:
        o = self._find(WindowScaleOption)
        return o.shift if o else None

    @property
    def sack_permitted(self) -> bool:
        return self._find(SackPermittedOption) is not None

    @property
    def timestamp(self) -> TimestampOption | None:
        return self._find(TimestampOption)

    @property
    def sack_blocks(self) -> tuple[tuple[int, int], ...]:
        o = self._find(SackOption)
        return o.blocks if o else ()

    @property
    def malformed_option(self) -> MalformedOption | None:
        """The option the list stopped at (always the last), or None."""
        opts = self.options
        o = opts[-1] if opts else None
        return o if isinstance(o, MalformedOption) else None

    @property
    def flag_names(self) -> str:
        return flags_str(self.flags)

    # -- bytes --------------------------------------------------------------------
    @classmethod
    def parse(cls, buf: bytes, pseudo_sum: int | None = None) -> TcpSegment:
        """Parse ``buf`` (exactly the segment). ``pseudo_sum`` is the word sum of the
        IPv4 pseudo-header (see ``pseudo_header_sum``); when given, the checksum is verified."""
        if type(buf) is not bytes:
            buf = bytes(buf)
        n = len(buf)
        if n < TCP_MIN_LEN:
            raise MalformedPacket(f"truncated TCP header ({n} bytes)")
        sport, dport, seq, ack, off_flags, win, csum, urg = _unpack_header(buf)
        hlen = off_flags >> 12 << 2
        if hlen < TCP_MIN_LEN:
            raise MalformedPacket(f"bad TCP data offset {off_flags >> 12}")
        if hlen > n:
            raise MalformedPacket(
                f"TCP data offset {off_flags >> 12} overruns the {n}-byte segment"
            )
        if pseudo_sum is not None:
            v = int.from_bytes(buf, "big")
            if n & 1:
                v <<= 8
            v += pseudo_sum
            if not v or _mod_ffff(v):  # checksum.verifies(), inlined on the hot path
                raise BadChecksum(f"bad TCP checksum {csum:#06x}")
        if hlen > TCP_MIN_LEN:
            options, padding = parse_options(buf, TCP_MIN_LEN, hlen)
        else:
            options, padding = (), b""
        return cls(
            sport, dport, seq, ack, off_flags & 0x0FFF, win, buf[hlen:], options, urg, csum, padding
        )

    def emit(
        self,
        src_ip: str,
        dst_ip: str,
        head: FrameHead | FrameHead6 | None = None,
        ident: int = 0,
    ) -> bytes:
        """Exact segment bytes; the checksum covers the pseudo-header of src_ip → dst_ip
        (IPv4's or IPv6's, by the addresses: the two sum alike). With ``head`` (a
        ``frame.FrameHead`` or, for IPv6, ``frame.FrameHead6`` for the same addresses),
        the whole frame: its Ethernet and IP headers (an IPv4 identification
        ``ident``) are packed with the segment's, so the payload is copied once."""
        options = self.options
        padding = self.padding
        ts = None
        if (
            len(options) == 3
            and not padding
            and options[2].__class__ is TimestampOption
            and options[0].__class__ is NopOption
            and options[1].__class__ is NopOption
        ):
            # NOP, NOP, TSopt alone: nearly every segment of an established
            # connection (Linux's layout). Packed with the header in one go; its
            # word sum straight from the fields (0x0101 + 0x080A: NOP, NOP, kind
            # 8, length 10).
            ts = options[2]
            olen = 12
            osum = 0x0101 + 0x080A + ts.tsval + ts.tsecr
        else:
            opts = emit_options(options, padding) if options or padding else b""
            olen = len(opts)
            osum = int.from_bytes(opts, "big") if opts else 0
        payload = self.payload
        sport = self.src_port
        dport = self.dst_port
        seq = self.seq
        ack = self.ack
        win = self.window
        urg = self.urgent
        off_flags = (TCP_MIN_LEN + olen) << 10 | self.flags
        csum = self.checksum
        if csum is None:
            # The word sum straight from the header fields (a 32-bit field is congruent
            # to the sum of its halves), the pseudo-header, options and payload; the
            # options are a multiple of 4 long, so the payload starts on a word.
            s = (
                sport
                + dport
                + seq
                + ack
                + off_flags
                + win
                + urg
                + 26
                + olen
                + len(payload)
                + osum
                + (_ADDR_SUM[src_ip] + _ADDR_SUM[dst_ip] if head is None else head.pseudo)
            )
            if payload:  # (26: TCP + header length)
                s += _word_sum_mod(payload, 0, len(payload))
            r = s % 0xFFFF  # checksum.fold(s), inlined: s is not 0, the protocol is in it
            csum = 0xFFFF - r if r else 0
        if ts is None:
            hdr = _pack_header(sport, dport, seq, ack, off_flags, win, csum, urg)
            if opts:
                hdr += opts
            if head is not None:
                hdr = head.pack(20 + len(hdr) + len(payload), ident) + hdr
        elif head is None:
            hdr = _pack_header_ts(
                sport, dport, seq, ack, off_flags, win, csum, urg, 0x0101080A, ts.tsval, ts.tsecr
            )
        elif head.six:
            hdr = _pack_frame6_ts(
                head.start,
                32 + len(payload),  # the IPv6 payload length: TCP + options + data
                b"\x06\x40",
                head.addrs,
                sport,
                dport,
                seq,
                ack,
                off_flags,
                win,
                csum,
                urg,
                0x0101080A,
                ts.tsval,
                ts.tsecr,
            )
        else:
            total = 52 + len(payload)  # IPv4 + TCP + options
            hdr = _pack_frame_ts(
                head.start,
                total,
                ident,
                0x4000,
                b"\x40\x06",
                -(head.word_sum + total + ident) % 0xFFFF,
                head.addrs,
                sport,
                dport,
                seq,
                ack,
                off_flags,
                win,
                csum,
                urg,
                0x0101080A,
                ts.tsval,
                ts.tsecr,
            )
        return hdr + payload if payload else hdr

    def summary(self) -> str:
        s = f"{self.src_port} > {self.dst_port} [{flags_str(self.flags)}] seq={self.seq}"
        if self.flags & ACK:
            s += f" ack={self.ack}"
        return s + f" win={self.window} len={len(self.payload)}"
