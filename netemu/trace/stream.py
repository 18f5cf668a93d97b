"""``netemu show`` in one pass over a capture: each frame is read, decoded, and fed to
its conversation's state (the split into conversations, relative numbers,
Wireshark's analysis marks, inferred states) as it comes, and let go. What is kept
is per open conversation (its bookkeeping, and the segments inference has not
settled yet: those since the other side last sent) and what the output needs
(``show_stream`` decides which rows). The results are those of the in-memory path
(``infer.trace_from_capture`` then the ladder or report builders), checked on every
test capture; the few captures where one pass cannot know them (a 4-tuple used
again with times that overlap, roles a later SYN would change) raise
``Unstreamable``, and ``netemu show`` reads them the old way.

The common frame, Ethernet/IPv4/TCP (no IP options, not a fragment, not cut short),
is decoded with one ``struct`` call (NOP NOP TS, the options of nearly every segment,
made in place; any others by ``wire.tcp.parse_options``), its payload not copied; any
other goes through ``decap.as_ethernet`` and ``conv.parse_tcp`` as before.
"""

from __future__ import annotations

import socket
import struct
from collections import deque
from collections.abc import Callable, Iterator
from typing import Any

from ..wire import ACK, SYN
from ..wire.tcp import NOP, TcpSegment, TimestampOption, parse_options
from .analysis import Analyzer
from .conv import Conversation, Endpoint, SegmentView, ep_str, parse_tcp
from .decap import LINKTYPE_ETHERNET, as_ethernet, decode_link
from .infer import Inference, _Inferrer, _Side
from .pcap_read import CapturedPacket
from .record import FrameRecord, NoteRecord, StateRecord

# From the Ethernet type on: type, IPv4 version+IHL, total length, flags+fragment
# offset, protocol, addresses, then the TCP header.
_HEAD = struct.Struct(">HBxH2xHxB2xIIHHIIHHHH").unpack_from
_TS = struct.Struct(">III").unpack_from  # NOP NOP TS kind+length, TSval, TSecr
_NOP_NOP_TS = 0x0101080A


class Unstreamable(Exception):
    """One pass cannot give this capture's results: read it whole."""


def decode(p: CapturedPacket, eps: dict[int, Endpoint]) -> tuple[Any, str | None]:
    """((src, dst, segment, n), note) of a captured frame that holds a TCP segment, or
    (None, the reason it holds none). ``n`` >= 0: the length of its payload, which is
    not copied (the segment's ``payload`` is empty: nothing ``netemu show`` shows reads
    it); -1: the payload is there."""
    d = p.data
    if p.linktype == LINKTYPE_ETHERNET and len(d) >= 54:
        etype, vhl, total, frag, proto, a, b, sport, dport, seq, ack, off_flags, win, csum, urg = (
            _HEAD(d, 12)
        )
        hlen = off_flags >> 12 << 2
        if (
            etype == 0x0800
            and vhl == 0x45
            and proto == 6
            and not frag & 0x1FFF
            and 40 <= total <= len(d) - 14
            and 20 <= hlen <= total - 20
        ):
            options: Any = None
            padding = b""
            if hlen == 20:
                options = ()
            elif hlen == 32:
                kl, tsval, tsecr = _TS(d, 54)
                if kl == _NOP_NOP_TS:
                    options = (NOP, NOP, TimestampOption(tsval, tsecr))
            if options is None:  # any other option area (a SYN's, SACK blocks)
                options, padding = parse_options(d, 54, 34 + hlen)
            tcp = TcpSegment(
                sport, dport, seq, ack, off_flags & 0x0FFF, win, b"", options, urg, csum, padding
            )
            # one tuple per endpoint (``eps``, by address and port): no new one per
            # frame, and the dictionaries keyed by them find them by identity
            ka, kb = a << 16 | sport, b << 16 | dport
            src = eps.get(ka) or _endpoint(eps, ka)
            dst = eps.get(kb) or _endpoint(eps, kb)
            return (src, dst, tcp, total - 20 - hlen), None
    got = as_ethernet(p.linktype, d)
    data = got.packet
    if data is None:
        return None, got.reason or "not TCP"
    parsed = parse_tcp(data)
    if parsed is None:
        return None, decode_link(LINKTYPE_ETHERNET, data).reason or "malformed TCP"
    return (*parsed, -1), got.note


def _endpoint(eps: dict[int, Endpoint], k: int) -> Endpoint:
    ep = eps[k] = (socket.inet_ntoa((k >> 16).to_bytes(4, "big")), k & 0xFFFF)
    return ep


def first_roles(v: SegmentView) -> tuple[Endpoint, Endpoint, str]:
    """``infer.roles`` from a conversation's first segment (a later SYN or SYN+ACK
    that would say otherwise makes it ``Unstreamable``)."""
    fl = v.tcp.flags & (SYN | ACK)
    if fl == SYN:
        return v.src, v.dst, ""
    if fl == SYN | ACK:
        return v.dst, v.src, "no SYN seen: the SYN+ACK's receiver is the client"
    a, b = v.src, v.dst
    if a[1] < b[1]:
        a, b = b, a
    why = "the lower port" if a[1] != b[1] else "the first segment's receiver"
    return a, b, f"no SYN seen: {ep_str(b)} taken for the server ({why})"


class StreamInferrer(_Inferrer):
    """``infer._Inferrer`` a segment at a time: a segment is taken once each side's
    next segment after it is known (what ``_settle`` looks ahead to), or the
    conversation has ended. ``drain`` hands over the records made so far."""

    def __init__(self, client: Endpoint, server: Endpoint, how: str) -> None:
        self.roles_how = how
        self.client, self.server = _Side(client, "client"), _Side(server, "server")
        self.same = client == server
        self.out = Inference()
        self._pending = {}
        self.queue = {"client": deque(), "server": deque()}
        self.held: dict[str, deque[tuple[SegmentView, float]]] = {
            "client": deque(),
            "server": deque(),
        }
        self.order: deque[str] = deque()  # the held segments' senders, in file order
        self.nexts: dict[str, SegmentView | None] = {}
        self.started = False

    def push(self, v: SegmentView, t: float) -> None:
        role = "client" if self.same or v.src == self.client.ep else "server"
        self.held[role].append((v, t))
        self.order.append(role)
        if not self.started:
            self.started = True
            if self.roles_how:
                self._note(t, f"roles inferred: {self.roles_how}")
        self._take(False)

    def finish(self) -> None:
        self._take(True)
        for side in (self.client, self.server):  # nothing later says otherwise
            for h, t0 in self.queue[side.role]:
                self._deliver(side, h, t0)
            self.queue[side.role].clear()

    def _take(self, ended: bool) -> None:
        held, order, nexts = self.held, self.order, self.nexts
        same = self.same
        while order:
            s_role = order[0]
            mine = held[s_role]
            nxt_s = mine[1][0] if len(mine) > 1 else None
            if same:
                r_role, nxt_r = s_role, nxt_s
            else:
                r_role = "server" if s_role == "client" else "client"
                theirs = held[r_role]
                nxt_r = theirs[0][0] if theirs else None
            if not ended and (nxt_s is None or nxt_r is None):
                return
            v, t = mine.popleft()
            order.popleft()
            nexts[s_role] = nxt_s
            nexts[r_role] = nxt_r
            self._step(v, 0, t)

    def _next_send(self, r: _Side, i: int) -> SegmentView | None:
        """r's next segment, as ``_take`` found it (no index: read as they come)."""
        return self.nexts.get(r.role)

    def drain(self) -> tuple[list[StateRecord], list[NoteRecord]]:
        out = self.out
        states, notes = out.states, out.notes
        if states or notes:
            out.states, out.notes = [], []
        return states, notes


class Live:
    """One conversation being read: its bookkeeping (``conv``, without its segments),
    Wireshark's analysis and the inference of its states. ``sink`` gets each segment
    (analysed) and ``records`` the states and notes as they are settled."""

    __slots__ = ("an", "conv", "first_fl", "inf", "mono_max", "sink")

    def __init__(self, number: int, first: SegmentView) -> None:
        client, server, how = first_roles(first)
        self.conv = Conversation(number, client, server)
        self.an = Analyzer()
        self.inf = StreamInferrer(client, server, how)
        self.first_fl = first.tcp.flags & (SYN | ACK)  # not a SYN: a later one may say otherwise
        self.mono_max = first.t
        self.sink: Any = None

    def add(self, v: SegmentView) -> float:
        """Feed one segment; returns its time in file order (never going back)."""
        conv = self.conv
        fl = v.tcp.flags & (SYN | ACK)
        if fl & SYN:
            first = self.first_fl
            if (
                conv.n_segments
                and first != SYN
                and (fl == SYN or (fl == SYN | ACK and first != SYN | ACK))
            ):
                raise Unstreamable("a later SYN or SYN+ACK would set the roles")
        frame = v.frame
        frame.direction = "out" if v.src == conv.left else "in"
        conv._add(v, keep=False, index=False)
        v.analysis = self.an.feed(v)
        t = frame.t
        if t > self.mono_max:
            self.mono_max = t
        return self.mono_max


def walk(
    packets: Iterator[CapturedPacket],
    on_new: Callable[[Live], None],
    on_segment: Callable[[Live, SegmentView, float], None],
    on_end: Callable[[Live], None],
    on_skip: Callable[[str], None],
) -> tuple[int, float]:
    """Read every packet once, in file order: ``on_new`` for a conversation's first
    segment, ``on_segment`` for each (analysed, with its time in file order),
    ``on_end`` when a conversation is over (a new one took its 4-tuple, or the file
    ended), ``on_skip`` with the reason for a frame that holds no TCP segment.
    Returns the number of frames and the first one's time; raises Unstreamable."""
    from .pcap import parse_comment

    current: dict[tuple[Endpoint, Endpoint], Live] = {}
    numbers = 0
    eps: dict[int, Endpoint] = {}
    t0: float | None = None
    latest = 0.0
    count = 0
    for i, p in enumerate(packets):
        count += 1
        ts = p.ts
        if t0 is None:
            t0 = latest = ts
        mark, note = parse_comment(p.comment) if p.comment else (None, None)
        parsed, why = decode(p, eps)
        if parsed is None:
            if ts > latest:
                latest = ts
            on_skip(why or "not TCP")
            continue
        if why:
            note = f"{note}; {why}" if note else why
        if ts < latest:  # drawn in file order all the same
            back = f"time goes back {latest - ts:.6f} s (an earlier frame is later)"
            note = f"{note}; {back}" if note else back
        if ts > latest:
            latest = ts
        src, dst, tcp, n = parsed
        v = SegmentView(
            i, FrameRecord(ts - t0, "in", b"", mark, note), src, dst, tcp, payload_len=n
        )
        key = (src, dst) if src <= dst else (dst, src)
        live = current.get(key)
        if live is not None and tcp.flags & (SYN | ACK) == SYN:
            isn = live.conv._base.get(src)
            if isn is not None and isn != tcp.seq:
                prev = live
                if prev.mono_max != prev.conv.last_t or v.t <= prev.mono_max:
                    raise Unstreamable("a 4-tuple used again at overlapping times")
                on_end(prev)
                live = None
        if live is None:
            live = current[key] = Live(numbers, v)
            numbers += 1
            on_new(live)
        t = live.add(v)
        on_segment(live, v, t)
    for live in current.values():
        on_end(live)
    return count, t0 or 0.0
