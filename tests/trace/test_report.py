"""report.json and JUnit XML."""

from __future__ import annotations

import json
import os
import xml.etree.ElementTree as ET

from netemu.trace import Trace
from netemu.trace.report import JUnitCase, write_junit, write_report


def test_report_json(full_trace: Trace, tmp_path) -> None:
    steps = [
        {"line": 7, "step": "connect", "result": "pass"},
        {"line": 9, "step": "expect peer CLOSED", "result": "pass", "took": 0.1},
    ]
    path = tmp_path / "report.json"
    rep = write_report(
        path,
        scenario="close_wait",
        result="pass",
        trace=full_trace,
        steps=steps,
        duration=1.5,
        extra={"peer": "kernel"},
    )
    assert json.loads(path.read_text()) == rep
    assert os.listdir(tmp_path) == ["report.json"]
    assert rep["scenario"] == "close_wait" and rep["result"] == "pass"
    assert rep["steps"] == steps and rep["peer"] == "kernel" and rep["duration"] == 1.5
    assert rep["started_at"].startswith("2023-11-14T22:13:20")
    segs = rep["segments"]
    assert len(segs) == 14 and rep["other_frames"] == 1
    assert segs[0] == {
        "frame": 2,
        "t": 0.001,
        "direction": "out",
        "conversation": 0,
        "src": "198.18.0.1:40000",
        "dst": "198.18.0.2:8080",
        "flags": "SYN",
        "seq": 0,
        "ack": None,
        "len": 0,
        "win": 64240,
        "win_raw": 64240,
        "seq_raw": 1000,
        "ack_raw": 0,
        "mark": None,
        "note": None,
        "analysis": [],
    }
    assert [s["mark"] for s in segs].count("dropped") == 1
    assert [s["mark"] for s in segs].count("injected") == 1
    assert (segs[-1]["flags"], segs[-1]["seq"], segs[-1]["ack"]) == ("ACK", 7, 8)
    assert [s["new"] for s in rep["states"]] == [
        "SYN-SENT",
        "ESTABLISHED",
        "FIN-WAIT-1",
        "FIN-WAIT-2",
        "TIME-WAIT",
        "CLOSED",
    ]
    assert rep["states"][0]["local"] == "198.18.0.1:40000"
    assert [s["state"] for s in rep["peer_states"]][-3:] == ["CLOSE-WAIT", "LAST-ACK", "CLOSED"]
    assert rep["peer_states"][-1]["kernel_state"] == "CLOSE"
    assert rep["notes"][0] == {"t": 0.0, "kind": "step", "text": "connect"}
    assert rep["conversations"] == [
        {
            "number": 0,
            "left": "198.18.0.1:40000",
            "right": "198.18.0.2:8080",
            "conn": "c1",
            "segments": 14,
        }
    ]


def test_report_without_trace_and_odd_values(tmp_path) -> None:
    rep = write_report(
        tmp_path / "r.json",
        scenario="x",
        result="error",
        error="lab setup failed",
        steps=[{"obj": object()}],
    )
    data = json.loads((tmp_path / "r.json").read_text())
    assert data["error"] == "lab setup failed" and "segments" not in data
    assert data["steps"][0]["obj"].startswith("<object")
    assert rep["result"] == "error"


def test_junit_several_scenarios(tmp_path) -> None:
    report_fail = {
        "scenario": "close_wait",
        "result": "fail",
        "duration": 2.25,
        "steps": [
            {
                "line": 12,
                "step": "expect peer CLOSE-WAIT",
                "result": "fail",
                "message": "peer is ESTABLISHED\x07",
            },
            {"line": 14, "step": "close", "result": "pass"},
        ],
    }
    cases = [
        JUnitCase("handshake", "pass", 0.5, file="scenarios/handshake.yaml"),
        report_fail,
        JUnitCase("go_peer", "skip", message="needs Go"),
        JUnitCase(
            "lab",
            "error",
            0.1,
            message="netns: permission denied",
            details="Traceback…",
            stdout="ladder here",
        ),
    ]
    path = tmp_path / "junit.xml"
    write_junit(path, cases, suite_name="netemu scenarios")
    root = ET.parse(path).getroot()
    assert root.tag == "testsuites"
    (suite,) = root
    assert (
        suite.get("tests"),
        suite.get("failures"),
        suite.get("errors"),
        suite.get("skipped"),
    ) == ("4", "1", "1", "1")
    assert suite.get("name") == "netemu scenarios" and suite.get("time") == "2.850"
    tcs = {tc.get("name"): tc for tc in suite}
    assert list(tcs["handshake"]) == [] and tcs["handshake"].get("file")
    failure = tcs["close_wait"].find("failure")
    assert failure is not None
    assert failure.get("message") == "line 12: expect peer CLOSE-WAIT: peer is ESTABLISHED"
    assert tcs["close_wait"].get("time") == "2.250"
    assert tcs["go_peer"].find("skipped").get("message") == "needs Go"
    err = tcs["lab"].find("error")
    assert err.get("message") == "netns: permission denied" and err.text == "Traceback…"
    assert tcs["lab"].find("system-out").text == "ladder here"
