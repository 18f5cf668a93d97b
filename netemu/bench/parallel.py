"""`netemu bench run`'s ``parallel_ratio``: every bundled scenario (``scenarios/``) run
with ``netemu run -j 2``, over the wall time of the same with ``-j 1``, measured in the
same bench run (issue 21's target: at most 0.65), and the two runs' verdicts compared:
each file's result and each of its steps' statuses, in the same order. They must be
identical, or the bench fails (``BenchError``): a scenario that passes alone and fails
beside another is a bug, not noise.

Each side is a real command line in a fresh process (``python -m netemu run -q
scenarios/ -o DIR --json FILE``), its output thrown away. ``--quick`` measures one
pair (-j 1, then -j 2: ~25 s here), the full bench two, in the order -j 1, -j 2, -j 2,
-j 1, so that a machine getting busier or quieter meanwhile weighs on both sides alike;
the figures are the sums of each side's runs. The verdicts of every run are compared.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from .run import BenchError

TARGET = 0.65
SCENARIOS = Path(__file__).resolve().parents[2] / "scenarios"

Verdicts = list[tuple[str, str, list[str]]]


def _run(jobs: int, base: Path, tag: str) -> tuple[float, Verdicts]:
    out, report = base / tag, base / f"{tag}.json"
    argv = [sys.executable, "-m", "netemu", "run", "-j", str(jobs), "-q", str(SCENARIOS)]
    t0 = time.perf_counter()
    proc = subprocess.run(
        [*argv, "-o", str(out), "--json", str(report)],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        timeout=600,
    )
    seconds = time.perf_counter() - t0
    if proc.returncode not in (0, 1) or not report.is_file():
        raise BenchError(
            f"netemu run -j {jobs} {SCENARIOS} exited {proc.returncode}: "
            f"{proc.stderr.decode(errors='replace').strip()[-2000:]}"
        )
    verdicts = [
        (r["scenario"], r["result"], [s["status"] for s in r.get("steps") or ()])
        for r in json.loads(report.read_text())
    ]
    return seconds, verdicts


def _differences(a: Verdicts, b: Verdicts) -> list[str]:
    if [n for n, _, _ in a] != [n for n, _, _ in b]:
        return [f"files {[n for n, _, _ in a]} vs {[n for n, _, _ in b]}"]
    return [f"{x[0]}: {x[1]} {x[2]} vs {y[1]} {y[2]}" for x, y in zip(a, b, strict=True) if x != y]


def measure(quick: bool = False) -> dict[str, Any]:
    """``parallel_ratio`` and its figures; BenchError when the verdicts differ."""
    if not SCENARIOS.is_dir():
        raise BenchError(f"no bundled scenarios at {SCENARIOS} (a source checkout has them)")
    order = [1, 2] if quick else [1, 2, 2, 1]
    wall = {1: 0.0, 2: 0.0}
    runs: list[tuple[int, Verdicts]] = []
    with tempfile.TemporaryDirectory(prefix="netemu-bench-parallel-") as tmp:
        for i, jobs in enumerate(order):
            seconds, verdicts = _run(jobs, Path(tmp), f"{i}-j{jobs}")
            wall[jobs] += seconds
            runs.append((jobs, verdicts))
    first = runs[0][1]
    wrong = [f"-j {jobs}: {d}" for jobs, v in runs[1:] for d in _differences(first, v)]
    if wrong:
        raise BenchError(
            "netemu run -j 2 and -j 1 gave different verdicts on scenarios/: " + "; ".join(wrong)
        )
    n = len(order) // 2
    ratio = wall[2] / wall[1]
    return {
        "parallel_ratio": round(ratio, 3),
        "parallel_j1_s": round(wall[1] / n, 2),
        "parallel_j2_s": round(wall[2] / n, 2),
        "parallel_verdicts_identical": True,
        "parallel_files": len(first),
        "parallel_failed": sum(r != "pass" for _, r, _ in first),
        "parallel_pairs": n,
        "parallel_cores": os.cpu_count(),
        "parallel_target": TARGET,
        "parallel_meets_target": ratio <= TARGET,
    }


def render(r: dict[str, Any]) -> str:
    if "parallel_ratio" not in r:
        return ""
    return (
        f"\n  scenarios/ ({r['parallel_files']} files, {r['parallel_failed']} failing): "
        f"-j 2 {r['parallel_j2_s']:.1f} s vs -j 1 {r['parallel_j1_s']:.1f} s "
        f"(mean of {r['parallel_pairs']}), ratio {r['parallel_ratio']:.2f} on "
        f"{r['parallel_cores']} cores, verdicts identical; target ≤ {r['parallel_target']}: "
        f"{'met' if r['parallel_meets_target'] else 'NOT met'}"
    )
