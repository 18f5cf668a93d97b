"""A netem-style impairment pipeline for one direction, sans-IO.

``push(frame, now)`` decides a frame's fate (lost, corrupted, duplicated, and
when it leaves: delay, jitter, reordering, rate, queue limit) and
``due(now)`` hands back the frames whose time has come; ``next_deadline()``
tells the host when to look again. Time is an argument and the random source
is seeded, so a run with the same seed and times is the same run.

Stage order and semantics follow Linux netem (sch_netem.c, netem_enqueue):
duplicate → loss → corrupt → queue limit → delay/jitter with reordering →
rate. Reordering, as in netem, needs a delay: a frame picked for reordering
("reorder P% [gap N]") skips the delay and so overtakes delayed ones.
"""

from __future__ import annotations

import heapq
import random
from dataclasses import dataclass, fields

from .model import DISTRIBUTIONS, CorrelatedRandom, GilbertElliott, jitter_sample


@dataclass
class ImpairConfig:
    """netem's parameters, with its names. Probabilities are 0..1, times seconds,
    rate bits per second (0: unlimited)."""

    loss: float = 0.0
    loss_correlation: float = 0.0
    # Gilbert-Elliott (netem `loss gemodel p r 1-h 1-k`): used when ge_p is set.
    ge_p: float | None = None
    ge_r: float = 1.0
    ge_loss_bad: float = 1.0  # 1-h
    ge_loss_good: float = 0.0  # 1-k
    delay: float = 0.0
    jitter: float = 0.0
    delay_correlation: float = 0.0
    distribution: str = "uniform"
    reorder: float = 0.0
    reorder_correlation: float = 0.0
    gap: int = 0
    duplicate: float = 0.0
    duplicate_correlation: float = 0.0
    corrupt: float = 0.0
    corrupt_correlation: float = 0.0
    rate: float = 0.0
    packet_overhead: int = 0  # bytes added to each frame for the rate (negative allowed)
    limit: int = 1000  # frames waiting at most (netem's default)
    corrupt_offset: int = 14  # flip bits after the Ethernet header: IP or TCP checks fail

    def __post_init__(self) -> None:
        for name in (
            "loss",
            "loss_correlation",
            "reorder",
            "duplicate",
            "corrupt",
            "delay_correlation",
            "reorder_correlation",
            "duplicate_correlation",
            "corrupt_correlation",
            "ge_r",
            "ge_loss_bad",
            "ge_loss_good",
        ):
            v = getattr(self, name)
            if not 0.0 <= v <= 1.0:
                raise ValueError(f"{name} must be between 0 and 1 (got {v})")
        if self.ge_p is not None and not 0.0 <= self.ge_p <= 1.0:
            raise ValueError(f"ge_p must be between 0 and 1 (got {self.ge_p})")
        for name in ("delay", "jitter", "rate"):
            if getattr(self, name) < 0:
                raise ValueError(f"{name} must not be negative")
        if self.distribution not in DISTRIBUTIONS:
            raise ValueError(f"distribution must be one of {', '.join(DISTRIBUTIONS)}")
        if self.limit < 1:
            raise ValueError("limit must be at least 1")

    @property
    def active(self) -> bool:
        """False when every stage is off: the host may then bypass the pipeline."""
        default = ImpairConfig.__new__(ImpairConfig)
        for f in fields(self):
            object.__setattr__(default, f.name, f.default)
        return any(
            getattr(self, f.name) != getattr(default, f.name)
            for f in fields(self)
            if f.name not in ("limit", "corrupt_offset", "distribution")
        )


@dataclass
class ImpairStats:
    pushed: int = 0
    delivered: int = 0
    lost: int = 0
    duplicated: int = 0
    corrupted: int = 0
    reordered: int = 0
    overlimit: int = 0


@dataclass(frozen=True, slots=True)
class Fate:
    """What happened to one pushed frame (for the trace)."""

    lost: bool = False
    why: str = ""
    copies: int = 1
    corrupted: bool = False


_PASSED = Fate()  # the usual fate, not made anew for every frame


class Impairment:
    def __init__(self, config: ImpairConfig | None = None, *, seed: int | None = 0) -> None:
        self.config = c = config or ImpairConfig()
        self.rng = rng = random.Random(seed)
        self._loss = CorrelatedRandom(rng, c.loss_correlation)
        self._dup = CorrelatedRandom(rng, c.duplicate_correlation)
        self._corrupt = CorrelatedRandom(rng, c.corrupt_correlation)
        self._delay = CorrelatedRandom(rng, c.delay_correlation)
        self._reorder = CorrelatedRandom(rng, c.reorder_correlation)
        self._ge = (
            GilbertElliott(rng, c.ge_p, c.ge_r, c.ge_loss_bad, c.ge_loss_good)
            if c.ge_p is not None
            else None
        )
        self._queue: list[tuple[float, int, bytes]] = []
        # No delay, jitter or rate: every frame may leave as soon as it is pushed, so
        # the frames wait in order in a plain list, not in the time-ordered heap.
        self._immediate = not (c.delay or c.jitter or c.rate)
        self._ready: list[bytes] = []
        self._ready_at = 0.0  # when the first of _ready was pushed
        self._seq = 0
        self._counter = 0  # frames since the last reordered one (netem's q->counter)
        self._last_departure = 0.0  # the rate stage's clock
        self.stats = ImpairStats()

    def __len__(self) -> int:
        return len(self._queue) + len(self._ready)

    def push(self, frame: bytes, now: float) -> Fate:
        c = self.config
        st = self.stats
        st.pushed += 1
        copies, lost, why, corrupted = 1, False, "", False
        # 1. duplicate: "a copy is made and goes through the rest on its own".
        if c.duplicate and self._dup() < c.duplicate:
            copies = 2
            st.duplicated += 1
        # 2. loss (random with correlation, or Gilbert-Elliott).
        if self._ge is not None:
            if self._ge.lost():
                lost, why = True, "loss (Gilbert-Elliott)"
        elif c.loss and self._loss() < c.loss:
            lost, why = True, "loss"
        if lost:
            st.lost += 1
            copies -= 1
            if not copies:
                return Fate(lost, why, copies, corrupted)
        # 3. corrupt: flip one bit past the link header.
        if c.corrupt and self._corrupt() < c.corrupt and len(frame) > c.corrupt_offset:
            rng = self.rng
            i = c.corrupt_offset + rng.randrange(len(frame) - c.corrupt_offset)
            b = bytearray(frame)
            b[i] ^= 1 << rng.randrange(8)
            frame = bytes(b)
            corrupted = True
            st.corrupted += 1
        queued = 0
        for _ in range(copies):
            # 4. queue limit: tail drop.
            if len(self) >= c.limit:
                st.overlimit += 1
                lost, why = True, "queue limit"
                continue
            self._enqueue(frame, now)
            queued += 1
        if queued == 1 and not (lost or corrupted):
            return _PASSED
        return Fate(lost, why, queued, corrupted)

    def _enqueue(self, frame: bytes, now: float) -> None:
        if self._immediate:
            if not self._ready:
                self._ready_at = now
            self._ready.append(frame)
            return
        c = self.config
        # 5. delay and jitter, unless reordered (netem: "if (q->gap == 0 || q->counter <
        # q->gap - 1 || ...) delay it, else send it now").
        t = now
        if c.delay or c.jitter:
            if (
                c.reorder
                and (c.gap == 0 or self._counter >= c.gap - 1)
                and self._reorder() < c.reorder
            ):
                self._counter = 0
                self.stats.reordered += 1
            else:
                self._counter += 1
                t = now + max(
                    jitter_sample(self.rng, self._delay(), c.delay, c.jitter, c.distribution), 0.0
                )
        # 6. rate: frames leave one after the other at the link's speed.
        if c.rate:
            start = max(t, self._last_departure)
            t = start + (len(frame) + c.packet_overhead) * 8 / c.rate
            self._last_departure = t
        self._seq += 1
        heapq.heappush(self._queue, (t, self._seq, frame))

    def due(self, now: float) -> list[bytes]:
        if self._immediate:
            out, self._ready = self._ready, []
            self.stats.delivered += len(out)
            return out
        q = self._queue
        out = []
        while q and q[0][0] <= now:
            out.append(heapq.heappop(q)[2])
        self.stats.delivered += len(out)
        return out

    def next_deadline(self) -> float | None:
        if self._ready:
            return self._ready_at
        return self._queue[0][0] if self._queue else None
