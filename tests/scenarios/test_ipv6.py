"""Scenarios over IPv6 against the kernel, through the real command line:
scenarios/ipv6_handshake.yaml as it is, an IPv4 scenario under `netemu run --ipv6`
(same segment sizes, on a wider link), and one scenario mixing the families (a raw
IPv6 connection with a bad checksum, the peer connecting to netemu over IPv6). Each
pcap reads in tshark without a warning, its TCP all IPv6 where the scenario says so."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
pytestmark = [pytest.mark.root, pytest.mark.timeout(120)]

MIXED = """
name: mixed_families
peer: kernel
connections:
  c: {}
  v6: {family: ipv6}
  r: {raw: true, port: 8080, local_port: 40000, family: ipv6}
  back: {family: ipv6, local_port: 9000}
steps:
  - peer: {listen: 8080}
  - connect: {conn: c, port: 8080}
  - peer: {conn: c, accept: true}
  - expect_peer_state: {conn: c, state: ESTABLISHED}
  - connect: {conn: v6, port: 8080}
  - peer: {conn: v6, accept: true}
  - send: {conn: v6, data: "six"}
  - peer: {conn: v6, expect: "six"}
  - inject: {conn: r, flags: S, seq: 0, bad_checksum: true}
  - expect_no_segment: {conn: r, dir: in, for: 200ms}
  - inject: {conn: r, flags: S, seq: 0, options: [{mss: 1000}]}
  - expect_segment: {conn: r, dir: in, flags: SYN+ACK, ack: 1, options: {mss: 1440}}
  - inject: {conn: r, flags: ".", seq: 1, ack: 1}
  - expect_peer_state: {conn: r, state: ESTABLISHED, port: 8080}
  - listen: 9000
  - peer: {conn: back, connect: {port: 9000, local_port: 41000}}
  - accept: {conn: back}
  - expect_peer_state: {conn: back, state: ESTABLISHED}
"""


def netemu(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "netemu", "run", "-q", *args],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=100,
    )


def tshark(pcap: Path, *args: str) -> list[str]:
    out = subprocess.run(
        ["tshark", "-r", str(pcap), *args], capture_output=True, text=True, check=True
    )
    warnings = [ln for ln in out.stderr.splitlines() if "Running as user" not in ln]
    assert not warnings, out.stderr
    return out.stdout.splitlines()


def passed(run: subprocess.CompletedProcess[str], run_dir: Path) -> dict:
    assert run.returncode == 0, run.stdout + run.stderr
    report = json.loads((run_dir / "report.json").read_text())
    assert report["result"] == "pass"
    return report


def tcp_sources(pcap: Path) -> set[str]:
    fields = ["-Y", "tcp", "-T", "fields", "-e", "ip.src", "-e", "ipv6.src"]
    return {"".join(line.split("\t")) for line in tshark(pcap, *fields)}


needs_tshark = pytest.mark.skipif(shutil.which("tshark") is None, reason="needs tshark")


@needs_tshark
def test_ipv6_handshake_passes_as_is(tmp_path: Path) -> None:
    report = passed(netemu("scenarios/ipv6_handshake.yaml", "-o", str(tmp_path)), tmp_path)
    assert (report["emulator_ip"], report["peer_ip"]) == ("2001:2::1", "2001:2::2")
    assert tshark(tmp_path / "trace.pcap", "-q") == []
    assert tcp_sources(tmp_path / "trace.pcap") == {"2001:2::1", "2001:2::2"}
    assert "[2001:2::1]:" in (tmp_path / "ladder.txt").read_text()


@needs_tshark
def test_run_ipv6_keeps_an_ipv4_scenarios_segment_sizes(tmp_path: Path) -> None:
    report = passed(
        netemu("--ipv6", "scenarios/sack_recovery_kernel.yaml", "-o", str(tmp_path)), tmp_path
    )
    assert any("1520-byte link" in n["text"] for n in report["notes"])
    assert tcp_sources(tmp_path / "trace.pcap") == {"2001:2::1", "2001:2::2"}
    mss = tshark(
        tmp_path / "trace.pcap",
        "-Y",
        "tcp.options.mss_val",
        "-T",
        "fields",
        "-e",
        "tcp.options.mss_val",
    )
    assert mss and set(mss) == {"1460"}


@needs_tshark
def test_connections_of_both_families_in_one_run(tmp_path: Path) -> None:
    path = tmp_path / "mixed.yaml"
    path.write_text(MIXED)
    passed(netemu(str(path), "-o", str(tmp_path / "run")), tmp_path / "run")
    pcap = tmp_path / "run" / "trace.pcap"
    assert tcp_sources(pcap) == {"198.18.0.1", "198.18.0.2", "2001:2::1", "2001:2::2"}
    bad = tshark(pcap, "-o", "tcp.check_checksum:TRUE", "-Y", "tcp.checksum.status == 0")
    assert len(bad) == 1 and "2001:2::1" in bad[0]  # the one bad_checksum SYN
