"""One TCP connection, sans-IO (RFC 9293).

Segments and the current time go in; segments, a deadline and events come out.
Nothing here touches a socket, a clock or a random source it does not own:

    conn = Connection.client(local, remote, config, isn=...)   # or Listener
    conn.connect(now)
    for seg in conn.segments_to_send(now): wire.send(seg)
    conn.receive(seg, now); conn.handle_timer(now); conn.next_deadline()
    for ev in conn.events(): ...

Connection is the orchestrator of RFC 9293 §3.10 event processing, in three
layers, each its own module:
- tcb.py (Tcb): the variables, state changes (checked against state.py's
  TRANSITIONS), and the segments formed from them (segments_to_send);
- arrivals.py (Arrivals): SEGMENT ARRIVES, in the order of RFC 9293 §3.10.7
  (acceptability, RST, SYN, ACK, URG, text, FIN), with header prediction;
- this file (Connection): the user calls (OPEN, SEND, RECEIVE, CLOSE, ABORT)
  and the timeouts, each timer's handler named in one dispatch table.
The single-job parts they delegate to: send_queue.py, receive_queue.py,
timestamps.py (RFC 7323), ack_policy.py (delayed ACK), recovery.py (duplicate
ACKs, NewReno, SACK recovery, tail loss probe), timers.py, with rtt.py (RFC
6298), cc.py (how cwnd falls and grows: NewReno or CUBIC) and sack.py.

Rules:
- API calls (send, shutdown, close, abort) change state at once; timers are armed
  when segments are produced (segments_to_send) or arrive, both of which know `now`.
- Sequence numbers use the modular helpers of netemu.wire.seq, always.
- SND.NXT may move back on a retransmission timeout (as in BSD); SND.MAX is the
  highest sequence number ever sent, and the limit for acceptable ACKs.
"""

from __future__ import annotations

from collections.abc import Callable

from ..wire.seq import MASK
from ..wire.tcp import (
    ACK,
    RST,
    TcpSegment,
)
from .arrivals import Arrivals, dropped_unread
from .config import AUTH_OPTION_WALK, TcpConfig
from .events import (
    TimedOut,
)
from .isn import IsnGenerator
from .state import Cause, State
from .timers import Timer
from .timestamps import TS_OPTION_LEN

KEEPALIVE_STATES = frozenset({State.ESTABLISHED, State.CLOSE_WAIT, State.FIN_WAIT_2})


class TcpUsageError(Exception):
    """A call the connection cannot honour in its state (e.g. send after shutdown)."""


class Connection(Arrivals):
    """A TCP endpoint for one 4-tuple. Build with ``client()`` or ``Listener``."""

    @classmethod
    def client(
        cls,
        local: tuple[str, int],
        remote: tuple[str, int],
        config: TcpConfig | None = None,
        *,
        iss: int | None = None,
        isn_generator: IsnGenerator | None = None,
    ) -> Connection:
        return cls(
            local[0], local[1], remote[0], remote[1], config, iss=iss, isn_generator=isn_generator
        )

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

    def send(self, data: bytes | bytearray | memoryview) -> int:
        """Queue data; returns how many bytes the send buffer took (may be 0)."""
        if self.fin_queued or self.state in (State.CLOSED, State.LISTEN):
            raise TcpUsageError(f"send() after shutdown or in {self.state}")
        return self.sndq.push(data)

    def read(self, max_bytes: int = -1) -> bytes:
        """Take received in-order data; freeing buffer space opens the window."""
        data = self.rcvq.read(max_bytes)
        if not data:
            return data
        # Receiver SWS avoidance (RFC 1122 §4.2.3.3): announce the opened window
        # only once it has grown by min(RCV.BUFF/2, Eff.snd.MSS).
        # Like Linux (tcp_cleanup_rbuf), only when that at least doubles the window.
        # Or an ACK the delayed-ACK timer holds is owed anyway (AckPolicy). Not once
        # the peer's FIN is in, as Linux: "Even if window raised up to infinity, do not
        # send window open ACK in states, where we will not receive more. It is
        # useless." (tcp_cleanup_rbuf) - and in TIME-WAIT, toward a peer already
        # CLOSED, it draws a RST that ends our TIME-WAIT early.
        if (
            self.state.synchronized
            and not self._fin_received()
            and self._window_growth() >= self._sws_threshold()
            and self._free_space() >= 2 * self.rcv_wnd()
        ) or self.ack_policy.owed_on_read():
            self._ack_now = True
        return data

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

    # ------------------------------------------------------------------ timers
    def path_mss(self, mss: int) -> None:
        """The path carries segments of at most ``mss`` bytes after the IP and TCP
        headers (a Packet Too Big's MTU less what the host's IP header takes: RFC
        8201, RFC 1191): what we send is cut to it, never below 64. The window
        stays, in bytes: cwnd is not restarted (Linux's tcp_sync_mss)."""
        if mss >= self.snd_mss:
            return
        self.snd_mss = max(mss, 64)
        self.smss = max(self.snd_mss - (TS_OPTION_LEN if self.ts_ok else 0), 64)
        self.cc.mss = self.smss

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
        limit = (
            self.config.syn_retries
            if st is State.SYN_SENT
            else self.config.synack_retries
            if handshaking
            else self.config.retries2
        )
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
        if self.state.synchronized and self.rcv_nxt != self.last_ack_sent:
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


def reset_for(
    seg: TcpSegment, auth_option_walk: int | None = AUTH_OPTION_WALK
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
    return TcpSegment(seg.dst_port, seg.src_port, 0, (seg.seq + seg.seg_len) & MASK, RST | ACK, 0)


__all__ = ["Connection", "TcpUsageError", "reset_for"]
