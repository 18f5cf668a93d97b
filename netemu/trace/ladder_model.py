"""The ladder's model: the size policy (``LadderLimits``), the rows of each
conversation's section (``Row``, ``Gap``, ``Section``) and ``build_ladder``, which
reads a trace into a ``Ladder`` one conversation at a time. The renderers
(``ladder_text``, ``ladder_html``) draw it; ``trace.ladder`` is the entry point.

Layer rule: reads the trace (``record``, ``conv``); draws nothing.
"""

from __future__ import annotations

import sys
from array import array
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from ..wire import FIN, RST, SYN
from .analysis import Analysis, analyze
from .conv import (
    Conversation,
    NotePlacement,
    SegmentView,
    conversations,
    ep_str,
    normalize_state,
)
from .record import (
    CongestionRecord,
    NoteRecord,
    PeerCongestionRecord,
    PeerEventRecord,
    PeerStateRecord,
    StateRecord,
    Trace,
)

if TYPE_CHECKING:
    pass

DEFAULT_ROLES = ("netemu", "peer")


# --- the size policy -------------------------------------------------------------------


@dataclass(frozen=True)
class LadderLimits:
    """How large a ladder may grow (docs/trace.md, "Large traces"). A row is one line
    of the ladder: a segment, a state, a congestion change, a note. The pcap and
    report.json are never cut."""

    # A conversation of more rows than this is summarised: its first and last ``keep``
    # rows are drawn, and between them every event (a state or congestion change of
    # either side, a peer kernel's event, a note, and every SYN, FIN, RST, dropped,
    # injected or otherwise marked segment, retransmission and segment with a note)
    # with ``context`` rows either side; each stretch left out is one line that counts it.
    max_rows: int = 2_000
    keep: int = 250
    context: int = 2
    # The first conversations are drawn until either limit is reached (the first one
    # always is); the others are listed in a table, one line each, up to ``max_listed``
    # lines, then counted.
    max_conversations: int = 200
    max_total_rows: int = 10_000
    max_listed: int = 10_000

    def __post_init__(self) -> None:
        for name in ("max_rows", "keep", "max_conversations", "max_total_rows"):
            if getattr(self, name) < 1:
                raise ValueError(f"LadderLimits.{name} must be at least 1")
        if self.context < 0 or self.max_listed < 0:
            raise ValueError("LadderLimits.context and max_listed cannot be negative")


DEFAULT_LIMITS = LadderLimits()
# Every segment of every conversation drawn, as before there were limits.
UNLIMITED = LadderLimits(
    max_rows=sys.maxsize,
    max_conversations=sys.maxsize,
    max_total_rows=sys.maxsize,
    max_listed=sys.maxsize,
)

# A stretch of fewer rows than this is drawn rather than summarised in one line.
_MIN_GAP = 3
# Lines a section takes besides its rows (title, header, lifelines, the blank line
# before it), counted against ``max_total_rows``.
_SECTION_LINES = 5


# --- the row model -------------------------------------------------------------------


@dataclass(slots=True)
class Gap:
    """A stretch of a summarised conversation's segments that is not drawn."""

    t_first: float  # trace times
    t_last: float
    segments: int = 0
    data_lr: int = 0  # data segments left → right (netemu → peer), their bytes, ACKs
    bytes_lr: int = 0
    acks_lr: int = 0
    data_rl: int = 0
    bytes_rl: int = 0
    acks_rl: int = 0

    def add(self, t: float, left_to_right: bool, length: int) -> None:
        self.t_last = t
        self.segments += 1
        if left_to_right:
            if length:
                self.data_lr += 1
                self.bytes_lr += length
            else:
                self.acks_lr += 1
        elif length:
            self.data_rl += 1
            self.bytes_rl += length
        else:
            self.acks_rl += 1

    def text(self) -> str:
        """ "… 1,234 segments left out, 0.412 s: → 612 data (886,176 bytes), 3 ACKs;
        ← 619 ACKs"."""
        parts = []
        for arrow, data, nbytes, acks in (
            ("→", self.data_lr, self.bytes_lr, self.acks_lr),
            ("←", self.data_rl, self.bytes_rl, self.acks_rl),
        ):
            bits = []
            if data:
                bits.append(f"{data:,} data ({nbytes:,} bytes)")
            if acks:
                bits.append(f"{acks:,} ACK{'s' if acks != 1 else ''}")
            if bits:
                parts.append(f"{arrow} " + ", ".join(bits))
        n = self.segments
        return (
            f"… {n:,} segment{'s' if n != 1 else ''} left out, "
            f"{self.t_last - self.t_first:.3f} s: " + "; ".join(parts)
        )


@dataclass(slots=True)
class Row:
    t: float  # seconds since the trace started
    # "seg", "state", "note", "init", "cc" (a congestion phase change), "pcc" (the peer
    # kernel's congestion state or ssthresh changed), "pev" (the peer kernel retransmitted
    # or sent/received a reset: its own tracepoints), "gap" (segments not drawn: a
    # summarised conversation's, ``detail`` says what they were)
    kind: str
    seg: SegmentView | None = None
    side: str = ""  # "left" / "right", for state rows
    state: str = ""  # the state, or the congestion phase for cc rows
    detail: str = ""  # cause or sock_diag info, for tooltips; cwnd, ssthresh, cause for cc
    note: NoteRecord | None = None
    init: tuple[str, str] = ("", "")  # initial states (left, right)

    @property
    def analysis(self) -> Analysis | None:
        """Wireshark's TCP analysis of its segment (``marks``, ``dup_ack``, ``sack``,
        ``dsack``; ``tags()`` as the text ladder writes them), None for none."""
        return self.seg.analysis if self.seg is not None else None


@dataclass
class Section:
    conv: Conversation
    title: str
    left_label: str
    right_label: str
    left_role: str
    right_role: str
    rows: list[Row] = field(default_factory=list)
    # Rows it would have whole; when more than ``rows`` hold, it was summarised.
    total_rows: int = 0

    @property
    def summarised(self) -> bool:
        return self.total_rows > len(self.rows)

    def notice(self, limits: LadderLimits) -> str:
        """What a summarised section says under its header ("" when it is whole)."""
        if not self.summarised:
            return ""
        drawn = sum(r.kind != "gap" for r in self.rows)
        return (
            f"Summarised: {drawn:,} of its {self.total_rows:,} rows are drawn (more than "
            f"{limits.max_rows:,}): the first and last {limits.keep:,}, and every state "
            "and congestion change, note, SYN, FIN, RST, drop, injection, "
            f"retransmission and marked segment, with {limits.context} row(s) either "
            "side; each stretch left out is one line. The pcap holds every segment."
        )


@dataclass
class Ladder:
    sections: list[Section]
    other_frames: int  # frames that are not TCP segments (ARP, ICMP, malformed)
    title: str | None = None
    limits: LadderLimits = DEFAULT_LIMITS
    # Conversations not drawn (beyond the limits), listed one line each, and how
    # many more there were beyond ``limits.max_listed`` (and their segments).
    listed: list[Conversation] = field(default_factory=list)
    unlisted: int = 0
    unlisted_segments: int = 0
    segments: int = 0  # in all conversations
    t0: float = 0.0
    page: int = 1  # of ``ladder_pages``
    # Every conversation of the trace, on this page or not (``ladder_pages``).
    everything: list[Conversation] = field(default_factory=list, repr=False)

    @property
    def conversations(self) -> int:
        return len(self.sections) + len(self.listed) + self.unlisted

    def skipped_text(self) -> str:
        """The footnote on the frames not drawn: how many, and why, by reason ("" for
        none): "3 frame(s) that are not TCP segments are in the pcap but not drawn:
        2 ARP, 1 not TCP (UDP)"."""
        n = self.other_frames
        if not n:
            return ""
        text = f"{n} frame(s) that are not TCP segments are in the pcap but not drawn"
        reasons = getattr(n, "reasons", None)
        if reasons:
            text += ": " + ", ".join(f"{k:,} {why}" for why, k in reasons.items())
        return text

    def notice(self) -> str:
        """What the ladder says at its top when the limits left something out ("" when
        everything is drawn)."""
        parts = []
        n_summ = sum(s.summarised for s in self.sections)
        rest = len(self.listed) + self.unlisted
        lim = self.limits
        if rest:
            why = (
                f"at most {lim.max_conversations:,} conversations"
                if len(self.sections) >= lim.max_conversations
                else f"at most {lim.max_total_rows:,} rows in all"
            )
            parts.append(
                f"the first {len(self.sections):,} of its {self.conversations:,} "
                f"conversations are drawn ({why}), the other {rest:,} listed at "
                "the end"
            )
        if n_summ:
            parts.append(
                f"{n_summ:,} conversation{'s' if n_summ != 1 else ''} of more than "
                f"{lim.max_rows:,} rows {'are' if n_summ != 1 else 'is'} summarised"
            )
        if not parts:
            return ""
        n = self.conversations
        return (
            f"A large trace ({n:,} conversation{'s' if n != 1 else ''}, "
            f"{self.segments:,} segments): "
            + "; ".join(parts)
            + ". Every segment is still in the capture, and in the JSON report "
            "(a run's report.json; netemu show --json)."
        )


# How a peer state's source shows beside it: the kernel's own tracepoints need no mark.
SOURCE_MARK = {"kernel": "", "poll": " (polled)", "inferred": " (inferred)"}


def peer_state_label(rec: PeerStateRecord, listener: bool = False) -> str:
    """A peer state as the ladder writes it: "LAST-ACK", "LAST-ACK (polled)",
    "listener :8080 LISTEN"."""
    state = normalize_state(rec.state) + SOURCE_MARK.get(rec.source, f" ({rec.source})")
    return f"listener :{rec.local[1]} {state}" if listener else state


def _state_rows(
    recs: Iterable[StateRecord | PeerStateRecord], side: str, t0: float, listener: bool = False
) -> Iterable[tuple[tuple, Row]]:
    last = None
    for n, rec in enumerate(recs):
        if isinstance(rec, StateRecord):
            # guessed, not seen (a capture's inference): said so, as a polled peer's is
            state = normalize_state(rec.new) + (SOURCE_MARK["inferred"] if rec.inferred else "")
            detail = rec.cause
            r = 3 if rec.cause.startswith("recv") else 1
        else:
            state = peer_state_label(rec, listener)
            how = {"kernel": "kernel tracepoint", "poll": "sock_diag poll"}.get(
                rec.source, rec.source
            )
            extra = rec.info.get("kernel") or rec.info.get("cause") or ""
            detail = how + (f": {extra}" if extra else "")
            # The kernel's tracepoint times a change when it happened, before the segment
            # it sends leaves: placed by time alone. A poll or inference saw it later.
            r = 1 if rec.source == "kernel" else 3
        if state == last:  # a poller may report a state again
            continue
        last = state
        yield (rec.t, r, n), Row(rec.t - t0, "state", side=side, state=state, detail=detail)


def _peer_cc_rows(recs: Iterable[PeerCongestionRecord], t0: float) -> Iterable[tuple[tuple, Row]]:
    """The peer kernel's congestion state changes (and ssthresh changes): cwnd moves on
    every ACK and stays in report.json."""
    ca, ssthresh = "open", None
    for n, rec in enumerate(recs):
        if rec.ca_state == ca and rec.ssthresh == ssthresh:
            continue
        first = ssthresh is None
        ca, ssthresh = rec.ca_state, rec.ssthresh
        if first and rec.ca_state == "open":
            continue  # the socket's opening figures: nothing happened yet
        # The kernel counts cwnd and ssthresh in segments (netemu's own are bytes).
        text = (
            f"{rec.ca_state}: cwnd {rec.cwnd} seg, ssthresh {ssthresh_str(rec.ssthresh)}"
            f" seg, srtt {rec.srtt_us / 1000:g} ms"
        )
        yield (
            (rec.t, 3, n),
            Row(
                rec.t - t0,
                "pcc",
                side="right",
                state=text,
                detail=f"kernel tracepoint: {rec.cause}",
            ),
        )


_PEER_EVENT_TEXT = {
    "retransmit": "kernel retransmits",
    "send_reset": "kernel sends RST",
    "receive_reset": "kernel takes RST",
}


def _peer_event_rows(recs: Iterable[PeerEventRecord], t0: float) -> Iterable[tuple[tuple, Row]]:
    for n, rec in enumerate(recs):
        text = _PEER_EVENT_TEXT.get(rec.kind, rec.kind)
        if rec.detail and rec.detail != "NOT_SPECIFIED":
            text += f" ({rec.detail})"
        yield (
            (rec.t, 1, n),
            Row(
                rec.t - t0,
                "pev",
                side="right",
                state=text,
                detail=f"kernel tracepoint tcp_{rec.kind}",
            ),
        )


# netemu.tcp.cc.INFINITE_SSTHRESH: ssthresh before the first congestion event
# ("arbitrarily high", RFC 5681 §3.1); not imported, to keep netemu.tcp out of a
# ladder's imports.
INFINITE_SSTHRESH = 0x7FFFFFFF


def ssthresh_str(ssthresh: int) -> str:
    return "∞" if ssthresh >= INFINITE_SSTHRESH else str(ssthresh)


def congestion_text(rec: CongestionRecord) -> str:
    """What the ladder writes beside a phase: "cwnd 14480 ssthresh 8688 (3 duplicate ACKs)"."""
    cause = f" ({rec.cause})" if rec.cause else ""
    return f"cwnd {rec.cwnd} ssthresh {ssthresh_str(rec.ssthresh)}{cause}"


def ladder_congestion(recs: Iterable[CongestionRecord]) -> list[CongestionRecord]:
    """The congestion records of one connection (in time order) that the ladder draws:
    those that change the phase or ssthresh. A connection starts in slow-start with
    an infinite ssthresh, so a restart after idle before any loss (cwnd only) is not
    drawn, nor is anything that only moves cwnd; every phase change is (slow-start →
    congestion-avoidance → fast-recovery → loss …), and so is a congestion event that
    lowers ssthresh again without changing the phase (a second timeout, a loss probe
    that repaired a tail loss). The trace and report.json keep every record."""
    out = []
    phase, ssthresh = "slow-start", INFINITE_SSTHRESH
    for rec in recs:
        if rec.phase != phase or rec.ssthresh != ssthresh:
            out.append(rec)
        phase, ssthresh = rec.phase, rec.ssthresh
    return out


def _cc_rows(recs: Iterable[CongestionRecord], t0: float) -> Iterable[tuple[tuple, Row]]:
    for n, rec in enumerate(ladder_congestion(recs)):
        # At one instant: a timer's (timeout, restart after idle) before the segments
        # it sends, like a state change not caused by a segment; any other is an ACK's
        # doing and comes after the segments that arrived with it.
        r = 1 if rec.cause.startswith(("timeout", "idle")) else 3
        yield (
            (rec.t, r, n),
            Row(rec.t - t0, "cc", side="left", state=rec.phase, detail=congestion_text(rec)),
        )


def _initial(recs: Sequence[StateRecord | PeerStateRecord]) -> str:
    if recs and isinstance(recs[0], StateRecord) and recs[0].old:
        return normalize_state(recs[0].old)
    return ""


def _other_rows(conv: Conversation, t0: float) -> list[tuple[tuple, Row]]:
    """A conversation's rows that are not segments, keyed for their place in time."""
    keyed: list[tuple[tuple, Row]] = []
    for n, note in enumerate(conv.notes):
        keyed.append(((note.t, 0, n), Row(note.t - t0, "note", note=note)))
    keyed.extend(_state_rows(conv.states, "left", t0))
    keyed.extend(_state_rows(conv.peer_states, "right", t0))
    keyed.extend(_state_rows(conv.listener_states, "right", t0, listener=True))
    keyed.extend(_peer_cc_rows(conv.peer_congestion, t0))
    keyed.extend(_peer_event_rows(conv.peer_events, t0))
    keyed.extend(_cc_rows(conv.congestion, t0))
    keyed.sort(key=lambda kr: kr[0])
    return keyed


def is_event(v: SegmentView) -> bool:
    """A segment a summarised ladder always draws: SYN, FIN or RST; dropped, injected
    or otherwise marked; a retransmission or any other mark of Wireshark's analysis
    (``analysis``); with a note or an option of bad length."""
    return bool(
        v.tcp.flags & (SYN | FIN | RST)
        or v.frame.mark
        or v.frame.note
        or v.retransmission
        or (v.analysis is not None and v.analysis.marks)
        or v.tcp.malformed_option is not None
    )


def _section(
    trace: Trace,
    conv: Conversation,
    t0: float,
    roles: tuple[str, str],
    limits: LadderLimits,
    others: list[tuple[tuple, Row]],
) -> Section:
    init = (_initial(conv.states), _initial(conv.peer_states))
    total = conv.count + len(others) + any(init)
    if total <= limits.max_rows:
        keyed = list(others)
        tk = -float("inf")
        for v in analyze(conv.iter_segments(trace)):
            v.drop_payload()
            tk = max(tk, v.t)  # in file order when a capture's clock goes back
            keyed.append(((tk, 2, v.index), Row(v.t - t0, "seg", seg=v)))
        keyed.sort(key=lambda kr: kr[0])
        rows = [r for _, r in keyed]
    else:
        rows = _summarised_rows(trace, conv, t0, limits, others)
    if any(init):
        rows.insert(0, Row(rows[0].t if rows else 0.0, "init", init=init))
    return Section(
        conv, conv.title(), ep_str(conv.left), ep_str(conv.right), roles[0], roles[1], rows, total
    )


def _summarised_rows(
    trace: Trace,
    conv: Conversation,
    t0: float,
    limits: LadderLimits,
    others: list[tuple[tuple, Row]],
) -> list[Row]:
    """The rows of a conversation over ``limits.max_rows``, with a "gap" row for each
    stretch left out. Two passes over its segments, holding a few bytes a segment and
    the views drawn: which to draw, then those."""
    ts, lr, length, event = array("d"), bytearray(), array("I"), bytearray()
    analysed: dict[int, Analysis] = {}  # the few segments with a mark or SACK block
    for v in analyze(conv.iter_segments(trace)):
        if v.analysis is not None:
            analysed[len(ts)] = v.analysis
        ts.append(max(v.t, ts[-1]) if ts else v.t)  # file order if the clock goes back
        lr.append(v.left_to_right)
        length.append(v.length)
        event.append(is_event(v))
    n = len(ts)
    # Rows in time order: segment j as j, others[k] as -(k + 1); at one instant as
    # build_ladder has them (notes, changes not caused by a segment, segments, the rest).
    index = conv.frames
    order = array("q")
    k = 0
    for j in range(n):  # in file order
        key = (ts[j], 2, index[j])
        while k < len(others) and others[k][0] < key:
            order.append(-(k + 1))
            k += 1
        order.append(j)
    order.extend(-(i + 1) for i in range(k, len(others)))
    total = len(order)
    chosen = bytearray(total)
    keep = min(limits.keep, total)
    chosen[:keep] = b"\1" * keep
    chosen[total - keep :] = b"\1" * keep
    c = limits.context
    for p in range(total):
        o = order[p]
        if o < 0 or event[o]:
            lo, hi = max(0, p - c), min(total, p + c + 1)
            chosen[lo:hi] = b"\1" * (hi - lo)
    p = 0
    while p < total:  # a stretch too short to be worth a line is drawn
        if chosen[p]:
            p += 1
            continue
        q = p
        while q < total and not chosen[q]:
            q += 1
        if q - p < _MIN_GAP:
            chosen[p:q] = b"\1" * (q - p)
        p = q
    wanted = bytearray(n)
    for p in range(total):
        if chosen[p] and order[p] >= 0:
            wanted[order[p]] = 1
    views: dict[int, SegmentView] = {}
    for j, v in enumerate(conv.iter_segments(trace)):
        if wanted[j]:
            v.drop_payload()
            v.analysis = analysed.get(j)
            views[j] = v
    rows: list[Row] = []
    gap: Gap | None = None
    for p in range(total):
        o = order[p]
        if chosen[p]:
            if gap is not None:
                rows.append(Row(gap.t_first - t0, "gap", detail=gap.text()))
                gap = None
            rows.append(Row(views[o].t - t0, "seg", seg=views[o]) if o >= 0 else others[-o - 1][1])
        else:
            if gap is None:
                gap = Gap(ts[o], ts[o])
            gap.add(ts[o], bool(lr[o]), length[o])
    if gap is not None:
        rows.append(Row(gap.t_first - t0, "gap", detail=gap.text()))
    return rows


def build_ladder(
    trace: Trace,
    *,
    roles: tuple[str, str] = DEFAULT_ROLES,
    title: str | None = None,
    extra_states: Iterable[StateRecord] = (),
    limits: LadderLimits | None = None,
) -> Ladder:
    """The row model of the ladder: one section per conversation, rows in time order
    (segments in file order: where a capture's clock goes back, a segment keeps its
    place and its own time).
    At one instant: notes, then our state changes not caused by a received segment
    (connect() → SYN-SENT comes before the SYN), then segments, then changes caused
    by segments and the peer's observed states. Congestion phase changes
    (``ladder_congestion``) are placed the same way.

    Within ``limits`` (default ``DEFAULT_LIMITS``; ``UNLIMITED`` draws everything): a
    conversation of more than ``max_rows`` rows is summarised, and the conversations
    after the first ``max_conversations``, or after ``max_total_rows`` rows, are
    listed (``Ladder.listed``) rather than drawn. Segments are read one conversation
    at a time and only those drawn are kept."""
    return next(
        ladder_pages(
            trace, roles=roles, title=title, extra_states=extra_states, limits=limits, max_pages=1
        )
    )


def ladder_pages(
    trace: Trace,
    *,
    roles: tuple[str, str] = DEFAULT_ROLES,
    title: str | None = None,
    extra_states: Iterable[StateRecord] = (),
    limits: LadderLimits | None = None,
    max_pages: int = 1,
) -> Iterator[Ladder]:
    """``build_ladder`` over up to ``max_pages`` pages, one at a time: each page draws
    conversations within ``limits`` as one ladder would, the next page starts where it
    stopped, and the conversations beyond the last page are listed on it. Every page
    has ``page`` (1, 2, …) and ``everything`` (all the conversations, for an index)."""
    limits = DEFAULT_LIMITS if limits is None else limits
    convs, other = conversations(trace, extra_states, keep_segments=False, place_notes=False)
    notes = NotePlacement(trace.notes, convs)
    t0 = trace.start
    segments = sum(c.count for c in convs)

    def page(n: int) -> Ladder:
        return Ladder([], other, title, limits, segments=segments, t0=t0, page=n, everything=convs)

    ladder = page(1)
    used = 0
    listing = False
    for conv in convs:
        sec: Section | None = None
        full = bool(ladder.sections) and len(ladder.sections) >= limits.max_conversations
        if not listing and not full:
            conv.notes = notes.of(conv)
            others = _other_rows(conv, t0)
            whole = conv.count + len(others) + 1
            # known too large without reading its segments
            full = bool(ladder.sections) and (
                whole <= limits.max_rows and used + whole + _SECTION_LINES > limits.max_total_rows
            )
            if not full:
                sec = _section(trace, conv, t0, roles, limits, others)
                full = bool(ladder.sections) and (
                    used + len(sec.rows) + _SECTION_LINES > limits.max_total_rows
                )
        if full and not listing:
            if ladder.page < max_pages:
                yield ladder
                ladder, used = page(ladder.page + 1), 0
                if sec is None:
                    conv.notes = notes.of(conv)
                    sec = _section(trace, conv, t0, roles, limits, _other_rows(conv, t0))
            else:
                listing = True
        if not listing and sec is not None:
            used += len(sec.rows) + _SECTION_LINES
            ladder.sections.append(sec)
            continue
        conv.notes = []  # listed: its notes are not drawn
        if len(ladder.listed) < limits.max_listed:
            ladder.listed.append(conv)
        else:
            ladder.unlisted += 1
            ladder.unlisted_segments += conv.count
    yield ladder


def seg_annotations(v: SegmentView) -> list[tuple[str, str]]:
    """(text, style) after the arrow: netemu's marks, Wireshark's analysis marks
    ("[retrans]", "[dup ack #2 of #14]": style "analysis") and SACK blocks in relative
    numbers ("[sack 1449-2897]", "[D-SACK 1-1449]": style "sack"), after the frame's
    note (netemu's own word on it comes first)."""
    out = []
    mark = v.mark
    if mark == "dropped":
        out.append(("✗ dropped", "drop"))
    elif v.injected:
        out.append(("[inject]", "inject"))
    elif mark:
        out.append((f"[{mark}]", "mark"))
    if v.frame.note:
        out.append((v.frame.note, "fnote"))
    a = v.analysis
    if a is not None:
        for tag in a.tags():
            sack = tag.startswith(("sack", "D-SACK"))
            out.append((f"[{tag}]", "sack" if sack else "analysis"))
    return out


def seg_class(v: SegmentView) -> str:
    fl = v.tcp.flags
    if v.dropped:
        return "drop"
    if v.injected:
        return "inject"
    if fl & RST:
        return "rst"
    if fl & SYN:
        return "syn"
    if fl & FIN:
        return "fin"
    if v.length:
        return "data"
    return "ack"
