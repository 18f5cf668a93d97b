"""Random interleavings of API calls, time and wire mutations (hypothesis).

Two connections on the in-memory network, the handshake included: a client and
a Listener. Rules call the API (only where the state allows it: no
TcpUsageError), let virtual time pass, and drop, duplicate, delay or corrupt
segments in flight. After every step:

- nothing raised;
- SND.UNA =< SND.NXT =< SND.MAX (modulo 2**32);
- the right edge a side advertises (SEG.ACK + SEG.WND, scaled) never moves left;
- what each reader got is a prefix of what the other side sent.

At the end the link is left alone: if both sides are still open (no RST, no
timeout), everything sent must arrive, and both must then close cleanly.

Every run is a differential test of header prediction too: the same steps go to
two copies of the world, one with the connection's fast path on and one with it
off (``set_header_prediction``), and after every step both must have put the same
segments on the wire at the same times and reported the same events.
"""

from __future__ import annotations

import dataclasses
import heapq
import random
from collections.abc import Callable

from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    initialize,
    invariant,
    rule,
)

from netemu.tcp import Connection, Event, IsnGenerator, Listener, State, TcpConfig
from netemu.tcp.arrivals import set_header_prediction
from netemu.testing import MemLink, MemNetwork
from netemu.wire.seq import MASK, seq_ge, seq_le
from netemu.wire.tcp import RST, SYN, TcpSegment

SIDES = st.sampled_from("ab")
LINKS = st.sampled_from(["ab", "ba"])
INDEX = st.integers(0, 1000)
CFG = TcpConfig(
    rcv_buf=6000,
    snd_buf=20000,
    mss=536,
    msl=0.5,
    syn_retries=4,
    synack_retries=4,
    retries2=6,
    rto_max=10.0,
    fin_timeout=5.0,
)


def _corrupt(seg: TcpSegment, field: str, value: int) -> TcpSegment:
    if field == "flags":
        value &= 0x1FF
    elif field == "window":
        value &= 0xFFFF
    return dataclasses.replace(seg, **{field: value}, checksum=None)


class World:
    """One copy of the network and what its applications sent and read."""

    def __init__(self, seed: int, wscale: int | None, handshake_first: bool, preload: int) -> None:
        cfg = dataclasses.replace(CFG, window_scale=wscale)
        a = Connection.client(("198.18.0.1", 40000), ("198.18.0.2", 80), cfg, iss=seed * 7919)
        lst = Listener("198.18.0.2", 80, cfg, IsnGenerator(seed.to_bytes(4, "big") * 4))
        self.net = MemNetwork(
            a,
            lst,
            ab=MemLink(src_ip="198.18.0.1", dst_ip="198.18.0.2", log=[]),
            ba=MemLink(src_ip="198.18.0.2", dst_ip="198.18.0.1", log=[]),
        )
        self.rng = random.Random(seed)
        self.sent = {"a": bytearray(), "b": bytearray()}
        self.got = {"a": bytearray(), "b": bytearray()}
        self.edge: dict[str, int | None] = {"a": None, "b": None}
        self.logged = {"ab": 0, "ba": 0}
        a.connect(self.net.now)
        self.net.settle()
        if handshake_first:  # most runs start ESTABLISHED; the others mutate the handshake
            assert self.net.run(
                lambda: (
                    isinstance(self.net.b, Connection) and self.net.b.state is State.ESTABLISHED
                ),
                max_time=5,
            )
        if preload:  # traffic to mutate, from the start
            self.send("a", preload)
            self.send("b", preload // 2)

    def conn(self, side: str) -> Connection | None:
        c = self.net.a if side == "a" else self.net.b
        return c if isinstance(c, Connection) else None

    def link(self, name: str) -> MemLink:
        return self.net.ab if name == "ab" else self.net.ba

    def _pick(self, name: str, index: int) -> int | None:
        q = self.link(name)._queue
        return index % len(q) if q else None

    def events(self) -> list[list[Event]]:
        return [c.events() if c is not None else [] for c in (self.conn("a"), self.conn("b"))]

    # ------------------------------------------------------------ API calls
    def send(self, side: str, n: int) -> None:
        c = self.conn(side)
        if c is None or c.fin_queued or c.state in (State.CLOSED, State.LISTEN):
            return
        data = self.rng.randbytes(n)
        took = c.send(data)
        self.sent[side] += data[:took]
        self.net.settle()

    def read(self, side: str, n: int) -> None:
        c = self.conn(side)
        if c is not None:
            self.got[side] += c.read(n)
            self.net.settle()

    def end(self, side: str, how: str) -> None:
        c = self.conn(side)
        if c is None:
            return
        if how == "close":
            self.got[side] += c.read()  # close() with unread data would be an abort
        getattr(c, how)()
        self.net.settle()

    def advance(self, dt: float) -> None:
        self.net.advance(dt)

    # ------------------------------------------------------------ the wire
    def drop(self, link: str, index: int) -> None:
        i = self._pick(link, index)
        if i is not None:
            q = self.link(link)._queue
            q.pop(i)
            heapq.heapify(q)

    def duplicate(self, link: str, index: int, later: float) -> None:
        i = self._pick(link, index)
        if i is not None:
            lk = self.link(link)
            at, _, seg = lk._queue[i]
            lk._counter += 1
            heapq.heappush(lk._queue, (at + later, lk._counter, seg))

    def reorder(self, link: str, index: int, later: float) -> None:
        i = self._pick(link, index)
        if i is not None:
            q = self.link(link)._queue
            at, n, seg = q[i]
            q[i] = (at + later, n, seg)
            heapq.heapify(q)

    def corrupt(self, link: str, index: int, field: str, value: int) -> None:
        i = self._pick(link, index)
        if i is not None:
            q = self.link(link)._queue
            at, n, seg = q[i]
            if field == "seq" and seg.payload:
                # A data segment moved to another in-window sequence number is
                # corruption only a checksum can catch; no TCP can, so the stream
                # invariant below would be unsound (hypothesis found this with
                # ISS 0 and a small seq value).
                return
            q[i] = (at, n, _corrupt(seg, field, value))

    # ------------------------------------------------------------ invariants
    def check(self) -> None:
        for side in "ab":
            c = self.conn(side)
            if c is None or c.state is State.LISTEN:
                continue
            assert seq_le(c.snd_una, c.snd_nxt), (side, c.state, c.snd_una, c.snd_nxt)
            assert seq_le(c.snd_nxt, c.snd_max), (side, c.state, c.snd_nxt, c.snd_max)
        # The right edge never moves left by a unit: every window a side
        # advertises, as it left that side (before any mutation).
        for name, side in (("ab", "a"), ("ba", "b")):
            log = self.link(name).log
            assert log is not None
            c = self.conn(side)
            for _, seg in log[self.logged[name] :]:
                if seg.flags & (RST | SYN) or c is None or not seg.flags & 0x10:
                    continue
                edge = (seg.ack + (seg.window << c.rcv_wscale)) & MASK
                prev = self.edge[side]
                # RFC 7323 Appendix F: a scaled window may retract by less than
                # one unit (the field is rounded down when the buffer is full).
                unit = (1 << c.rcv_wscale) - 1
                assert prev is None or seq_ge((edge + unit) & MASK, prev), (side, prev, edge, seg)
                self.edge[side] = edge
            self.logged[name] = len(log)
        # What each side delivered is a prefix of what the other sent.
        for side, other in (("a", "b"), ("b", "a")):
            c = self.conn(side)
            got = self.got[side] + (bytes(c.rcv_buf) if c is not None else b"")
            assert self.sent[other].startswith(got), (side, len(got), len(self.sent[other]))

    def finish(self) -> None:
        a, b = self.conn("a"), self.conn("b")
        if a is None or b is None:
            return
        net = self.net

        def app(_: MemNetwork) -> None:
            self.got["a"] += a.read()
            self.got["b"] += b.read()

        def done() -> bool:
            return len(self.got["b"]) == len(self.sent["a"]) and len(self.got["a"]) == len(
                self.sent["b"]
            )

        net.run(done, app=app, max_time=300)
        if a.state is State.CLOSED or b.state is State.CLOSED:
            return  # reset or timed out: nothing more is promised
        assert done(), (
            f"stalled: a {a.state} got {len(self.got['a'])}/{len(self.sent['b'])}, "
            f"b {b.state} got {len(self.got['b'])}/{len(self.sent['a'])}"
        )
        # ... and both close cleanly.
        app(net)
        a.close()
        b.close()
        assert net.run(lambda: a.state is State.CLOSED and b.state is State.CLOSED, max_time=600), (
            f"close stalled: a {a.state}, b {b.state}"
        )


class TcpPair(RuleBasedStateMachine):
    """Each step runs in two worlds: header prediction on (the first), and off."""

    worlds: list[World]

    def _each(self, step: Callable[[World], None]) -> None:
        for fast, world in zip((True, False), self.worlds, strict=True):
            set_header_prediction(fast)
            try:
                step(world)
            finally:
                set_header_prediction(True)
        self._compare()

    def _compare(self) -> None:
        fast, slow = (
            [list(lk.log or ()) for lk in (w.net.ab, w.net.ba)]
            + w.events()
            + [w.sent, w.got, w.net.now]
            for w in self.worlds
        )
        assert fast == slow, "header prediction changed what happened"

    @initialize(
        seed=st.integers(0, 2**16),
        wscale=st.sampled_from([None, 0, 2, 7]),
        handshake_first=st.sampled_from([True, True, True, False]),
        preload=st.sampled_from([0, 2000, 15000]),
    )
    def setup(self, seed: int, wscale: int | None, handshake_first: bool, preload: int) -> None:
        self.worlds = []
        for fast in (True, False):
            set_header_prediction(fast)
            try:
                self.worlds.append(World(seed, wscale, handshake_first, preload))
            finally:
                set_header_prediction(True)
        self._compare()

    @rule(side=SIDES, n=st.integers(1, 4000))
    def send(self, side: str, n: int) -> None:
        self._each(lambda w: w.send(side, n))

    @rule(side=SIDES, n=st.sampled_from([1, 100, 1000, 5000, -1]))
    def read(self, side: str, n: int) -> None:
        self._each(lambda w: w.read(side, n))

    @rule(side=SIDES, how=st.sampled_from(["shutdown", "close", "abort"]))
    def end(self, side: str, how: str) -> None:
        self._each(lambda w: w.end(side, how))

    @rule(dt=st.sampled_from([0.0005, 0.001, 0.003, 0.05, 0.3, 1.0, 4.0]))
    def advance(self, dt: float) -> None:
        self._each(lambda w: w.advance(dt))

    @rule(link=LINKS, index=INDEX)
    def drop(self, link: str, index: int) -> None:
        self._each(lambda w: w.drop(link, index))

    @rule(link=LINKS, index=INDEX, later=st.sampled_from([0.0, 0.002, 0.05, 0.5]))
    def duplicate(self, link: str, index: int, later: float) -> None:
        self._each(lambda w: w.duplicate(link, index, later))

    @rule(link=LINKS, index=INDEX, later=st.sampled_from([0.001, 0.004, 0.1, 1.0]))
    def reorder(self, link: str, index: int, later: float) -> None:
        self._each(lambda w: w.reorder(link, index, later))

    @rule(
        link=LINKS,
        index=INDEX,
        field=st.sampled_from(["seq", "ack", "flags", "window"]),
        value=st.integers(0, MASK),
    )
    def corrupt(self, link: str, index: int, field: str, value: int) -> None:
        self._each(lambda w: w.corrupt(link, index, field, value))

    @invariant()
    def invariants_hold(self) -> None:
        for world in getattr(self, "worlds", ()):
            world.check()

    def teardown(self) -> None:
        if len(getattr(self, "worlds", ())) == 2:
            self._each(World.finish)


TcpPair.TestCase.settings = settings(
    max_examples=300,
    stateful_step_count=50,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
)
test_random_interleavings = TcpPair.TestCase
