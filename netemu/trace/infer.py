"""TCP states inferred from a capture, for conversations nobody recorded states of
(``netemu show any.pcap``).

Rules (RFC 9293 §3.3.2 and §3.10.7), applied to each segment in capture order,
first for its sender, then for its receiver (unless the frame is marked
"dropped": it never arrived; or unless a Linux receiver drops it unread for an
option of bad length, in any state but TIME-WAIT: see tcp.dropped_unread):

  sender                                   receiver
  SYN          CLOSED → SYN-SENT           SYN in SYN-SENT → SYN-RECEIVED (simultaneous open)
  SYN+ACK      LISTEN → SYN-RECEIVED       SYN+ACK in SYN-SENT acking our SYN → ESTABLISHED
  FIN          ESTABLISHED → FIN-WAIT-1    ACK of our SYN in SYN-RECEIVED → ESTABLISHED
               SYN-RECEIVED → FIN-WAIT-1   ACK of our FIN: FIN-WAIT-1 → FIN-WAIT-2,
               CLOSE-WAIT → LAST-ACK         CLOSING → TIME-WAIT, LAST-ACK → CLOSED
  RST          any → CLOSED                FIN, once in order: ESTABLISHED → CLOSE-WAIT,
                                             FIN-WAIT-1 → CLOSING, FIN-WAIT-2 → TIME-WAIT
                                           RST at RCV.NXT (or acking our SYN in SYN-SENT)
                                             → CLOSED; any other RST is ignored
                                             (RFC 5961 §3.2: it earns a challenge ACK)

A server starts in LISTEN (it is first seen receiving a SYN); a side first seen
sending anything other than a SYN is taken to be ESTABLISHED (the capture started
mid-connection; flagged ``inferred``, as the roles are when no SYN says which side
is the client: ``roles``). An ACK says what its sender received: across a hole in
the capture, an ACK of a FIN is the FIN's receipt (``inferred``). A SYN+ACK may ack
a Fast Open SYN's data. A self-connection is one socket that receives what it
sends. Segments are taken in file order; times that go back are held at the latest
so far, so a state never comes before the segment that caused it. A SYN+ACK or FIN that also acks the other side's FIN moves
straight through (FIN-WAIT-1 → TIME-WAIT is one record). TIME-WAIT's 2·MSL
timer leaves no segment, so TIME-WAIT is the last state a capture can show.

A state is attributed at the time of the segment that causes it, on the side
that sent or received it: a capture point sees a segment at one moment, so for
a capture taken at one end the other end's changes come slightly early or late.
"""

from __future__ import annotations

import bisect
import os
from collections import deque
from dataclasses import dataclass, field
from typing import IO, TYPE_CHECKING, Any

from ..tcp.state import State
from ..wire import ACK, FIN, RST, SYN
from ..wire.seq import HALF, seq_ge, seq_gt, seq_le
from ..wire.tcp import MalformedOption, TcpSegment
from .conv import Conversation, Endpoint, SegmentView, conversations, ep_str, flag_names
from .record import FrameRecord, NoteRecord, StateRecord, Trace

if TYPE_CHECKING:
    from .pcap import Capture

# The RFC names, from the one place that defines them.
(
    CLOSED,
    LISTEN,
    SYN_SENT,
    SYN_RECEIVED,
    ESTABLISHED,
    FIN_WAIT_1,
    FIN_WAIT_2,
    CLOSE_WAIT,
    CLOSING,
    LAST_ACK,
    TIME_WAIT,
) = (
    s.value
    for s in (
        State.CLOSED,
        State.LISTEN,
        State.SYN_SENT,
        State.SYN_RECEIVED,
        State.ESTABLISHED,
        State.FIN_WAIT_1,
        State.FIN_WAIT_2,
        State.CLOSE_WAIT,
        State.CLOSING,
        State.LAST_ACK,
        State.TIME_WAIT,
    )
)

MASK = 0xFFFFFFFF


def _plen(v: SegmentView) -> int:
    """The segment's payload length: ``netemu show``'s stream lets the bytes go before
    inference (``payload_len`` keeps the length), the whole-capture path keeps them."""
    n = v.payload_len
    return n if n >= 0 else len(v.tcp.payload)


def _unread(tcp: TcpSegment) -> bool:
    """``tcp.arrivals.dropped_unread`` (imported only for a segment with an option of
    bad length: the endpoint's modules are not needed to show a capture)."""
    opts = tcp.options
    if not opts or opts[-1].__class__ is not MalformedOption:
        return False
    from ..tcp.arrivals import dropped_unread

    return dropped_unread(tcp)


@dataclass(slots=True)
class _Side:
    ep: Endpoint
    role: str
    state: str | None = None  # None: not seen yet
    assumed_listen: bool = False  # LISTEN was guessed from a SYN it received
    iss: int | None = None
    fin_seq: int | None = None  # sequence number of our FIN
    rcv_nxt: int | None = None  # next byte expected from the other side
    ooo: list[tuple[int, int]] = field(default_factory=list)  # out-of-order [start, end)
    peer_fin: int | None = None  # sequence number of the other side's FIN
    fin_processed: bool = False
    syn_end: int | None = None  # after our SYN and any data it carried (Fast Open)


@dataclass
class Inference:
    states: list[StateRecord] = field(default_factory=list)
    notes: list[NoteRecord] = field(default_factory=list)


def roles(conv: Conversation) -> tuple[Endpoint, Endpoint, str]:
    """(client, server, how): the sender of the first SYN is the client; without one,
    the receiver of the first SYN+ACK; without either (the capture starts
    mid-connection), the side with the lower port (a well-known port is the server's)
    is taken for the server, and ``how`` says so ("" when a SYN told)."""
    segs = conv.segments
    syn = next((v for v in segs if v.tcp.flags & (SYN | ACK) == SYN), None)
    if syn is not None:
        return syn.src, syn.dst, ""
    synack = next((v for v in segs if v.tcp.flags & (SYN | ACK) == SYN | ACK), None)
    if synack is not None:
        return synack.dst, synack.src, "no SYN seen: the SYN+ACK's receiver is the client"
    a, b = (segs[0].src, segs[0].dst) if segs else (conv.left, conv.right)
    if a[1] < b[1]:
        a, b = b, a
    why = "the lower port" if a[1] != b[1] else "the first segment's receiver"
    return a, b, f"no SYN seen: {ep_str(b)} taken for the server ({why})"


class _Inferrer:
    def __init__(self, conv: Conversation) -> None:
        segs = conv.segments
        client, server, self.roles_how = roles(conv)
        self.segs = segs
        # Times in file order, never going back (a capture's clock may): a state is
        # placed after the segment that caused it.
        self.mono: list[float] = []
        last = segs[0].t if segs else 0.0
        for v in segs:
            last = max(last, v.t)
            self.mono.append(last)
        # Keyed by role. A self-connection (one address and port at both ends: a socket
        # connected to itself, a LAND packet) is one socket, the client: it receives
        # every segment it sends (SYN-SENT → SYN-RECEIVED → ESTABLISHED, as Linux's).
        self.client, self.server = _Side(client, "client"), _Side(server, "server")
        self.same = client == server
        self.out = Inference()
        self._pending: dict[str, tuple[float, str, str, list[str], bool]] = {}
        # segments sent, not yet taken as received: (segment, earliest delivery time)
        self.queue: dict[str, deque[tuple[SegmentView, float]]] = {
            "client": deque(),
            "server": deque(),
        }
        self.sends: dict[str, list[int]] = {"client": [], "server": []}
        for i, v in enumerate(segs):
            self.sends[self._sender(v).role].append(i)

    def _sender(self, v: SegmentView) -> _Side:
        return self.client if self.same or v.src == self.client.ep else self.server

    def _other(self, side: _Side) -> _Side:
        if self.same:  # one socket, sending to itself: it receives what it sends
            return self.client
        return self.server if side is self.client else self.client

    def run(self) -> Inference:
        if self.roles_how and self.segs:
            self._note(self.mono[0], f"roles inferred: {self.roles_how}")
        for i, v in enumerate(self.segs):
            self._step(v, i, self.mono[i])
        for side in (self.client, self.server):  # nothing later says otherwise
            for h, t0 in self.queue[side.role]:
                self._deliver(side, h, t0)
        return self.out

    def _trust_ack(self, s: _Side, v: SegmentView, t: float) -> None:
        """An ACK says what its sender received: beyond a hole in the capture (segments
        not captured), everything up to it, a FIN it acks included."""
        tcp = v.tcp
        if not tcp.flags & ACK or tcp.flags & SYN or s.rcv_nxt is None:
            return
        if s.state in (None, LISTEN, SYN_SENT, CLOSED) or not seq_gt(tcp.ack, s.rcv_nxt):
            return
        s.rcv_nxt = tcp.ack
        if s.ooo:
            s.ooo = [(a, b) for a, b in s.ooo if seq_gt(b, tcp.ack)]
        if s.peer_fin is not None and not s.fin_processed and seq_gt(tcp.ack, s.peer_fin):
            s.fin_processed = True
            cause = f"send {flag_names(tcp.flags)} acking the FIN (what came before it was not captured)"
            self._fin_received(s, cause, t, inferred=True)
            self._flush()

    def _step(self, v: SegmentView, i: int, tv: float) -> None:
        """Segment ``v`` (index ``i``, at time ``tv`` in file order): its sender sent
        it, and received what it acks; its receiver gets it once settled."""
        # (the hot path of ``netemu show``: _sender, _other, _acks inlined, and the calls
        # that would do nothing skipped)
        tcp = v.tcp
        fl = tcp.flags
        s = self.client
        if self.same:
            r = s
        elif v.src == s.ep:
            r = self.server
        else:
            s, r = self.server, s
        queue = self.queue
        # What this segment acks was received before it was sent.
        q = queue[s.role]
        while q:
            hv = q[0][0]
            h = hv.tcp
            n = _plen(hv) + (h.flags & SYN and 1) + (h.flags & FIN and 1)
            if n and not (fl & ACK and seq_ge(tcp.ack, (h.seq + n) & MASK)):
                break
            hv, t0 = q.popleft()
            self._deliver(s, hv, t0)
        if (
            fl & ACK
            and not fl & SYN
            and s.rcv_nxt is not None
            and ((s.rcv_nxt - tcp.ack) & MASK) >= HALF  # seq_gt(ack, rcv_nxt)
        ):
            self._trust_ack(s, v, tv)
        if fl & (SYN | FIN | RST) or s.state is None or s.assumed_listen:
            self._sent(s, r, v, tv)
        if self._pending:
            self._flush()
        if q:
            self._settle(s, i, tv)
        opts = tcp.options
        if v.frame.mark != "dropped" and (
            not opts
            or opts[-1].__class__ is not MalformedOption
            or r.state == TIME_WAIT
            or not _unread(tcp)
        ):
            q = queue[r.role]
            if q or _plen(v) or fl & (SYN | FIN):
                q.append((v, tv))
                self._settle(r, i, tv)
            elif (
                fl & RST
                or r.state is None
                or r.state == SYN_RECEIVED
                or r.fin_seq is not None
                or r.peer_fin is not None
            ):  # what _settle does with it: nothing to wait for
                self._deliver(r, v, tv)
            elif r.rcv_nxt is None:  # all _deliver does with it (see _received)
                r.rcv_nxt = tcp.seq

    def _next_send(self, r: _Side, i: int) -> SegmentView | None:
        """r's next segment after index ``i``, or None."""
        sends = self.sends[r.role]
        k = bisect.bisect_right(sends, i)
        return self.segs[sends[k]] if k < len(sends) else None

    def _settle(self, r: _Side, i: int, now: float) -> None:
        """Deliver r's queued segments unless r's next segment after index i shows (by
        its ack) that it had not received them yet (crossing segments: a simultaneous
        close seen from one end)."""
        q = self.queue[r.role]
        nxt = self._next_send(r, i)
        nfl = nxt.tcp.flags if nxt is not None else 0
        while q:
            h, t0 = q[0]
            if nfl & (ACK | SYN):
                ht = h.tcp
                n = _plen(h) + (ht.flags & SYN and 1) + (ht.flags & FIN and 1)
                if n and (
                    not seq_ge(nxt.tcp.ack, (ht.seq + n) & MASK)  # type: ignore[union-attr]
                    if nfl & ACK
                    else True
                ):
                    return  # r's next segment was sent before h arrived (a SYN acks nothing)
            q.popleft()
            self._deliver(r, h, now if now > t0 else t0)

    def _deliver(self, r: _Side, v: SegmentView, t: float) -> None:
        s = self.client if self.same else self.server if r is self.client else self.client
        self._received(r, s, v, t)
        if self._pending:
            self._flush()

    # -- recording: changes caused by one event merge into one record per side ---------
    def _set(self, side: _Side, new: str, cause: str, t: float, inferred: bool = False) -> None:
        old = side.state
        if old == new:
            return
        side.state = new
        side.assumed_listen = False
        pend = self._pending.get(side.role)
        if pend is None:
            self._pending[side.role] = (t, old or "", new, [cause], inferred)
        else:
            causes = pend[3] if cause in pend[3] else [*pend[3], cause]
            self._pending[side.role] = (pend[0], pend[1], new, causes, pend[4] or inferred)

    def _flush(self) -> None:
        if not self._pending:
            return
        for role, (t, old, new, causes, inferred) in self._pending.items():
            side = self.client if role == "client" else self.server
            other = self._other(side)
            if old != new:
                self.out.states.append(
                    StateRecord(
                        t, side.role, side.ep, other.ep, old, new, "; ".join(causes), inferred
                    )
                )
        self._pending.clear()

    def _note(self, t: float, text: str) -> None:
        ends = (self.client.ep, self.server.ep)
        self.out.notes.append(NoteRecord(t, text, "note", ends))

    # -- the rules ---------------------------------------------------------------------
    def _sent(self, s: _Side, r: _Side, v: SegmentView, t: float) -> None:
        tcp = v.tcp
        fl = tcp.flags
        name = flag_names(fl) if fl & (RST | SYN | FIN) else ""
        if fl & RST:
            if s.state is None or s.assumed_listen:
                # a RST answering a SYN: nobody was listening
                s.state = None
                self._set(s, CLOSED, f"send {name}", t)
            elif s.state != CLOSED:
                self._set(s, CLOSED, f"send {name}", t)
            return
        if fl & SYN:
            s.iss = tcp.seq
            s.syn_end = (tcp.seq + 1 + _plen(v) + (fl & FIN and 1)) & MASK  # past its data
            if not fl & ACK:
                if s.state in (None, CLOSED, LISTEN):
                    if s.state is None:
                        s.state = CLOSED
                    self._set(s, SYN_SENT, "send SYN", t)
            elif s.state in (None, CLOSED, LISTEN):
                if s.state is None:
                    s.state = LISTEN
                self._set(s, SYN_RECEIVED, f"send {name}", t)
        elif s.state is None or s.assumed_listen:
            s.state = None
            self._set(s, ESTABLISHED, "capture starts mid-connection", t, inferred=True)
            if r.state is None:
                self._set(r, ESTABLISHED, "capture starts mid-connection", t, inferred=True)
            if r.rcv_nxt is None:
                r.rcv_nxt = tcp.seq
        if fl & FIN:
            s.fin_seq = (tcp.seq + (1 if fl & SYN else 0) + _plen(v)) & MASK
            if s.state in (ESTABLISHED, SYN_RECEIVED):
                self._set(s, FIN_WAIT_1, f"send {name}", t)
            elif s.state == CLOSE_WAIT:
                self._set(s, LAST_ACK, f"send {name}", t)

    def _received(self, r: _Side, s: _Side, v: SegmentView, t: float) -> None:
        tcp = v.tcp
        fl = tcp.flags
        if fl & RST:
            self._rst(r, v, flag_names(fl), t)
            return
        if r.state is None:
            if fl & (SYN | ACK) == SYN:
                r.state = LISTEN
                r.assumed_listen = True
            elif fl & (SYN | ACK) == SYN | ACK:  # its SYN is not in the capture
                r.state = SYN_SENT
                r.iss = (tcp.ack - 1) & MASK
            else:
                return  # handled as mid-connection by _sent
        if fl & SYN:
            name = flag_names(fl)
            if r.state == SYN_SENT:
                r.rcv_nxt = (tcp.seq + 1) & MASK
                if fl & ACK:
                    if self._acks_syn(r, tcp.ack):
                        fo = (
                            ""
                            if tcp.ack == ((r.iss or 0) + 1) & MASK
                            else " (acks the SYN's data: Fast Open)"
                        )
                        self._set(r, ESTABLISHED, f"recv {name}{fo}", t)
                    else:
                        self._note(t, f"{ep_str(r.ep)}: {name} with a wrong ack: ignored (RST)")
                        return
                else:
                    self._set(r, SYN_RECEIVED, "recv SYN (simultaneous open)", t)
            elif r.state == LISTEN:
                r.rcv_nxt = (tcp.seq + 1) & MASK
            elif (
                r.state == SYN_RECEIVED
                and fl & ACK
                and r.iss is not None
                and seq_ge(tcp.ack, (r.iss + 1) & MASK)
            ):
                self._set(r, ESTABLISHED, f"recv {name}", t)
            elif (
                r.state not in (SYN_RECEIVED, CLOSED)
                and r.rcv_nxt is not None
                and tcp.seq != (r.rcv_nxt - 1) & MASK
            ):
                self._note(
                    t, f"{ep_str(r.ep)}: {name} in {r.state}: ignored (RFC 5961 §4: challenge ACK)"
                )
                return
        elif fl & ACK and (r.fin_seq is not None or r.state == SYN_RECEIVED):
            self._ack(r, tcp.ack, flag_names(fl), t)
        if fl & (SYN | FIN) or _plen(v) or (r.peer_fin is not None and not r.fin_processed):
            self._data(r, v, t)
        elif r.rcv_nxt is None:  # what _data does with an empty segment
            r.rcv_nxt = tcp.seq

    @staticmethod
    def _acks_syn(r: _Side, ack: int) -> bool:
        """Does ``ack`` ack r's SYN, and no further than r sent (its SYN's data, with
        Fast Open)?"""
        if r.iss is None:
            return False
        first = (r.iss + 1) & MASK
        return ack == first or (
            r.syn_end is not None and seq_gt(ack, first) and seq_le(ack, r.syn_end)
        )

    def _ack(self, r: _Side, ack: int, name: str, t: float) -> None:
        if r.state == SYN_RECEIVED and r.iss is not None and seq_ge(ack, (r.iss + 1) & MASK):
            self._set(r, ESTABLISHED, f"recv {name}", t)
        fin_acked = r.fin_seq is not None and seq_gt(ack, r.fin_seq)
        if not fin_acked:
            return
        if r.state == FIN_WAIT_1:
            self._set(r, FIN_WAIT_2, f"recv {name} (acks our FIN)", t)
        elif r.state == CLOSING:
            self._set(r, TIME_WAIT, f"recv {name} (acks our FIN)", t)
        elif r.state == LAST_ACK:
            self._set(r, CLOSED, f"recv {name} (acks our FIN)", t)

    def _data(self, r: _Side, v: SegmentView, t: float) -> None:
        tcp = v.tcp
        fl = tcp.flags
        start = (tcp.seq + (1 if fl & SYN else 0)) & MASK
        end = (start + _plen(v) + (1 if fl & FIN else 0)) & MASK
        if fl & FIN:
            r.peer_fin = (end - 1) & MASK
        if r.rcv_nxt is None:
            r.rcv_nxt = start
        if start != end:
            if seq_le(start, r.rcv_nxt):
                if seq_gt(end, r.rcv_nxt):
                    r.rcv_nxt = end
            else:
                r.ooo.append((start, end))
            merged = True
            while merged and r.ooo:  # fill from out-of-order segments
                merged = False
                for a, b in list(r.ooo):
                    if seq_le(a, r.rcv_nxt):
                        r.ooo.remove((a, b))
                        if seq_gt(b, r.rcv_nxt):
                            r.rcv_nxt = b
                        merged = True
        if r.peer_fin is None or r.fin_processed or not seq_gt(r.rcv_nxt, r.peer_fin):
            return
        r.fin_processed = True
        name = flag_names(fl)
        cause = f"recv {name}" if fl & FIN else f"recv {name} (fills the gap before the FIN)"
        self._fin_received(r, cause, t)

    def _fin_received(self, r: _Side, cause: str, t: float, inferred: bool = False) -> None:
        if r.state in (ESTABLISHED, SYN_RECEIVED):
            self._set(r, CLOSE_WAIT, cause, t, inferred)
        elif r.state == FIN_WAIT_1:
            self._set(r, CLOSING, cause, t, inferred)
        elif r.state == FIN_WAIT_2:
            self._set(r, TIME_WAIT, cause, t, inferred)

    def _rst(self, r: _Side, v: SegmentView, name: str, t: float) -> None:
        tcp = v.tcp
        if r.state in (None, LISTEN, CLOSED):
            return
        if r.state == SYN_SENT:
            if tcp.flags & ACK and self._acks_syn(r, tcp.ack):
                self._set(r, CLOSED, f"recv {name} (connection refused)", t)
            else:
                self._note(t, f"{ep_str(r.ep)}: {name} not acking our SYN: ignored")
            return
        if r.rcv_nxt is None or tcp.seq == r.rcv_nxt:
            self._set(r, CLOSED, f"recv {name}", t)
        else:
            self._note(
                t,
                f"{ep_str(r.ep)}: {name} seq is not RCV.NXT: ignored "
                "(RFC 5961 §3.2: challenge ACK if in window)",
            )


def infer_conversation(conv: Conversation) -> Inference:
    """States of both sides of one conversation, and notes on segments a side ignored."""
    return _Inferrer(conv).run()


def infer_states(conv: Conversation) -> list[StateRecord]:
    """Only the states of ``infer_conversation``: StateRecords with ``conn`` set to
    "client" or "server" and ``local`` to that side's endpoint."""
    return infer_conversation(conv).states


def infer_trace(trace: Trace) -> Inference:
    """Inferred states and notes for every conversation of a trace."""
    out = Inference()
    for conv in conversations(trace)[0]:
        inf = infer_conversation(conv)
        out.states.extend(inf.states)
        out.notes.extend(inf.notes)
    out.states.sort(key=lambda r: r.t)
    out.notes.sort(key=lambda r: r.t)
    return out


def trace_from_pcap(path: str | os.PathLike[str], *, infer: bool = True) -> Trace:
    """A Trace of a foreign capture (``trace_from_capture``) up to any damage."""
    from .pcap import load_capture

    return trace_from_capture(load_capture(path), infer=infer)


def trace_from_capture(cap: Capture, *, infer: bool = True) -> Trace:
    """A Trace of a foreign capture: times relative to its first packet, every frame
    (frame N of the file is ``trace.frames[N - 1]``) as the Ethernet frame
    ``decap.as_ethernet`` makes of it, or, holding no TCP segment, as captured if it
    is Ethernet and else empty, with its reason in ``trace.skipped``; each conversation's client (the sender of its SYN) on
    the left ("out"), and, with ``infer``, the inferred states of both sides in
    ``trace.states``."""
    from .decap import LINKTYPE_ETHERNET, as_ethernet
    from .pcap import parse_comment

    packets = cap.packets
    t0 = packets[0].ts if packets else 0.0
    trace = Trace(start=0.0, start_wall=t0)
    frames = []
    skipped = trace.skipped
    latest = t0
    for i, p in enumerate(packets):
        # A netemu run's own trace.pcap says, in packet comments, which frames never
        # crossed the wire (dropped): the states are inferred as the run saw them.
        mark, note = parse_comment(p.comment) if p.comment else (None, None)
        got = as_ethernet(p.linktype, p.data)
        data = got.packet
        if data is None:  # kept as it is if it is Ethernet (a run's ARP), else left out
            skipped[i] = got.reason or "not TCP"
            data = p.data if p.linktype == LINKTYPE_ETHERNET else b""
        if got.note:
            note = f"{note}; {got.note}" if note else got.note
        if p.ts < latest:  # drawn in file order all the same
            back = f"time goes back {latest - p.ts:.6f} s (an earlier frame is later)"
            note = f"{note}; {back}" if note else back
        latest = max(latest, p.ts)
        frames.append(FrameRecord(p.ts - t0, "in", data, mark, note))
    trace.frames = frames
    convs, _ = conversations(trace)
    for conv in convs:
        client = roles(conv)[0]
        for v in conv.segments:
            v.frame.direction = "out" if v.src == client else "in"
    if infer:
        inf = infer_trace(trace)
        trace.states = inf.states
        trace.notes = inf.notes
    return trace


@dataclass
class Shown:
    """What ``netemu show`` prints (the text ladder, or the JSON report), and the
    damage that stopped the reading of the file early (None: read whole)."""

    text: str
    damage: str | None = None


def damaged_title(title: str, damage: str | None) -> str:
    """The page's title, with what is wrong with the capture when it is damaged: the
    page says so, not only stderr."""
    return f"{title} — DAMAGED, drawn up to the damage: {damage}" if damage else title


def damage_line(damage: str | None) -> str:
    """The text ladder's first line when the capture is damaged (stdout can go to a
    file that never sees stderr's warning), else ""."""
    return f"DAMAGED capture: {damage}; drawn up to there.\n\n" if damage else ""


def show_capture(
    pcap_path: str | os.PathLike[str],
    html_out: str | os.PathLike[str] | None = None,
    *,
    text_out: str | os.PathLike[str] | None = None,
    as_json: bool = False,
    out: IO[str] | None = None,
) -> Shown:
    """``netemu show``: the ladder of any pcap/pcapng file with inferred states, as
    text (or, ``as_json``, the report of its conversations: ``capture_report``); also
    written as self-contained HTML to ``html_out`` and as text to ``text_out``. With
    ``out``, what is shown is written there (``Shown.text`` is then ""). The text
    ladder and the report read the file once (``show_stream``: memory bounded by the
    open conversations and the output); the HTML ladder reads it whole."""
    import io

    from .show_stream import show_streaming
    from .stream import Unstreamable

    title = f"{os.fspath(pcap_path)} (states inferred from the segments, RFC 9293)"
    if html_out is None and text_out is None:
        # nothing is written to ``into`` unless the capture could be read in one pass
        into = io.StringIO() if out is None else out
        try:
            damage = show_streaming(pcap_path, into, as_json=as_json, title=title)
        except Unstreamable:
            pass
        else:
            return Shown(into.getvalue() if out is None else "", damage)  # type: ignore[attr-defined]
    shown = _show_in_memory(pcap_path, html_out, text_out=text_out, as_json=as_json)
    if out is not None:
        out.write(shown.text)
        return Shown("", shown.damage)
    return shown


def _show_in_memory(
    pcap_path: str | os.PathLike[str],
    html_out: str | os.PathLike[str] | None = None,
    *,
    text_out: str | os.PathLike[str] | None = None,
    as_json: bool = False,
) -> Shown:
    """``show_capture`` from the whole capture in memory (``trace_from_capture``)."""
    from .atomic import atomic_write_text
    from .ladder import render_ladder_text, render_ladder_texts, write_ladder_html
    from .pcap import load_capture

    cap = load_capture(pcap_path)
    trace = trace_from_capture(cap)
    title = f"{os.fspath(pcap_path)} (states inferred from the segments, RFC 9293)"
    text = ""
    kw: dict[str, Any] = {"roles": ("client", "server"), "title": title}
    head = damage_line(cap.damage)
    if text_out is not None:  # as ladder.txt: every label whole, then this terminal's
        whole, text = render_ladder_texts(trace, **kw)
        atomic_write_text(text_out, head + whole)
        text = head + text
    elif not as_json:
        text = head + render_ladder_text(trace, **kw)
    if html_out is not None:
        kw["title"] = damaged_title(title, cap.damage)
        write_ladder_html(trace, html_out, **kw)
    if as_json:
        import json

        from .report import capture_report

        rep = capture_report(trace, os.fspath(pcap_path), cap.damage)
        text = json.dumps(rep, indent=2, default=str, ensure_ascii=False) + "\n"
    return Shown(text, cap.damage)


def show(
    pcap_path: str | os.PathLike[str],
    html_out: str | os.PathLike[str] | None = None,
    *,
    text_out: str | os.PathLike[str] | None = None,
) -> str:
    """The ladder of any pcap/pcapng file with inferred states, as text (returned);
    also written as self-contained HTML to ``html_out`` and as text to ``text_out``."""
    return show_capture(pcap_path, html_out, text_out=text_out).text
