"""Every bundled scenario passes against the kernel (and Go where named), through
the real command line; its pcap is readable by tshark and matches its report."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
BUNDLED = sorted((ROOT / "scenarios").glob("*.yaml"))
pytestmark = [pytest.mark.root, pytest.mark.timeout(120)]


def netemu(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "netemu", *args],
        capture_output=True,
        text=True,
        cwd=cwd or ROOT,
        timeout=100,
    )


def tshark_segments(pcap: Path) -> list[tuple[str, str]]:
    out = subprocess.run(
        ["tshark", "-r", str(pcap), "-Y", "tcp", "-T", "fields", "-e", "tcp.seq", "-e", "tcp.len"],
        capture_output=True,
        text=True,
        check=True,
    )
    assert "error" not in out.stderr.lower(), out.stderr
    return [tuple(line.split("\t")) for line in out.stdout.splitlines() if line]


@pytest.mark.parametrize("path", BUNDLED, ids=[p.stem for p in BUNDLED])
def test_bundled_scenario_passes(path: Path, tmp_path: Path):
    if "go" in path.stem and shutil.which("go") is None:
        pytest.skip("needs Go")  # conftest: a failure in CI
    run = netemu("run", "-q", str(path), "-o", str(tmp_path / "run"))
    assert run.returncode == 0, run.stdout + run.stderr
    assert "PASS" in run.stdout
    run_dir = tmp_path / "run"
    for name in ("trace.pcap", "ladder.txt", "ladder.html", "report.json"):
        assert (run_dir / name).stat().st_size > 0, name
    report = json.loads((run_dir / "report.json").read_text())
    assert report["result"] == "pass"
    assert all(s["status"] == "pass" for s in report["steps"])
    if shutil.which("tshark"):
        segs = tshark_segments(run_dir / "trace.pcap")
        reported = [s for s in report["segments"]]
        assert len(segs) == len(reported), (len(segs), len(reported))
        assert [int(ln) for _, ln in segs] == [s["len"] for s in reported]
        assert [int(sq) for sq, _ in segs] == [s["seq"] for s in reported]


def test_failing_scenario_exits_1_with_a_readable_diff(tmp_path: Path):
    bad = tmp_path / "wrong_state.yaml"
    bad.write_text(
        (ROOT / "scenarios" / "close_wait.yaml")
        .read_text()
        .replace(
            "  - expect_peer_state: CLOSE-WAIT\n",
            "  - expect_peer_state: {state: LAST-ACK, within: 300ms}\n",
            1,
        )
    )
    run = netemu("run", "-q", str(bad), "-o", str(tmp_path / "run"))
    assert run.returncode == 1, run.stdout + run.stderr
    assert "FAIL" in run.stdout
    assert (
        "peer socket is CLOSE-WAIT, expected LAST-ACK (it went through: SYN-RECEIVED → "
        "ESTABLISHED → CLOSE-WAIT)"
    ) in run.stdout
    report = json.loads((tmp_path / "run" / "report.json").read_text())
    assert report["result"] == "fail"
    statuses = [s["status"] for s in report["steps"]]
    assert "fail" in statuses and statuses[-1] == "skipped"


def test_bad_input_exits_2_and_leaves_nothing(tmp_path: Path):
    bad = tmp_path / "typo.yaml"
    bad.write_text("name: typo\npeer: kernel\nsteps:\n  - conect: 8080\n")
    before = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True).stdout
    run = netemu("run", str(bad), cwd=tmp_path)
    assert run.returncode == 2
    assert run.stderr.strip() == f"{bad}:4:5: unknown step 'conect' (did you mean 'connect'?)"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["typo.yaml"]  # no runs/ directory
    after = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True).stdout
    assert before == after


def test_run_directory_writes_junit_and_a_table(tmp_path: Path):
    d = tmp_path / "two"
    d.mkdir()
    for name in ("handshake.yaml", "rst_closed_port.yaml"):
        shutil.copy(ROOT / "scenarios" / name, d / name)
    junit = tmp_path / "junit.xml"
    run = netemu("run", "-q", str(d), "-o", str(tmp_path / "runs"), "--junit", str(junit))
    assert run.returncode == 0, run.stdout + run.stderr
    xml = junit.read_text()
    assert xml.count("<testcase") == 2 and "<failure" not in xml
    assert "handshake" in run.stdout and "rst_closed_port" in run.stdout
