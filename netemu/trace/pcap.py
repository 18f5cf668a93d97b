"""pcapng out (and classic pcap), pcap and pcapng in.

``write_pcap`` writes a Trace's frames, exact bytes and both directions, to a
pcapng file (LINKTYPE_ETHERNET, microsecond timestamps), atomically. Frames marked
"dropped" are written too (they were on our side of the wire), each with a packet
comment that says so, as the ladder and the report do: "netemu: dropped — drop
rule". ``write_pcap_frames`` writes classic pcap.

``load_capture`` and ``open_capture`` (``pcap_read``: a packet at a time) read
classic pcap (either byte order, µs or ns timestamps) and pcapng (what Wireshark and
``tcpdump --pcapng`` write: sections in either byte order, each interface its own
link type), gzip-compressed or not, up to any damage (a corrupt block, a record cut
off), which they describe (frame number, byte offset) rather than raise. It is plain
``struct``: no scapy import (a second) for ``netemu show``. ``read_pcap`` gives the frames of netemu's own files as Ethernet
(``to_ethernet``: Linux cooked headers, raw IP and BSD loopback are given a synthetic
Ethernet header); ``netemu show`` reads what other link types and tunnels hold with
``decap.decode_link``.
"""

from __future__ import annotations

import os
import struct
from collections.abc import Iterable
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
from .pcap_read import (
    PCAP_MAGIC_NS,
    PCAP_MAGIC_US,
    PCAPNG_SHB,
    Capture,
    CapturedPacket,
    CaptureError,
    load_capture,
    open_capture,
    read_capture,
)
from .record import Trace

__all__ = [
    "PCAP_MAGIC_NS",
    "Capture",
    "CaptureError",
    "CapturedPacket",
    "load_capture",
    "open_capture",
    "read_capture",
]
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
