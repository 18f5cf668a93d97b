"""Congestion control behind a small interface: NewReno (RFC 5681) and CUBIC (RFC 9438).

The algorithm owns cwnd and ssthresh and decides how they grow and how far they
fall; the connection owns loss detection and recovery (fast retransmit, RFC 6675
SACK recovery or RFC 6582 NewReno recovery, including NewReno's window
inflation) and tells the algorithm what happened:

- ``on_ack(acked, now)``: bytes newly acknowledged outside recovery (growth);
- ``on_congestion(flight, now)``: a loss detected by duplicate ACKs or SACK:
  set ssthresh and cwnd to the reduced window (recovery starts);
- ``on_timeout(flight, now)``: a retransmission timeout: cwnd to one segment;
- ``restart(now)``: restart after idle (RFC 5681 §4.1).

Sizes are bytes; ``mss`` is the size of a full data segment (SMSS).
"""

from __future__ import annotations

from .rtt import RttEstimator

INFINITE_SSTHRESH = 0x7FFFFFFF  # "arbitrarily high" initially (RFC 5681 §3.1)


class CongestionControl:
    name = "base"

    def __init__(
        self, mss: int, initial_cwnd_segments: int, rtt: RttEstimator | None = None
    ) -> None:
        self.mss = mss
        self.initial_cwnd_segments = initial_cwnd_segments
        # RFC 5681 §3.1 / RFC 6928: the initial window, IW10 as Linux.
        self.cwnd = initial_cwnd_segments * mss
        self.ssthresh = INFINITE_SSTHRESH
        self.rtt = rtt
        self._ca_acked = 0  # bytes acknowledged towards the next CA increment

    def set_mss(self, mss: int) -> None:
        """The segment size became known (handshake): the initial window follows it."""
        self.mss = mss
        self.cwnd = self.initial_cwnd_segments * mss

    @property
    def initial_window(self) -> int:
        return self.initial_cwnd_segments * self.mss

    @property
    def phase(self) -> str:
        return "slow-start" if self.cwnd < self.ssthresh else "congestion-avoidance"

    def slow_start(self, acked: int) -> int:
        """RFC 5681 §3.1: cwnd grows by what each ACK acknowledges, so that it
        doubles per round trip. Counted in bytes acknowledged, as Linux counts
        packets (RFC 3465, appropriate byte counting, which RFC 5681 cites):
        "cwnd += min (N, SMSS)" per ACK would grow only half as fast behind a
        delayed-ACK receiver, and hardly at all behind stretch ACKs. Not beyond
        ssthresh: returns the bytes left over for congestion avoidance."""
        room = self.ssthresh - self.cwnd
        if acked <= room:
            self.cwnd += acked
            return 0
        self.cwnd = self.ssthresh
        return acked - room

    def on_ack(self, acked: int, now: float) -> None:
        raise NotImplementedError

    def on_congestion(self, flight: int, now: float) -> None:
        raise NotImplementedError

    def on_timeout(self, flight: int, now: float) -> None:
        raise NotImplementedError

    def restart(self, now: float) -> None:
        """RFC 5681 §4.1: "TCP SHOULD set cwnd to no more than RW before beginning
        transmission if the TCP has not sent data in an interval exceeding the
        retransmission timeout", RW = min(IW, cwnd)."""
        self.cwnd = min(self.initial_window, self.cwnd)
        self._ca_acked = 0


class NewReno(CongestionControl):
    """RFC 5681 slow start and congestion avoidance; the loss response of RFC 5681
    §3.2 and RFC 6582 (the connection adds NewReno's window inflation)."""

    name = "newreno"

    def on_ack(self, acked: int, now: float) -> None:
        if self.cwnd < self.ssthresh:
            acked = self.slow_start(acked)
            if not acked:
                return
        # RFC 5681 §3.1, congestion avoidance: "cwnd is incremented by roughly
        # 1 full-sized segment per round-trip time", counted in bytes (the
        # byte-counting variant the RFC describes, RFC 3465): one SMSS each
        # time a whole cwnd of data has been acknowledged.
        self._ca_acked += acked
        if self._ca_acked >= self.cwnd:
            self._ca_acked -= self.cwnd
            self.cwnd += self.mss

    def on_congestion(self, flight: int, now: float) -> None:
        # RFC 5681 §3.2 step 2: "ssthresh = max (FlightSize / 2, 2*SMSS)"; the
        # +3*SMSS of step 3 is NewReno's inflation, which the connection adds.
        self.ssthresh = max(flight // 2, 2 * self.mss)
        self.cwnd = self.ssthresh
        self._ca_acked = 0

    def on_timeout(self, flight: int, now: float) -> None:
        # RFC 5681 §3.1, eq. (4) and "cwnd to no more than the loss window, LW,
        # which equals 1 full-sized segment".
        self.ssthresh = max(flight // 2, 2 * self.mss)
        self.cwnd = self.mss
        self._ca_acked = 0


# RFC 9438 §4.1-4.3 constants.
CUBIC_C = 0.4
CUBIC_BETA = 0.7
CUBIC_ALPHA = 3 * (1 - CUBIC_BETA) / (1 + CUBIC_BETA)  # Reno-friendly increase, §4.3


class Cubic(CongestionControl):
    """CUBIC, RFC 9438: after a reduction, cwnd follows the cubic
    W_cubic(t) = C*(t-K)^3 + W_max (eq. 1), concave up to the window where the
    loss happened, then convex beyond it; never slower than Reno (§4.3). Windows
    in the formulas are in segments. Slow start is RFC 5681's (no HyStart++)."""

    name = "cubic"

    def __init__(
        self,
        mss: int,
        initial_cwnd_segments: int,
        rtt: RttEstimator | None = None,
        *,
        fast_convergence: bool = True,
    ) -> None:
        super().__init__(mss, initial_cwnd_segments, rtt)
        self.fast_convergence = fast_convergence
        self.w_max = 0.0  # segments, the window before the last reduction
        self.cwnd_prior = 0.0  # segments, §4.6 (for the Reno-friendly region)
        self.epoch_start: float | None = None
        self.k = 0.0
        self.w_est = 0.0  # §4.3, the Reno-friendly estimate (segments)
        self._after_timeout = False
        self._inc = 0.0  # fractional bytes of growth carried between ACKs

    def w_cubic(self, t: float) -> float:
        """RFC 9438 eq. (1), in segments."""
        return CUBIC_C * (t - self.k) ** 3 + self.w_max

    def on_ack(self, acked: int, now: float) -> None:
        if self.cwnd < self.ssthresh:
            acked = self.slow_start(acked)
            if not acked:
                return
        mss = self.mss
        cwnd_seg = self.cwnd / mss
        if self.epoch_start is None:
            # §4.2: the congestion-avoidance stage starts now.
            self.epoch_start = now
            if self._after_timeout or self.w_max < cwnd_seg:
                # §4.8: after a timeout (or above the old W_max) "K is set to 0,
                # and W_max is set to the congestion window size at the beginning
                # of the current congestion avoidance stage".
                self.k = 0.0
                self.w_max = cwnd_seg
                self._after_timeout = False
            else:
                # eq. (2): K = cubic_root((W_max - cwnd_epoch) / C)
                self.k = ((self.w_max - cwnd_seg) / CUBIC_C) ** (1 / 3)
            self.w_est = cwnd_seg
        t = now - self.epoch_start
        segs = acked / mss
        # §4.3, Reno-friendly region: W_est grows by alpha_cubic segments per
        # window acknowledged (alpha = 1 once W_est reaches cwnd_prior).
        alpha = 1.0 if self.w_est >= self.cwnd_prior else CUBIC_ALPHA
        self.w_est += alpha * segs / cwnd_seg
        if self.w_cubic(t) < self.w_est:
            target = self.w_est
            inc = (target - cwnd_seg) * mss
        else:
            # §4.4/4.5: aim at W_cubic(t + RTT), clamped to [cwnd, 1.5 cwnd];
            # "cwnd MUST be incremented by (target - cwnd)/cwnd" per segment acked.
            rtt = self.rtt.srtt if self.rtt is not None and self.rtt.srtt else 0.1
            target = min(max(self.w_cubic(t + rtt), cwnd_seg), 1.5 * cwnd_seg)
            inc = (target - cwnd_seg) / cwnd_seg * segs * mss
        if inc > 0:
            self._inc += inc
            whole = int(self._inc)
            if whole:
                self.cwnd += whole
                self._inc -= whole

    def _reduce(self) -> None:
        cwnd_seg = self.cwnd / self.mss
        # §4.7 fast convergence: "if cwnd < W_max and fast convergence enabled,
        # further reduce W_max": W_max = cwnd * (1 + beta_cubic) / 2.
        if self.fast_convergence and cwnd_seg < self.w_max:
            self.w_max = cwnd_seg * (1 + CUBIC_BETA) / 2
        else:
            self.w_max = cwnd_seg
        self.cwnd_prior = cwnd_seg
        # §4.6: "ssthresh = cwnd * beta_cubic", at least 2 segments.
        self.ssthresh = max(int(self.cwnd * CUBIC_BETA), 2 * self.mss)
        self.epoch_start = None
        self._inc = 0.0

    def on_congestion(self, flight: int, now: float) -> None:
        self._reduce()
        self.cwnd = self.ssthresh  # §4.6: "cwnd = max(ssthresh, 2)"

    def on_timeout(self, flight: int, now: float) -> None:
        # §4.8: "In the case of a timeout, CUBIC follows Reno to reduce cwnd
        # [RFC5681] but sets ssthresh using beta_cubic".
        self._reduce()
        self.cwnd = self.mss
        self._after_timeout = True

    def restart(self, now: float) -> None:
        super().restart(now)
        self.epoch_start = None


ALGORITHMS: dict[str, type[CongestionControl]] = {"newreno": NewReno, "cubic": Cubic}


def make_cc(
    name: str, mss: int, initial_cwnd_segments: int, rtt: RttEstimator | None = None
) -> CongestionControl:
    try:
        cls = ALGORITHMS[name]
    except KeyError:
        raise ValueError(
            f"unknown congestion control {name!r} (known: {', '.join(ALGORITHMS)})"
        ) from None
    return cls(mss, initial_cwnd_segments, rtt)
