"""Retransmission timer per RFC 6298: the estimator alone, then inside a connection."""

from __future__ import annotations

import pytest

from netemu.tcp import State, TcpConfig, Timer
from netemu.tcp.rtt import RttEstimator
from netemu.testing import Driver, MemLink, brief, established_pair
from netemu.testing.states import ISS, PEER_ISS, established, syn_received, syn_sent
from netemu.wire.tcp import ACK, PSH, SYN


def est(rto_min: float = 0.2, rto_max: float = 120.0) -> RttEstimator:
    return RttEstimator(1.0, rto_min, rto_max)


def test_rfc6298_2_1_initial_rto_one_second() -> None:
    # "(2.1) Until a round-trip time (RTT) measurement has been made ... RTO <- 1 second"
    r = est()
    assert r.srtt is None and r.current() == 1.0
    d = Driver.client(iss=ISS)
    d.connect()
    assert d.conn.timers[Timer.RETRANSMIT] == 1.0


def test_rfc6298_2_2_first_sample() -> None:
    # "(2.2) When the first RTT measurement R is made, the host MUST set
    # SRTT <- R, RTTVAR <- R/2, RTO <- SRTT + max (G, K*RTTVAR)"
    r = est()
    r.sample(0.5)
    assert (r.srtt, r.rttvar) == (0.5, 0.25)
    assert r.rto == pytest.approx(0.5 + 4 * 0.25)


def test_rfc6298_2_3_later_samples() -> None:
    # "(2.3) RTTVAR <- (1 - beta) * RTTVAR + beta * |SRTT - R'|
    #        SRTT <- (1 - alpha) * SRTT + alpha * R'
    # ... RTO <- SRTT + max (G, K*RTTVAR)"   (alpha = 1/8, beta = 1/4, K = 4)
    r = est()
    r.sample(0.5)
    srtt, rttvar = 0.5, 0.25
    for sample in (1.0, 0.3, 0.3, 2.0, 0.1):
        r.sample(sample)
        rttvar = 0.75 * rttvar + 0.25 * abs(srtt - sample)  # uses the old SRTT
        srtt = 0.875 * srtt + 0.125 * sample
        assert r.srtt == pytest.approx(srtt) and r.rttvar == pytest.approx(rttvar)
        assert r.rto == pytest.approx(srtt + max(4 * rttvar, 0.2))
    assert (r.srtt, r.rttvar) == pytest.approx(
        (0.5625 * 0.875**4 + 0.125 * (0.3 * 0.875**3 + 0.3 * 0.875**2 + 2.0 * 0.875 + 0.1), rttvar)
    )


def test_rfc6298_2_granularity_floor() -> None:
    # "max (G, K*RTTVAR)": a perfectly steady RTT still gets G on top.
    r = est(rto_min=0.0)
    for _ in range(50):
        r.sample(0.05)
    assert r.rto >= 0.05 + 0.001 - 1e-12


def test_rfc6298_2_4_rto_at_least_rto_min_above_srtt_as_linux() -> None:
    # "(2.4) Whenever RTO is computed, if it is less than 1 second, then the RTO
    # SHOULD be rounded up to 1 second." Linux bounds the variance term instead
    # (RTTVAR >= TCP_RTO_MIN, RTO = SRTT + RTTVAR): at least SRTT + rto_min.
    r = est(rto_min=0.2)
    r.sample(0.001)
    assert r.rto == pytest.approx(0.201)
    r2 = est(rto_min=1.0)
    r2.sample(0.1)
    assert r2.rto == pytest.approx(1.1)


def test_steady_long_round_trip_keeps_rto_min_of_slack() -> None:
    # A steady 200 ms path: RFC 6298's form converges on SRTT + G, so an ACK held
    # back 40 ms by a delayed-ACK timer would fire the RTO; Linux's keeps 200 ms.
    r = est(rto_min=0.2)
    for _ in range(200):
        r.sample(0.2)
    assert r.rto == pytest.approx(0.4, abs=1e-3)
    assert r.current() == r.rto and r.rttvar < 0.001


def test_rfc6298_2_5_rto_clamped_to_rto_max() -> None:
    # "(2.5) A maximum value MAY be placed on RTO provided it is at least 60 seconds."
    r = est(rto_max=60.0)
    r.sample(50.0)
    assert r.rto == 60.0


def test_rfc6298_5_5_back_off_doubles_up_to_rto_max() -> None:
    # "(5.5) The host MUST set RTO <- RTO * 2 ("back off the timer")."
    r = est(rto_max=10.0)
    r.sample(0.5)  # RTO 1.5
    seen = [r.current()]
    for _ in range(6):
        r.back_off()
        seen.append(r.current())
    assert seen == [1.5, 3.0, 6.0, 10.0, 10.0, 10.0, 10.0]
    r.sample(0.5)  # a new sample ends the back-off
    assert r.backoff == 0


def test_rfc6298_2_2_first_sample_from_the_handshake() -> None:
    # The SYN is timed: 100 ms round trip on the wire gives SRTT 0.1, RTTVAR 0.05.
    net = established_pair(ab=MemLink(delay=0.05), ba=MemLink(delay=0.05))
    a = net.a
    assert a.rtt.srtt == pytest.approx(0.1)
    assert a.rtt.rttvar == pytest.approx(0.05)
    assert a.rtt.rto == pytest.approx(0.3)


def _timed_established(rtt: float = 0.1) -> Driver:
    """ESTABLISHED after a handshake with a ``rtt`` round trip: SRTT = rtt."""
    d = syn_sent()
    d.advance(rtt)
    d.receive(d.seg(SYN | ACK, PEER_ISS, ISS + 1, options=Driver.syn_options()))
    d.take_events()
    return d


def test_rfc6298_connection_samples_data_rtt() -> None:
    d = _timed_established(0.1)
    assert d.conn.rtt.srtt == pytest.approx(0.1) and d.conn.rtt.rttvar == pytest.approx(0.05)
    d.conn.send(b"a" * 100)
    d.flush()
    d.advance(0.2)  # the RTO is 0.3: not yet
    assert d.sent[-1].payload == b"a" * 100 and len(d.sent) == 3
    d.receive(d.seg(ACK, PEER_ISS + 1, ISS + 101))
    # R = 0.2: RTTVAR = 3/4*0.05 + 1/4*|0.1-0.2|, SRTT = 7/8*0.1 + 1/8*0.2
    assert d.conn.rtt.rttvar == pytest.approx(0.0625)
    assert d.conn.rtt.srtt == pytest.approx(0.1125)
    assert d.conn.rtt.rto == pytest.approx(0.1125 + 4 * 0.0625)


def test_rfc6298_5_5_connection_backs_off_on_each_timeout() -> None:
    d = established(TcpConfig(rto_max=5.0))
    d.conn.send(b"x" * 100)
    d.flush()
    times = []
    for _ in range(7):
        out = d.advance_to_deadline()
        assert brief(out) == [(ACK | PSH, ISS + 1, PEER_ISS + 1)]
        times.append(d.now)
    gaps = [round(b - a, 6) for a, b in zip([0.0, *times], times, strict=False)]
    assert gaps == [0.2, 0.4, 0.8, 1.6, 3.2, 5.0, 5.0]


def test_rfc6298_5_6_rto_restarted_on_new_ack() -> None:
    # "(5.3) When an ACK is received that acknowledges new data, restart the
    # retransmission timer so that it will expire after RTO seconds"
    d = established(TcpConfig(nagle=False))
    d.conn.send(b"x" * 100)
    d.flush()
    d.advance(0.1)
    d.conn.send(b"y" * 100)
    d.flush()
    d.advance(0.05)
    d.receive(d.seg(ACK, PEER_ISS + 1, ISS + 101))
    assert d.conn.timers[Timer.RETRANSMIT] == pytest.approx(d.now + d.conn.rtt.current())
    # "(5.2) When all outstanding data has been acknowledged, turn off the timer."
    d.receive(d.seg(ACK, PEER_ISS + 1, ISS + 201))
    assert Timer.RETRANSMIT not in d.conn.timers


def test_rfc6298_3_karn_no_sample_from_retransmitted_segment() -> None:
    # "TCP MUST use Karn's algorithm [KP87] for taking RTT samples. That is, RTT
    # samples MUST NOT be made using segments that were retransmitted"
    d = _timed_established(0.1)
    rto = d.conn.rtt.rto
    d.conn.send(b"k" * 100)
    d.flush()
    out = d.advance(rto)  # the RTO fires: retransmission
    assert brief(out) == [(ACK | PSH, ISS + 1, PEER_ISS + 1)]
    d.advance(0.05)
    d.receive(d.seg(ACK, PEER_ISS + 1, ISS + 101))  # ambiguous: no sample
    assert d.conn.rtt.srtt == pytest.approx(0.1)
    assert d.conn.rtt.rttvar == pytest.approx(0.05)
    # The next, never retransmitted, segment is sampled again.
    d.conn.send(b"n" * 100)
    d.flush()
    d.advance(0.1)
    d.receive(d.seg(ACK, PEER_ISS + 1, ISS + 201))
    assert d.conn.rtt.rttvar == pytest.approx(0.75 * 0.05)


def test_rfc6298_3_karn_no_sample_from_retransmitted_syn() -> None:
    d = syn_sent()
    d.advance(1.0)  # SYN retransmitted
    assert [s.flags for s in d.sent] == [SYN, SYN]
    d.advance(0.05)
    d.receive(d.seg(SYN | ACK, PEER_ISS, ISS + 1, options=Driver.syn_options()))
    assert d.conn.state is State.ESTABLISHED
    assert d.conn.rtt.srtt is None


def test_rfc6298_5_7_rto_three_seconds_after_lost_syn() -> None:
    # "(5.7) If the timer expires awaiting the ACK of a SYN segment and the TCP
    # implementation is using an RTO less than 3 seconds, the RTO MUST be
    # re-initialized to 3 seconds when data transmission begins (i.e., after the
    # three-way handshake completes)."
    d = syn_sent()
    d.advance(1.0)
    d.advance(0.05)
    d.receive(d.seg(SYN | ACK, PEER_ISS, ISS + 1, options=Driver.syn_options()))
    d.conn.send(b"x")
    d.flush()
    assert d.conn.timers[Timer.RETRANSMIT] == pytest.approx(d.now + 3.0)


def test_rfc6298_5_7_rto_three_seconds_after_lost_syn_ack() -> None:
    d = syn_received()
    d.advance(1.0)
    assert [s.flags for s in d.sent] == [SYN | ACK, SYN | ACK]
    d.receive(d.seg(ACK, PEER_ISS + 1, ISS + 1))
    assert d.conn.state is State.ESTABLISHED and d.conn.rtt.rto == 3.0


def test_rfc6298_5_4_retransmission_not_held_by_nagle() -> None:
    # A small segment (all that is queued) is lost: its retransmission must not
    # wait for an ACK, as Nagle would have new small data wait.
    d = established(TcpConfig(nagle=True))
    d.conn.send(b"tail")
    assert len(d.flush()) == 1
    out = d.advance_to_deadline()
    assert brief(out) == [(ACK | PSH, ISS + 1, PEER_ISS + 1)] and out[0].payload == b"tail"
