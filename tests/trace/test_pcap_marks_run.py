"""A run's trace.pcap carries the run's marks, so ``netemu show`` of it agrees with
the run (issue 16): a FIN a drop rule took is not read as delivered."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from netemu.scenario.loader import load_scenario_text
from netemu.trace.infer import trace_from_pcap
from netemu.wire import parse_frame

pytestmark = [pytest.mark.root, pytest.mark.timeout(60)]

LOST_FIN = """\
name: lost_fin
peer: kernel
options: {msl: 200ms}
steps:
  - peer: {listen: 8080}
  - connect: 8080
  - peer: accept
  - drop: {dir: in, match: {flags: "+F"}}
  - peer: close
  - expect_segment: {dir: in, flags: "+F", dropped: true}
  - expect_segment: {dir: in, flags: "+F", within: 2s, note: the kernel resends it}
  - expect_state: CLOSE-WAIT
  - close
  - expect_state: {state: CLOSED, within: 2s}
"""


def test_show_of_a_runs_pcap_agrees_with_the_run(tmp_path: Path) -> None:
    from netemu.scenario.session import run_scenario

    sc = load_scenario_text(LOST_FIN, str(tmp_path / "s.yaml"))
    out = asyncio.run(run_scenario(sc, tmp_path / "run"))
    assert out.passed, out.report.get("error")
    rep = out.report
    run_cw = next(s["t"] for s in rep["states"] if s["new"] == "CLOSE-WAIT")

    shown = trace_from_pcap(tmp_path / "run" / "trace.pcap")
    assert [f.mark for f in shown.frames].count("dropped") == 1
    ours = [s for s in shown.states if s.local[0] == rep["emulator_ip"]]
    cw = next(s for s in ours if s.new == "CLOSE-WAIT")
    segs = [(f.t, parse_frame(f.data).tcp) for f in shown.frames]
    fins = [t for t, seg in segs if seg is not None and seg.flags & 0x01 and seg.src_port == 8080]
    assert len(fins) == 2  # the dropped FIN and the kernel's resent one
    # CLOSE-WAIT when the resent FIN came, as in the run, not at the dropped one
    assert cw.t == pytest.approx(fins[1], abs=1e-6)
    assert cw.t - fins[0] > 0.1
    # and so did the run: its CLOSE-WAIT came RTO later than the first FIN, too
    run_fins = [
        s["t"] for s in rep["segments"] if "FIN" in s["flags"] and s["src"].endswith(":8080")
    ]
    assert run_cw - run_fins[0] > 0.1 and run_cw == pytest.approx(run_fins[1], abs=0.005)
