"""The SACK sender's scoreboard (RFC 6675 §3-4) over byte ranges.

RFC 6675 states its rules per octet; here the SACKed octets are kept as disjoint
ranges above SND.UNA (HighACK), so each routine is a walk over a few ranges:

- ``update(blocks)``: Update(): record SACK blocks (RFC 2018 §4);
- ``lost_edge()``: IsLost(): an unSACKed octet is lost when "DupThresh
  discontiguous SACKed sequences have arrived above" it "or more than
  (DupThresh - 1) * SMSS bytes with sequence numbers greater than" it "have been
  SACKed". Both only grow as the octet goes down, so the lost octets are exactly
  the unSACKed ones below one edge;
- ``pipe()``: SetPipe();
- ``next_seg()``: NextSeg(), rules (1) and (3); rules (2), new data, and (4), the
  rescue retransmission, need the send buffer and live in the connection.

Sequence numbers are absolute (modulo 2**32) and compared relative to HighACK.
"""

from __future__ import annotations

from ..wire.seq import MASK, seq_diff


class Scoreboard:
    __slots__ = ("dupthresh", "ranges", "una")

    def __init__(self, dupthresh: int = 3) -> None:
        self.dupthresh = dupthresh
        self.una = 0  # HighACK
        self.ranges: list[list[int]] = []  # [start, end) offsets from una, sorted, disjoint

    def __bool__(self) -> bool:
        return bool(self.ranges)

    def clear(self) -> None:
        self.ranges = []

    # ------------------------------------------------------------------ updates
    def advance(self, una: int) -> None:
        """The cumulative ACK moved to ``una``: forget what lies below it."""
        d = seq_diff(una, self.una)
        if d == 0:
            return
        self.una = una
        if not self.ranges:
            return
        kept = []
        for s, e in self.ranges:
            s -= d
            e -= d
            if e > 0:
                kept.append([max(s, 0), e])
        self.ranges = kept

    def update(self, blocks: tuple[tuple[int, int], ...], snd_max: int) -> int:
        """Update(): merge SACK blocks; returns how many octets were newly SACKed.
        Blocks at or below HighACK (D-SACKs, RFC 2883) or beyond SND.MAX are
        ignored, as are malformed ones."""
        top = seq_diff(snd_max, self.una)
        new = 0
        for left, right in blocks:
            s = seq_diff(left, self.una)
            e = seq_diff(right, self.una)
            if e <= 0 or s >= e or e > top:
                continue
            if s < 0:
                s = 0
            new += self._add(s, e)
        return new

    def _add(self, s: int, e: int) -> int:
        ranges = self.ranges
        covered = 0
        out: list[list[int]] = []
        i = 0
        n = len(ranges)
        while i < n and ranges[i][1] < s:
            out.append(ranges[i])
            i += 1
        ns, ne = s, e
        while i < n and ranges[i][0] <= e:
            rs, re = ranges[i]
            covered += max(0, min(re, e) - max(rs, s))
            ns = min(ns, rs)
            ne = max(ne, re)
            i += 1
        out.append([ns, ne])
        out.extend(ranges[i:])
        self.ranges = out
        return (e - s) - covered

    # ------------------------------------------------------------------ queries
    def high_sacked(self) -> int:
        """Offset just past the highest SACKed octet (0 when nothing is SACKed)."""
        return self.ranges[-1][1] if self.ranges else 0

    def sacked_at(self, off: int) -> int | None:
        """The end of the SACKed range holding offset ``off``, or None."""
        for s, e in self.ranges:
            if s <= off < e:
                return e
            if s > off:
                return None
        return None

    def next_sacked(self, off: int) -> int | None:
        """The start of the first SACKed range beginning after ``off``."""
        for s, _ in self.ranges:
            if s > off:
                return s
        return None

    def lost_edge(self, smss: int) -> int:
        """Offset below which every unSACKed octet IsLost() (0: none is)."""
        ranges = self.ranges
        need = (self.dupthresh - 1) * smss
        acc = 0
        for i in range(len(ranges) - 1, -1, -1):
            s, e = ranges[i]
            acc += e - s
            if len(ranges) - i >= self.dupthresh or acc > need:
                return s
        return 0

    def is_lost(self, off: int, smss: int) -> bool:
        return off < self.lost_edge(smss) and self.sacked_at(off) is None

    def sacked_above(self, off: int) -> int:
        """SACKed octets at offsets >= ``off``."""
        n = 0
        for s, e in self.ranges:
            if e > off:
                n += e - (s if s > off else off)
        return n

    def unsacked(self, lo: int, hi: int) -> int:
        """UnSACKed octets in [lo, hi) (offsets)."""
        if hi <= lo:
            return 0
        n = hi - lo
        for s, e in self.ranges:
            if e <= lo:
                continue
            if s >= hi:
                break
            n -= min(e, hi) - max(s, lo)
        return n

    def pipe(self, top: int, high_rxt: int, smss: int) -> int:
        """SetPipe() over [0, top): "(a) If IsLost (S1) returns false: Pipe is
        incremented by 1 octet. (b) If S1 <= HighRxt: Pipe is incremented by 1
        octet." (both may count). ``high_rxt`` is an offset just past the highest
        retransmitted octet."""
        edge = min(self.lost_edge(smss), top)
        return self.unsacked(edge, top) + self.unsacked(0, min(high_rxt, top))

    def next_seg(self, high_rxt: int, smss: int, lost_only: bool) -> tuple[int, int] | None:
        """NextSeg() rule (1) (``lost_only``) or rule (3): the smallest unSACKed
        offset S2 >= HighRxt below the highest SACKed octet (and lost, for rule
        (1)); returns (offset, length) of at most one SMSS, never into SACKed data."""
        limit = self.high_sacked()
        if lost_only:
            limit = min(limit, self.lost_edge(smss))
        pos = max(high_rxt, 0)
        for s, e in self.ranges:
            if pos >= limit:
                return None
            if pos < s:
                return pos, min(smss, s - pos)
            if pos < e:
                pos = e
        return None

    def holes(self, top: int) -> list[tuple[int, int]]:
        """UnSACKed [start, end) offsets below ``top``."""
        out = []
        pos = 0
        for s, e in self.ranges:
            if s > pos:
                out.append((pos, min(s, top)))
            pos = max(pos, e)
            if pos >= top:
                break
        if pos < top:
            out.append((pos, top))
        return [h for h in out if h[1] > h[0]]

    def seq(self, off: int) -> int:
        return (self.una + off) & MASK


class SackBlocks:
    """The receiver's side (RFC 2018 §4): which out-of-order blocks to report,
    most recent first. "The first SACK block ... MUST specify the contiguous block
    of data containing the segment which triggered this ACK, unless that segment
    advanced the Acknowledgment Number field in the header", and the rest repeat
    "the most recently reported SACK blocks"."""

    __slots__ = ("recent",)

    def __init__(self) -> None:
        self.recent: list[int] = []  # a sequence number inside each block, newest first

    def arrived(self, seq: int) -> None:
        recent = self.recent
        if seq in recent:
            recent.remove(seq)
        recent.insert(0, seq)
        del recent[8:]

    def blocks(
        self, ranges: list[tuple[int, bytes]], rcv_nxt: int, limit: int
    ) -> tuple[tuple[int, int], ...]:
        """Up to ``limit`` blocks of the out-of-order queue's ``ranges``."""
        out: list[tuple[int, int]] = []
        keep: list[int] = []
        for seq in self.recent:
            off = seq_diff(seq, rcv_nxt)
            if off <= 0:
                continue
            for s, d in ranges:
                so = seq_diff(s, rcv_nxt)
                if so <= off < so + len(d):
                    block = (s, (s + len(d)) & MASK)
                    if block not in out:
                        out.append(block)
                        keep.append(seq)
                    break
            if len(out) >= limit:
                break
        self.recent = keep
        # Blocks never reported as "first" (e.g. after the list was trimmed) still
        # count: fill the remaining space from the highest down.
        if len(out) < limit:
            for s, d in reversed(ranges):
                block = (s, (s + len(d)) & MASK)
                if seq_diff(s, rcv_nxt) > 0 and block not in out:
                    out.append(block)
                    if len(out) >= limit:
                        break
        return tuple(out)
