"""When a receiver acknowledges: delayed ACKs (RFC 1122 §4.2.3.2, RFC 9293
§3.8.6.3, RFC 5681 §4.2) and Linux's quick-ACK mode.

The connection asks ``on_data`` whether in-order data it just took is ACKed at
once (else the delayed-ACK timer is armed here), tells ``on_ack_sent`` when any
segment carried an ACK, and ``forget`` when the timer fired.

Layer rule: imports only config and timers.
"""

from __future__ import annotations

from .config import TcpConfig
from .timers import Timer, TimerTable


class AckPolicy:
    """The delayed-ACK state of one connection."""

    __slots__ = ("_last_data_recv", "config", "delay", "pending", "quickack", "rcv_mss",
                 "timers")

    def __init__(self, config: TcpConfig, timers: TimerTable) -> None:
        self.config = config
        self.timers = timers
        self.delay = config.delayed_ack_time
        self.pending = False  # an ACK is owed, the delayed-ACK timer armed
        self.quickack = 0  # segments still to be ACKed at once
        self.rcv_mss = min(536, config.mss)  # the peer's full segment, as seen (Linux rcv_mss)
        self._last_data_recv: float | None = None

    def on_data(self, n: int, now: float, unacked: int, held: int, rto: float) -> bool:
        """``n`` in-order bytes arrived (no hole involved), ``unacked`` bytes now
        lie beyond the last ACK we sent, ``held`` are unread. Returns whether to
        ACK at once.

        RFC 1122 §4.2.3.2: "A TCP SHOULD implement a delayed ACK, but an ACK
        should not be excessively delayed; in particular, the delay MUST be less
        than 0.5 seconds, and in a stream of full-sized segments there SHOULD be
        an ACK for at least every second segment." RFC 5681 §4.2 repeats it.
        Like Linux, the first segments of a transfer (and after a pause longer
        than the RTO) are ACKed at once ("quick ACK"), so that slow start is not
        held back by the delayed-ACK timer."""
        rcv_mss = self.rcv_mss
        if n > rcv_mss:
            mss = self.config.mss
            self.rcv_mss = rcv_mss = n if n < mss else mss
        delay = self.delay
        if not delay:
            return True
        last = self._last_data_recv
        self._last_data_recv = now
        if last is None or now - last > rto:
            self.quickack = self.config.quickack_segments
        if self.quickack > 0:
            self.quickack -= 1
            return True
        if unacked > rcv_mss and 2 * held <= self.config.rcv_buf:
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
            self.timers.arm(Timer.DELAYED_ACK, now + delay)
        return False

    def on_duplicate(self) -> None:
        """Data we had acknowledged arrived again: our ACK was lost or late. Like
        Linux, ACK the next segments at once (tcp_enter_quickack_mode)."""
        self.quickack = self.config.quickack_segments

    def owed_on_read(self, unacked: int) -> bool:
        """The reader freed space with an ACK still delayed: Linux's
        tcp_cleanup_rbuf sends it if "Once-per-two-segments ACK was not sent by
        tcp_input.c" (the window did not allow it)."""
        return self.pending and unacked > self.rcv_mss

    def on_ack_sent(self) -> None:
        """A segment carried our ACK: nothing is owed any more."""
        self.pending = False
        self.timers.disarm(Timer.DELAYED_ACK)

    def forget(self) -> None:
        """The delayed-ACK timer fired (the caller sends the ACK if still owed), or
        the connection turned its timers off."""
        self.pending = False
