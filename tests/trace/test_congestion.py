"""Congestion events in the trace: recorded with their time, every one in
report.json, and the phase changes (not every event) on our side of the ladder."""

from __future__ import annotations

import asyncio
import io
import json
import re

from netemu.host import DropRule, Host
from netemu.run.hooks import Hooks
from netemu.tcp.cc import INFINITE_SSTHRESH
from netemu.testing.links import socketpair_links
from netemu.trace import CongestionRecord, Trace
from netemu.trace.conv import conversations
from netemu.trace.ladder import build_ladder, render_ladder_html, render_ladder_text
from netemu.trace.ladder_model import INFINITE_SSTHRESH as LADDER_INFINITE
from netemu.trace.ladder_model import ladder_congestion
from netemu.trace.ladder_text import ladder_renderable
from netemu.trace.report import build_report, write_report

# as tests/trace/conftest.py's Builder has them
EMU = ("198.18.0.1", 40000)
PEER = ("198.18.0.2", 8080)
ISN_EMU = 1000
ISN_PEER = 5000
MSS = 1448
INF = INFINITE_SSTHRESH


def cc(b, t: float, cwnd: int, ssthresh: int, phase: str, cause: str) -> None:
    b.trace.congestion.append(
        CongestionRecord(100.0 + t, "c1", EMU, PEER, cwnd, ssthresh, phase, cause)
    )


def lossy_transfer(builder):
    """Handshake; ten segments, the second lost; three duplicate ACKs, fast
    retransmit, recovery; later a timeout, twice. Congestion records as the host
    makes them, including some that do not change the phase or ssthresh."""
    b = builder()
    e, p = ISN_EMU + 1, ISN_PEER + 1
    b.state(0.0005, "CLOSED", "SYN-SENT", "connect()")
    b.out(0.001, "S", e - 1)
    b.inn(0.002, "SA", p - 1, e)
    b.state(0.0021, "SYN-SENT", "ESTABLISHED", "recv SYN+ACK")
    b.out(0.003, "A", e, p)
    cc(b, 0.004, 10 * MSS, INF, "slow-start", "idle restart")  # cwnd only: not drawn
    for i in range(10):
        b.out(
            0.010 + i / 10000, "A", e + i * MSS, p, b"x" * MSS, mark="dropped" if i == 1 else None
        )
    b.inn(0.020, "A", p, e + MSS)
    for _ in range(3):
        b.inn(0.021, "A", p, e + MSS)
    # recorded at the instant the third duplicate ACK arrived; the retransmission
    # is on the wire a little later
    cc(b, 0.021, 10 * MSS, 6 * MSS, "fast-recovery", "3 duplicate ACKs")
    b.out(0.0211, "A", e + MSS, p, b"x" * MSS, note="fast retransmit")
    b.inn(0.030, "A", p, e + 10 * MSS)
    cc(b, 0.030, 6 * MSS, 6 * MSS, "congestion-avoidance", "recovered")
    cc(b, 0.031, 6 * MSS, 6 * MSS, "congestion-avoidance", "ssthresh reached")  # no change
    # a timeout: its record comes before the retransmission it sends, at one instant
    cc(b, 0.500, MSS, 3 * MSS, "loss", "timeout")
    b.out(0.500, "PA", e + 10 * MSS, p, b"y" * 100)
    cc(b, 1.000, MSS, 2 * MSS, "loss", "timeout")  # ssthresh lower again: drawn
    b.out(1.000, "PA", e + 10 * MSS, p, b"y" * 100)
    cc(b, 2.000, MSS, 2 * MSS, "loss", "timeout")  # nothing new: not drawn
    b.out(2.000, "PA", e + 10 * MSS, p, b"y" * 100)
    b.inn(2.001, "A", p, e + 10 * MSS + 100)
    return b


def _lines(text: str, needle: str) -> list[str]:
    return [x for x in text.splitlines() if needle in x]


def test_ladder_congestion_keeps_phase_and_ssthresh_changes() -> None:
    def rec(phase: str, ssthresh: int, cause: str = "", cwnd: int = 10) -> CongestionRecord:
        return CongestionRecord(0.0, "c", EMU, PEER, cwnd, ssthresh, phase, cause)

    recs = [
        rec("slow-start", INF, "idle restart", 5),  # as at the start: hidden
        rec("congestion-avoidance", 100, "ssthresh reached"),
        rec("congestion-avoidance", 100, "again", 20),  # cwnd only: hidden
        rec("fast-recovery", 50, "3 duplicate ACKs"),
        rec("congestion-avoidance", 50, "recovered"),
        rec("congestion-avoidance", 40, "loss probe repaired a tail loss"),
        rec("loss", 20, "timeout"),
        rec("loss", 20, "timeout"),  # the second hidden
        rec("loss", 10, "timeout"),
        rec("slow-start", 10, "idle restart"),
    ]
    shown = ladder_congestion(recs)
    assert [r.cause for r in shown] == [
        "ssthresh reached",
        "3 duplicate ACKs",
        "recovered",
        "loss probe repaired a tail loss",
        "timeout",
        "timeout",
        "idle restart",
    ]
    assert [r.ssthresh for r in shown if r.cause == "timeout"] == [20, 10]
    assert ladder_congestion([]) == []
    assert LADDER_INFINITE == INFINITE_SSTHRESH


def test_text_ladder_shows_phase_changes_in_time_order(builder) -> None:
    b = lossy_transfer(builder)
    text = render_ladder_text(b.trace)
    # four drawn: fast-recovery, congestion-avoidance, and two timeouts (of six)
    cc_lines = [x for x in text.splitlines() if re.search(r"│ cwnd \d+ ssthresh ", x)]
    assert len(cc_lines) == 4, text
    fr = _lines(text, "fast-recovery")
    assert len(fr) == 1
    # whole between the lifelines (the lane narrowed to fit the analysis marks, such as
    # "[dup ack #3 of #14]", right of the arrows: no space may be left before "│")
    assert re.match(
        r"^\s+0\.021\s+fast-recovery │ cwnd 14480 ssthresh 8688 "
        r"\(3 duplicate ACKs\)\s*│$",
        fr[0],
    ), fr[0]
    assert re.match(
        r"^\s+0\.030\s+congestion-avoidance │ cwnd 8688 ssthresh 8688 \(recovered\)"
        r"\s+│$",
        _lines(text, "(recovered)")[0],
    )
    assert "ssthresh reached" not in text and "idle restart" not in text
    # in time order with the segments: after the third duplicate ACK, before the
    # fast retransmission; a timeout's before the retransmission it sends
    lines = text.splitlines()
    at = lines.index(fr[0])
    assert "ack=1449" in lines[at - 1] and "<" in lines[at - 1]
    assert "fast retransmit" in lines[at + 1]
    loss = _lines(text, "loss │")
    assert [x.split()[0] for x in loss] == ["0.500", "1.000"]
    assert "cwnd 1448 ssthresh 4344 (timeout)" in loss[0]
    assert "cwnd 1448 ssthresh 2896 (timeout)" in loss[1]
    i = lines.index(loss[0])
    assert "len=100" in lines[i + 1] and lines[i + 1].split()[0] == "0.500"
    # the lifelines stay straight: the lane is as wide on a congestion line as elsewhere
    bars = {m.start() for x in lines if "│" in x for m in re.finditer("│", x)}
    assert len(bars) == 2, bars


def test_row_model_and_conversation_placement(builder) -> None:
    b = lossy_transfer(builder)
    (conv,), _ = conversations(b.trace)
    assert len(conv.congestion) == 7  # every record belongs to it
    (sec,) = build_ladder(b.trace).sections
    rows = [r for r in sec.rows if r.kind == "cc"]
    assert [(r.state, r.side) for r in rows] == [
        ("fast-recovery", "left"),
        ("congestion-avoidance", "left"),
        ("loss", "left"),
        ("loss", "left"),
    ]
    assert (
        round(rows[0].t, 6) == 0.021
        and rows[0].detail == "cwnd 14480 ssthresh 8688 (3 duplicate ACKs)"
    )
    # a record of another connection (another port) stays out of this ladder
    b.trace.congestion.append(
        CongestionRecord(100.5, "c2", ("198.18.0.1", 1), PEER, 1, 2, "loss", "timeout")
    )
    (conv,), _ = conversations(b.trace)
    assert len(conv.congestion) == 7


def test_infinite_ssthresh_is_written_as_infinity(builder) -> None:
    b = builder()
    b.out(0.001, "S", ISN_EMU)
    b.inn(0.002, "SA", ISN_PEER, ISN_EMU + 1)
    cc(b, 0.003, 14480, INF, "congestion-avoidance", "odd but possible")
    text = render_ladder_text(b.trace)
    assert "congestion-avoidance │ cwnd 14480 ssthresh ∞ (odd but possible)" in text
    rep = build_report(scenario="x", result="pass", trace=b.trace)
    assert rep["congestion"][0]["ssthresh"] == INF  # the report keeps the number


def test_html_and_rich_show_them(builder) -> None:
    from rich.console import Console

    b = lossy_transfer(builder)
    page = render_ladder_html(b.trace)
    assert page.count('<g class="cc">') == 4
    assert 'class="st cc"' in page and ">fast-recovery</text>" in page
    assert ">cwnd 14480 ssthresh 8688 (3 duplicate ACKs)</text>" in page
    assert "<title>fast-recovery: cwnd 14480 ssthresh 8688 (3 duplicate ACKs)</title>" in page
    assert "fast-recovery │ cwnd 14480" in page.split("<pre>")[1]  # the text ladder
    plain = render_ladder_text(b.trace)
    console = Console(record=True, width=250, file=io.StringIO(), color_system="truecolor")
    console.print(ladder_renderable(b.trace))
    exported = "\n".join(x.rstrip() for x in console.export_text().splitlines())
    assert exported.strip() == plain.strip()


def test_report_lists_every_congestion_event(builder, tmp_path) -> None:
    b = lossy_transfer(builder)
    rep = write_report(tmp_path / "report.json", scenario="lossy", result="pass", trace=b.trace)
    data = json.loads((tmp_path / "report.json").read_text())
    assert data["congestion"] == rep["congestion"]
    events = data["congestion"]
    assert len(events) == 7  # all of them, drawn in the ladder or not
    assert events[1] == {
        "t": 0.021,
        "side": "netemu",
        "unit": "bytes",
        "conn": "c1",
        "local": "198.18.0.1:40000",
        "remote": "198.18.0.2:8080",
        "conversation": 0,
        "cwnd": 14480,
        "ssthresh": 8688,
        "phase": "fast-recovery",
        "cause": "3 duplicate ACKs",
    }
    assert [e["phase"] for e in events] == [
        "slow-start",
        "fast-recovery",
        "congestion-avoidance",
        "congestion-avoidance",
        "loss",
        "loss",
        "loss",
    ]
    assert [e["t"] for e in events] == sorted(e["t"] for e in events)
    assert build_report(scenario="x", result="pass", trace=Trace())["congestion"] == []


async def test_host_records_congestion_events() -> None:
    """Two emulated hosts (socket-pair link, no root): a lost segment makes the
    sender's host record fast recovery and its end, with the host's clock."""
    la, lb = socketpair_links()
    a = await Host(la, "198.18.0.1", "02:00:00:00:00:01", isn_secret=b"a" * 16).start()
    b = await Host(lb, "198.18.0.2", "02:00:00:00:00:02", isn_secret=b"b" * 16).start()
    try:
        listener = await b.listen(8080)
        total = 20 * MSS
        got = bytearray()

        async def server() -> None:
            s = await listener.accept(timeout=5)
            while len(got) < total:
                got.extend(await s.receive())

        srv = asyncio.create_task(server())
        c = await a.connect("198.18.0.2", 8080)
        data_segments = 0

        def third_data_segment(seg) -> bool:
            nonlocal data_segments
            data_segments += bool(seg.payload)
            return bool(seg.payload) and data_segments == 3

        Hooks().attach(a).rules.append(DropRule("out", third_data_segment, 1))
        t_send = a.now()
        await c.send(b"z" * total)
        await asyncio.wait_for(srv, 10)
    finally:
        a.close()
        b.close()
    recs = a.trace.congestion
    phases = [r.phase for r in recs]
    assert "fast-recovery" in phases, recs
    fr = recs[phases.index("fast-recovery")]
    assert fr.local[0] == "198.18.0.1" and fr.remote == ("198.18.0.2", 8080)
    assert fr.t >= t_send and fr.cause and 0 < fr.ssthresh < INF and fr.cwnd > 0
    assert phases[-1] != "fast-recovery"  # and it ended
    text = render_ladder_text(a.trace)
    assert re.search(r"fast-recovery │ cwnd \d+ ssthresh \d+ \(", text), text
    rep = build_report(scenario="x", result="pass", trace=a.trace)
    assert [e["phase"] for e in rep["congestion"]] == phases
