"""State inference on captures that are not tidy (issue 19): holes in the capture,
TCP Fast Open, a socket connected to itself, simultaneous open, a clock that goes
back, a capture that starts mid-connection, and notes of two connections at once.
Each capture is built with scapy."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from netemu.cli import main
from netemu.trace.infer import trace_from_pcap
from netemu.trace.ladder import render_ladder_text

from . import scapy_caps
from .scapy_caps import C, S


class Cap(scapy_caps.Cap):
    """scapy_caps.Cap with a plain handshake (no options)."""

    def handshake(self) -> None:
        self.at(0, C, "S", 0)
        self.at(0.01, S, "SA", 0, 1)
        self.at(0.01, C, "A", 1, 1)


def states(path: Path, side: tuple[str, int]) -> list[tuple[str, bool]]:
    trace = trace_from_pcap(path)
    return [(s.new, s.inferred) for s in trace.states if s.local == side]


def test_an_ack_across_a_hole_acks_the_fin(tmp_path: Path) -> None:
    """The segment before the FIN was not captured: the receiver's ACK of the FIN says
    it got both (CLOSE-WAIT, inferred), and the FIN's sender goes on to FIN-WAIT-2."""
    c = Cap()
    c.handshake()
    c.at(0.01, C, "PA", 1, 1, n=10)
    c.at(0.001, C, "FA", 21, 1)  # 11-21 not captured
    c.at(0.01, S, "A", 1, 22)
    c.at(0.01, S, "FA", 1, 22)
    c.at(0.01, C, "A", 22, 2)
    path = c.write(tmp_path)
    assert states(path, C) == [
        ("SYN-SENT", False),
        ("ESTABLISHED", False),
        ("FIN-WAIT-1", False),
        ("FIN-WAIT-2", False),
        ("TIME-WAIT", False),
    ]
    assert states(path, S) == [
        ("SYN-RECEIVED", False),
        ("ESTABLISHED", False),
        ("CLOSE-WAIT", True),
        ("LAST-ACK", False),
        ("CLOSED", False),
    ]
    text = render_ladder_text(trace_from_pcap(path), roles=("client", "server"), width=200)
    assert "CLOSE-WAIT (inferred)" in text


def test_fast_open(tmp_path: Path) -> None:
    """A SYN carrying data, a SYN+ACK acking it: not a "wrong ack"."""
    c = Cap()
    c.at(0, C, "S", 0, n=20)
    c.at(0.01, S, "SA", 0, 21)
    c.at(0.01, C, "A", 21, 1)
    c.at(0.01, S, "PA", 1, 21, n=5)
    path = c.write(tmp_path)
    trace = trace_from_pcap(path)
    assert not trace.notes
    assert [s.new for s in trace.states if s.local == C] == ["SYN-SENT", "ESTABLISHED"]
    assert "Fast Open" in trace.states[2].cause
    assert [s.new for s in trace.states if s.local == S] == ["SYN-RECEIVED", "ESTABLISHED"]


def test_self_connection(tmp_path: Path) -> None:
    """One socket connected to itself receives what it sends."""
    c = Cap()
    for flags, seq, ack in (("S", 0, 0), ("SA", 0, 1), ("A", 1, 1), ("FA", 1, 1), ("A", 2, 2)):
        c.at(0.001, C, flags, seq, ack, dst=C)
    assert [s for s, _ in states(c.write(tmp_path), C)] == [
        "SYN-SENT",
        "SYN-RECEIVED",
        "ESTABLISHED",
        "FIN-WAIT-1",
        "CLOSING",
        "TIME-WAIT",
    ]


def test_simultaneous_open(tmp_path: Path) -> None:
    """Crossing SYNs: each side sent its SYN before the other's arrived."""
    c = Cap()
    c.at(0, C, "S", 0)
    c.at(0.0001, S, "S", 0)
    c.at(0.01, C, "SA", 0, 1)
    c.at(0.0001, S, "SA", 0, 1)
    c.at(0.01, C, "PA", 1, 1, n=10)
    path = c.write(tmp_path)
    for side in (C, S):
        assert [s for s, _ in states(path, side)] == ["SYN-SENT", "SYN-RECEIVED", "ESTABLISHED"]


def test_clock_going_back_keeps_file_order(tmp_path: Path) -> None:
    c = Cap()
    c.handshake()
    c.at(0.01, C, "PA", 1, 1, n=10)
    c.at(-0.005, S, "A", 1, 11)  # stamped before the data it acks
    c.at(0.01, C, "FA", 11, 1)
    path = c.write(tmp_path)
    text = render_ladder_text(trace_from_pcap(path), roles=("client", "server"), width=200)
    frames = [int(w[1:]) for line in text.splitlines() for w in line.split()[1:2] if w[0] == "#"]
    assert frames == [1, 2, 3, 4, 5, 6]
    (back,) = [line for line in text.splitlines() if "time goes back" in line]
    assert "#5" in back and "0.005000 s" in back
    # FIN-WAIT-1 after the ACK it follows, not before it
    lines = text.splitlines()
    assert lines.index(back) < next(i for i, x in enumerate(lines) if "FIN-WAIT-1" in x)


def test_roles_from_ports_mid_connection(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    """No SYN: the side with the lower port is taken for the server, even when it
    sends first; the ladder says so, and the states guessed are flagged."""
    c = Cap()
    c.at(0, S, "PA", 1, 1, n=100)
    c.at(0.01, C, "A", 1, 101)
    c.at(0.01, S, "FA", 101, 1)
    path = c.write(tmp_path)
    trace = trace_from_pcap(path)
    assert [fr.direction for fr in trace.frames] == ["in", "out", "in"]  # client: C
    assert "roles inferred" in trace.notes[0].text and "10.0.0.2:80" in trace.notes[0].text
    assert [(s.conn, s.new, s.inferred) for s in trace.states[:2]] == [
        ("server", "ESTABLISHED", True),
        ("client", "ESTABLISHED", True),
    ]
    assert main(["show", "--json", str(path)]) == 0
    rep = json.loads(capsys.readouterr().out)
    assert rep["conversations"][0]["left"] == "10.0.0.1:40000"
    assert [s["inferred"] for s in rep["states"]] == [True, True, False, False]


def test_notes_go_under_their_own_connection(tmp_path: Path) -> None:
    """Two connections at once: a note on the second (an ignored RST) is drawn under
    its heading, not the first's."""
    c = Cap()
    c.handshake()
    c2 = ("10.0.0.1", 40001)
    c.isn[c2] = 7000
    c.at(0.001, c2, "S", 0, dst=S)
    c.at(0.001, S, "SA", 0, 1, dst=c2)
    c.at(0.001, c2, "A", 1, 1, dst=S)
    c.at(0.001, C, "PA", 1, 1, n=10)
    c.at(0.001, S, "R", 500, dst=c2)  # not at RCV.NXT: ignored, with a note
    c.at(0.001, S, "A", 1, 11)
    path = c.write(tmp_path)
    text = render_ladder_text(trace_from_pcap(path), roles=("client", "server"), width=200)
    second = text.index("⇄ 10.0.0.2:80", text.index("10.0.0.1:40001 ⇄"))
    note = text.index("RST seq is not RCV.NXT")
    assert note > second
    assert text.count("RST seq is not RCV.NXT") == 1


def _fast_open(c: Cap) -> None:
    c.at(0, C, "S", 0, n=20)
    c.at(0.01, S, "SA", 0, 21)
    c.at(0.01, C, "A", 21, 1)
    c.at(0.01, S, "PA", 1, 21, n=5)
    c.at(0.01, C, "FA", 21, 6)
    c.at(0.01, S, "FA", 6, 22)
    c.at(0.01, C, "A", 22, 7)


def _data_then_close(c: Cap) -> None:
    c.handshake()
    c.at(0.01, C, "PA", 1, 1, n=100)
    c.at(0.001, C, "PA", 101, 1, n=100)
    c.at(0.01, S, "A", 1, 201)
    c.at(0.01, S, "FPA", 1, 201, n=7)  # data and FIN at once
    c.at(0.01, C, "A", 201, 9)
    c.at(0.01, C, "FA", 201, 9)
    c.at(0.01, S, "A", 9, 202)


@pytest.mark.parametrize("build", [_fast_open, _data_then_close])
def test_the_streamed_show_infers_as_the_whole_capture_does(
    tmp_path: Path, capsys: pytest.CaptureFixture, build
) -> None:
    """`netemu show` streams (it lets each segment's bytes go before inference, keeping
    their length); its states are those inferred from the whole capture in memory. (Its
    inference saw data segments as empty: a Fast Open SYN+ACK was "a wrong ack:
    ignored".)"""
    c = Cap()
    build(c)
    path = c.write(tmp_path)
    whole = trace_from_pcap(path)
    assert main(["show", "--json", str(path)]) == 0
    rep = json.loads(capsys.readouterr().out)
    assert [(s["new"], s["inferred"]) for s in rep["states"]] == [
        (s.new, s.inferred) for s in whole.states
    ]
    assert not whole.notes and "ignored" not in json.dumps(rep)
    assert rep["states"][-1]["new"] in ("CLOSED", "TIME-WAIT")
