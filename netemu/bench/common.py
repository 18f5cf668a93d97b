"""Shared timing helpers for the benchmarks.

A rate is calls per second of a callable, timed in batches over a time budget;
the figure kept is the best of several rounds (as ``timeit`` advises: slower
rounds measure the machine's other work, not the code). Benchmarks comparing
two implementations run their rounds interleaved (a, b, a, b, ...), so noise
on a shared machine hits both sides alike; report ratios, not absolute figures.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from itertools import repeat

_clock = time.perf_counter


def batch_size(fn: Callable[[], object], chunk: float = 0.005) -> int:
    """A number of calls of ``fn`` that takes about ``chunk`` seconds (at least 1)."""
    n = 1
    while True:
        t0 = _clock()
        for _ in repeat(None, n):
            fn()
        dt = _clock() - t0
        if dt >= chunk / 4 or n >= 1 << 24:
            return max(1, round(n * chunk / dt)) if dt > 0 else n
        n *= 4


def ops_per_sec(fn: Callable[[], object], seconds: float = 0.1, batch: int | None = None) -> float:
    """One round: call ``fn`` in batches until ``seconds`` have passed; calls per second."""
    if batch is None:
        batch = batch_size(fn)
    calls = 0
    start = _clock()
    deadline = start + seconds
    while True:
        for _ in repeat(None, batch):
            fn()
        calls += batch
        now = _clock()
        if now >= deadline:
            return calls / (now - start)


def best_rate(fn: Callable[[], object], seconds: float = 0.1, rounds: int = 5) -> float:
    """Best ops/s of ``rounds`` rounds of ``seconds`` each."""
    return interleaved_best({"fn": fn}, seconds, rounds)["fn"]


def interleaved_best(
    fns: Mapping[str, Callable[[], object]], seconds: float = 0.1, rounds: int = 5
) -> dict[str, float]:
    """Best ops/s of each named callable, the rounds run round-robin over all of them."""
    batches = {name: batch_size(fn) for name, fn in fns.items()}
    best = dict.fromkeys(fns, 0.0)
    for _ in range(rounds):
        for name, fn in fns.items():
            best[name] = max(best[name], ops_per_sec(fn, seconds, batches[name]))
    return best
