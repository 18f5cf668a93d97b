"""Loss recovery of a sender: duplicate ACKs, fast retransmit and recovery
(RFC 5681 §3.2 with RFC 6582 NewReno, or RFC 6675 with SACK), lost
retransmissions, and the tail loss probe (RFC 8985 §7).

In the shape of aioquic's ``QuicPacketRecovery``: the connection calls it only
through its entry points (``on_sack``, ``on_new_ack``, ``on_duplicate_ack``,
``on_rto``, ``output``, and for the probe ``arm_loss_probe``,
``on_loss_probe_timer``); it reads the connection's sequence variables and forms
segments through it, and decides which bytes go again and how cwnd reacts (how
far cwnd falls and how it grows is the congestion control's, cc.py).

Layer rule: below connection.py; imports only events, sack, timers and
netemu.wire (tcb.py only for type checking).
"""

from __future__ import annotations

import enum
from typing import TYPE_CHECKING

from ..wire.seq import MASK, seq_diff, seq_ge, seq_gt, seq_le, seq_lt
from ..wire.tcp import TcpSegment
from .events import CongestionChanged
from .sack import Scoreboard
from .timers import Timer

if TYPE_CHECKING:
    from .tcb import Tcb

# RFC 8985 §7.2 WCDelAckT, "the worst-case delayed ACK timer": Linux's TCP_RTO_MIN.
WORST_CASE_DELAYED_ACK = 0.2


class RecoveryMode(enum.Enum):
    """Which loss recovery is in progress (Recovery.mode; None: none)."""

    NEWRENO = "newreno"  # RFC 6582
    SACK = "sack"  # RFC 6675


NEWRENO = RecoveryMode.NEWRENO
SACK = RecoveryMode.SACK


class Recovery:
    """The sender's loss recovery state for one connection."""

    def __init__(self, conn: Tcb) -> None:
        self.conn = conn
        self.scoreboard = Scoreboard(conn.config.dupack_threshold)
        self.mode: RecoveryMode | None = None  # while recovering a loss
        self.dupacks = 0
        self.recover = 0  # RFC 6582 "recover", RFC 6675 "RecoveryPoint"
        self.high_rxt = 0  # RFC 6675 HighRxt (just past the highest octet retransmitted)
        self.rescue_rxt: int | None = None  # RFC 6675 RescueRxt
        self.rtx_fence = 0  # SND.MAX when the latest retransmission went out
        self.fast_retransmit = False  # send the head segment once, now
        self.phase = "slow-start"  # as last reported by CongestionChanged
        # RFC 8985 §7 tail loss probe.
        self.tlp_arm = False  # (re)arm the probe timer when segments are produced
        self.tlp_send = 0  # the probe to send now: 1 new data, 2 the last segment again
        self.tlp_high: int | None = None  # TLPHighRxt: SND.MAX when the probe went out
        self.tlp_rtx = False  # the outstanding probe was a retransmission
        self.tlp_dsack = False  # ... and a D-SACK said it was not needed

    def start(self, iss: int) -> None:
        """The send sequence space begins at ``iss``: RFC 6582 §3.2 step 1."""
        self.recover = self.high_rxt = self.scoreboard.una = iss

    def cc_event(self, cause: str, phase: str | None = None) -> None:
        """Report cwnd, ssthresh and phase (a CongestionChanged event)."""
        cc = self.conn.cc
        if phase is None:
            phase = "fast-recovery" if self.mode else cc.phase
        self.phase = phase
        self.conn.report(CongestionChanged(cc.cwnd, cc.ssthresh, phase, cause))

    # ------------------------------------------------------------------ ACKs
    def on_sack(self, ack: int, blocks: tuple[tuple[int, int], ...]) -> int:
        """An ACK arrived with these SACK blocks (possibly none), before SND.UNA
        moves. RFC 6675 §5: "Upon the receipt of any ACK containing SACK
        information, the scoreboard MUST be updated via the Update () routine."
        Returns how many octets were newly SACKed."""
        newly = self.scoreboard.update(blocks, self.conn.snd_max) if blocks else 0
        if self.tlp_high is not None:
            self._tlp_ack(ack, blocks)
        return newly

    def on_sacked(self) -> None:
        """After the ACK's other processing, when it SACKed new octets."""
        c = self.conn
        if self.mode is SACK:
            self._detect_lost_retransmissions()
        if c.snd_max != c.snd_una:
            # RFC 6675 §2: "a segment that arrives carrying a SACK block that
            # identifies previously unacknowledged and un-SACKed octets between
            # HighACK and HighData" is a duplicate acknowledgment, "even if it
            # carries new data, changes the advertised window, or moves the
            # cumulative acknowledgment point".
            self.on_duplicate_ack()

    def on_new_ack(self, ack: int, acked: int, data_acked: int, now: float) -> None:
        """SND.UNA moved on to ``ack`` (``acked`` octets, ``data_acked`` of them data)."""
        sb = self.scoreboard
        if sb.ranges:
            sb.advance(ack)
        else:
            sb.una = ack
        self.tlp_arm = True
        mode = self.mode
        if mode:
            if seq_le(self.recover, ack):
                # RFC 6675 (A) / RFC 6582 §3.2 step 3: a cumulative ACK of the
                # recovery point ends loss recovery.
                self._exit()
            elif mode is NEWRENO:
                # RFC 6582 §3.2 step 3, partial acknowledgment: "retransmit the
                # first unacknowledged segment ... deflate the congestion window
                # by the amount of new data acknowledged by the Cumulative
                # Acknowledgment field. If the partial ACK acknowledges at least
                # one SMSS of new data, then add back SMSS bytes".
                c = self.conn
                cc = c.cc
                cc.cwnd = max(cc.cwnd - acked, c.smss)
                if acked >= c.smss:
                    cc.cwnd += c.smss
                self.fast_retransmit = True
            # (SACK: RFC 6675 (B)-(C) happen when segments are produced.)
        else:
            self.dupacks = 0
            if data_acked:
                cc = self.conn.cc
                cc.on_ack(data_acked, now)
                phase = self.phase
                if phase != cc.phase and phase != "congestion-avoidance":
                    # After a timeout ("loss") the first new ACK resumes slow
                    # start; slow start ends when cwnd reaches ssthresh.
                    self.cc_event(
                        "ssthresh reached"
                        if phase == "slow-start"
                        else "new data acknowledged after the timeout"
                    )

    def on_duplicate_ack(self) -> None:
        """A duplicate ACK (RFC 5681 §2, or RFC 6675 §2 with SACK): count it, and
        start fast retransmit when it says a segment is lost."""
        self.dupacks += 1
        c = self.conn
        mode = self.mode
        if mode is NEWRENO:
            # RFC 5681 §3.2 step 4: "For each additional duplicate ACK received
            # (after the third), cwnd MUST be incremented by SMSS" (inflation).
            c.cc.cwnd += c.smss
            return
        if mode is not None:
            return  # SACK recovery: pipe, not cwnd, follows the departures
        sb = self.scoreboard
        threshold = c.config.dupack_threshold
        if c.sack_ok and sb.ranges:
            # RFC 6675 §5: "(1) If DupAcks >= DupThresh, go to step (4)... (2) If
            # DupAcks < DupThresh but IsLost (HighACK + 1) returns true ... go to
            # step (4)"; after a timeout, "a new recovery phase ... MUST NOT be
            # initiated until HighACK is greater than or equal to" RecoveryPoint.
            if (self.dupacks >= threshold or sb.is_lost(0, c.smss)) and seq_ge(
                c.snd_una, self.recover
            ):
                self._enter(SACK, "SACK: segment lost")
        elif self.dupacks == threshold and seq_ge(c.snd_una, self.recover):
            # RFC 5681 §3.2 step 2 (fast retransmit) only if the ACK covers more
            # than "recover" (RFC 6582 §3.2 step 2, §4). RFC 6582's recover is
            # "the highest sequence number transmitted", SND.MAX - 1; ours holds
            # SND.MAX, so "covers more than" is >=.
            self._enter(NEWRENO, f"{self.dupacks} duplicate ACKs")

    def on_rto(self, first: bool) -> None:
        """A retransmission timeout (``first``: of this head). RFC 6582 §4 / RFC
        6675 §5.1: leave recovery; "RecoveryPoint MUST be set to HighData", and no
        fast retransmit for the old duplicate ACKs."""
        c = self.conn
        self.dupacks = 0
        if not first:
            # RFC 2018 §8: "the data sender SHOULD turn off all of the SACKed bits"
            # after a timeout, since the receiver may have reneged; we keep them
            # for the first timeout (RFC 6675 §5.1 allows it, as Linux does) and
            # drop them when the head times out again.
            self.scoreboard.clear()
        self.mode = None
        self.recover = c.snd_max
        self.high_rxt = c.snd_una
        self.tlp_high = None
        self.tlp_send = 0
        c.timers.disarm(Timer.LOSS_PROBE)

    def _enter(self, mode: RecoveryMode, cause: str) -> None:
        """Fast retransmit and recovery: RFC 6675 §5 step (4) with SACK, RFC 5681
        §3.2 steps 2-3 with RFC 6582 without."""
        c = self.conn
        self.mode = mode
        c.timers.disarm(Timer.LOSS_PROBE)
        self.tlp_high = None
        # "RecoveryPoint = HighData" / "set recover to the highest sequence number
        # transmitted so far".
        self.recover = c.snd_max
        cc = c.cc
        cc.on_congestion(c.flight_size, c.now)
        if mode is NEWRENO:
            # RFC 5681 §3.2 step 3: "cwnd = ssthresh + 3*SMSS" (inflation by the
            # segments that left the network).
            cc.cwnd = cc.ssthresh + c.config.dupack_threshold * c.smss
        else:
            self.high_rxt = c.snd_una
            self.rescue_rxt = None
        self.fast_retransmit = True
        self.cc_event(cause)

    def _exit(self) -> None:
        c = self.conn
        cc = c.cc
        if self.mode is NEWRENO:
            # RFC 6582 §3.2 step 3, full acknowledgment: "Set cwnd to either (1)
            # min (ssthresh, max(FlightSize, SMSS) + SMSS) or (2) ssthresh".
            cc.cwnd = min(cc.ssthresh, max(c.flight_size, c.smss) + c.smss)
        else:
            cc.cwnd = min(cc.cwnd, cc.ssthresh)
        self.mode = None
        self.dupacks = 0
        self.cc_event("recovered")

    def _detect_lost_retransmissions(self) -> None:
        """A retransmission can be lost too; RFC 6675 then waits for the RTO.
        Like Linux (RACK, RFC 8985 §6.2, here by sequence rather than time): when
        more than (DupThresh - 1) * SMSS of data sent after the latest
        retransmission has been SACKed while holes below HighRxt remain, those
        retransmissions are deemed lost, and NextSeg () may send them again."""
        c = self.conn
        sb = self.scoreboard
        fence = seq_diff(self.rtx_fence, c.snd_una)
        hr = seq_diff(self.high_rxt, c.snd_una)
        if hr <= 0 or fence < 0 or sb.unsacked(0, hr) == 0:
            return
        if sb.sacked_above(fence) > (c.config.dupack_threshold - 1) * c.smss:
            self.high_rxt = c.snd_una
            self.rtx_fence = c.snd_max

    # ------------------------------------------------------------------ output
    def output(self, now: float, out: list[TcpSegment]) -> bool:
        """Retransmissions due now: a loss probe, the fast retransmission, and in
        SACK recovery whatever NextSeg () chooses. Returns whether the connection
        should go on to send from SND.NXT as the windows allow (not in SACK
        recovery, which sends new data itself)."""
        if self.tlp_send:
            self._send_loss_probe(out)
        if self.fast_retransmit:
            self._send_fast_retransmit(out)
        if self.mode is SACK:
            self._output_sack_recovery(out)
            return False
        return True

    def _send_fast_retransmit(self, out: list[TcpSegment]) -> None:
        """RFC 5681 §3.2 step 3 / RFC 6582 / RFC 6675 (4.3): "retransmit the first
        data segment presumed dropped"."""
        c = self.conn
        self.fast_retransmit = False
        n = c.smss
        sb = self.scoreboard
        if sb.ranges:
            nxt = sb.next_sacked(0)
            if nxt is not None and nxt < n:
                n = nxt
        seg = c.range_segment(c.snd_una, n)
        if seg is None:
            return
        out.append(seg)
        c.count_retransmit()
        if self.mode is SACK:
            end = (seg.seq + seg.seg_len) & MASK
            if seq_gt(end, self.high_rxt):
                self.high_rxt = end
            self.rescue_rxt = end
            self.rtx_fence = c.snd_max

    def _output_sack_recovery(self, out: list[TcpSegment]) -> None:
        """RFC 6675 §5 step (C): "If cwnd - pipe >= 1 SMSS, the sender SHOULD
        transmit one or more segments", each chosen by NextSeg ()."""
        c = self.conn
        sb = self.scoreboard
        mss = c.smss
        una = c.snd_una
        top = seq_diff(c.snd_max, una)
        hr = max(seq_diff(self.high_rxt, una), 0)
        pipe = sb.pipe(top, hr, mss)
        cwnd = c.cc.cwnd
        while cwnd - pipe >= mss:
            rescue = False
            # (1) the first unSACKed octet above HighRxt that IsLost ().
            r = sb.next_seg(hr, mss, lost_only=True)
            if r is None:
                # (2) new data, as the receiver's window allows.
                seg = c.new_data_segment()
                if seg is not None:
                    out.append(seg)
                    pipe += seg.seg_len
                    continue
                # (3) the first unSACKed octet above HighRxt, lost or not.
                r = sb.next_seg(hr, mss, lost_only=False)
            if r is None:
                r = self._rescue(una, top, mss)
                if r is None:
                    break
                rescue = True
            off, n = r
            seg = c.range_segment(sb.seq(off), n)
            if seg is None:
                break
            out.append(seg)
            c.count_retransmit()
            self.rtx_fence = c.snd_max
            # (C.2) "HighRxt MUST be set to the highest octet in the transmitted
            # segment" (not for the rescue: "HighRxt MUST NOT be updated").
            if not rescue and off + n > hr:
                hr = off + n
                self.high_rxt = sb.seq(hr)
            pipe += n

    def _rescue(self, una: int, top: int, mss: int) -> tuple[int, int] | None:
        """NextSeg () rule (4): one "rescue" retransmission per recovery: "one
        segment of up to SMSS octets that MUST include the highest outstanding
        unSACKed sequence number", if HighACK > RescueRxt."""
        if self.rescue_rxt is not None and not seq_gt(una, self.rescue_rxt):
            return None
        holes = self.scoreboard.holes(top)
        if not holes:
            return None
        h0, h1 = holes[-1]
        start = max(h0, h1 - mss)
        self.rescue_rxt = self.recover
        return start, h1 - start

    # ------------------------------------------------------------------ tail loss probe
    def arm_loss_probe(self, now: float) -> None:
        """RFC 8985 §7.2: "the sender SHOULD start or restart a loss probe PTO
        timer after transmitting new data ... or upon receiving an ACK that
        cumulatively acknowledges new data", when not in recovery. PTO = 2*SRTT
        plus the worst-case delayed ACK (200 ms) with one segment in flight,
        else two clock ticks (Linux: TCP_TIMEOUT_MIN); never later than the
        RTO. SACK only, as Linux."""
        self.tlp_arm = False
        c = self.conn
        timers = c.timers
        timers.disarm(Timer.LOSS_PROBE)
        srtt = c.rtt.srtt
        if (
            not c.sack_ok
            or not c.config.tail_loss_probe
            or self.mode
            or self.tlp_high is not None
            or c.snd_max == c.snd_una
            or srtt is None
            or not c.sending_data()
        ):
            return
        pto = 2 * srtt
        if c.flight_size <= c.smss:
            pto += WORST_CASE_DELAYED_ACK
        else:
            pto += 0.002
        at = now + pto
        rto_at = timers.get(Timer.RETRANSMIT)
        if rto_at is not None and at > rto_at:
            # "If Now() + PTO > TCP_RTO_expiration(): PTO = TCP_RTO_expiration() -
            # Now()": the probe goes in the RTO's place (Linux: "If RTO is
            # shorter, just schedule TLP in its place"); the timer table runs it
            # first, and it re-arms the RTO.
            at = rto_at
        timers.arm(Timer.LOSS_PROBE, at)

    def on_loss_probe_timer(self, now: float) -> None:
        """RFC 8985 §7.3: "If a previously unsent segment exists AND the receive
        window allows new data to be sent: Transmit that new segment ... Otherwise:
        Retransmit the last segment". Then "the sender MUST re-arm the RTO timer,
        not the PTO timer"."""
        c = self.conn
        if self.mode or c.snd_max == c.snd_una or not c.sending_data():
            return
        unsent = c.sndq.after(c.snd_max)
        room = c.snd_wnd - c.flight_size
        if unsent > 0 and room >= min(unsent, c.smss) and c.snd_nxt == c.snd_max:
            self.tlp_send = 1
        else:
            self.tlp_send = 2
        c.timers.arm(Timer.RETRANSMIT, now + c.rtt.current())

    def _send_loss_probe(self, out: list[TcpSegment]) -> None:
        c = self.conn
        kind, self.tlp_send = self.tlp_send, 0
        seg: TcpSegment | None
        if kind == 1:
            seq = c.snd_max
            n = min(c.smss, c.sndq.after(seq))
            seg = c.data_segment(seq, n, fin=False) if n > 0 else None
        else:
            top = c.flight_size
            start = max(top - c.smss, 0)
            seg = c.range_segment((c.snd_una + start) & MASK, top - start)
            if seg is not None:
                c.count_retransmit()
        if seg is not None:
            out.append(seg)
            self.tlp_high = c.snd_max
            self.tlp_rtx = kind == 2
            self.tlp_dsack = False
            self.tlp_arm = False

    def _tlp_ack(self, ack: int, blocks: tuple[tuple[int, int], ...]) -> None:
        """RFC 8985 §7.4: when the probe is acknowledged, was a loss repaired? A
        D-SACK for the probe says no (RFC 2883); otherwise the probe's
        retransmission repaired a tail loss, and congestion control must react
        once (§7.4.2)."""
        high = self.tlp_high
        if blocks and seq_le(blocks[0][1], ack):
            self.tlp_dsack = True  # a D-SACK: the first block is below SEG.ACK
        if high is not None and seq_lt(ack, high):
            return
        self.tlp_high = None
        if self.tlp_rtx and not self.tlp_dsack and not self.mode:
            c = self.conn
            c.cc.on_congestion(c.flight_size, c.now)
            self.cc_event("loss probe repaired a tail loss")
