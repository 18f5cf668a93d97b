"""The ladder: text, rich and HTML renderings of one row model."""

from __future__ import annotations

import io
import re

from netemu.trace import NoteRecord, Trace
from netemu.trace.conv import conversations
from netemu.trace.ladder import (
    build_ladder,
    print_ladder,
    render_ladder_html,
    render_ladder_text,
    write_ladder_html,
    write_ladder_text,
)
from netemu.trace.ladder_text import FILE_WIDTH, ladder_renderable


def _in_order(text: str, expected: list[str]) -> None:
    lines = text.splitlines()
    i = 0
    for line in lines:
        if i < len(expected) and expected[i] in line:
            i += 1
    assert i == len(expected), f"{expected[i]!r} missing (in order) from:\n{text}"


def _line(text: str, needle: str) -> str:
    (line,) = [x for x in text.splitlines() if needle in x]
    return line


def test_text_ladder_full_conversation(full_trace: Trace) -> None:
    text = render_ladder_text(full_trace)
    _in_order(
        text,
        [
            "TCP 198.18.0.1:40000 ⇄ 198.18.0.2:8080 [c1]",
            "198.18.0.1:40000 (netemu)",
            "CLOSED",
            "▸ connect",
            "LISTEN",
            "SYN-SENT",
            "SYN seq=0 len=0 win=64240",
            "SYN+ACK seq=0 ack=1 len=0 win=65160",
            "ESTABLISHED",
            "ACK seq=1 ack=1 len=0",
            "ESTABLISHED",
            '▸ send "hello"',
            "PSH+ACK seq=1 ack=1 len=5",
            "PSH+ACK seq=1 ack=1 len=5",
            "ACK seq=1 ack=6",
            "PSH+ACK seq=1 ack=6 len=6",
            "ACK seq=6 ack=7",
            "▸ inject an out-of-window ACK",
            "ACK seq=100006 ack=7",
            "ACK seq=7 ack=6",
            "▸ close",
            "FIN-WAIT-1",
            "FIN+ACK seq=6 ack=7",
            "ACK seq=7 ack=7",
            "FIN-WAIT-2",
            "CLOSE-WAIT",
            "LAST-ACK",
            "FIN+ACK seq=7 ack=7",
            "TIME-WAIT",
            "ACK seq=7 ack=8",
            "CLOSED",
            "✓ expect peer CLOSED",
            "CLOSED",
        ],
    )
    # arrows point the right way; the dropped one ends in a cross short of the peer
    assert re.search(r"│─+ SYN seq=0 .*─>│$", _line(text, "SYN seq=0"))
    assert re.search(r"│<─+ SYN\+ACK .*─│$", _line(text, "SYN+ACK"))
    dropped = [x for x in text.splitlines() if "✗ dropped" in x]
    assert len(dropped) == 1 and "len=5" in dropped[0] and "─✗  │" in dropped[0]
    inject = _line(text, "seq=100006")
    assert "[inject]" in inject and "═" in inject
    assert "retransmission" in _line(text, "#6 ")
    # times: seconds since the trace started, ms precision; pcap frame numbers
    assert _line(text, "FIN+ACK seq=6").startswith("   0.401 #12 ")
    # our states left of our lifeline, the peer's right of its lifeline
    assert re.match(r"^\s+0\.402\s+FIN-WAIT-2 │\s+│$", _line(text, "FIN-WAIT-2"))
    # (the builder's peer states are polled ones, and say so)
    assert re.match(r"^\s+0\.405\s+│\s+│ CLOSE-WAIT \(polled\)$", _line(text, "CLOSE-WAIT"))  # once
    assert "1 frame(s) that are not TCP" in text  # the ARP


def test_two_conversations_and_a_reused_four_tuple(builder) -> None:
    b = builder()
    other = builder(emu=("198.18.0.1", 40001))
    b.note(0.0, "open two")
    b.out(0.001, "S", 1000)
    other.out(0.0015, "S", 3000)
    b.trace.frames.append(other.trace.frames[-1])
    b.inn(0.002, "SA", 5000, 1001)
    b.out(0.003, "A", 1001, 5001)
    b.out(0.004, "R", 1001)
    # the same 4-tuple again, after the RST: a new ISN, a new conversation
    b.note(1.0, "again")
    b.state(0.9999, "CLOSED", "SYN-SENT", "connect()")
    b.out(1.001, "S", 90000)
    b.inn(1.002, "SA", 7000, 90001)
    convs, other_frames = conversations(b.trace)
    assert [len(c.segments) for c in convs] == [4, 1, 2] and other_frames == 0
    assert [c.left[1] for c in convs] == [40000, 40001, 40000]
    assert [len(c.states) for c in convs] == [0, 0, 1]  # placed by time on its 4-tuple
    text = render_ladder_text(b.trace)
    sections = text.split("── TCP ")[1:]
    assert len(sections) == 3
    assert "▸ open two" in sections[0] and "▸ open two" in sections[1]
    assert "▸ again" in sections[2] and "▸ again" not in sections[0]
    assert "SYN seq=0" in sections[2] and "SYN+ACK seq=0 ack=1" in sections[2]
    assert "RST seq=1" in sections[0]


def test_no_tcp_at_all() -> None:
    trace = Trace(start=0.0)
    assert "(no TCP segments)" in render_ladder_text(trace)
    assert "No TCP segments" in render_ladder_html(trace)


def test_html_is_self_contained(full_trace: Trace, tmp_path) -> None:
    full_trace.notes.append(NoteRecord(full_trace.start + 0.7, "<b>not markup</b> & co", "fail"))
    path = tmp_path / "ladder.html"
    write_ladder_html(full_trace, path)
    page = path.read_text(encoding="utf-8")
    assert page.startswith("<!DOCTYPE html>")
    assert "<svg" in page and "</svg>" in page and "<marker" in page
    assert not re.search(r"""(src|href)\s*=\s*["']?\s*(https?:)?//""", page)
    assert "http" not in page.lower()  # nothing fetched, not even a namespace named
    assert "@import" not in page and "fetch(" not in page and "XMLHttpRequest" not in page
    # one inline script, and each conversation's data as JSON the browser never runs
    assert page.count("<script>") == 1 and "<script src" not in page
    assert page.count("<script") == 1 + page.count('<script type="application/json"')
    assert "&lt;b&gt;not markup&lt;/b&gt; &amp; co" in page and "<b>not markup" not in page
    for needle in (
        "198.18.0.1:40000",
        "SYN+ACK seq=0 ack=1",
        "TIME-WAIT",
        "CLOSE-WAIT",
        "✗ dropped",
        "[inject]",
        "stroke-dasharray",
        "0.401",
    ):
        assert needle in page, needle
    # the text ladder rides along for copy and paste
    assert "FIN+ACK seq=6 ack=7" in page.split("<pre>")[1]


def test_rich_matches_plain_text(full_trace: Trace, tmp_path) -> None:
    from rich.console import Console

    plain = render_ladder_text(full_trace)
    console = Console(record=True, width=250, file=io.StringIO(), color_system="truecolor")
    console.print(ladder_renderable(full_trace))
    exported = "\n".join(x.rstrip() for x in console.export_text().splitlines())
    assert exported.strip() == plain.strip()
    buf = io.StringIO()
    print_ladder(full_trace, Console(file=buf, width=250, force_terminal=True))
    assert "\x1b[" in buf.getvalue()  # coloured
    # ladder.txt keeps every label whole, whatever this terminal's width
    written = write_ladder_text(full_trace, tmp_path / "ladder.txt")
    assert (tmp_path / "ladder.txt").read_text(encoding="utf-8") == written
    assert written == render_ladder_text(full_trace, width=FILE_WIDTH)
    assert "…" not in written


def test_row_model_orders_sends_before_and_receipts_after(full_trace: Trace) -> None:
    (sec,) = build_ladder(full_trace).sections
    kinds = [(r.kind, r.state or (r.seg.flags if r.seg else "")) for r in sec.rows]
    i = kinds.index(("state", "SYN-SENT"))
    assert kinds[i + 1] == ("seg", "SYN")
    j = kinds.index(("state", "TIME-WAIT"))
    assert kinds[j - 1] == ("seg", "FIN+ACK")


def test_dual_stack_peer_states_find_their_conversation(builder) -> None:
    """Go's dual-stack sockets report IPv4 peers as ::ffff:a.b.c.d and listen on [::]."""
    from netemu.trace import PeerStateRecord

    b = builder()
    b.out(0.001, "S", 1000)
    b.inn(0.002, "SA", 5000, 1001)
    t = b.trace
    t.peer_states.append(PeerStateRecord(t.start, ("::", 8080), ("::", 0), "LISTEN"))
    t.peer_states.append(
        PeerStateRecord(
            t.start + 0.003, ("::ffff:198.18.0.2", 8080), ("::ffff:198.18.0.1", 40000), "SYN_RECV"
        )
    )
    (conv,), _ = conversations(t)
    # the listener has a lane label of its own, never the connection's states
    assert [s.state for s in conv.listener_states] == ["LISTEN"]
    assert [s.state for s in conv.peer_states] == ["SYN_RECV"]
    text = render_ladder_text(t)
    assert re.search(r"│ listener :8080 LISTEN \(polled\)$", text, re.M)
    assert re.search(r"│ SYN-RECEIVED \(polled\)$", text, re.M)


def test_the_html_ladder_escapes_as_html_escape_does() -> None:
    """ladder_html._e is html.escape(str(s), quote=True) without importing html."""
    import html

    from netemu.trace.ladder_html import _e

    for s in ("", "a<b>&c", "\"quoted\" & 'single'", "&amp; <!-- -->", "ü → ✓", 42, None):
        assert _e(s) == html.escape(str(s), quote=True)
