"""The ladder's size policy (issue 17, 9: 300 connections of 64 KiB each way gave 89 MB
of HTML, 31 MB of text ladder and 632-704 MB of RSS while writing). Beyond
``LadderLimits`` a conversation is summarised and the conversations beyond are listed;
every event stays drawn; the pcap and report.json stay whole; the memory a ladder
takes is bounded by the limits, not by the trace (docs/trace.md, "Large traces")."""

from __future__ import annotations

import json
import re
import tracemalloc

import pytest

from netemu.bench.ladder import PeakMeter, synthetic_trace
from netemu.trace import CongestionRecord, Trace
from netemu.trace.conv import conversations
from netemu.trace.ladder import (
    DEFAULT_LIMITS,
    UNLIMITED,
    LadderLimits,
    build_ladder,
    render_ladder_html,
    render_ladder_text,
    render_ladder_texts,
    write_ladder_html,
    write_ladder_text,
)
from netemu.trace.ladder_html import MAX_PAGES
from netemu.trace.ladder_model import Row, is_event
from netemu.trace.record import PeerEventRecord
from netemu.trace.report import write_report

from .conftest import EMU, ISN_EMU, ISN_PEER, PEER, SYN_OPTS, Builder, full_conversation

MB = 1_000_000


# --- the case --------------------------------------------------------------------


def test_300_connections_of_64k_give_bounded_ladders(tmp_path) -> None:
    """300 connections at once, 64 KiB each way (43,500 segments, three steps a
    connection): before, ladder.txt was 33 MB and ladder.html 102 MB, and writing them
    raised the peak RSS by 0.28 and 0.62 GB (tracemalloc: 270 and 662 MB)."""
    trace = synthetic_trace(300, 64 * 1024)
    txt, page = tmp_path / "ladder.txt", tmp_path / "ladder.html"
    meter = PeakMeter()
    text_peak, _ = meter.measure(lambda: write_ladder_text(trace, txt))
    assert txt.stat().st_size < 3 * MB
    html_peak, _ = meter.measure(lambda: write_ladder_html(trace, page))
    assert page.stat().st_size < 10 * MB
    assert text_peak < 64 * MB and html_peak < 64 * MB, (text_peak, html_peak, meter.how)
    # what the ladder left out, it says, and lists every conversation it did not draw
    text = txt.read_text()
    flat = " ".join(text.split())
    drawn = len(re.findall(r"^── TCP ", text, re.M))
    assert 1 <= drawn < 300
    assert text.startswith("A large trace (300 conversations, 43,500 segments): the first ")
    assert (
        f"the first {drawn} of its 300 conversations are drawn (at most 10,000 rows in "
        f"all), the other {300 - drawn} listed at the end. Every segment is still in the "
        "capture, and in the JSON report (a run's report.json; netemu show --json)." in flat
    )
    (head,) = [line for line in text.splitlines() if "more conversations, not drawn" in line]
    assert head.startswith(f"── {300 - drawn} more conversations, not drawn")
    listed = re.findall(
        r"^ +(\d+) +198\.18\.0\.1:(\d+) ⇄ 198\.18\.0\.2:8080 \[c\d+\] +"
        r"145 +65,536 +65,536 +0 +0 .* TIME-WAIT +CLOSED$",
        text,
        re.M,
    )
    assert [int(n) for n, _ in listed] == list(range(drawn, 300))
    assert [int(port) for _, port in listed] == list(range(40000 + drawn, 40300))
    # ladder.html goes on over pages (ladder-2.html, …), each within the limits; the
    # index on the first links each conversation drawn to its page
    pages = sorted(tmp_path.glob("ladder*.html"))
    assert 2 <= len(pages) <= MAX_PAGES
    assert all(p.stat().st_size < 10 * MB for p in pages), [p.stat().st_size for p in pages]
    html = page.read_text()
    assert '<h2 id="index">Connections (300)</h2>' in html
    links = re.findall(r'<a href="(ladder(?:-\d+)?\.html)?#c(\d+)">', html)
    on_pages = {int(n): f or "ladder.html" for f, n in links}
    assert sorted(on_pages) == list(range(len(on_pages))) and len(on_pages) > drawn
    assert {f for f in on_pages.values()} == {p.name for p in pages}
    assert html.count("(not drawn)") == 300 - len(on_pages)
    second = (tmp_path / "ladder-2.html").read_text()
    first_there = min(n for n, f in on_pages.items() if f == "ladder-2.html")
    assert f'<section class="conv" id="c{first_there}"' in second


def test_ladder_memory_is_bounded_by_the_limits() -> None:
    """Python's own allocations while writing the HTML ladder (which holds the text
    ladder too) of the 300 connections: 662 MB before; the conversations are read one
    at a time and only the rows drawn are kept."""
    trace = synthetic_trace(300, 64 * 1024)
    trace.frames  # noqa: B018 (the trace's records made before measuring)
    import tempfile

    with tempfile.TemporaryDirectory() as tmp:
        tracemalloc.start()
        try:
            write_ladder_html(trace, f"{tmp}/ladder.html")
            peak = tracemalloc.get_traced_memory()[1]
        finally:
            tracemalloc.stop()
    assert peak < 32 * MB, peak


def test_report_json_is_whole_and_written_as_it_is_encoded(tmp_path) -> None:
    """report.json keeps every segment, byte for byte what json.dumps gave, but is
    written as it is encoded: json.dumps(indent=2) held every piece of the text until
    the end (3.9 kB of Python memory a segment; now the report's dicts, ~1 kB)."""
    trace = synthetic_trace(50, 64 * 1024)
    trace.frames  # noqa: B018
    path = tmp_path / "report.json"
    tracemalloc.start()
    try:
        rep = write_report(path, scenario="big", result="pass", trace=trace)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert path.read_text() == json.dumps(rep, indent=2, default=str, ensure_ascii=False) + "\n"
    assert len(rep["segments"]) == len(trace.frames) == 7_250
    assert [c["segments"] for c in rep["conversations"]] == [145] * 50
    assert peak / len(trace.frames) < 2_000, peak


# --- a summarised conversation ---------------------------------------------------------

N_DATA = 1500
DROP_AT, NOTE_AT, INJECT_AT, CC_AT, PEV_AT = 700, 900, 1000, 1100, 1200


def _bulk() -> Builder:
    """One connection: handshake, 1,500 data segments of 100 bytes with an ACK every
    second one, and in the middle a drop and its retransmission (no note: found by its
    sequence numbers), a note, an injected segment, a congestion change and a peer
    kernel's retransmission; then the close."""
    b = Builder()
    e, p = ISN_EMU, ISN_PEER
    b.note(0.0, "step 1: connect")
    b.state(0.0005, "CLOSED", "SYN-SENT", "connect()")
    b.out(0.001, "S", e, options=SYN_OPTS)
    b.inn(0.002, "SA", p, e + 1, options=SYN_OPTS)
    b.state(0.0021, "SYN-SENT", "ESTABLISHED", "recv SYN+ACK")
    b.out(0.003, "A", e + 1, p + 1)
    b.peer_state(0.0035, "ESTABLISHED")
    b.note(0.004, "step 2: send 150000 bytes")
    t, seq = 0.005, e + 1
    for k in range(N_DATA):
        if k == DROP_AT:
            b.out(t, "PA", seq, p + 1, b"x" * 100, mark="dropped")
            t += 0.0002
        b.out(t, "PA", seq, p + 1, b"x" * 100)
        seq += 100
        t += 0.0002
        if k % 2:
            b.inn(t, "A", p + 1, seq)
            t += 0.0002
        if k == NOTE_AT:
            b.note(t, "a note in the middle", "note")
        if k == INJECT_AT:
            b.out(t, "A", seq + 100000, p + 1, mark="injected")
        if k == CC_AT:
            b.trace.congestion.append(
                CongestionRecord(
                    100.0 + t, "c1", EMU, PEER, 14480, 7240, "fast-recovery", "3 duplicate ACKs"
                )
            )
        if k == PEV_AT:
            b.trace.peer_events.append(PeerEventRecord(100.0 + t, "peer", PEER, EMU, "retransmit"))
        t += 0.0001
    b.note(t, "step 3: close")
    b.state(t + 0.0001, "ESTABLISHED", "FIN-WAIT-1", "close()")
    b.out(t + 0.0002, "FA", seq, p + 1)
    b.inn(t + 0.0003, "A", p + 1, seq + 1)
    b.state(t + 0.0004, "FIN-WAIT-1", "FIN-WAIT-2", "recv ACK")
    b.peer_state(t + 0.0005, "CLOSE_WAIT")
    b.inn(t + 0.0006, "FA", p + 1, seq + 1)
    b.state(t + 0.0007, "FIN-WAIT-2", "TIME-WAIT", "recv FIN+ACK")
    b.out(t + 0.0008, "A", seq + 1, p + 2)
    return b


def _key(r: Row) -> tuple:
    return (
        r.kind,
        round(r.t, 9),
        r.side,
        r.state,
        r.detail,
        r.seg.index if r.seg is not None else -1,
        r.note.text if r.note else "",
        r.init,
    )


def _left_out(rows: list[Row]) -> int:
    n = 0
    for r in rows:
        if r.kind == "gap":
            m = re.match(r"… ([\d,]+) segments? left out, [\d.]+ s: ", r.detail)
            assert m, r.detail
            n += int(m.group(1).replace(",", ""))
    return n


@pytest.mark.parametrize("limits", [DEFAULT_LIMITS, LadderLimits(max_rows=300, keep=20, context=1)])
def test_a_long_conversation_is_summarised_and_keeps_every_event(limits: LadderLimits) -> None:
    trace = _bulk().trace
    (whole,) = build_ladder(trace, limits=UNLIMITED).sections
    (sec,) = build_ladder(trace, limits=limits).sections
    assert not whole.summarised and len(whole.rows) == whole.total_rows > limits.max_rows
    assert sec.summarised and sec.total_rows == len(whole.rows)
    drawn = [r for r in sec.rows if r.kind != "gap"]
    assert len(sec.rows) < limits.max_rows
    # what is drawn is drawn as the whole ladder has it, in its order
    keys = [_key(r) for r in whole.rows]
    at = [keys.index(_key(r)) for r in drawn]
    assert at == sorted(at)
    assert [_key(r) for r in drawn[: limits.keep]] == keys[: limits.keep]
    assert [_key(r) for r in drawn[-limits.keep :]] == keys[-limits.keep :]
    # every event, with its context
    events = [i for i, r in enumerate(whole.rows) if r.kind != "seg" or is_event(r.seg)]
    assert len(events) >= 20
    for i in events:
        for j in range(max(0, i - limits.context), min(len(keys), i + limits.context + 1)):
            assert j in at, whole.rows[j]
    kinds = {r.kind for r in drawn}
    assert {"init", "state", "note", "cc", "pev", "seg"} <= kinds
    segs = [r.seg for r in drawn if r.seg is not None]
    assert sum(v.dropped for v in segs) == 1 and sum(v.injected for v in segs) == 1
    (resent,) = [v for v in segs if v.retransmission]
    assert resent.frame.note is None and not resent.dropped
    assert "a note in the middle" in [r.note.text for r in drawn if r.note]
    # the lines left out count every segment not drawn
    whole_segs = sum(r.kind == "seg" for r in whole.rows)
    assert _left_out(sec.rows) + len(segs) == whole_segs
    assert _left_out(sec.rows) > whole_segs / 2


def test_a_summarised_ladder_says_so_in_text_and_html() -> None:
    limits = LadderLimits(max_rows=300, keep=20, context=1)
    trace = _bulk().trace
    text = render_ladder_text(trace, limits=limits, width=100)
    flat = " ".join(text.split())
    assert (
        "A large trace (1 conversation, 2,259 segments): 1 conversation of more than "
        "300 rows is summarised. Every segment is still in the capture" in flat
    )
    assert (
        "Summarised: " in flat
        and " of its 2,273 rows are drawn (more than 300): the "
        "first and last 20, and every state and congestion change, note, SYN, FIN, RST, "
        "drop, injection, retransmission and marked segment, with 1 row(s) either side; "
        "each stretch left out is one line. The pcap holds every segment."
        in flat
    )
    gaps = [line for line in text.splitlines() if "┆ … " in line]
    assert gaps and all(
        re.search(
            r"┆ … [\d,]+ segments left out, [\d.]+ s: → \d+ data "
            r"\([\d,]+ bytes\)",
            line,
        )
        for line in gaps
    )
    assert max(len(line) for line in text.splitlines()) <= 100
    assert "✗ dropped" in text and "[inject]" in text and "fast-recovery" in text
    assert "kernel retransmits" in text and "a note in the middle" in text
    page = render_ladder_html(trace, limits=limits)
    assert '<p class="notice">A large trace' in page and '<g class="gap">' in page
    assert page.count('<g class="gap">') == len(gaps)


def test_a_summarised_ladder_fits_the_terminal(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("COLUMNS", "80")
    whole, term = render_ladder_texts(_bulk().trace, limits=LadderLimits(max_rows=300, keep=20))
    assert max(len(line) for line in term.splitlines()) <= 80
    # ladder.txt keeps every label whole, and its paragraphs are 100 columns at most
    assert (
        "Summarised: " in whole
        and max(len(line) for line in whole.splitlines() if "┆" not in line and "│" not in line)
        <= 100
    )


# --- conversations beyond the limits ---------------------------------------------------


def _many(n: int) -> Trace:
    """``n`` short connections one after another: handshake, 10 bytes, reset."""
    b = Builder()
    for i in range(n):
        b.emu = ("198.18.0.1", 40000 + i)
        t = i * 0.1
        e, p = ISN_EMU + i, ISN_PEER + i
        b.state(t, "CLOSED", "SYN-SENT", "connect()")
        b.out(t + 0.001, "S", e)
        b.inn(t + 0.002, "SA", p, e + 1)
        b.state(t + 0.0021, "SYN-SENT", "ESTABLISHED", "recv SYN+ACK")
        b.out(t + 0.003, "PA", e + 1, p + 1, b"0123456789")
        b.inn(t + 0.004, "R", p + 1, mark="dropped" if i == 6 else None)
    return b.trace


def test_conversations_beyond_the_limit_are_listed() -> None:
    trace = _many(8)
    ladder = build_ladder(trace, limits=LadderLimits(max_conversations=3))
    assert [s.conv.number for s in ladder.sections] == [0, 1, 2]
    assert [c.number for c in ladder.listed] == [3, 4, 5, 6, 7] and ladder.unlisted == 0
    text = render_ladder_text(trace, limits=LadderLimits(max_conversations=3), width=160)
    assert (
        "A large trace (8 conversations, 32 segments): the first 3 of its 8 "
        "conversations are drawn (at most 3 conversations), the other 5 listed at the "
        "end." in " ".join(text.split())
    )
    table = text[text.index("── 5 more conversations, not drawn") :]
    assert re.search(
        r"#  conversation +segments  bytes →  bytes ←  dropped  resent  first\(s\)  "
        r"last\(s\)  left state   right state",
        table,
    )
    rows = [line.split() for line in table.splitlines()[2:] if line.strip()]
    assert [r[0] for r in rows] == ["3", "4", "5", "6", "7"]
    # the conversation first (a narrow terminal cuts counts, never which row it is)
    assert rows[0][:5] == ["3", "198.18.0.1:40003", "⇄", "198.18.0.2:8080", "[c1]"]
    assert rows[0][5:12] == ["4", "10", "0", "0", "0", "0.301", "0.304"]
    assert rows[3][8] == "1"  # conversation 6's RST was dropped
    assert rows[0][12:] == ["ESTABLISHED", "-"]
    # max_listed: the rest counted
    text = render_ladder_text(trace, limits=LadderLimits(max_conversations=3, max_listed=2))
    assert "… and 3 more (12 segments), beyond 2 lines" in text
    # the rows limit: the first conversation is always drawn, then as many as fit
    ladder = build_ladder(trace, limits=LadderLimits(max_total_rows=1))
    assert len(ladder.sections) == 1 and len(ladder.listed) == 7
    ladder = build_ladder(trace, limits=LadderLimits(max_total_rows=25))
    assert len(ladder.sections) == 2  # 7 rows and 5 lines of frame each
    assert len(build_ladder(trace, limits=UNLIMITED).sections) == 8
    page = render_ladder_html(trace, limits=LadderLimits(max_conversations=3))
    assert '<h2 id="index">Connections (8)</h2>' in page  # one page: the rest not drawn
    assert [int(n) for n in re.findall(r'<a href="#c(\d+)">', page)] == [0, 1, 2]
    assert [int(n) for n in re.findall(r"#(\d+) \(not drawn\)", page)] == [3, 4, 5, 6, 7]


def test_a_small_ladder_is_as_it_was() -> None:
    trace = full_conversation().trace
    assert render_ladder_text(trace) == render_ladder_text(trace, limits=UNLIMITED)
    assert render_ladder_html(trace) == render_ladder_html(trace, limits=UNLIMITED)
    assert "large trace" not in render_ladder_text(trace).lower()
    assert "notice" not in render_ladder_html(trace).split("</style>")[1]


def test_limits_are_checked() -> None:
    with pytest.raises(ValueError, match="max_rows"):
        LadderLimits(max_rows=0)
    with pytest.raises(ValueError, match="context"):
        LadderLimits(context=-1)


# --- retransmissions, found by their sequence numbers -----------------------------------


def test_retransmissions_are_found_by_sequence_numbers() -> None:
    b = Builder()
    e, p = 0xFFFFFF00, ISN_PEER  # our sequence numbers wrap around 2**32

    def s(n: int) -> int:
        return (e + n) & 0xFFFFFFFF

    b.out(0.0, "S", e)
    b.out(1.0, "S", e)  # the SYN again
    b.inn(1.001, "SA", p, s(1))
    b.out(1.002, "A", s(1), p + 1)
    b.out(1.003, "PA", s(1), p + 1, b"a" * 200)  # crosses 2**32
    b.out(1.004, "PA", s(201), p + 1, b"b" * 100, mark="dropped")
    b.out(1.005, "PA", s(301), p + 1, b"c" * 100)
    b.inn(1.006, "A", p + 1, s(201))
    b.out(1.200, "PA", s(201), p + 1, b"b" * 100)  # the lost one again
    b.out(1.201, "PA", s(251), p + 1, b"b" * 100)  # half old, half new
    b.out(1.202, "A", s(451), p + 1)  # an ACK of nothing new: no retransmission
    b.inn(1.203, "PA", p + 1, s(351), b"reply")
    (conv,), _ = conversations(b.trace)
    assert [v.retransmission for v in conv.segments] == [
        False,
        True,
        False,
        False,
        False,
        False,
        False,
        False,
        True,
        True,
        False,
        False,
    ]
    assert conv.retransmissions == 3 and conv.dropped == 1
    assert conv.payload_bytes == {EMU: 600, PEER: 5}  # dropped copies too
    (lean,), _ = conversations(b.trace, keep_segments=False)
    assert lean.segments == [] and lean.count == 12
    assert [v.retransmission for v in lean.iter_segments(b.trace)] == [
        v.retransmission for v in conv.segments
    ]


# --- notes, placed one conversation at a time ----------------------------------------


def _notes_as_before(trace: Trace) -> list[list[str]]:
    """conversations()' rule as it was written before NotePlacement (a scan of every
    conversation for every note)."""
    convs, _ = conversations(trace, place_notes=False)
    placed: dict[int, list[str]] = {c.number: [] for c in convs}
    notes = sorted(trace.notes, key=lambda n: n.t)
    for i, note in enumerate(notes):
        nxt = notes[i + 1].t if i + 1 < len(notes) else float("inf")
        holders = [c for c in convs if c.start <= note.t <= c.end or note.t < c.start <= nxt]
        if not holders:
            holders = [min(convs, key=lambda c: min(abs(c.start - note.t), abs(c.end - note.t)))]
        for c in holders:
            placed[c.number].append(note.text)
    return [placed[c.number] for c in convs]


@pytest.mark.parametrize("seed", range(30))
def test_notes_go_where_they_went(seed: int) -> None:
    import random

    from netemu.trace import NoteRecord

    rng = random.Random(seed)
    trace = _many(rng.randrange(1, 6))
    for f in trace.frames:  # overlapping spans, some
        f.t += rng.choice((0.0, 0.0, rng.uniform(-0.2, 0.2)))
    for i in range(rng.randrange(0, 25)):
        t = rng.choice(
            (
                100.0 + rng.uniform(-0.1, 0.8),
                100.0 + round(rng.uniform(0, 0.6), 1),
                rng.choice(trace.frames).t,
            )
        )  # at a frame's time: a span's end
        trace.notes.append(NoteRecord(t, f"n{i}"))
    convs, _ = conversations(trace)
    assert [[n.text for n in c.notes] for c in convs] == _notes_as_before(trace)


def test_notes_and_no_segments() -> None:
    trace = Trace(start=100.0)
    trace.note("step 1: sleep 1s", "step")  # a run interrupted before any segment
    assert "(no TCP segments)" in render_ladder_text(trace)
    assert "No TCP segments" in render_ladder_html(trace)
