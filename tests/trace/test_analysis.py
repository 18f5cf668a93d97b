"""Wireshark's TCP analysis in ``netemu show --json`` (issue 19): each capture is built
here with scapy to hold one kind of event (a retransmission after a timeout, three
duplicate ACKs and a fast retransmission, out-of-order delivery, a segment not
captured, an ACK of unseen data, keep-alives, a zero window with probes and a window
update, a full window, SACK and D-SACK), and netemu's marks are compared frame by
frame with tshark's ``tcp.analysis.*`` fields and SACK blocks."""

from __future__ import annotations

import json
import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from netemu.cli import main
from netemu.trace.analysis import Analysis

from . import scapy_caps
from .scapy_caps import C, S

SYN_WS = [("MSS", 1460), ("NOP", None), ("WScale", 7), ("SAckOK", b"")]
SYN_NO_WS = [("MSS", 1460), ("SAckOK", b"")]


class Cap(scapy_caps.Cap):
    """scapy_caps.Cap, with this file's handshake (window scaling, or not) and SACK
    blocks."""

    def handshake(self, rtt: float = 0.02, opts: list[Any] | None = None) -> None:
        opts = SYN_WS if opts is None else opts
        self.at(0, C, "S", 0, win=64240, opts=opts)
        self.at(rtt / 2, S, "SA", 0, 1, win=65160, opts=opts)
        self.at(rtt / 2, C, "A", 1, 1)

    def sack(self, *blocks: tuple[int, int]) -> list[Any]:
        isn = self.isn[C]
        return [("NOP", None), ("NOP", None), ("SAck", tuple(isn + x for b in blocks for x in b))]


def _rto(c: Cap) -> None:
    c.handshake()
    c.at(0.01, C, "PA", 1, 1, n=100)
    c.at(0.001, C, "PA", 101, 1, n=100)
    c.at(0.02, S, "A", 1, 101)
    c.at(0.3, C, "PA", 101, 1, n=100)  # after a timeout: a retransmission
    c.at(0.02, S, "A", 1, 201)


def _fast_retransmit(c: Cap) -> None:
    c.handshake()
    for i in range(6):
        c.at(0.0001, C, "PA", 1 + 100 * i, 1, n=100)
    c.at(0.02, S, "A", 1, 101)
    for k in range(1, 4):  # three duplicate ACKs, SACKing what came after the hole
        c.at(0.0002, S, "A", 1, 101, opts=c.sack((201, 201 + 100 * k)))
    c.at(0.001, C, "PA", 101, 1, n=100)  # within 20 ms of the third: fast retransmission
    c.at(0.02, S, "A", 1, 601)


def _receiver_side(c: Cap) -> None:
    """Captured at the receiver: the lost segment never shows, its hole does."""
    c.handshake()
    c.at(0.01, C, "PA", 1, 1, n=100)
    c.at(0.0001, C, "PA", 201, 1, n=100)  # 101-201 not captured
    c.at(0.0001, S, "A", 1, 101)
    c.at(0.0001, S, "A", 1, 101, opts=c.sack((201, 301)))
    c.at(0.0001, C, "PA", 301, 1, n=100)
    c.at(0.0001, S, "A", 1, 101, opts=c.sack((201, 401)))
    c.at(0.015, C, "PA", 101, 1, n=100)
    c.at(0.0001, S, "A", 1, 401)


def _out_of_order(c: Cap) -> None:
    c.handshake(rtt=0.04)
    c.at(0.01, C, "PA", 1, 1, n=100)
    c.at(0.0001, C, "PA", 201, 1, n=100)
    c.at(0.001, C, "PA", 101, 1, n=100)  # soon after: out of order
    c.at(0.02, S, "A", 1, 301)
    c.at(0.01, C, "PA", 401, 1, n=100)  # 301-401 not captured
    c.at(0.1, C, "PA", 301, 1, n=100)  # later than the first RTT: a retransmission
    c.at(0.02, S, "A", 1, 501)


def _ack_unseen(c: Cap) -> None:
    c.handshake()
    c.at(0.01, C, "PA", 1, 1, n=100)
    c.at(0.02, S, "A", 1, 101)
    c.at(0.02, S, "A", 1, 201)  # 101-201 was never captured
    c.at(0.01, C, "PA", 201, 1, n=100)
    c.at(0.02, S, "A", 1, 301)


def _ack_unseen_fin(c: Cap) -> None:
    """The client's FIN was not captured: the server ACKs it, then sends its own FIN+ACK
    with the same ack. tshark marks the first ACK of the unseen FIN only."""
    c.handshake()
    c.at(0.01, C, "PA", 1, 1, n=50)
    c.at(0.02, S, "A", 1, 51)
    c.at(0.02, S, "A", 1, 52)  # acks the FIN (51) the capture missed
    c.at(0.01, S, "FA", 1, 52)  # the same ack again: not marked a second time
    c.at(0.02, C, "A", 52, 2)


def _keep_alive(c: Cap) -> None:
    c.handshake()
    c.at(0.01, C, "PA", 1, 1, n=100)
    c.at(0.02, S, "A", 1, 101)
    c.at(7.2, C, "A", 100, 1)  # Linux's: no byte, one below SND.NXT
    c.at(0.02, S, "A", 1, 101)
    c.at(7.2, C, "A", 100, 1, n=1)  # Windows': the last byte again
    c.at(0.02, S, "A", 1, 101)


def _zero_window(c: Cap) -> None:
    c.handshake()
    c.at(0.01, C, "PA", 1, 1, n=100)
    c.at(0.02, S, "A", 1, 101, win=0)
    c.at(0.2, C, "A", 101, 1, n=1)  # probes
    c.at(0.02, S, "A", 1, 101, win=0)
    c.at(0.4, C, "A", 101, 1, n=1)
    c.at(0.02, S, "A", 1, 101, win=0)
    c.at(0.1, S, "A", 1, 101, win=8)  # the window opens
    c.at(0.02, C, "PA", 101, 1, n=100)
    c.at(0.02, S, "A", 1, 201)


def _window_full(c: Cap) -> None:
    c.handshake()
    c.at(0.01, S, "A", 1, 1, win=8)  # 8 << 7: 1024 bytes
    c.at(0.01, C, "PA", 1, 1, n=1000)
    c.at(0.0001, C, "PA", 1001, 1, n=24)  # up to the window's edge
    c.at(0.02, S, "A", 1, 1025, win=502)


def _window_full_unscaled(c: Cap) -> None:
    c.handshake(opts=SYN_NO_WS)
    c.at(0.01, S, "A", 1, 1, win=600)
    c.at(0.01, C, "PA", 1, 1, n=500)
    c.at(0.0001, C, "PA", 501, 1, n=100)
    c.at(0.02, S, "A", 1, 601, win=6000)


def _spurious_dsack(c: Cap) -> None:
    c.handshake()
    c.at(0.01, C, "PA", 1, 1, n=100)
    c.at(0.0001, C, "PA", 101, 1, n=100)
    c.at(0.02, S, "A", 1, 201)
    c.at(0.2, C, "PA", 101, 1, n=100)  # already acked: spurious
    c.at(0.02, S, "A", 1, 201, opts=c.sack((101, 201)))  # D-SACK: below the ACK
    c.at(0.01, C, "PA", 201, 1, n=100)
    c.at(0.0001, C, "PA", 401, 1, n=100)  # 301-401 not captured
    c.at(0.02, S, "A", 1, 301, opts=c.sack((401, 501)))
    c.at(0.0001, S, "A", 1, 301, opts=c.sack((451, 501), (401, 501)))  # D-SACK inside


def _mid_connection(c: Cap) -> None:
    c.at(0, C, "PA", 1, 1, n=100)
    c.at(0.0001, C, "PA", 101, 1, n=100)
    c.at(0.02, S, "A", 1, 101)
    c.at(0.001, S, "A", 1, 101)
    c.at(0.001, S, "A", 1, 101)
    c.at(0.001, C, "PA", 101, 1, n=100)
    c.at(0.02, S, "A", 1, 201)


def _simultaneous_open(c: Cap) -> None:
    """The SYN+ACKs resend the SYNs' sequence number soon after: retransmissions (a
    SYN or FIN counts in where a segment ends, so they are not out of order)."""
    c.at(0, C, "S", 0, win=64240, opts=SYN_WS)
    c.at(0.0001, S, "S", 0, win=64240, opts=SYN_WS)
    c.at(0.001, C, "SA", 0, 1, opts=SYN_WS)
    c.at(0.0001, S, "SA", 0, 1, opts=SYN_WS)
    c.at(0.001, C, "FA", 1, 1)
    c.at(0.001, C, "FA", 1, 1)  # the FIN again, soon


CASES: dict[str, Callable[[Cap], None]] = {
    "simultaneous-open": _simultaneous_open,
    "rto": _rto,
    "fast-retransmit": _fast_retransmit,
    "receiver-side": _receiver_side,
    "out-of-order": _out_of_order,
    "ack-unseen": _ack_unseen,
    "ack-unseen-fin": _ack_unseen_fin,
    "keep-alive": _keep_alive,
    "zero-window": _zero_window,
    "window-full": _window_full,
    "window-full-unscaled": _window_full_unscaled,
    "spurious-dsack": _spurious_dsack,
    "mid-connection": _mid_connection,
}

FIELDS = (
    "retransmission",
    "fast_retransmission",
    "spurious_retransmission",
    "duplicate_ack_num",
    "duplicate_ack_frame",
    "out_of_order",
    "lost_segment",
    "ack_lost_segment",
    "keep_alive",
    "keep_alive_ack",
    "zero_window",
    "zero_window_probe",
    "zero_window_probe_ack",
    "window_full",
    "window_update",
)
SACK_FIELDS = (
    "tcp.options.sack_le",
    "tcp.options.sack_re",
    "tcp.options.sack.dsack_le",
)

Marks = dict[int, tuple[list[str], str, str, str]]  # frame -> marks, sack le, re, dsack le


def tshark_marks(tshark: str, path: Path) -> Marks:
    """Frame -> (its tcp.analysis fields, "name" or "name=value", sorted; SACK edges)."""
    fields = [f"tcp.analysis.{f}" for f in FIELDS] + list(SACK_FIELDS)
    proc = subprocess.run(
        [tshark, "-n", "-2", "-r", str(path), "-T", "fields", "-E", "separator=|"]
        + ["-e", "frame.number"]
        + [a for f in fields for a in ("-e", f)],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    out: Marks = {}
    for line in proc.stdout.splitlines():
        frame, *vals = line.split("|")
        marks = []
        for name, val in zip(FIELDS, vals, strict=False):
            if val:
                marks.append(f"{name}={val}" if name.startswith("duplicate") else name)
        le, re_, dle = vals[len(FIELDS) :]
        out[int(frame)] = (sorted(marks), le, re_, dle)
    return out


def our_marks(rep: dict[str, Any]) -> Marks:
    out: Marks = {}
    for s in rep["segments"]:
        marks = [m for m in s["analysis"] if m not in ("duplicate_ack", "rst_after_close")]
        if "dup_ack" in s:
            marks += [
                f"duplicate_ack_num={s['dup_ack']['n']}",
                f"duplicate_ack_frame={s['dup_ack']['of']}",
            ]
        blocks = s.get("sack", [])
        le = ",".join(str(a) for a, _ in blocks)
        re_ = ",".join(str(b) for _, b in blocks)
        dle = str(blocks[0][0]) if s.get("dsack") else ""
        out[s["frame"]] = (sorted(marks), le, re_, dle)
    return out


def show_json(path: Path, capsys: pytest.CaptureFixture[str]) -> dict[str, Any]:
    assert main(["show", "--json", str(path)]) == 0
    return json.loads(capsys.readouterr().out)


def build(name: str, tmp: Path) -> Path:
    c = Cap()
    CASES[name](c)
    return c.write(tmp, f"{name}.pcap")


EXPECTED = {  # what each capture is built to show (and tshark agrees it does)
    "simultaneous-open": {"retransmission"},
    "rto": {"retransmission"},
    "fast-retransmit": {"duplicate_ack", "fast_retransmission"},
    "receiver-side": {"lost_segment", "duplicate_ack", "fast_retransmission"},
    "out-of-order": {"out_of_order", "lost_segment", "retransmission"},
    "ack-unseen": {"ack_lost_segment"},
    "ack-unseen-fin": {"ack_lost_segment"},
    "keep-alive": {"keep_alive", "keep_alive_ack"},
    "zero-window": {"zero_window", "zero_window_probe", "zero_window_probe_ack", "window_update"},
    "window-full": {"window_full"},
    "window-full-unscaled": {"window_full"},
    "spurious-dsack": {"spurious_retransmission", "duplicate_ack", "lost_segment"},
    "mid-connection": {"duplicate_ack", "retransmission"},
}


@pytest.mark.parametrize("name", list(CASES))
def test_marks_agree_with_tshark(
    name: str, tmp_path: Path, tshark: str, capsys: pytest.CaptureFixture[str]
) -> None:
    path = build(name, tmp_path)
    rep = show_json(path, capsys)
    got, want = our_marks(rep), tshark_marks(tshark, path)
    assert got == want
    seen = {m for s in rep["segments"] for m in s["analysis"]}
    assert EXPECTED[name] <= seen, seen


def test_the_ladder_tags_the_arrows(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("COLUMNS", "200")
    path = build("fast-retransmit", tmp_path)
    assert main(["show", str(path)]) == 0
    lines = capsys.readouterr().out.splitlines()
    (fast,) = [x for x in lines if "[fast retrans]" in x]
    assert fast.split()[1] == "#14" and "[retrans]" not in fast  # the most specific only
    dup = [x for x in lines if "[dup ack #" in x]
    assert [x.split()[1] for x in dup] == ["#11", "#12", "#13"]
    assert "[dup ack #3 of #10]" in dup[2]
    # SACK edges relative to the receiver's ISN, as the arrows' ack numbers are
    assert "[sack 201-501]" in dup[2]


def test_dsack_tag(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = build("spurious-dsack", tmp_path)
    rep = show_json(path, capsys)
    by_frame = {s["frame"]: s for s in rep["segments"]}
    assert by_frame[8]["sack"] == [[101, 201]] and by_frame[8]["dsack"] is True
    assert by_frame[11]["dsack"] is False
    assert by_frame[12]["dsack"] is True  # inside the second block
    a = Analysis(("duplicate_ack",), (1, 7), ((451, 501), (401, 501)), True)
    assert a.tags() == ["dup ack #1 of #7", "D-SACK 451-501", "sack 401-501"]


def test_rst_after_close(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """netemu's own mark: a RST from a side whose FIN the other side had acked."""
    c = Cap()
    c.handshake()
    c.at(0.01, C, "FA", 1, 1)
    c.at(0.01, S, "FA", 1, 2)
    c.at(0.01, C, "A", 2, 2)
    c.at(0.01, S, "PA", 2, 2, n=10)  # data after its FIN: the other side resets
    c.at(0.01, C, "R", 2)
    c.at(0.01, S, "R", 12)  # its FIN was acked too
    rep = show_json(c.write(tmp_path, "rst.pcap"), capsys)
    assert [s["frame"] for s in rep["segments"] if "rst_after_close" in s["analysis"]] == [8, 9]


def test_the_ladder_model_gives_marks_per_row(tmp_path: Path) -> None:
    """What the HTML page draws from: each segment row's analysis, and its annotations."""
    from netemu.trace.infer import trace_from_pcap
    from netemu.trace.ladder import render_ladder_html
    from netemu.trace.ladder_model import build_ladder

    trace = trace_from_pcap(build("fast-retransmit", tmp_path))
    rows = build_ladder(trace).sections[0].rows
    marked = {r.seg.index + 1: r.analysis.marks for r in rows if r.seg and r.analysis}
    assert marked[14] == ("fast_retransmission", "retransmission")
    assert [f for f, m in marked.items() if "duplicate_ack" in m] == [11, 12, 13]
    assert "[fast retrans]" in render_ladder_html(trace)
