"""The peer's side from the kernel's own tracepoints, in real runs (issue 16): every
state in order, timed before the segments they cause, one run's sockets only even
with another run beside it, the kernel's congestion and retransmissions, and
nothing of the tracefs instance left behind."""

from __future__ import annotations

import datetime as dt
import json
import subprocess
import sys
from pathlib import Path

import pytest

from netemu.lab.ktrace import leftover_instances
from netemu.trace.pcap import read_pcap
from netemu.wire import parse_frame

pytestmark = [pytest.mark.root, pytest.mark.timeout(120)]
ROOT = Path(__file__).resolve().parents[2]


def start(scenario: Path | str, out: Path) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-m", "netemu", "run", "-q", str(scenario), "-o", str(out)],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        cwd=ROOT,
    )


def finish(p: subprocess.Popen, out: Path, rc: int = 0) -> dict:
    stdout, _ = p.communicate(timeout=100)
    assert p.returncode == rc, stdout
    return json.loads((out / "report.json").read_text())


def run(scenario: Path | str, out: Path, rc: int = 0) -> dict:
    return finish(start(scenario, out), out, rc)


def conn_states(rep: dict) -> tuple[str, list[dict]]:
    """The peer states of the run's one connection (not its listener)."""
    conns = {(s["local"], s["remote"]) for s in rep["peer_states"] if not s["listener"]}
    assert len(conns) == 1, conns
    (key,) = conns
    return key[1], [s for s in rep["peer_states"] if (s["local"], s["remote"]) == key]


def check_close_wait(rep: dict) -> str:
    assert rep["result"] == "pass" and rep["peer_state_source"]["source"] == "kernel"
    remote, recs = conn_states(rep)
    assert [r["state"] for r in recs] == [
        "SYN-RECEIVED",
        "ESTABLISHED",
        "CLOSE-WAIT",
        "LAST-ACK",
        "CLOSED",
    ]
    assert all(r["source"] == "kernel" for r in recs)
    listener = [s["state"] for s in rep["peer_states"] if s["listener"]]
    assert listener[0] == "LISTEN"
    return remote


def test_close_wait_from_the_kernel_with_last_ack_before_its_fin(tmp_path: Path) -> None:
    rep = run(ROOT / "scenarios" / "close_wait.yaml", tmp_path / "run")
    check_close_wait(rep)
    # LAST-ACK (the tracepoint, when close() ran) comes no later than the kernel's FIN
    # in trace.pcap: one clock for both.
    last_ack = next(s for s in rep["peer_states"] if s["state"] == "LAST-ACK")
    start_wall = dt.datetime.fromisoformat(rep["started_at"]).timestamp()
    fins = [
        ts
        for ts, data in read_pcap(tmp_path / "run" / "trace.pcap")
        if (seg := parse_frame(data).tcp) is not None and seg.flags & 0x01 and seg.src_port == 8080
    ]
    assert len(fins) == 1
    assert start_wall + last_ack["t"] <= fins[0] + 1e-6
    # the kernel's states are in the ladder, unmarked (a polled one would say so)
    ladder = (tmp_path / "run" / "ladder.txt").read_text()
    assert "│ LAST-ACK\n" in ladder and "listener :8080 LISTEN" in ladder
    assert "(polled)" not in ladder
    instance = rep["peer_state_source"]["tracefs_instance"]
    assert instance.startswith("netemu-")
    assert instance not in leftover_instances()  # the run's tracefs instance is gone


def test_two_runs_at_once_each_see_their_own_sockets(tmp_path: Path) -> None:
    a = start(ROOT / "scenarios" / "close_wait.yaml", tmp_path / "a")
    b = start(ROOT / "scenarios" / "close_wait.yaml", tmp_path / "b")
    ra, rb = finish(a, tmp_path / "a"), finish(b, tmp_path / "b")
    # the same scenario, the same addresses: only the lab's port blocks tell them apart
    port_a, port_b = check_close_wait(ra), check_close_wait(rb)
    assert port_a != port_b
    for rep, port in ((ra, port_a), (rb, port_b)):
        assert {s["remote"] for s in rep["peer_states"] if not s["listener"]} == {port}
        assert all(e["remote"] == port for e in rep["peer_events"])
        assert {c["remote"] for c in rep["congestion"] if c["side"] == "peer"} <= {port}


SEEN = """\
name: seen
peer: kernel
options: {msl: 500ms}
steps:
  - peer: {listen: 8080}
  - connect: 8080
  - peer: accept
  - close
  - expect_peer_state: CLOSE-WAIT
  - peer: close
  - expect_state: {state: CLOSED, within: 3s}
  - expect_peer_state: {state: LAST-ACK, seen: true, note: it lasted microseconds}
  - expect_peer_state: {state: %s, seen: true, within: 100ms}
"""


def test_seen_asserts_a_state_that_lasted_microseconds(tmp_path: Path) -> None:
    (tmp_path / "ok.yaml").write_text(SEEN % "CLOSE-WAIT")
    rep = run(tmp_path / "ok.yaml", tmp_path / "ok")
    assert rep["result"] == "pass"
    (tmp_path / "bad.yaml").write_text(SEEN % "FIN-WAIT-1")
    rep = run(tmp_path / "bad.yaml", tmp_path / "bad", rc=1)
    failed = [s for s in rep["steps"] if s["status"] == "fail"]
    assert len(failed) == 1 and "never was FIN-WAIT-1" in failed[0]["message"]
    assert "LAST-ACK" in failed[0]["message"]  # it says what the socket went through


def test_the_kernel_as_sender_shows_its_congestion(tmp_path: Path) -> None:
    rep = run(ROOT / "scenarios" / "sack_recovery_kernel.yaml", tmp_path / "run")
    peer = [c for c in rep["congestion"] if c["side"] == "peer"]
    phases = [c["phase"] for c in peer]
    assert "recovery" in phases and phases[-1] == "open", phases
    in_recovery = [c["cwnd"] for c in peer if c["phase"] == "recovery"]
    assert len(set(in_recovery)) > 1, peer  # cwnd moves during the recovery
    assert min(c["ssthresh"] for c in peer) < 100  # CUBIC set one (the kernel counts segments)
    assert all(c["unit"] == "segments" and c["srtt_us"] > 0 for c in peer)
    retrans = [e for e in rep["peer_events"] if e["kind"] == "retransmit"]
    assert len(retrans) == 3  # the three holes
    ladder = (tmp_path / "run" / "ladder.txt").read_text()
    assert ladder.count("kernel retransmits") == 3 and "recovery: cwnd" in ladder


@pytest.mark.go
def test_the_go_server_closes_first_through_time_wait(tmp_path: Path) -> None:
    rep = run(ROOT / "scenarios" / "hello_go.yaml", tmp_path / "run")
    _, recs = conn_states(rep)
    assert [r["state"] for r in recs] == [
        "SYN-RECEIVED",
        "ESTABLISHED",
        "FIN-WAIT-1",
        "FIN-WAIT-2",
        "TIME-WAIT",
    ]
    listener = [s for s in rep["peer_states"] if s["listener"]]
    assert listener and listener[0]["state"] == "LISTEN"


@pytest.mark.parametrize("with_lock", [False, True])
def test_lab_clean_removes_a_dead_runs_instance(with_lock: bool) -> None:
    """A SIGKILLed run leaves its tracefs instance, and (usually) its lock file, unheld."""
    import os

    from netemu.lab import registry
    from netemu.lab.ktrace import instances_dir

    rid = os.urandom(3).hex()
    name = f"netemu-{rid}"
    if with_lock:
        os.makedirs(registry.RUN_DIR, exist_ok=True)
        Path(registry.lock_path(rid)).write_text(json.dumps({"runid": rid, "pid": 1}))
    fd = instances_dir()
    try:
        os.mkdir(name, dir_fd=fd)
    finally:
        os.close(fd)
    try:
        actions = registry.clean(dry_run=True)
        assert f"remove tracefs instance {name}" in actions
        assert name in leftover_instances()
        registry.clean()
        assert name not in leftover_instances()
    finally:
        if name in leftover_instances():
            from netemu.lab.ktrace import remove_instance

            remove_instance(name)


def test_without_tracepoints_it_polls_and_says_why(tmp_path: Path) -> None:
    """No slot (here: its directory cannot be made): the peer's states are polled,
    marked so in the ladder, and the report says why; a seen: true on a state that
    polls cannot catch fails, saying so, rather than pass on what nobody saw."""
    import os

    (tmp_path / "s.yaml").write_text(SEEN % "LAST-ACK")
    env = {**os.environ, "NETEMU_SLOT_DIR": "/proc/no/slots"}
    p = subprocess.run(
        [
            sys.executable,
            "-m",
            "netemu",
            "run",
            "-q",
            str(tmp_path / "s.yaml"),
            "-o",
            str(tmp_path / "run"),
        ],
        capture_output=True,
        text=True,
        cwd=ROOT,
        env=env,
        timeout=100,
    )
    rep = json.loads((tmp_path / "run" / "report.json").read_text())
    src = rep["peer_state_source"]
    assert src["source"] == "poll" and "/proc/no/slots" in src["note"]
    assert {s["source"] for s in rep["peer_states"]} == {"poll"}
    assert "(polled)" in (tmp_path / "run" / "ladder.txt").read_text()
    if p.returncode:  # LAST-ACK lasts ~0.6 ms: a 2 ms poll usually misses it
        failed = [s for s in rep["steps"] if s["status"] == "fail"]
        assert "were polled" in failed[0]["message"], failed
