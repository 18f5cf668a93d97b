"""States inferred from segments alone (RFC 9293 §3.3.2, §3.10.7), and ``show``."""

from __future__ import annotations

import pytest

from netemu.trace import Trace
from netemu.trace.conv import conversations
from netemu.trace.infer import infer_conversation, infer_states, show, trace_from_pcap

E, P = 1000, 5000  # ISNs: emulator/client, peer/server


def _states(trace: Trace) -> dict[str, list[tuple[float, str, str]]]:
    """role -> [(t since start, old, new)]"""
    (conv,), _ = conversations(trace)
    out: dict[str, list[tuple[float, str, str]]] = {"client": [], "server": []}
    for s in infer_states(conv):
        out[s.conn].append((round(s.t - trace.start, 4), s.old, s.new))
    return out


def _news(trace: Trace) -> dict[str, list[str]]:
    return {role: [new for _, _, new in recs] for role, recs in _states(trace).items()}


def _handshake(b, t: float = 0.0) -> None:
    b.out(t + 0.001, "S", E)
    b.inn(t + 0.002, "SA", P, E + 1)
    b.out(t + 0.003, "A", E + 1, P + 1)


def test_active_close_to_time_wait(full_trace: Trace) -> None:
    """The full conversation: a dropped segment and an injected out-of-window ACK
    change no state; the peer goes through CLOSE-WAIT and LAST-ACK."""
    got = _states(full_trace)
    assert [(old, new) for _, old, new in got["client"]] == [
        ("CLOSED", "SYN-SENT"),
        ("SYN-SENT", "ESTABLISHED"),
        ("ESTABLISHED", "FIN-WAIT-1"),
        ("FIN-WAIT-1", "FIN-WAIT-2"),
        ("FIN-WAIT-2", "TIME-WAIT"),
    ]
    assert [(old, new) for _, old, new in got["server"]] == [
        ("LISTEN", "SYN-RECEIVED"),
        ("SYN-RECEIVED", "ESTABLISHED"),
        ("ESTABLISHED", "CLOSE-WAIT"),
        ("CLOSE-WAIT", "LAST-ACK"),
        ("LAST-ACK", "CLOSED"),
    ]
    # attributed when sent or received: the server is in CLOSE-WAIT from the client's FIN
    assert [t for t, _, _ in got["server"]] == [0.003, 0.004, 0.401, 0.5, 0.501]
    assert [t for t, _, _ in got["client"]] == [0.001, 0.003, 0.401, 0.402, 0.5]


def test_close_wait(builder) -> None:
    """We close, the peer acks and never closes: it stays in CLOSE-WAIT."""
    b = builder()
    _handshake(b)
    b.out(0.010, "PA", E + 1, P + 1, b"bye")
    b.inn(0.011, "A", P + 1, E + 4)
    b.out(0.020, "FA", E + 4, P + 1)
    b.inn(0.021, "A", P + 1, E + 5)
    b.out(5.0, "A", E + 5, P + 1)  # a keepalive-ish ACK changes nothing
    got = _states(b.trace)
    assert [new for _, _, new in got["client"]] == [
        "SYN-SENT",
        "ESTABLISHED",
        "FIN-WAIT-1",
        "FIN-WAIT-2",
    ]
    assert [new for _, _, new in got["server"]] == ["SYN-RECEIVED", "ESTABLISHED", "CLOSE-WAIT"]
    assert got["server"][-1][0] == 0.020


def test_passive_close_last_ack(builder) -> None:
    b = builder()
    _handshake(b)
    b.inn(0.010, "FA", P + 1, E + 1)
    b.out(0.011, "A", E + 1, P + 2)
    b.out(0.020, "FA", E + 1, P + 2)
    b.inn(0.021, "A", P + 2, E + 2)
    assert _news(b.trace) == {
        "client": ["SYN-SENT", "ESTABLISHED", "CLOSE-WAIT", "LAST-ACK", "CLOSED"],
        "server": ["SYN-RECEIVED", "ESTABLISHED", "FIN-WAIT-1", "FIN-WAIT-2", "TIME-WAIT"],
    }


def test_simultaneous_close(builder) -> None:
    """Both FINs cross (RFC 9293 Figure 13): each side goes FIN-WAIT-1 → CLOSING →
    TIME-WAIT. Seen from the client's end, the server's FIN does not ack ours, so the
    server had not received our FIN when it sent its own."""
    b = builder()
    _handshake(b)
    b.out(0.100, "FA", E + 1, P + 1)
    b.inn(0.101, "FA", P + 1, E + 1)
    b.out(0.102, "A", E + 2, P + 2)
    b.inn(0.103, "A", P + 2, E + 2)
    assert _news(b.trace) == {
        "client": ["SYN-SENT", "ESTABLISHED", "FIN-WAIT-1", "CLOSING", "TIME-WAIT"],
        "server": ["SYN-RECEIVED", "ESTABLISHED", "FIN-WAIT-1", "CLOSING", "TIME-WAIT"],
    }
    got = _states(b.trace)
    assert got["server"][2:] == [
        (0.101, "ESTABLISHED", "FIN-WAIT-1"),
        (0.101, "FIN-WAIT-1", "CLOSING"),
        (0.102, "CLOSING", "TIME-WAIT"),
    ]


def test_fin_ack_acking_our_fin_goes_straight_to_time_wait(builder) -> None:
    b = builder()
    _handshake(b)
    b.out(0.100, "FA", E + 1, P + 1)
    b.inn(0.101, "FA", P + 1, E + 2)  # acks our FIN and carries its own
    b.out(0.102, "A", E + 2, P + 2)
    got = _states(b.trace)
    assert got["client"][-1] == (0.101, "FIN-WAIT-1", "TIME-WAIT")
    assert [new for _, _, new in got["server"]][-2:] == ["LAST-ACK", "CLOSED"]


def test_rst_closes_both_sides(builder) -> None:
    b = builder()
    _handshake(b)
    b.out(0.010, "PA", E + 1, P + 1, b"GET")
    b.inn(0.011, "RA", P + 1, E + 4)
    assert _news(b.trace) == {
        "client": ["SYN-SENT", "ESTABLISHED", "CLOSED"],
        "server": ["SYN-RECEIVED", "ESTABLISHED", "CLOSED"],
    }
    (conv,), _ = conversations(b.trace)
    causes = {s.conn: s.cause for s in infer_states(conv) if s.new == "CLOSED"}
    assert causes == {"client": "recv RST+ACK", "server": "send RST+ACK"}


def test_connection_refused(builder) -> None:
    b = builder()
    b.out(0.001, "S", E)
    b.inn(0.002, "RA", 0, E + 1)
    got = _states(b.trace)
    assert got["client"] == [(0.001, "CLOSED", "SYN-SENT"), (0.002, "SYN-SENT", "CLOSED")]
    assert got["server"] == [(0.002, "", "CLOSED")]  # nobody listening


def test_rst_not_at_rcv_nxt_is_ignored(builder) -> None:
    """RFC 5961 §3.2: only a RST at exactly RCV.NXT resets; another earns a challenge ACK."""
    b = builder()
    _handshake(b)
    b.inn(0.010, "R", P + 1000)
    b.out(0.011, "A", E + 1, P + 1, note="challenge ACK")
    (conv,), _ = conversations(b.trace)
    inf = infer_conversation(conv)
    assert [s.new for s in inf.states if s.conn == "client"] == ["SYN-SENT", "ESTABLISHED"]
    assert any("RFC 5961" in n.text for n in inf.notes)


def test_dropped_segment_delays_the_fin(builder) -> None:
    """Data dropped on the way, then the FIN: the peer takes the FIN only when the
    retransmission fills the gap."""
    b = builder()
    _handshake(b)
    b.out(0.010, "PA", E + 1, P + 1, b"hello", mark="dropped")
    b.out(0.011, "FA", E + 6, P + 1)
    b.inn(0.012, "A", P + 1, E + 1)  # dup ACK: the hole
    b.out(0.200, "PA", E + 1, P + 1, b"hello")
    b.inn(0.201, "A", P + 1, E + 7)
    got = _states(b.trace)
    assert got["server"][-1] == (0.2, "ESTABLISHED", "CLOSE-WAIT")
    assert got["client"][-1] == (0.201, "FIN-WAIT-1", "FIN-WAIT-2")


def test_mid_connection_capture(builder) -> None:
    b = builder()
    b.out(0.0, "PA", E + 1, P + 1, b"x")
    b.inn(0.001, "A", P + 1, E + 2)
    b.inn(0.002, "FA", P + 1, E + 2)
    assert _news(b.trace) == {
        "client": ["ESTABLISHED", "CLOSE-WAIT"],
        "server": ["ESTABLISHED", "FIN-WAIT-1"],
    }


@pytest.fixture
def scapy_pcap(tmp_path):
    """A foreign capture: scapy's wrpcap, two conversations and an ARP."""
    from scapy.all import ARP, IP, TCP, Ether, Raw, wrpcap

    c, s = "10.0.0.1", "10.0.0.2"

    def pkt(t, src, dst, sport, dport, flags, seq, ack=0, data=b""):
        p = (
            Ether()
            / IP(src=src, dst=dst)
            / TCP(sport=sport, dport=dport, flags=flags, seq=seq, ack=ack, window=502)
        )
        if data:
            p = p / Raw(data)
        p.time = 1_700_000_000 + t
        return p

    arp = Ether(dst="ff:ff:ff:ff:ff:ff") / ARP(psrc=c, pdst=s)
    arp.time = 1_700_000_000
    pkts = [
        arp,
        pkt(0.010, c, s, 5555, 80, "S", 100),
        pkt(0.011, s, c, 80, 5555, "SA", 900, 101),
        pkt(0.012, c, s, 5555, 80, "A", 101, 901),
        pkt(0.020, c, s, 5555, 80, "PA", 101, 901, b"GET / HTTP/1.0\r\n\r\n"),
        pkt(0.021, s, c, 80, 5555, "A", 901, 119),
        pkt(0.030, s, c, 80, 5555, "FPA", 901, 119, b"HTTP/1.0 200 OK\r\n\r\n"),
        pkt(0.031, c, s, 5555, 80, "A", 119, 921),
        pkt(0.032, c, s, 5555, 80, "FA", 119, 921),
        pkt(0.033, s, c, 80, 5555, "A", 921, 120),
        pkt(0.040, c, s, 6666, 81, "S", 7000),
        pkt(0.041, s, c, 81, 6666, "RA", 0, 7001),
    ]
    path = tmp_path / "foreign.pcap"
    wrpcap(str(path), pkts)
    return path


def test_show_foreign_pcap(scapy_pcap, tmp_path) -> None:
    html_out = tmp_path / "ladder.html"
    text = show(scapy_pcap, html_out)
    assert "TCP 10.0.0.1:5555 ⇄ 10.0.0.2:80" in text
    assert "TCP 10.0.0.1:6666 ⇄ 10.0.0.2:81" in text
    assert "(client)" in text and "(server)" in text
    lines = text.splitlines()
    expected = [
        "SYN-SENT",
        "SYN seq=0 len=0 win=502",
        "SYN-RECEIVED",
        "SYN+ACK seq=0 ack=1",
        "ESTABLISHED",
        "PSH+ACK seq=1 ack=1 len=18",
        "FIN-WAIT-1",
        "FIN+PSH+ACK seq=1 ack=19 len=19",
        "CLOSE-WAIT",
        "LAST-ACK",
        "FIN+ACK seq=19 ack=21",
        "CLOSED",
        "SYN-SENT",
        "SYN seq=0",
        "CLOSED",
        "RST+ACK seq=1 ack=1",
        "CLOSED",
    ]
    i = 0
    for line in lines:
        if i < len(expected) and expected[i] in line:
            i += 1
    assert i == len(expected), f"missing {expected[i]!r} in order:\n{text}"
    assert "1 frame(s) that are not TCP segments" in text
    page = html_out.read_text()
    assert "<svg" in page and "10.0.0.1:5555" in page
    trace = trace_from_pcap(scapy_pcap)
    assert trace.frames[1].direction == "out" and trace.frames[2].direction == "in"
    assert trace.start == 0.0 and trace.start_wall == pytest.approx(1_700_000_000)
    server = [s.new for s in trace.states if s.conn == "server" and s.local[1] == 80]
    assert server == ["SYN-RECEIVED", "ESTABLISHED", "FIN-WAIT-1", "FIN-WAIT-2", "TIME-WAIT"]
