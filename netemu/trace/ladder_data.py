"""What ``ladder.html``'s script reads about each conversation drawn: every drawn
segment's fields, options, marks and first bytes (the detail panel), the series of
its graphs (time-sequence each way, bytes in flight, cwnd and ssthresh, RTT), and a
conversation's line of the index. Embedded as JSON that can never close its
``<script>`` element (``page_json``).

Layer rule: reads the trace (``record``, ``conv``) and the row model; draws nothing.
"""

from __future__ import annotations

import json
from collections import deque
from collections.abc import Iterable
from typing import Any

from ..wire import ACK, FIN, SYN
from .conv import Conversation, SegmentView, ep_str, new_state, normalize_state
from .ladder_model import INFINITE_SSTHRESH, Section
from .record import Trace

# Bytes of a frame the detail panel shows in hex: its headers and the payload's start.
HEX_BYTES = 128
# Points a graph's series keeps: beyond, the first and last point of each of
# MAX_POINTS / 2 stretches of time, and the lowest and highest in it.
MAX_POINTS = 1_500
_M32 = 0xFFFFFFFF


def page_json(obj: object) -> str:
    """JSON safe inside ``<script type="application/json">``: no ``<``, ``>`` nor
    ``&`` (a capture's ``</script>`` stays text), nor a line separator."""
    s = json.dumps(obj, ensure_ascii=False, separators=(",", ":"), allow_nan=False)
    for ch, esc in (
        ("&", "\\u0026"),
        ("<", "\\u003c"),
        (">", "\\u003e"),
        ("\u2028", "\\u2028"),
        ("\u2029", "\\u2029"),
    ):
        s = s.replace(ch, esc)
    return s


def seg_marks(v: SegmentView) -> list[str]:
    """Every mark a segment carries, as words: netemu's own (``dropped``,
    ``injected``, ``bad-checksum``, …), the trace's analysis marks when the segment
    has any (``analysis``)."""
    marks: list[str] = []
    mark = v.mark
    if mark:
        marks.extend(m.strip() for m in str(mark).split(",") if m.strip())
    # What is a retransmission is Wireshark's rule (the analysis runs over every row
    # drawn), not netemu's broader flag (any sequence space sent before, which an
    # out-of-order segment or a keep-alive also is).
    for m in v.analysis.marks if v.analysis is not None else ():
        if m not in marks:
            marks.append(m)
    return marks


def seg_detail(v: SegmentView, t0: float) -> dict[str, Any]:
    """One segment for the detail panel."""
    t = v.tcp
    data = v.frame.data
    return {
        "f": v.index + 1,
        "t": round(v.t - t0, 6),
        "d": ">" if v.left_to_right else "<",
        "src": ep_str(v.src),
        "dst": ep_str(v.dst),
        "fl": v.flags,
        "seq": [v.rel_seq, t.seq],
        "ack": None if v.rel_ack is None else [v.rel_ack, t.ack],
        "win": [v.window, t.window],
        "len": v.length,
        "opt": v.options_str(),
        "m": seg_marks(v),
        "note": v.frame.note or "",
        "dir": v.frame.direction,
        "size": len(data),
        "hex": data[:HEX_BYTES].hex(),
    }


def section_segments(sec: Section, t0: float) -> list[dict[str, Any]]:
    """The detail of each segment drawn in ``sec``, in row order (``data-i``)."""
    return [seg_detail(r.seg, t0) for r in sec.rows if r.seg is not None]


def states_reached(recs: Iterable[Any]) -> list[str]:
    """The states a side went through, in order, each once."""
    out: list[str] = []
    for rec in recs:
        s = normalize_state(new_state(rec))
        if s not in out:
            out.append(s)
    return out


def index_row(conv: Conversation, t0: float) -> dict[str, Any]:
    """A conversation's line of the index."""
    return {
        "n": conv.number,
        "title": conv.title().removeprefix("TCP "),
        "segs": conv.count,
        "lr": conv.payload_bytes.get(conv.left, 0),
        "rl": conv.payload_bytes.get(conv.right, 0),
        "start": conv.start - t0,
        "dur": conv.end - conv.start,
        "drop": conv.dropped,
        "rtx": conv.retransmissions,
        "ls": states_reached(conv.states),
        "rs": states_reached(conv.peer_states),
    }


def decimate(points: list[list[float]], cap: int = MAX_POINTS) -> list[list[float]]:
    """At most about ``cap`` points with the series' shape: per stretch of time its
    first, lowest, highest and last point (column 1 is the value)."""
    if len(points) <= cap:
        return points
    buckets = max(1, cap // 4)
    t_first, t_last = points[0][0], points[-1][0]
    span = (t_last - t_first) or 1.0
    out: list[list[float]] = []
    group: list[list[float]] = []
    current = 0
    for p in points:
        b = min(buckets - 1, int((p[0] - t_first) / span * buckets))
        if b != current and group:
            out.extend(_keep(group))
            group = []
        current = b
        group.append(p)
    out.extend(_keep(group))
    return out


def _keep(group: list[list[float]]) -> list[list[float]]:
    if len(group) <= 4:
        return group
    lo = min(group, key=lambda p: p[1])
    hi = max(group, key=lambda p: p[-1])
    picked = {id(group[0]): group[0], id(lo): lo, id(hi): hi, id(group[-1]): group[-1]}
    return sorted(picked.values(), key=lambda p: p[0])


class _Side:
    """One direction's sequence space as the capture saw it: what was sent (``seq``:
    t, start, end, kind: 0 new, 1 retransmission, 2 dropped), what the other side
    acknowledged and offered (``ack``, ``win``: t, value), its SACK blocks (t, left,
    right), bytes in flight and RTT samples."""

    def __init__(self) -> None:
        self.seq: list[list[float]] = []
        self.ack: list[list[float]] = []
        self.win: list[list[float]] = []
        self.sack: list[list[float]] = []
        self.flight: list[list[float]] = []
        self.rtt: list[list[float]] = []
        self.high: int | None = None  # relative end of what it sent
        self.acked: int | None = None
        self.pending: deque[tuple[int, float]] = deque()  # (end, time sent), for RTT

    def sent(self, v: SegmentView, t: float) -> None:
        occupied = v.length + (1 if v.tcp.flags & SYN else 0) + (1 if v.tcp.flags & FIN else 0)
        start, end = v.rel_seq, v.rel_seq + occupied
        kind = 2 if v.dropped else 1 if v.retransmission else 0
        self.seq.append([t, start, end, kind])
        if v.retransmission:
            self.pending.clear()  # Karn: no sample from what was sent again
        elif occupied and not v.dropped:
            self.pending.append((end, t))
        if occupied and (self.high is None or end > self.high):
            self.high = end
        self._flight(t)

    def acked_by(self, v: SegmentView, t: float) -> None:
        if v.rel_ack is None or v.dropped:
            return
        ack = v.rel_ack
        self.ack.append([t, ack])
        self.win.append([t, ack + v.window])
        base = (v.tcp.ack - ack) & _M32
        for a, b in v.tcp.sack_blocks or ():
            self.sack.append([t, (a - base) & _M32, (b - base) & _M32])
        if self.acked is None or ack > self.acked:
            self.acked = ack
        while self.pending and self.pending[0][0] <= ack:
            _, sent = self.pending.popleft()
            self.rtt.append([t, round((t - sent) * 1000, 3)])
        self._flight(t)

    def _flight(self, t: float) -> None:
        if self.high is not None and self.acked is not None:
            self.flight.append([t, max(0, self.high - self.acked)])

    def json(self) -> dict[str, Any]:
        return {
            "seq": decimate(self.seq),
            "ack": decimate(self.ack),
            "win": decimate(self.win),
            "sack": decimate(self.sack),
        }


def section_series(trace: Trace, conv: Conversation, t0: float) -> dict[str, Any]:
    """The graphs' series of a conversation, from every one of its segments (read
    again, one at a time) and its congestion records."""
    sides = (_Side(), _Side())  # left → right, right → left
    for v in conv.iter_segments(trace):
        t = round(v.t - t0, 6)
        own, other = (sides[0], sides[1]) if v.left_to_right else (sides[1], sides[0])
        own.sent(v, t)
        if v.tcp.flags & ACK:
            other.acked_by(v, t)
    out: dict[str, Any] = {
        "lr": sides[0].json(),
        "rl": sides[1].json(),
        "flight": [decimate(sides[0].flight), decimate(sides[1].flight)],
        "rtt": [decimate(sides[0].rtt), decimate(sides[1].rtt)],
    }
    cc = conv.congestion
    if cc:
        out["cwnd"] = decimate([[round(r.t - t0, 6), r.cwnd] for r in cc])
        out["ssthresh"] = decimate(
            [[round(r.t - t0, 6), r.ssthresh] for r in cc if r.ssthresh < INFINITE_SSTHRESH]
        )
    pc = conv.peer_congestion
    if pc:
        out["pcwnd"] = decimate([[round(r.t - t0, 6), r.cwnd] for r in pc])
        out["pssthresh"] = decimate(
            [[round(r.t - t0, 6), r.ssthresh] for r in pc if 0 < r.ssthresh < INFINITE_SSTHRESH]
        )
        out["psrtt"] = decimate([[round(r.t - t0, 6), r.srtt_us / 1000] for r in pc])
    return out
