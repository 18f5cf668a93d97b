"""Timeouts: SYN and data retries (RFC 9293 §3.8.3, RFC 1122 §4.2.3.5), the
Linux FIN-WAIT-2 timeout, and the ISN clock (RFC 6528)."""

from __future__ import annotations

import itertools

import pytest

from netemu.tcp import Connection, IsnGenerator, State, TcpConfig, TimedOut, Timer
from netemu.testing import Driver, brief
from netemu.testing.states import ISS, PEER_ISS, established, fin_wait_2, syn_received
from netemu.wire.tcp import ACK, FIN, PSH, SYN

S = State


def _run_until_closed(d: Driver, limit: int = 100) -> list[tuple[float, object]]:
    """Fire timers until CLOSED; (time, segment) of everything sent on the way."""
    sent = []
    for _ in range(limit):
        if d.conn.state is S.CLOSED:
            return sent
        sent += [(d.now, s) for s in d.advance_to_deadline()]
    raise AssertionError("never closed")


@pytest.mark.parametrize("retries", [0, 1, 3, 6])
def test_rfc6298_5_5_syn_retries_exhausted_timed_out(retries: int) -> None:
    # 1 + syn_retries SYNs, spaced 1, 2, 4 ... s (RTO 1 s, doubled on each timeout),
    # then TimedOut and CLOSED (Linux: tcp_syn_retries).
    d = Driver.client(TcpConfig(syn_retries=retries), iss=ISS)
    d.connect()
    d.take_events()
    sent = [(0.0, d.sent[0])]
    sent += _run_until_closed(d)
    assert [brief([s])[0] for _, s in sent] == [(SYN, ISS, 0)] * (1 + retries)
    times = [t for t, _ in sent]
    assert [b - a for a, b in itertools.pairwise(times)] == [2.0**k for k in range(retries)]
    assert d.now == pytest.approx(2.0 ** (retries + 1) - 1)  # the last wait, 2**retries s
    events = d.take_events()
    timed_out = [e for e in events if isinstance(e, TimedOut)]
    assert len(timed_out) == 1 and "SYN" in timed_out[0].what
    assert [(e.old, e.new, e.cause) for e in events if hasattr(e, "old")] == [
        (S.SYN_SENT, S.CLOSED, "timer retransmit")
    ]
    assert d.conn.next_deadline() is None


def test_rfc6298_5_5_synack_retries_exhausted() -> None:
    d = syn_received(TcpConfig(synack_retries=2))
    sent = _run_until_closed(d)
    assert [brief([s])[0] for _, s in sent] == [(SYN | ACK, ISS, PEER_ISS + 1)] * 2
    assert [t for t, _ in sent] == [1.0, 3.0] and d.now == 7.0
    assert any(isinstance(e, TimedOut) for e in d.take_events())


def test_rfc9293_3_8_3_data_retries_exhausted_timed_out() -> None:
    # "R2 ... the TCP implementation MUST close the connection" (Linux tcp_retries2).
    d = established(TcpConfig(retries2=3))
    rto = d.conn.rtt.current()
    assert rto == pytest.approx(0.2)  # the handshake's RTT sample was 0: rto_min
    d.conn.send(b"x" * 100)
    first = d.flush()
    assert brief(first) == [(ACK | PSH, ISS + 1, PEER_ISS + 1)]
    sent = _run_until_closed(d)
    assert [s.seq for _, s in sent] == [ISS + 1] * 3
    assert [t for t, _ in sent] == pytest.approx([0.2, 0.6, 1.4])
    assert d.now == pytest.approx(3.0)
    events = d.take_events()
    assert any(isinstance(e, TimedOut) and "data" in e.what for e in events)
    assert d.conn.state is S.CLOSED


def test_rfc9293_3_8_3_retries_counted_from_the_last_progress() -> None:
    d = established(TcpConfig(retries2=2))
    d.conn.send(b"x" * 100)
    d.flush()
    d.advance_to_deadline()  # retransmission 1
    d.advance_to_deadline()  # retransmission 2
    d.receive(d.seg(ACK, PEER_ISS + 1, ISS + 51))  # partial progress resets the count
    d.advance_to_deadline()
    d.advance_to_deadline()
    assert d.conn.state is S.ESTABLISHED
    d.advance_to_deadline()
    assert d.conn.state is S.CLOSED


def test_linux_fin_wait_2_timeout_after_close() -> None:
    # An orphaned FIN-WAIT-2 (after close()) dies after tcp_fin_timeout.
    d = fin_wait_2(TcpConfig(fin_timeout=5.0))
    assert d.conn.timers == {Timer.FIN_WAIT_2: pytest.approx(5.0)}
    d.advance(5.0)
    assert d.conn.state is S.CLOSED
    assert [(o, n, c) for o, n, c in d.transitions()] == [
        (S.FIN_WAIT_2, S.CLOSED, "timer fin-wait-2")
    ]


def test_rfc9293_3_6_fin_wait_2_after_shutdown_waits_forever() -> None:
    d = established(TcpConfig(fin_timeout=5.0))
    d.conn.shutdown()
    assert brief(d.flush()) == [(FIN | ACK, ISS + 1, PEER_ISS + 1)]
    d.receive(d.seg(ACK, PEER_ISS + 1, ISS + 2))
    assert d.conn.state is S.FIN_WAIT_2
    assert d.conn.next_deadline() is None
    d.advance(1000)
    assert d.conn.state is S.FIN_WAIT_2


def test_rfc9293_3_10_7_4_time_wait_turns_off_other_timers() -> None:
    d = established(TcpConfig(msl=1.0))
    d.conn.send(b"x" * 10)
    d.conn.close()
    d.flush()
    assert Timer.RETRANSMIT in d.conn.timers
    d.receive(d.seg(FIN | ACK, PEER_ISS + 1, ISS + 12))
    assert d.conn.state is S.TIME_WAIT
    assert d.conn.timers == {Timer.TIME_WAIT: pytest.approx(2.0)}


# ---------------------------------------------------------------- ISN (RFC 6528)
A = ("10.0.0.1", 40000, "10.0.0.2", 80)


def test_rfc6528_3_same_secret_same_now_same_isn() -> None:
    g1, g2 = IsnGenerator(b"s" * 16), IsnGenerator(b"s" * 16)
    assert g1.isn(*A, 12.5) == g2.isn(*A, 12.5) == g1.isn(*A, 12.5)
    assert IsnGenerator(b"t" * 16).isn(*A, 12.5) != g1.isn(*A, 12.5)


def test_rfc6528_3_different_four_tuples_differ() -> None:
    g = IsnGenerator(b"s" * 16)
    tuples = [
        A,
        ("10.0.0.1", 40001, "10.0.0.2", 80),
        ("10.0.0.1", 40000, "10.0.0.3", 80),
        ("10.0.0.9", 40000, "10.0.0.2", 80),
        ("10.0.0.1", 40000, "10.0.0.2", 81),
        ("10.0.0.2", 80, "10.0.0.1", 40000),
    ]
    isns = {g.isn(*t, 0.0) for t in tuples}
    assert len(isns) == len(tuples)


def test_rfc6528_3_isn_advances_with_the_4_microsecond_clock() -> None:
    # "M is the 4 microsecond timer"
    g = IsnGenerator(b"s" * 16)
    base = g.isn(*A, 0.5)
    assert (g.isn(*A, 0.5 + 4e-6) - base) % 2**32 == 1
    assert (g.isn(*A, 1.5) - base) % 2**32 == 250_000
    assert (g.isn(*A, 0.5 + 4 * 3600) - base) % 2**32 == (250_000 * 4 * 3600) % 2**32  # wraps


def test_rfc6528_connection_uses_the_generator_at_connect_time() -> None:
    g = IsnGenerator(b"s" * 16)
    c = Connection.client(("10.0.0.1", 40000), ("10.0.0.2", 80), isn_generator=g)
    c.connect(7.0)
    assert c.iss == g.isn(*A, 7.0)
    assert c.segments_to_send(7.0)[0].seq == c.iss
