"""The transmission control block of one connection (RFC 9293 §3.3.1): its
variables, the parts that hold the rest (send and receive queues, timestamps,
ACK policy, loss recovery, timers), state changes, and the segments formed from
all of it (segments_to_send: SYN, data, retransmissions, FIN, ACKs, windows).

Layer rule: the base of Connection. Event processing (arriving segments in
arrivals.py; user calls and timeouts in connection.py) builds on it; nothing
here reads a segment that arrived, except the SYN options it negotiates.
"""

from __future__ import annotations

from ..wire.seq import MASK, seq_diff, seq_gt, seq_le, seq_lt
from ..wire.tcp import (
    ACK,
    FIN,
    NOP,
    PSH,
    RST,
    SACK_PERMITTED,
    SYN,
    MssOption,
    SackOption,
    TcpOption,
    TcpSegment,
    WindowScaleOption,
)
from .ack_policy import AckPolicy
from .cc import make_cc
from .config import TcpConfig
from .events import (
    Closed,
    Event,
    StateChanged,
)
from .isn import IsnGenerator, ts_offset
from .receive_queue import ReceiveQueue
from .recovery import Recovery
from .rtt import RttEstimator
from .sack import SackBlocks
from .send_queue import SendQueue
from .state import Cause, State, check_transition
from .timers import Timer, TimerTable
from .timestamps import TS_OPTION_LEN, Timestamps

# RFC 7323 §2.3: "the shift count must be limited to 14".
MAX_WSCALE = 14


class Tcb:
    """Variables and output of a TCP endpoint for one 4-tuple (see Connection)."""

    def __init__(
        self,
        local_ip: str,
        local_port: int,
        remote_ip: str,
        remote_port: int,
        config: TcpConfig | None = None,
        *,
        iss: int | None = None,
        isn_generator: IsnGenerator | None = None,
    ) -> None:
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
        # RFC 7323 timestamps: TS.Recent and our clock's offset; Last.ACK.sent.
        self.ts = Timestamps(cfg.timestamps)
        self.ts_ok = False  # both SYNs carried TSopt (RFC 7323 §3.2)
        self.last_ack_sent = 0  # Last.ACK.sent: the ACK field of our latest segment
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
        # Keepalive (RFC 1122 §4.2.3.6).
        self._last_recv = 0.0
        self._ka_probes = 0
        self._force_one = False  # a timer says: one segment now, whatever window or SWS
        self._persist_backoff = 0
        # Output and bookkeeping.
        self.timers = TimerTable()
        self.ack_policy = AckPolicy(self)  # delayed ACK (RFC 1122 §4.2.3.2, RFC 5681 §4.2)
        self._events: list[Event] = []
        self._control: list[TcpSegment] = []  # RSTs and challenge ACKs, sent first
        self._ack_now = False
        self._challenge_acks: tuple[int, int] = (0, 0)  # (second, count), RFC 5961 §7
        self.now = 0.0
        self._sws_min = min(cfg.rcv_buf // 2, cfg.mss)  # RFC 1122 §4.2.3.3 threshold
        self._wf_cache: tuple[int, int, int, int] = (-1, -1, -1, 0)  # _window_field's last

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
        return ts_offset(
            self._isn_generator.secret,
            self.local_ip,
            self.local_port,
            self.remote_ip,
            self.remote_port,
        )

    def _init_send_space(self, now: float) -> None:
        self.iss = self._choose_iss(now)
        self.snd_una = self.snd_nxt = self.snd_max = self.iss
        self.sndq.seq = (self.iss + 1) & MASK
        self.recovery.start(self.iss)
        if self.ts.offered:
            self.ts.offset = self._choose_ts_offset()

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

    def _queue_syn_text(self, syn: TcpSegment) -> None:
        """Text on a SYN, held until ESTABLISHED: only what fits the window our
        SYN,ACK offers (unscaled, RFC 7323 §2.2), as the seventh step trims any
        segment's text to RCV.WND (RFC 9293 §3.10.7.4); the peer sends the rest
        again. (All of it was kept: a 64 KiB SYN filled a 1000-byte buffer.)"""
        wnd = min(self._free_space(), 0xFFFF)
        if syn.payload and wnd:
            self.rcvq.insert(self.rcv_nxt, syn.payload[:wnd], self.rcv_nxt)

    # ------------------------------------------------------------------ state
    def _set_state(
        self, new: State, kind: Cause, cause: str, seg: TcpSegment | None = None
    ) -> None:
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

    def _abort(self, cause: str, kind: Cause = Cause.API) -> None:
        if self.state in (
            State.SYN_RECEIVED,
            State.ESTABLISHED,
            State.FIN_WAIT_1,
            State.FIN_WAIT_2,
            State.CLOSE_WAIT,
        ):
            # Linux sends RST+ACK here; the ACK field only helps the peer accept it.
            self._control.append(self._segment(self.snd_max, RST | ACK))
        if self.state is not State.CLOSED:
            self._to_closed(kind, cause)

    def _awaiting_syn_ack(self) -> bool:
        """Our SYN-ACK is not acknowledged yet: SYN-RECEIVED, or the FIN-WAIT-1
        that a CLOSE in SYN-RECEIVED enters at once (RFC 9293 §3.10.4)."""
        st = self.state
        return st is State.SYN_RECEIVED or (st is State.FIN_WAIT_1 and self.snd_una == self.iss)

    def _our_fin_acked(self) -> bool:
        return self.fin_queued and self.snd_una == (self.fin_seq + 1) & MASK

    def _fin_received(self) -> bool:
        fin = self.fin_seq_received  # (a FIN held ahead of a hole is not received yet)
        return self.state in (State.CLOSE_WAIT, State.LAST_ACK, State.CLOSING, State.TIME_WAIT) or (
            self.state is State.CLOSED and fin is not None and (fin + 1) & MASK == self.rcv_nxt
        )

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

    @property
    def readable(self) -> int:
        return self.rcvq.held

    @property
    def rcv_buf(self) -> bytes:
        """The unread data (a copy; for inspection)."""
        return self.rcvq.unread()

    @property
    def flight_size(self) -> int:
        """SND.MAX - SND.UNA (RFC 5681 FlightSize), never negative."""
        return (self.snd_max - self.snd_una) & MASK  # seq_diff, inlined: SND.UNA =< SND.MAX

    @property
    def fin_seq(self) -> int:
        """The sequence number our FIN takes (meaningful once fin_queued)."""
        return self.sndq.end()

    # ------------------------------------------------------------------ outputs
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
            for s in out:  # (a loop, not any(): no generator per ACK)
                if s.flags & (ACK | RST) == ACK and (s.seq, s.ack, s.window) == (
                    ack.seq,
                    ack.ack,
                    ack.window,
                ):
                    break
            else:
                out.append(ack)
        if (
            out
            and Timer.RETRANSMIT not in self.timers
            and self.snd_max != self.snd_una
            and self.state is not State.CLOSED
        ):
            # (Not for the RST an abort leaves behind: the TCB is gone, and so are its
            # timers, RFC 9293 §3.10.5.)
            self.timers.arm(Timer.RETRANSMIT, now + self.rtt.current())
        if self.recovery.tlp_arm:
            self.recovery.arm_loss_probe(now)
        if st is State.FIN_WAIT_2 and self.read_closed and Timer.FIN_WAIT_2 not in self.timers:
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
        seg = TcpSegment(
            self.local_port,
            self.remote_port,
            self.iss,
            self.rcv_nxt if flags & ACK else 0,
            flags,
            wnd,
            options=tuple(opts),
        )
        if flags & ACK:
            self.rcv_adv = (self.rcv_nxt + wnd) & MASK
            self.last_ack_sent = self.rcv_nxt
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
        if (
            self.snd_max == self.snd_una
            and Timer.PERSIST not in self.timers
            and self.sndq.after(self.snd_nxt) > 0
        ):
            self.timers.arm(Timer.PERSIST, now + self._persist_interval())

    def _output_window(self, now: float, out: list[TcpSegment]) -> None:
        """Send from SND.NXT what the windows allow (RFC 5681 §3, RFC 9293 §3.8.6)."""
        mss = self.smss
        sb = self.recovery.scoreboard
        cwnd, limited = self._send_cwnd(now)
        force, self._force_one = self._force_one, False
        sndq = self.sndq
        buf_len = len(sndq.buf) - sndq.head
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
            if (
                n
                and n < mss
                and not fin_now
                and not force
                and seq == self.snd_max
                and not self._may_send(n, avail, wnd)
            ):
                break
            seg = self.data_segment(seq, n, fin_now)
            if seg is None:
                break
            out.append(seg)
            force = False
            if fin_now:
                break

    def _send_cwnd(self, now: float) -> tuple[int, bool]:
        """The congestion window to send with now, and whether SACKed data leaves
        the flight (limited transmit, or recovery, allows it)."""
        cwnd = self.cc.cwnd
        rec = self.recovery
        dupacks = rec.dupacks
        # Without limited transmit, SACKed data stays in flight until recovery
        # starts, so duplicate ACKs release nothing new.
        limited = not dupacks or rec.mode is not None or self.config.limited_transmit
        if self.snd_una == self.snd_max and self._last_send is not None:
            self._restart_after_idle(now)
            cwnd = self.cc.cwnd
        elif dupacks and not rec.mode and not rec.scoreboard.ranges and limited:
            # RFC 3042 (limited transmit): on the first two duplicate ACKs, new
            # data may go if "the amount of outstanding data would remain less
            # than or equal to the congestion window plus 2 segments". (With
            # SACK, RFC 6675 §5 step (3): SACKed data no longer counts, below.)
            cwnd += min(dupacks, 2) * self.smss
        return cwnd, limited

    def _restart_after_idle(self, now: float) -> None:
        """RFC 5681 §4.1: "TCP SHOULD set cwnd to no more than RW before beginning
        transmission if the TCP has not sent data in an interval exceeding the
        retransmission timeout" (Linux: net.ipv4.tcp_slow_start_after_idle)."""
        if (
            not self.config.slow_start_after_idle
            or self._last_send is None
            or now - self._last_send <= self.rtt.current()
            or self.sndq.after(self.snd_nxt) <= 0
        ):
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
        fin = (
            self.fin_queued
            and data_n < n
            and off + data_n == buffered
            and seq_gt(self.snd_max, self.fin_seq)
        )
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
        sndq = self.sndq
        off = (seq - sndq.seq) & MASK  # seq_diff, inlined
        if off >= 0x80000000:
            return None
        buf = sndq.buf
        start = sndq.head + off
        payload = bytes(memoryview(buf)[start : start + n])  # one copy, not two
        n = len(payload)
        flags = ACK
        if n:
            self._last_send = self.now
            if start + n == len(buf):
                flags |= PSH
        if fin:
            flags |= FIN
            n += 1
        rcv_nxt = self.rcv_nxt
        opts: tuple[TcpOption, ...] = ()
        if self.ts_ok:
            tso = self.ts
            opts = tso.cached
            if tso.cached_at != self.now or opts[2].tsecr != tso.recent:
                opts = tso.options(self.now)
        wf = self._wf_cache  # _window_field's answer, if nothing changed since
        if wf[0] == rcv_nxt and wf[1] == self.rcvq.held and wf[2] == self.rcv_adv:
            window = wf[3]
        else:
            window = self._window_field()
        seg = TcpSegment(
            self.local_port, self.remote_port, seq, rcv_nxt, flags, window, payload, opts
        )
        self.last_ack_sent = rcv_nxt
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
            self.last_ack_sent = self.rcv_nxt
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
            blocks = self._sack_blocks.blocks(
                self.rcvq.ooo, self.rcv_nxt, limit - (dsack is not None)
            )
            if dsack is not None:
                blocks = (dsack, *blocks)
            if blocks:
                opts = (*opts, NOP, NOP, SackOption(blocks))
        return TcpSegment(
            self.local_port,
            self.remote_port,
            seq & MASK,
            self.rcv_nxt if flags & ACK else 0,
            flags,
            self._window_field(),
            payload,
            opts,
        )

    def count_retransmit(self) -> None:
        self._rtt_seq = None  # Karn's algorithm: no sample from a retransmission
        self.total_retransmits += 1

    def _persist_interval(self) -> float:
        return min(self.rtt.rto * (1 << self._persist_backoff), self.config.rto_max)

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
