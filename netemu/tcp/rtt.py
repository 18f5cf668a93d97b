"""Retransmission timeout per RFC 6298, with Linux's floor.

RFC 6298 bounds the RTO itself from below (§2.4: 1 second). Linux bounds the
variance term instead (``tcp_rtt_estimator``: RTTVAR is never below
TCP_RTO_MIN, and RTO = SRTT + RTTVAR), so its RTO is at least SRTT + 200 ms:
a timeout never fires just past a steady round trip because an ACK was
delayed or a queue grew a little. Here: RTO = SRTT + max(G, K*RTTVAR,
rto_min), then clamped to [rto_min, rto_max]. With a long, steady round trip
(200 ms) the RFC's form fired about twenty spurious timeouts per 10 MiB.
"""

from __future__ import annotations

# RFC 6298 §2: alpha = 1/8, beta = 1/4, K = 4; G, the clock granularity, is ours.
ALPHA = 1 / 8
BETA = 1 / 4
K = 4
CLOCK_GRANULARITY = 0.001


class RttEstimator:
    __slots__ = ("backoff", "rto", "rto_max", "rto_min", "rttvar", "srtt")

    def __init__(self, rto_initial: float, rto_min: float, rto_max: float) -> None:
        self.srtt: float | None = None
        self.rttvar = 0.0
        self.rto_min = rto_min
        self.rto_max = rto_max
        # "(2.1) Until a round-trip time (RTT) measurement has been made ... the
        # sender SHOULD set RTO <- 1 second"
        self.rto = rto_initial
        self.backoff = 0

    def sample(self, r: float, expected_samples: int = 1) -> None:
        """A new RTT measurement R (Karn: never from a retransmitted segment).

        ``expected_samples``: with timestamps every ACK yields a sample, and RFC
        7323 Appendix G scales the gains so that one round trip still weighs
        like one sample: "alpha' = alpha / ExpectedSamples, beta' = beta /
        ExpectedSamples", ExpectedSamples = ceiling(FlightSize / (SMSS * 2))."""
        if self.srtt is None:
            # "(2.2) When the first RTT measurement R is made ... SRTT <- R,
            # RTTVAR <- R/2, RTO <- SRTT + max (G, K*RTTVAR)"
            self.srtt = r
            self.rttvar = r / 2
        else:
            # "(2.3) RTTVAR <- (1 - beta) * RTTVAR + beta * |SRTT - R'|
            #        SRTT <- (1 - alpha) * SRTT + alpha * R'"
            if expected_samples > 1:
                a, b = ALPHA / expected_samples, BETA / expected_samples
            else:
                a, b = ALPHA, BETA
            self.rttvar = (1 - b) * self.rttvar + b * abs(self.srtt - r)
            self.srtt = (1 - a) * self.srtt + a * r
        self.backoff = 0
        # "(2.3) ... RTO <- SRTT + max (G, K*RTTVAR)", rto_min inside the max as
        # Linux does (see the module's docstring).
        self.rto = self._clamp(self.srtt + max(CLOCK_GRANULARITY, K * self.rttvar, self.rto_min))

    def current(self) -> float:
        """The RTO to arm now, with exponential back-off applied (RFC 6298 §5.5)."""
        return self._clamp(self.rto * (1 << self.backoff))

    def back_off(self) -> None:
        """ "(5.5) The host MUST set RTO <- RTO * 2 ("back off the timer")"."""
        if self.rto * (1 << self.backoff) < self.rto_max:
            self.backoff += 1

    def _clamp(self, rto: float) -> float:
        # "(2.4) ... if it is less than 1 second, then the RTO SHOULD be rounded up
        # to 1 second" — Linux uses 200 ms, and so do our defaults (rto_min); it
        # matters only for the initial and backed-off RTO now.
        # "(2.5) A maximum value MAY be placed on RTO provided it is at least 60 seconds."
        return min(max(rto, self.rto_min), self.rto_max)
