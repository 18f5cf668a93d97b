"""Congestion control behind a small interface (RFC 5681, NewReno per RFC 6582).

The connection tells the algorithm what happened (bytes newly acknowledged, a
loss detected by duplicate ACKs, a retransmission timeout); the algorithm owns
cwnd and ssthresh. Further algorithms plug in by subclassing.
"""

from __future__ import annotations


class CongestionControl:
    name = "base"

    def __init__(self, mss: int, initial_cwnd_segments: int) -> None:
        self.mss = mss
        # RFC 5681 §3.1 / RFC 6928: IW = min(10*MSS, max(2*MSS, 14600)) for IW10.
        self.cwnd = initial_cwnd_segments * mss
        self.ssthresh = 0x7FFFFFFF  # "arbitrarily high" initially (RFC 5681 §3.1)
        self.in_recovery = False

    @property
    def phase(self) -> str:
        if self.in_recovery:
            return "fast-recovery"
        return "slow-start" if self.cwnd < self.ssthresh else "congestion-avoidance"

    def on_ack(self, acked: int, flight: int, now: float) -> None:
        raise NotImplementedError

    def on_loss(self, flight: int, now: float) -> None:
        """Loss detected by the duplicate-ACK threshold: enter fast recovery."""
        raise NotImplementedError

    def on_recovery_exit(self) -> None:
        raise NotImplementedError

    def on_timeout(self, flight: int, now: float) -> None:
        raise NotImplementedError


class NewReno(CongestionControl):
    name = "newreno"

    def on_ack(self, acked: int, flight: int, now: float) -> None:
        if self.in_recovery:
            # RFC 6582 §3.2 step 3 (partial ACK): "deflate the congestion window by
            # the amount of new data acknowledged ... then add back SMSS bytes".
            self.cwnd = max(self.cwnd - acked + self.mss, self.mss)
            return
        if self.cwnd < self.ssthresh:
            # RFC 5681 §3.1 (slow start): "cwnd += min (N, SMSS)"
            self.cwnd += min(acked, self.mss)
        else:
            # RFC 5681 §3.1 (congestion avoidance): "cwnd += SMSS*SMSS/cwnd"
            self.cwnd += max(1, self.mss * self.mss // self.cwnd)

    def on_loss(self, flight: int, now: float) -> None:
        # RFC 5681 §3.2 step 2: "ssthresh = max (FlightSize / 2, 2*SMSS)";
        # step 3: "cwnd = ssthresh + 3*SMSS".
        self.ssthresh = max(flight // 2, 2 * self.mss)
        self.cwnd = self.ssthresh + 3 * self.mss
        self.in_recovery = True

    def on_dupack_in_recovery(self) -> None:
        # RFC 5681 §3.2 step 4: "For each additional duplicate ACK received ...
        # cwnd is incremented by SMSS" (window inflation).
        self.cwnd += self.mss

    def on_recovery_exit(self) -> None:
        # RFC 6582 §3.2 step 3 (full ACK): "Set cwnd to ... ssthresh".
        self.cwnd = self.ssthresh
        self.in_recovery = False

    def on_timeout(self, flight: int, now: float) -> None:
        # RFC 5681 §3.1, eq. (4) and "cwnd to no more than the loss window, LW,
        # which equals 1 full-sized segment".
        self.ssthresh = max(flight // 2, 2 * self.mss)
        self.cwnd = self.mss
        self.in_recovery = False
