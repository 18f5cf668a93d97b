"""``netemu run -j N`` (issue 21): files at once in labs of their own, with -j 1's
verdicts, reports (input order) and exit code; plain output not interleaved; a signal
to the parent ends every child, each cleaning its lab."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from netemu.lab.ktrace import leftover_instances
from netemu.lab.registry import lock_path

pytestmark = [pytest.mark.root, pytest.mark.timeout(120)]
ROOT = Path(__file__).resolve().parents[2]

REFUSED = """\
name: a_refused
description: a SYN to a closed port draws a RST
peer: kernel
steps:
  - connect: {port: 9999, wait: false}
  - expect_segment: {dir: in, flags: "R.", seq: 0, ack: 1}
  - expect_event: refused
"""

FAILS = """\
name: b_fails
description: expects ESTABLISHED where the connection was refused
peer: kernel
steps:
  - connect: {port: 9999, wait: false}
  - expect_event: refused
  - expect_state: {state: ESTABLISHED, within: 0.2}
  - expect_state: CLOSED
"""

HANDSHAKE = """\
name: c_handshake
peer: kernel
steps:
  - peer: {listen: 8080}
  - connect: 8080
  - expect_state: ESTABLISHED
  - peer: accept
  - expect_peer_state: ESTABLISHED
"""

PKT = """\
    0 socket(..., SOCK_STREAM, IPPROTO_TCP) = 3
   +0 setsockopt(3, SOL_SOCKET, SO_REUSEADDR, [1], 4) = 0
   +0 bind(3, ..., ...) = 0
   +0 listen(3, 1) = 0
  +.05 < S 0:0(0) win 32792 <mss 1000,sackOK,nop,nop,nop,wscale 7>
   +0 > S. 0:0(0) ack 1 <...>
  +.05 < . 1:1(0) ack 1 win 257
   +0 accept(3, ..., ...) = 4
"""

LONG = """\
name: long_{n}
peer: kernel
steps:
  - peer: {{listen: 8080}}
  - connect: 8080
  - peer: accept
  - sleep: 30s
  - close
"""


def _netemu(*argv: str, **kw: object) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "netemu", "run", *argv],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=100,
        **kw,  # type: ignore[call-overload]
    )


def _files(d: Path) -> Path:
    d.mkdir()
    (d / "a_refused.yaml").write_text(REFUSED)
    (d / "b_fails.yaml").write_text(FAILS)
    (d / "c_handshake.yaml").write_text(HANDSHAKE)
    (d / "d_accept.pkt").write_text(PKT)
    (d / "e_bad.pkt").write_text("0 socket(..., SOCK_STREAM\n")  # does not parse: a row
    return d


def _verdicts(path: Path) -> list[tuple[str, str, list[str]]]:
    return [
        (r["scenario"], r["result"], [s["status"] for s in r.get("steps", [])])
        for r in json.loads(path.read_text())
    ]


def test_j2_gives_j1s_verdicts_reports_and_exit_code(tmp_path: Path) -> None:
    files = _files(tmp_path / "files")
    one = _netemu("-q", str(files), "-o", str(tmp_path / "o1"), "--json", str(tmp_path / "1.json"))
    two = _netemu(
        "-j", "2", "-q", str(files), "-o", str(tmp_path / "o2"), "--json", str(tmp_path / "2.json")
    )
    assert one.returncode == two.returncode == 2, one.stderr + two.stderr  # the bad script
    v1, v2 = _verdicts(tmp_path / "1.json"), _verdicts(tmp_path / "2.json")
    assert v1 == v2
    assert [(n, r) for n, r, _ in v2] == [
        ("a_refused", "pass"),
        ("b_fails", "fail"),
        ("c_handshake", "pass"),
        ("d_accept", "pass"),
        ("e_bad", "error"),
    ]
    # the same run directories: one per file that ran, named as -j 1 names them
    names = [re.sub(r"^\d{8}-\d{6}-", "", p.name) for p in sorted((tmp_path / "o2").iterdir())]
    assert sorted(names) == ["a_refused", "b_fails", "c_handshake", "d_accept"]
    for d in (tmp_path / "o2").iterdir():
        assert json.loads((d / "report.json").read_text())["scenario"] in d.name

    # the same verdict lines and summary (run directories and times aside)
    def lines(out: str) -> list[str]:
        return sorted(
            re.sub(r"\d+\.\d+ s → \S+", "", ln)
            for ln in out.splitlines()
            if ln[:5] in ("PASS ", "FAIL ")
        )

    assert sorted(set(lines(one.stdout))) == sorted(set(lines(two.stdout)))
    assert "3 passed, 1 failed, 1 could not run" in two.stdout
    # without the bad script: 1, a scenario failed, in both
    (files / "e_bad.pkt").unlink()
    one = _netemu("-q", str(files), "-o", str(tmp_path / "o3"))
    two = _netemu("-j", "3", "-q", str(files), "-o", str(tmp_path / "o4"))
    assert one.returncode == two.returncode == 1, one.stderr + two.stderr


def test_a_bad_scenario_stops_both_before_anything_runs(tmp_path: Path) -> None:
    files = _files(tmp_path / "files")
    (files / "f_bad.yaml").write_text("name: f_bad\npeer: kernel\nsteps:\n  - nonsense: 1\n")
    for jobs in ("1", "2"):
        out = _netemu("-j", jobs, "-q", str(files), "-o", str(tmp_path / f"o{jobs}"))
        assert out.returncode == 2, out.stderr
        assert "f_bad.yaml:4" in out.stderr
        assert not (tmp_path / f"o{jobs}").exists()


def test_plain_output_is_not_interleaved(tmp_path: Path) -> None:
    """One verdict line per file as it ends; then the failed file whole, exactly as -j 1
    prints it alone (its header, its steps, its verdict), after every verdict line; the
    passing files' steps not at all."""
    files = _files(tmp_path / "files")
    out = _netemu("-j", "2", "-q", str(files), "-o", str(tmp_path / "o"))
    alone = _netemu("-q", str(files / "b_fails.yaml"), "-o", str(tmp_path / "alone"))

    def same(text: str) -> list[str]:  # times and run directories aside
        text = re.sub(r"\(\d+ ms\)", "(ms)", text)
        return re.sub(r"\d+\.\d+ s → \S+", "s →", text).splitlines()

    lines = same(out.stdout)
    verdicts = [i for i, ln in enumerate(lines) if ln.startswith(("PASS ", "FAIL "))]
    head = lines.index("b_fails — expects ESTABLISHED where the connection was refused")
    assert len([i for i in verdicts if i < head]) == 4, out.stdout  # every file's line first
    expected = same(alone.stdout)
    assert lines[head : head + len(expected)] == expected, out.stdout
    assert len(expected) > 5  # (its steps are there)
    assert lines[head + len(expected)] == "netemu run"  # then the summary
    assert "a_refused —" not in out.stdout and "c_handshake —" not in out.stdout


def _children(pid: int) -> list[int]:
    kids = []
    for p in Path("/proc").iterdir():
        if p.name.isdigit():
            try:
                stat = (p / "stat").read_text()
            except OSError:
                continue
            if int(stat.rpartition(")")[2].split()[1]) == pid:
                kids.append(int(p.name))
    return kids


def _lab_runids(pids: list[int]) -> list[str]:
    """The run ids of the labs these processes hold (their lock files)."""
    out = []
    for lock in Path("/run/netemu").glob("*.lock"):
        try:
            info = json.loads(lock.read_text() or "{}")
        except (OSError, ValueError):
            continue
        if info.get("pid") in pids:
            out.append(lock.stem)
    return out


@pytest.mark.parametrize(("sig", "rc"), [(signal.SIGINT, 130), (signal.SIGTERM, 143)])
def test_a_signal_to_the_parent_ends_every_child_and_leaves_nothing(
    tmp_path: Path, sig: int, rc: int
) -> None:
    d = tmp_path / "files"
    d.mkdir()
    for n in (1, 2, 3):
        (d / f"long_{n}.yaml").write_text(LONG.format(n=n))
    p = subprocess.Popen(
        [sys.executable, "-m", "netemu", "run", "-j", "2", "-q", str(d), "-o", str(tmp_path / "o")],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        cwd=ROOT,
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
    )
    deadline = time.monotonic() + 20
    kids: list[int] = []
    runids: list[str] = []
    while time.monotonic() < deadline and (len(kids) < 2 or len(runids) < 2):
        time.sleep(0.2)
        kids = _children(p.pid)
        runids = _lab_runids(kids)
    assert len(kids) == 2 and len(runids) == 2, (kids, runids)
    time.sleep(1.0)  # into the 30 s sleep
    p.send_signal(sig)
    out, err = p.communicate(timeout=60)
    assert p.returncode == rc, out + err
    assert err.count("interrupted during step 4") == 2, err
    assert "Traceback" not in err
    reports = sorted((tmp_path / "o").glob("*/report.json"))
    assert len(reports) == 2  # the third never started
    for r in reports:
        assert json.loads(r.read_text())["result"] == "interrupted"
    for kid in kids:
        assert not Path(f"/proc/{kid}").exists() or "Z" in Path(f"/proc/{kid}/stat").read_text()
    for rid in runids:
        assert not os.path.exists(lock_path(rid))
        assert f"netemu-{rid}" not in leftover_instances()
        links = subprocess.run(["ip", "-o", "link"], capture_output=True, text=True).stdout
        assert f"netemu-{rid}" not in links
        netns = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True).stdout
        assert f"netemu-{rid}" not in netns
