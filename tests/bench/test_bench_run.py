"""`netemu bench run`: the fixed cost of a real `netemu run`, reported with references.

The speed target is the bench's business, not a test's: this checks the figures
exist and relate sensibly (a run costs more than the interpreter alone).
"""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

pytestmark = [pytest.mark.root, pytest.mark.timeout(300)]


def test_bench_run_quick_json() -> None:
    out = subprocess.run(
        [sys.executable, "-m", "netemu", "bench", "run", "--quick", "--json"],
        capture_output=True,
        text=True,
        timeout=280,
    )
    assert out.returncode == 0, out.stdout + out.stderr
    r = json.loads(out.stdout)
    for key in (
        "runs",
        "run_ms",
        "run_min_ms",
        "run_max_ms",
        "python_ms",
        "import_ms",
        "import_modules",
        "in_run_ms",
        "target_ms",
        "meets_target",
    ):
        assert key in r, key
    assert r["runs"] >= 5
    assert r["target_ms"] == 200
    assert isinstance(r["meets_target"], bool)
    assert r["meets_target"] == (r["run_ms"] <= r["target_ms"])
    assert r["run_min_ms"] <= r["run_ms"] <= r["run_max_ms"]
    assert r["python_ms"] > 0 and r["import_modules"] > 0
    # A run starts the same interpreter and imports the same modules, then does more.
    assert r["run_ms"] > r["python_ms"]
    assert r["run_ms"] > r["in_run_ms"] > 0
    # scenarios/ at -j 2 over -j 1, measured in the same run (issue 21)
    assert r["parallel_verdicts_identical"] is True
    assert r["parallel_ratio"] == pytest.approx(r["parallel_j2_s"] / r["parallel_j1_s"], abs=0.01)
    assert r["parallel_files"] >= 20


def test_render_mentions_every_figure() -> None:
    from netemu.bench.run import render

    text = render(
        {
            "runs": 5,
            "run_ms": 512.3,
            "run_min_ms": 480.0,
            "run_max_ms": 600.0,
            "python_ms": 30.0,
            "import_ms": 400.0,
            "import_modules": 408,
            "in_run_ms": 35.0,
            "target_ms": 200.0,
            "meets_target": False,
        }
    )
    for piece in (
        "512 ms median",
        "min 480",
        "max 600",
        "python alone 30 ms",
        "408 modules 400 ms",
        "35 ms",
        "≤ 200 ms: NOT met",
    ):
        assert piece in text, piece
