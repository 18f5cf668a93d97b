"""An interrupted run keeps what it saw (issue 17, 6): SIGINT or SIGTERM in the middle
of a step leaves a readable pcap, the ladders and a report marked interrupted, the
exit code of the signal, and nothing of the lab or its kernel trace."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from netemu.lab.ktrace import leftover_instances
from netemu.trace.pcap import read_pcap
from netemu.wire import parse_frame

pytestmark = [pytest.mark.root, pytest.mark.timeout(60)]
ROOT = Path(__file__).resolve().parents[2]

LONG = """\
name: long
peer: kernel
steps:
  - peer: {listen: 8080}
  - connect: 8080
  - peer: accept
  - sleep: 30s
  - close
"""


@pytest.mark.parametrize(("sig", "rc"), [(signal.SIGINT, 130), (signal.SIGTERM, 143)])
def test_an_interrupted_run_keeps_its_pcap_and_says_so(tmp_path: Path, sig: int, rc: int) -> None:
    (tmp_path / "long.yaml").write_text(LONG)
    out = tmp_path / "run"
    p = subprocess.Popen(
        [sys.executable, "-m", "netemu", "run", "-q", str(tmp_path / "long.yaml"), "-o", str(out)],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        cwd=ROOT,
        # (a shell's background job would ignore SIGINT)
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
    )
    assert p.stdout is not None
    seen = []
    deadline = time.monotonic() + 20
    for line in p.stdout:  # until the sleep has begun
        seen.append(line)
        if "peer accept" in line or time.monotonic() > deadline:
            break
    time.sleep(0.3)
    p.send_signal(sig)
    rest, _ = p.communicate(timeout=30)
    assert p.returncode == rc, "".join(seen) + rest
    assert "interrupted during step 4" in rest and "Traceback" not in rest
    rep = json.loads((out / "report.json").read_text())
    assert rep["result"] == "interrupted"
    assert [s["status"] for s in rep["steps"]] == ["pass", "pass", "pass", "interrupted", "skipped"]
    segs = [parse_frame(d).tcp for _, d in read_pcap(out / "trace.pcap")]
    assert any(s is not None and s.flags & 0x02 for s in segs)  # the handshake is there
    assert (out / "ladder.txt").read_text().count("SYN") >= 2
    assert rep["peer_state_source"]["tracefs_instance"] not in leftover_instances()


LONG_PKT = """\
0   socket(..., SOCK_STREAM, IPPROTO_TCP) = 3
+0  setsockopt(3, SOL_SOCKET, SO_REUSEADDR, [1], 4) = 0
+0  bind(3, ..., ...) = 0
+0  listen(3, 1) = 0
+5  close(3) = 0
"""


@pytest.mark.parametrize(("sig", "rc"), [(signal.SIGINT, 130), (signal.SIGTERM, 143)])
def test_an_interrupted_pkt_run_keeps_its_directory(tmp_path: Path, sig: int, rc: int) -> None:
    """A .pkt run interrupted left an empty run directory (a new user found it)."""
    (tmp_path / "long.pkt").write_text(LONG_PKT)
    out = tmp_path / "run"
    p = subprocess.Popen(
        [sys.executable, "-m", "netemu", "run", "-q", str(tmp_path / "long.pkt"), "-o", str(out)],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        cwd=ROOT,
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
    )
    time.sleep(1.5)  # in the script's 5 s wait
    p.send_signal(sig)
    text, _ = p.communicate(timeout=30)
    assert p.returncode == rc, text
    assert "interrupted at line 5" in text and "Traceback" not in text
    rep = json.loads((out / "report.json").read_text())
    assert rep["result"] == "interrupted"
    read_pcap(out / "trace.pcap")


def test_a_refused_sysctl_and_a_bad_run_directory_are_one_line_errors(tmp_path: Path) -> None:
    """A peer sysctl the kernel refuses was a LabError traceback and an empty run
    directory; -o naming a file was a traceback after the whole run (a new user)."""
    (tmp_path / "sy.yaml").write_text(
        "name: sy\npeer: {kind: kernel, sysctls: "
        "{net.ipv4.tcp_bogus: 1}}\nsteps:\n  - peer: {listen: 8080}\n"
    )
    p = subprocess.run(
        [
            sys.executable,
            "-m",
            "netemu",
            "run",
            "-q",
            str(tmp_path / "sy.yaml"),
            "-o",
            str(tmp_path / "sy"),
        ],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=60,
    )
    assert p.returncode == 3 and "Traceback" not in p.stderr, p.stderr
    assert "peer sysctl net.ipv4.tcp_bogus=1" in p.stderr and not (tmp_path / "sy").exists()
    (tmp_path / "afile").write_text("")
    p = subprocess.run(
        [
            sys.executable,
            "-m",
            "netemu",
            "run",
            "-q",
            str(ROOT / "scenarios" / "handshake.yaml"),
            "-o",
            str(tmp_path / "afile"),
        ],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=60,
    )
    assert p.returncode == 2 and "cannot make the run directory" in p.stderr, p.stderr
