"""SEGMENT ARRIVES (RFC 9293 §3.10.7): one arriving segment processed in the
order of the RFC (acceptability, RST, SYN, ACK, URG, text, FIN), each rule
quoting its clause, and header prediction, the fast path that does the same for
the common in-order segment with less work (set_header_prediction turns it off
for tests that compare the two).

Layer rule: builds on tcb.py; connection.py builds on it.
"""

from __future__ import annotations

from ..wire.seq import MASK, seq_diff, seq_gt, seq_in_window, seq_le, seq_lt
from ..wire.tcp import (
    ACK,
    FIN,
    PSH,
    RST,
    SYN,
    MalformedOption,
    SackOption,
    TcpSegment,
    TimestampOption,
)
from .config import AUTH_OPTION_WALK
from .events import (
    Connected,
    ConnectionReset,
    DataReceived,
    PeerClosed,
)
from .state import RECEIVING_STATES, Cause, State
from .tcb import Tcb
from .timers import Timer

# The state in which header prediction runs (Arrivals._predicted): a global, as an
# enum member costs ~50 ns a look on 3.11; None turns the fast path off.
_PREDICTED_STATE: State | None = State.ESTABLISHED
_FLAGS_BUT_PSH = 0xFFF & ~PSH


def describe(seg: TcpSegment) -> str:
    names = [
        n for bit, n in ((SYN, "SYN"), (FIN, "FIN"), (RST, "RST"), (ACK, "ACK")) if seg.flags & bit
    ]
    return "recv " + ("+".join(names) or "segment") + (" with data" if seg.payload else "")


class Arrivals(Tcb):
    """Arriving segments (see Connection)."""

    def receive(self, seg: TcpSegment, now: float) -> None:
        """Process one arriving segment (RFC 9293 §3.10.7)."""
        self.now = now
        self._last_recv = now  # keepalive: anything heard from the peer counts
        self._ka_probes = 0
        st = self.state
        if self._ack_now and self.rcv_nxt != self.last_ack_sent and st.synchronized:
            self._flush_owed_ack()  # an ACK owed for data that arrived before
        if st is _PREDICTED_STATE and self._predicted(seg, now):
            return
        if st is State.CLOSED or st is State.LISTEN:
            return  # the host answers for closed ports (see reset_for)
        opts = seg.options
        if (
            opts
            and opts[-1].__class__ is MalformedOption
            and st is not State.TIME_WAIT
            and dropped_unread(seg, self.config.auth_option_walk)
        ):
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
        if (
            seg.flags & _FLAGS_BUT_PSH != ACK
            or seg.seq != self.rcv_nxt
            or self.rcvq.ooo
            or self.read_closed
            or self.fin_seq_received is not None
            or rec.mode
            or rec.scoreboard.ranges
            or rec.tlp_high is not None
        ):
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
        if ts is not None and not self.ts.on_arrival(ts.tsval, seg.seq, n, self.last_ack_sent, now):
            return False  # PAWS (RFC 7323 §5.3 R1): an old TSval takes the general path
        # Fifth, the ACK field (same order and helpers as _process_ack).
        if d_ack:
            self._ack_advances(ack, now, ts.tsecr if ts is not None else 0)
        elif self.snd_max != una:
            self._maybe_duplicate_ack(seg)
        self._window_update(seg, ack)
        # Seventh, the text: in order, no hole, within the window.
        if n:
            self._deliver(payload, n)
            if self.ack_policy.on_data(n, now):
                self._ack_now = True
        return True

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

    def _receive_syn_sent(self, seg: TcpSegment, now: float) -> None:
        """RFC 9293 §3.10.7.3, SYN-SENT STATE."""
        flags = seg.flags
        ack_ok = False
        if flags & ACK:
            # "If SEG.ACK =< ISS or SEG.ACK > SND.NXT, send a reset (unless the RST
            # bit is set, if so drop the segment and return) <SEQ=SEG.ACK><CTL=RST>"
            if seq_le(seg.ack, self.iss) or seq_gt(seg.ack, self.snd_max):
                if not flags & RST:
                    self._control.append(
                        TcpSegment(self.local_port, self.remote_port, seg.ack, 0, RST, 0)
                    )
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

    def _receive_synchronized(self, seg: TcpSegment, now: float) -> None:
        flags = seg.flags
        arrived = seg  # as it came: for StateChanged, even when its SYN is stripped below
        # SYN-RECEIVED and a retransmitted SYN: our SYN-ACK was lost; send it again.
        # (Not with RST: RST+SYN+ACK at IRS lies outside the window once its SYN would be
        # stripped, and RFC 5961 §3.2 drops such a RST silently; stripping it made the
        # RST land on RCV.NXT and reset the connection.)
        if flags & SYN and seg.seq == self.irs and self._awaiting_syn_ack() and not flags & RST:
            if not flags & ACK:
                self.snd_nxt = self.iss
                return
            # Simultaneous open: the peer's SYN-ACK repeats its SYN, which we hold.
            # "If a segment's contents straddle the boundary between old and new,
            # only the new parts are processed": strip the SYN and go on.
            seg = TcpSegment(
                seg.src_port,
                seg.dst_port,
                (seg.seq + 1) & MASK,
                seg.ack,
                flags & ~SYN,
                seg.window,
                seg.payload,
                seg.options,
            )
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
            self.ts.on_arrival(ts.tsval, seg.seq, seg.seg_len, self.last_ack_sent, now)
        if not acceptable:
            self._unacceptable(seg, now, ts)
            return
        # ---- second, check the RST bit (RFC 5961 §3.2) ----
        if flags & RST:
            self._reset_arrives(seg, now)
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

    def _unacceptable(self, seg: TcpSegment, now: float, ts: TimestampOption | None) -> None:
        """ "If an incoming segment is not acceptable, an acknowledgment should be
        sent in reply (unless the RST bit is set, if so drop the segment and
        return)". Zero-window probes land here and get our window back. An ACK at
        RCV.NXT is still processed ("special allowance should be made to accept
        valid ACKs")."""
        flags = seg.flags
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
        st = self.state
        if st is State.TIME_WAIT and flags & FIN and (seg.seq + seg.seg_len) & MASK == self.rcv_nxt:
            # A retransmitted FIN (it lies just below RCV.NXT, so it fails the
            # test above): "TIME-WAIT STATE: The only thing that can arrive in
            # this state is a retransmission of the remote FIN. Acknowledge it,
            # and restart the 2 MSL timeout." (eighth step)
            self.timers.arm(Timer.TIME_WAIT, now + 2 * self.config.msl)
            return
        if flags & ACK and seg.seq == self.rcv_nxt and st.synchronized:
            self._process_ack(seg, now, None, ts)

    def _reset_arrives(self, seg: TcpSegment, now: float) -> None:
        """An acceptable RST (RFC 5961 §3.2): "1) If the RST bit is set and the
        sequence number is outside the current receive window, silently drop the
        segment. 2) If the RST bit is set and the sequence number exactly matches
        the next expected sequence number (RCV.NXT), then TCP MUST reset the
        connection. 3) ... otherwise send a challenge ACK"."""
        if seg.seq != self.rcv_nxt:
            self._challenge_ack(now)
            return
        st = self.state
        if st is State.SYN_RECEIVED and self.passive:
            # "If this connection was initiated with a passive OPEN ... return this
            # connection to the LISTEN state": the listener forgets it.
            self._to_closed(Cause.SEGMENT, describe(seg), seg)
            return
        if st in (
            State.SYN_RECEIVED,
            State.ESTABLISHED,
            State.FIN_WAIT_1,
            State.FIN_WAIT_2,
            State.CLOSE_WAIT,
        ):
            self._events.append(ConnectionReset(refused=st is State.SYN_RECEIVED))
        # "CLOSING, LAST-ACK, TIME-WAIT: If the RST bit is set, then enter the
        # CLOSED state, delete the TCB, and return."
        self._to_closed(Cause.SEGMENT, describe(seg), seg)

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
        return seq_in_window(seg.seq, self.rcv_nxt, wnd) or seq_in_window(
            (seg.seq + seg_len - 1) & MASK, self.rcv_nxt, wnd
        )

    def _challenge_ack(self, now: float) -> None:
        """RFC 5961 §7: at most challenge_ack_limit challenge ACKs per second."""
        second, count = self._challenge_acks
        if int(now) != second:
            second, count = int(now), 0
        if count < self.config.challenge_ack_limit:
            self._ack_now = True
            count += 1
        self._challenge_acks = (second, count)

    def _process_ack(
        self,
        seg: TcpSegment,
        now: float,
        arrived: TcpSegment | None = None,
        ts: TimestampOption | None = None,
    ) -> bool:
        """Fifth step of RFC 9293 §3.10.7.4. Returns False when the segment is dropped.
        ``arrived`` is the segment as received, when ``seg`` had its SYN stripped;
        ``ts`` its timestamps, when they are on."""
        ack = seg.ack
        tsecr = ts.tsecr if ts is not None else 0
        if self._awaiting_syn_ack():
            return self._ack_of_syn_ack(seg, now, arrived or seg, tsecr)
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
        return self._ack_of_our_fin(seg, now)

    def _ack_of_syn_ack(self, seg: TcpSegment, now: float, arrived: TcpSegment, tsecr: int) -> bool:
        """The fifth step while our SYN-ACK awaits its ACK (SYN-RECEIVED): "If
        SND.UNA < SEG.ACK =< SND.NXT, then enter ESTABLISHED state and continue
        processing ... If the segment acknowledgment is not acceptable, form a
        reset segment <SEQ=SEG.ACK><CTL=RST> and send it." ``arrived`` is the
        segment as received (``seg`` may have had its SYN stripped)."""
        ack = seg.ack
        if not (seq_lt(self.snd_una, ack) and seq_le(ack, self.snd_max)):
            self._control.append(TcpSegment(self.local_port, self.remote_port, ack, 0, RST, 0))
            return False
        self._ack_advances(ack, now, tsecr)
        # RFC 7323 §2.2: "The window field in a segment where the SYN bit is
        # set (i.e., a <SYN> or <SYN,ACK>) MUST NOT be scaled." (A SYN,ACK
        # completes a simultaneous open.)
        self._update_window(seg, scaled=not arrived.flags & SYN)
        self.snd_wl1, self.snd_wl2 = seg.seq, ack
        if self.state is State.SYN_RECEIVED:
            self._set_state(State.ESTABLISHED, Cause.SEGMENT, describe(arrived), arrived)
            self._handshake_completed()
            if self.fin_queued:
                self._set_state(State.FIN_WAIT_1, Cause.SEGMENT, "shutdown() (queued)")
        else:  # FIN-WAIT-1, closed in SYN-RECEIVED: the FIN may be acked too
            self._handshake_completed()
            if self._our_fin_acked() and not (arrived.flags & FIN and seg.seq == self.rcv_nxt):
                self._set_state(State.FIN_WAIT_2, Cause.SEGMENT, describe(arrived), arrived)
        ready = self.rcvq.pop_ready(self.rcv_nxt)  # data that came with the SYN
        if ready:
            self._deliver(ready, len(ready))
            # Seventh step: "Send an acknowledgment of the form
            # <SEQ=SND.NXT><ACK=RCV.NXT><CTL=ACK>" for the data now taken.
            self._ack_now = True
        return True

    def _ack_of_our_fin(self, seg: TcpSegment, now: float) -> bool:
        """The fifth step's rules for the states after our FIN (RFC 9293
        §3.10.7.4); returns False when processing stops here."""
        st = self.state
        fin_acked = self._our_fin_acked()
        if (
            st is State.FIN_WAIT_1
            and fin_acked
            and not (seg.flags & FIN and seg.seq == self.rcv_nxt)
        ):
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
        if 0 < ((seq - wl1) & MASK) < 0x80000000 or (
            wl1 == seq and ((ack - self.snd_wl2) & MASK) < 0x80000000
        ):
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
        acked = (ack - self.snd_una) & MASK  # seq_diff, inlined: SEG.ACK > SND.UNA
        # Drop acknowledged bytes from the send buffer (not the SYN or FIN).
        data_acked = self.sndq.acknowledge(ack)
        self.snd_una = ack
        if (self.snd_nxt - ack) & MASK >= 0x80000000:  # seq_lt(SND.NXT, ack), inlined
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
        if (
            self.snd_max == self.snd_una
            or seg.payload
            or seg.flags & (SYN | FIN)
            or (seg.window << self.snd_wscale) != self.snd_wnd
        ):
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
                payload = payload[: max(room, 0)]
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
                    data = payload + self.rcvq.pop_ready((seq + len(payload)) & MASK)
                    self._deliver(data, len(data))
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
                    if self.ack_policy.on_data(len(payload), now):
                        self._ack_now = True
        if not seg.flags & FIN or st not in RECEIVING_STATES:
            return
        fin_seq = (first + len(seg.payload)) & MASK
        if fin_seq != self.rcv_nxt:
            if seq_gt(fin_seq, self.rcv_nxt):
                self.fin_seq_received = fin_seq  # wait for the hole before it
            return
        self._fin_arrived(seg, now)

    def _deliver(self, data: bytes, n: int) -> None:
        """In-order data for the user: "Once in the ESTABLISHED state, it is
        possible to deliver segment data to user RECEIVE buffers ... RCV.NXT is
        advanced" (RFC 9293 §3.10.7.4, seventh). ``n`` is len(data)."""
        rcvq = self.rcvq
        rcvq.chunks.append(data)
        rcvq.held += n
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
            self._set_state(
                State.CLOSE_WAIT, Cause.SEGMENT, cause, seg
            )  # "Enter the CLOSE-WAIT state."
        elif st is State.FIN_WAIT_1:
            # "If our FIN has been ACKed (perhaps in this segment), then enter
            # TIME-WAIT, start the time-wait timer, turn off the other timers;
            # otherwise, enter the CLOSING state."
            if self._our_fin_acked():
                self._set_state(State.TIME_WAIT, Cause.SEGMENT, cause, seg)
            else:
                self._set_state(State.CLOSING, Cause.SEGMENT, cause, seg)
        elif st is State.FIN_WAIT_2:
            self._set_state(
                State.TIME_WAIT, Cause.SEGMENT, cause, seg
            )  # "Enter the TIME-WAIT state."


def set_header_prediction(on: bool) -> None:
    """Turn the header-prediction fast path on (the default) or off, for every
    connection: with it off, each segment takes the general path of RFC 9293
    §3.10.7, which tests compare it against."""
    global _PREDICTED_STATE
    _PREDICTED_STATE = State.ESTABLISHED if on else None


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
