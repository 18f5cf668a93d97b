"""False passes a new user's scenarios met (issue 16): each test fails on the code
before its fix and passes after. A verdict must mean what a user thinks it means."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from netemu.scenario.loader import load_scenario_text

pytestmark = [pytest.mark.root, pytest.mark.timeout(60)]


def run(text: str, tmp_path: Path):
    from netemu.scenario.session import run_scenario

    sc = load_scenario_text(text, str(tmp_path / "s.yaml"))
    return asyncio.run(run_scenario(sc, tmp_path / "run"))


def test_a_connections_local_port_is_the_port_used(tmp_path: Path):
    # 45678, not 40000: netemu's first ephemeral port is 40000, which hid the bug.
    out = run(
        """\
name: named_port
peer: kernel
connections: {d: {local_port: 45678}}
steps:
  - peer: {listen: 8080}
  - connect: {conn: d, port: 8080}
  - peer: accept
  - expect_state: {conn: d, state: ESTABLISHED}
""",
        tmp_path,
    )
    assert out.passed, out.report["error"]
    syn = out.report["segments"][0]
    assert syn["flags"] == "SYN" and syn["src"].endswith(":45678"), syn


def test_a_dropped_incoming_segment_never_matches(tmp_path: Path):
    # An impaired incoming direction used to record the frame on arrival and let the
    # drop rule take it later, unmarked: the dropped segment then satisfied this
    # expectation. Only the kernel's retransmission (after its RTO, 200 ms or more)
    # may, and it cannot within 100 ms.
    out = run(
        """\
name: dropped_in
peer: kernel
network: {in: {delay: 1ms}}
steps:
  - peer: {listen: 8080}
  - connect: 8080
  - peer: accept
  - drop: {dir: in, match: {len: ">0"}}
  - peer: {send: {bytes: 100}}
  - expect_segment: {dir: in, len: 100, within: 100ms}
""",
        tmp_path,
    )
    assert not out.passed
    assert "no segment matched" in out.report["error"], out.report["error"]
    data = [s for s in out.report["segments"] if s["len"] == 100]
    assert data and data[0]["mark"] == "dropped", data


def test_a_closed_pipe_ends_the_output_not_the_run(tmp_path: Path):
    # `netemu run … | head -1`: the run goes on to its verdict, with no traceback.
    import subprocess
    import sys

    root = Path(__file__).resolve().parents[2]
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "netemu",
            "run",
            "-o",
            str(tmp_path / "r"),
            str(root / "scenarios" / "handshake.yaml"),
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        cwd=tmp_path,
    )
    assert proc.stdout is not None and proc.stderr is not None
    proc.stdout.readline()
    proc.stdout.close()
    err = proc.stderr.read().decode()
    assert proc.wait(timeout=30) == 0, err
    assert "Traceback" not in err and "BrokenPipeError" not in err, err
    assert (tmp_path / "r" / "report.json").is_file()


def test_the_report_records_the_seeds(tmp_path: Path):
    out = run(
        """\
name: seeded
peer: kernel
seed: 7
network: {loss: 0%}
steps:
  - peer: {listen: 8080}
  - connect: 8080
""",
        tmp_path,
    )
    assert out.passed, out.report["error"]
    assert (out.report["seed"], out.report["network_seed"]) == (7, 7)


def test_a_command_peer_that_is_not_there_is_the_environments_fault(tmp_path: Path):
    # exit 3 (environment), not 1 (a failed test): nothing about TCP was tested
    import subprocess
    import sys

    f = tmp_path / "nocmd.yaml"
    f.write_text(
        "name: nocmd\npeers:\n  p: {kind: command, command: [/nonexistent/x]}\n"
        "steps:\n  - sleep: 10ms\n"
    )
    out = subprocess.run(
        [sys.executable, "-m", "netemu", "run", "-q", "-o", str(tmp_path / "r"), str(f)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert out.returncode == 3, out.stdout + out.stderr
    assert "peer program not found: /nonexistent/x" in out.stderr
    # nothing left behind: not even the trace.pcap the run had begun to stream
    assert not (tmp_path / "r").exists() or list((tmp_path / "r").iterdir()) == []
    # and the same with -j 2 (two such files at once)
    (tmp_path / "nocmd2.yaml").write_text(f.read_text().replace("nocmd", "nocmd2"))
    argv = [
        "run",
        "-q",
        "-j",
        "2",
        "-o",
        str(tmp_path / "r2"),
        str(f),
        str(tmp_path / "nocmd2.yaml"),
    ]
    out = subprocess.run(
        [sys.executable, "-m", "netemu", *argv], capture_output=True, text=True, timeout=60
    )
    assert out.returncode == 3, out.stdout + out.stderr
    assert not (tmp_path / "r2").exists() or list((tmp_path / "r2").iterdir()) == []


# --- frames that never reached the other side intact ------------------------------


def test_a_corrupted_incoming_segment_never_matches(tmp_path: Path):
    # `corrupt: 100%` flips a bit in every frame from the peer: netemu's endpoint throws
    # each away (bad checksum) and never answers the SYN. The trace keeps the frame as it
    # arrived (noted "corrupted"), and that record satisfied the expectation.
    out = run(
        """\
name: corrupt_in
peer: kernel
network: {in: {corrupt: 100%}}
steps:
  - listen: 9000
  - peer: {connect: {port: 9000, wait: false}}
  - expect_segment: {dir: in, flags: S, within: 200ms}
""",
        tmp_path,
    )
    assert not out.passed
    assert "no segment matched" in out.report["error"], out.report["error"]
    assert "corrupted" in out.report["error"], out.report["error"]


def test_a_corrupted_outgoing_segment_never_matches(tmp_path: Path):
    # With this seed the ARP request goes through and the SYN has a bit flipped in its
    # timestamp option: its fields still read S, its checksum is bad, the kernel drops
    # it and does not answer. The corrupted frame on the wire satisfied the expectation.
    out = run(
        """\
name: corrupt_out
peer: kernel
network: {out: {corrupt: 50%}}
seed: 3
steps:
  - peer: {listen: 8080}
  - connect: {port: 8080, wait: false}
  - expect_segment: {dir: out, flags: S, within: 200ms}
""",
        tmp_path,
    )
    assert not out.passed
    assert "no segment matched" in out.report["error"], out.report["error"]
    syn = [s for s in out.report["segments"] if s["direction"] == "out"]
    assert syn and syn[0]["flags"] == "SYN" and syn[0]["mark"] is None, syn
    assert not [s for s in out.report["segments"] if s["direction"] == "in"], (
        "the kernel answered the corrupted SYN"
    )


def test_a_corrupted_segment_through_the_relay_never_matches(tmp_path: Path):
    # Relay mode records each frame as it reaches the bridge, the corrupted one noted:
    # with this seed the client's ARP request crosses and its SYN is corrupted; the
    # server's kernel drops it (no SYN+ACK), and the noted record satisfied this.
    out = run(
        """\
name: relay_corrupt
mode: relay
peers: {client: kernel, server: kernel}
network: {out: {corrupt: 50%}}
seed: 3
steps:
  - peer: {peer: server, listen: 8080}
  - peer: {peer: client, connect: {port: 8080, wait: false}}
  - expect_segment: {dir: out, flags: S, within: 300ms}
""",
        tmp_path,
    )
    assert not out.passed
    assert "corrupted on the way" in out.report["error"], out.report["error"]
    assert not [s for s in out.report["segments"] if s["direction"] == "in"], (
        "the server answered the corrupted SYN"
    )


def test_an_injected_segment_with_a_bad_checksum_is_not_delivered(tmp_path: Path):
    # `inject: {dir: in, bad_checksum: true}` handed the segment to netemu's endpoint
    # anyway, which reset the connection: a stack drops such a segment unread.
    out = run(
        """\
name: bad_checksum_in
peer: kernel
steps:
  - peer: {listen: 8080}
  - connect: 8080
  - peer: accept
  - inject: {dir: in, flags: R, seq: 1, bad_checksum: true}
  - expect_event: {event: reset, within: 100ms}
""",
        tmp_path,
    )
    assert not out.passed
    assert "no reset event" in out.report["error"], out.report["error"]
    rst = [s for s in out.report["segments"] if s["flags"] == "RST"]
    assert rst and rst[0]["mark"] == "injected", rst


def test_an_injected_segment_with_a_bad_checksum_never_matches(tmp_path: Path):
    # The kernel drops it; the injected frame satisfied expect_segment all the same.
    out = run(
        """\
name: bad_checksum_out
peer: kernel
steps:
  - peer: {listen: 8080}
  - connect: 8080
  - peer: accept
  - inject: {dir: out, flags: P., seq: 1, ack: 1, data: "hi", bad_checksum: true}
  - expect_segment: {dir: out, data: "hi", within: 100ms}
""",
        tmp_path,
    )
    assert not out.passed
    assert "no segment matched" in out.report["error"], out.report["error"]


def test_a_peer_read_of_n_bytes_needs_n_bytes(tmp_path: Path):
    # The kernel agent's read stops at EOF: `peer: {read: 100}` passed with the 10
    # bytes netemu sent before its FIN.
    out = run(
        """\
name: short_read
peer: kernel
steps:
  - peer: {listen: 8080}
  - connect: 8080
  - peer: accept
  - send: "0123456789"
  - close
  - peer: {read: 100, timeout: 1s}
""",
        tmp_path,
    )
    assert not out.passed
    assert "the peer read 10 bytes, expected 100" in out.report["error"], out.report["error"]


# --- frames of another connection ------------------------------------------------------


def test_an_expectation_on_a_connection_the_peer_opened_ignores_the_others(tmp_path: Path):
    # d is the peer's connection to netemu's listener, not yet accepted: its ports were
    # unknown until `accept`, so every frame was d's, and c's "hi" satisfied this.
    out = run(
        """\
name: other_conn_data
peer: kernel
connections: [c, d]
steps:
  - peer: {listen: 8080}
  - connect: {conn: c, port: 8080}
  - peer: {accept: true, conn: c}
  - listen: 9000
  - peer: {connect: 9000, conn: d}
  - peer: {send: "hi", conn: c}
  - expect_segment: {conn: d, dir: in, data: "hi", within: 100ms}
""",
        tmp_path,
    )
    assert not out.passed
    assert "no segment matched" in out.report["error"], out.report["error"]


def test_an_expectation_on_a_connection_not_open_yet_ignores_the_open_ones(tmp_path: Path):
    # Nothing opens d (a second connection from the peer would): c's SYN, long past,
    # satisfied this, d's ports being unknown.
    out = run(
        """\
name: other_conn_syn
peer: kernel
connections: [c, d]
steps:
  - listen: 9000
  - peer: {connect: 9000, conn: c}
  - accept: c
  - expect_segment: {conn: d, dir: in, flags: S, within: 100ms}
""",
        tmp_path,
    )
    assert not out.passed
    assert "no segment matched" in out.report["error"], out.report["error"]


# --- an expectation met by a segment from before its step says so -------------------------


def test_a_match_from_before_the_step_says_so(tmp_path: Path):
    # expect_segment scans on from where the last one stopped: "hello" came while step
    # 4 or 5 ran. The step passes, and its message says when the segment came. The
    # retransmission of "bye" comes during step 9 itself (the original was dropped):
    # nothing to say there.
    import re

    out = run(
        """\
name: earlier
peer: kernel
steps:
  - peer: {listen: 8080}
  - connect: 8080
  - peer: accept
  - peer: {send: "hello"}
  - sleep: 50ms
  - expect_segment: {dir: in, data: "hello"}
  - drop: {dir: out, match: {len: ">0"}}
  - send: "bye"
  - expect_segment: {dir: out, data: "bye"}
""",
        tmp_path,
    )
    assert out.passed, out.report["error"]
    steps = out.report["steps"]
    message = steps[5]["message"]
    assert steps[5]["status"] == "pass"
    assert re.fullmatch(
        r"matched ← \[P\.\] seq=1 ack=1 win=\d+ len=5( <[^>]*>)?, sent "
        r"0\.0[4-9]\d s before this step began \(during step [45]\)",
        message,
    ), message
    assert (steps[8]["status"], steps[8]["message"]) == ("pass", ""), steps[8]
    assert "✓ step 6: matched ← [P.] seq=1" in (tmp_path / "run" / "ladder.txt").read_text()


# --- names ---------------------------------------------------------------------------------


def test_an_accepted_connection_carries_its_scenario_name(tmp_path: Path):
    # Named only once accepted, its states before that (SYN-RECEIVED, ESTABLISHED) and
    # the ladder's heading had the host's name for it, "9000<198.18.0.2:…".
    out = run(
        """\
name: accepted_name
peer: kernel
steps:
  - listen: 9000
  - peer: {connect: 9000, conn: s}
  - accept: s
  - close: s
  - expect_state: {conn: s, state: FIN-WAIT-2}
""",
        tmp_path,
    )
    assert out.passed, out.report["error"]
    ours = [
        (s["conn"], s["new"])
        for s in out.report["states"]
        if s["local"].endswith(":9000") and s["new"] != "LISTEN"
    ]
    assert [new for _, new in ours][:3] == ["SYN-RECEIVED", "ESTABLISHED", "FIN-WAIT-1"], ours
    assert {conn for conn, _ in ours} == {"s"}, ours
    assert [c["conn"] for c in out.report["conversations"]] == ["s"]
    heading = out.ladder.splitlines()[2]
    assert heading.startswith("── TCP 198.18.0.1:9000 ⇄ 198.18.0.2:") and " [s] " in heading, (
        heading
    )


# --- inject's defaults ---------------------------------------------------------------------


def test_an_injected_segments_seq_and_ack_default_to_the_connections_current_values(tmp_path: Path):
    # docs/scenarios.md: "seq, ack (default: the connection's current values)". They were
    # 0 (relative): this RST came at the peer's ISN, out of the window, and reset nothing.
    out = run(
        """\
name: inject_defaults
peer: kernel
steps:
  - peer: {listen: 8080}
  - connect: 8080
  - peer: accept
  - peer: {send: "hi"}
  - recv: "hi"
  - inject: {dir: in, flags: R}
  - expect_event: {event: reset, within: 100ms}
""",
        tmp_path,
    )
    assert out.passed, out.report["error"]
    rst = [s for s in out.report["segments"] if s["flags"] == "RST"]
    assert rst and (rst[0]["mark"], rst[0]["seq"]) == ("injected", 3), rst


def test_a_raw_connections_injected_ack_defaults_to_what_came_from_the_peer(tmp_path: Path):
    # The handshake's last ACK with neither seq nor ack: seq 1 (after our SYN), ack 1
    # (after the kernel's SYN+ACK). It was seq 0 ack 0, which the kernel answers with a
    # RST, its socket never ESTABLISHED.
    out = run(
        """\
name: raw_defaults
peer: kernel
connections:
  r: {raw: true, port: 8080}
steps:
  - peer: {listen: 8080}
  - inject: {flags: S, seq: 0}
  - expect_segment: {dir: in, flags: SYN+ACK, ack: 1}
  - inject: {flags: "."}
  - expect_peer_state: {conn: r, state: ESTABLISHED, within: 1s}
""",
        tmp_path,
    )
    assert out.passed, out.report["error"]
    ack = [s for s in out.report["segments"] if s["flags"] == "ACK" and s["mark"] == "injected"]
    assert ack and (ack[0]["seq"], ack[0]["ack"]) == (1, 1), ack


def test_an_expectation_without_a_connection_does_not_match_a_segment_twice(tmp_path: Path):
    # With no connection of the scenario's (the peer, a program, connects by itself),
    # every expect_segment scanned the trace from its start: the one SYN met both, and
    # "two SYNs came" passed. netemu answers the first; the second is not there.
    client = (
        "import os, socket, time; time.sleep(0.3); "
        "s = socket.create_connection((os.environ['NETEMU_EMU_IP'], 9000), timeout=5); "
        "time.sleep(5)"
    )
    out = run(
        f"""\
name: no_conn
peers: {{p: {{kind: command, command: [python3, -c, "{client}"]}}}}
steps:
  - listen: 9000
  - expect_segment: {{dir: in, flags: S, within: 3s}}
  - expect_segment: {{dir: in, flags: S, within: 300ms}}
""",
        tmp_path,
    )
    assert not out.passed
    assert out.report["steps"][1]["status"] == "pass", out.report["steps"]
    assert "no segment matched" in out.report["error"], out.report["error"]


def test_a_steps_note_is_in_the_ladder(tmp_path: Path):
    # docs/scenarios.md: "Every step accepts note: (shown in the ladder)". It was not.
    out = run(
        """\
name: noted
peer: kernel
steps:
  - peer: {listen: 8080, note: the kernel listens first}
  - connect: {port: 8080, note: our SYN goes out}
""",
        tmp_path,
    )
    assert out.passed, out.report["error"]
    ladder = (tmp_path / "run" / "ladder.txt").read_text()
    assert "the kernel listens first" in ladder and "our SYN goes out" in ladder, ladder
    assert [n["text"] for n in out.report["notes"] if "our SYN" in n["text"]] == [
        "step 2: connect port=8080 — our SYN goes out"
    ], out.report["notes"]


def test_a_congestion_control_the_host_refuses_a_program_peer_is_the_environments_fault(
    tmp_path: Path,
):
    # Where the host lets a network namespace default only to some algorithms
    # (net.ipv4.tcp_allowed_congestion_control), the kernel agent sets the scenario's
    # per socket; any other peer silently got the host's default instead.
    from netemu.run.result import EnvironmentProblem

    proc = Path("/proc/sys/net/ipv4")
    allowed = (proc / "tcp_allowed_congestion_control").read_text().split()
    refused = [
        a
        for a in (proc / "tcp_available_congestion_control").read_text().split()
        if a not in allowed
    ]
    if not refused:
        pytest.skip("this host lets a namespace default to every congestion control it has")
    with pytest.raises(EnvironmentProblem, match=f"peer 'p' .*congestion control {refused[0]}"):
        run(
            f"""\
name: cc_refused
peers: {{p: {{kind: command, command: [sleep, "5"], congestion_control: {refused[0]}}}}}
steps:
  - sleep: 10ms
""",
            tmp_path,
        )
