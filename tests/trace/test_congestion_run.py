"""The bundled fast_retransmit scenario against the kernel, through the command line:
its ladder shows fast recovery on our side, and report.json lists the congestion
events. Needs root (a failure, not a skip, when CI is set: tests/conftest.py)."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
pytestmark = [pytest.mark.root, pytest.mark.timeout(120)]


def test_fast_retransmit_ladder_and_report_show_congestion(tmp_path: Path) -> None:
    run_dir = tmp_path / "run"
    run = subprocess.run(
        [
            sys.executable,
            "-m",
            "netemu",
            "run",
            "-q",
            str(ROOT / "scenarios" / "fast_retransmit.yaml"),
            "-o",
            str(run_dir),
        ],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=100,
    )
    assert run.returncode == 0, run.stdout + run.stderr
    report = json.loads((run_dir / "report.json").read_text())
    events = [e for e in report["congestion"] if e["side"] == "netemu"]
    assert events, report.keys()
    for e in events:
        assert set(e) >= {"t", "cwnd", "ssthresh", "phase", "cause"}
        assert e["local"].split(":")[0] == report["emulator_ip"] and e["conversation"] == 0
    phases = [e["phase"] for e in events]
    assert "fast-recovery" in phases, events
    fr = events[phases.index("fast-recovery")]
    assert fr["cause"] == "3 duplicate ACKs", fr
    # NewReno (RFC 5681 §3.2): ssthresh = FlightSize / 2 (nine segments in flight
    # when the third duplicate arrived), cwnd = ssthresh + 3 segments
    assert fr["ssthresh"] == 9 * 1448 // 2 and fr["cwnd"] == fr["ssthresh"] + 3 * 1448, fr
    assert phases[-1] != "fast-recovery" and events[-1]["cause"] == "recovered", events
    assert [e["t"] for e in events] == sorted(e["t"] for e in events)

    ladder = (run_dir / "ladder.txt").read_text(encoding="utf-8")
    lines = ladder.splitlines()
    (fr_line,) = [x for x in lines if re.search(r"fast-recovery │ cwnd \d+ ssthresh \d+", x)]
    assert f"cwnd {fr['cwnd']} ssthresh {fr['ssthresh']} (3 duplicate ACKs)" in fr_line
    # in time order: after the duplicate ACKs, before the fast retransmission
    i = lines.index(fr_line)
    assert re.search(r"<─+ ACK seq=1 ack=1449 len=0", lines[i - 1]), lines[i - 1]
    # and our next segment out is the fast retransmission (duplicate ACKs the kernel
    # took in meanwhile are drawn at their own times, in between)
    nxt = next(x for x in lines[i + 1 :] if "─>│" in x)
    assert re.search(r"ACK seq=1449 ack=1 len=1448 .*─>│", nxt), nxt
    assert "(recovered)" in ladder
    html = (run_dir / "ladder.html").read_text(encoding="utf-8")
    assert ">fast-recovery</text>" in html and "(3 duplicate ACKs)</text>" in html
