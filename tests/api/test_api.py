"""netemu.api (docs/python.md) on a real lab: settings checked as a scenario's, steps
a call at a time with the caller's line, streams and steps on one set of connections,
impairments applied, both sides' states, the run directory, and nothing left behind
whatever the body does."""

from __future__ import annotations

import json
import os
import subprocess

import anyio
import pytest

from netemu.api import SettingsError, StepError, open_lab

pytestmark = [pytest.mark.root, pytest.mark.timeout(60)]


def left_behind(runid: str) -> list[str]:
    """What of lab ``runid`` is still there: its lock file, its tracefs instance, its
    processes (other runs on this machine are not looked at)."""
    left = [
        p for p in (f"/run/netemu/{runid}.lock", f"/sys/kernel/tracing/instances/netemu-{runid}")
    ]
    left = [p for p in left if os.path.exists(p)]
    ps = subprocess.run(["ps", "-eo", "pid,args"], capture_output=True, text=True).stdout
    return left + [line for line in ps.splitlines() if f"netemu-{runid}" in line]


@pytest.mark.parametrize(
    "settings, message",
    [
        ({"peer": "kernal"}, "at `peer: kernal`: unknown peer kind 'kernal' (did you mean"),
        ({"network": {"delay": "5x"}}, "at `delay: 5x`: delay: bad duration '5x'"),
        ({"peerz": "kernel"}, "unknown setting(s) peerz: open_lab takes a scenario's"),
        ({"steps": []}, "unknown setting(s) steps"),
    ],
)
async def test_bad_settings_raise_before_any_lab(settings, message, tmp_path):
    with pytest.raises(SettingsError) as e:
        async with open_lab(run_dir=tmp_path / "run", **settings):
            pytest.fail("the body ran")
    assert str(e.value).startswith(message)
    assert not (tmp_path / "run").exists()


async def test_a_conversation_with_the_kernel_both_sides_and_the_run_dir(tmp_path):
    async with open_lab("cw", peer="kernel", options={"msl": "200ms"}, run_dir=tmp_path) as lab:
        await lab.step({"peer": {"listen": 8080}})
        stream = await lab.connect(8080)
        line = 1 + _line()  # the next line's number
        await lab.step("peer: accept")
        await stream.send(b"x" * 3000)
        await lab.step({"peer": {"read": 3000}})
        await lab.step({"peer": "close"})
        with pytest.raises(anyio.EndOfStream):
            await stream.receive()
        await stream.aclose()
        await lab.steps(
            "- expect_state: {state: CLOSED, within: 2s}\n- expect_peer_state: TIME-WAIT"
        )
        runid = lab.lab.runid
    assert lab.result == "pass" and lab.error is None
    assert lab.states() == ["SYN-SENT", "ESTABLISHED", "CLOSE-WAIT", "LAST-ACK", "CLOSED"]
    assert lab.peer_states() == [
        "SYN-RECEIVED",
        "ESTABLISHED",
        "FIN-WAIT-1",
        "FIN-WAIT-2",
        "TIME-WAIT",
    ]
    assert lab.trace.peer_states[0].state == "LISTEN"  # every socket's: the listener's too
    report = json.loads((tmp_path / "report.json").read_text())
    assert report == lab.report and report["result"] == "pass"
    steps = report["steps"]
    assert [s["action"] for s in steps][:3] == ["peer", "connect", "peer"]
    assert steps[2]["line"] == line  # a step's line is the test's line that ran it
    assert (tmp_path / "trace.pcap").stat().st_size > 0
    assert "LAST-ACK" in (tmp_path / "ladder.txt").read_text()
    assert left_behind(runid) == []


def _line() -> int:
    import sys

    return sys._getframe(1).f_lineno


async def test_a_failed_step_raises_with_the_callers_line_and_fails_the_run(tmp_path):
    with pytest.raises(StepError) as e:
        async with open_lab(peer="kernel", run_dir=tmp_path) as lab:
            await lab.step({"peer": {"listen": 8080}})
            await lab.connect(8080)
            line = 1 + _line()
            await lab.step({"expect_segment": {"dir": "in", "flags": "R", "within": "100ms"}})
    assert str(e.value).startswith(f"{__file__}:{line}: step 3 (expect_segment")
    assert "no segment matched" in str(e.value)
    assert lab.result == "fail" and lab.error.startswith(f"step 3 (line {line}) expect_segment")
    assert json.loads((tmp_path / "report.json").read_text())["result"] == "fail"


async def test_an_exception_in_the_body_fails_the_run_and_takes_the_lab_down(tmp_path):
    with pytest.raises(KeyError):
        async with open_lab(peer="kernel", run_dir=tmp_path) as lab:
            runid = lab.lab.runid
            assert left_behind(runid) != []  # (the check sees a live lab)
            raise KeyError("mine")
    assert lab.result == "fail" and lab.error == "KeyError: 'mine'"
    assert json.loads((tmp_path / "report.json").read_text())["error"] == "KeyError: 'mine'"
    assert left_behind(runid) == []


async def test_streams_and_steps_share_named_connections():
    async with open_lab(peer="kernel") as lab:
        await lab.step({"peer": {"listen": 9000}})
        a = await lab.connect(9000, conn="a")
        await lab.step({"peer": {"accept": True, "conn": "a"}})
        await lab.step({"send": {"conn": "a", "data": "hi"}})  # a step on the stream's conn
        await lab.step({"peer": {"conn": "a", "expect": "hi"}})
        await a.send(b"there")
        await lab.step({"peer": {"conn": "a", "expect": "there"}})
        assert lab.stream("a") is a
        with pytest.raises(RuntimeError, match="connection 'b' is not open"):
            lab.stream("b")
        with pytest.raises(SettingsError, match="unknown connection 'b' \\(connections: a\\)"):
            await lab.step({"expect_state": {"conn": "b", "state": "CLOSED"}})
    assert lab.result == "pass"
    assert lab.run_dir is None and lab.report is None  # no run_dir: nothing written


async def test_the_network_setting_is_applied():
    async with open_lab(peer="kernel", network={"out": {"delay": "60ms"}}) as lab:
        await lab.step({"peer": {"listen": 8080}})
        await lab.connect(8080)
    # our SYN held 60 ms on its way out (the trace has frames as they left: after it)
    t = {r.new: r.t for r in lab.trace.states}
    assert t["ESTABLISHED"] - t["SYN-SENT"] >= 0.055


async def test_a_server_program_in_the_peer_namespace(tmp_path):
    server = "import socket; s = socket.create_server(('', 7070)); c, _ = s.accept(); "
    server += "c.sendall(b'served'); c.close()"
    import sys

    async with open_lab(peer="kernel") as lab:
        await lab.start_server([sys.executable, "-c", server], port=7070)
        stream = await lab.connect(7070)
        assert await stream.receive() == b"served"
        with pytest.raises(anyio.EndOfStream):
            await stream.receive()


async def test_mistakes_are_named_at_the_callers_line():
    import sys

    async with open_lab(peer="kernel") as lab:
        await lab.step({"peer": {"listen": 8080}})
        first = 1 + _line()
        await lab.connect(8080)
        with pytest.raises(SettingsError) as e:
            await lab.connect(8080)
        here = f"{__file__}:{first + 2}: step "
        mine = f"test_api.py:{first}"
        assert str(e.value).startswith(here) and f"already opened by the connect at {mine}" in str(
            e.value
        )
        with pytest.raises(SettingsError, match=r"did you mean 'ESTABLISHED'\?"):
            await lab.step("expect_state: ESTABLISH")
        with pytest.raises(SettingsError, match=r"is not YAML: expected the node content"):
            await lab.step("expect_state: [")
        with pytest.raises(StepError, match=r"connect to port 7404 failed: refused, closed"):
            await lab.connect(7404, conn="x")
        with pytest.raises(TimeoutError, match=r"did not listen on port 7011 within 0.5 s"):
            server = [sys.executable, "-m", "http.server", "7010"]
            await lab.start_server(server, port=7011, timeout=0.5)
        with pytest.raises(FileNotFoundError, match=r"program not found: /nonexistent/srv"):
            await lab.start_server(["/nonexistent/srv"], port=7013)


async def test_a_lab_over_ipv6():
    async with open_lab(peer="kernel", family="ipv6") as lab:
        assert (lab.emu_ip, lab.peer_ip) == ("2001:2::1", "2001:2::2")
        await lab.step({"peer": {"listen": 8080}})
        stream = await lab.connect(8080)
        await lab.step("peer: accept")
        await stream.send(b"over six")
        await lab.step({"peer": {"expect": "over six"}})
        await stream.aclose()
        await lab.step("expect_peer_state: CLOSE-WAIT")
    assert lab.result == "pass"
    assert lab.peer_states() == ["SYN-RECEIVED", "ESTABLISHED", "CLOSE-WAIT"]
    tcp6 = [f for f in lab.trace.frames if f.data[12:14] == b"\x86\xdd"]
    assert tcp6 and all(f.data[12:14] != b"\x08\x00" for f in lab.trace.frames)
