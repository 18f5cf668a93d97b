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
        "peer_run_ms",
        "agent_start_ms",
        "agent_wait_ms",
        "validate_ms",
        "validate_pkt_ms",
        "validate_target_ms",
        "validate_meets_target",
    ):
        assert key in r, key
    assert "ratio" not in r and "packetdrill_ms" not in r  # (no --packetdrill given)
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
    # The agent's start-up is measured inside the run, and the peer step found it started.
    assert 0 < r["agent_start_ms"] < r["peer_run_ms"]
    assert 0 <= r["agent_wait_ms"] <= r["agent_start_ms"]
    assert r["validate_target_ms"] == 150
    assert r["validate_meets_target"] == (
        max(r["validate_ms"], r["validate_pkt_ms"]) < r["validate_target_ms"]
    )
    assert r["python_ms"] < r["validate_pkt_ms"] and r["python_ms"] < r["validate_ms"]


def test_bench_run_against_a_packetdrill_stand_in(tmp_path) -> None:
    """--packetdrill PATH: the same rounds, plus the trivial .pkt through `netemu run` and
    through that binary (here a stand-in that sleeps 0.3 s, as packetdrill spends ~0.25 s
    on the script), and their ratio."""
    fake = tmp_path / "packetdrill"
    fake.write_text('#!/bin/sh\ntest -f "$1" && sleep 0.3\n')
    fake.chmod(0o755)
    argv = ["bench", "run", "--quick", "--json", "--packetdrill", str(fake)]
    out = subprocess.run(
        [sys.executable, "-m", "netemu", *argv],
        capture_output=True,
        text=True,
        timeout=280,
    )
    assert out.returncode == 0, out.stdout + out.stderr
    r = json.loads(out.stdout)
    assert r["packetdrill_ms"] >= 300
    assert r["pkt_run_ms"] > r["python_ms"]
    assert r["ratio"] == pytest.approx(r["pkt_run_ms"] / r["packetdrill_ms"], abs=0.001)
    assert r["ratio_target"] == 1.0
    assert r["ratio_meets_target"] == (r["ratio"] <= 1.0)


def test_packetdrill_is_for_run_only() -> None:
    out = subprocess.run(
        [sys.executable, "-m", "netemu", "bench", "codec", "--packetdrill", "/bin/true"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert out.returncode == 2 and "--packetdrill is for run" in out.stderr


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
            "peer_run_ms": 300.0,
            "agent_start_ms": 31.0,
            "agent_wait_ms": 0.2,
            "validate_ms": 161.0,
            "validate_pkt_ms": 41.0,
            "validate_target_ms": 150.0,
            "validate_meets_target": False,
            "pkt_run_ms": 240.0,
            "packetdrill_ms": 250.0,
            "ratio": 0.96,
            "ratio_target": 1.0,
            "ratio_meets_target": True,
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
        "starts in 31 ms",
        "waited 0.2 ms",
        "peer step: 300 ms",
        "validate: 161 ms",
        "41 ms on a .pkt",
        "< 150 ms: NOT met",
        "netemu run 240 ms, packetdrill 250 ms, ratio 0.96",
        "≤ 1.0: met",
    ):
        assert piece in text, piece
