"""Wireshark's TCP analysis, per segment: retransmissions, duplicate ACKs,
out-of-order segments, gaps in the capture, keep-alives, zero windows, window
updates (``tcp.analysis.*``), and the SACK blocks an ACK carries, in relative
numbers.

One pass over a conversation's segments in file order (``Analyzer.feed``), a few
comparisons and one small record per direction: sans-IO, and cheap enough to run on
every run's own trace. The rules are Wireshark's (``tcp_analyze_sequence_number`` in
epan/dissectors/packet-tcp.c, as tshark 4.0 applies them), rewritten here from their
description; docs/trace.md lists each rule, and where netemu differs.

Each direction (a flow: the segments one endpoint sends) keeps ``nextseq`` (the
highest sequence number sent + 1, with SYN and FIN counted), the time of the
segment that last moved it, ``maxseqtobeacked`` (the end of the contiguous
sequence space seen, for "ACKed unseen segment"), the last ack, window and time it
sent, and the marks of its last segment (a keep-alive's or a probe's ACK is
recognised by what the other side sent last).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass

from ..wire import ACK, FIN, RST, SYN
from ..wire.tcp import SackOption
from .conv import Endpoint, SegmentView
from .decap import TCP_CUT

MASK = 0xFFFFFFFF
_HALF = 0x80000000

# The marks, named as Wireshark's fields (tcp.analysis.<name>), and the short tag the
# text ladder writes for each.
RETRANSMISSION = "retransmission"
FAST_RETRANSMISSION = "fast_retransmission"
SPURIOUS_RETRANSMISSION = "spurious_retransmission"
DUPLICATE_ACK = "duplicate_ack"
OUT_OF_ORDER = "out_of_order"
LOST_SEGMENT = "lost_segment"
ACK_LOST_SEGMENT = "ack_lost_segment"
KEEP_ALIVE = "keep_alive"
KEEP_ALIVE_ACK = "keep_alive_ack"
ZERO_WINDOW = "zero_window"
ZERO_WINDOW_PROBE = "zero_window_probe"
ZERO_WINDOW_PROBE_ACK = "zero_window_probe_ack"
WINDOW_FULL = "window_full"
WINDOW_UPDATE = "window_update"
RST_AFTER_CLOSE = "rst_after_close"  # netemu's own: Wireshark has no such flag

TAGS = {
    RETRANSMISSION: "retrans",
    FAST_RETRANSMISSION: "fast retrans",
    SPURIOUS_RETRANSMISSION: "spurious retrans",
    DUPLICATE_ACK: "dup ack",
    OUT_OF_ORDER: "out of order",
    LOST_SEGMENT: "prev seg not captured",
    ACK_LOST_SEGMENT: "acks unseen seg",
    KEEP_ALIVE: "keep-alive",
    KEEP_ALIVE_ACK: "keep-alive ack",
    ZERO_WINDOW: "zero win",
    ZERO_WINDOW_PROBE: "zero win probe",
    ZERO_WINDOW_PROBE_ACK: "zero win probe ack",
    WINDOW_FULL: "win full",
    WINDOW_UPDATE: "win update",
    RST_AFTER_CLOSE: "rst after close",
}

# Marks of which only the most specific is tagged: a fast or spurious
# retransmission is also a retransmission for Wireshark (both fields are set).
_IMPLIED = {FAST_RETRANSMISSION: RETRANSMISSION, SPURIOUS_RETRANSMISSION: RETRANSMISSION}

FAST_RETRANSMISSION_WINDOW = 0.020  # s after the last duplicate ACK
OUT_OF_ORDER_DEFAULT = 0.003  # s, without a handshake to time the first RTT


def _gt(a: int, b: int) -> bool:
    return 0 < ((a - b) & MASK) < _HALF


def _lt(a: int, b: int) -> bool:
    return 0 < ((b - a) & MASK) < _HALF


@dataclass(slots=True)
class Analysis:
    """What Wireshark's TCP analysis says of one segment, and its SACK blocks."""

    marks: tuple[str, ...] = ()
    dup_ack: tuple[int, int] | None = None  # (n, frame number of the ACK it repeats)
    sack: tuple[tuple[int, int], ...] = ()  # relative to the receiver's ISN, as ack is
    dsack: bool = False  # the first block reports a duplicate (RFC 2883)

    def tags(self) -> list[str]:
        """Short tags for the arrow: "retrans", "dup ack #2", "sack 1449-2897"."""
        hidden = {_IMPLIED[m] for m in self.marks if m in _IMPLIED}
        out = []
        for m in self.marks:
            if m in hidden:
                continue
            if m == DUPLICATE_ACK and self.dup_ack is not None:
                out.append(f"dup ack #{self.dup_ack[0]} of #{self.dup_ack[1]}")
            else:
                out.append(TAGS[m])
        if self.sack:
            blocks = [f"{a}-{b}" for a, b in self.sack]
            if self.dsack:
                out.append("D-SACK " + blocks[0])
                blocks = blocks[1:]
            if blocks:
                out.append("sack " + " ".join(blocks))
        return out

    def as_json(self) -> dict[str, object]:
        out: dict[str, object] = {"analysis": list(self.marks)}
        if self.dup_ack is not None:
            out["dup_ack"] = {"n": self.dup_ack[0], "of": self.dup_ack[1]}
        if self.sack:
            out["sack"] = [list(b) for b in self.sack]
            out["dsack"] = self.dsack
        return out


class _Flow:
    """One direction's bookkeeping (Wireshark's tcp_flow_t, the parts analysis reads)."""

    __slots__ = (
        "dupacks",
        "fin_acked",
        "fin_end",
        "last_marks",
        "lastack",
        "lastack_t",
        "maxseqtobeacked",
        "nextseq",
        "nextseq_t",
        "nondup_frame",
        "window",
        "wscale",
    )

    def __init__(self) -> None:
        self.nextseq: int | None = None
        self.nextseq_t = 0.0
        self.maxseqtobeacked: int | None = None
        self.lastack: int | None = None
        self.lastack_t = 0.0
        self.window: int | None = None
        self.last_marks: tuple[str, ...] = ()
        self.dupacks = 0
        self.nondup_frame = 0
        self.fin_end: int | None = None  # sequence number after its FIN
        self.fin_acked = False
        # Window Scale from its SYN: -1 unknown (no SYN seen), -2 not used, else shift
        self.wscale = -1


class Analyzer:
    """Feed a conversation's segments in file order; each gets its ``Analysis`` (or
    None when it has no mark and no SACK block)."""

    def __init__(self) -> None:
        self.flows: dict[Endpoint, _Flow] = {}
        self.syn_t: float | None = None  # the most recent SYN
        self.first_rtt: float | None = None

    def _flow(self, ep: Endpoint) -> _Flow:
        f = self.flows.get(ep)
        if f is None:
            f = self.flows[ep] = _Flow()
        return f

    def feed(self, v: SegmentView) -> Analysis | None:
        """The marks of the next segment in file order (None: none, no SACK block). A
        segment whose header the snap length cut moves the analysis on (a duplicate ACK
        is counted) but shows no mark: tshark stops displaying it at the cut."""
        # (every segment of ``netemu show`` comes here: _flow, _gt inlined, the
        # duplicate-ACK family of marks only for a segment that can be one)
        tcp = v.tcp
        fl = tcp.flags
        t = v.frame.t
        flows = self.flows
        fwd = flows.get(v.src)
        if fwd is None:
            fwd = flows[v.src] = _Flow()
        rev = flows.get(v.dst)
        if rev is None:
            rev = flows[v.dst] = _Flow()
        seq, ack, window = tcp.seq, tcp.ack if fl & ACK else 0, v.window
        seglen = v.payload_len if v.payload_len >= 0 else len(tcp.payload)
        if fl & SYN:
            self._syn(fwd, rev, v, t)
        elif fl & ACK and self.syn_t is not None and self.first_rtt is None:
            self.first_rtt = t - self.syn_t
        if fwd.nextseq is None and not fl & SYN:
            # its first segment, the SYN not seen: it had sent up to here (as tshark)
            fwd.nextseq, fwd.nextseq_t = seq, t
        marks: list[str] = []
        dup: tuple[int, int] | None = None
        nextseq = fwd.nextseq
        plain = not fl & (SYN | FIN | RST)
        if seglen == 1 and seq == nextseq and rev.window == 0:
            marks.append(ZERO_WINDOW_PROBE)  # and nothing else: Wireshark's "goto finished_fwd"
        else:
            if window == 0 and plain:
                marks.append(ZERO_WINDOW)
            if nextseq is not None and 0 < ((seq - nextseq) & MASK) < _HALF and not fl & RST:
                marks.append(LOST_SEGMENT)
            if seglen <= 1 and plain and nextseq is not None and seq == (nextseq - 1) & MASK:
                marks.append(KEEP_ALIVE)
            if seglen:
                if (
                    plain
                    and rev.wscale != -1
                    and rev.lastack is not None
                    and rev.window is not None
                    and (seq + seglen) & MASK == (rev.lastack + rev.window) & MASK
                ):
                    marks.append(WINDOW_FULL)
            elif plain and seq == nextseq and ack == fwd.lastack:
                dup = self._same_ack(fwd, rev, window, marks)
        if ack != fwd.lastack:
            fwd.nondup_frame = v.index + 1
            fwd.dupacks = 0
        if fl & ACK and self._acks_unseen(fwd, rev, ack):
            marks.append(ACK_LOST_SEGMENT)
        if seglen or fl & (SYN | FIN):
            self._resent(fwd, rev, v, marks, t, seglen)
            end = (seq + seglen + (1 if fl & SYN else 0) + (1 if fl & FIN else 0)) & MASK
            if ZERO_WINDOW_PROBE not in marks:
                if nextseq is None or 0 < ((end - nextseq) & MASK) < _HALF:
                    fwd.nextseq, fwd.nextseq_t = end, t
                if fwd.maxseqtobeacked is None or seq == fwd.maxseqtobeacked:
                    fwd.maxseqtobeacked = fwd.nextseq
            if fl & FIN:
                fwd.fin_end = end
        if fl & RST and fwd.fin_acked:
            marks.append(RST_AFTER_CLOSE)
        if fl & ACK and rev.fin_end is not None and not _lt(ack, rev.fin_end):
            rev.fin_acked = True
        fwd.window, fwd.lastack, fwd.lastack_t = window, ack, t
        sack: tuple[tuple[int, int], ...] = ()
        if fl & ACK:
            for o in tcp.options:
                if o.__class__ is SackOption:
                    sack = o.blocks
                    break
        fwd.last_marks = got = tuple(marks) if marks else ()
        if not (marks or sack) or (v.frame.note is not None and TCP_CUT in v.frame.note):
            return None
        return _with_sack(Analysis(got, dup), v, sack)

    @staticmethod
    def _same_ack(fwd: _Flow, rev: _Flow, window: int, marks: list[str]) -> tuple[int, int] | None:
        """The marks of an ACK without data that repeats its side's last ack: a window
        update, a keep-alive's or a zero-window probe's ACK, or a duplicate ACK (its
        number and the frame it repeats, returned)."""
        if not window:
            if fwd.window == 0 and ZERO_WINDOW_PROBE in rev.last_marks:
                marks.append(ZERO_WINDOW_PROBE_ACK)
        elif window != fwd.window:
            marks.append(WINDOW_UPDATE)
        elif KEEP_ALIVE in rev.last_marks:
            marks.append(KEEP_ALIVE_ACK)
        else:
            fwd.dupacks += 1
            marks.append(DUPLICATE_ACK)
            return (fwd.dupacks, fwd.nondup_frame)
        return None

    @staticmethod
    def _acks_unseen(fwd: _Flow, rev: _Flow, ack: int) -> bool:
        """ "ACKed unseen segment": ``ack`` is beyond what the other side was seen to
        send. Not again for a repeat of the ack that was marked (a FIN+ACK after the
        ACK of a FIN the capture missed), as tshark 4.0 marks them."""
        high = rev.maxseqtobeacked
        if high is None or not 0 < ((ack - high) & MASK) < _HALF:  # _gt(ack, high)
            return False
        if ack == fwd.lastack:
            return False
        rev.maxseqtobeacked = rev.nextseq
        return True

    def _syn(self, fwd: _Flow, rev: _Flow, v: SegmentView, t: float) -> None:
        ws = v.tcp.wscale
        fwd.wscale = -2 if ws is None else ws
        if ws is None or rev.wscale == -2:
            fwd.wscale = rev.wscale = -2  # not used unless both SYNs carry it
        if not v.tcp.flags & ACK:
            self.syn_t = t

    def _resent(
        self, fwd: _Flow, rev: _Flow, v: SegmentView, marks: list[str], t: float, seglen: int
    ) -> None:
        """Retransmission, fast retransmission, out-of-order or spurious retransmission,
        for a segment that occupies sequence space (``seglen``: its data's)."""
        if KEEP_ALIVE in marks:
            return
        seq, nextseq = v.tcp.seq, fwd.nextseq
        behind = nextseq is not None and 0 < ((nextseq - seq) & MASK) < _HALF  # _lt(seq, nextseq)
        recent = t - rev.lastack_t < FAST_RETRANSMISSION_WINDOW
        if behind and rev.dupacks >= 2 and rev.lastack == seq and recent:
            marks += (FAST_RETRANSMISSION, RETRANSMISSION)
            return
        ooo = OUT_OF_ORDER_DEFAULT if not self.first_rtt else self.first_rtt
        fl = v.tcp.flags
        end = (seq + seglen + (1 if fl & SYN else 0) + (1 if fl & FIN else 0)) & MASK
        if behind and t - fwd.nextseq_t < ooo and nextseq != end:  # SYN, FIN counted
            marks.append(OUT_OF_ORDER)
            return
        if seglen and rev.lastack and not 0 < ((seq + seglen - rev.lastack) & MASK) < _HALF:
            marks += (SPURIOUS_RETRANSMISSION, RETRANSMISSION)
            return
        if behind:
            marks.append(RETRANSMISSION)


def _with_sack(a: Analysis, v: SegmentView, blocks: tuple[tuple[int, int], ...]) -> Analysis:
    if not blocks or v.rel_ack is None:
        return a
    ack = v.tcp.ack
    base = (ack - v.rel_ack) & MASK
    a.sack = tuple(((x - base) & MASK, (y - base) & MASK) for x, y in blocks)
    first = blocks[0]
    a.dsack = _lt(first[0], ack) or (
        len(blocks) > 1 and not _lt(first[0], blocks[1][0]) and not _gt(first[1], blocks[1][1])
    )
    return a


def analyze(segments: Iterable[SegmentView]) -> Iterator[SegmentView]:
    """The segments of one conversation, in file order, each with ``analysis`` set."""
    an = Analyzer()
    for v in segments:
        v.analysis = an.feed(v)
        yield v
