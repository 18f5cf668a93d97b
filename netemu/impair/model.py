"""The random processes of Linux netem (net/sched/sch_netem.c), seeded.

Kept apart from the pipeline so each can be checked on its own statistics.
"""

from __future__ import annotations

import math
import random


class CorrelatedRandom:
    """Uniform draws in [0, 1) with correlation ``rho`` between successive ones.

    netem's get_crandom() mixes draws, next = (1 - rho)·U + rho·last, which pulls
    every value towards 0.5 and so changes the rate: 20 % loss with 75 %
    correlation loses 0.2 % of packets (measured; the kernel documents this
    flaw). Here, with probability rho the last draw is repeated, else a fresh one
    is taken: each draw stays uniform (the configured rate holds) and equal
    draws come in runs, which is what a user asking for correlation wants.
    """

    __slots__ = ("last", "rho", "rng")

    def __init__(self, rng: random.Random, correlation: float = 0.0) -> None:
        self.rng = rng
        self.rho = correlation
        self.last = rng.random()

    def __call__(self) -> float:
        rng = self.rng
        if self.rho and rng.random() < self.rho:
            return self.last
        self.last = rng.random()
        return self.last


class GilbertElliott:
    """netem's `loss gemodel p r 1-h 1-k`: a two-state Markov chain. In Good, a
    packet is lost with probability 1-k; in Bad, with 1-h. Good→Bad with p,
    Bad→Good with r, so bursts in Bad last 1/r packets on average."""

    __slots__ = ("bad", "loss_bad", "loss_good", "p", "r", "rng")

    def __init__(
        self, rng: random.Random, p: float, r: float, loss_bad: float = 1.0, loss_good: float = 0.0
    ) -> None:
        self.rng = rng
        self.p, self.r = p, r
        self.loss_bad, self.loss_good = loss_bad, loss_good
        self.bad = False

    def lost(self) -> bool:
        rng = self.rng
        # netem decides the state first, then the loss in the new state.
        if self.bad:
            if rng.random() < self.r:
                self.bad = False
        elif rng.random() < self.p:
            self.bad = True
        return rng.random() < (self.loss_bad if self.bad else self.loss_good)


DISTRIBUTIONS = ("uniform", "normal", "pareto", "paretonormal")


def jitter_sample(rng: random.Random, u: float, mu: float, sigma: float, dist: str) -> float:
    """A delay of mean ``mu`` and spread ``sigma`` (netem's tabledist()).

    ``u`` is the (possibly correlated) uniform draw. uniform: mu ± sigma;
    normal: Gaussian; pareto: a Pareto tail of mean mu; paretonormal: netem's
    mix of the two (a quarter Pareto, three quarters normal)."""
    if not sigma:
        return mu
    if dist == "uniform":
        return mu + (2.0 * u - 1.0) * sigma
    if dist == "normal":
        return rng.gauss(mu, sigma)
    if dist == "pareto":
        # Pareto with shape 3: mean = scale·3/2, sd = scale·√3/2 → scale from sigma.
        scale = sigma * 2 / math.sqrt(3)
        return mu - scale * 1.5 + scale / max(1.0 - u, 1e-12) ** (1 / 3)
    if dist == "paretonormal":
        if u < 0.25:
            return jitter_sample(rng, rng.random(), mu, sigma, "pareto")
        return rng.gauss(mu, sigma)
    raise ValueError(f"unknown delay distribution {dist!r} (one of {', '.join(DISTRIBUTIONS)})")
