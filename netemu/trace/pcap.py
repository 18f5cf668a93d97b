"""pcapng out (and classic pcap), pcap and pcapng in.

``write_pcap`` writes a Trace's frames, exact bytes and both directions, to a
pcapng file (LINKTYPE_ETHERNET, microsecond timestamps), atomically. Frames marked
"dropped" are written too (they were on our side of the wire), each with a packet
comment that says so, as the ladder and the report do: "netemu: dropped — drop
rule". ``write_pcap_frames`` writes classic pcap.

``load_capture`` reads classic pcap (either byte order, µs or ns timestamps) and
pcapng (what Wireshark and ``tcpdump --pcapng`` write: sections in either byte
order, each interface its own link type), gzip-compressed or not, up to any damage
(a corrupt block, a record cut off), which it describes (frame number, byte
offset) rather than raises. It is plain ``struct``: no scapy import (a second) for
``netemu show``. ``read_pcap`` gives the frames of netemu's own files as Ethernet
(``to_ethernet``: Linux cooked headers, raw IP and BSD loopback are given a synthetic
Ethernet header); ``netemu show`` reads what other link types and tunnels hold with
``decap.decode_link``.
"""

from __future__ import annotations

import os
import struct
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from .atomic import atomic_open
from .decap import (
    DLT_RAW,
    LINKTYPE_ETHERNET,
    LINKTYPE_IPV4,
    LINKTYPE_IPV6,
    LINKTYPE_LINUX_SLL,
    LINKTYPE_LINUX_SLL2,
    LINKTYPE_LOOP,
    LINKTYPE_NULL,
    LINKTYPE_RAW,
    link_payload,
)
from .record import Trace

PCAP_MAGIC_US = 0xA1B2C3D4
PCAP_MAGIC_NS = 0xA1B23C4D
PCAPNG_SHB = 0x0A0D0D0A
PCAPNG_BOM = 0x1A2B3C4D
DEFAULT_SNAPLEN = 262144

_FILE_HEADER = struct.Struct("<IHHiIII")
_RECORD_HEADER = struct.Struct("<IIII")


# --- writing -------------------------------------------------------------------------


def write_pcap_frames(
    path: str | os.PathLike[str],
    frames: Iterable[tuple[float, bytes]],
    linktype: int = LINKTYPE_ETHERNET,
) -> int:
    """Write ``(wall-clock time, bytes)`` pairs to a classic pcap file, atomically.
    Returns the number of frames written."""
    frames = list(frames)
    snaplen = max([DEFAULT_SNAPLEN, *(len(d) for _, d in frames)])
    n = 0
    with atomic_open(path) as f:
        f.write(_FILE_HEADER.pack(PCAP_MAGIC_US, 2, 4, 0, 0, snaplen, linktype))
        for ts, data in frames:
            sec, usec = divmod(round(ts * 1_000_000), 1_000_000)
            f.write(_RECORD_HEADER.pack(sec, usec, len(data), len(data)))
            f.write(data)
            n += 1
    return n


# What netemu writes into a packet's pcapng comment, and reads back (``netemu show``):
# "netemu: <mark>" and, after " — ", the frame's note.
COMMENT_PREFIX = "netemu: "


def frame_comment(mark: str | None, note: str | None) -> str:
    if not mark and not note:
        return ""
    return COMMENT_PREFIX + (mark or "note") + (f" — {note}" if note else "")


def parse_comment(comment: str) -> tuple[str | None, str | None]:
    """(mark, note) of a comment ``frame_comment`` wrote; (None, None) for any other."""
    if not comment.startswith(COMMENT_PREFIX):
        return None, None
    mark, _, note = comment[len(COMMENT_PREFIX) :].partition(" — ")
    return (None if mark == "note" else mark), (note or None)


def _block(btype: int, body: bytes) -> bytes:
    body += b"\0" * (-len(body) % 4)
    n = len(body) + 12
    return struct.pack("<II", btype, n) + body + struct.pack("<I", n)


def _option(code: int, value: bytes) -> bytes:
    return struct.pack("<HH", code, len(value)) + value + b"\0" * (-len(value) % 4)


def write_pcap(trace: Trace, path: str | os.PathLike[str]) -> int:
    """Every frame of ``trace`` (both directions, dropped ones included), in record
    order, with wall-clock timestamps from ``trace.wall(t)``, as pcapng (whatever the
    file is called: tcpdump, tshark and Wireshark read it). Each packet carries its
    direction (``epb_flags``: out is outbound) and, when the run marked it (dropped,
    injected, bad-checksum, malformed) or noted something, a comment saying so
    (``frame_comment``), so a reader of the file alone (``netemu show``, Wireshark's
    ``frame.comment``) knows which frames never crossed the wire. Returns the frame
    count; frame N of the file is ``trace.frames[N - 1]``."""
    frames = trace.frames
    snaplen = max([DEFAULT_SNAPLEN, *(len(fr.data) for fr in frames)])
    n = 0
    with atomic_open(path) as f:
        f.write(_pcapng_head(snaplen))
        for fr in frames:
            f.write(_epb(trace, fr))
            n += 1
    return n


def _pcapng_head(snaplen: int) -> bytes:
    """The Section Header and the one Interface Description Block (Ethernet, µs)."""
    from .. import __version__

    shb = (
        struct.pack("<IHHq", PCAPNG_BOM, 1, 0, -1)
        + _option(4, f"netemu {__version__}".encode())
        + _option(0, b"")
    )
    idb = struct.pack("<HHI", LINKTYPE_ETHERNET, 0, snaplen) + _option(0, b"")
    return _block(PCAPNG_SHB, shb) + _block(1, idb)


def _epb(trace: Trace, fr: Any) -> bytes:
    """One frame as an Enhanced Packet Block: direction, and the run's mark as a comment."""
    ticks = round(trace.wall(fr.t) * 1_000_000)
    data = fr.data
    opts = _option(2, struct.pack("<I", 2 if fr.direction == "out" else 1))
    comment = frame_comment(fr.mark, fr.note)
    if comment:
        opts += _option(1, comment.encode())
    return _block(
        6,
        struct.pack("<IIIII", 0, ticks >> 32, ticks & 0xFFFFFFFF, len(data), len(data))
        + data
        + b"\0" * (-len(data) % 4)
        + opts
        + _option(0, b""),
    )


class PcapStream:
    """trace.pcap written as the run goes (``flush`` appends the frames recorded since),
    so a run killed with SIGKILL leaves the pcap up to its last flush. The run's end
    replaces it, atomically, with ``write_pcap``'s. Appends are plain writes to the
    kernel: what was flushed survives the process."""

    def __init__(self, trace: Trace, path: str | os.PathLike[str]) -> None:
        self.trace = trace
        self.done = 0
        self.fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC, 0o644)
        os.write(self.fd, _pcapng_head(DEFAULT_SNAPLEN))

    def flush(self) -> None:
        if self.fd < 0:
            return
        frames = self.trace.frames
        if len(frames) > self.done:
            os.write(self.fd, b"".join(_epb(self.trace, fr) for fr in frames[self.done :]))
            self.done = len(frames)

    def close(self) -> None:
        if self.fd >= 0:
            os.close(self.fd)
            self.fd = -1


# --- reading -------------------------------------------------------------------------


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


# A record longer than this is corrupt (Wireshark's limit for most link types).
_MAX_RECORD = 262144
_GZIP_MAGIC = b"\x1f\x8b"


def load_capture(path: str | os.PathLike[str]) -> Capture:
    """Every packet of a pcap or pcapng file (gzip-compressed or not) up to any
    damage, which ``Capture.damage`` describes. CaptureError: not a capture at all;
    OSError: not readable."""
    buf, gzip_damage = _file_bytes(path)
    name = os.fspath(path)
    if len(buf) < 4:
        raise CaptureError(f"{name}: too short for a capture file ({len(buf)} bytes)")
    magic_le = struct.unpack_from("<I", buf)[0]
    magic_be = struct.unpack_from(">I", buf)[0]
    if magic_le == PCAPNG_SHB:
        cap = _read_pcapng(buf, name)
    else:
        for endian, magic in (("<", magic_le), (">", magic_be)):
            if magic in (PCAP_MAGIC_US, PCAP_MAGIC_NS):
                cap = _read_pcap(buf, endian, magic == PCAP_MAGIC_NS, name)
                break
        else:
            raise CaptureError(f"{name}: not a pcap or pcapng file (magic {buf[:4].hex()})")
    cap.compressed = gzip_damage is not None
    if gzip_damage:
        cap.damage = f"{cap.damage} ({gzip_damage})" if cap.damage else gzip_damage
    return cap


def read_capture(path: str | os.PathLike[str]) -> list[CapturedPacket]:
    """All packets of a pcap or pcapng file, in file order, in their own framing, up
    to any damage (a packet cut short at the end of a capture that was killed is left
    out): ``load_capture``'s packets."""
    return load_capture(path).packets


def _file_bytes(path: str | os.PathLike[str]) -> tuple[bytes, str | None]:
    """The file's bytes, decompressed when it is gzip (by its magic, 1f 8b), a chunk
    at a time; the second item is None for a plain file, "" for a whole gzip stream,
    else what is wrong with the compressed stream (what came before it is kept)."""
    import zlib

    with open(path, "rb") as f:
        head = f.read(2)
        if head != _GZIP_MAGIC:
            return head + f.read(), None
        f.seek(0)
        out: list[bytes] = []
        d = zlib.decompressobj(16 + zlib.MAX_WBITS)
        fresh, pos = True, 0  # fresh: the member being read has had no byte yet
        while chunk := f.read(1 << 20):
            while chunk:
                if d.eof:  # another member follows, or trailing bytes gzip ignores too
                    if chunk[:1] != _GZIP_MAGIC[:1]:
                        return b"".join(out), ""
                    d, fresh = zlib.decompressobj(16 + zlib.MAX_WBITS), True
                try:
                    out.append(d.decompress(chunk))
                except zlib.error as e:
                    return b"".join(out), f"gzip: damaged at compressed byte {pos} ({e})"
                fresh = False
                pos += len(chunk) - len(d.unused_data)
                chunk = d.unused_data
                if not d.eof:
                    break
        out.append(d.flush())
        if not d.eof and not fresh:
            return b"".join(out), "gzip: compressed stream cut short"
        return b"".join(out), ""


def _read_pcap(buf: bytes, e: str, nanos: bool, name: str) -> Capture:
    if len(buf) < 24:
        raise CaptureError(f"{name}: truncated pcap header")
    snaplen, linktype = struct.unpack_from(e + "II", buf, 16)
    linktype &= 0x0FFFFFFF  # upper bits: FCS info
    limit = max(_MAX_RECORD, snaplen)
    rec = struct.Struct(e + "IIII")
    per_sec = 1_000_000_000 if nanos else 1_000_000
    out: list[CapturedPacket] = []
    i, n = 24, len(buf)
    damage = None
    while i < n:
        where = f"frame {len(out) + 1} at byte offset {i}"
        if i + 16 > n:
            damage = f"{where}: record header cut short ({n - i} of 16 bytes)"
            break
        sec, frac, incl, orig = rec.unpack_from(buf, i)
        if incl > limit:
            damage = f"{where}: record length {incl} is more than {limit} (corrupt)"
            break
        if i + 16 + incl > n:
            damage = f"{where}: record cut short ({n - i - 16} of {incl} bytes)"
            break
        i += 16
        out.append(CapturedPacket(sec + frac / per_sec, buf[i : i + incl], linktype, orig))
        i += incl
    return Capture(out, damage)


def _read_pcapng(buf: bytes, name: str) -> Capture:
    r = _PcapngReader(buf)
    damage = r.run()
    if damage and r.at == 0:  # not even its Section Header Block reads
        raise CaptureError(f"{name}: not a pcapng file ({damage.partition(': ')[2]})")
    return Capture(r.out, damage)


class _PcapngReader:
    """pcapng's blocks in order: sections (either byte order), interfaces (each its own
    link type, time resolution and offset), packets (EPB, SPB, the obsolete PB) and
    their comments; other blocks are skipped. ``run`` stops at the first damage and
    says where."""

    def __init__(self, buf: bytes) -> None:
        self.buf = buf
        self.out: list[CapturedPacket] = []
        self.e = "<"
        # per interface: (linktype, ticks per second, offset seconds, snaplen)
        self.ifaces: list[tuple[int, int, int, int]] = []
        self.at = 0  # where the block being read starts

    def run(self) -> str | None:
        buf, i, n = self.buf, 0, len(self.buf)
        while i < n:
            self.at = i
            where = f"frame {len(self.out) + 1} at byte offset {i}"
            if i + 12 > n:
                return f"{where}: block header cut short ({n - i} bytes)"
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
            if i + blen > n:
                return f"{where}: block cut short ({n - i} of {blen} bytes)"
            if struct.unpack_from(self.e + "I", buf, i + blen - 4)[0] != blen:
                return f"{where}: block length {blen} does not match its trailer (corrupt)"
            problem = self._block(btype, buf[i + 8 : i + blen - 4])
            if problem:
                return f"{where}: {problem}"
            i += blen
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
            self.out.append(CapturedPacket(ts, body[20 : 20 + cap], linktype, orig, comment))
        elif btype == 3:  # Simple Packet Block: interface 0, no time
            if not self.ifaces or len(body) < 4:
                return "simple packet block without an interface (corrupt)"
            orig = struct.unpack_from(e + "I", body)[0]
            linktype, _, _, snaplen = self.ifaces[0]
            cap = min(orig, snaplen or orig, len(body) - 4)
            ts = self.out[-1].ts if self.out else 0.0
            self.out.append(CapturedPacket(ts, body[4 : 4 + cap], linktype, orig))
        return None


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


_ZERO_MAC = b"\x00" * 6


def to_ethernet(linktype: int, data: bytes) -> bytes | None:
    """The packet as an Ethernet frame (synthetic zero MACs where the capture had none,
    the source's from a Linux cooked header); None when this link type or packet
    cannot be reframed (``decap.link_payload`` reads the link layers)."""
    if linktype == LINKTYPE_ETHERNET:
        return data
    got = link_payload(linktype, data)
    if isinstance(got, str):
        return None
    et, off = got
    src = _ZERO_MAC
    if linktype == LINKTYPE_LINUX_SLL and data[4:6] == b"\x00\x06":
        src = data[6:12]
    elif linktype == LINKTYPE_LINUX_SLL2 and data[11] == 6:
        src = data[12:18]
    return _ZERO_MAC + src + et.to_bytes(2, "big") + data[off:]


def read_pcap(path: str | os.PathLike[str], *, ethernet: bool = True) -> list[tuple[float, bytes]]:
    """``(timestamp, bytes)`` for every packet of a pcap or pcapng file.

    With ``ethernet`` (the default) packets of other link types are reframed as
    Ethernet (see ``to_ethernet``); a link type that cannot be raises CaptureError.
    With ``ethernet=False`` the bytes are exactly as captured."""
    return [(p.ts, p.data) for p in read_packets(path, ethernet=ethernet)]


_KNOWN = (
    LINKTYPE_RAW,
    LINKTYPE_IPV4,
    LINKTYPE_IPV6,
    LINKTYPE_NULL,
    LINKTYPE_LOOP,
    LINKTYPE_LINUX_SLL,
    LINKTYPE_LINUX_SLL2,
    *DLT_RAW,
)


def read_packets(
    path: str | os.PathLike[str],
    *,
    ethernet: bool = True,
) -> list[CapturedPacket]:
    """``read_pcap``'s packets with their comments (``parse_comment`` reads netemu's)."""
    out: list[CapturedPacket] = []
    for p in read_capture(path):
        if not ethernet:
            out.append(p)
            continue
        data = to_ethernet(p.linktype, p.data)
        if data is None:
            if p.linktype in _KNOWN:
                continue  # a runt or non-IP packet on a known link type
            raise CaptureError(
                f"{path}: link type {p.linktype} is not supported "
                "(Ethernet, Linux cooked v1/v2, raw IP and loopback are)"
            )
        out.append(CapturedPacket(p.ts, data, LINKTYPE_ETHERNET, p.orig_len, p.comment))
    return out
