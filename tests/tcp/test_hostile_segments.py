"""Hostile segments into every TCP state (issue 17).

For each of the eleven states of RFC 9293 §3.3.2 an episode builds a connection
in that state (seeded: random ISSs, often just below 2**32 so that sequence
numbers wrap, random options on both SYNs, random configs, some data in flight
both ways) and feeds it random and mutated segments: random flag combinations,
SEQ and ACK at, next to and far from the window edges, zero and huge windows,
odd option lists (bad lengths included, through the codec as a host gets them),
payloads up to 64 KiB, urgent pointers, old segments replayed and our own
reflected; time passes between them and now and then the user calls the API.
LISTEN is a Listener; CLOSED a connection never opened, reset, aborted, timed
out or past TIME-WAIT, whose host answers with ``reset_for``. Only segments that
reach the connection in its target state count; once it has left that state a
few more steps follow (into whatever came next), then the next episode builds.
The peer's bytes are a function of their sequence number, ours a known stream.

After every step:

- nothing raised but the API's documented ``TcpUsageError`` (for an API call);
- every state change is an edge RFC 9293 allows for what happened (a segment, a
  timer, an API call), from the state before; a RST closes only at RCV.NXT
  (RFC 5961 §3.2), a SYN changes no synchronized state (RFC 5961 §4.2), an
  unacceptable segment and one PAWS rejects (RFC 7323 §5.3) change nothing;
- SND.UNA =< SND.NXT =< SND.MAX, SND.UNA never moves back nor past what was sent,
  RCV.NXT stays within the window we advertised (it moves by the data reported
  and the FIN only), whose right edge never moves left, the receive buffer holds
  no more than its size, SND.WND is a window the peer sent;
- what the user reads is byte for byte what the peer sent, in order;
- every segment emitted is well formed (options where they belong, sizes, ports),
  emits to bytes and parses back identical through ``netemu.wire`` (whole frame,
  checksums verified); its data is the user's, at its place; no new data goes
  beyond the peer's window, none past our FIN; TIME-WAIT sends only ACKs;
- events agree with it all (one Closed, one PeerClosed after a FIN, a
  ConnectionReset only on a RST, a TimedOut only on a timer);
- in CLOSED nothing is emitted and no timer is left.

Sizes: 20,000 hostile segments in ``make test`` (shards spread by pytest-xdist),
380,000 with NETEMU_SOAK=1 (``make soak``). A failure names its episode; run it
alone with ``Episode(State.X, seed).run()``. The bugs it found are pinned at the
end, one test each, named after the rule.
"""

from __future__ import annotations

import dataclasses
import math
import random
import zlib

import pytest
from hostile_checks import EpisodeChecks
from hostile_episode import (
    API,
    EPISODE,
    FLAG_SETS,
    INTERESTING_32,
    LOCAL,
    MAX_PAYLOAD,
    OURS,
    PER_TEST,
    PSUM_IN,
    REMOTE,
    SEG,
    SHARDS,
    STATES,
    TIMER,
    TIMER_STORM,
    S,
    stream,
)

from netemu.tcp import (
    Closed,
    State,
    StateChanged,
    TcpConfig,
    TcpUsageError,
    reset_for,
)
from netemu.testing import Driver
from netemu.testing.states import (
    ISS,
    PEER_ISS,
    established,
    established_options,
    syn_received,
    syn_sent,
)
from netemu.wire.seq import MASK, seq_diff, seq_gt, seq_le
from netemu.wire.tcp import (
    ACK,
    EOL,
    FIN,
    NOP,
    PSH,
    RST,
    SACK_PERMITTED,
    SYN,
    URG,
    MalformedOption,
    MssOption,
    RawOption,
    SackOption,
    TcpSegment,
    TimestampOption,
    WindowScaleOption,
    emit_options,
)


class Episode(EpisodeChecks):
    """One connection built in ``target`` and fed hostile segments, seeded."""

    def cooperative_segment(self) -> TcpSegment:
        c = self.conn
        assert c is not None
        rng = self.rng
        r = rng.random()
        seq = c.rcv_nxt
        if r < 0.5:
            return self.peer(ACK, seq=seq, window=rng.choice((0xFFFF, 0xFFFF, 0, 500)))
        if r < 0.8:
            n = max(min(rng.choice((1, 100, 1460)), c.rcv_wnd()), 1)
            return self.peer(ACK | PSH, seq=seq, payload=stream(seq, n))
        return self.peer(FIN | ACK, seq=seq)

    # ------------------------------------------------------------------ hostile segments
    def pick_delay(self) -> float:
        rng = self.rng
        return rng.choice(
            (0.001, 0.01, 0.04, 0.2, 0.3, 1.0, 1.0, 3.0, 10.0, 61.0, 200.0, rng.uniform(0, 5), 0.5)
        )

    def near(self, base: int, span: int) -> int:
        rng = self.rng
        d = rng.choice(
            (
                0,
                0,
                1,
                -1,
                2,
                -2,
                span,
                -span,
                span - 1,
                span + 1,
                -span - 1,
                0x80000000,
                0x7FFFFFFF,
                -0x7FFFFFFF,
                0x40000000,
                rng.randrange(-70_000, 70_000),
                rng.getrandbits(32),
            )
        )
        return (base + d) & MASK

    def hostile_segment(self) -> TcpSegment:
        rng = self.rng
        r = rng.random()
        if r < 0.1 and self.peer_in:
            seg = dataclasses.replace(rng.choice(self.peer_in), checksum=None)  # an old one
            if rng.random() < 0.5:
                return self.mutate(seg)
            return seg
        if r < 0.16 and self.ours:
            o = rng.choice(self.ours)  # one of ours, reflected
            return self.mutate(
                TcpSegment(
                    REMOTE[1],
                    LOCAL[1],
                    o.seq,
                    o.ack,
                    o.flags,
                    o.window,
                    o.payload,
                    o.options,
                    o.urgent,
                )
            )
        c = self.conn
        # Reference points: the connection's own variables, or the builder's.
        if c is not None and c.state not in (S.CLOSED, S.LISTEN):
            rcv_nxt, rcv_wnd = c.rcv_nxt, c.rcv_wnd()
            una, nxt, top = c.snd_una, c.snd_nxt, c.snd_max
            back = c.max_snd_wnd
            irs, iss = c.irs, c.iss
        else:
            rcv_nxt, rcv_wnd = self.p_nxt, 0xFFFF
            una = nxt = top = (self.iss + 1) & MASK
            back = 0xFFFF
            irs, iss = self.peer_iss, self.iss
        flags = rng.choice(FLAG_SETS) if rng.random() < 0.85 else rng.getrandbits(12)
        n = self.pick_length(rcv_wnd)
        r = rng.random()
        if r < 0.45:
            seq = self.near(rcv_nxt, max(rcv_wnd, 1))
        elif r < 0.6:
            seq = self.near((rcv_nxt + rcv_wnd) & MASK, max(n, 1))
        elif r < 0.7:
            seq = (rcv_nxt - n + rng.randrange(-2, 3)) & MASK  # ends at RCV.NXT
        elif r < 0.8:
            seq = self.near(irs, 1)
        else:
            seq = rng.choice((rng.getrandbits(32), *INTERESTING_32))
        r = rng.random()
        if r < 0.35:
            ack = self.near(top, 1)
        elif r < 0.55:
            ack = self.near(una, max(seq_diff(top, una), 1))
        elif r < 0.65:
            ack = self.near((una - back) & MASK, 1)
        elif r < 0.75:
            ack = self.near(iss, 1)
        elif r < 0.85:
            ack = (una + rng.randrange(max(seq_diff(top, una), 0) + 1)) & MASK
        elif r < 0.9:
            ack = nxt
        else:
            ack = rng.choice((rng.getrandbits(32), *INTERESTING_32))
        payload = stream(seq + (1 if flags & SYN else 0), n)
        window = rng.choice((0, 0, 1, 0xFFFF, 0xFFFF, 0x7FFF, 100, 536, rng.getrandbits(16)))
        urgent = 0
        if flags & URG or rng.random() < 0.05:
            urgent = rng.choice((0, 1, len(payload), len(payload) + 1, 0xFFFF, rng.getrandbits(16)))
        options = self.pick_options(flags, una, top)
        return TcpSegment(REMOTE[1], LOCAL[1], seq, ack, flags, window, payload, options, urgent)

    def pick_length(self, rcv_wnd: int) -> int:
        rng = self.rng
        r = rng.random()
        if r < 0.45:
            n = 0
        elif r < 0.6:
            n = rng.choice((1, 2, 100))
        elif r < 0.75:
            n = rng.choice((536, 1460, 1461, max(rcv_wnd, 1), rcv_wnd + 1))
        elif r < 0.97:
            n = rng.randrange(1, 9000)
        else:
            n = rng.choice((MAX_PAYLOAD, rng.randrange(9000, MAX_PAYLOAD)))
        n = min(n, MAX_PAYLOAD)
        return n

    def pick_options(self, flags: int, una: int, top: int) -> tuple:
        rng = self.rng
        c = self.conn
        opts: list = []
        ts_on = c is not None and c.ts_ok
        if rng.random() < (0.85 if ts_on else 0.15):
            recent = c.ts.recent if ts_on else self.peer_tsval()  # type: ignore[union-attr]
            r = rng.random()
            if r < 0.6:
                tsval = self.peer_tsval() if rng.random() < 0.5 else recent
            else:
                tsval = self.near(recent, 1)
            tsecr = rng.choice(
                (
                    self.last_tsval,
                    self.last_tsval,
                    0,
                    (self.last_tsval + 1) & MASK,
                    rng.getrandbits(32),
                    (self.last_tsval - 5000) & MASK,
                )
            )
            opts += (NOP, NOP, TimestampOption(tsval, tsecr))
        for _ in range(rng.choice((0, 0, 0, 1, 1, 2, 3, 6))):
            opts.append(self.random_option(una, top))
        if rng.random() < 0.15:
            rng.shuffle(opts)
        if rng.random() < 0.08:
            opts.append(self.malformed_option())
        elif rng.random() < 0.03:
            opts.append(EOL)
        # Within the 40 bytes of option area: drop from the end until it fits.
        while opts:
            try:
                emit_options(tuple(opts))
                break
            except ValueError:
                opts.pop(-2 if len(opts) > 1 and isinstance(opts[-1], MalformedOption) else -1)
        return tuple(opts)

    def random_option(self, una: int, top: int) -> object:
        rng = self.rng
        k = rng.randrange(9)
        if k == 0:
            return NOP
        if k == 1:
            return MssOption(rng.choice((0, 1, 64, 536, 1460, 0xFFFF)))
        if k == 2:
            return WindowScaleOption(rng.choice((0, 1, 7, 14, 15, 255)))
        if k == 3:
            return SACK_PERMITTED
        if k == 4:
            return TimestampOption(rng.getrandbits(32), rng.getrandbits(32))
        if k in (5, 6):
            blocks = []
            span = max(seq_diff(top, una), 1)
            for _ in range(rng.randrange(1, 5)):
                r = rng.random()
                if r < 0.5:  # inside the flight, maybe inverted or empty
                    a = (una + rng.randrange(span + 1)) & MASK
                    b = (a + rng.choice((0, 1, 100, 1460, span, -1, -100))) & MASK
                elif r < 0.7:  # a D-SACK below SND.UNA
                    a = (una - rng.randrange(1, 5000)) & MASK
                    b = (a + rng.randrange(1, 5000)) & MASK
                else:
                    a = self.near(top, span)
                    b = self.near(a, 1460)
                blocks.append((a, b))
            return SackOption(tuple(blocks))
        # An unknown kind, or a known one with a length it does not have.
        kind = rng.choice((2, 3, 4, 5, 8, 19, 28, 29, 30, 34, 253, 254, rng.randrange(256)))
        return RawOption(kind, rng.randbytes(rng.choice((0, 1, 3, 5, 9, 10, 17))))

    def malformed_option(self) -> MalformedOption:
        """An option of bad length: none, below 2, or past the option area. Through the
        codec it becomes the last option, holding the rest of the area."""
        rng = self.rng
        kind = rng.choice((2, 3, 5, 8, 19, 29, 30, 254, rng.randrange(2, 256)))
        r = rng.random()
        if r < 0.2:
            return MalformedOption(bytes((kind,)))
        if r < 0.5:
            return MalformedOption(
                bytes((kind, rng.choice((0, 1)))) + rng.randbytes(rng.randrange(0, 20))
            )
        return MalformedOption(
            bytes((kind, rng.randrange(41, 256))) + rng.randbytes(rng.randrange(0, 20))
        )

    def mutate(self, seg: TcpSegment) -> TcpSegment:
        rng = self.rng
        field = rng.choice(("seq", "ack", "flags", "window", "payload", "options", "none"))
        if field == "seq":
            seg.seq = self.near(seg.seq, max(len(seg.payload), 1))
        elif field == "ack":
            seg.ack = self.near(seg.ack, 1)
        elif field == "flags":
            seg.flags ^= rng.choice((SYN, FIN, RST, ACK, PSH, URG, rng.getrandbits(12)))
        elif field == "window":
            seg.window = rng.choice((0, 1, 0xFFFF))
        elif field == "payload":
            seg.payload = (
                seg.payload[: rng.randrange(len(seg.payload) + 1)]
                if seg.payload
                else bytes(rng.choice((1, 1000)))
            )
        elif field == "options":
            c = self.conn
            una = c.snd_una if c is not None else 0
            top = c.snd_max if c is not None else 0
            seg.options = self.pick_options(seg.flags, una, top)
            seg.padding = b""
        # The peer's bytes for where the segment now starts.
        seg.payload = stream(seg.seq + (1 if seg.flags & SYN else 0), len(seg.payload))
        return seg

    def through_wire(self, seg: TcpSegment) -> TcpSegment:
        """As a host gets it: emitted by the peer and parsed back (checksum verified)."""
        raw = seg.emit(REMOTE[0], LOCAL[0])
        return TcpSegment.parse(raw, PSUM_IN + len(raw))

    # ------------------------------------------------------------------ actions and checks
    def deliver(self, seg: TcpSegment, hostile: bool = False) -> None:
        seg = self.through_wire(seg)
        c = self.conn
        assert c is not None
        self.note(
            ("HOSTILE " if hostile else "peer ") + f"{seg.summary()} urg={seg.urgent} "
            f"opts={seg.options}"
        )
        self.peer_in.append(seg)
        if len(self.peer_in) > 64:
            del self.peer_in[:32]
        self.windows.add(seg.window)
        self.windows.add(seg.window << c.snd_wscale)
        before = self.snapshot(seg)
        if c.state is S.CLOSED:
            rst = reset_for(seg, self.cfg.auth_option_walk)  # the host answers
            if rst is not None:
                self.check_reset(seg, rst, listener=False)
        self.act(SEG, lambda: c.receive(seg, self.now), seg)
        self.check_segment_rules(seg, before)
        # The peer's window, as the connection may now take it (scale known after a SYN).
        self.windows.add(seg.window << c.snd_wscale)

    def api(self, what: str, fn) -> None:  # type: ignore[no-untyped-def]
        self.note(f"api {what}")
        self.act(API, fn)

    def api_call(self) -> None:
        c = self.conn
        assert c is not None
        rng = self.rng
        r = rng.random()
        if r < 0.4:
            n = rng.choice((1, 100, 3000, 70_000))
            self.do_send(n)
        elif r < 0.75:
            self.api("read", lambda: self.do_read(rng.choice((-1, 1, 500))))
        elif r < 0.85:
            self.api("shutdown()", c.shutdown)
        elif r < 0.95:
            self.api("close()", c.close)
        else:
            self.api("abort()", c.abort)

    def do_send(self, n: int) -> None:
        c = self.conn
        assert c is not None
        data = OURS[len(self.sent_stream) % 251 :][:n]
        self.note(f"api send({n})")

        def call() -> None:
            taken = c.send(data)
            if not 0 <= taken <= n:
                self.fail(f"send({n}) took {taken}")
            self.sent_stream += data[:taken]

        self.act(API, call)

    def do_read(self, n: int) -> None:
        c = self.conn
        assert c is not None
        held = c.readable
        data = c.read(n)
        want = held if n < 0 else min(n, held)
        if len(data) != want:
            self.fail(f"read({n}) gave {len(data)} bytes of {held}")
        # Byte for byte what the peer sent from IRS+1 on.
        first = (c.irs + 1 + self.read_total) & MASK
        for i in range(0, len(data), 1 << 15):
            if data[i : i + (1 << 15)] != stream(first + i, len(data[i : i + (1 << 15)])):
                self.fail(
                    f"read() gave bytes other than the peer's, {i} bytes after "
                    f"sequence number {first}"
                )
        self.read_total += len(data)

    def act(self, cause: str, fn, seg: TcpSegment | None = None) -> None:  # type: ignore[no-untyped-def]
        c = self.conn
        assert c is not None
        old = c.state
        fin_pending = c.fin_seq_received is not None
        try:
            fn()
        except TcpUsageError as e:
            if cause != API:
                raise
            self.note(f"  TcpUsageError: {e}")  # documented: the call was not allowed
        self.check_events(cause, old, seg, fin_pending)
        self.flush(cause, old)

    def flush(self, cause: str, old: State | None = None) -> None:
        c = self.conn
        assert c is not None
        if old is None:
            old = c.state
        una, wnd, top = c.snd_una, c.snd_wnd, c.snd_max
        out = c.segments_to_send(self.now)
        self.check_events(cause, old, None, False)
        if old is S.CLOSED and c.state is S.CLOSED and out:
            self.fail(f"CLOSED emitted {[s.summary() for s in out]}")
        edge = (una + wnd) & MASK
        for s in out:
            self.note(f"  out {s.summary()} opts={s.options}")
            self.check_wellformed(s, c)
            if s.payload and not s.flags & RST:
                end = (s.seq + len(s.payload)) & MASK
                # New data only within the peer's window (RFC 9293 §3.8.6; RFC 1122
                # §4.2.2.16: after the window shrank, "the sender SHOULD NOT send new
                # data", though it may retransmit old data beyond the edge).
                if seq_gt(end, edge) and seq_gt(end, top):
                    self.fail(
                        f"new data beyond the peer's window: {s.summary()}, "
                        f"SND.UNA={una} SND.WND={wnd} (edge {edge}), SND.MAX was {top}"
                    )
                # Byte for byte what send() took, at its place in the stream.
                off = seq_diff(s.seq, (c.iss + 1) & MASK)
                if s.payload != self.sent_stream[off : off + len(s.payload)] or off < 0:
                    self.fail(f"sent bytes other than the user's at offset {off}: {s.summary()}")
                if c.fin_queued and seq_gt(end, c.fin_seq):
                    self.fail(f"data past our FIN at {c.fin_seq}: {s.summary()}")
            if old is S.TIME_WAIT and (s.flags != ACK or s.payload):
                self.fail(f"TIME-WAIT sent {s.summary()}: only ACKs")
            ts = s.timestamp
            if ts is not None:
                self.last_tsval = ts.tsval
            self.ours.append(s)
            if len(self.ours) > 64:
                del self.ours[:32]
            if not s.flags & RST and s.flags & ACK and not seq_le(s.ack, c.rcv_nxt):
                self.fail(f"an ACK beyond RCV.NXT: {s.summary()}")
            if not s.flags & RST and s.seg_len and seq_gt((s.seq + s.seg_len) & MASK, c.snd_max):
                self.fail(f"a segment beyond SND.MAX: {s.summary()}")
        self.check_invariants()

    def advance(self, seconds: float, late: bool = False) -> None:
        """Let time pass, each timer firing at its deadline; ``late``: the host wakes
        only at the end (a suspended machine), every timer due fires then."""
        c = self.conn
        assert c is not None
        end = self.now + seconds
        if late:
            self.now = end
        at, fired = self.now, 0
        while True:
            dl = c.next_deadline()
            if dl is None or dl > end:
                break
            if not math.isfinite(dl):
                self.fail(f"a deadline of {dl}")
            fired = fired + 1 if dl <= at else 0
            if fired > TIMER_STORM:
                self.fail(f"a timer storm at {at}")
            at = dl
            self.now = max(self.now, dl)
            self.note(f"timer {sorted((t.value, w) for t, w in c.timers.items())}")
            self.act(TIMER, lambda: c.handle_timer(self.now))
            dl = c.next_deadline()
            if dl is not None and dl <= self.now:
                self.fail(f"a timer due again at once: {c.timers}")
        self.now = end
        self.flush(TIMER)


def _seed(state: State, shard: int) -> int:
    return zlib.crc32(f"{state.value}/{shard}/hostile".encode())


@pytest.mark.parametrize("shard", range(SHARDS))
@pytest.mark.parametrize("state", STATES, ids=str)
def test_rfc9293_hostile_segments_in_every_state(state: State, shard: int) -> None:
    rng = random.Random(_seed(state, shard))
    fed = 0
    episodes = 0
    while fed < PER_TEST:
        steps = min(EPISODE, PER_TEST - fed)
        fed += Episode(state, rng.getrandbits(64), steps).run()
        episodes += 1
    assert fed >= PER_TEST
    assert episodes < PER_TEST / 2  # most episodes feed several segments to their state


# ------------------------------------------------------------------ what the fuzz found
def test_rfc9293_3_10_4_close_in_closed_state_reports_nothing() -> None:
    # RFC 9293 §3.10.4, CLOSE: "CLOSED STATE (i.e., TCB does not exist) ... return
    # "error: connection does not exist"". A connection reset (or never opened)
    # that is closed again sends nothing and reports no second Closed (it did).
    d = established()
    d.receive(d.seg(RST | ACK, PEER_ISS + 1, 1001))
    assert d.conn.state is State.CLOSED
    assert sum(isinstance(e, Closed) for e in d.take_events()) == 1
    for call in (d.conn.close, d.conn.shutdown, d.conn.abort):
        call()
        assert d.flush() == []
        assert d.take_events() == []
    fresh = Driver.client()
    fresh.conn.close()
    fresh.conn.shutdown()
    assert fresh.flush() == [] and fresh.take_events() == []


def test_rfc9293_3_10_7_4_syn_text_trimmed_to_the_receive_window() -> None:
    # Text on a SYN is "queued for processing later" (§3.10.7.2, §3.10.7.3), and the
    # seventh step keeps only what lies within RCV.WND: here the 1000 bytes the
    # SYN,ACK offered, of a 3000-byte SYN (all 3000 were delivered to a 1000-byte
    # buffer). Passive open, then simultaneous open.
    # The peer's ACK (SEQ past its 3000 bytes) lies beyond the window; it sends the
    # bytes again, as the SYN,ACK acknowledged none of them.
    cfg = TcpConfig(rcv_buf=1000, window_scale=None)
    d = syn_received(cfg, syn_payload=bytes(3000))
    assert d.sent[-1].window == 1000
    d.receive(d.seg(ACK | PSH, PEER_ISS + 1, ISS + 1, bytes(3000)))
    assert d.conn.state is State.ESTABLISHED
    assert d.conn.readable == 1000 and d.conn.rcv_nxt == PEER_ISS + 1001
    assert d.sent[-1].ack == PEER_ISS + 1001 and d.sent[-1].window == 0
    d = syn_sent(cfg)
    out = d.receive(d.seg(SYN, PEER_ISS, 0, bytes(3000), options=Driver.syn_options()))
    assert d.conn.state is State.SYN_RECEIVED and out[0].window == 1000
    d.receive(d.seg(ACK | PSH, PEER_ISS + 1, ISS + 1, bytes(3000)))
    assert d.conn.state is State.ESTABLISHED
    assert d.conn.readable == 1000 and d.conn.rcv_nxt == PEER_ISS + 1001


def test_rfc9293_3_10_5_abort_deletes_the_tcb_and_its_timers() -> None:
    # ABORT: "Send a reset segment ... delete the TCB, enter CLOSED state". With
    # data in flight, sending the RST armed the retransmission timer again in
    # CLOSED, which later reported a TimedOut and a second Closed.
    d = established()
    d.conn.send(b"x" * 100)
    d.flush()
    d.take_events()
    d.conn.abort()
    assert [s.flags for s in d.flush()] == [RST | ACK]
    assert d.conn.state is State.CLOSED and d.conn.next_deadline() is None
    assert d.advance(1000.0) == []
    assert [type(e) for e in d.take_events()] == [StateChanged, Closed]


def test_rfc1122_4_2_2_16_shrunk_window_no_new_data_on_timeout() -> None:
    # "If this happens [the window shrinks], the sender SHOULD NOT send new data,
    # but SHOULD retransmit normally the old unacknowledged data between SND.UNA
    # and SND.UNA+SND.WND." The timeout's probe into the closed window is the head
    # as it went out (100 bytes), not the head plus new bytes up to an MSS.
    d = established()
    d.conn.send(b"a" * 100)
    assert [len(s.payload) for s in d.flush()] == [100]
    d.conn.send(b"b" * 1000)  # held by Nagle: 100 bytes unacknowledged
    assert d.flush() == []
    assert d.receive(d.seg(ACK, PEER_ISS + 1, ISS + 1, window=0)) == []
    out = d.advance_to_deadline()
    assert [(s.seq, s.payload) for s in out] == [(ISS + 1, b"a" * 100)]


def test_rfc9293_3_10_7_4_fin_ahead_of_a_hole_is_not_received_until_reached() -> None:
    # Eighth step: a FIN is processed when it is next in sequence ("advance RCV.NXT
    # over the FIN"); one beyond a hole is only held. A reset then does not make
    # the stream look ended (at_eof said True), and data running past the held FIN
    # means it was not the end: it is forgotten, and the real FIN counts.
    d = established()
    d.receive(d.seg(FIN | ACK, PEER_ISS + 101, ISS + 1))  # bytes 5001..5100 missing
    d.receive(d.seg(RST | ACK, PEER_ISS + 1, ISS + 1))
    assert d.conn.state is State.CLOSED and not d.conn.at_eof
    d = established()
    d.receive(d.seg(FIN | ACK, PEER_ISS + 101, ISS + 1))
    d.receive(d.seg(ACK, PEER_ISS + 1, ISS + 1, b"x" * 200))
    assert d.conn.state is State.ESTABLISHED and d.conn.rcv_nxt == PEER_ISS + 201
    assert d.conn.fin_seq_received is None
    d.receive(d.seg(RST | ACK, PEER_ISS + 201, ISS + 1))
    assert d.conn.state is State.CLOSED and not d.conn.at_eof
    d = established()
    d.receive(d.seg(FIN | ACK, PEER_ISS + 101, ISS + 1))
    d.receive(d.seg(ACK, PEER_ISS + 1, ISS + 1, b"x" * 200))
    d.receive(d.seg(FIN | ACK, PEER_ISS + 201, ISS + 1))
    assert d.conn.state is State.CLOSE_WAIT and d.conn.rcv_nxt == PEER_ISS + 202


def test_rfc9293_3_8_6_sacked_data_still_fills_the_peer_window() -> None:
    # The peer may take data up to SND.UNA + SND.WND. SACKed bytes no longer count
    # against cwnd (RFC 6675 pipe), but they sit in the peer's buffer, inside that
    # window: new data past its edge went out all the same (1540 bytes, here).
    d = established_options(ts=False, sack=True, window=3000)
    d.conn.send(b"x" * 6000)
    assert [(s.seq, len(s.payload)) for s in d.flush()] == [(ISS + 1, 1460), (ISS + 1461, 1460)]
    sack = (NOP, NOP, SackOption(((ISS + 1461, ISS + 2921),)))
    out = d.receive(d.seg(ACK, PEER_ISS + 1, ISS + 1, window=3000, options=sack))
    assert all(seq_le((s.seq + len(s.payload)) & MASK, ISS + 1 + 3000) for s in out)


def test_rfc7323_5_3_paws_reads_the_same_tsopt_on_the_fast_path() -> None:
    # R1: a segment whose TSval is older than TS.Recent is dropped (and ACKed).
    # With two TSopts, the general path reads the first; header prediction read the
    # last, and took in-order data PAWS drops everywhere else.
    d = established_options(ts=True, sack=False)
    d.advance(0.1)
    recent = d.conn.ts.recent
    new = TimestampOption(recent + 100, 0)
    seg = d.seg(
        ACK | PSH, PEER_ISS + 1, ISS + 1, b"data", ts=(recent - 5, 0), options=(NOP, NOP, new)
    )
    assert d.conn.ts_ok and seg.timestamp == TimestampOption(recent - 5, 0)
    out = d.receive(seg)
    assert d.conn.readable == 0 and d.conn.rcv_nxt == PEER_ISS + 1
    assert [(s.flags, s.ack) for s in out] == [(ACK, PEER_ISS + 1)]
