"""The out-of-order queue of a receiver: segments beyond RCV.NXT, kept until the
hole before them fills (RFC 9293 §3.10.7.4, "seventh, process the segment text")."""

from __future__ import annotations

from ..wire.seq import MASK, seq_diff


class OutOfOrderQueue:
    """Disjoint byte ranges keyed by offset from a moving base (RCV.NXT)."""

    __slots__ = ("_ranges",)

    def __init__(self) -> None:
        self._ranges: list[tuple[int, bytes]] = []  # (seq, data), sorted, disjoint

    def __len__(self) -> int:
        return len(self._ranges)

    @property
    def nbytes(self) -> int:
        return sum(len(d) for _, d in self._ranges)

    def blocks(self, base: int) -> list[tuple[int, int]]:
        """(left, right) edges, for SACK blocks and tests."""
        return [(s, (s + len(d)) & MASK) for s, d in self._ranges if seq_diff(s, base) > 0]

    def insert(self, seq: int, data: bytes, base: int) -> None:
        """Add data at ``seq`` (> base), merged with what is already held."""
        start = seq_diff(seq, base)
        merged_start, merged = start, bytearray(data)
        keep: list[tuple[int, bytes]] = []
        for s, d in self._ranges:
            ds = seq_diff(s, base)
            de = ds + len(d)
            if de < merged_start or ds > merged_start + len(merged):
                keep.append((s, d))
                continue
            # Overlapping or adjacent: union, preferring bytes already held.
            lo = min(ds, merged_start)
            hi = max(de, merged_start + len(merged))
            buf = bytearray(hi - lo)
            buf[merged_start - lo:merged_start - lo + len(merged)] = merged
            buf[ds - lo:de - lo] = d
            merged_start, merged = lo, buf
        keep.append(((base + merged_start) & MASK, bytes(merged)))
        keep.sort(key=lambda r: seq_diff(r[0], base))
        self._ranges = keep

    def pop_ready(self, base: int) -> bytes:
        """Bytes that now continue at ``base`` (RCV.NXT), removed from the queue;
        ranges entirely below base are discarded."""
        out = bytearray()
        while self._ranges:
            s, d = self._ranges[0]
            off = seq_diff(s, (base + len(out)) & MASK)
            if off > 0:
                break
            self._ranges.pop(0)
            if -off < len(d):
                out += d[-off:]
        return bytes(out)
