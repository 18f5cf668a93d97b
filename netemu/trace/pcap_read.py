"""Reading pcap and pcapng, a packet at a time (``netemu show``: nothing but the
packet being read is held, gzip included).

``open_capture(path)`` checks the file's header at once (CaptureError: not a capture;
OSError: unreadable) and returns a ``CaptureStream``: iterate it for the packets in
file order; once it is exhausted, ``damage`` says where and how the file is damaged
(a corrupt block, a record cut off, a gzip stream cut short), or None. The file is
read in chunks of 1 MiB (decompressed as a stream when it is gzip, by its magic
``1f 8b``). ``load_capture`` is the same, every packet in a list.

Classic pcap: either byte order, µs or ns timestamps. pcapng: sections in either
byte order, each interface its own link type, time resolution and offset; EPB, SPB
and the obsolete PB, with their comments; other blocks skipped.
"""

from __future__ import annotations

import os
import struct
import zlib
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import BinaryIO

PCAP_MAGIC_US = 0xA1B2C3D4
PCAP_MAGIC_NS = 0xA1B23C4D
PCAPNG_SHB = 0x0A0D0D0A

# A record longer than this is corrupt (Wireshark's limit for most link types).
_MAX_RECORD = 262144
_GZIP_MAGIC = b"\x1f\x8b"
_CHUNK = 1 << 20
_GZ_PIECE = 1 << 16  # compressed bytes fed at once (the output of a failing one is lost)


@dataclass(slots=True)
class CapturedPacket:
    ts: float  # seconds since the epoch
    data: bytes  # as captured, in the link type's framing
    linktype: int
    orig_len: int
    comment: str = ""  # pcapng opt_comment (the first), if any


class CaptureError(ValueError):
    """Not a pcap/pcapng file, or a link type netemu cannot reframe as Ethernet."""


@dataclass
class Capture:
    """A capture file's packets, in file order, and, when the file is damaged (a
    corrupt block, a record cut off, a bad magic inside), where and how: everything
    before the damage is in ``packets``."""

    packets: list[CapturedPacket]
    damage: str | None = None  # "frame 13 at byte offset 4567: bad block length 7"
    compressed: bool = False  # gzip


class _Source:
    """A file's bytes (decompressed when gzip), a chunk at a time: ``buf[pos:]`` is what
    has not been read yet, ``base`` the offset of ``buf[0]`` in the (decompressed) file."""

    def __init__(self, f: BinaryIO) -> None:
        head = f.read(2)
        self.compressed = head == _GZIP_MAGIC
        # None: a plain file; "": a whole gzip stream; else what is wrong with it
        self.gzip_damage: str | None = "" if self.compressed else None
        if self.compressed:
            f.seek(0)
            self.chunks: Iterator[bytes] = self._gunzip(f)
            self.buf = b""
        else:
            self.chunks = iter(lambda: f.read(_CHUNK), b"")
            self.buf = head
        self.pos = 0
        self.base = 0

    def need(self, n: int) -> bool:
        """Are ``n`` more bytes there (read more as needed)?"""
        while len(self.buf) - self.pos < n:
            chunk = next(self.chunks, None)
            if chunk is None:
                return False
            self.base += self.pos
            self.buf = self.buf[self.pos :] + chunk
            self.pos = 0
        return True

    def left(self) -> int:
        return len(self.buf) - self.pos

    def _gunzip(self, f: BinaryIO) -> Iterator[bytes]:
        """The decompressed bytes, a chunk at a time; ``gzip_damage`` says at the end
        what is wrong with the compressed stream. What came before the damage is kept,
        to within a few hundred bytes: the stream is fed in pieces, and the piece that
        fails is fed again, finely, from a copy of the state before it (a bad CRC at
        the end loses nothing; tshark reads such a file up to the damage too)."""
        d = zlib.decompressobj(16 + zlib.MAX_WBITS)
        fresh, pos = True, 0  # fresh: the member being read has had no byte yet
        while chunk := f.read(_CHUNK):
            while chunk:
                if d.eof:  # another member follows, or trailing bytes gzip ignores too
                    if chunk[:1] != _GZIP_MAGIC[:1]:
                        return
                    d, fresh = zlib.decompressobj(16 + zlib.MAX_WBITS), True
                piece = chunk[:_GZ_PIECE]
                saved = d.copy()
                try:
                    out = d.decompress(piece)
                except zlib.error as e:
                    yield from self._up_to_damage(saved, piece)
                    self.gzip_damage = f"gzip: damaged near compressed byte {pos} ({e})"
                    return
                if out:
                    yield out
                fresh = False
                used = len(piece) - len(d.unused_data)
                pos += used
                chunk = d.unused_data + chunk[len(piece) :] if d.eof else chunk[len(piece) :]
        tail = d.flush()
        if tail:
            yield tail
        if not d.eof and not fresh:
            self.gzip_damage = "gzip: compressed stream cut short"

    @classmethod
    def _up_to_damage(
        cls, d: zlib._Decompress, piece: bytes, step: int = _GZ_PIECE // 16
    ) -> Iterator[bytes]:
        """What ``piece`` decompresses to before the byte where it fails: fed in steps,
        the failing step again in smaller ones, down to a byte (a bad CRC fails on the
        trailer's bytes, after every byte of data came out)."""
        for i in range(0, len(piece), step):
            part = piece[i : i + step]
            saved = d.copy()
            try:
                out = d.decompress(part)
            except zlib.error:
                if step > 1:
                    yield from cls._up_to_damage(saved, part, max(1, step // 16))
                return
            if out:
                yield out


class CaptureStream:
    """The packets of a capture file, read as they are iterated (``open_capture``)."""

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.name = os.fspath(path)
        self.damage: str | None = None
        self._f = open(path, "rb")  # noqa: SIM115 - closed when the packets are read
        try:
            self._src = _Source(self._f)
            self._packets = self._start()
        except BaseException:
            self._f.close()
            raise
        self.compressed = self._src.compressed

    def _start(self) -> Iterator[CapturedPacket]:
        src, name = self._src, self.name
        src.need(24)
        buf = src.buf
        if len(buf) < 4:
            if src.gzip_damage:  # nothing came out of it: say why, not "too short"
                raise CaptureError(f"{name}: {src.gzip_damage}")
            raise CaptureError(f"{name}: too short for a capture file ({len(buf)} bytes)")
        magic_le = struct.unpack_from("<I", buf)[0]
        magic_be = struct.unpack_from(">I", buf)[0]
        if magic_le == PCAPNG_SHB:
            reader = _PcapngReader(src)
            first = reader.first_block()
            if first is not None:  # not even its Section Header Block reads
                raise CaptureError(f"{name}: not a pcapng file ({first.partition(': ')[2]})")
            return reader.packets(self)
        for endian, magic in (("<", magic_le), (">", magic_be)):
            if magic in (PCAP_MAGIC_US, PCAP_MAGIC_NS):
                if len(buf) < 24:
                    raise CaptureError(f"{name}: truncated pcap header")
                return _pcap_packets(src, endian, magic == PCAP_MAGIC_NS, self)
        raise CaptureError(f"{name}: not a pcap or pcapng file (magic {buf[:4].hex()})")

    def __iter__(self) -> Iterator[CapturedPacket]:
        try:
            yield from self._packets
        finally:
            self._f.close()
        gz = self._src.gzip_damage
        if gz:
            self.damage = f"{self.damage} ({gz})" if self.damage else gz


def open_capture(path: str | os.PathLike[str]) -> CaptureStream:
    """A pcap or pcapng file (gzip-compressed or not), its packets read as they are
    iterated. CaptureError: not a capture at all; OSError: not readable."""
    return CaptureStream(path)


def load_capture(path: str | os.PathLike[str]) -> Capture:
    """Every packet of a pcap or pcapng file (gzip-compressed or not) up to any
    damage, which ``Capture.damage`` describes. CaptureError: not a capture at all;
    OSError: not readable."""
    stream = open_capture(path)
    packets = list(stream)
    return Capture(packets, stream.damage, stream.compressed)


def read_capture(path: str | os.PathLike[str]) -> list[CapturedPacket]:
    """All packets of a pcap or pcapng file, in file order, in their own framing, up
    to any damage (a packet cut short at the end of a capture that was killed is left
    out): ``load_capture``'s packets."""
    return load_capture(path).packets


def _pcap_packets(
    src: _Source, e: str, nanos: bool, out: CaptureStream
) -> Iterator[CapturedPacket]:
    buf = src.buf
    snaplen, linktype = struct.unpack_from(e + "II", buf, 16)
    linktype &= 0x0FFFFFFF  # upper bits: FCS info
    limit = max(_MAX_RECORD, snaplen)
    unpack = struct.Struct(e + "IIII").unpack_from
    per_sec = 1_000_000_000 if nanos else 1_000_000
    count = 0
    i, n = 24, len(buf)
    while True:
        if n - i < 16:
            src.pos = i
            if not src.need(16):
                left = src.left()
                if left:
                    where = f"frame {count + 1} at byte offset {src.base + src.pos}"
                    out.damage = f"{where}: record header cut short ({left} of 16 bytes)"
                return
            buf, i, n = src.buf, src.pos, len(src.buf)
        sec, frac, incl, orig = unpack(buf, i)
        if incl > limit:
            where = f"frame {count + 1} at byte offset {src.base + i}"
            out.damage = f"{where}: record length {incl} is more than {limit} (corrupt)"
            return
        if n - i - 16 < incl:
            src.pos = i
            if not src.need(16 + incl):
                where = f"frame {count + 1} at byte offset {src.base + src.pos}"
                out.damage = f"{where}: record cut short ({src.left() - 16} of {incl} bytes)"
                return
            buf, i, n = src.buf, src.pos, len(src.buf)
        yield CapturedPacket(sec + frac / per_sec, buf[i + 16 : i + 16 + incl], linktype, orig)
        count += 1
        i += 16 + incl


class _PcapngReader:
    """pcapng's blocks in order: sections (either byte order), interfaces (each its own
    link type, time resolution and offset), packets (EPB, SPB, the obsolete PB) and
    their comments; other blocks are skipped. Stops at the first damage and says where."""

    def __init__(self, src: _Source) -> None:
        self.src = src
        self.e = "<"
        # per interface: (linktype, ticks per second, offset seconds, snaplen)
        self.ifaces: list[tuple[int, int, int, int]] = []
        self.count = 0  # packets so far
        self.last_ts = 0.0
        self.got: CapturedPacket | None = None

    def first_block(self) -> str | None:
        """Read the Section Header Block: None, or what is wrong with it."""
        return self._next()

    def packets(self, out: CaptureStream) -> Iterator[CapturedPacket]:
        got = self.got
        if got is not None:
            self.got = None
            yield got
        while self.src.need(1):
            problem = self._next()
            if problem:
                out.damage = problem
                return
            got = self.got
            if got is not None:
                self.got = None
                yield got

    def _next(self) -> str | None:
        """Read one block (its packet, if any, into ``got``); what is wrong, if anything."""
        src = self.src
        where = f"frame {self.count + 1} at byte offset {src.base + src.pos}"
        if not src.need(12):
            return f"{where}: block header cut short ({src.left()} bytes)"
        buf, i = src.buf, src.pos
        btype = struct.unpack_from(self.e + "I", buf, i)[0]
        if btype == PCAPNG_SHB:
            bom = buf[i + 8 : i + 12]
            if bom == b"\x4d\x3c\x2b\x1a":
                self.e = "<"
            elif bom == b"\x1a\x2b\x3c\x4d":
                self.e = ">"
            else:
                return f"{where}: bad section byte-order magic {bom.hex()}"
            self.ifaces = []
        blen = struct.unpack_from(self.e + "I", buf, i + 4)[0]
        if blen < 12 or blen % 4:
            return f"{where}: bad block length {blen}"
        if not src.need(blen):
            return f"{where}: block cut short ({src.left()} of {blen} bytes)"
        buf, i = src.buf, src.pos
        if struct.unpack_from(self.e + "I", buf, i + blen - 4)[0] != blen:
            return f"{where}: block length {blen} does not match its trailer (corrupt)"
        problem = self._block(btype, buf[i + 8 : i + blen - 4])
        if problem:
            return f"{where}: {problem}"
        src.pos = i + blen
        return None

    def _block(self, btype: int, body: bytes) -> str | None:
        e = self.e
        if btype == 1:  # Interface Description Block
            if len(body) < 8:
                return "interface description too short"
            linktype, _, snaplen = struct.unpack_from(e + "HHI", body)
            per_sec, offset = 1_000_000, 0
            for code, value in _pcapng_options(body, 8, e):
                if code == 9 and value:  # if_tsresol
                    r = value[0]
                    per_sec = 2 ** (r & 0x7F) if r & 0x80 else 10 ** min(r, 18)
                elif code == 14 and len(value) == 8:  # if_tsoffset
                    offset = struct.unpack(e + "q", value)[0]
            self.ifaces.append((linktype, max(per_sec, 1), offset, snaplen))
        elif btype in (6, 2):  # Enhanced Packet Block, the obsolete Packet Block
            if len(body) < 20:
                return "packet block too short"
            if btype == 6:
                iface, hi, lo, cap, orig = struct.unpack_from(e + "IIIII", body)
            else:
                iface, _drops, hi, lo, cap, orig = struct.unpack_from(e + "HHIIII", body)
            if iface >= len(self.ifaces):
                return f"packet on interface {iface}, which no block described (corrupt)"
            if 20 + cap > len(body):
                return f"captured length {cap} overruns its block (corrupt)"
            linktype, per_sec, offset, _ = self.ifaces[iface]
            comment = next(
                (
                    v.decode("utf-8", "replace")
                    for code, v in _pcapng_options(body, 20 + cap + (-cap % 4), e)
                    if code == 1
                ),
                "",
            )
            ts = offset + _ticks(hi, lo, per_sec)
            self._packet(CapturedPacket(ts, body[20 : 20 + cap], linktype, orig, comment))
        elif btype == 3:  # Simple Packet Block: interface 0, no time
            if not self.ifaces or len(body) < 4:
                return "simple packet block without an interface (corrupt)"
            orig = struct.unpack_from(e + "I", body)[0]
            linktype, _, _, snaplen = self.ifaces[0]
            cap = min(orig, snaplen or orig, len(body) - 4)
            self._packet(CapturedPacket(self.last_ts, body[4 : 4 + cap], linktype, orig))
        return None

    def _packet(self, p: CapturedPacket) -> None:
        self.got = p
        self.count += 1
        self.last_ts = p.ts


def _ticks(hi: int, lo: int, per_sec: int) -> float:
    sec, frac = divmod((hi << 32) | lo, per_sec)
    return sec + frac / per_sec


def _pcapng_options(body: bytes, start: int, e: str) -> Iterable[tuple[int, bytes]]:
    i = start
    while i + 4 <= len(body):
        code, length = struct.unpack_from(e + "HH", body, i)
        if code == 0:
            return
        yield code, body[i + 4 : i + 4 + length]
        i += 4 + ((length + 3) & ~3)
