"""`netemu bench run`'s parallel_ratio: verdicts that differ between -j 1 and -j 2 fail
the bench (issue 21), and the ratio is -j 2's wall time over -j 1's."""

from __future__ import annotations

from pathlib import Path

import pytest

from netemu.bench import parallel
from netemu.bench.run import BenchError

PASS = [("a", "pass", ["pass", "pass"]), ("b", "fail", ["pass", "fail"])]


def test_identical_verdicts_give_the_ratio(monkeypatch: pytest.MonkeyPatch) -> None:
    times = {1: 10.0, 2: 6.0}
    monkeypatch.setattr(parallel, "_run", lambda jobs, base, tag: (times[jobs], list(PASS)))
    r = parallel.measure(quick=False)
    assert r["parallel_ratio"] == 0.6
    assert (r["parallel_j1_s"], r["parallel_j2_s"], r["parallel_pairs"]) == (10.0, 6.0, 2)
    assert r["parallel_verdicts_identical"] is True
    assert (r["parallel_files"], r["parallel_failed"]) == (2, 1)
    assert r["parallel_meets_target"] is True
    assert "ratio 0.60" in parallel.render(r)


@pytest.mark.parametrize(
    "other",
    [
        [("a", "pass", ["pass", "pass"]), ("b", "pass", ["pass", "pass"])],  # a result
        [("a", "pass", ["pass", "fail"]), ("b", "fail", ["pass", "fail"])],  # a step
        [("b", "fail", ["pass", "fail"]), ("a", "pass", ["pass", "pass"])],  # the order
        PASS[:1],  # a file missing
    ],
)
def test_different_verdicts_fail_the_bench(monkeypatch: pytest.MonkeyPatch, other: list) -> None:
    def run(jobs: int, base: Path, tag: str) -> tuple[float, list]:
        return 1.0, list(PASS if jobs == 1 else other)

    monkeypatch.setattr(parallel, "_run", run)
    with pytest.raises(BenchError, match="different verdicts"):
        parallel.measure(quick=True)
