"""TCP conversations in a trace: segments grouped by 4-tuple, oriented, numbered
relative to each side's ISN the way Wireshark does it.

Shared by the ladder, the report and state inference.

Windows are scaled (RFC 7323) when both SYNs were seen carrying Window Scale,
as Wireshark's ``tcp.window_size``; otherwise they are the raw field.

Relative numbers follow Wireshark (checked against tshark 4.0): a side's base is
the sequence number of its SYN; when the capture starts after the SYN, the base
is one less than the first sequence number seen (so it reads 1), or one less
than the first acknowledgment number that acks it. Arithmetic is modulo 2**32,
so a segment before the base reads as a large number, as in Wireshark.

A SYN (no ACK) on a 4-tuple whose sender's base is known and is not its sequence
number starts a new conversation, ended or not (a resent SYN does not), as
Wireshark's ``tcp.stream`` does (checked against tshark 4.0.17: a new ISN after one
FIN, or on an open connection, is a new stream).
"""

from __future__ import annotations

import bisect
from array import array
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

from ..wire import (
    ACK,
    CWR,
    ECE,
    ETHERTYPE_IPV6,
    FIN,
    NS,
    PSH,
    RST,
    SYN,
    URG,
    IPv6Packet,
    MalformedPacket,
    parse_frame,
)
from ..wire.tcp import TcpSegment
from .decap import LINKTYPE_ETHERNET, decode_link
from .record import (
    CongestionRecord,
    FrameRecord,
    NoteRecord,
    PeerCongestionRecord,
    PeerEventRecord,
    PeerStateRecord,
    StateRecord,
    Trace,
)

Endpoint = tuple[str, int]

_FLAG_NAMES = (
    (SYN, "SYN"),
    (FIN, "FIN"),
    (RST, "RST"),
    (PSH, "PSH"),
    (ACK, "ACK"),
    (URG, "URG"),
    (ECE, "ECE"),
    (CWR, "CWR"),
    (NS, "NS"),
)


def flag_names(flags: int) -> str:
    """Tutorial-style flag names: "SYN", "SYN+ACK", "PSH+ACK", "FIN+ACK", "RST"."""
    got = _FLAG_TEXT.get(flags)
    if got is None:
        names = [name for bit, name in _FLAG_NAMES if flags & bit]
        if flags & 0xE00:
            names.append("RES")
        got = _FLAG_TEXT[flags & 0xFFF] = "+".join(names) or "none"
    return got


_FLAG_TEXT: dict[int, str] = {}  # flags (12 bits) -> their names, as met


def ep_str(ep: Endpoint) -> str:
    """``198.18.0.1:80``, ``[2001:db8::1]:80``."""
    return f"[{ep[0]}]:{ep[1]}" if ":" in ep[0] else f"{ep[0]}:{ep[1]}"


# Linux (sock_diag, ss) and enum-style names -> RFC 9293 names.
_STATE_ALIASES = {
    "SYN_RECV": "SYN-RECEIVED",
    "NEW_SYN_RECV": "SYN-RECEIVED",
    "SYN-RECV": "SYN-RECEIVED",
    "FIN_WAIT1": "FIN-WAIT-1",
    "FIN_WAIT2": "FIN-WAIT-2",
    "FIN-WAIT1": "FIN-WAIT-1",
    "FIN-WAIT2": "FIN-WAIT-2",
    "CLOSE": "CLOSED",
    "UNCONN": "CLOSED",
    "ESTAB": "ESTABLISHED",
}


def normalize_state(name: str) -> str:
    """A state name as RFC 9293 writes it, from Linux's, ss's or an enum's spelling."""
    s = str(name).strip()
    if s.startswith("State."):
        s = s[6:]
    s = s.upper()
    if s.startswith("TCP_"):
        s = s[4:]
    if s in _STATE_ALIASES:
        return _STATE_ALIASES[s]
    s = s.replace("_", "-")
    return _STATE_ALIASES.get(s, s)


@dataclass(slots=True)
class SegmentView:
    """One TCP segment of a trace, with its place in its conversation."""

    index: int  # into trace.frames; the pcap frame number is index + 1
    frame: FrameRecord
    src: Endpoint
    dst: Endpoint
    tcp: TcpSegment
    rel_seq: int = 0
    rel_ack: int | None = None  # None when the ACK flag is off
    left_to_right: bool = True
    window: int = 0  # scaled (RFC 7323) when both SYNs carried Window Scale: tcp.window_size
    # It resends sequence space its side had sent before (a retransmission, a
    # duplicate, a keep-alive's byte), dropped copies counted: Wireshark's
    # tcp.analysis.retransmission, roughly.
    retransmission: bool = False
    payload_len: int = -1  # len(tcp.payload), kept when the payload was let go (-1: not)
    # Wireshark's TCP analysis of it and its SACK blocks (analysis.Analysis), when
    # analysis.analyze ran over its conversation; None: no mark, no SACK block
    analysis: Any = None

    @property
    def t(self) -> float:
        return self.frame.t

    @property
    def flags(self) -> str:
        return flag_names(self.tcp.flags)

    @property
    def length(self) -> int:
        n = self.payload_len
        return len(self.tcp.payload) if n < 0 else n

    def drop_payload(self) -> None:
        """Let the parsed payload go (a copy of the frame's bytes), keeping its length:
        for views held a while, as the ladder's."""
        if self.payload_len < 0:
            self.payload_len = len(self.tcp.payload)
            self.tcp.payload = b""

    @property
    def mark(self) -> str | None:
        return self.frame.mark

    @property
    def dropped(self) -> bool:
        return self.frame.mark == "dropped"

    @property
    def injected(self) -> bool:
        return self.frame.mark in ("injected", "inject")

    def label(self) -> str:
        """The arrow's text: flags, relative seq/ack, len and win; "[bad opt]" (as
        tcpdump says it) when the option list stops at an option of bad length."""
        s = f"{self.flags} seq={self.rel_seq}"
        if self.rel_ack is not None:
            s += f" ack={self.rel_ack}"
        s += f" len={self.length} win={self.window}"
        return s + " [bad opt]" if self.tcp.malformed_option is not None else s

    def options_str(self) -> str:
        t = self.tcp
        parts = []
        if t.mss is not None:
            parts.append(f"mss {t.mss}")
        if t.wscale is not None:
            parts.append(f"wscale {t.wscale}")
        if t.sack_permitted:
            parts.append("sackOK")
        if t.timestamp is not None:
            parts.append(f"TS val {t.timestamp.tsval} ecr {t.timestamp.tsecr}")
        if t.sack_blocks:
            parts.append("sack " + " ".join(f"{a}-{b}" for a, b in t.sack_blocks))
        bad = t.malformed_option
        if bad is not None:
            from ..tcp.arrivals import dropped_unread  # the endpoint's: only when needed

            parts.append(
                f"{bad.reason}: options stop here"
                + (", dropped unread by Linux >= 6.7" if dropped_unread(t) else "")
            )
        return ", ".join(parts)


@dataclass
class Conversation:
    """The segments of one TCP connection, oriented: ``left`` is the emulator's
    endpoint in a run (or the client in a foreign capture), ``right`` the peer's."""

    number: int  # 0-based, in order of first segment, like tcp.stream
    left: Endpoint
    right: Endpoint
    segments: list[SegmentView] = field(default_factory=list)
    states: list[StateRecord | PeerStateRecord] = field(default_factory=list)  # left side's
    peer_states: list[StateRecord | PeerStateRecord] = field(default_factory=list)  # right side's
    notes: list[NoteRecord] = field(default_factory=list)
    congestion: list[CongestionRecord] = field(default_factory=list)  # left side's
    # The peer kernel's listener (a socket with no remote end): its own lane label,
    # never the connection's states.
    listener_states: list[PeerStateRecord] = field(default_factory=list)
    peer_congestion: list[PeerCongestionRecord] = field(default_factory=list)  # right side's
    peer_events: list[PeerEventRecord] = field(default_factory=list)  # right side's
    conn_name: str | None = None  # the scenario's name for it, from StateRecord.conn
    # Its frames (indices into trace.frames, in order), also when ``segments`` was not
    # kept (``split_conversations(keep_segments=False)``: ``iter_segments`` reads them
    # again), and counts over them all, for summaries.
    frames: array = field(default_factory=lambda: array("I"), repr=False)
    first_t: float = 0.0
    last_t: float = 0.0
    payload_bytes: dict = field(default_factory=dict, repr=False)  # src endpoint -> bytes
    dropped: int = 0
    retransmissions: int = 0
    n_segments: int = 0  # how many it has (``count``), ``frames`` kept or not
    # sequence bookkeeping (internal)
    _base: dict = field(default_factory=dict, repr=False)
    _wscale: dict = field(default_factory=dict, repr=False)  # endpoint -> shift or None
    _high: dict = field(default_factory=dict, repr=False)  # src -> highest seq sent + 1

    @property
    def key(self) -> frozenset:
        return frozenset((self.left, self.right))

    @property
    def start(self) -> float:
        """The time of its first frame (in record order)."""
        return self.first_t

    @property
    def end(self) -> float:
        """The time of its last frame (in record order)."""
        return self.last_t

    @property
    def count(self) -> int:
        """How many segments it has (``len(segments)`` when they were kept)."""
        return self.n_segments

    def iter_segments(self, trace: Trace) -> Iterator[SegmentView]:
        """Its segments in order, as ``segments`` holds them; read again from
        ``trace.frames`` (one at a time, nothing kept) when they were not kept."""
        if self.segments or not self.frames:
            yield from self.segments
            return
        replay = Conversation(self.number, self.left, self.right)
        frames = trace.frames
        for i in self.frames:
            fr = frames[i]
            parsed = parse_tcp(fr.data)
            assert parsed is not None
            v = SegmentView(i, fr, *parsed)
            replay._add(v, keep=False)
            yield v

    def title(self) -> str:
        name = f" [{self.conn_name}]" if self.conn_name else ""
        return f"TCP {ep_str(self.left)} ⇄ {ep_str(self.right)}{name}"

    def _add(self, v: SegmentView, keep: bool = True, index: bool = True) -> None:
        """Count ``v`` in, set its relative numbers, window and retransmission flag;
        ``keep``: hold it in ``segments``; ``index``: its frame in ``frames``."""
        tcp = v.tcp
        fl = tcp.flags
        src, dst = v.src, v.dst
        t = v.frame.t
        base = self._base
        if not self.n_segments:
            self.first_t = t
        self.last_t = t
        self.n_segments += 1
        if index:
            self.frames.append(v.index)
        seq = tcp.seq
        if fl & SYN:
            base[src] = seq
        elif src not in base:
            base[src] = (seq - 1) & 0xFFFFFFFF
        if fl & ACK:
            if dst not in base:
                base[dst] = (tcp.ack - 1) & 0xFFFFFFFF
            v.rel_ack = (tcp.ack - base[dst]) & 0xFFFFFFFF
        else:
            v.rel_ack = None
        v.rel_seq = (seq - base[src]) & 0xFFFFFFFF
        v.left_to_right = src == self.left
        wscale = self._wscale
        if fl & SYN:
            wscale[src] = tcp.wscale
            v.window = tcp.window  # "The window field in a SYN segment itself is never scaled"
        elif wscale:
            own, other = wscale.get(src, -1), wscale.get(dst, -1)
            scaled = own is not None and other is not None and own != -1 and other != -1
            v.window = tcp.window << min(own, 14) if scaled else tcp.window
        else:  # no SYN seen: nothing scaled
            v.window = tcp.window
        n = v.payload_len
        if n < 0:  # (>= 0: the payload was let go, or never copied)
            n = len(tcp.payload)
        occupied = n + (fl & SYN and 1) + (fl & FIN and 1)
        if occupied:
            high = self._high.get(src)
            if high is None or 0 < ((seq + occupied - high) & 0xFFFFFFFF) < 0x80000000:
                self._high[src] = (seq + occupied) & 0xFFFFFFFF
            if high is not None and 0 < ((high - seq) & 0xFFFFFFFF) < 0x80000000:
                v.retransmission = True
                self.retransmissions += 1
        if n:
            pb = self.payload_bytes
            pb[src] = pb.get(src, 0) + n
        if v.frame.mark == "dropped":
            self.dropped += 1
        if keep:
            self.segments.append(v)


def parse_tcp(data: bytes) -> tuple[Endpoint, Endpoint, TcpSegment] | None:
    """(src, dst, segment) of an Ethernet/IPv4/TCP or Ethernet/IPv6/TCP frame (IPv6
    extension headers walked; the first fragment of a fragmented packet gives its TCP
    header and the bytes it holds); None for anything else. Checksums are not
    verified: a trace shows what was on the wire."""
    try:
        fr = parse_frame(data, verify=False)
        ip = fr.ip
        if ip is None:
            if fr.eth.ethertype != ETHERTYPE_IPV6:
                return None
            ip6 = IPv6Packet.parse(data, 14)
            if ip6.next_header != 6 or ip6.later_fragment:
                return None
            seg = TcpSegment.parse(ip6.payload)
            return ((ip6.src, seg.src_port), (ip6.dst, seg.dst_port), seg)
        tcp = fr.tcp
        if tcp is None:
            if ip.protocol != 6 or ip.fragment_offset:
                return None
            tcp = TcpSegment.parse(ip.payload)  # a first fragment
    except MalformedPacket:
        return None
    return ((ip.src, tcp.src_port), (ip.dst, tcp.dst_port), tcp)


class Skipped(int):
    """How many frames hold no TCP segment (an int, as ``split_conversations`` has
    always returned), and ``reasons``: how many for each reason ("ARP", "not TCP
    (UDP)", "IPv6 fragment (not first)", "unsupported link type 147", …)."""

    reasons: dict[str, int]

    def __new__(cls, reasons: dict[str, int]) -> Skipped:
        self = super().__new__(cls, sum(reasons.values()))
        self.reasons = dict(sorted(reasons.items(), key=lambda kv: (-kv[1], kv[0])))
        return self

    def __reduce__(self) -> tuple[type[Skipped], tuple[dict[str, int]]]:
        # pickled as its reasons (netemu run -j sends a report, which holds one, to
        # its parent): int's own reduction would call __new__ with the count
        return Skipped, (self.reasons,)


def skip_reason(trace: Trace, index: int) -> str:
    """Why frame ``index`` of ``trace`` holds no TCP segment: what the capture reader
    said (``Trace.skipped``), else what ``decap.decode_link`` finds in its Ethernet
    frame."""
    why = trace.skipped.get(index)
    if why:
        return why
    return decode_link(LINKTYPE_ETHERNET, trace.frames[index].data).reason or "malformed TCP"


def split_conversations(
    trace: Trace, keep_segments: bool = True
) -> tuple[list[Conversation], Skipped]:
    """The trace's TCP conversations (segments only, no states yet), and the frames
    that are not TCP segments (ARP, ICMP, malformed), counted by reason. With
    ``keep_segments=False`` no segment is kept (``segments`` stays empty): each
    conversation knows its frames, times and counts, and ``iter_segments`` reads its
    segments again, so a large trace is not held twice."""
    convs: list[Conversation] = []
    current: dict[frozenset, Conversation] = {}
    reasons: dict[str, int] = {}
    for i, fr in enumerate(trace.frames):
        parsed = parse_tcp(fr.data)
        if parsed is None:
            why = skip_reason(trace, i)
            reasons[why] = reasons.get(why, 0) + 1
            continue
        src, dst, tcp = parsed
        key = frozenset((src, dst))
        conv = current.get(key)
        if conv is not None and tcp.flags & (SYN | ACK) == SYN:
            isn = conv._base.get(src)
            if isn is not None and isn != tcp.seq:
                conv = None
        if conv is None:
            out = fr.direction == "out"
            if trace.emulator_ip in (src[0], dst[0]) and src[0] != dst[0]:
                out = src[0] == trace.emulator_ip
            left, right = (src, dst) if out else (dst, src)
            conv = Conversation(len(convs), left, right)
            convs.append(conv)
            current[key] = conv
        conv._add(SegmentView(i, fr, src, dst, tcp), keep_segments)
    return convs, Skipped(reasons)


_WILDCARD = frozenset({"0.0.0.0", "::", "*", ""})


def _norm_ep(ep: Any) -> Endpoint:
    """(ip, port), with an IPv4-mapped IPv6 address as plain IPv4: a dual-stack socket
    (Go's listeners) reports its IPv4 peers as ::ffff:198.18.0.1."""
    ip, port = str(ep[0]), int(ep[1])
    if ip.lower().startswith("::ffff:") and "." in ip:
        ip = ip[7:]
    return (ip, port)


_OPENING = frozenset({"SYN-SENT", "SYN-RECEIVED", "LISTEN"})


def new_state(rec: StateRecord | PeerStateRecord) -> str:
    """The state a record says its socket entered, as recorded."""
    return rec.new if isinstance(rec, StateRecord) else rec.state


def _pick(
    convs: list[Conversation],
    rec: StateRecord | PeerStateRecord | CongestionRecord | PeerCongestionRecord | PeerEventRecord,
) -> Conversation:
    """The conversation a state record belongs to, among several on one 4-tuple: the
    one whose span holds it; between two, the next one if the record opens a
    connection (SYN-SENT, SYN-RECEIVED), else the previous one."""
    t = rec.t
    prev = None
    for c in convs:
        if c.start > t:
            if prev is None:
                return c
            if not isinstance(rec, StateRecord | PeerStateRecord):
                return prev
            new = normalize_state(new_state(rec))
            return c if new in _OPENING else prev
        prev = c
        if t <= c.end:
            return c
    return convs[-1]


def conversations(
    trace: Trace,
    extra_states: Iterable[StateRecord] = (),
    keep_segments: bool = True,
    place_notes: bool = True,
) -> tuple[list[Conversation], Skipped]:
    """``split_conversations`` plus each conversation's states, congestion records
    and notes.

    A state record belongs to the conversation whose 4-tuple it names, on the side
    of its ``local`` endpoint (ours from ``trace.states``, the peer's from
    ``trace.peer_states``: a record is placed by its endpoint, not by its list). A
    record with no remote port (a listener) goes to the first conversation on its
    local endpoint that had not started yet, or the last one. A note goes to every
    conversation whose time span holds it and to every conversation that starts
    before the next note (the step that opened it); any other note goes to the
    nearest conversation in time. A congestion record goes to the conversation of
    its 4-tuple (the one whose span holds it, else the previous one) when its
    ``local`` is that conversation's left endpoint. ``keep_segments``: as
    ``split_conversations``'s; ``place_notes=False`` leaves every ``notes`` empty
    (``NotePlacement`` gives them one conversation at a time)."""
    convs, other = split_conversations(trace, keep_segments)
    if not convs:
        return convs, other
    _StatePlacer(convs).place_all((*trace.states, *extra_states, *trace.peer_states))
    _place_congestion(trace, convs)
    for c in convs:
        for recs in (
            c.states,
            c.peer_states,
            c.listener_states,
            c.congestion,
            c.peer_congestion,
            c.peer_events,
        ):
            recs.sort(key=lambda r: r.t)
    if place_notes:
        placement = NotePlacement(trace.notes, convs)
        for c in convs:
            c.notes = placement.of(c)
    return convs, other


def _by_key(convs: list[Conversation]) -> dict[frozenset[Endpoint], list[Conversation]]:
    by_key: dict[frozenset[Endpoint], list[Conversation]] = {}
    for c in convs:
        by_key.setdefault(c.key, []).append(c)
    return by_key


class _StatePlacer:
    """``conversations``' rule for state records: by 4-tuple, on the side of the
    record's ``local``; a listener's record (no remote port) by its local endpoint."""

    def __init__(self, convs: list[Conversation]) -> None:
        self.convs = convs
        self.by_key = _by_key(convs)
        self.by_local: dict[Endpoint, list[Conversation]] = {}
        for c in convs:
            self.by_local.setdefault(c.left, []).append(c)
            self.by_local.setdefault(c.right, []).append(c)

    def place_all(self, recs: Iterable[StateRecord | PeerStateRecord]) -> None:
        for rec in recs:
            self.place(rec)

    def place(self, rec: StateRecord | PeerStateRecord) -> None:
        local, remote = _norm_ep(rec.local), _norm_ep(rec.remote)
        cands = self.by_key.get(frozenset((local, remote)))
        if cands:
            conv = _pick(cands, rec)
        else:
            cands = self.by_local.get(local)
            if not cands and local[0] in _WILDCARD:  # a listener on 0.0.0.0 or [::]
                cands = [c for c in self.convs if local[1] in (c.left[1], c.right[1])]
                if cands:
                    c0 = cands[0]
                    local = c0.right if c0.right[1] == local[1] else c0.left
            if not cands:
                return
            later = [c for c in cands if c.start >= rec.t]
            conv = later[0] if later else cands[-1]
        if isinstance(rec, PeerStateRecord) and _norm_ep(rec.remote)[1] == 0:
            conv.listener_states.append(rec)
            return
        side = conv.states if local == conv.left else conv.peer_states
        side.append(rec)
        if (
            isinstance(rec, StateRecord)
            and rec.conn not in ("", "client", "server")
            and conv.conn_name is None
            and local == conv.left
        ):
            conv.conn_name = rec.conn


def _place_congestion(trace: Trace, convs: list[Conversation]) -> None:
    """Congestion records and the peer's kernel events, by 4-tuple only (a connection
    has both ports): ours on the left side, the peer's on the right."""
    by_key = _by_key(convs)
    for cc in trace.congestion:
        local = _norm_ep(cc.local)
        cands = by_key.get(frozenset((local, _norm_ep(cc.remote))))
        if cands:
            conv = _pick(cands, cc)
            if local == conv.left:  # the ladder draws them on our (the left) side only
                conv.congestion.append(cc)
    peer_recs: list[PeerCongestionRecord | PeerEventRecord] = [
        *trace.peer_congestion,
        *trace.peer_events,
    ]
    for pr in peer_recs:
        local = _norm_ep(pr.local)
        cands = by_key.get(frozenset((local, _norm_ep(pr.remote))))
        if cands:
            conv = _pick(cands, pr)
            if local == conv.right:
                if isinstance(pr, PeerCongestionRecord):
                    conv.peer_congestion.append(pr)
                else:
                    conv.peer_events.append(pr)


class NotePlacement:
    """Which of a trace's notes go to which conversation (``conversations``' rule: a
    note goes to every conversation whose time span holds it and to every one that
    starts before the next note; any other note to the nearest conversation in time),
    answered one conversation at a time: with many conversations at once every note
    is in each of them, and a list per conversation would hold them all."""

    def __init__(self, notes: Sequence[NoteRecord], convs: list[Conversation]) -> None:
        # A note about one connection (``endpoints``) goes under its heading only: to
        # the conversation of that 4-tuple whose span holds it, else the nearest one.
        general: list[NoteRecord] = []
        self._pinned: dict[int, list[NoteRecord]] = {}
        by_key = _by_key(convs) if any(n.endpoints for n in notes) else {}
        for n in notes:
            cands = by_key.get(frozenset(n.endpoints)) if n.endpoints else None
            if not cands:
                general.append(n)
                continue
            near = min(cands, key=lambda c: max(c.start - n.t, n.t - c.end, 0.0))
            self._pinned.setdefault(id(near), []).append(n)
        notes = general
        self.notes = sorted(notes, key=lambda n: n.t)
        self.ts = ts = [n.t for n in self.notes]
        # A note some conversation holds: one spans it, or it is the last before one
        # starts. Spans: by start, with the latest end so far.
        spans = sorted((c.start, c.end) for c in convs)
        starts = [a for a, _ in spans]
        reach: list[float] = []
        for _, b in spans:
            reach.append(max(b, reach[-1]) if reach else b)
        before = {bisect.bisect_left(ts, c.start) - 1 for c in convs}
        self._orphans: dict[int, list[int]] = {}  # id(conversation) -> note indices
        for i, t in enumerate(ts if convs else ()):
            j = bisect.bisect_right(starts, t) - 1
            if (j >= 0 and reach[j] >= t) or i in before:
                continue
            near = min(convs, key=lambda c: min(abs(c.start - t), abs(c.end - t)))
            self._orphans.setdefault(id(near), []).append(i)

    def of(self, conv: Conversation) -> list[NoteRecord]:
        """The notes of ``conv``, in time order."""
        ts = self.ts
        lo, hi = bisect.bisect_left(ts, conv.start), bisect.bisect_right(ts, conv.end)
        picked = set(range(lo, hi))
        if lo > 0:
            picked.add(lo - 1)
        picked.update(self._orphans.get(id(conv), ()))
        out = [self.notes[i] for i in sorted(picked)]
        pinned = self._pinned.get(id(conv))
        return sorted([*out, *pinned], key=lambda n: n.t) if pinned else out
