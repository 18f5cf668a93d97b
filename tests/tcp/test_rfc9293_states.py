"""Every transition of the RFC 9293 state diagram (§3.3.2, Figure 5).

Each test starts from a ready-made state (netemu.testing.states: our ISS 1000,
the peer's 5000), plays one arrival, call or timeout, and checks the new state,
the StateChanged event (old, new, cause) and the segments sent (flags, seq, ack).
"""

from __future__ import annotations

import pytest

from netemu.tcp import (
    Closed,
    Connected,
    Connection,
    ConnectionReset,
    IsnGenerator,
    Listener,
    PeerClosed,
    State,
    StateChanged,
    TcpConfig,
    Timer,
)
from netemu.testing import Driver, MemNetwork, brief
from netemu.testing.states import (
    ISS,
    PEER_ISS,
    SHORT_MSL,
    close_wait,
    closing,
    established,
    fin_wait_1,
    fin_wait_2,
    last_ack,
    syn_received,
    syn_sent,
    time_wait,
)
from netemu.wire.tcp import ACK, FIN, PSH, RST, SYN

S = State


def kinds(events: list) -> list[str]:
    return [type(e).__name__ for e in events]


# ---------------------------------------------------------------- opening
def test_rfc9293_3_10_1_active_open_closed_to_syn_sent() -> None:
    # "A SYN segment of the form <SEQ=ISS><CTL=SYN> is sent. Set SND.UNA to ISS,
    # SND.NXT to ISS+1, enter SYN-SENT state, and return."
    d = Driver.client(iss=ISS)
    out = d.connect()
    assert brief(out) == [(SYN, ISS, 0)]
    assert out[0].mss == 1460 and out[0].wscale == 7
    assert out[0].window == 65535  # never scaled on a SYN (RFC 7323 §2.2)
    assert d.conn.state is S.SYN_SENT
    assert (d.conn.snd_una, d.conn.snd_nxt) == (ISS, ISS + 1)
    assert d.transitions() == [(S.CLOSED, S.SYN_SENT, "connect()")]


def test_rfc9293_3_10_7_3_syn_sent_syn_ack_to_established() -> None:
    # "If SND.UNA > ISS (our SYN has been ACKed), change the connection state to
    # ESTABLISHED, form an ACK segment <SEQ=SND.NXT><ACK=RCV.NXT><CTL=ACK> and send it."
    d = syn_sent()
    syn_ack = d.seg(SYN | ACK, PEER_ISS, ISS + 1, options=Driver.syn_options())
    out = d.receive(syn_ack)
    assert brief(out) == [(ACK, ISS + 1, PEER_ISS + 1)]
    assert d.conn.state is S.ESTABLISHED
    assert (d.conn.irs, d.conn.rcv_nxt, d.conn.snd_una) == (PEER_ISS, PEER_ISS + 1, ISS + 1)
    events = d.take_events()
    assert events[0] == StateChanged(S.SYN_SENT, S.ESTABLISHED, "recv SYN+ACK", syn_ack)
    assert kinds(events) == ["StateChanged", "Connected"]


def test_rfc9293_3_10_7_2_listen_syn_to_syn_received() -> None:
    # "Third, check for a SYN ... Set RCV.NXT to SEG.SEQ+1, IRS is set to SEG.SEQ
    # ... a SYN segment sent of the form <SEQ=ISS><ACK=RCV.NXT><CTL=SYN,ACK>.
    # SND.NXT is set to ISS+1 and SND.UNA to ISS. The connection state should be
    # changed to SYN-RECEIVED."
    gen = IsnGenerator(b"k" * 16)
    lst = Listener("10.0.0.1", 80, isn_generator=gen)
    syn = Driver.client().seg(SYN, PEER_ISS, options=Driver.syn_options())
    syn.src_port, syn.dst_port = 40000, 80
    conn = lst.on_segment(syn, "10.0.0.2", 3.0)
    assert isinstance(conn, Connection)
    iss = gen.isn("10.0.0.1", 80, "10.0.0.2", 40000, 3.0)
    assert conn.state is S.SYN_RECEIVED and conn.passive
    out = conn.segments_to_send(3.0)
    assert brief(out) == [(SYN | ACK, iss, PEER_ISS + 1)]
    assert (out[0].src_port, out[0].dst_port) == (80, 40000)
    assert (conn.snd_una, conn.snd_nxt, conn.rcv_nxt) == (iss, iss + 1, PEER_ISS + 1)
    assert [(e.old, e.new, e.cause) for e in conn.events()] == [
        (S.LISTEN, S.SYN_RECEIVED, "recv SYN")
    ]


def test_rfc9293_3_10_7_4_syn_received_ack_to_established() -> None:
    # "If SND.UNA < SEG.ACK =< SND.NXT, then enter ESTABLISHED state and continue
    # processing with the variables below set to: SND.WND <- SEG.WND ..."
    d = syn_received()
    out = d.receive(d.seg(ACK, PEER_ISS + 1, ISS + 1, window=30000))
    assert out == []
    assert d.conn.state is S.ESTABLISHED
    assert (d.conn.snd_una, d.conn.snd_wnd) == (ISS + 1, 30000)
    assert d.transitions() == [(S.SYN_RECEIVED, S.ESTABLISHED, "recv ACK")]
    assert "Connected" in kinds(d.take_events())


def test_rfc9293_3_10_7_3_simultaneous_open_syn_sent_syn_to_syn_received() -> None:
    # "Otherwise, enter SYN-RECEIVED, form a SYN,ACK segment
    # <SEQ=ISS><ACK=RCV.NXT><CTL=SYN,ACK> and send it."
    d = syn_sent()
    out = d.receive(d.seg(SYN, PEER_ISS, options=Driver.syn_options()))
    assert brief(out) == [(SYN | ACK, ISS, PEER_ISS + 1)]
    assert d.conn.state is S.SYN_RECEIVED
    assert d.transitions() == [(S.SYN_SENT, S.SYN_RECEIVED, "recv SYN")]
    d.take_events()
    # Figure 8, line 6: the peer's SYN,ACK completes it; nothing more is needed.
    out = d.receive(d.seg(SYN | ACK, PEER_ISS, ISS + 1, options=Driver.syn_options()))
    assert out == []
    assert d.conn.state is S.ESTABLISHED
    assert d.transitions() == [(S.SYN_RECEIVED, S.ESTABLISHED, "recv SYN+ACK")]
    assert (d.conn.snd_una, d.conn.rcv_nxt) == (ISS + 1, PEER_ISS + 1)


def test_rfc9293_3_5_figure_8_simultaneous_open_on_the_wire() -> None:
    # Both sides connect() at once: SYN-SENT -> SYN-RECEIVED -> ESTABLISHED on both.
    a = Connection.client(("198.18.0.1", 40000), ("198.18.0.2", 80), iss=100)
    b = Connection.client(("198.18.0.2", 80), ("198.18.0.1", 40000), iss=300)
    net = MemNetwork(a, b)
    a.connect(0.0)
    b.connect(0.0)
    assert net.run(lambda: a.state is b.state is S.ESTABLISHED, max_time=5)
    for conn in (a, b):
        evs = conn.events()
        assert [(e.old, e.new) for e in evs if isinstance(e, StateChanged)] == [
            (S.CLOSED, S.SYN_SENT),
            (S.SYN_SENT, S.SYN_RECEIVED),
            (S.SYN_RECEIVED, S.ESTABLISHED),
        ]
        assert evs.count(Connected()) == 1
    assert (a.snd_una, a.rcv_nxt, b.snd_una, b.rcv_nxt) == (101, 301, 301, 101)
    assert net.now < 0.01  # no retransmission was needed
    # ... and data flows both ways afterwards.
    a.send(b"ping")
    b.send(b"pong")
    net.run(lambda: a.readable == 4 and b.readable == 4, max_time=5)
    assert (a.read(), b.read()) == (b"pong", b"ping")


def test_rfc9293_3_10_7_4_syn_received_retransmitted_syn_resends_syn_ack() -> None:
    d = syn_received()
    out = d.receive(d.seg(SYN, PEER_ISS, options=Driver.syn_options()))
    assert brief(out) == [(SYN | ACK, ISS, PEER_ISS + 1)]
    assert d.conn.state is S.SYN_RECEIVED and d.transitions() == []


def test_rfc9293_3_10_4_close_syn_received_to_fin_wait_1() -> None:
    # "SYN-RECEIVED STATE: If no SENDs have been issued and there is no pending
    # data to send, then form a FIN segment and send it, and enter FIN-WAIT-1
    # state". The peer's ACK of our SYN and FIN completes the handshake too.
    d = syn_received()
    d.conn.shutdown()
    assert d.transitions() == [(S.SYN_RECEIVED, S.FIN_WAIT_1, "shutdown()")]
    assert brief(d.flush()) == [(FIN | ACK, ISS + 1, PEER_ISS + 1)]
    d.take_events()
    ack = d.seg(ACK, PEER_ISS + 1, ISS + 2)
    assert d.receive(ack) == []
    assert d.conn.state is S.FIN_WAIT_2 and d.conn.snd_una == ISS + 2
    assert d.take_events() == [
        Connected(),
        StateChanged(S.FIN_WAIT_1, S.FIN_WAIT_2, "recv ACK", ack),
    ]


def test_rfc9293_3_10_4_closed_in_syn_received_ack_of_syn_only_stays_fin_wait_1() -> None:
    d = syn_received()
    d.conn.close()
    d.flush()
    d.take_events()
    assert d.receive(d.seg(ACK, PEER_ISS + 1, ISS + 1)) == []
    assert d.conn.state is S.FIN_WAIT_1 and d.conn.snd_una == ISS + 1
    assert d.take_events() == [Connected()]
    # The FIN is still owed an ACK; when it comes, FIN-WAIT-2.
    d.receive(d.seg(ACK, PEER_ISS + 1, ISS + 2))
    assert d.conn.state is S.FIN_WAIT_2


def test_rfc9293_3_10_4_closed_in_syn_received_timeout_resends_syn_ack_and_fin() -> None:
    # Our SYN-ACK was lost: the retransmission timer sends it again, the FIN after
    # it, counted against the SYN-ACK's retries (tcp_synack_retries).
    d = syn_received(TcpConfig(synack_retries=1))
    d.conn.shutdown()
    d.flush()
    assert brief(d.advance_to_deadline()) == [
        (SYN | ACK, ISS, PEER_ISS + 1),
        (FIN | ACK, ISS + 1, PEER_ISS + 1),
    ]
    d.take_events()
    d.advance_to_deadline()
    assert d.conn.state is S.CLOSED
    assert "SYN-ACK retransmissions exhausted (1)" in str(d.take_events())


def test_rfc9293_3_10_4_closed_in_syn_received_retransmitted_syn_resends_syn_ack() -> None:
    d = syn_received()
    d.conn.shutdown()
    d.flush()
    out = d.receive(d.seg(SYN, PEER_ISS, options=Driver.syn_options()))
    assert brief(out) == [(SYN | ACK, ISS, PEER_ISS + 1), (FIN | ACK, ISS + 1, PEER_ISS + 1)]
    assert d.conn.state is S.FIN_WAIT_1


def test_rfc9293_3_10_7_4_closed_in_syn_received_peer_fin_to_closing() -> None:
    # The peer ACKs our SYN, not yet our FIN, and sends its own FIN: "otherwise,
    # enter the CLOSING state".
    d = syn_received()
    d.conn.shutdown()
    d.flush()
    d.take_events()
    fin = d.seg(FIN | ACK, PEER_ISS + 1, ISS + 1)
    out = d.receive(fin)
    assert brief(out) == [(ACK, ISS + 2, PEER_ISS + 2)]
    assert d.transitions() == [(S.FIN_WAIT_1, S.CLOSING, "recv FIN+ACK")]


def test_rfc9293_3_10_4_simultaneous_open_closed_in_syn_received() -> None:
    # Simultaneous open, then CLOSE before the peer's SYN,ACK: the FIN goes at
    # once, and the SYN,ACK (its SYN a repeat) still completes the handshake.
    d = syn_sent()
    d.receive(d.seg(SYN, PEER_ISS, options=Driver.syn_options()))
    d.conn.shutdown()
    assert brief(d.flush()) == [(FIN | ACK, ISS + 1, PEER_ISS + 1)]
    d.take_events()
    assert d.receive(d.seg(SYN | ACK, PEER_ISS, ISS + 1, options=Driver.syn_options())) == []
    assert d.conn.state is S.FIN_WAIT_1 and d.conn.snd_una == ISS + 1
    assert d.take_events() == [Connected()]
    d.receive(d.seg(ACK, PEER_ISS + 1, ISS + 2))
    assert d.conn.state is S.FIN_WAIT_2


def test_rfc9293_3_10_7_4_syn_received_shutdown_with_data_queued_until_established() -> None:
    # CLOSE in SYN-RECEIVED after a SEND: "otherwise, queue for processing after
    # entering ESTABLISHED state".
    d = syn_received()
    d.conn.send(b"abc")
    d.conn.shutdown()
    assert d.flush() == [] and d.conn.state is S.SYN_RECEIVED
    out = d.receive(d.seg(ACK, PEER_ISS + 1, ISS + 1))
    assert brief(out) == [(FIN | PSH | ACK, ISS + 1, PEER_ISS + 1)]
    assert out[0].payload == b"abc"
    assert d.transitions() == [
        (S.SYN_RECEIVED, S.ESTABLISHED, "recv ACK"),
        (S.ESTABLISHED, S.FIN_WAIT_1, "shutdown() (queued)"),
    ]


# ---------------------------------------------------------------- active close
def test_rfc9293_3_10_4_close_established_to_fin_wait_1() -> None:
    # "ESTABLISHED STATE: Queue this until all preceding SENDs have been
    # segmentized, then form a FIN segment and send it. In any case, enter
    # FIN-WAIT-1 state."
    d = established()
    d.conn.close()
    assert d.conn.state is S.FIN_WAIT_1
    assert d.transitions() == [(S.ESTABLISHED, S.FIN_WAIT_1, "close()")]
    assert brief(d.flush()) == [(FIN | ACK, ISS + 1, PEER_ISS + 1)]


def test_rfc9293_3_10_4_shutdown_established_to_fin_wait_1() -> None:
    d = established()
    d.conn.send(b"abc")
    d.conn.shutdown()
    assert d.transitions() == [(S.ESTABLISHED, S.FIN_WAIT_1, "shutdown()")]
    # The FIN follows the queued data (here in the same segment).
    out = d.flush()
    assert brief(out) == [(FIN | PSH | ACK, ISS + 1, PEER_ISS + 1)]
    assert out[0].payload == b"abc"


def test_rfc9293_3_10_7_4_fin_wait_1_ack_of_fin_to_fin_wait_2() -> None:
    # "FIN-WAIT-1 STATE: In addition to the processing for the ESTABLISHED state,
    # if the FIN segment is now acknowledged, then enter FIN-WAIT-2 and continue
    # processing in that state."
    d = fin_wait_1()
    ack = d.seg(ACK, PEER_ISS + 1, ISS + 2)
    assert d.receive(ack) == []
    assert d.conn.state is S.FIN_WAIT_2
    assert d.take_events() == [StateChanged(S.FIN_WAIT_1, S.FIN_WAIT_2, "recv ACK", ack)]


def test_rfc9293_3_10_7_4_fin_wait_2_fin_to_time_wait() -> None:
    # "FIN-WAIT-2 STATE: Enter the TIME-WAIT state. Start the time-wait timer,
    # turn off the other timers."
    d = fin_wait_2(SHORT_MSL)
    out = d.receive(d.seg(FIN | ACK, PEER_ISS + 1, ISS + 2))
    assert brief(out) == [(ACK, ISS + 2, PEER_ISS + 2)]
    assert d.conn.state is S.TIME_WAIT
    assert d.transitions() == [(S.FIN_WAIT_2, S.TIME_WAIT, "recv FIN+ACK")]
    assert "PeerClosed" in kinds(d.take_events())
    assert d.conn.next_deadline() == pytest.approx(d.now + 2 * SHORT_MSL.msl)
    assert set(d.conn.timers) == {Timer.TIME_WAIT}  # "turn off the other timers"


def test_rfc9293_3_10_7_4_time_wait_2msl_to_closed() -> None:
    # "When the time-wait timeout expires, delete the TCB, enter the CLOSED state."
    d = time_wait(TcpConfig(msl=1.0))
    assert d.advance(1.999) == []
    assert d.conn.state is S.TIME_WAIT
    assert d.advance(0.001) == []
    assert d.conn.state is S.CLOSED
    assert d.transitions() == [(S.TIME_WAIT, S.CLOSED, "timer time-wait")]
    assert kinds(d.take_events()) == ["StateChanged", "Closed"]
    assert d.conn.next_deadline() is None


def test_rfc9293_3_10_7_4_fin_wait_1_fin_ack_straight_to_time_wait() -> None:
    # "FIN-WAIT-1 STATE: If our FIN has been ACKed (perhaps in this segment), then
    # enter TIME-WAIT, start the time-wait timer, turn off the other timers".
    d = fin_wait_1(SHORT_MSL)
    out = d.receive(d.seg(FIN | ACK, PEER_ISS + 1, ISS + 2))
    assert brief(out) == [(ACK, ISS + 2, PEER_ISS + 2)]
    assert d.conn.state is S.TIME_WAIT
    assert d.transitions() == [(S.FIN_WAIT_1, S.TIME_WAIT, "recv FIN+ACK")]
    assert set(d.conn.timers) == {Timer.TIME_WAIT}
    assert d.conn.next_deadline() == pytest.approx(2.0)


def test_rfc9293_3_6_active_close_on_the_wire(pair_fin_wait_1: MemNetwork) -> None:
    # FIN-WAIT-1 -> FIN-WAIT-2 -> TIME-WAIT -> CLOSED after 2·MSL, as Figure 12.
    net = pair_fin_wait_1
    a, b = net.a, net.b
    assert net.run(lambda: a.state is S.FIN_WAIT_2, max_time=1)
    net.settle()
    assert b.state is S.CLOSE_WAIT and b.at_eof
    b.close()
    assert net.run(lambda: a.state is S.TIME_WAIT, max_time=1)
    entered = net.now
    assert net.run(lambda: b.state is S.CLOSED, max_time=1)
    assert net.run(lambda: a.state is S.CLOSED, max_time=10)
    assert net.now == pytest.approx(entered + 2 * SHORT_MSL.msl)
    assert [(e.old, e.new) for e in a.events() if isinstance(e, StateChanged)] == [
        (S.FIN_WAIT_1, S.FIN_WAIT_2),
        (S.FIN_WAIT_2, S.TIME_WAIT),
        (S.TIME_WAIT, S.CLOSED),
    ]
    assert [(e.old, e.new) for e in b.events() if isinstance(e, StateChanged)] == [
        (S.ESTABLISHED, S.CLOSE_WAIT),
        (S.CLOSE_WAIT, S.LAST_ACK),
        (S.LAST_ACK, S.CLOSED),
    ]


# ---------------------------------------------------------------- passive close
def test_rfc9293_3_10_7_4_established_fin_to_close_wait() -> None:
    # "ESTABLISHED STATE: Enter the CLOSE-WAIT state." and "advance RCV.NXT over
    # the FIN, and send an acknowledgment for the FIN."
    d = established()
    out = d.receive(d.seg(FIN | ACK, PEER_ISS + 1, ISS + 1))
    assert brief(out) == [(ACK, ISS + 1, PEER_ISS + 2)]
    assert d.conn.state is S.CLOSE_WAIT
    assert d.transitions() == [(S.ESTABLISHED, S.CLOSE_WAIT, "recv FIN+ACK")]
    assert kinds(d.take_events()) == ["PeerClosed", "StateChanged"]
    assert d.conn.at_eof


def test_rfc9293_3_10_4_close_close_wait_to_last_ack() -> None:
    # "CLOSE-WAIT STATE: Queue this request until all preceding SENDs have been
    # segmentized; then send a FIN segment, enter LAST-ACK state."
    d = close_wait()
    d.conn.send(b"bye")
    d.conn.close()
    assert d.conn.state is S.LAST_ACK
    assert d.transitions() == [(S.CLOSE_WAIT, S.LAST_ACK, "close()")]
    out = d.flush()
    assert brief(out) == [(FIN | PSH | ACK, ISS + 1, PEER_ISS + 2)] and out[0].payload == b"bye"


def test_rfc9293_3_10_7_4_last_ack_ack_of_fin_to_closed() -> None:
    # "LAST-ACK STATE: ... If our FIN is now acknowledged, delete the TCB, enter
    # the CLOSED state, and return."
    d = last_ack()
    assert d.receive(d.seg(ACK, PEER_ISS + 2, ISS + 2)) == []
    assert d.conn.state is S.CLOSED
    assert d.transitions() == [(S.LAST_ACK, S.CLOSED, "recv ACK")]
    assert kinds(d.take_events()) == ["StateChanged", "Closed"]
    assert d.conn.next_deadline() is None


def test_rfc9293_3_10_7_4_last_ack_ack_below_fin_stays() -> None:
    d2 = close_wait()
    d2.conn.send(b"xyz")
    d2.conn.close()
    out = d2.flush()
    assert brief(out) == [(FIN | PSH | ACK, ISS + 1, PEER_ISS + 2)]
    # An ACK of the data but not of the FIN (which takes seq 1004) keeps LAST-ACK.
    assert d2.receive(d2.seg(ACK, PEER_ISS + 2, ISS + 4)) == []
    assert d2.conn.state is S.LAST_ACK
    assert d2.receive(d2.seg(ACK, PEER_ISS + 2, ISS + 5)) == []
    assert d2.conn.state is S.CLOSED


def test_rfc9293_3_6_passive_close_on_the_wire(pair_close_wait: MemNetwork) -> None:
    net = pair_close_wait
    a, b = net.a, net.b
    assert b.state is S.CLOSE_WAIT
    b.send(b"last words")
    b.close()
    assert b.state is S.LAST_ACK
    assert net.run(lambda: b.state is S.CLOSED, max_time=1)
    assert a.read() == b"last words" and a.at_eof
    assert a.state is S.TIME_WAIT
    assert [(e.old, e.new, e.cause) for e in b.events() if isinstance(e, StateChanged)] == [
        (S.CLOSE_WAIT, S.LAST_ACK, "close()"),
        (S.LAST_ACK, S.CLOSED, "recv ACK"),
    ]


# ---------------------------------------------------------------- simultaneous close
def test_rfc9293_3_10_7_4_fin_wait_1_fin_to_closing() -> None:
    # "FIN-WAIT-1 STATE: ... otherwise, enter the CLOSING state."
    d = fin_wait_1()
    out = d.receive(d.seg(FIN | ACK, PEER_ISS + 1, ISS + 1))
    assert brief(out) == [(ACK, ISS + 2, PEER_ISS + 2)]
    assert d.conn.state is S.CLOSING
    assert d.transitions() == [(S.FIN_WAIT_1, S.CLOSING, "recv FIN+ACK")]


def test_rfc9293_3_10_7_4_closing_ack_of_fin_to_time_wait() -> None:
    # "CLOSING STATE: In addition to the processing for the ESTABLISHED state, if
    # the ACK acknowledges our FIN, then enter the TIME-WAIT state".
    d = closing(SHORT_MSL)
    assert d.receive(d.seg(ACK, PEER_ISS + 2, ISS + 2)) == []
    assert d.conn.state is S.TIME_WAIT
    assert d.transitions() == [(S.CLOSING, S.TIME_WAIT, "recv ACK")]
    assert d.conn.next_deadline() == pytest.approx(d.now + 2.0)


def test_rfc9293_3_6_figure_13_simultaneous_close_on_the_wire(pair: MemNetwork) -> None:
    a, b = pair.a, pair.b
    a.shutdown()
    b.shutdown()
    assert pair.run(lambda: a.state is S.TIME_WAIT and b.state is S.TIME_WAIT, max_time=1)
    for conn in (a, b):
        assert [(e.old, e.new) for e in conn.events() if isinstance(e, StateChanged)] == [
            (S.ESTABLISHED, S.FIN_WAIT_1),
            (S.FIN_WAIT_1, S.CLOSING),
            (S.CLOSING, S.TIME_WAIT),
        ]
    assert pair.run(lambda: a.state is b.state is S.CLOSED, max_time=5)


def test_rfc9293_3_10_7_4_closing_pair_to_time_wait(pair_closing: MemNetwork) -> None:
    net = pair_closing
    net.ab.log, net.ba.log = [], []
    net.advance(net.ab.delay)
    assert net.a.state is S.TIME_WAIT and net.b.state is S.TIME_WAIT
    assert [(e.old, e.new, e.cause) for e in net.a.events() if isinstance(e, StateChanged)] == [
        (S.CLOSING, S.TIME_WAIT, "recv ACK")
    ]
    assert net.ab.log == [] and net.ba.log == []  # nothing more to say
    net.advance(2 * SHORT_MSL.msl)
    assert net.a.state is S.CLOSED and net.b.state is S.CLOSED


# ---------------------------------------------------------------- half-close
def test_rfc9293_3_10_4_half_close_keeps_receiving() -> None:
    # After shutdown() (our FIN sent and acknowledged), the peer's data still
    # arrives, is acknowledged and read, until its FIN.
    d = established()
    d.conn.shutdown()
    assert brief(d.flush()) == [(FIN | ACK, ISS + 1, PEER_ISS + 1)]
    assert d.receive(d.seg(ACK, PEER_ISS + 1, ISS + 2)) == []
    assert d.conn.state is S.FIN_WAIT_2
    out = d.receive(d.seg(ACK | PSH, PEER_ISS + 1, ISS + 2, b"hello"))
    assert brief(out) == [(ACK, ISS + 2, PEER_ISS + 6)]
    out = d.receive(d.seg(ACK | PSH, PEER_ISS + 6, ISS + 2, b" world"))
    assert brief(out) == [(ACK, ISS + 2, PEER_ISS + 12)]
    assert d.conn.read() == b"hello world"
    assert d.conn.state is S.FIN_WAIT_2
    out = d.receive(d.seg(FIN | ACK, PEER_ISS + 12, ISS + 2))
    assert brief(out) == [(ACK, ISS + 2, PEER_ISS + 13)]
    assert d.conn.state is S.TIME_WAIT and d.conn.at_eof


def test_linux_data_after_close_answered_with_rst() -> None:
    # close() (unlike shutdown()) gives up reading: data arriving afterwards is
    # answered with a RST, as Linux does (tcp_rcv_state_process, FIN-WAIT-1/2).
    d = fin_wait_2()
    out = d.receive(d.seg(ACK | PSH, PEER_ISS + 1, ISS + 2, b"hello"))
    assert [s.flags & RST for s in out] == [RST] and out[0].seq == ISS + 2
    assert d.conn.state is S.CLOSED


def test_rfc9293_3_10_4_half_close_on_the_wire(pair_fin_wait_2: MemNetwork) -> None:
    net = pair_fin_wait_2
    a, b = net.a, net.b
    data = bytes(range(256)) * 400
    sent = b.send(data)
    got = bytearray()

    def app(n: MemNetwork) -> None:
        nonlocal sent
        if sent < len(data):
            sent += b.send(data[sent:])
        got.extend(a.read())

    assert net.run(lambda: len(got) == len(data), app=app, max_time=30)
    assert bytes(got) == data and a.state is S.FIN_WAIT_2
    with pytest.raises(Exception, match="shutdown"):
        a.send(b"no more")
    b.close()
    assert net.run(lambda: a.state is S.TIME_WAIT and b.state is S.CLOSED, max_time=5)


# ---------------------------------------------------------------- FIN and sequence space
def test_rfc9293_3_4_fin_takes_one_sequence_number() -> None:
    d = established(TcpConfig(nagle=False))
    d.conn.send(b"abc")
    assert brief(d.flush()) == [(ACK | PSH, ISS + 1, PEER_ISS + 1)]
    d.conn.close()
    out = d.flush()
    assert brief(out) == [(FIN | ACK, ISS + 4, PEER_ISS + 1)] and out[0].payload == b""
    assert d.conn.snd_max == ISS + 5  # 3 bytes and the FIN
    assert d.receive(d.seg(ACK, PEER_ISS + 1, ISS + 4)) == []
    assert d.conn.state is S.FIN_WAIT_1  # the data is acknowledged, the FIN is not
    assert d.receive(d.seg(ACK, PEER_ISS + 1, ISS + 5)) == []
    assert d.conn.state is S.FIN_WAIT_2


def test_rfc9293_3_10_7_4_fin_ahead_of_a_hole_waits_for_it() -> None:
    d = established()
    out = d.receive(d.seg(FIN | ACK, PEER_ISS + 4, ISS + 1, b"def"))
    assert brief(out) == [(ACK, ISS + 1, PEER_ISS + 1)]  # duplicate ACK, RFC 5681 §4.2
    assert d.conn.state is S.ESTABLISHED
    out = d.receive(d.seg(ACK, PEER_ISS + 1, ISS + 1, b"abc"))
    assert brief(out) == [(ACK, ISS + 1, PEER_ISS + 8)]
    assert d.conn.state is S.CLOSE_WAIT
    assert d.conn.read() == b"abcdef" and d.conn.at_eof


# ---------------------------------------------------------------- TIME-WAIT
def test_rfc9293_3_10_7_4_time_wait_retransmitted_fin_reacked_and_2msl_restarted() -> None:
    # "TIME-WAIT STATE: The only thing that can arrive in this state is a
    # retransmission of the remote FIN. Acknowledge it, and restart the 2 MSL timeout."
    d = time_wait(TcpConfig(msl=1.0))
    assert d.conn.next_deadline() == pytest.approx(2.0)
    d.advance(1.5)
    out = d.receive(d.seg(FIN | ACK, PEER_ISS + 1, ISS + 2))
    assert brief(out) == [(ACK, ISS + 2, PEER_ISS + 2)]
    assert d.conn.state is S.TIME_WAIT
    assert d.conn.next_deadline() == pytest.approx(3.5)
    d.advance(1.9)
    assert d.conn.state is S.TIME_WAIT
    d.advance(0.1)
    assert d.conn.state is S.CLOSED


def test_rfc9293_3_10_7_4_time_wait_pair_closed_after_2msl(pair_time_wait: MemNetwork) -> None:
    net = pair_time_wait
    a = net.a
    entered = a.next_deadline()
    assert entered is not None and entered - net.now <= 2 * SHORT_MSL.msl
    net.ab.log = []
    assert net.run(lambda: a.state is S.CLOSED, max_time=5)
    assert net.now == pytest.approx(entered)
    assert net.ab.log == []
    assert [(e.old, e.new, e.cause) for e in a.events() if isinstance(e, StateChanged)] == [
        (S.TIME_WAIT, S.CLOSED, "timer time-wait")
    ]


def test_rfc9293_3_10_7_4_time_wait_pair_lost_last_ack(pair_last_ack: MemNetwork) -> None:
    # The last ACK is lost: b retransmits its FIN, a (TIME-WAIT) re-ACKs it and b closes.
    net = pair_last_ack
    a, b = net.a, net.b
    dropped: list = []

    def drop_first_ack(seg):  # type: ignore[no-untyped-def]
        if not dropped and seg.flags == ACK and not seg.payload:
            dropped.append(seg)
            return True
        return False

    net.ab.drop = drop_first_ack
    assert net.run(lambda: a.state is S.TIME_WAIT, max_time=1)
    assert dropped and b.state is S.LAST_ACK
    assert net.run(lambda: b.state is S.CLOSED, max_time=5)
    assert a.state is S.TIME_WAIT
    assert net.run(lambda: a.state is S.CLOSED, max_time=5)


# ---------------------------------------------------------------- close and abort
def test_rfc2525_2_17_close_with_unread_data_sends_rst() -> None:
    # As Linux (tcp_close): unread data at close() means RST, not FIN.
    d = established()
    d.receive(d.seg(ACK | PSH, PEER_ISS + 1, ISS + 1, b"unread"))
    d.take_events()
    d.conn.close()
    assert d.conn.state is S.CLOSED
    assert brief(d.flush()) == [(RST | ACK, ISS + 1, PEER_ISS + 7)]
    assert d.transitions() == [(S.ESTABLISHED, S.CLOSED, "close()")]
    assert kinds(d.take_events()) == ["StateChanged", "Closed"]


def test_rfc9293_3_10_5_abort_sends_rst_and_closes() -> None:
    # "ESTABLISHED STATE ... Send a reset segment: <SEQ=SND.NXT><CTL=RST>"
    d = established()
    d.conn.abort()
    assert d.conn.state is S.CLOSED
    assert brief(d.flush()) == [(RST | ACK, ISS + 1, PEER_ISS + 1)]
    assert d.transitions() == [(S.ESTABLISHED, S.CLOSED, "abort()")]
    assert kinds(d.take_events()) == ["StateChanged", "Closed"]
    assert d.flush() == [] and d.conn.next_deadline() is None


@pytest.mark.parametrize("make", [syn_sent, time_wait, closing, last_ack])
def test_rfc9293_3_10_5_abort_without_rst(make) -> None:  # type: ignore[no-untyped-def]
    # SYN-SENT: "all queued SENDs and RECEIVEs should be given "connection reset"
    # notification. Delete the TCB"; CLOSING, LAST-ACK, TIME-WAIT: "respond with
    # "ok" and delete the TCB" - no RST in either case.
    d = make()
    old = d.conn.state
    d.conn.abort()
    assert d.conn.state is S.CLOSED and d.flush() == []
    assert d.transitions() == [(old, S.CLOSED, "abort()")]


@pytest.mark.parametrize("make", [fin_wait_1, fin_wait_2, close_wait])
def test_rfc9293_3_10_5_abort_in_synchronized_states_sends_rst(make) -> None:  # type: ignore[no-untyped-def]
    d = make()
    old = d.conn.state
    d.conn.abort()
    out = d.flush()
    assert [s.flags for s in out] == [RST | ACK] and out[0].seq == d.conn.snd_max
    assert d.transitions() == [(old, S.CLOSED, "abort()")]


def test_rfc9293_3_10_4_close_in_syn_sent_deletes_tcb() -> None:
    # "SYN-SENT STATE: Delete the TCB and return "error: closing" responses".
    d = syn_sent()
    d.conn.close()
    assert d.conn.state is S.CLOSED and d.flush() == []
    assert d.transitions() == [(S.SYN_SENT, S.CLOSED, "close()")]
    assert d.conn.next_deadline() is None


def test_rfc9293_3_10_7_3_rst_refuses_connection_on_the_wire() -> None:
    # A SYN to a port with no connection gets <SEQ=0><ACK=SEG.SEQ+SEG.LEN><CTL=RST,ACK>
    # (§3.10.7.1); in SYN-SENT that RST is acceptable and refuses the connection.
    a = Connection.client(("198.18.0.1", 40000), ("198.18.0.2", 80), iss=1000)
    b = Connection("198.18.0.2", 80, "198.18.0.1", 40000)  # CLOSED: no listener
    net = MemNetwork(a, b)
    a.connect(0.0)
    assert net.run(lambda: a.state is S.CLOSED, max_time=2)
    assert brief(net.resets_from_closed) == [(RST | ACK, 0, 1001)]
    events = a.events()
    assert ConnectionReset(refused=True) in events and Closed() in events
    assert [(e.old, e.new, e.cause) for e in events if isinstance(e, StateChanged)][-1] == (
        S.SYN_SENT,
        S.CLOSED,
        "recv RST+ACK",
    )


def test_peer_closed_event_once() -> None:
    d = established()
    d.receive(d.seg(FIN | ACK, PEER_ISS + 1, ISS + 1))
    d.receive(d.seg(FIN | ACK, PEER_ISS + 1, ISS + 1))  # retransmitted FIN
    assert d.take_events().count(PeerClosed()) == 1


def test_rfc7323_2_2_simultaneous_open_syn_ack_window_not_scaled() -> None:
    # "The window field in a segment where the SYN bit is set (i.e., a <SYN> or
    # <SYN,ACK>) MUST NOT be scaled." - also the SYN,ACK ending a simultaneous open.
    d = syn_sent()
    d.receive(d.seg(SYN, PEER_ISS, window=1000, options=Driver.syn_options(1460, 7)))
    assert d.conn.state is S.SYN_RECEIVED and d.conn.snd_wscale == 7
    d.receive(d.seg(SYN | ACK, PEER_ISS, ISS + 1, window=1000, options=Driver.syn_options(1460, 7)))
    assert d.conn.state is S.ESTABLISHED
    assert d.conn.snd_wnd == 1000
    # Later segments are scaled.
    d.receive(d.seg(ACK, PEER_ISS + 1, ISS + 1, window=1000))
    assert d.conn.snd_wnd == 1000 << 7


def test_rfc9293_3_10_7_3_data_queued_in_syn_sent_rides_the_third_segment() -> None:
    # SEND in SYN-SENT: "Queue the data for transmission after entering ESTABLISHED
    # state"; then "Data or controls that were queued for transmission may be included".
    d = syn_sent()
    assert d.conn.send(b"early bird") == 10
    assert d.flush() == []
    out = d.receive(d.seg(SYN | ACK, PEER_ISS, ISS + 1, options=Driver.syn_options()))
    assert brief(out) == [(ACK | PSH, ISS + 1, PEER_ISS + 1)]
    assert out[0].payload == b"early bird"
