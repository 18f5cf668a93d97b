"""The receive queue of one connection: in-order bytes the user has not read,
and segments beyond RCV.NXT held until the hole before them fills (RFC 9293
§3.10.7.4, "seventh, process the segment text").

RCV.NXT itself is the connection's; methods that need it take it as ``base``.
``ooo`` is the out-of-order store as (seq, data) ranges, sorted and disjoint:
what the SACK blocks of RFC 2018 §4 are made from. Others read it; only this
class changes it.

Layer rule: imports only netemu.wire.
"""

from __future__ import annotations

from ..wire.seq import MASK, seq_diff


class ReceiveQueue:
    """Unread in-order data, and out-of-order data keyed by sequence number."""

    __slots__ = ("chunks", "held", "ooo")

    def __init__(self) -> None:
        # In-order data not read yet, as the payloads that brought it: appending
        # a reference is cheaper than growing a bytearray, and a read joins them
        # once. The connection appends as RCV.NXT moves past the data, and adds
        # its length to ``held``: two lines, and no Python call per segment.
        self.chunks: list[bytes] = []
        self.held = 0  # bytes in chunks
        self.ooo: list[tuple[int, bytes]] = []  # (seq, data) beyond RCV.NXT, sorted, disjoint

    # ------------------------------------------------------------------ in order

    def read(self, max_bytes: int = -1) -> bytes:
        """Take up to ``max_bytes`` (all, if negative) from the front."""
        held = self.held
        n = held if max_bytes < 0 or max_bytes > held else max_bytes
        if n == 0:
            return b""
        chunks = self.chunks
        data = chunks[0] if len(chunks) == 1 else b"".join(chunks)
        if n == held:
            self.chunks = []
        else:
            self.chunks = [data[n:]]
            data = data[:n]
        self.held = held - n
        return data

    def unread(self) -> bytes:
        """The unread data (a copy; for inspection)."""
        return b"".join(self.chunks)

    # ------------------------------------------------------------------ out of order
    @property
    def ooo_bytes(self) -> int:
        return sum(len(d) for _, d in self.ooo)

    def insert(self, seq: int, data: bytes, base: int) -> None:
        """Hold data at ``seq`` (> base), merged with what is already held."""
        start = seq_diff(seq, base)
        merged_start, merged = start, bytearray(data)
        keep: list[tuple[int, bytes]] = []
        for s, d in self.ooo:
            ds = seq_diff(s, base)
            de = ds + len(d)
            if de < merged_start or ds > merged_start + len(merged):
                keep.append((s, d))
                continue
            # Overlapping or adjacent: union, preferring bytes already held.
            lo = min(ds, merged_start)
            hi = max(de, merged_start + len(merged))
            buf = bytearray(hi - lo)
            buf[merged_start - lo : merged_start - lo + len(merged)] = merged
            buf[ds - lo : de - lo] = d
            merged_start, merged = lo, buf
        keep.append(((base + merged_start) & MASK, bytes(merged)))
        keep.sort(key=lambda r: seq_diff(r[0], base))
        self.ooo = keep

    def pop_ready(self, base: int) -> bytes:
        """Held bytes that now continue at ``base`` (RCV.NXT), removed from the
        store; ranges entirely below base are discarded."""
        out = bytearray()
        ranges = self.ooo
        while ranges:
            s, d = ranges[0]
            off = seq_diff(s, (base + len(out)) & MASK)
            if off > 0:
                break
            ranges.pop(0)
            if -off < len(d):
                out += d[-off:]
        return bytes(out)
