"""One TCP connection, sans-IO (RFC 9293).

Segments and the current time go in; segments, a deadline and events come out.
Nothing here touches a socket, a clock or a random source it does not own:

    conn = Connection.client(local, remote, config, isn=...)   # or Listener
    conn.connect(now)
    for seg in conn.segments_to_send(now): wire.send(seg)
    conn.receive(seg, now); conn.handle_timer(now); conn.next_deadline()
    for ev in conn.events(): ...

Rules of this file:
- Arrivals are processed in the order of RFC 9293 §3.10.7 (acceptability, RST,
  SYN, ACK, URG, text, FIN); each rule quotes its clause.
- API calls (send, shutdown, close, abort) change state at once; timers are armed
  when segments are produced (segments_to_send) or arrive, both of which know `now`.
- Sequence numbers use the modular helpers of netemu.wire.seq, always.
- SND.NXT may move back on a retransmission timeout (as in BSD); SND.MAX is the
  highest sequence number ever sent, and the limit for acceptable ACKs.
- Loss recovery is the connection's (RFC 6675 with SACK, RFC 6582 NewReno
  without); how far cwnd falls and how it grows is the congestion control's
  (cc.py: NewReno or CUBIC).
"""

from __future__ import annotations

from collections.abc import Callable

from ..wire.seq import MASK, seq_diff, seq_gt, seq_in_window, seq_le, seq_lt
from ..wire.tcp import (
    ACK,
    FIN,
    NOP,
    PSH,
    RST,
    SACK_PERMITTED,
    SYN,
    MalformedOption,
    MssOption,
    SackOption,
    TcpOption,
    TcpSegment,
    TimestampOption,
    WindowScaleOption,
)
from .ack_policy import AckPolicy
from .cc import make_cc
from .config import AUTH_OPTION_WALK, TcpConfig
from .events import (
    Closed,
    Connected,
    ConnectionReset,
    DataReceived,
    Event,
    PeerClosed,
    StateChanged,
    TimedOut,
)
from .isn import IsnGenerator, ts_offset
from .receive_queue import ReceiveQueue
from .recovery import Recovery
from .rtt import RttEstimator
from .sack import SackBlocks
from .send_queue import SendQueue
from .state import RECEIVING_STATES, Cause, State, check_transition
from .timers import Timer, TimerTable
from .timestamps import TS_OPTION_LEN, Timestamps

# RFC 7323 §2.3: "the shift count must be limited to 14".
MAX_WSCALE = 14
KEEPALIVE_STATES = frozenset({State.ESTABLISHED, State.CLOSE_WAIT, State.FIN_WAIT_2})
# The state in which header prediction runs (Connection._predicted): a global, as an
# enum member costs ~50 ns a look on 3.11; None turns the fast path off.
_PREDICTED_STATE: State | None = State.ESTABLISHED
_FLAGS_BUT_PSH = 0xFFF & ~PSH


class TcpUsageError(Exception):
    """A call the connection cannot honour in its state (e.g. send after shutdown)."""


def describe(seg: TcpSegment) -> str:
    names = [n for bit, n in ((SYN, "SYN"), (FIN, "FIN"), (RST, "RST"), (ACK, "ACK"))
             if seg.flags & bit]
    return "recv " + ("+".join(names) or "segment") + (" with data" if seg.payload else "")


class Connection:
    """A TCP endpoint for one 4-tuple. Build with ``client()`` or ``Listener``."""

    def __init__(self, local_ip: str, local_port: int, remote_ip: str, remote_port: int,
                 config: TcpConfig | None = None, *, iss: int | None = None,
                 isn_generator: IsnGenerator | None = None) -> None:
        self.local_ip = local_ip
        self.local_port = local_port
        self.remote_ip = remote_ip
        self.remote_port = remote_port
        self.config = cfg = config or TcpConfig()
        self._iss_given = iss
        self._isn_generator = isn_generator
        self.state = State.CLOSED
        self.passive = False
        # Send sequence space (RFC 9293 §3.3.1, Figure 3).
        self.iss = 0
        self.snd_una = self.snd_nxt = self.snd_max = 0
        self.snd_wnd = 0
        self.snd_wl1 = self.snd_wl2 = 0
        self.max_snd_wnd = 0
        self.sndq = SendQueue(cfg.snd_buf)  # unacknowledged and unsent data
        self.fin_queued = False  # shutdown()/close() called: FIN follows the data
        # Receive sequence space (Figure 4).
        self.irs = 0
        self.rcv_nxt = 0
        self.rcv_adv = 0  # right edge of the window we last advertised
        self.rcvq = ReceiveQueue()  # unread and out-of-order data
        self.fin_seq_received: int | None = None  # a FIN seen ahead of a hole
        self.read_closed = False  # close(): we will not read any more
        # Negotiated options.
        self.snd_mss = cfg.default_peer_mss  # the peer's MSS (RFC 6691), capped by ours
        self.smss = self.snd_mss  # SMSS: the data a full segment carries (MSS - options)
        self.snd_wscale = 0
        self.rcv_wscale = 0
        self._wscale_offered = cfg.window_scale is not None
        # RFC 7323 timestamps: TS.Recent, Last.ACK.sent, our clock's offset.
        self.ts = Timestamps(cfg.timestamps)
        self.ts_ok = False  # both SYNs carried TSopt (RFC 7323 §3.2)
        self._last_ack_sent = 0  # Last.ACK.sent: the ACK field of our latest segment
        # RFC 2018 / RFC 6675 SACK.
        self._sack_offered = cfg.sack
        self.sack_ok = False
        self._sack_blocks = SackBlocks()
        self._dsack: tuple[int, int] | None = None  # RFC 2883: a duplicate to report
        # Retransmission, congestion control.
        self.rtt = RttEstimator(cfg.rto_initial, cfg.rto_min, cfg.rto_max)
        self._rtt_seq: int | None = None  # Karn: the one segment being timed
        self._rtt_sent_at = 0.0
        self.retransmits = 0  # consecutive timeouts of the current head
        self.total_retransmits = 0
        self.cc = make_cc(cfg.congestion_control, cfg.mss, cfg.initial_cwnd_segments, self.rtt)
        self.recovery = Recovery(self)
        self._last_send: float | None = None  # when data last went out (RFC 5681 §4.1)
        # Delayed ACK (RFC 1122 §4.2.3.2, RFC 5681 §4.2).
        # Keepalive (RFC 1122 §4.2.3.6).
        self._last_recv = 0.0
        self._ka_probes = 0
        self._force_one = False  # a timer says: one segment now, whatever window or SWS
        self._persist_backoff = 0
        # Output and bookkeeping.
        self.timers = TimerTable()
        self.ack_policy = AckPolicy(cfg, self.timers)
        self._events: list[Event] = []
        self._control: list[TcpSegment] = []  # RSTs and challenge ACKs, sent first
        self._ack_now = False
        self._challenge_acks: tuple[int, int] = (0, 0)  # (second, count), RFC 5961 §7
        self.now = 0.0
        self._sws_min = min(cfg.rcv_buf // 2, cfg.mss)  # RFC 1122 §4.2.3.3 threshold
        self._wf_cache: tuple[int, int, int, int] = (-1, -1, -1, 0)  # _window_field's last

    # ------------------------------------------------------------------ factories
    @classmethod
    def client(cls, local: tuple[str, int], remote: tuple[str, int],
               config: TcpConfig | None = None, *, iss: int | None = None,
               isn_generator: IsnGenerator | None = None) -> Connection:
        return cls(local[0], local[1], remote[0], remote[1], config, iss=iss,
                   isn_generator=isn_generator)

    def _choose_iss(self, now: float) -> int:
        if self._iss_given is not None:
            return self._iss_given & MASK
        if self._isn_generator is None:
            self._isn_generator = IsnGenerator()
        gen = self._isn_generator
        return gen.isn(self.local_ip, self.local_port, self.remote_ip, self.remote_port, now)

    def _choose_ts_offset(self) -> int:
        if self.config.ts_offset is not None:
            return self.config.ts_offset & MASK
        if self._isn_generator is None and self._iss_given is not None:
            return 0  # a test with a fixed ISS: timestamps read as milliseconds
        if self._isn_generator is None:
            self._isn_generator = IsnGenerator()
        return ts_offset(self._isn_generator.secret, self.local_ip, self.local_port,
                         self.remote_ip, self.remote_port)

    def _init_send_space(self, now: float) -> None:
        self.iss = self._choose_iss(now)
        self.snd_una = self.snd_nxt = self.snd_max = self.iss
        self.sndq.seq = (self.iss + 1) & MASK
        self.recovery.start(self.iss)
        if self.ts.offered:
            self.ts.offset = self._choose_ts_offset()

    # ------------------------------------------------------------------ user calls
    def connect(self, now: float) -> None:
        """Active OPEN (RFC 9293 §3.10.1): "A SYN segment of the form
        <SEQ=ISS><CTL=SYN> is sent. Set SND.UNA to ISS, SND.NXT to ISS+1, enter
        SYN-SENT state"."""
        if self.state is not State.CLOSED:
            raise TcpUsageError(f"connect() in {self.state}")
        self.now = now
        self._init_send_space(now)
        self._set_state(State.SYN_SENT, Cause.API, "connect()")

    def accept_syn(self, syn: TcpSegment, now: float) -> None:
        """Passive OPEN meets a SYN (RFC 9293 §3.10.7.2, LISTEN, "third check for
        a SYN"): "Set RCV.NXT to SEG.SEQ+1, IRS is set to SEG.SEQ ... ISS should be
        selected and a SYN segment sent of the form <SEQ=ISS><ACK=RCV.NXT><CTL=SYN,ACK>"."""
        self.now = now
        self.passive = True
        self.state = State.LISTEN
        self.irs = syn.seq
        self.rcv_nxt = self.rcv_adv = (syn.seq + 1) & MASK
        self._init_send_space(now)
        self._take_syn_options(syn, now)
        self.snd_wnd = syn.window  # never scaled on a SYN (RFC 7323 §2.2)
        self.max_snd_wnd = self.snd_wnd
        self.snd_wl1 = syn.seq
        self.snd_wl2 = self.iss
        # "Any other control or text should be queued for processing later."
        self._queue_syn_text(syn)
        self._set_state(State.SYN_RECEIVED, Cause.SEGMENT, "recv SYN", syn)

    def _queue_syn_text(self, syn: TcpSegment) -> None:
        """Text on a SYN, held until ESTABLISHED: only what fits the window our
        SYN,ACK offers (unscaled, RFC 7323 §2.2), as the seventh step trims any
        segment's text to RCV.WND (RFC 9293 §3.10.7.4); the peer sends the rest
        again. (All of it was kept: a 64 KiB SYN filled a 1000-byte buffer.)"""
        wnd = min(self._free_space(), 0xFFFF)
        if syn.payload and wnd:
            self.rcvq.insert(self.rcv_nxt, syn.payload[:wnd], self.rcv_nxt)

    def send(self, data: bytes) -> int:
        """Queue data; returns how many bytes the send buffer took (may be 0)."""
        if self.fin_queued or self.state in (State.CLOSED, State.LISTEN):
            raise TcpUsageError(f"send() after shutdown or in {self.state}")
        return self.sndq.push(data)

    @property
    def send_buffer_free(self) -> int:
        return max(self.config.snd_buf - self.snd_buffered, 0)

    @property
    def snd_buffered(self) -> int:
        """Bytes in the send buffer: unacknowledged or not yet sent."""
        return len(self.sndq)

    @property
    def snd_buf(self) -> bytes:
        """The send buffer's bytes, from SND.UNA's data on (a copy)."""
        return self.sndq.held()

    def read(self, max_bytes: int = -1) -> bytes:
        """Take received in-order data; freeing buffer space opens the window."""
        data = self.rcvq.read(max_bytes)
        if not data:
            return data
        # Receiver SWS avoidance (RFC 1122 §4.2.3.3): announce the opened window
        # only once it has grown by min(RCV.BUFF/2, Eff.snd.MSS).
        # Like Linux (tcp_cleanup_rbuf), only when that at least doubles the window.
        # Or an ACK the delayed-ACK timer holds is owed anyway (AckPolicy).
        if ((self.state.synchronized and self._window_growth() >= self._sws_threshold()
                and self._free_space() >= 2 * self.rcv_wnd())
                or self.ack_policy.owed_on_read((self.rcv_nxt - self._last_ack_sent) & MASK)):
            self._ack_now = True
        return data

    @property
    def readable(self) -> int:
        return self.rcvq.held

    @property
    def rcv_buf(self) -> bytes:
        """The unread data (a copy; for inspection)."""
        return self.rcvq.unread()

    @property
    def at_eof(self) -> bool:
        """The peer's FIN has arrived and every byte before it was read."""
        return self._fin_received() and not self.rcvq.held

    def shutdown(self) -> None:
        """Close our sending side: the FIN follows the queued data (RFC 9293
        §3.10.4 CLOSE, without giving up reading)."""
        self._shutdown("shutdown()")

    def _shutdown(self, cause: str) -> None:
        st = self.state
        if st is State.CLOSED:
            # "CLOSED STATE (i.e., TCB does not exist) ... return "error: connection
            # does not exist"": nothing to close, and no second Closed event.
            return
        if st in (State.SYN_SENT, State.LISTEN):
            # "SYN-SENT STATE: Delete the TCB and return "error: closing" responses".
            self._to_closed(Cause.API, cause)
            return
        if self.fin_queued:
            return
        self.fin_queued = True
        if st is State.ESTABLISHED or (st is State.SYN_RECEIVED and not self.snd_buffered):
            # "ESTABLISHED STATE: Queue this until all preceding SENDs have been
            # segmentized, then form a FIN segment and send it. In any case, enter
            # FIN-WAIT-1 state." "SYN-RECEIVED STATE: If no SENDs have been issued
            # and there is no pending data to send, then form a FIN segment and send
            # it, and enter FIN-WAIT-1 state; otherwise, queue for processing after
            # entering ESTABLISHED state" (see _process_ack). Our SYN may still be
            # unacknowledged then: _awaiting_syn_ack.
            self._set_state(State.FIN_WAIT_1, Cause.API, cause)
        elif st is State.CLOSE_WAIT:
            # "CLOSE-WAIT STATE: Queue this request until all preceding SENDs have
            # been segmentized; then send a FIN segment, enter LAST-ACK state."
            self._set_state(State.LAST_ACK, Cause.API, cause)

    def close(self) -> None:
        """CLOSE: shutdown() and stop reading. As Linux does (RFC 2525 §2.17),
        closing with unread data aborts with a RST instead of a FIN."""
        # (The StateChanged cause says "close()", not "shutdown()" or "abort()".)
        if self.rcvq.held and self.state.synchronized:
            self._abort("close()")
            return
        self.read_closed = True
        self._shutdown("close()")

    def abort(self) -> None:
        """ABORT (RFC 9293 §3.10.5): "Send a reset segment: <SEQ=SND.NXT><CTL=RST>"
        in the synchronized states and SYN-RECEIVED; then CLOSED."""
        self._abort("abort()")

    def _abort(self, cause: str, kind: Cause = Cause.API) -> None:
        if self.state in (State.SYN_RECEIVED, State.ESTABLISHED, State.FIN_WAIT_1,
                          State.FIN_WAIT_2, State.CLOSE_WAIT):
            # Linux sends RST+ACK here; the ACK field only helps the peer accept it.
            self._control.append(self._segment(self.snd_max, RST | ACK))
        if self.state is not State.CLOSED:
            self._to_closed(kind, cause)

    # ------------------------------------------------------------------ outputs
    def _awaiting_syn_ack(self) -> bool:
        """Our SYN-ACK is not acknowledged yet: SYN-RECEIVED, or the FIN-WAIT-1
        that a CLOSE in SYN-RECEIVED enters at once (RFC 9293 §3.10.4)."""
        st = self.state
        return st is State.SYN_RECEIVED or (st is State.FIN_WAIT_1 and self.snd_una == self.iss)

    def report(self, event: Event) -> None:
        """Queue an event for the user (events())."""
        self._events.append(event)

    def sending_data(self) -> bool:
        """Synchronized and not yet in TIME-WAIT: data of ours may be in flight."""
        return self.state.synchronized and self.state is not State.TIME_WAIT

    def events(self) -> list[Event]:
        ev, self._events = self._events, []
        return ev

    def next_deadline(self) -> float | None:
        return self.timers.deadline()

    @property
    def flight_size(self) -> int:
        return seq_diff(self.snd_max, self.snd_una)

    @property
    def fin_seq(self) -> int:
        """The sequence number our FIN takes (meaningful once fin_queued)."""
        return self.sndq.end()

    def segments_to_send(self, now: float) -> list[TcpSegment]:
        """Everything to transmit now: control segments, SYN or SYN-ACK,
        (re)transmitted data and FIN within the windows, or a bare ACK."""
        self.now = now
        out = self._control
        self._control = []
        st = self.state
        if st is State.SYN_SENT and self.snd_nxt == self.iss:
            out.append(self._syn_segment(SYN))
        elif self.snd_nxt == self.iss and self._awaiting_syn_ack():
            out.append(self._syn_segment(SYN | ACK))
            self._ack_now = False
            if st is State.FIN_WAIT_1:
                self._output_data(now, out)  # the FIN follows
        elif st.synchronized and st is not State.TIME_WAIT:
            self._output_data(now, out)
        if self._ack_now and st is not State.CLOSED:
            # A bare ACK carries SND.MAX, not a rewound SND.NXT: the peer may hold
            # data up to SND.MAX already, and would find a lower SEQ unacceptable
            # and answer with an ACK of its own, and so on forever.
            self._ack_now = False
            ack = self._segment(self.snd_max, ACK)
            # Not twice the same ACK in one go (an immediate ACK of a segment that
            # filled a hole is already queued when its FIN asks for one): the
            # peer would count the second as a duplicate ACK (RFC 5681 §2).
            if not any(s.flags & (ACK | RST) == ACK
                       and (s.seq, s.ack, s.window) == (ack.seq, ack.ack, ack.window)
                       for s in out):
                out.append(ack)
        if (out and Timer.RETRANSMIT not in self.timers and self.snd_max != self.snd_una
                and self.state is not State.CLOSED):
            # (Not for the RST an abort leaves behind: the TCB is gone, and so are its
            # timers, RFC 9293 §3.10.5.)
            self.timers.arm(Timer.RETRANSMIT, now + self.rtt.current())
        if self.recovery.tlp_arm:
            self.recovery.arm_loss_probe(now)
        if (st is State.FIN_WAIT_2 and self.read_closed
                and Timer.FIN_WAIT_2 not in self.timers):
            self.timers.arm(Timer.FIN_WAIT_2, now + self.config.fin_timeout)
        return out

    def _syn_segment(self, flags: int) -> TcpSegment:
        # Options in Linux's order (tcp_options_write): MSS, SACK-permitted and
        # timestamps, window scale (RFC 7323 §2.2, RFC 2018 §2: on SYNs only).
        opts: list[TcpOption] = [MssOption(self.config.mss)]
        if self.ts.offered:
            ts = self.ts.syn_option(self.now, ack=bool(flags & ACK))
            opts += (SACK_PERMITTED, ts) if self._sack_offered else (NOP, NOP, ts)
        elif self._sack_offered:
            opts += (NOP, NOP, SACK_PERMITTED)
        if self._wscale_offered:
            opts += (NOP, WindowScaleOption(min(self.config.window_scale or 0, MAX_WSCALE)))
        wnd = min(self._free_space(), 0xFFFF)  # never scaled on a SYN (RFC 7323 §2.2)
        seg = TcpSegment(self.local_port, self.remote_port, self.iss,
                         self.rcv_nxt if flags & ACK else 0, flags, wnd, options=tuple(opts))
        if flags & ACK:
            self.rcv_adv = (self.rcv_nxt + wnd) & MASK
            self._last_ack_sent = self.rcv_nxt
        self.snd_nxt = (self.iss + 1) & MASK
        if seq_lt(self.snd_max, self.snd_nxt):
            self.snd_max = self.snd_nxt
        if self._rtt_seq is None and self.retransmits == 0:
            self._rtt_seq, self._rtt_sent_at = self.iss, self.now
        return seg

    def _output_data(self, now: float, out: list[TcpSegment]) -> None:
        if self.recovery.output(now, out):
            self._output_window(now, out)
        # Data waiting, nothing in flight, yet nothing sent: the window is zero
        # (probe it, RFC 9293 §3.8.6.1) or too small for SWS avoidance to use.
        # RFC 9293 §3.8.6.2.1: "To avoid a resulting deadlock, it is necessary to
        # have a timeout to force transmission of data, overriding the SWS
        # avoidance algorithm" - or a lost window update stalls us for good.
        if (self.snd_max == self.snd_una and Timer.PERSIST not in self.timers
                and self.sndq.after(self.snd_nxt) > 0):
            self.timers.arm(Timer.PERSIST, now + self._persist_interval())

    def _output_window(self, now: float, out: list[TcpSegment]) -> None:
        """Send from SND.NXT what the windows allow (RFC 5681 §3, RFC 9293 §3.8.6)."""
        mss = self.smss
        cc = self.cc
        cwnd = cc.cwnd
        rec = self.recovery
        sb = rec.scoreboard
        dupacks = rec.dupacks
        # Without limited transmit, SACKed data stays in flight until recovery
        # starts, so duplicate ACKs release nothing new.
        limited = not dupacks or rec.mode or self.config.limited_transmit
        if self.snd_una == self.snd_max and self._last_send is not None:
            self._restart_after_idle(now)
            cwnd = cc.cwnd
        elif dupacks and not rec.mode and not sb.ranges and limited:
            # RFC 3042 (limited transmit): on the first two duplicate ACKs, new
            # data may go if "the amount of outstanding data would remain less
            # than or equal to the congestion window plus 2 segments". (With
            # SACK, RFC 6675 §5 step (3): SACKed data no longer counts, below.)
            cwnd += min(dupacks, 2) * mss
        force, self._force_one = self._force_one, False
        sndq = self.sndq
        buf_len = len(sndq)
        una = self.snd_una
        wnd = self.snd_wnd if self.snd_wnd < cwnd else cwnd
        while True:
            seq = self.snd_nxt
            off = (seq - sndq.seq) & MASK  # seq_diff, inlined: the hot loop
            avail = buf_len - (off - 0x100000000 if off >= 0x80000000 else off)
            in_flight = (seq - una) & MASK
            if in_flight >= 0x80000000:
                in_flight -= 0x100000000
            n = mss if mss < avail else avail
            sent = in_flight
            if sb.ranges:
                if in_flight < sb.high_sacked():
                    # Going back after a timeout: what the receiver SACKed is
                    # not sent again (RFC 6675 §5.1).
                    end = sb.sacked_at(in_flight)
                    if end is not None:
                        self.snd_nxt = sb.seq(end)
                        continue
                    nxt = sb.next_sacked(in_flight)
                    if nxt is not None and nxt - in_flight < n:
                        n = nxt - in_flight
                # SACKed data has left the network: it is not in flight.
                if limited:
                    in_flight = sb.unsacked(0, in_flight)
            usable = wnd - in_flight
            if sent != in_flight and self.snd_wnd - sent < usable:
                # ... but it still fills the receiver's buffer: the window's edge
                # stays SND.UNA + SND.WND (RFC 9293 §3.8.6). (Counting SACKed bytes
                # out of it sent new data past the peer's window.)
                usable = self.snd_wnd - sent
            if force and usable <= 0 and seq == self.snd_una:
                # A retransmission timeout with the window closed (the receiver
                # shrank it): the head goes anyway, as a probe. RFC 9293 §3.8.6.2.2:
                # "If the window shrinks to zero, the TCP implementation MUST probe
                # it in the standard way" (Linux: tcp_retransmit_timer). Only data
                # sent before: "the sender SHOULD NOT send new data, but SHOULD
                # retransmit normally the old unacknowledged data" (RFC 1122
                # §4.2.2.16; Linux resends the head as it was).
                usable = min(mss, seq_diff(self.snd_max, seq))
            if usable < n:
                n = usable
            if n < 0:
                n = 0
            # The FIN goes with (or after) the last byte, whatever the window.
            fin_now = self.fin_queued and avail >= 0 and avail == n
            if n == 0 and not fin_now:
                break
            # Nagle and SWS avoidance hold back new data only: what lies below
            # SND.MAX was sent before and goes again at once (a retransmission,
            # RFC 6298 §5.4), or a lost small tail would never be resent.
            if (n and n < mss and not fin_now and not force and seq == self.snd_max
                    and not self._may_send(n, avail, wnd)):
                break
            seg = self.data_segment(seq, n, fin_now)
            if seg is None:
                break
            out.append(seg)
            force = False
            if fin_now:
                break

    def _restart_after_idle(self, now: float) -> None:
        """RFC 5681 §4.1: "TCP SHOULD set cwnd to no more than RW before beginning
        transmission if the TCP has not sent data in an interval exceeding the
        retransmission timeout" (Linux: net.ipv4.tcp_slow_start_after_idle)."""
        if (not self.config.slow_start_after_idle or self._last_send is None
                or now - self._last_send <= self.rtt.current()
                or self.sndq.after(self.snd_nxt) <= 0):
            return
        self._last_send = None
        cwnd = self.cc.cwnd
        self.cc.restart(now)
        if self.cc.cwnd < cwnd:
            self.recovery.cc_event("idle restart")

    def new_data_segment(self) -> TcpSegment | None:
        """NextSeg () rule (2): "available unsent data and the receiver's advertised
        window allows"; SWS avoidance and Nagle still apply."""
        seq = self.snd_max
        if self.snd_nxt != seq:
            return None
        avail = self.sndq.after(seq)
        if avail < 0 or (avail == 0 and not self.fin_queued):
            return None
        room = self.snd_wnd - seq_diff(seq, self.snd_una)
        n = min(self.smss, avail, max(room, 0))
        fin_now = self.fin_queued and avail == n
        if n == 0 and not fin_now:
            return None
        if n and not fin_now and not self._may_send(n, avail, self.snd_wnd):
            return None
        return self.data_segment(seq, n, fin=fin_now)

    def range_segment(self, seq: int, n: int) -> TcpSegment | None:
        """A retransmission of [seq, seq+n) of sequence space sent before, with
        the FIN if the range reaches it."""
        off = seq_diff(seq, self.sndq.seq)
        if off < 0:
            return None
        buffered = self.snd_buffered
        data_n = max(min(n, buffered - off), 0)
        fin = (self.fin_queued and data_n < n and off + data_n == buffered
               and seq_gt(self.snd_max, self.fin_seq))
        if data_n == 0 and not fin:
            return None
        return self.data_segment(seq, data_n, fin=fin)

    def _may_send(self, n: int, avail: int, wnd: int) -> bool:
        """Sender SWS avoidance (RFC 1122 §4.2.3.4) and Nagle (RFC 896)."""
        if n >= self.smss:
            return True  # "(1) a maximum-sized segment can be sent"
        if n == avail and (not self.config.nagle or self.snd_max == self.snd_una):
            return True  # "(2) ... all queued data can be sent now", Nagle allowing
        # "(3) at least a fraction Fs of the maximum window can be sent" (Fs = 1/2)
        return self.max_snd_wnd > 0 and n >= self.max_snd_wnd // 2

    def data_segment(self, seq: int, n: int, fin: bool = False) -> TcpSegment | None:
        taken = self.sndq.take(seq, n)
        if taken is None:
            return None
        payload, at_end = taken
        n = len(payload)
        flags = ACK
        if n:
            self._last_send = self.now
            if at_end:
                flags |= PSH
        if fin:
            flags |= FIN
            n += 1
        rcv_nxt = self.rcv_nxt
        tso = self.ts
        opts: tuple[TcpOption, ...] = tso.options(self.now) if self.ts_ok else ()
        wf = self._wf_cache  # _window_field's answer, if nothing changed since
        if wf[0] == rcv_nxt and wf[1] == self.rcvq.held and wf[2] == self.rcv_adv:
            window = wf[3]
        else:
            window = self._window_field()
        seg = TcpSegment(self.local_port, self.remote_port, seq, rcv_nxt, flags, window,
                         payload, opts)
        self._last_ack_sent = rcv_nxt
        ap = self.ack_policy
        if ap.pending:
            ap.on_ack_sent()
        end = (seq + n) & MASK
        snd_max = self.snd_max
        if 0 < ((end - snd_max) & MASK) < 0x80000000:  # seq_gt(end, snd_max)
            self.snd_max = end
            self.recovery.tlp_arm = True  # RFC 8985 §7.2: new data (re)starts the probe timer
            # Karn: time only segments sent for the first time (RFC 6298 §3).
            if self._rtt_seq is None and self.retransmits == 0 and seq_le(snd_max, seq):
                self._rtt_seq, self._rtt_sent_at = seq, self.now
        if 0 < ((end - self.snd_nxt) & MASK) < 0x80000000:  # seq_gt(end, snd_nxt)
            self.snd_nxt = end
        self._ack_now = False  # the ACK rides on this segment
        return seg

    def _segment(self, seq: int, flags: int, payload: bytes = b"") -> TcpSegment:
        opts: tuple[TcpOption, ...] = ()
        if flags & ACK:
            self._last_ack_sent = self.rcv_nxt
            if self.ack_policy.pending:
                self.ack_policy.on_ack_sent()
        if self.ts_ok:
            # RFC 7323 §3.2: "the TSopt MUST be sent in every non-<RST> segment"
            # (and "SHOULD be sent in an <RST> segment").
            opts = self.ts.options(self.now)
        if self.sack_ok and (self.rcvq.ooo or self._dsack) and not payload and flags & ACK:
            # RFC 2018 §4: SACK blocks on ACKs while data is held out of order; 3
            # blocks fit beside the timestamps, 4 without. RFC 2883: a D-SACK
            # block (a duplicate that arrived) goes first.
            limit = 3 if self.ts_ok else 4
            dsack, self._dsack = self._dsack, None
            blocks = self._sack_blocks.blocks(self.rcvq.ooo, self.rcv_nxt,
                                              limit - (dsack is not None))
            if dsack is not None:
                blocks = (dsack, *blocks)
            if blocks:
                opts = (*opts, NOP, NOP, SackOption(blocks))
        return TcpSegment(self.local_port, self.remote_port, seq & MASK,
                          self.rcv_nxt if flags & ACK else 0, flags, self._window_field(),
                          payload, opts)

    # ------------------------------------------------------------------ windows
    def _free_space(self) -> int:
        return max(self.config.rcv_buf - self.rcvq.held, 0)

    def _sws_threshold(self) -> int:
        return self._sws_min

    def _window_growth(self) -> int:
        """How far the right edge would move if we advertised all free space."""
        return self._free_space() - max(seq_diff(self.rcv_adv, self.rcv_nxt), 0)

    def _window_field(self) -> int:
        """The window to advertise, updating RCV.ADV, the right edge we accept up
        to. The edge never moves back (RFC 9293 §3.8.6.2.2, "the window SHOULD
        NOT be shrunk") and moves on only by SWS-worthy amounts (RFC 1122
        §4.2.3.3). With window scaling the field is the window right-shifted
        (RFC 7323 §2.3, "SEG.WND = RCV.WND >> Rcv.Wind.Shift"), rounded up (as
        Linux does, so the edge does not appear to move back) while that keeps
        the edge within one unit (2**S - 1 bytes) of the buffer's end. Past
        that, when the buffer is full, the field shows up to
        2**S - 1 bytes less than RCV.ADV allows, which the sender must accept
        (Appendix F): rounding up there too creeps the edge on by up to 2**S - 1
        bytes with every ACK, past the buffer, so that a full buffer never shows
        a zero window."""
        rcv_nxt = self.rcv_nxt
        held = self.rcvq.held
        rcv_adv = self.rcv_adv
        wf = self._wf_cache
        if wf[0] == rcv_nxt and wf[1] == held and wf[2] == rcv_adv:
            return wf[3]  # nothing changed since the last segment: same answer
        current = (rcv_adv - rcv_nxt) & MASK
        if current >= 0x80000000:
            current = 0
        free = self.config.rcv_buf - held
        shift = self.rcv_wscale
        field = current >> shift
        if (field << shift) != current and ((field + 1) << shift) < free + (1 << shift):
            field += 1  # rounded up while the buffer holds it, to within one unit
        units = free >> shift
        if units == 0 and free > 0:
            units = 1  # a shift too large for the buffer must not close the window
        if free - current >= self._sws_min and units > field:
            field = units
        if field > 0xFFFF:
            field = 0xFFFF
        edge = (rcv_nxt + (field << shift)) & MASK
        if 0 < ((edge - rcv_adv) & MASK) < 0x80000000:
            self.rcv_adv = rcv_adv = edge
        self._wf_cache = (rcv_nxt, held, rcv_adv, field)
        return field

    def rcv_wnd(self) -> int:
        """RCV.WND for the acceptability test: what we last advertised."""
        return max(seq_diff(self.rcv_adv, self.rcv_nxt), 0)

    # ------------------------------------------------------------------ timers
    def handle_timer(self, now: float) -> None:
        self.now = now
        timers = self.timers
        for timer, when in timers.due(now):
            if timers.get(timer) == when:  # not disarmed or moved by an earlier one
                del timers[timer]
                _TIMER_HANDLERS[timer](self, now)

    def _on_retransmit(self, now: float) -> None:
        if self.snd_max == self.snd_una:
            return
        st = self.state
        handshaking = self._awaiting_syn_ack()
        limit = (self.config.syn_retries if st is State.SYN_SENT
                 else self.config.synack_retries if handshaking else self.config.retries2)
        if self.retransmits >= limit:
            what = "SYN" if st is State.SYN_SENT else "SYN-ACK" if handshaking else "data"
            self._events.append(TimedOut(f"{what} retransmissions exhausted ({limit})"))
            self._to_closed(Cause.TIMER, f"timer {Timer.RETRANSMIT.value}")
            return
        # RFC 6298 §5.4-5.6: retransmit the earliest unacknowledged segment, back
        # off the timer, restart it. RFC 5681 §3.1: cwnd to one segment.
        if self.state.synchronized and not handshaking:
            self.cc.on_timeout(self.flight_size, now)
            self.recovery.cc_event("timeout", phase="loss")
        self.rtt.back_off()
        self.recovery.on_rto(first=not self.retransmits)
        self.count_retransmit()
        self.retransmits += 1
        self.snd_nxt = self.snd_una  # go back: resend from the first hole
        self._force_one = self.state.synchronized  # even into a closed window

    def count_retransmit(self) -> None:
        self._rtt_seq = None  # Karn's algorithm: no sample from a retransmission
        self.total_retransmits += 1

    def _persist_interval(self) -> float:
        return min(self.rtt.rto * (1 << self._persist_backoff), self.config.rto_max)

    def _on_persist(self, now: float) -> None:
        """Zero-window probe: an ACK one below SND.UNA, as Linux sends it, draws
        an ACK that carries the peer's current window (RFC 9293 §3.8.6.1)."""
        waiting = self.sndq.after(self.snd_nxt) > 0
        if not waiting or not self.state.synchronized or self.snd_max != self.snd_una:
            return
        if self.snd_wnd != 0:
            self._force_one = True  # SWS override: send what the window allows
            return
        self._control.append(self._segment((self.snd_una - 1) & MASK, ACK))
        if self._persist_backoff < 16:
            self._persist_backoff += 1
        self.timers.arm(Timer.PERSIST, now + self._persist_interval())

    def _on_loss_probe(self, now: float) -> None:
        self.recovery.on_loss_probe_timer(now)

    def _on_time_wait(self, now: float) -> None:
        self._to_closed(Cause.TIMER, f"timer {Timer.TIME_WAIT.value}")

    def _on_fin_wait_2(self, now: float) -> None:
        self._to_closed(Cause.TIMER, f"timer {Timer.FIN_WAIT_2.value}")

    def _on_delayed_ack(self, now: float) -> None:
        """RFC 1122 §4.2.3.2: the delayed ACK goes when its time is up."""
        self.ack_policy.forget()
        if self.state.synchronized and self.rcv_nxt != self._last_ack_sent:
            self._ack_now = True

    def _on_keepalive(self, now: float) -> None:
        """RFC 1122 §4.2.3.6: "Keep-alive packets MUST only be sent when no data or
        acknowledgement packets have been received for the connection within an
        interval", which "MUST default to no less than two hours". A probe is an
        ACK with SEQ = SND.NXT-1 (outside the peer's window, so it draws an ACK);
        after keepalive_count unanswered probes, the connection is dead (Linux:
        tcp_keepalive_timer, which also resets it)."""
        cfg = self.config
        if not cfg.keepalive or self.state not in KEEPALIVE_STATES:
            return
        if self.snd_max != self.snd_una or self.sndq.after(self.snd_nxt) > 0:
            # Data in flight or waiting: the retransmission and persist timers
            # watch the peer.
            self.timers.arm(Timer.KEEPALIVE, now + cfg.keepalive_idle)
            return
        idle = now - self._last_recv
        if idle + 1e-9 < cfg.keepalive_idle:
            self.timers.arm(Timer.KEEPALIVE, self._last_recv + cfg.keepalive_idle)
            return
        if self._ka_probes >= cfg.keepalive_count:
            self._events.append(TimedOut(f"keepalive: no answer to {self._ka_probes} probes"))
            self._control.append(self._segment(self.snd_max, RST | ACK))
            self._to_closed(Cause.TIMER, f"timer {Timer.KEEPALIVE.value}")
            return
        self._control.append(self._segment((self.snd_nxt - 1) & MASK, ACK))
        self._ka_probes += 1
        self.timers.arm(Timer.KEEPALIVE, now + cfg.keepalive_interval)

    # ------------------------------------------------------------------ congestion
    # ------------------------------------------------------------------ state
    def _set_state(self, new: State, kind: Cause, cause: str,
                   seg: TcpSegment | None = None) -> None:
        """Enter ``new``, a change TRANSITIONS allows for ``kind`` of event; ``cause``
        names the event for StateChanged."""
        old = self.state
        if old is new:
            return
        check_transition(old, new, kind)
        self.state = new
        self._events.append(StateChanged(old, new, cause, seg))
        if new is State.TIME_WAIT:
            # RFC 9293 §3.10.7.4: "Start the time-wait timer, turn off the other timers."
            self.timers.clear()
            self.timers.arm(Timer.TIME_WAIT, self.now + 2 * self.config.msl)
            self.ack_policy.forget()

    def _to_closed(self, kind: Cause, cause: str, seg: TcpSegment | None = None) -> None:
        self._set_state(State.CLOSED, kind, cause, seg)
        self.timers.clear()
        self.ack_policy.forget()
        self._ack_now = False
        self._events.append(Closed())

    def _handshake_completed(self) -> None:
        self._events.append(Connected())
        self._last_recv = self.now
        if self.config.keepalive:
            self.timers.arm(Timer.KEEPALIVE, self.now + self.config.keepalive_idle)
        if self.total_retransmits and self.state.synchronized:
            # RFC 5681 §3.1: "If the SYN or SYN/ACK is lost, the initial window
            # used by a sender after a correctly transmitted SYN MUST be one
            # segment consisting of at most SMSS bytes."
            self.cc.cwnd = self.smss
        if self.rtt.srtt is None and self.total_retransmits:
            # RFC 6298 (5.7): "If the timer expires awaiting the ACK of a SYN segment
            # and the TCP implementation is using an RTO less than 3 seconds, the
            # RTO MUST be re-initialized to 3 seconds when data transmission begins
            # (i.e., after the three-way handshake completes)." (Linux does too.)
            self.rtt.rto = min(max(self.rtt.rto, 3.0), self.rtt.rto_max)

    def _our_fin_acked(self) -> bool:
        return self.fin_queued and self.snd_una == (self.fin_seq + 1) & MASK

    def _fin_received(self) -> bool:
        fin = self.fin_seq_received  # (a FIN held ahead of a hole is not received yet)
        return self.state in (State.CLOSE_WAIT, State.LAST_ACK, State.CLOSING,
                              State.TIME_WAIT) or (
            self.state is State.CLOSED and fin is not None and (fin + 1) & MASK == self.rcv_nxt)

    # ------------------------------------------------------------------ arrivals
    def receive(self, seg: TcpSegment, now: float) -> None:
        """Process one arriving segment (RFC 9293 §3.10.7)."""
        self.now = now
        self._last_recv = now  # keepalive: anything heard from the peer counts
        self._ka_probes = 0
        st = self.state
        if self._ack_now and self.rcv_nxt != self._last_ack_sent and st.synchronized:
            self._flush_owed_ack()  # an ACK owed for data that arrived before
        if st is _PREDICTED_STATE and self._predicted(seg, now):
            return
        if st is State.CLOSED or st is State.LISTEN:
            return  # the host answers for closed ports (see reset_for)
        opts = seg.options
        if opts and opts[-1].__class__ is MalformedOption and st is not State.TIME_WAIT \
                and dropped_unread(seg, self.config.auth_option_walk):
            return  # as Linux >= 6.7 drops it before any socket sees it (TIME-WAIT's does)
        if st is State.SYN_SENT:
            self._receive_syn_sent(seg, now)
            return
        self._receive_synchronized(seg, now)

    def _predicted(self, seg: TcpSegment, now: float) -> bool:
        """Header prediction (Van Jacobson; BSD's and Linux's fast path): in
        ESTABLISHED, a segment with only ACK (and PSH) set, exactly at RCV.NXT,
        fitting the window, acknowledging nothing beyond SND.MAX, with no hole
        to fill, no SACK blocks and no loss being recovered, passing PAWS, goes
        through §3.10.7.4 with every other branch provably idle. This does
        exactly what _receive_synchronized would, with less work."""
        rec = self.recovery
        if seg.flags & _FLAGS_BUT_PSH != ACK or seg.seq != self.rcv_nxt or self.rcvq.ooo \
                or self.read_closed or self.fin_seq_received is not None \
                or rec.mode or rec.scoreboard.ranges or rec.tlp_high is not None:
            return False
        ts: TimestampOption | None = None
        opts = seg.options
        if opts:
            last = opts[-1]
            if type(last) is TimestampOption and len(opts) == 3:  # NOP, NOP, TSopt
                ts = last
            else:
                for o in opts:
                    if type(o) is TimestampOption:
                        if ts is not None:
                            return False  # two: the general path reads the first
                        ts = o
                    elif type(o) is SackOption or type(o) is MalformedOption:
                        return False
            if ts is not None and not self.ts_ok:
                return False
        ack = seg.ack
        una = self.snd_una
        d_ack = (ack - una) & MASK
        if d_ack > ((self.snd_max - una) & MASK):
            return False  # SEG.ACK outside SND.UNA..SND.MAX: the general path decides
        payload = seg.payload
        n = len(payload)
        if n and not n <= ((self.rcv_adv - seg.seq) & MASK) < 0x80000000:
            return False  # needs trimming (or a zero window): the general path
        if ts is not None and not self.ts.on_arrival(ts.tsval, seg.seq, (seg.seq + n) & MASK,
                                                     self._last_ack_sent, now):
            return False  # PAWS (RFC 7323 §5.3 R1): an old TSval takes the general path
        # Fifth, the ACK field (same order and helpers as _process_ack).
        if d_ack:
            self._ack_advances(ack, now, ts.tsecr if ts is not None else 0)
        elif self.snd_max != una:
            self._maybe_duplicate_ack(seg)
        self._window_update(seg, ack)
        # Seventh, the text: in order, no hole, within the window.
        if n:
            self._deliver(payload)
            self._ack_data(n, now)
        return True

    def _ack_data(self, n: int, now: float) -> None:
        """In-order data arrived (no hole involved): ACK it now or later."""
        if self.ack_policy.on_data(n, now, (self.rcv_nxt - self._last_ack_sent) & MASK,
                                   self.rcvq.held, self.rtt.rto):
            self._ack_now = True

    def _flush_owed_ack(self) -> None:
        """An ACK owed for what arrived before goes out before the next segment is
        processed, not at the next segments_to_send(): an adapter that hands us
        a burst of segments before asking for output (the in-memory network, a
        host draining its socket) still gets an ACK for every second full-sized
        segment, as RFC 5681 §4.2 asks and as Linux does per received skb. One
        stretch ACK for a whole burst would, if lost, leave the sender nothing
        but its RTO."""
        self._ack_now = False
        self._control.append(self._segment(self.snd_max, ACK))

    def _take_syn_options(self, syn: TcpSegment, now: float) -> None:
        cfg = self.config
        # RFC 9293 §3.7.1 / RFC 6691: send no segment larger than the peer's MSS
        # (536 when it sent none), nor larger than our own.
        peer_mss = syn.mss
        self.snd_mss = max(min(peer_mss if peer_mss else cfg.default_peer_mss, cfg.mss), 64)
        # RFC 7323 §2.2: scaling is on only when both SYNs carry the option.
        ws = syn.wscale
        if ws is not None and self._wscale_offered:
            # "If a Window Scale option is received with a shift.cnt value larger
            # than 14, the TCP SHOULD log the error but MUST use 14 instead".
            self.snd_wscale = min(ws, MAX_WSCALE)
            self.rcv_wscale = min(cfg.window_scale or 0, MAX_WSCALE)
        else:
            self._wscale_offered = False
            self.snd_wscale = self.rcv_wscale = 0
        # RFC 7323 §3.2: timestamps are on when both SYNs carry TSopt; "A TCP MAY
        # send the TSopt in a <SYN,ACK> segment only if it received a TSopt in
        # the initial <SYN> segment". TS.Recent starts at the peer's TSval.
        ts = syn.timestamp
        self.ts_ok = self.ts.negotiate(ts, now)
        # RFC 2018 §2: "SACK-permitted ... may be sent in a SYN by a TCP that has
        # been extended to receive (and presumably process) the SACK option once
        # the connection has opened"; both SYNs carry it, or SACK is off.
        if syn.sack_permitted and self._sack_offered:
            self.sack_ok = True
        else:
            self._sack_offered = self.sack_ok = False
        # RFC 6691: "the sender MUST reduce the TCP data length to account for any
        # IP or TCP options that it is including in the packets that it sends."
        self.smss = max(self.snd_mss - (TS_OPTION_LEN if self.ts_ok else 0), 64)
        self.cc.set_mss(self.smss)

    def _receive_syn_sent(self, seg: TcpSegment, now: float) -> None:
        """RFC 9293 §3.10.7.3, SYN-SENT STATE."""
        flags = seg.flags
        ack_ok = False
        if flags & ACK:
            # "If SEG.ACK =< ISS or SEG.ACK > SND.NXT, send a reset (unless the RST
            # bit is set, if so drop the segment and return) <SEQ=SEG.ACK><CTL=RST>"
            if seq_le(seg.ack, self.iss) or seq_gt(seg.ack, self.snd_max):
                if not flags & RST:
                    self._control.append(TcpSegment(self.local_port, self.remote_port,
                                                    seg.ack, 0, RST, 0))
                return
            ack_ok = True  # "If SND.UNA < SEG.ACK =< SND.NXT, then the ACK is acceptable."
        if flags & RST:
            # "If the ACK was acceptable, then signal to the user "error: connection
            # reset", drop the segment, enter CLOSED state ... Otherwise (no ACK),
            # drop the segment and return." (RFC 5961 §3.2 keeps this for SYN-SENT.)
            if ack_ok:
                self._events.append(ConnectionReset(refused=True))
                self._to_closed(Cause.SEGMENT, describe(seg), seg)
            return
        if not flags & SYN:
            return  # "If neither of the SYN or RST bits is set, then drop the segment"
        # "If the SYN bit is on ... RCV.NXT is set to SEG.SEQ+1, IRS is set to SEG.SEQ."
        self.irs = seg.seq
        self.rcv_nxt = self.rcv_adv = (seg.seq + 1) & MASK
        self._take_syn_options(seg, now)
        if ack_ok:
            # "SND.UNA should be advanced to equal SEG.ACK ... If SND.UNA > ISS (our
            # SYN has been ACKed), change the connection state to ESTABLISHED, form
            # an ACK segment <SEQ=SND.NXT><ACK=RCV.NXT><CTL=ACK> and send it."
            ts = seg.timestamp if self.ts_ok else None
            self._ack_advances(seg.ack, now, ts.tsecr if ts is not None else 0)
            self._update_window(seg, scaled=False)
            self.snd_wl1, self.snd_wl2 = seg.seq, seg.ack
            self._set_state(State.ESTABLISHED, Cause.SEGMENT, describe(seg), seg)
            self._handshake_completed()
            self._ack_now = True
            if seg.payload or flags & FIN:
                # "Data or controls that were queued for transmission may be
                # included. If there are other controls or text in the segment,
                # then continue processing at the sixth step".
                # RCV.WND is what our SYN offered (unscaled, RFC 7323 §2.2): the
                # text is trimmed to it, not to an empty window.
                self.rcv_adv = (self.rcv_nxt + min(self._free_space(), 0xFFFF)) & MASK
                self._process_text_and_fin(seg, now)
        else:
            # Simultaneous open: "Otherwise, enter SYN-RECEIVED, form a SYN,ACK
            # segment <SEQ=ISS><ACK=RCV.NXT><CTL=SYN,ACK> and send it."
            self.snd_wnd = seg.window
            self.max_snd_wnd = max(self.max_snd_wnd, self.snd_wnd)
            self.snd_wl1 = seg.seq
            self.snd_nxt = self.iss  # the SYN goes out again, now with ACK
            self.timers.disarm(Timer.RETRANSMIT)
            self._set_state(State.SYN_RECEIVED, Cause.SEGMENT, describe(seg), seg)
            self._queue_syn_text(seg)

    def _receive_synchronized(self, seg: TcpSegment, now: float) -> None:
        flags = seg.flags
        st = self.state
        arrived = seg  # as it came: for StateChanged, even when its SYN is stripped below
        # SYN-RECEIVED and a retransmitted SYN: our SYN-ACK was lost; send it again.
        # (Not with RST: RST+SYN+ACK at IRS lies outside the window once its SYN would be
        # stripped, and RFC 5961 §3.2 drops such a RST silently; stripping it made the
        # RST land on RCV.NXT and reset the connection.)
        if flags & SYN and seg.seq == self.irs and self._awaiting_syn_ack() \
                and not flags & RST:
            if not flags & ACK:
                self.snd_nxt = self.iss
                return
            # Simultaneous open: the peer's SYN-ACK repeats its SYN, which we hold.
            # "If a segment's contents straddle the boundary between old and new,
            # only the new parts are processed": strip the SYN and go on.
            seg = TcpSegment(seg.src_port, seg.dst_port, (seg.seq + 1) & MASK, seg.ack,
                             flags & ~SYN, seg.window, seg.payload, seg.options)
            flags = seg.flags
        ts = None
        if self.ts_ok:
            ts = seg.timestamp
            # PAWS: a segment with an old TSval, not a RST, is "not acceptable:
            # Send an acknowledgment in reply as specified in RFC 793 page 69 and
            # drop the segment."
            if ts is not None and not flags & RST and self.ts.paws_rejects(ts.tsval, now):
                self._ack_now = True
                return
            # (A segment without TSopt is processed, as Linux does; RFC 7323
            # §3.2 says it "SHOULD" be dropped.)
        # ---- first, check sequence number (RFC 9293 §3.10.7.4) ----
        acceptable = self._acceptable(seg)
        if ts is not None and not flags & RST and (acceptable or not flags & SYN):
            self.ts.on_arrival(ts.tsval, seg.seq, (seg.seq + seg.seg_len) & MASK,
                               self._last_ack_sent, now)
        if not acceptable:
            # "If an incoming segment is not acceptable, an acknowledgment should be
            # sent in reply (unless the RST bit is set, if so drop the segment and
            # return)". Zero-window probes land here and get our window back. An ACK
            # at RCV.NXT is still processed ("special allowance should be made to
            # accept valid ACKs").
            if flags & RST:
                return
            if flags & SYN:
                self._challenge_ack(now)
                return
            self._ack_now = True
            if seg.payload and seq_le((seg.seq + len(seg.payload)) & MASK, self.rcv_nxt):
                # A duplicate: our ACK was lost or late. Like Linux, ACK the next
                # segments at once (tcp_enter_quickack_mode); RFC 2883: report
                # the duplicate in a D-SACK block.
                self.ack_policy.on_duplicate()
                if self.sack_ok:
                    self._dsack = (seg.seq, (seg.seq + len(seg.payload)) & MASK)
            if (st is State.TIME_WAIT and flags & FIN
                    and (seg.seq + seg.seg_len) & MASK == self.rcv_nxt):
                # A retransmitted FIN (it lies just below RCV.NXT, so it fails the
                # test above): "TIME-WAIT STATE: The only thing that can arrive in
                # this state is a retransmission of the remote FIN. Acknowledge it,
                # and restart the 2 MSL timeout." (eighth step)
                self.timers.arm(Timer.TIME_WAIT, now + 2 * self.config.msl)
                return
            if flags & ACK and seg.seq == self.rcv_nxt and st.synchronized:
                self._process_ack(seg, now, None, ts)
            return
        # ---- second, check the RST bit (RFC 5961 §3.2) ----
        if flags & RST:
            # "1) If the RST bit is set and the sequence number is outside the current
            # receive window, silently drop the segment. 2) If the RST bit is set and
            # the sequence number exactly matches the next expected sequence number
            # (RCV.NXT), then TCP MUST reset the connection. 3) ... otherwise send a
            # challenge ACK"
            if seg.seq != self.rcv_nxt:
                self._challenge_ack(now)
                return
            if st is State.SYN_RECEIVED and self.passive:
                # "If this connection was initiated with a passive OPEN ... return this
                # connection to the LISTEN state": the listener forgets it.
                self._to_closed(Cause.SEGMENT, describe(seg), seg)
                return
            if st in (State.SYN_RECEIVED, State.ESTABLISHED, State.FIN_WAIT_1,
                      State.FIN_WAIT_2, State.CLOSE_WAIT):
                self._events.append(ConnectionReset(refused=st is State.SYN_RECEIVED))
            # "CLOSING, LAST-ACK, TIME-WAIT: If the RST bit is set, then enter the
            # CLOSED state, delete the TCB, and return."
            self._to_closed(Cause.SEGMENT, describe(seg), seg)
            return
        # ---- fourth, check the SYN bit (RFC 5961 §4.2) ----
        if flags & SYN:
            # "If the SYN bit is set, irrespective of the sequence number, TCP MUST
            # send an ACK (also referred to as challenge ACK) to the remote peer"
            self._challenge_ack(now)
            return
        # ---- fifth, check the ACK field ----
        if not flags & ACK:
            return  # "if the ACK bit is off, drop the segment and return"
        if not self._process_ack(seg, now, arrived, ts):
            return
        # ---- sixth (URG) is not acted on; seventh, text; eighth, FIN ----
        self._process_text_and_fin(seg, now)

    def _acceptable(self, seg: TcpSegment) -> bool:
        """The four cases of RFC 9293 §3.10.7.4:

        Segment Length  Receive Window  Test
        0               0               SEG.SEQ = RCV.NXT
        0               >0              RCV.NXT =< SEG.SEQ < RCV.NXT+RCV.WND
        >0              0               not acceptable
        >0              >0              RCV.NXT =< SEG.SEQ < RCV.NXT+RCV.WND
                                     or RCV.NXT =< SEG.SEQ+SEG.LEN-1 < RCV.NXT+RCV.WND
        """
        seg_len = seg.seg_len
        wnd = self.rcv_wnd()
        if seg_len == 0:
            if wnd == 0:
                return seg.seq == self.rcv_nxt
            return seq_in_window(seg.seq, self.rcv_nxt, wnd)
        if wnd == 0:
            return False
        return (seq_in_window(seg.seq, self.rcv_nxt, wnd)
                or seq_in_window((seg.seq + seg_len - 1) & MASK, self.rcv_nxt, wnd))

    def _challenge_ack(self, now: float) -> None:
        """RFC 5961 §7: at most challenge_ack_limit challenge ACKs per second."""
        second, count = self._challenge_acks
        if int(now) != second:
            second, count = int(now), 0
        if count < self.config.challenge_ack_limit:
            self._ack_now = True
            count += 1
        self._challenge_acks = (second, count)

    def _process_ack(self, seg: TcpSegment, now: float, arrived: TcpSegment | None = None,
                     ts: TimestampOption | None = None) -> bool:
        """Fifth step of RFC 9293 §3.10.7.4. Returns False when the segment is dropped.
        ``arrived`` is the segment as received, when ``seg`` had its SYN stripped;
        ``ts`` its timestamps, when they are on."""
        st = self.state
        ack = seg.ack
        tsecr = ts.tsecr if ts is not None else 0
        if self._awaiting_syn_ack():
            # "If SND.UNA < SEG.ACK =< SND.NXT, then enter ESTABLISHED state and
            # continue processing ... If the segment acknowledgment is not
            # acceptable, form a reset segment <SEQ=SEG.ACK><CTL=RST> and send it."
            arrived = arrived or seg
            if seq_lt(self.snd_una, ack) and seq_le(ack, self.snd_max):
                self._ack_advances(ack, now, tsecr)
                # RFC 7323 §2.2: "The window field in a segment where the SYN bit is
                # set (i.e., a <SYN> or <SYN,ACK>) MUST NOT be scaled." (A SYN,ACK
                # completes a simultaneous open.)
                self._update_window(seg, scaled=not arrived.flags & SYN)
                self.snd_wl1, self.snd_wl2 = seg.seq, ack
                if st is State.SYN_RECEIVED:
                    self._set_state(State.ESTABLISHED, Cause.SEGMENT, describe(arrived), arrived)
                    self._handshake_completed()
                    if self.fin_queued:
                        self._set_state(State.FIN_WAIT_1, Cause.SEGMENT, "shutdown() (queued)")
                else:  # FIN-WAIT-1, closed in SYN-RECEIVED: the FIN may be acked too
                    self._handshake_completed()
                    if self._our_fin_acked() and not (arrived.flags & FIN
                                                      and seg.seq == self.rcv_nxt):
                        self._set_state(State.FIN_WAIT_2, Cause.SEGMENT, describe(arrived), arrived)
                ready = self.rcvq.pop_ready(self.rcv_nxt)  # data that came with the SYN
                if ready:
                    self._deliver(ready)
                    # Seventh step: "Send an acknowledgment of the form
                    # <SEQ=SND.NXT><ACK=RCV.NXT><CTL=ACK>" for the data now taken.
                    self._ack_now = True
                return True
            self._control.append(TcpSegment(self.local_port, self.remote_port, ack, 0, RST, 0))
            return False
        # RFC 5961 §5.2: "The ACK value is considered acceptable only if it is in the
        # range of ((SND.UNA - MAX.SND.WND) =< SEG.ACK =< SND.NXT). All incoming
        # segments whose ACK value doesn't satisfy the above condition MUST be
        # discarded and an ACK sent back."
        if seq_gt(ack, self.snd_max):
            # "If the ACK acks something not yet sent (SEG.ACK > SND.NXT) then send
            # an ACK, drop the segment, and return."
            self._ack_now = True
            return False
        if seq_lt(ack, (self.snd_una - self.max_snd_wnd) & MASK):
            self._challenge_ack(now)
            return False
        blocks: tuple[tuple[int, int], ...] = ()
        if self.sack_ok:
            for o in seg.options:
                if o.__class__ is SackOption:
                    blocks = o.blocks
        newly_sacked = self.recovery.on_sack(ack, blocks)
        if seq_lt(self.snd_una, ack):
            self._ack_advances(ack, now, tsecr)
        elif ack == self.snd_una and not blocks:
            self._maybe_duplicate_ack(seg)
        if newly_sacked:
            self.recovery.on_sacked()
        self._window_update(seg, ack)
        fin_acked = self._our_fin_acked()
        if st is State.FIN_WAIT_1 and fin_acked and not (
                seg.flags & FIN and seg.seq == self.rcv_nxt):
            # "In addition to the processing for the ESTABLISHED state, if the FIN
            # segment is now acknowledged, then enter FIN-WAIT-2 and continue".
            # (A FIN in this same segment takes us straight to TIME-WAIT instead.)
            self._set_state(State.FIN_WAIT_2, Cause.SEGMENT, describe(seg), seg)
        elif st is State.CLOSING and fin_acked:
            # "if the ACK acknowledges our FIN, then enter the TIME-WAIT state".
            self._set_state(State.TIME_WAIT, Cause.SEGMENT, describe(seg), seg)
            return False
        elif st is State.LAST_ACK and fin_acked:
            # "The only thing that can arrive in this state is an acknowledgment of
            # our FIN. If our FIN is now acknowledged, delete the TCB, enter the
            # CLOSED state, and return."
            self._to_closed(Cause.SEGMENT, describe(seg), seg)
            return False
        elif st is State.TIME_WAIT:
            # "The only thing that can arrive in this state is a retransmission of
            # the remote FIN. Acknowledge it, and restart the 2 MSL timeout."
            if seg.flags & FIN:
                self._ack_now = True
                self.timers.arm(Timer.TIME_WAIT, now + 2 * self.config.msl)
            return False
        return True

    def _window_update(self, seg: TcpSegment, ack: int) -> None:
        """RFC 9293 §3.10.7.4, fifth: "If SND.UNA =< SEG.ACK =< SND.NXT, the send
        window should be updated. If (SND.WL1 < SEG.SEQ or (SND.WL1 = SEG.SEQ and
        SND.WL2 =< SEG.ACK)), set SND.WND <- SEG.WND, set SND.WL1 <- SEG.SEQ, and
        set SND.WL2 <- SEG.ACK." (The caller has checked the first condition.)"""
        seq = seg.seq
        wl1 = self.snd_wl1
        # seq_lt(wl1, seq) or (wl1 == seq and seq_le(wl2, ack)), inlined
        if (0 < ((seq - wl1) & MASK) < 0x80000000
                or (wl1 == seq and ((ack - self.snd_wl2) & MASK) < 0x80000000)):
            if (seg.window << self.snd_wscale) != self.snd_wnd:
                self._update_window(seg, scaled=True)
            self.snd_wl1 = seq
            self.snd_wl2 = ack

    def _update_window(self, seg: TcpSegment, scaled: bool) -> None:
        was_zero = self.snd_wnd == 0
        self.snd_wnd = seg.window << self.snd_wscale if scaled else seg.window
        if self.snd_wnd > self.max_snd_wnd:
            self.max_snd_wnd = self.snd_wnd
        if self.snd_wnd and was_zero:
            self.timers.disarm(Timer.PERSIST)
            self._persist_backoff = 0

    def _ack_advances(self, ack: int, now: float, tsecr: int = 0) -> None:
        """SND.UNA < SEG.ACK =< SND.MAX: drop acknowledged data, RTT, timers, cwnd."""
        acked = seq_diff(ack, self.snd_una)
        # Drop acknowledged bytes from the send buffer (not the SYN or FIN).
        data_acked = self.sndq.acknowledge(ack)
        self.snd_una = ack
        if seq_lt(self.snd_nxt, ack):
            self.snd_nxt = ack
        if tsecr and self.ts_ok:
            # RFC 7323 §4 (RTTM): every ACK of new data times the segment it
            # echoes, retransmitted or not.
            self.ts.rtt_sample(tsecr, now, self.flight_size, self.smss, self.rtt)
            self._rtt_seq = None
        elif self._rtt_seq is not None and seq_lt(self._rtt_seq, ack):
            # RFC 6298 §3 via Karn: a sample only when the timed segment is covered.
            self.rtt.sample(now - self._rtt_sent_at)
            self._rtt_seq = None
        self.retransmits = 0
        self.rtt.backoff = 0
        # RFC 6298 §5.2/5.3: stop the timer when all is acknowledged, else restart it.
        if self.snd_una == self.snd_max:
            self.timers.disarm(Timer.RETRANSMIT)
        else:
            self.timers.arm(Timer.RETRANSMIT, now + self.rtt.current())
        self.recovery.on_new_ack(ack, acked, data_acked, now)

    def _maybe_duplicate_ack(self, seg: TcpSegment) -> None:
        """RFC 5681 §2 "DUPLICATE ACKNOWLEDGMENT": outstanding data, no payload, no
        SYN/FIN, SEG.ACK = SND.UNA, and an unchanged advertised window."""
        if (self.snd_max == self.snd_una or seg.payload or seg.flags & (SYN | FIN)
                or (seg.window << self.snd_wscale) != self.snd_wnd):
            return
        self.recovery.on_duplicate_ack()

    def _process_text_and_fin(self, seg: TcpSegment, now: float) -> None:
        st = self.state
        payload = seg.payload
        # RFC 9293 §3.4: "the SYN is considered to occur before the first actual
        # data octet of the segment in which it occurs": a SYN,ACK's text (and
        # FIN) start at SEG.SEQ+1.
        first = seq = (seg.seq + 1) & MASK if seg.flags & SYN else seg.seq
        if payload and st in RECEIVING_STATES:
            # Trim what lies before RCV.NXT and beyond the window.
            off = seq_diff(self.rcv_nxt, seq)
            if off > 0:
                if self.sack_ok:
                    self._dsack = (seq, self.rcv_nxt)  # RFC 2883 §4.1.2: partly duplicate
                payload = payload[off:]
                seq = self.rcv_nxt
            room = seq_diff((self.rcv_nxt + self.rcv_wnd()) & MASK, seq)
            if len(payload) > room:
                payload = payload[:max(room, 0)]
            if payload and self.read_closed:
                # Data for a closed reader: Linux answers with RST (tcp_rcv_state_process).
                self._abort("abort()", Cause.SEGMENT)
                return
            if payload:
                had_hole = bool(self.rcvq.ooo)
                in_order = seq == self.rcv_nxt
                if in_order:
                    # "Once in the ESTABLISHED state, it is possible to deliver segment
                    # data to user RECEIVE buffers ... RCV.NXT is advanced".
                    self._deliver(payload + self.rcvq.pop_ready((seq + len(payload)) & MASK))
                else:
                    self.rcvq.insert(seq, payload, self.rcv_nxt)
                    self._sack_blocks.arrived(seq)  # RFC 2018 §4: its block goes first
                # "Send an acknowledgment of the form <SEQ=SND.NXT><ACK=RCV.NXT><CTL=ACK>".
                # RFC 5681 §4.2: "A TCP receiver SHOULD send an immediate duplicate ACK
                # when an out-of-order segment arrives" and "an immediate ACK when the
                # incoming segment fills in all or part of a gap": one ACK per such
                # segment, so the sender can count duplicates.
                if had_hole or not in_order:
                    self._control.append(self._segment(self.snd_max, ACK))
                else:
                    self._ack_data(len(payload), now)
        if not seg.flags & FIN or st not in RECEIVING_STATES:
            return
        fin_seq = (first + len(seg.payload)) & MASK
        if fin_seq != self.rcv_nxt:
            if seq_gt(fin_seq, self.rcv_nxt):
                self.fin_seq_received = fin_seq  # wait for the hole before it
            return
        self._fin_arrived(seg, now)

    def _deliver(self, data: bytes) -> None:
        """In-order data for the user: "Once in the ESTABLISHED state, it is
        possible to deliver segment data to user RECEIVE buffers ... RCV.NXT is
        advanced" (RFC 9293 §3.10.7.4, seventh)."""
        self.rcvq.append(data)
        n = len(data)
        self.rcv_nxt = (self.rcv_nxt + n) & MASK
        events = self._events
        if events and events[-1].__class__ is DataReceived:
            events[-1].length += n  # one event for a run of arrivals not yet drained
        else:
            events.append(DataReceived(n))
        fin = self.fin_seq_received
        if fin is not None:
            if fin == self.rcv_nxt:
                self._fin_arrived(None, self.now)
            elif seq_lt(fin, self.rcv_nxt):
                # Data ran past a FIN held ahead of a hole: that was not the end of
                # the stream (Linux drops such a FIN from its out-of-order queue).
                self.fin_seq_received = None

    def _fin_arrived(self, seg: TcpSegment | None, now: float) -> None:
        """Eighth, check the FIN bit: "advance RCV.NXT over the FIN, and send an
        acknowledgment for the FIN"."""
        self.fin_seq_received = self.rcv_nxt
        self.rcv_nxt = (self.rcv_nxt + 1) & MASK
        self._ack_now = True
        self._events.append(PeerClosed())
        cause = describe(seg) if seg else "recv FIN (reassembled)"
        st = self.state
        if st in (State.SYN_RECEIVED, State.ESTABLISHED):
            self._set_state(State.CLOSE_WAIT, Cause.SEGMENT, cause, seg)  # "Enter the CLOSE-WAIT state."
        elif st is State.FIN_WAIT_1:
            # "If our FIN has been ACKed (perhaps in this segment), then enter
            # TIME-WAIT, start the time-wait timer, turn off the other timers;
            # otherwise, enter the CLOSING state."
            if self._our_fin_acked():
                self._set_state(State.TIME_WAIT, Cause.SEGMENT, cause, seg)
            else:
                self._set_state(State.CLOSING, Cause.SEGMENT, cause, seg)
        elif st is State.FIN_WAIT_2:
            self._set_state(State.TIME_WAIT, Cause.SEGMENT, cause, seg)  # "Enter the TIME-WAIT state."


def set_header_prediction(on: bool) -> None:
    """Turn the header-prediction fast path on (the default) or off, for every
    connection: with it off, each segment takes the general path of RFC 9293
    §3.10.7, which tests compare it against."""
    global _PREDICTED_STATE
    _PREDICTED_STATE = State.ESTABLISHED if on else None


# What each timer does when it fires.
_TIMER_HANDLERS: dict[Timer, Callable[[Connection, float], None]] = {
    Timer.RETRANSMIT: Connection._on_retransmit,
    Timer.LOSS_PROBE: Connection._on_loss_probe,
    Timer.PERSIST: Connection._on_persist,
    Timer.DELAYED_ACK: Connection._on_delayed_ack,
    Timer.KEEPALIVE: Connection._on_keepalive,
    Timer.TIME_WAIT: Connection._on_time_wait,
    Timer.FIN_WAIT_2: Connection._on_fin_wait_2,
}


def dropped_unread(seg: TcpSegment, walk: int | None = AUTH_OPTION_WALK) -> bool:
    """Would Linux drop ``seg`` before any socket reads it, for an option of bad
    length? Linux reads options up to such an option and keeps the segment
    (tcp_parse_options: "silly options", "don't parse partial options"), but since 6.7
    a kernel built with TCP-MD5 or TCP-AO first walks the options for a signature while
    ``walk`` bytes are left (tcp_do_parse_auth_options: 18, or 5 with TCP-AO), and a bad
    length met there drops the segment (SKB_DROP_REASON_TCP_AUTH_HDR): for a socket in
    any state but TIME-WAIT, and for the reset a closed port would send.
    ``walk`` None: never (see TcpConfig.auth_option_walk)."""
    bad = seg.malformed_option
    return bad is not None and walk is not None and len(bad.raw) >= walk


def reset_for(seg: TcpSegment, auth_option_walk: int | None = AUTH_OPTION_WALK
              ) -> TcpSegment | None:
    """The reply to a segment for a connection that does not exist (RFC 9293
    §3.10.7.1): "If the incoming segment has an ACK field, the reset takes its
    sequence number from the ACK field of the segment, otherwise the reset has
    sequence number zero and the ACK field is set to the sum of the sequence
    number and segment length of the incoming segment." A RST is never answered,
    nor a segment Linux drops unread for an option of bad length (``dropped_unread``:
    tcp_v4_send_reset makes the same walk and sends nothing)."""
    if seg.flags & RST or dropped_unread(seg, auth_option_walk):
        return None
    if seg.flags & ACK:
        return TcpSegment(seg.dst_port, seg.src_port, seg.ack, 0, RST, 0)
    return TcpSegment(seg.dst_port, seg.src_port, 0, (seg.seq + seg.seg_len) & MASK,
                      RST | ACK, 0)


__all__ = ["Connection", "TcpUsageError", "dropped_unread", "reset_for"]
