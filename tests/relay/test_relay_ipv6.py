"""Relay mode over IPv6: two IPv6 labs bridged by the relay (the peers 2001:2::2 and
2001:2::3 find each other by neighbour discovery through it), relay scenarios with
`family: ipv6` and `netemu run --ipv6` on the bundled ones, their traces and pcaps,
the peers' states from tracepoints and from sock_diag, and no false pass."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
from pathlib import Path

import pytest

from netemu.wire import parse_frame

ROOT = Path(__file__).resolve().parents[2]
CLIENT6, SERVER6 = "2001:2::2", "2001:2::3"
NS, NA = 135, 136  # ICMPv6 neighbour solicitation, advertisement


def _frames(frames) -> list[tuple[str, object]]:
    """(direction, parsed frame) of each (direction, bytes)."""
    return [(d, parse_frame(data, verify=False)) for d, data in frames]


def _assert_ipv6_relay_wire(frames: list[tuple[str, object]]) -> None:
    """Every frame IPv6 between the two peers: TCP both ways, and neighbour discovery
    (the client's solicitation out, the server's advertisement in) and nothing else."""
    assert frames
    assert all(f.ip is None and f.arp is None and f.ip6 is not None for _, f in frames)
    tcp = {(f.ip6.src, f.ip6.dst) for _, f in frames if f.tcp is not None}
    assert tcp == {(CLIENT6, SERVER6), (SERVER6, CLIENT6)}
    icmp = {(d, f.icmp6.type) for d, f in frames if f.icmp6 is not None}
    assert ("out", NS) in icmp and ("in", NA) in icmp
    assert {t for _, t in icmp} <= {NS, NA}  # no router solicitation, no MLD report


@pytest.mark.root
def test_ipv6_labs_find_each_other_through_the_relay_and_stay_quiet_idle():
    from netemu.run.relay import relay_labs

    data = bytes((i * 13 + i // 241) & 0xFF for i in range(200_000))

    async def body():
        async with relay_labs({}, {}, (None, None), ipv6=True) as up:
            await asyncio.sleep(0.5)  # idle: no DAD, RS or MLD crosses
            idle = len(up.trace.frames)
            a, b = up.labs["client"], up.labs["server"]
            client, server = a.start_agent().aio, b.start_agent().aio
            ls = await server.listen(8080, host="::")
            c = await client.connect(SERVER6, 8080, timeout=5)
            acc = await server.accept(ls.sock, timeout=5)
            sending = asyncio.create_task(client.send(c.sock, data, timeout=10))
            got = await server.recv(acc.sock, exact=len(data), timeout=10)
            await sending
            return idle, c, acc, got, up

    idle, c, acc, got, up = asyncio.run(asyncio.wait_for(body(), 30))
    assert idle == 0
    assert (up.labs["client"].peer_ip6, up.labs["server"].peer_ip6) == (CLIENT6, SERVER6)
    assert c.local[0] == CLIENT6 and acc.peer == (CLIENT6, c.local[1])
    assert got == data
    assert (up.trace.emulator_ip, up.trace.peer_ip) == (CLIENT6, SERVER6)
    assert up.relay.stats["dropped"] == 0
    _assert_ipv6_relay_wire(_frames((f.direction, f.data) for f in up.trace.frames))


def _netemu_run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "netemu", "run", "-q", *args],
        capture_output=True,
        text=True,
        timeout=150,
        cwd=ROOT,
    )


def _tshark_reads(tshark: str, pcap: Path) -> list[str]:
    """The pcap's frames as tshark lists them, checking it warned of nothing."""
    proc = subprocess.run(
        [tshark, "-n", "-r", str(pcap)], capture_output=True, text=True, timeout=60
    )
    assert proc.returncode == 0, proc.stderr
    warned = [ln for ln in proc.stderr.splitlines() if "Running as user" not in ln]
    assert not warned, proc.stderr
    return proc.stdout.splitlines()


@pytest.mark.root
@pytest.mark.timeout(200)
@pytest.mark.parametrize("ipv6", [True, False], ids=["ipv6", "ipv4"])
@pytest.mark.parametrize("name", ["relay_lost_fin", "relay_lossy_transfer"])
def test_bundled_relay_scenarios_pass_with_and_without_ipv6(
    name: str, ipv6: bool, tmp_path: Path, tshark: str
):
    from netemu.trace.pcap import read_pcap

    out = tmp_path / "run"
    run = _netemu_run(*(["--ipv6"] if ipv6 else []), f"scenarios/{name}.yaml", "-o", str(out))
    assert run.returncode == 0, run.stdout + run.stderr
    report = json.loads((out / "report.json").read_text())
    assert report["result"] == "pass"
    ips = (CLIENT6, SERVER6) if ipv6 else ("198.18.0.2", "198.18.0.3")
    assert (report["relay"]["client_ip"], report["relay"]["server_ip"]) == ips
    assert (report["emulator_ip"], report["peer_ip"]) == ips
    # both kernels' states, on their own addresses (the client's: the left column)
    assert report["states"] and report["peer_states"]
    assert all(s["local"].startswith(f"[{ips[0]}]:" if ipv6 else ips[0]) for s in report["states"])
    assert any(
        s["local"].startswith(f"[{ips[1]}]:" if ipv6 else ips[1]) for s in report["peer_states"]
    )
    listed = _tshark_reads(tshark, out / "trace.pcap")
    frames = read_pcap(out / "trace.pcap")
    assert len(listed) == len(frames) == len(report["segments"]) + sum(report["skipped"].values())
    if not ipv6:  # IPv4 labs: no IPv6 frame at all
        assert all(parse_frame(data, verify=False).ip6 is None for _, data in frames)
        return
    # (a pcap has no direction: the client's frames are "out")
    parsed = [(parse_frame(data, verify=False)) for _, data in frames]
    dirs = ["out" if f.src_ip == CLIENT6 else "in" for f in parsed]
    _assert_ipv6_relay_wire(list(zip(dirs, parsed, strict=True)))
    # `--ipv6` widened both links to 1520: both kernels' MSS is IPv4's 1460
    syns = [f.tcp for f in parsed if f.tcp is not None and f.tcp.flags & 0x02]
    assert syns and all(s.mss == 1460 for s in syns)
    assert "1520-byte link" in (out / "ladder.txt").read_text()


# A relay scenario written for IPv6 (top-level `family: ipv6`): its links stay 1500
# bytes, so both kernels' MSS is IPv6's 1440 and a full segment carries 1428 bytes
# (timestamps on); a drop rule takes the first data segment, the network loses 2 %.
V6 = """name: relay_v6
mode: relay
family: ipv6
seed: 5
network: {{loss: 2%}}
peers: {{client: {{kind: kernel}}, server: {{kind: kernel}}}}
timeout: 5s
steps:
  - peer: {{peer: server, listen: 8080}}
  - peer: {{peer: client, connect: 8080}}
  - peer: {{peer: server, accept: true}}
  - expect_segment: {{dir: out, flags: S, options: {{mss: {mss}}}, within: 2s}}
  - expect_peer_state: {{peer: {who}, state: {state}, within: 2s}}
  - drop: {{dir: out, match: {{seq: 1, len: ">0"}}}}
  - peer: {{peer: client, send: {{bytes: 100k}}}}
  - peer: {{peer: server, read: 100k, timeout: 30s}}
  - expect_segment: {{dir: out, seq: 1, len: 1428, dropped: true}}
  - expect_segment: {{dir: out, seq: 1, len: 1428}}
  - peer: {{peer: client, close: true}}
  - expect_segment: {{dir: out, flags: "+F", seq: 102401}}
  - expect_peer_state: {{peer: server, state: CLOSE-WAIT}}
  - peer: {{peer: server, close: true}}
  - expect_peer_state: {{peer: client, state: TIME-WAIT}}
"""
GOOD = {"mss": 1440, "who": "server", "state": "ESTABLISHED"}


def _run_text(text: str, run_dir: Path, *, polled: bool = False):
    """A relay scenario run here (not in a subprocess), its peers' states polled from
    sock_diag with ``polled`` (as where tracepoints cannot be read)."""
    from netemu.lab.core import Lab
    from netemu.lab.ktrace import TraceUnavailable
    from netemu.scenario.loader import load_scenario_text
    from netemu.scenario.session import run_scenario

    def no_trace(self):
        raise TraceUnavailable("off for this test")

    sc = load_scenario_text(text, "relay_v6.yaml")
    with pytest.MonkeyPatch.context() as mp:
        if polled:
            mp.setattr(Lab, "start_kernel_trace", no_trace)
        return asyncio.run(asyncio.wait_for(run_scenario(sc, run_dir), 90))


@pytest.mark.root
@pytest.mark.timeout(120)
@pytest.mark.parametrize("polled", [False, True], ids=["tracepoints", "sock_diag"])
def test_an_ipv6_relay_scenario_with_a_drop_rule_and_loss_passes(tmp_path: Path, polled: bool):
    out = _run_text(V6.format(**GOOD), tmp_path / "run", polled=polled)
    assert out.passed, out.ladder
    report = out.report
    assert report["peer_state_source"]["source"] == ("poll" if polled else "kernel")
    assert report["relay"]["drop_rules"][0]["dropped"] == 1
    assert report["relay"]["dropped"] > 1  # the rule's one and the network's
    assert report["relay"]["client_ip"] == CLIENT6


@pytest.mark.root
@pytest.mark.timeout(120)
@pytest.mark.parametrize(
    ("wrong", "step"),
    [
        ({"mss": 1460}, 4),  # IPv4's MSS: the scenario's 1500-byte link gives 1440
        ({"who": "server", "state": "CLOSE-WAIT"}, 5),
        ({"who": "client", "state": "LISTEN"}, 5),
    ],
)
def test_a_wrong_expectation_fails_over_ipv6(tmp_path: Path, wrong: dict, step: int):
    out = _run_text(V6.format(**{**GOOD, **wrong}), tmp_path / "run")
    assert not out.passed
    failed = [s for s in out.report["steps"] if s["status"] == "fail"]
    assert [s["index"] for s in failed] == [step], out.report["steps"]


@pytest.mark.root
@pytest.mark.timeout(60)
def test_netemu_relay_ipv6_names_both_addresses_and_an_idle_bridge_records_nothing(
    tmp_path: Path,
):
    argv = ["relay", "--ipv6", "--seconds", "1", "-o", str(tmp_path / "r")]
    run = subprocess.run(
        [sys.executable, "-m", "netemu", *argv],
        capture_output=True,
        text=True,
        timeout=50,
        cwd=ROOT,
    )
    assert run.returncode == 0, run.stdout + run.stderr
    first = run.stdout.splitlines()[0]
    assert (
        f"client 198.18.0.2 and {CLIENT6}" in first and f"server 198.18.0.3 and {SERVER6}" in first
    )
    assert f"curl http://[{SERVER6}]:8080/" in run.stdout
    assert "relay down: 0 frames" in run.stdout  # no DAD, RS or MLD crossed
    report = json.loads((tmp_path / "r" / "report.json").read_text())
    assert (report["relay"]["client_ip"], report["relay"]["server_ip"]) == (CLIENT6, SERVER6)
