"""When a receiver acknowledges: delayed ACKs (RFC 1122 §4.2.3.2, RFC 9293
§3.8.6.3, RFC 5681 §4.2) and Linux's quick-ACK mode.

The connection asks ``on_data`` whether in-order data it just took is ACKed at
once (else the delayed-ACK timer is armed here), tells ``on_ack_sent`` when any
segment carried an ACK, and ``forget`` when the timer fired.

Layer rule: imports only timers and netemu.wire (tcb.py only for type checking);
reads the connection's RCV.NXT, Last.ACK.sent, unread bytes and RTO.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from ..wire.seq import MASK
from .timers import Timer

if TYPE_CHECKING:
    from .tcb import Tcb


class AckPolicy:
    """The delayed-ACK state of one connection."""

    __slots__ = ("_last_data_recv", "conn", "delay", "pending", "quickack", "rcv_mss")

    def __init__(self, conn: Tcb) -> None:
        self.conn = conn
        config = conn.config
        self.delay = config.delayed_ack_time
        self.pending = False  # an ACK is owed, the delayed-ACK timer armed
        self.quickack = 0  # segments still to be ACKed at once
        self.rcv_mss = min(536, config.mss)  # the peer's full segment, as seen (Linux rcv_mss)
        self._last_data_recv: float | None = None

    def on_data(self, n: int, now: float) -> bool:
        """``n`` in-order bytes arrived (no hole involved). Returns whether to
        ACK at once.

        RFC 1122 §4.2.3.2: "A TCP SHOULD implement a delayed ACK, but an ACK
        should not be excessively delayed; in particular, the delay MUST be less
        than 0.5 seconds, and in a stream of full-sized segments there SHOULD be
        an ACK for at least every second segment." RFC 5681 §4.2 repeats it.
        Like Linux, the first segments of a transfer (and after a pause longer
        than the RTO) are ACKed at once ("quick ACK"), so that slow start is not
        held back by the delayed-ACK timer."""
        c = self.conn
        rcv_mss = self.rcv_mss
        if n > rcv_mss:
            mss = c.config.mss
            self.rcv_mss = rcv_mss = n if n < mss else mss
        delay = self.delay
        if not delay:
            return True
        last = self._last_data_recv
        self._last_data_recv = now
        if last is None or now - last > c.rtt.rto:
            self.quickack = c.config.quickack_segments
        if self.quickack > 0:
            self.quickack -= 1
            return True
        if (c.rcv_nxt - c.last_ack_sent) & MASK > rcv_mss and 2 * c.rcvq.held <= c.config.rcv_buf:
            # A second full-sized segment: ACK both, as long as the buffer is
            # no more than half full. Linux's __tcp_ack_snd_check sends this
            # ACK only if "right edge of window advances far enough (tcp_recvmsg()
            # will send ACK otherwise)"; its window is held below the free space
            # (rcv_ssthresh) until the buffer is half full (__tcp_select_window),
            # ours is all the free space, so half full is where the two agree. A
            # reader that lags past that gets its ACK when it reads (read()) or
            # from the delayed-ACK timer.
            return True
        if not self.pending:
            self.pending = True
            c.timers.arm(Timer.DELAYED_ACK, now + delay)
        return False

    def on_duplicate(self) -> None:
        """Data we had acknowledged arrived again: our ACK was lost or late. Like
        Linux, ACK the next segments at once (tcp_enter_quickack_mode)."""
        self.quickack = self.conn.config.quickack_segments

    def owed_on_read(self) -> bool:
        """The reader freed space with an ACK still delayed: Linux's
        tcp_cleanup_rbuf sends it if "Once-per-two-segments ACK was not sent by
        tcp_input.c" (the window did not allow it)."""
        c = self.conn
        return self.pending and (c.rcv_nxt - c.last_ack_sent) & MASK > self.rcv_mss

    def on_ack_sent(self) -> None:
        """A segment carried our ACK: nothing is owed any more."""
        self.pending = False
        self.conn.timers.disarm(Timer.DELAYED_ACK)

    def forget(self) -> None:
        """The delayed-ACK timer fired (the caller sends the ACK if still owed), or
        the connection turned its timers off."""
        self.pending = False
