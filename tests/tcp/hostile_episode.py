"""The hostile-segment episodes of test_hostile_segments.py: the constants, and
how an episode builds its connection in the target state and plays the peer."""

from __future__ import annotations

import os
import random

from netemu.tcp import (
    Connection,
    IsnGenerator,
    Listener,
    State,
    TcpConfig,
)
from netemu.wire import pseudo_header_sum
from netemu.wire.seq import MASK, seq_diff, seq_gt
from netemu.wire.tcp import (
    ACK,
    CWR,
    ECE,
    FIN,
    NOP,
    NS,
    PSH,
    RST,
    SACK_PERMITTED,
    SYN,
    URG,
    MssOption,
    TcpSegment,
    TimestampOption,
    WindowScaleOption,
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
OURS = bytes(range(251)) * (80_000 // 251 + 2)
# Every byte the peer sends is a function of its sequence number (the period divides
# 2**32), so what a reader gets is checked byte for byte whatever arrived how.
_PATTERN = random.Random(17).randbytes(1 << 16)
_DOUBLE = _PATTERN + _PATTERN


def stream(seq: int, n: int) -> bytes:
    """The peer's ``n`` bytes from sequence number ``seq`` (n <= 65536)."""
    o = seq & 0xFFFF
    return _DOUBLE[o : o + n]


TIMER_STORM = 100  # timer firings at one instant: more is a loop

# ------------------------------------------------------------------ RFC 9293 Figure 5
# The legal edges for each kind of cause are netemu.tcp.state.TRANSITIONS (which
# the connection checks too); the rules below add what a segment must carry.
SEG, TIMER, API = "segment", "timer", "api"
# Edges a segment takes only by its FIN (or one it completes: a FIN held behind a hole).
FIN_EDGES = {
    (S.SYN_RECEIVED, S.CLOSE_WAIT),
    (S.ESTABLISHED, S.CLOSE_WAIT),
    (S.FIN_WAIT_1, S.CLOSING),
    (S.FIN_WAIT_1, S.TIME_WAIT),
    (S.FIN_WAIT_2, S.TIME_WAIT),
}
# ... and by its ACK.
ACK_EDGES = {
    (S.SYN_RECEIVED, S.ESTABLISHED),
    (S.FIN_WAIT_1, S.FIN_WAIT_2),
    (S.CLOSING, S.TIME_WAIT),
    (S.LAST_ACK, S.CLOSED),
}

FLAG_SETS = (
    ACK,
    ACK | PSH,
    ACK | PSH,
    ACK,
    FIN | ACK,
    FIN | ACK | PSH,
    RST,
    RST | ACK,
    SYN,
    SYN | ACK,
    FIN,
    0,
    SYN | FIN,
    SYN | RST,
    RST | FIN,
    SYN | ACK | FIN,
    SYN | FIN | RST | ACK | PSH | URG,
    URG | ACK,
    URG | ACK | PSH,
    ECE | CWR | ACK,
    NS | ACK,
    SYN | ECE | CWR,
    RST | ACK | PSH,
    FIN | RST | ACK,
    SYN | RST | ACK,
)
INTERESTING_32 = (0, 1, 0x7FFFFFFF, 0x80000000, 0x80000001, 0xFFFFFFFF, 0xFFFFFFFE)


class Failure(AssertionError):
    pass


def window_ok(seg: TcpSegment) -> bool:
    return 0 <= seg.window <= 0xFFFF


class EpisodeBuild:
    """One connection built in ``target``, seeded: setup, the way into each state,
    the peer's segments."""

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
            where = (
                f"\n  conn: {c.state} iss={c.iss} irs={c.irs} snd_una={c.snd_una} "
                f"snd_nxt={c.snd_nxt} snd_max={c.snd_max} snd_wnd={c.snd_wnd} "
                f"rcv_nxt={c.rcv_nxt} rcv_adv={c.rcv_adv} now={self.now}"
            )
        raise Failure(
            f"Episode(State.{self.target.name}, {self.seed:#x}): {msg}{where}\n"
            f"  last steps:\n  {tail}"
        )

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
            c.update(
                keepalive=True,
                keepalive_idle=rng.choice((1.0, 10.0)),
                keepalive_interval=1.0,
                keepalive_count=rng.choice((1, 3)),
            )
        c["msl"] = rng.choice((0.5, 1.0, 30.0))
        c["fin_timeout"] = rng.choice((1.0, 60.0))
        if rng.random() < 0.3:
            c["congestion_control"] = "newreno"
        if rng.random() < 0.3:
            c.update(
                syn_retries=rng.choice((0, 1, 2)),
                synack_retries=rng.choice((0, 1, 2)),
                retries2=rng.choice((0, 1, 3)),
            )
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
        self.note(
            f"build {t} cfg={self.cfg} iss={self.iss} peer_iss={self.peer_iss} "
            f"peer syn mss={p_mss} ws={p_ws} sack={p_sack} ts={p_ts}"
        )
        if t is S.LISTEN:
            self.listener = Listener(LOCAL[0], LOCAL[1], self.cfg, IsnGenerator(rng.randbytes(16)))
            return
        if t is S.CLOSED:
            self.to_closed()
        elif t is S.SYN_SENT or t is S.SYN_RECEIVED:
            self.to_syn_state(t)
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

    def to_closed(self) -> None:
        """CLOSED: never opened, reset, aborted, timed out or past TIME-WAIT."""
        how = self.rng.choice(("fresh", "reset", "abort", "timeout", "time-wait"))
        if how == "fresh":
            self.conn = Connection.client(LOCAL, REMOTE, self.cfg, iss=self.iss)
            self.known_state = S.CLOSED
            return
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

    def to_syn_state(self, t: State) -> None:
        """SYN-SENT (an active open), or SYN-RECEIVED (a passive or a simultaneous one)."""
        rng = self.rng
        if t is S.SYN_SENT:
            self.conn = Connection.client(LOCAL, REMOTE, self.cfg, iss=self.iss)
            self.known_state = S.CLOSED
            self.api("connect()", lambda: self.conn.connect(self.now))  # type: ignore[union-attr]
            if rng.random() < 0.3:
                self.do_send(rng.choice((1, 5000)))
            if rng.random() < 0.3 and self.cfg.syn_retries:
                self.advance(rng.choice((0.5, 1.5)))  # a SYN retransmission, maybe
            return
        if rng.random() < 0.6:
            self.passive_open()
        else:  # simultaneous open
            self.conn = Connection.client(LOCAL, REMOTE, self.cfg, iss=self.iss)
            self.known_state = S.CLOSED
            self.api("connect()", lambda: self.conn.connect(self.now))  # type: ignore[union-attr]
            self.deliver(self.peer_syn(SYN))
        if rng.random() < 0.3:
            self.do_send(rng.choice((1, 5000)))

    def passive_open(self) -> TcpSegment:
        syn = self.peer_syn(
            SYN, payload=stream(self.peer_iss + 1, self.rng.choice((0, 0, 0, 10, 3000)))
        )
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
        self.ack_all_until(
            lambda: seq_gt(c.snd_max, c.fin_seq) and c.snd_una == c.fin_seq, fin=True
        )
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
        return TcpSegment(
            REMOTE[1], LOCAL[1], self.peer_iss, ack, flags, self.peer_wnd, payload, tuple(opts)
        )

    def peer(
        self,
        flags: int,
        *,
        seq: int | None = None,
        ack: int | None = None,
        payload: bytes = b"",
        window: int | None = None,
    ) -> TcpSegment:
        """A well-behaved segment from the peer."""
        c = self.conn
        assert c is not None
        opts: tuple = ()
        if c.ts_ok:
            opts = (NOP, NOP, TimestampOption(self.peer_tsval(), self.last_tsval))
        return TcpSegment(
            REMOTE[1],
            LOCAL[1],
            self.p_nxt if seq is None else seq,
            c.snd_max if ack is None else ack,
            flags,
            0xFFFF if window is None else window,
            payload,
            opts,
        )
