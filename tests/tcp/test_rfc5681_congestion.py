"""Congestion control (RFC 5681): slow start, congestion avoidance, fast
retransmit and recovery (NewReno, RFC 6582), limited transmit (RFC 3042),
restart after idle (§4.1); CUBIC (RFC 9438) as the second algorithm; every
change of phase reported as a CongestionChanged event.

Hand-driven connections without SACK (the peer of states.established offers
none), so the RFC 5681 duplicate-ACK rules apply; 1460-byte segments.
"""

from __future__ import annotations

import pytest

from netemu.tcp import CongestionChanged, State, TcpConfig, Timer
from netemu.tcp.cc import CUBIC_BETA, CUBIC_C, Cubic, NewReno, make_cc
from netemu.testing import Driver, brief
from netemu.testing.states import ISS, PEER_ISS, established, syn_sent
from netemu.wire.tcp import ACK, PSH, SYN

MSS = 1460
P = PEER_ISS + 1
NEWRENO = TcpConfig(congestion_control="newreno")


def _seg_no(s) -> int:
    return (s.seq - ISS - 1) // MSS


def _ack(d: Driver, upto_segment: float, **kw) -> list:
    return d.receive(d.seg(ACK, P, ISS + 1 + int(upto_segment * MSS), **kw))


def _cc_events(d: Driver) -> list[tuple[str, str]]:
    return [(e.phase, e.cause) for e in d.take_events() if isinstance(e, CongestionChanged)]


# ------------------------------------------------------------------ slow start, CA
def test_rfc5681_3_1_cwnd_follows_slow_start_then_congestion_avoidance() -> None:
    # "IW ... MUST be set using ... 10 segments" (RFC 6928, Linux IW10); "During
    # slow start, a TCP increments cwnd by at most SMSS bytes for each ACK";
    # above ssthresh "cwnd is incremented by roughly 1 full-sized segment per
    # round-trip time".
    d = established(NEWRENO)
    cc = d.conn.cc
    assert cc.cwnd == 10 * MSS and cc.phase == "slow-start"
    cc.ssthresh = 16 * MSS  # as if a loss had set it
    d.conn.send(bytes(200 * MSS))
    d.flush()
    trace = []
    acked = 0
    while acked < 60:
        acked += 1
        _ack(d, acked)
        trace.append(cc.cwnd // MSS)
    # One segment per ACK up to ssthresh (10 -> 16 in six ACKs) ...
    assert trace[:6] == [11, 12, 13, 14, 15, 16]
    # ... then one segment per window's worth of ACKs: 16 ACKs, 17, 18 more...
    assert trace[6:22] == [16] * 15 + [17]
    assert trace[22:39] == [17] * 16 + [18]
    assert _cc_events(d) == [("congestion-avoidance", "ssthresh reached")]


def test_rfc5681_3_1_slow_start_doubles_cwnd_per_round_trip_on_the_wire() -> None:
    from netemu.testing import MemLink, established_pair

    cfg = TcpConfig(
        congestion_control="newreno", rcv_buf=4 << 20, snd_buf=4 << 20, delayed_ack=False
    )
    net = established_pair(
        cfg,
        cfg,
        ab=MemLink(delay=0.005),
        ba=MemLink(src_ip="198.18.0.2", dst_ip="198.18.0.1", delay=0.005),
    )
    a = net.a
    a.send(bytes(2 << 20))
    windows = []
    for _ in range(5):
        net.advance(0.010)
        windows.append(a.cc.cwnd // a.smss)
    assert windows == [20, 40, 80, 160, 320]


def test_rfc3465_stretch_ack_counts_every_byte_acknowledged() -> None:
    d = established(NEWRENO)
    d.conn.send(bytes(10 * MSS))
    d.flush()
    _ack(d, 10)  # one ACK for the whole window
    assert d.conn.cc.cwnd == 20 * MSS


# ------------------------------------------------------------------ fast retransmit
def test_rfc5681_3_2_fast_retransmit_on_the_third_duplicate_ack() -> None:
    d = established(NEWRENO)
    d.conn.send(bytes(20 * MSS))
    assert [_seg_no(s) for s in d.flush()] == list(range(10))  # IW10
    # RFC 3042 (limited transmit): the first and second duplicate ACKs each
    # release one new segment ("FlightSize ... less than or equal to ... cwnd
    # plus 2*SMSS").
    assert [_seg_no(s) for s in _ack(d, 0)] == [10]
    assert [_seg_no(s) for s in _ack(d, 0)] == [11]
    assert d.conn.recovery.mode is None and d.conn.total_retransmits == 0
    # "(2) ... ssthresh ... max (FlightSize / 2, 2*SMSS) ... (3) The lost segment
    # starting at SND.UNA MUST be retransmitted and cwnd set to ssthresh plus
    # 3*SMSS."
    out = _ack(d, 0)
    assert [_seg_no(s) for s in out][:1] == [0] and d.conn.total_retransmits == 1
    assert d.conn.cc.ssthresh == 12 * MSS // 2
    assert d.conn.cc.cwnd == 6 * MSS + 3 * MSS
    assert d.conn.timers[Timer.RETRANSMIT] > d.now  # well before the RTO
    assert _cc_events(d) == [("fast-recovery", "3 duplicate ACKs")]
    # "(4) For each additional duplicate ACK received (after the third), cwnd
    # MUST be incremented by SMSS."
    _ack(d, 0)
    assert d.conn.cc.cwnd == 10 * MSS
    # "(6) When the next ACK arrives that acknowledges previously
    # unacknowledged data, a TCP MUST set cwnd to ssthresh" (RFC 6582: full ACK).
    _ack(d, 12)
    assert d.conn.recovery.mode is None and d.conn.cc.cwnd <= d.conn.cc.ssthresh
    assert _cc_events(d)[-1][1] == "recovered"


def test_rfc3042_limited_transmit_can_be_turned_off() -> None:
    # Off: the first two duplicate ACKs release nothing; the third is still a
    # fast retransmit.
    d = established(NEWRENO.with_changes(limited_transmit=False))
    d.conn.send(bytes(20 * MSS))
    assert len(d.flush()) == 10
    assert _ack(d, 0) == [] and _ack(d, 0) == []
    assert [_seg_no(s) for s in _ack(d, 0)][:1] == [0] and d.conn.recovery.mode is not None


def test_rfc6582_3_2_fast_retransmit_when_the_ack_is_just_past_recover() -> None:
    # "recover" is "the highest sequence number transmitted" when recovery began:
    # duplicate ACKs at exactly the end of that data "cover more than recover"
    # and start a new fast retransmit (a segment sent during the recovery was
    # lost); with recover taken as one past it, they were ignored until the RTO.
    d = established(NEWRENO)
    d.conn.send(bytes(40 * MSS))
    d.flush()  # segments 0-9
    _ack(d, 0)
    _ack(d, 0)  # limited transmit: 10, 11
    _ack(d, 0)  # third duplicate: recovery, recover = end of segment 11
    assert d.conn.recovery.mode is not None
    assert d.conn.recovery.recover == ISS + 1 + 12 * MSS
    for _ in range(6):
        _ack(d, 0)  # inflation sends new segments past recover
    assert d.conn.snd_max > d.conn.recovery.recover
    _ack(d, 12)  # the full ACK: recovery ends
    assert d.conn.recovery.mode is None
    rtx_before = d.conn.total_retransmits
    out = []
    for _ in range(3):
        out += _ack(d, 12)  # segment 12, sent during the recovery, was lost
    assert d.conn.recovery.mode is not None
    assert d.conn.total_retransmits == rtx_before + 1
    assert any(_seg_no(s) == 12 for s in out)


def test_rfc5681_2_not_a_duplicate_when_the_window_changes_or_data_rides() -> None:
    d = established(NEWRENO)
    d.conn.send(bytes(10 * MSS))
    d.flush()
    _ack(d, 0, window=60000)  # window changed: not a duplicate
    d.receive(d.seg(ACK | PSH, P, ISS + 1, b"data", window=60000))  # carries data
    d.receive(d.seg(ACK, P + 4, ISS + 1, window=60000))  # a duplicate at last
    assert d.conn.recovery.dupacks == 1


def test_rfc6582_4_no_fast_retransmit_for_duplicates_from_before_a_timeout() -> None:
    d = established(TcpConfig(congestion_control="newreno", rto_min=0.2))
    d.conn.send(bytes(10 * MSS))
    d.flush()
    d.advance_to_deadline()  # RTO: recover = SND.MAX
    for _ in range(4):
        _ack(d, 0)
    assert d.conn.recovery.mode is None


def test_rfc5681_3_1_timeout_cwnd_to_one_segment() -> None:
    # "ssthresh = max (FlightSize / 2, 2*SMSS)" and "cwnd to no more than the
    # loss window, LW, which equals 1 full-sized segment".
    d = established(NEWRENO)
    d.conn.send(bytes(8 * MSS))
    d.flush()
    out = d.advance_to_deadline()
    assert brief(out) == [(ACK, ISS + 1, P)]
    assert (d.conn.cc.cwnd, d.conn.cc.ssthresh) == (MSS, 4 * MSS)
    assert _cc_events(d) == [("loss", "timeout")]
    # The first new ACK resumes slow start (and the trace shows it).
    _ack(d, 1)
    assert _cc_events(d) == [("slow-start", "new data acknowledged after the timeout")]


def test_rfc5681_3_1_lost_syn_means_an_initial_window_of_one_segment() -> None:
    # "If the SYN or SYN/ACK is lost, the initial window used by a sender after a
    # correctly transmitted SYN MUST be one segment".
    d = syn_sent(NEWRENO)
    d.advance_to_deadline()  # the SYN again
    d.receive(d.seg(SYN | ACK, PEER_ISS, ISS + 1, options=Driver.syn_options()))
    assert d.conn.state is State.ESTABLISHED and d.conn.cc.cwnd == MSS


def test_rfc5681_4_1_restart_after_idle() -> None:
    # "TCP SHOULD set cwnd to no more than RW before beginning transmission if the
    # TCP has not sent data in an interval exceeding the retransmission timeout."
    d = established(NEWRENO)
    d.conn.send(bytes(30 * MSS))
    d.flush()
    for i in range(1, 31):
        out = _ack(d, i)
    assert d.conn.cc.cwnd == 40 * MSS and d.conn.snd_una == d.conn.snd_max
    d.take_events()
    d.advance(d.conn.rtt.current() + 0.1)
    d.conn.send(bytes(100 * MSS))
    out = d.flush()
    assert len(out) == 10 and d.conn.cc.cwnd == 10 * MSS  # RW = min(IW, cwnd)
    assert _cc_events(d) == [("slow-start", "idle restart")]
    # Not after a short pause, nor when turned off.
    d2 = established(TcpConfig(congestion_control="newreno", slow_start_after_idle=False))
    d2.conn.send(bytes(30 * MSS))
    d2.flush()
    for i in range(1, 31):
        _ack(d2, i)
    d2.advance(10.0)
    d2.conn.send(bytes(100 * MSS))
    assert len(d2.flush()) == 40


# ------------------------------------------------------------------ the option
@pytest.mark.parametrize(("name", "cls"), [("newreno", NewReno), ("cubic", Cubic)])
def test_congestion_control_is_an_option(name: str, cls: type) -> None:
    d = established(TcpConfig(congestion_control=name))  # type: ignore[arg-type]
    assert type(d.conn.cc) is cls and d.conn.cc.name == name
    assert TcpConfig().congestion_control == "cubic"  # Linux's default
    with pytest.raises(ValueError, match="unknown congestion control"):
        make_cc("vegas", MSS, 10)


# ------------------------------------------------------------------ CUBIC
def test_rfc9438_4_6_multiplicative_decrease_by_beta_cubic() -> None:
    d = established(TcpConfig(congestion_control="cubic"))
    d.conn.send(bytes(20 * MSS))
    d.flush()
    for _ in range(3):
        _ack(d, 0)
    # "ssthresh = cwnd * beta_cubic" (0.7), "cwnd = max(ssthresh, 2)"; NewReno's
    # recovery then inflates by the three segments that left.
    assert d.conn.cc.ssthresh == int(10 * MSS * CUBIC_BETA)
    assert d.conn.cc.cwnd == d.conn.cc.ssthresh + 3 * MSS


def _cubic_after_loss(
    w_max_segments: int, rtt: float, duration: float = 12.0
) -> tuple[Cubic, list[tuple[float, float]]]:
    """A CUBIC window that lost at W_max, then ACKed a window per RTT."""
    from netemu.tcp.rtt import RttEstimator

    est = RttEstimator(1.0, 0.2, 120.0)
    est.sample(rtt)
    cc = Cubic(1000, 10, est)
    cc.cwnd = w_max_segments * 1000
    cc.on_congestion(cc.cwnd, 0.0)
    trace = []
    t = 0.0
    while t < duration:
        t += rtt
        window = cc.cwnd
        for _ in range(window // 1000):
            cc.on_ack(1000, t)
        trace.append((t, cc.cwnd / 1000))
    return cc, trace


def test_rfc9438_4_2_window_is_concave_then_convex_around_w_max() -> None:
    # "W_cubic(t) = C*(t-K)^3 + W_max", "K = cubic_root((W_max - cwnd_epoch)/C)":
    # with W_max = 1000 segments and a 100 ms RTT the cubic region governs.
    cc, trace = _cubic_after_loss(1000, 0.1)
    k = ((1000 - 700) / CUBIC_C) ** (1 / 3)
    assert cc.k == pytest.approx(k)  # about 9.09 s
    at = dict(trace)
    w = [at[min(at, key=lambda x: abs(x - t))] for t in (1.0, 4.0, 8.0, k, 11.5)]
    assert w[0] < w[1] < w[2] < 1000 * 1.01
    # Concave: it grows fast just after the loss and slowly near W_max.
    assert w[1] - w[0] > w[3] - w[2]
    assert w[3] == pytest.approx(1000, rel=0.02)  # plateau at W_max at t = K
    # Convex probing beyond it: C*(t-K)^3 above W_max.
    assert w[4] == pytest.approx(1000 + CUBIC_C * (11.5 - k) ** 3, abs=1.5)


def test_rfc9438_4_3_reno_friendly_region_on_short_round_trips() -> None:
    # With a 2 ms RTT the cubic curve hardly moves in a round trip; W_est, which
    # grows by alpha_cubic = 3(1-beta)/(1+beta) segments per RTT, takes over.
    _, trace = _cubic_after_loss(100, 0.002, duration=0.05)
    first_rtts = [w for _, w in trace[:20]]
    assert first_rtts[0] == pytest.approx(70, abs=1)
    growth = (first_rtts[19] - first_rtts[0]) / 19
    assert growth == pytest.approx(3 * (1 - CUBIC_BETA) / (1 + CUBIC_BETA), rel=0.15)


def test_rfc9438_4_7_fast_convergence() -> None:
    from netemu.tcp.rtt import RttEstimator

    cc = Cubic(1000, 10, RttEstimator(1.0, 0.2, 120.0))
    cc.cwnd = 100_000
    cc.on_congestion(cc.cwnd, 0.0)
    assert cc.w_max == 100
    cc.cwnd = 80_000  # a second loss below the last W_max: release bandwidth
    cc.on_congestion(cc.cwnd, 1.0)
    assert cc.w_max == pytest.approx(80 * (1 + CUBIC_BETA) / 2)


def test_rfc9438_4_8_timeout() -> None:
    cc = make_cc("cubic", 1000, 10)
    cc.cwnd = 50_000
    cc.on_timeout(50_000, 0.0)
    assert (cc.cwnd, cc.ssthresh) == (1000, 35_000)
