"""Signals at random moments of a run (issue 17): every trial leaves no namespace,
link, process or tracefs instance of its run, and every interrupted run directory
holds a readable pcap (after SIGKILL, the frames up to the last flush) and, except
after SIGKILL, a report. ``make test`` runs a few
trials; ``make soak`` (NETEMU_SOAK=1) runs 60."""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from netemu.lab import registry
from netemu.lab.ktrace import leftover_instances
from netemu.trace.pcap import read_pcap

pytestmark = [pytest.mark.root, pytest.mark.timeout(900)]
ROOT = Path(__file__).resolve().parents[2]
SOAK = bool(os.environ.get("NETEMU_SOAK"))
SCENARIOS = ("close_wait", "relay_lossy_transfer")
SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGKILL)


def _netns_names() -> set[str]:
    try:
        return set(os.listdir("/run/netns"))
    except FileNotFoundError:
        return set()


def _trial(tmp: Path, scenario: str, sig: int, delay: float) -> dict:
    out = tmp / f"{scenario}-{sig}-{delay:.3f}"
    p = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "netemu",
            "run",
            "-q",
            str(ROOT / "scenarios" / f"{scenario}.yaml"),
            "-o",
            str(out),
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        cwd=ROOT,
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
    )
    time.sleep(delay)
    p.send_signal(sig)
    text, _ = p.communicate(timeout=60)
    return {"rc": p.returncode, "out": out, "text": text}


@pytest.mark.parametrize("count", [60 if SOAK else 6])
def test_signals_at_random_moments_leave_nothing_behind(tmp_path: Path, count: int) -> None:
    rng = random.Random(int(os.environ.get("NETEMU_TRIAL_SEED", "17")))
    before_ns, before_inst = _netns_names(), set(leftover_instances())
    problems = []
    for i in range(count):
        scenario = SCENARIOS[i % len(SCENARIOS)]
        sig = SIGNALS[i % len(SIGNALS)]
        delay = rng.uniform(0.05, 1.2)
        r = _trial(tmp_path, scenario, sig, delay)
        out, rc, text = r["out"], r["rc"], r["text"]
        if "Traceback" in text:
            problems.append(f"{scenario} {sig!r} at {delay:.2f}s: a traceback:\n{text[-1500:]}")
        if rc == 0:  # it finished before the signal: nothing to check
            continue
        if sig == signal.SIGKILL:
            registry.clean()  # what `netemu lab clean` does after a SIGKILL
        if (out / "report.json").exists():
            rep = json.loads((out / "report.json").read_text())
            if sig != signal.SIGKILL and rep["result"] not in ("interrupted", "pass", "fail"):
                problems.append(f"{scenario} {sig!r}: result {rep['result']}")
        elif sig != signal.SIGKILL and out.exists() and any(out.iterdir()):
            problems.append(f"{scenario} {sig!r} at {delay:.2f}s: no report.json")
        if (out / "trace.pcap").exists():
            read_pcap(out / "trace.pcap")  # readable (after SIGKILL: up to the last flush)
        elif out.exists() and any(out.iterdir()):
            problems.append(f"{scenario} {sig!r} at {delay:.2f}s: no pcap")
        left = _left_by_dead_runs(before_ns, before_inst)
        if left:
            problems.append(f"{scenario} {sig!r} at {delay:.2f}s left {left}")
    assert problems == []


def _dead(runid: str) -> bool:
    return not any(
        registry.lock_alive(registry.lock_path(runid, d))
        for d in {registry.RUN_DIR, os.environ.get("NETEMU_RUN_DIR", registry.RUN_DIR)}
    )


def _left_by_dead_runs(before_ns: set[str], before_inst: set[str]) -> list[str]:
    """Namespace names, tracefs instances and processes of runs that are over (other
    sessions' live runs may be about: theirs are not counted)."""
    left = []
    for name in _netns_names() - before_ns:
        m = registry.NAME_RE.match(name)
        if m and _dead(m.group(1)):
            left.append(f"netns {name}")
    for name in set(leftover_instances()) - before_inst:
        if _dead(name.split("-", 1)[1]):
            left.append(f"tracefs instance {name}")
    for pid, runid in registry.tagged_processes().items():
        if _dead(runid):
            left.append(f"process {pid} of run {runid}")
    return left
