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
import os
import random
import zlib

import pytest

from netemu.tcp import (
    Closed,
    Connected,
    Connection,
    ConnectionReset,
    DataReceived,
    IsnGenerator,
    Listener,
    PeerClosed,
    State,
    StateChanged,
    TcpConfig,
    TcpUsageError,
    TimedOut,
    reset_for,
)
from netemu.tcp.state import TRANSITIONS, Cause
from netemu.tcp.timestamps import PAWS_IDLE
from netemu.testing import Driver
from netemu.testing.states import (
    ISS,
    PEER_ISS,
    established,
    established_options,
    syn_received,
    syn_sent,
)
from netemu.wire import IPv4Packet, build_tcp_frame, parse_frame, pseudo_header_sum
from netemu.wire.seq import MASK, seq_diff, seq_ge, seq_gt, seq_in_window, seq_le, seq_lt
from netemu.wire.tcp import (
    ACK,
    CWR,
    ECE,
    EOL,
    FIN,
    NOP,
    NS,
    PSH,
    RST,
    SACK_PERMITTED,
    SYN,
    URG,
    MalformedOption,
    MssOption,
    RawOption,
    SackOption,
    SackPermittedOption,
    TcpSegment,
    TimestampOption,
    WindowScaleOption,
    emit_options,
)

SOAK = bool(os.environ.get("NETEMU_SOAK"))
TOTAL = 380_000 if SOAK else 20_000  # hostile segments, over all states
SHARDS = 4 if SOAK else 2  # per state
EPISODE = 32  # hostile segments into the target state per connection built, at most
AFTER = 6  # steps once the connection has left the target state
STATES = list(State)
PER_TEST = TOTAL // (len(STATES) * SHARDS)

S = State
LOCAL = ("198.18.0.1", 40000)
REMOTE = ("198.18.0.2", 80)
MACS = ("02:00:00:00:00:01", "02:00:00:00:00:02")
PSUM_IN = pseudo_header_sum(REMOTE[0], LOCAL[0], 6, 0)
# What an IPv4 datagram has room for after the IPv4 and the largest TCP header.
MAX_PAYLOAD = 65535 - 20 - 60
# What we send: a period of 251 bytes, prime to any segment size that matters.
_OURS = bytes(range(251)) * (80_000 // 251 + 2)
# Every byte the peer sends is a function of its sequence number (the period divides
# 2**32), so what a reader gets is checked byte for byte whatever arrived how.
_PATTERN = random.Random(17).randbytes(1 << 16)
_DOUBLE = _PATTERN + _PATTERN


def stream(seq: int, n: int) -> bytes:
    """The peer's ``n`` bytes from sequence number ``seq`` (n <= 65536)."""
    o = seq & 0xFFFF
    return _DOUBLE[o:o + n]


_TIMER_STORM = 100  # timer firings at one instant: more is a loop

# ------------------------------------------------------------------ RFC 9293 Figure 5
# The legal edges for each kind of cause are netemu.tcp.state.TRANSITIONS (which
# the connection checks too); the rules below add what a segment must carry.
SEG, TIMER, API = "segment", "timer", "api"
# Edges a segment takes only by its FIN (or one it completes: a FIN held behind a hole).
FIN_EDGES = {(S.SYN_RECEIVED, S.CLOSE_WAIT), (S.ESTABLISHED, S.CLOSE_WAIT),
             (S.FIN_WAIT_1, S.CLOSING), (S.FIN_WAIT_1, S.TIME_WAIT),
             (S.FIN_WAIT_2, S.TIME_WAIT)}
# ... and by its ACK.
ACK_EDGES = {(S.SYN_RECEIVED, S.ESTABLISHED), (S.FIN_WAIT_1, S.FIN_WAIT_2),
             (S.CLOSING, S.TIME_WAIT), (S.LAST_ACK, S.CLOSED)}

FLAG_SETS = (ACK, ACK | PSH, ACK | PSH, ACK, FIN | ACK, FIN | ACK | PSH, RST, RST | ACK,
             SYN, SYN | ACK, FIN, 0, SYN | FIN, SYN | RST, RST | FIN, SYN | ACK | FIN,
             SYN | FIN | RST | ACK | PSH | URG, URG | ACK, URG | ACK | PSH, ECE | CWR | ACK,
             NS | ACK, SYN | ECE | CWR, RST | ACK | PSH, FIN | RST | ACK, SYN | RST | ACK)
INTERESTING_32 = (0, 1, 0x7FFFFFFF, 0x80000000, 0x80000001, 0xFFFFFFFF, 0xFFFFFFFE)


class Failure(AssertionError):
    pass


def _window_ok(seg: TcpSegment) -> bool:
    return 0 <= seg.window <= 0xFFFF


class Episode:
    """One connection built in ``target`` and fed hostile segments, seeded."""

    def __init__(self, target: State, seed: int, steps: int = EPISODE) -> None:
        self.target = target
        self.seed = seed
        self.steps = steps
        self.rng = random.Random(seed)
        self.now = 0.0
        self.log: list[str] = []
        self.hostile = 0
        self.conn: Connection | None = None
        self.listener: Listener | None = None
        self.peer_in: list[TcpSegment] = []  # segments delivered (to replay)
        self.ours: list[TcpSegment] = []  # segments emitted (to reflect)
        self.windows: set[int] = set()  # every window field a segment brought, scaled or not
        self.last_tsval = 0  # the latest TSval we sent
        self.data_events = 0  # DataReceived lengths
        self.sent_stream = bytearray()  # what send() took, from ISS+1 on
        self.peer_closed = 0  # PeerClosed events
        self.synced = False  # RCV.NXT set (a SYN taken)
        self.read_total = 0
        self.closed_events = 0
        self.known_state: State | None = None
        self.max_rcv_adv: int | None = None

    # ------------------------------------------------------------------ reporting
    def fail(self, msg: str) -> None:
        tail = "\n  ".join(self.log[-14:])
        c = self.conn
        where = ""
        if c is not None:
            where = (f"\n  conn: {c.state} iss={c.iss} irs={c.irs} snd_una={c.snd_una} "
                     f"snd_nxt={c.snd_nxt} snd_max={c.snd_max} snd_wnd={c.snd_wnd} "
                     f"rcv_nxt={c.rcv_nxt} rcv_adv={c.rcv_adv} now={self.now}")
        raise Failure(f"Episode(State.{self.target.name}, {self.seed:#x}): {msg}{where}\n"
                      f"  last steps:\n  {tail}")

    def note(self, text: str) -> None:
        self.log.append(f"t={self.now:.3f} {text}")

    # ------------------------------------------------------------------ running
    def run(self) -> int:
        """Build, then feed ``steps`` hostile segments; returns how many were fed."""
        try:
            self.build()
            if self.target is S.LISTEN:
                self.run_listener()
            else:
                self.run_connection()
        except Failure:
            raise
        except Exception as e:  # any exception is the finding
            import traceback
            self.fail(f"unexpected {type(e).__name__}: {e}\n{traceback.format_exc()}")
        return self.hostile

    def run_connection(self) -> None:
        """Segments, time and API calls until ``steps`` hostile segments went into the
        target state; once the connection has left it, a few more (into whatever state
        came next), then the episode ends and the next one builds anew."""
        rng = self.rng
        c = self.conn
        assert c is not None
        after = 0
        while self.hostile < self.steps:
            if c.state is not self.target:
                after += 1
                if after > AFTER:
                    return
            r = rng.random()
            if r < 0.72:
                self.hostile += c.state is self.target
                self.deliver(self.hostile_segment(), hostile=True)
            elif r < 0.82:
                self.deliver(self.cooperative_segment())
            elif r < 0.92:
                if rng.random() < 0.03:  # 25 days asleep: past PAWS's 24 (RFC 7323 §5.5)
                    self.advance(25 * 86400.0, late=True)
                else:
                    self.advance(self.pick_delay())
            else:
                self.api_call()
            if rng.random() < 0.4:
                self.advance(rng.choice((0.0, 0.001, 0.01, 0.04, 0.05, 0.2)))

    def run_listener(self) -> None:
        lst = self.listener
        assert lst is not None
        while self.hostile < self.steps:
            self.hostile += 1
            seg = self.through_wire(self.hostile_segment())
            self.note(f"to listener {seg.summary()} opts={seg.options}")
            res = lst.on_segment(seg, REMOTE[0], self.now)
            if isinstance(res, Connection):
                # LISTEN -> SYN-RECEIVED only on a SYN, without ACK, RST or FIN.
                if seg.flags & (SYN | ACK | RST | FIN) != SYN:
                    self.fail(f"a listener opened a connection on {seg.flag_names}")
                if res.state is not S.SYN_RECEIVED:
                    self.fail(f"a listener's new connection is in {res.state}")
                out = res.segments_to_send(self.now)
                if len(out) != 1 or out[0].flags != SYN | ACK:
                    self.fail(f"a new connection answered {[s.summary() for s in out]}")
                self.check_wellformed(out[0], res)
                if out[0].ack != (seg.seq + 1) & MASK:
                    self.fail("the SYN-ACK does not acknowledge the SYN")
            elif isinstance(res, TcpSegment):
                self.check_reset(seg, res, listener=True)
            elif res is not None:
                self.fail(f"on_segment returned {res!r}")
            if self.rng.random() < 0.2:
                self.now += self.pick_delay()

    # ------------------------------------------------------------------ building
    def pick_isn(self) -> int:
        rng = self.rng
        r = rng.random()
        if r < 0.35:
            return (MASK - rng.randrange(0, 70_000)) & MASK  # wraps soon
        if r < 0.45:
            return (0x7FFFFFFF - rng.randrange(0, 70_000)) & MASK
        if r < 0.5:
            return rng.choice(INTERESTING_32)
        return rng.getrandbits(32)

    def pick_config(self) -> TcpConfig:
        rng = self.rng
        c: dict[str, object] = {}
        if rng.random() < 0.3:
            c["window_scale"] = rng.choice((None, 0, 1, 7, 14))
        if rng.random() < 0.2:
            c["timestamps"] = False
        if rng.random() < 0.2:
            c["sack"] = False
        if rng.random() < 0.4:
            c["rcv_buf"] = rng.choice((100, 1000, 3000, 65535, 1 << 20))
        if rng.random() < 0.2:
            c["snd_buf"] = rng.choice((1, 1000, 10_000))
        if rng.random() < 0.3:
            c["mss"] = rng.choice((64, 536, 1000, 9000))
        if rng.random() < 0.2:
            c["nagle"] = False
        if rng.random() < 0.2:
            c["delayed_ack"] = rng.choice((False, True, 0.2, 0.5))
        if rng.random() < 0.2:
            c.update(keepalive=True, keepalive_idle=rng.choice((1.0, 10.0)),
                     keepalive_interval=1.0, keepalive_count=rng.choice((1, 3)))
        c["msl"] = rng.choice((0.5, 1.0, 30.0))
        c["fin_timeout"] = rng.choice((1.0, 60.0))
        if rng.random() < 0.3:
            c["congestion_control"] = "newreno"
        if rng.random() < 0.3:
            c.update(syn_retries=rng.choice((0, 1, 2)), synack_retries=rng.choice((0, 1, 2)),
                     retries2=rng.choice((0, 1, 3)))
        if rng.random() < 0.2:
            c["auth_option_walk"] = rng.choice((None, 5))
        if rng.random() < 0.2:
            c["challenge_ack_limit"] = rng.choice((0, 1, 2))
        if rng.random() < 0.2:
            c["max_ooo_bytes"] = rng.choice((0, 100))
        if rng.random() < 0.1:
            c["tail_loss_probe"] = False
        if rng.random() < 0.1:
            c["limited_transmit"] = False
        if rng.random() < 0.2:
            c["ts_offset"] = self.pick_isn()
        if rng.random() < 0.1:
            c["quickack_segments"] = 0
        return TcpConfig(**c)  # type: ignore[arg-type]

    def build(self) -> None:
        rng = self.rng
        self.now = rng.choice((0.0, 0.0, 1000.0, 4294967.0))  # the last: TS clocks wrap
        self.cfg = self.pick_config()
        self.iss = self.pick_isn()
        self.peer_iss = self.pick_isn()
        self.peer_ts_base = rng.getrandbits(32)
        p_mss = rng.choice((None, 0, 1, 536, 1460, 9000, 65535))
        p_ws = rng.choice((None, None, 0, 2, 7, 14, 15, 255))
        p_sack = rng.random() < 0.7
        p_ts = rng.random() < 0.7
        self.peer_syn_opts = (p_mss, p_ws, p_sack, p_ts)
        self.peer_wnd = rng.choice((0xFFFF, 0xFFFF, 1000, 100, 0))
        self.p_nxt = (self.peer_iss + 1) & MASK
        t = self.target
        self.note(f"build {t} cfg={self.cfg} iss={self.iss} peer_iss={self.peer_iss} "
                  f"peer syn mss={p_mss} ws={p_ws} sack={p_sack} ts={p_ts}")
        if t is S.LISTEN:
            self.listener = Listener(LOCAL[0], LOCAL[1], self.cfg,
                                     IsnGenerator(rng.randbytes(16)))
            return
        if t is S.CLOSED:
            how = rng.choice(("fresh", "reset", "abort", "timeout", "time-wait"))
            if how == "fresh":
                self.conn = Connection.client(LOCAL, REMOTE, self.cfg, iss=self.iss)
                self.known_state = S.CLOSED
            else:
                if how != "time-wait":
                    self.establish()
                if how == "reset":
                    self.deliver(self.peer(RST | ACK))
                elif how == "abort":
                    self.api("abort()", self.conn.abort)  # type: ignore[union-attr]
                elif how == "timeout":
                    self.deliver(self.peer(ACK, window=0xFFFF))
                    self.do_send(3000)
                    self.flush(API)
                    self.advance(3600.0 * 3)
                else:
                    self.to_time_wait()
                    self.advance(2 * self.cfg.msl + 1)
        elif t is S.SYN_SENT:
            self.conn = Connection.client(LOCAL, REMOTE, self.cfg, iss=self.iss)
            self.known_state = S.CLOSED
            self.api("connect()", lambda: self.conn.connect(self.now))  # type: ignore[union-attr]
            if rng.random() < 0.3:
                self.do_send(rng.choice((1, 5000)))
            if rng.random() < 0.3 and self.cfg.syn_retries:
                self.advance(rng.choice((0.5, 1.5)))  # a SYN retransmission, maybe
        elif t is S.SYN_RECEIVED:
            if rng.random() < 0.6:
                self.passive_open()
            else:  # simultaneous open
                self.conn = Connection.client(LOCAL, REMOTE, self.cfg, iss=self.iss)
                self.known_state = S.CLOSED
                self.api("connect()", lambda: self.conn.connect(self.now))  # type: ignore[union-attr]
                self.deliver(self.peer_syn(SYN))
            if rng.random() < 0.3:
                self.do_send(rng.choice((1, 5000)))
        elif t is S.ESTABLISHED:
            self.establish()
            self.prelude(holes=True)
        elif t is S.FIN_WAIT_1:
            if rng.random() < 0.15:
                self.passive_open()
                self.api("close()", self.conn.close)  # type: ignore[union-attr]
            else:
                self.establish()
                self.prelude(holes=True)
                self.our_close()
        elif t is S.FIN_WAIT_2:
            self.to_fin_wait_2()
        elif t is S.CLOSE_WAIT:
            self.to_close_wait()
        elif t is S.LAST_ACK:
            self.to_close_wait()
            self.our_close()
        elif t is S.CLOSING:
            self.to_closing()
        elif t is S.TIME_WAIT:
            self.to_time_wait()
        if self.conn is None or self.conn.state is not t:
            self.fail(f"the builder did not reach {t}")
        self.note(f"built {t}")

    def passive_open(self) -> TcpSegment:
        syn = self.peer_syn(SYN, payload=stream(self.peer_iss + 1,
                                                self.rng.choice((0, 0, 0, 10, 3000))))
        self.conn = Connection(LOCAL[0], LOCAL[1], REMOTE[0], REMOTE[1], self.cfg, iss=self.iss)
        self.known_state = S.LISTEN
        self.note(f"accept_syn {syn.summary()}")
        self.windows.add(syn.window)
        self.act(SEG, lambda: self.conn.accept_syn(syn, self.now), syn)  # type: ignore[union-attr]
        self.p_nxt = (syn.seq + syn.seg_len) & MASK
        return syn

    def establish(self) -> None:
        if self.rng.random() < 0.5:
            syn = self.passive_open()
            # The SYN's text again (the SYN,ACK acknowledged none of it): what lies
            # beyond the window we offered is no longer held.
            self.p_nxt = (syn.seq + 1) & MASK
            self.deliver(self.peer(ACK | PSH if syn.payload else ACK, payload=syn.payload))
            self.p_nxt = self.conn.rcv_nxt  # type: ignore[union-attr]
        else:
            self.conn = Connection.client(LOCAL, REMOTE, self.cfg, iss=self.iss)
            self.known_state = S.CLOSED
            self.api("connect()", lambda: self.conn.connect(self.now))  # type: ignore[union-attr]
            self.deliver(self.peer_syn(SYN | ACK))
        if self.conn.state is not S.ESTABLISHED:  # type: ignore[union-attr]
            self.fail("the handshake did not complete")

    def prelude(self, holes: bool) -> None:
        """Some traffic both ways before the hostile part."""
        rng = self.rng
        c = self.conn
        assert c is not None
        n_out = rng.choice((0, 0, 1, 500, 5000, 40_000))
        if n_out:
            self.do_send(n_out)
        for _ in range(rng.choice((0, 1, 2, 6))):
            flight = seq_diff(c.snd_max, c.snd_una)
            ack = (c.snd_una + rng.randrange(flight + 1)) & MASK
            self.deliver(self.peer(ACK, ack=ack, window=rng.choice((0, 10, 0xFFFF, 0xFFFF))))
            self.advance(rng.choice((0.0, 0.01)))  # (within an RTO: retries2 may be 0)
        n_in = rng.choice((0, 0, 1, 1000, 5000))
        mss = self.cfg.mss
        sent = 0
        skipped = False
        while sent < n_in and c.rcv_wnd() > 1:  # room left for a FIN
            n = min(mss, n_in - sent, c.rcv_wnd() - 1)
            if holes and not skipped and sent and rng.random() < 0.3:
                skipped = True  # leave a hole: everything after it goes out of order
                self.p_nxt = (self.p_nxt + n) & MASK
                sent += n
                continue
            seg = self.peer(ACK | PSH, payload=stream(self.p_nxt, n))
            self.deliver(seg)
            self.p_nxt = (self.p_nxt + n) & MASK
            sent += n
        if skipped:
            self.p_nxt = c.rcv_nxt  # the cooperative peer goes on from the hole
        if rng.random() < 0.5:
            self.api("read", lambda: self.do_read(rng.choice((-1, 1, 100))))

    def our_close(self, read: bool = False) -> None:
        """close() or shutdown(); ``read``: everything read first, so that the window
        is open to the peer's FIN (RFC 9293 §3.10.7.4: a FIN is not acceptable in a
        zero window)."""
        c = self.conn
        assert c is not None
        close = self.rng.random() < 0.5
        if close or read:
            self.api("read", lambda: self.do_read(-1))
        if close:
            self.api("close()", c.close)
        else:
            self.api("shutdown()", c.shutdown)

    def ack_all_until(self, done, fin: bool = False, rounds: int = 80) -> None:  # type: ignore[no-untyped-def]
        c = self.conn
        assert c is not None
        for _ in range(rounds):
            if done():
                return
            if fin and c.fin_queued and seq_gt(c.snd_max, c.fin_seq):
                ack = c.fin_seq  # everything but our FIN
            else:
                ack = c.snd_max
            field = 0xFFFF
            self.deliver(self.peer(ACK, ack=ack, window=field))
            self.advance(0.05)
        if not done():
            self.fail("the cooperative peer could not move the connection on")

    def to_fin_wait_2(self, read: bool = False) -> None:
        self.establish()
        self.prelude(holes=not read)
        self.our_close(read)
        c = self.conn
        assert c is not None
        self.ack_all_until(lambda: c.state is S.FIN_WAIT_2)

    def to_close_wait(self) -> None:
        self.establish()
        self.prelude(holes=False)
        c = self.conn
        assert c is not None
        self.api("read", lambda: self.do_read(-1))
        self.flush(API)
        self.deliver(self.peer(FIN | ACK))
        self.p_nxt = c.rcv_nxt
        if c.state is not S.CLOSE_WAIT:
            self.fail("the peer's FIN did not take us to CLOSE-WAIT")

    def to_closing(self) -> None:
        self.establish()
        self.prelude(holes=False)
        self.our_close(read=True)
        c = self.conn
        assert c is not None
        # Our FIN out, all but it acknowledged; then the peer's FIN crosses it.
        self.ack_all_until(lambda: seq_gt(c.snd_max, c.fin_seq)
                           and c.snd_una == c.fin_seq, fin=True)
        self.deliver(self.peer(FIN | ACK, ack=c.fin_seq))
        self.p_nxt = c.rcv_nxt

    def to_time_wait(self) -> None:
        if self.rng.random() < 0.5:
            self.to_fin_wait_2(read=True)
            self.deliver(self.peer(FIN | ACK))
            self.p_nxt = self.conn.rcv_nxt  # type: ignore[union-attr]
        else:
            self.to_closing()
            c = self.conn
            assert c is not None
            self.deliver(self.peer(ACK))
        if self.conn.state is not S.TIME_WAIT:  # type: ignore[union-attr]
            self.fail("no TIME-WAIT")

    # ------------------------------------------------------------------ the peer
    def peer_tsval(self) -> int:
        return (self.peer_ts_base + int(self.now * 1000)) & MASK

    def peer_syn(self, flags: int, payload: bytes = b"") -> TcpSegment:
        mss, ws, sack, ts = self.peer_syn_opts
        opts: list = []
        if mss is not None:
            opts.append(MssOption(mss))
        if sack:
            opts.append(SACK_PERMITTED)
        if ts:
            opts.append(TimestampOption(self.peer_tsval(), self.last_tsval if flags & ACK else 0))
        if ws is not None:
            opts += (NOP, WindowScaleOption(ws))
        ack = (self.iss + 1) & MASK if flags & ACK else 0
        return TcpSegment(REMOTE[1], LOCAL[1], self.peer_iss, ack, flags, self.peer_wnd,
                          payload, tuple(opts))

    def peer(self, flags: int, *, seq: int | None = None, ack: int | None = None,
             payload: bytes = b"", window: int | None = None) -> TcpSegment:
        """A well-behaved segment from the peer."""
        c = self.conn
        assert c is not None
        opts: tuple = ()
        if c.ts_ok:
            opts = (NOP, NOP, TimestampOption(self.peer_tsval(), self.last_tsval))
        return TcpSegment(REMOTE[1], LOCAL[1], self.p_nxt if seq is None else seq,
                          c.snd_max if ack is None else ack, flags,
                          0xFFFF if window is None else window, payload, opts)

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
        return rng.choice((0.001, 0.01, 0.04, 0.2, 0.3, 1.0, 1.0, 3.0, 10.0, 61.0, 200.0,
                           rng.uniform(0, 5), 0.5))

    def near(self, base: int, span: int) -> int:
        rng = self.rng
        d = rng.choice((0, 0, 1, -1, 2, -2, span, -span, span - 1, span + 1, -span - 1,
                        0x80000000, 0x7FFFFFFF, -0x7FFFFFFF, 0x40000000,
                        rng.randrange(-70_000, 70_000), rng.getrandbits(32)))
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
            return self.mutate(TcpSegment(REMOTE[1], LOCAL[1], o.seq, o.ack, o.flags,
                                          o.window, o.payload, o.options, o.urgent))
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
            urgent = rng.choice((0, 1, len(payload), len(payload) + 1, 0xFFFF,
                                 rng.getrandbits(16)))
        options = self.pick_options(flags, una, top)
        return TcpSegment(REMOTE[1], LOCAL[1], seq, ack, flags, window, payload, options,
                          urgent)

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
            tsecr = rng.choice((self.last_tsval, self.last_tsval, 0, (self.last_tsval + 1) & MASK,
                                rng.getrandbits(32), (self.last_tsval - 5000) & MASK))
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
            return MalformedOption(bytes((kind, rng.choice((0, 1)))) + rng.randbytes(
                rng.randrange(0, 20)))
        return MalformedOption(bytes((kind, rng.randrange(41, 256))) + rng.randbytes(
            rng.randrange(0, 20)))

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
            seg.payload = seg.payload[:rng.randrange(len(seg.payload) + 1)] if seg.payload \
                else bytes(rng.choice((1, 1000)))
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
        self.note(("HOSTILE " if hostile else "peer ") + f"{seg.summary()} urg={seg.urgent} "
                  f"opts={seg.options}")
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
        data = _OURS[len(self.sent_stream) % 251:][:n]
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
            if data[i:i + (1 << 15)] != stream(first + i, len(data[i:i + (1 << 15)])):
                self.fail(f"read() gave bytes other than the peer's, {i} bytes after "
                          f"sequence number {first}")
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
                    self.fail(f"new data beyond the peer's window: {s.summary()}, "
                              f"SND.UNA={una} SND.WND={wnd} (edge {edge}), SND.MAX was {top}")
                # Byte for byte what send() took, at its place in the stream.
                off = seq_diff(s.seq, (c.iss + 1) & MASK)
                if s.payload != self.sent_stream[off:off + len(s.payload)] or off < 0:
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
            if fired > _TIMER_STORM:
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

    def snapshot(self, seg: TcpSegment) -> dict:
        c = self.conn
        assert c is not None
        return dict(state=c.state, rcv_nxt=c.rcv_nxt, rcv_adv=c.rcv_adv, rcv_wnd=c.rcv_wnd(),
                    snd_una=c.snd_una, snd_max=c.snd_max, ts_recent=c.ts.recent,
                    ts_valid=c.ts.recent_valid, ts_stamp=c.ts.recent_stamp,
                    awaiting=c._awaiting_syn_ack(), irs=c.irs, read_closed=c.read_closed)

    def check_segment_rules(self, seg: TcpSegment, b: dict) -> None:
        """What one arriving segment may not do, whatever it holds."""
        c = self.conn
        assert c is not None
        st = b["state"]
        flags = seg.flags
        if not st.synchronized or st is S.CLOSED:
            return
        unchanged = (c.state is st and c.rcv_nxt == b["rcv_nxt"]
                     and c.snd_una == b["snd_una"])
        # SND.UNA never moves back nor past what was sent, and moves only to a SEG.ACK.
        if not (seq_ge(c.snd_una, b["snd_una"]) and seq_le(c.snd_una, b["snd_max"])):
            self.fail(f"SND.UNA moved from {b['snd_una']} to {c.snd_una} (SND.MAX {b['snd_max']})")
        if c.snd_una != b["snd_una"] and (not flags & ACK or seg.ack != c.snd_una):
            self.fail(f"SND.UNA moved to {c.snd_una} on {seg.flag_names} ACK={seg.ack}")
        # Data only within the window we advertised (and a FIN just after it).
        if not seq_le(c.rcv_nxt, (b["rcv_adv"] + 1) & MASK) and c.state is not S.CLOSED:
            self.fail(f"RCV.NXT moved to {c.rcv_nxt}, past the advertised edge {b['rcv_adv']}")
        if b["awaiting"]:
            return  # our SYN-ACK is not acknowledged: the rules below assume both SYNs are
        # RFC 5961 §4.2: a SYN is answered with a challenge ACK, whatever its SEQ.
        if flags & SYN and not flags & RST and not unchanged:
            self.fail("a SYN in a synchronized state changed the connection")
        # RFC 9293 §3.10.7.4 "first, check sequence number": an unacceptable
        # segment is answered with an ACK and dropped (an ACK at RCV.NXT aside).
        seg_len = seg.seg_len
        nxt, wnd = b["rcv_nxt"], b["rcv_wnd"]
        if seg_len == 0:
            ok = seg.seq == nxt if wnd == 0 else seq_in_window(seg.seq, nxt, wnd)
        else:
            ok = wnd > 0 and (seq_in_window(seg.seq, nxt, wnd)
                              or seq_in_window((seg.seq + seg_len - 1) & MASK, nxt, wnd))
        if not ok and seg.seq != nxt and not unchanged:
            self.fail("an unacceptable segment changed the connection")
        # RFC 5961 §3.2: a RST resets only when its SEQ is exactly RCV.NXT.
        if flags & RST and c.state is S.CLOSED and seg.seq != nxt:
            self.fail(f"a RST at {seg.seq} closed the connection (RCV.NXT {nxt})")
        # RFC 7323 §5.3 (R1), PAWS: an old TSval (not on a RST) drops the segment.
        ts = seg.timestamp
        if (c.ts_ok and ts is not None and not flags & RST and b["ts_valid"]
                and seq_lt(ts.tsval, b["ts_recent"]) and self.now - b["ts_stamp"] <= PAWS_IDLE
                and not unchanged):
            self.fail(f"PAWS: TSval {ts.tsval} < TS.Recent {b['ts_recent']}, "
                      "yet the segment changed the connection")

    def check_events(self, cause: str, old: State, seg: TcpSegment | None,
                     fin_pending: bool) -> None:
        c = self.conn
        assert c is not None
        state = self.known_state if self.known_state is not None else old
        for ev in c.events():
            if isinstance(ev, StateChanged):
                if ev.old is not state:
                    self.fail(f"StateChanged from {ev.old}, but the state was {state}")
                edge = (ev.old, ev.new)
                if ev.new not in TRANSITIONS.get((ev.old, Cause(cause)), ()):
                    self.fail(f"{ev.old} -> {ev.new} ({ev.cause!r}) on a {cause}: "
                              "not an RFC 9293 transition")
                if cause == SEG and seg is not None:
                    self.check_seg_edge(edge, ev, seg, fin_pending)
                self.note(f"  {ev.old} -> {ev.new} ({ev.cause})")
                state = ev.new
            elif isinstance(ev, DataReceived):
                self.data_events += ev.length
                if self.peer_closed:
                    self.fail("DataReceived after PeerClosed")
            elif isinstance(ev, PeerClosed):
                self.peer_closed += 1
                if self.peer_closed > 1 or (cause == SEG and seg is not None
                                            and not seg.flags & FIN and not fin_pending):
                    self.fail("PeerClosed twice, or without a FIN")
            elif isinstance(ev, ConnectionReset):
                if cause != SEG or seg is None or not seg.flags & RST:
                    self.fail(f"ConnectionReset on a {cause}, not a RST")
            elif isinstance(ev, TimedOut):
                if cause != TIMER:
                    self.fail(f"TimedOut on a {cause}")
            elif isinstance(ev, Connected):
                if state not in (S.ESTABLISHED, S.FIN_WAIT_1, S.CLOSE_WAIT) or cause != SEG:
                    self.fail(f"Connected in {state} on a {cause}")
            elif isinstance(ev, Closed):
                self.closed_events += 1
                if self.closed_events > 1:
                    self.fail("Closed reported twice")
        if state is not c.state:
            self.fail(f"the state is {c.state}, the events say {state}")
        self.known_state = state

    def check_seg_edge(self, edge: tuple[State, State], ev: StateChanged, seg: TcpSegment,
                       fin_pending: bool) -> None:
        flags = seg.flags
        if edge in FIN_EDGES and not flags & FIN and not fin_pending:
            self.fail(f"{edge[0]} -> {edge[1]} without a FIN")
        if edge in ACK_EDGES and not flags & ACK and not flags & RST:
            self.fail(f"{edge[0]} -> {edge[1]} without an ACK")
        if edge == (S.SYN_SENT, S.ESTABLISHED) and flags & (SYN | ACK) != SYN | ACK:
            self.fail("SYN-SENT -> ESTABLISHED without SYN,ACK")
        if edge == (S.SYN_SENT, S.SYN_RECEIVED) and flags & (SYN | ACK) != SYN:
            self.fail("SYN-SENT -> SYN-RECEIVED without a lone SYN")
        c = self.conn
        assert c is not None
        if edge == (S.SYN_SENT, S.CLOSED) and not (
                flags & ACK and seq_gt(seg.ack, c.iss) and seq_le(seg.ack, c.snd_max)):
            # §3.10.7.3: a RST in SYN-SENT counts only with an acceptable ACK.
            self.fail(f"SYN-SENT reset by a RST whose ACK {seg.ack} is not acceptable")
        if edge == (S.ESTABLISHED, S.FIN_WAIT_1) and ev.cause != "shutdown() (queued)":
            self.fail("ESTABLISHED -> FIN-WAIT-1 on a segment, not the queued CLOSE")
        # Only a RST closes, or data for a closed reader (answered with RST).
        if (edge[1] is S.CLOSED and edge[0] is not S.LAST_ACK and not flags & RST
                and not (ev.cause == "abort()" and seg.payload)):
            self.fail(f"{edge[0]} -> CLOSED on {seg.flag_names} ({ev.cause!r})")

    def check_reset(self, seg: TcpSegment, rst: TcpSegment, listener: bool) -> None:
        """RFC 9293 §3.10.7.1-2: the reset a closed port or a listener sends."""
        if seg.flags & RST:
            self.fail("a RST was answered with a RST")
        if not rst.flags & RST or rst.payload:
            self.fail(f"not a bare RST: {rst.summary()}")
        if seg.flags & ACK:
            if (rst.seq, rst.flags) != (seg.ack, RST):
                self.fail(f"RST to an ACK: {rst.summary()}, want <SEQ=SEG.ACK><CTL=RST>")
        elif listener:
            self.fail("a listener answered a segment without ACK with a RST")
        elif (rst.seq, rst.ack, rst.flags) != (0, (seg.seq + seg.seg_len) & MASK, RST | ACK):
            self.fail(f"RST to a non-ACK: {rst.summary()}")
        self.check_bytes(rst, seg.dst_port, seg.src_port)

    def check_wellformed(self, s: TcpSegment, c: Connection) -> None:
        if (s.src_port, s.dst_port) != (c.local_port, c.remote_port):
            self.fail(f"ports {s.src_port} > {s.dst_port}")
        if not (0 <= s.seq <= MASK and 0 <= s.ack <= MASK and _window_ok(s)
                and 0 <= s.urgent <= 0xFFFF):
            self.fail(f"a field out of range: {s!r}")
        f = s.flags
        if f & ~(SYN | FIN | RST | PSH | ACK):
            self.fail(f"flags we never send: {s.flag_names}")
        if f & SYN and f & (FIN | RST):
            self.fail(f"SYN with FIN or RST: {s.flag_names}")
        if not f & (ACK | RST) and f != SYN:
            self.fail(f"a segment without ACK: {s.flag_names}")
        if f & RST and s.payload:
            self.fail("a RST with data")
        if s.urgent:
            self.fail("an urgent pointer we never set")
        kinds = [type(o) for o in s.options]
        if not f & SYN and {MssOption, WindowScaleOption, SackPermittedOption} & set(kinds):
            # RFC 9293 §3.7.1, RFC 7323 §2.2, RFC 2018 §2: on SYNs only.
            self.fail(f"a SYN-only option on {s.flag_names}: {s.options}")
        if RawOption in kinds or MalformedOption in kinds:
            self.fail(f"an option we never send: {s.options}")
        if not f & SYN:
            if c.ts_ok and not f & RST and TimestampOption not in kinds:
                self.fail("RFC 7323 §3.2: TSopt missing from a non-RST segment")
            if not c.ts_ok and TimestampOption in kinds:
                self.fail("TSopt sent, not negotiated")
            if SackOption in kinds and not c.sack_ok:
                self.fail("SACK blocks sent, SACK not negotiated")
            if len(s.payload) > c.smss:
                self.fail(f"{len(s.payload)} bytes in a segment, SMSS {c.smss}")
        elif s.payload:
            self.fail("data on our SYN")
        for o in s.options:
            if isinstance(o, SackOption):
                for left, right in o.blocks:
                    if not seq_lt(left, right):
                        self.fail(f"an empty or inverted SACK block {o.blocks}")
        self.check_bytes(s, c.local_port, c.remote_port)

    def check_bytes(self, s: TcpSegment, sport: int, dport: int) -> None:
        """Emit the whole frame and parse it back through netemu.wire, checksums verified."""
        try:
            frame = build_tcp_frame(MACS[0], MACS[1], IPv4Packet(LOCAL[0], REMOTE[0], 6), s)
        except (ValueError, OverflowError) as e:  # struct.error is a ValueError
            self.fail(f"cannot emit {s!r}: {e}")
        p = parse_frame(frame).tcp
        if p is None:
            self.fail(f"not TCP once emitted: {s!r}")
        assert p is not None
        got = (p.src_port, p.dst_port, p.seq, p.ack, p.flags, p.window, p.payload, p.options,
               p.urgent)
        want = (sport, dport, s.seq, s.ack, s.flags, s.window, s.payload, s.options, s.urgent)
        if got != want:
            self.fail(f"emitted and parsed back: {got[:6]} {got[7]}, not {want[:6]} {want[7]}")

    def check_invariants(self) -> None:
        c = self.conn
        assert c is not None
        st = c.state
        if not isinstance(st, State):
            self.fail(f"state {st!r}")
        if st is S.CLOSED and c.timers:
            self.fail(f"timers left in CLOSED: {c.timers}")
        if st is S.TIME_WAIT and set(c.timers) - {"time-wait"}:
            self.fail(f"timers other than 2MSL in TIME-WAIT: {c.timers}")
        if not (seq_le(c.snd_una, c.snd_nxt) and seq_le(c.snd_nxt, c.snd_max)):
            self.fail(f"not SND.UNA {c.snd_una} =< SND.NXT {c.snd_nxt} =< SND.MAX {c.snd_max}")
        if seq_diff(c.snd_max, c.snd_una) > c.snd_buffered + 2:
            self.fail(f"{seq_diff(c.snd_max, c.snd_una)} in flight, {c.snd_buffered} buffered")
        if c.snd_buffered > c.config.snd_buf:
            self.fail(f"{c.snd_buffered} bytes in a {c.config.snd_buf}-byte send buffer")
        if not 0 <= c.snd_wnd <= 0xFFFF << 14:
            self.fail(f"SND.WND {c.snd_wnd}")
        if st is not S.SYN_SENT and c.snd_wnd not in self.windows and st is not S.CLOSED:
            self.fail(f"SND.WND {c.snd_wnd} is no window the peer sent")
        if c.rcv_wnd() < 0:
            self.fail(f"RCV.WND {c.rcv_wnd()}")
        # A scaled window is rounded up to within one unit (2**S - 1 bytes) past the
        # buffer's end (docs/design.md, tcp): what arrives may overrun it by as much.
        slack = (1 << c.rcv_wscale) - 1
        if c.readable > c.config.rcv_buf + slack:
            self.fail(f"{c.readable} unread bytes in a {c.config.rcv_buf}-byte receive buffer")
        if c.rcvq.ooo_bytes > c.config.rcv_buf + slack:
            self.fail(f"{c.rcvq.ooo_bytes} bytes held out of order, buffer {c.config.rcv_buf}")
        if st is S.SYN_RECEIVED or st.synchronized:
            self.synced = True
        if self.synced:
            # RCV.NXT moved by the data reported and the FIN, nothing else.
            fin = c.fin_seq_received is not None and (c.fin_seq_received + 1) & MASK == c.rcv_nxt
            if seq_diff(c.rcv_nxt, (c.irs + 1) & MASK) != self.data_events + fin:
                self.fail(f"RCV.NXT {c.rcv_nxt} is not IRS+1 + {self.data_events} bytes "
                          f"reported{' + FIN' if fin else ''}")
        if self.data_events != self.read_total + c.readable:
            self.fail(f"DataReceived says {self.data_events} bytes, "
                      f"{self.read_total} read + {c.readable} held")
        # Once the handshake is over (a SYN's window is unscaled, at most 65535, and
        # may show less than a scaled ACK before it did). Less than one unit (2**S)
        # back is a rounding RFC 7323 Appendix F tells senders to accept.
        if st.synchronized and not c._awaiting_syn_ack():
            if (self.max_rcv_adv is not None
                    and seq_diff(self.max_rcv_adv, c.rcv_adv) >= 1 << c.rcv_wscale):
                self.fail(f"the advertised right edge moved left: {self.max_rcv_adv} -> "
                          f"{c.rcv_adv} (RFC 9293 §3.8.6.2.2)")
            if self.max_rcv_adv is None or seq_gt(c.rcv_adv, self.max_rcv_adv):
                self.max_rcv_adv = c.rcv_adv
        if c.cc.cwnd <= 0 or c.cc.ssthresh <= 0:
            self.fail(f"cwnd {c.cc.cwnd}, ssthresh {c.cc.ssthresh}")
        for t, w in c.timers.items():
            if not math.isfinite(w) or w < self.now - 1e-9:
                self.fail(f"timer {t} at {w}, now {self.now}")


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
    seg = d.seg(ACK | PSH, PEER_ISS + 1, ISS + 1, b"data", ts=(recent - 5, 0),
                options=(NOP, NOP, new))
    assert d.conn.ts_ok and seg.timestamp == TimestampOption(recent - 5, 0)
    out = d.receive(seg)
    assert d.conn.readable == 0 and d.conn.rcv_nxt == PEER_ISS + 1
    assert [(s.flags, s.ack) for s in out] == [(ACK, PEER_ISS + 1)]
