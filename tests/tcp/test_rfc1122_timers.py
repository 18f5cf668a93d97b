"""RFC 1122 host timers and send policy: delayed ACK (§4.2.3.2, RFC 5681 §4.2),
keepalive (§4.2.3.6), Nagle and TCP_NODELAY (§4.2.3.4, RFC 896); and the tail
loss probe (RFC 8985 §7), the other timer the options brought.

Our ISS is 1000, the peer's 5000 (netemu.testing.states).
"""

from __future__ import annotations

import pytest

from netemu.tcp import State, TcpConfig, TimedOut, Timer
from netemu.tcp.events import CongestionChanged
from netemu.testing import brief, established_pair
from netemu.testing.states import ISS, PEER_ISS, established, established_options
from netemu.wire.tcp import ACK, PSH, RST, SackOption

P = PEER_ISS + 1
FULL = 1460
NO_QUICKACK = TcpConfig(quickack_segments=0)


def _data(d, off: int, n: int = FULL) -> list:
    return d.receive(d.seg(ACK | PSH, P + off, d.conn.snd_max, b"d" * n))


# ------------------------------------------------------------------ delayed ACK
def test_rfc1122_4_2_3_2_ack_every_second_full_sized_segment() -> None:
    # "in a stream of full-sized segments there SHOULD be an ACK for at least
    # every second segment" (RFC 5681 §4.2 likewise): two segments, one ACK.
    d = established(NO_QUICKACK)
    assert _data(d, 0) == []
    assert Timer.DELAYED_ACK in d.conn.timers
    out = _data(d, FULL)
    assert brief(out) == [(ACK, ISS + 1, P + 2 * FULL)]
    assert Timer.DELAYED_ACK not in d.conn.timers
    acks = []
    for i in range(2, 12):
        acks += _data(d, i * FULL)
    assert [s.ack - P for s in acks] == [k * FULL for k in (4, 6, 8, 10, 12)]


def test_rfc5681_4_2_a_burst_processed_at_once_still_acks_every_second_segment() -> None:
    # An adapter may hand over several segments before asking for output (a
    # host draining its socket): each second full-sized segment is still
    # acknowledged, not the whole burst by one stretch ACK.
    d = established(NO_QUICKACK)
    for i in range(6):
        d.conn.receive(d.seg(ACK | PSH, P + i * FULL, d.conn.snd_max, b"d" * FULL), d.now)
    out = d.flush()
    assert [s.ack - P for s in out] == [2 * FULL, 4 * FULL, 6 * FULL]


def test_linux_second_segment_ack_waits_for_a_reader_that_lags() -> None:
    # Linux's __tcp_ack_snd_check sends the every-second-segment ACK only if the
    # window would not shrink ("tcp_recvmsg() will send ACK otherwise"), which
    # its window clamp makes the case until the buffer is half full: past that,
    # the ACK waits for read() (or the delayed-ACK timer).
    d = established(TcpConfig(quickack_segments=0, rcv_buf=8 * FULL))
    out = []
    for i in range(8):
        d.conn.receive(d.seg(ACK | PSH, P + i * FULL, d.conn.snd_max, b"d" * FULL), d.now)
    out = d.flush()
    assert [s.ack - P for s in out] == [2 * FULL, 4 * FULL]  # then the buffer is half full
    assert Timer.DELAYED_ACK in d.conn.timers
    assert len(d.conn.read()) == 8 * FULL
    assert [s.ack - P for s in d.flush()] == [8 * FULL]


def test_rfc1122_4_2_3_2_a_lone_segment_is_acked_when_the_timer_fires() -> None:
    # "the delay MUST be less than 0.5 seconds"; Linux waits 40 ms.
    d = established(NO_QUICKACK)
    _data(d, 0, 100)
    assert d.advance(0.039) == []
    out = d.advance(0.002)
    assert brief(out) == [(ACK, ISS + 1, P + 100)]
    assert d.now == pytest.approx(0.041)


@pytest.mark.parametrize(
    ("option", "seconds"), [(True, 0.04), (0.2, 0.2), (2.0, 0.5), (False, 0.0), (0, 0.0)]
)
def test_rfc1122_4_2_3_2_delay_option_capped_at_half_a_second(
    option: object, seconds: float
) -> None:
    assert TcpConfig(delayed_ack=option).delayed_ack_time == seconds  # type: ignore[arg-type]


def test_rfc1122_4_2_3_2_delayed_ack_off_acks_every_segment() -> None:
    d = established(TcpConfig(delayed_ack=False, quickack_segments=0))
    for i in range(4):
        assert brief(_data(d, i * 100, 100)) == [(ACK, ISS + 1, P + (i + 1) * 100)]


def test_linux_quickack_at_connection_start_then_delayed() -> None:
    # Like Linux, the first segments are ACKed at once (quick ACK mode), so that
    # the peer's slow start is not held back by our timer.
    d = established(TcpConfig(quickack_segments=4))
    acks = [len(_data(d, i * 100, 100)) for i in range(8)]
    assert acks == [1, 1, 1, 1, 0, 0, 0, 0]
    # A pause longer than the RTO: quick ACKs again.
    d.advance(2.0)
    assert len(_data(d, 800, 100)) == 1


def test_rfc5681_4_2_out_of_order_and_hole_filling_segments_acked_at_once() -> None:
    # "A TCP receiver SHOULD send an immediate duplicate ACK when an out-of-order
    # segment arrives" and "an immediate ACK when the incoming segment fills in
    # all or part of a gap in the sequence space".
    d = established(NO_QUICKACK)
    assert brief(_data(d, FULL)) == [(ACK, ISS + 1, P)]
    assert brief(_data(d, 0)) == [(ACK, ISS + 1, P + 2 * FULL)]


def test_rfc1122_4_2_3_2_delayed_ack_rides_on_data() -> None:
    d = established(NO_QUICKACK)
    _data(d, 0, 100)
    d.conn.send(b"reply")
    out = d.flush()
    assert brief(out) == [(ACK | PSH, ISS + 1, P + 100)]
    assert Timer.DELAYED_ACK not in d.conn.timers
    assert d.advance(0.1) == []  # no second, bare ACK later


def test_rfc1122_4_2_3_2_delayed_ack_coalescing_on_the_wire() -> None:
    # 64 KiB in 1 KiB writes, NODELAY: without delayed ACK one ACK per segment,
    # with it one per two (and quick ACKs at the start).
    counts = {}
    for delayed in (False, True):
        cfg = TcpConfig(delayed_ack=delayed, nagle=False, quickack_segments=0)
        net = established_pair(cfg, cfg)
        net.ba.log = []
        for _ in range(64):
            net.a.send(b"k" * 1024)
            net.advance(0.0005)  # one segment at a time on the wire
        net.advance(0.1)
        assert net.b.read() == b"k" * 65536  # type: ignore[union-attr]
        counts[delayed] = len(net.ba.log)
    assert counts[False] == 64
    assert counts[True] <= 33


# ------------------------------------------------------------------ keepalive
KA = TcpConfig(keepalive=True, keepalive_idle=10.0, keepalive_interval=2.0, keepalive_count=3)


def test_rfc1122_4_2_3_6_keepalive_off_by_default_with_linux_values() -> None:
    cfg = TcpConfig()
    assert (cfg.keepalive, cfg.keepalive_idle, cfg.keepalive_interval, cfg.keepalive_count) == (
        False,
        7200.0,
        75.0,
        9,
    )
    d = established()
    assert Timer.KEEPALIVE not in d.conn.timers
    assert d.advance(10_000.0) == []


def test_rfc1122_4_2_3_6_keepalive_probes_then_timeout() -> None:
    # "Keep-alive packets MUST only be sent when no data or acknowledgement packets
    # have been received for the connection within an interval." A probe is
    # <SEQ=SND.NXT-1><ACK=RCV.NXT>, no data; unanswered after keepalive_count
    # probes, the connection is dead: TimedOut, a RST (as Linux), CLOSED.
    d = established(KA)
    assert d.conn.timers[Timer.KEEPALIVE] == pytest.approx(10.0)
    out = d.advance(9.9)
    assert out == []
    probes = []
    for _ in range(3):
        out = d.advance_to_deadline()
        assert brief(out) == [(ACK, ISS, P)] and out[0].payload == b""
        probes.append(round(d.now, 6))
    assert probes == [10.0, 12.0, 14.0]
    assert d.conn.state is State.ESTABLISHED
    out = d.advance_to_deadline()
    assert d.now == pytest.approx(16.0)
    assert [s.flags & RST for s in out] == [RST]
    assert d.conn.state is State.CLOSED
    ev = d.take_events()
    assert any(isinstance(e, TimedOut) and "keepalive" in e.what for e in ev)


def test_rfc1122_4_2_3_6_answered_probe_keeps_the_connection() -> None:
    d = established(KA)
    d.advance_to_deadline()  # probe 1 at 10 s
    d.advance(0.5)
    d.receive(d.seg(ACK, P, ISS + 1))  # the peer's answer
    assert d.conn.timers[Timer.KEEPALIVE] == pytest.approx(12.0)  # the running interval
    out = d.advance_to_deadline()
    assert out == [] and d.conn.timers[Timer.KEEPALIVE] == pytest.approx(20.5)
    for _ in range(4):
        d.advance_to_deadline()
        d.receive(d.seg(ACK, P, ISS + 1))
    assert d.conn.state is State.ESTABLISHED


def test_rfc1122_4_2_3_6_traffic_postpones_the_first_probe() -> None:
    d = established(KA)
    d.advance(8.0)
    _data(d, 0, 10)
    d.advance(0.1)
    assert d.advance(9.0) == []
    out = d.advance(1.0)
    assert brief(out) == [(ACK, ISS, P + 10)] and d.now == pytest.approx(18.1)


def test_rfc1122_4_2_3_6_no_probe_while_data_is_outstanding() -> None:
    # Outstanding data has its retransmission timer watching the peer.
    d = established(
        TcpConfig(
            keepalive=True,
            keepalive_idle=0.5,
            keepalive_interval=0.5,
            keepalive_count=1,
            retries2=2,
        )
    )
    d.conn.send(b"x")
    out = d.advance(3.0)
    assert all(s.seq == ISS + 1 and s.payload == b"x" for s in out if not s.flags & RST)


def test_rfc1122_4_2_3_6_keepalive_on_the_wire_is_answered() -> None:
    cfg = TcpConfig(keepalive=True, keepalive_idle=5.0, keepalive_interval=1.0)
    net = established_pair(cfg, TcpConfig())
    net.ab.log = []
    net.advance(60.0)
    probes = [(t, s) for t, s in net.ab.log]
    assert len(probes) == 11 and probes[0][0] == pytest.approx(5.0, abs=0.01)
    assert net.a.state is State.ESTABLISHED


# ------------------------------------------------------------------ Nagle
def test_rfc896_nagle_holds_small_segments_until_the_ack_nodelay_does_not() -> None:
    # RFC 1122 §4.2.3.4: "a TCP SHOULD implement the Nagle Algorithm ... to
    # coalesce short segments. However, there MUST be a way for an application
    # to disable the Nagle algorithm on an individual connection" (TCP_NODELAY).
    for nagle, want in ((True, [b"a", b"bc"]), (False, [b"a", b"b", b"c"])):
        d = established(TcpConfig(nagle=nagle))
        out = []
        for c in (b"a", b"b", b"c"):
            d.conn.send(c)
            out += d.flush()
        out += d.receive(d.seg(ACK, P, ISS + 2))
        assert [s.payload for s in out] == want


# ------------------------------------------------------------------ tail loss probe
def test_rfc8985_7_tail_loss_probe_instead_of_a_timeout() -> None:
    # The ACK of a whole flight is lost: after PTO = 2*SRTT (plus 2 ms, as
    # Linux), the last segment goes again (no new data waiting) and draws the ACK;
    # the RTO (200 ms here) never fires.
    d = established_options(rtt=0.010)
    d.conn.send(bytes(5 * 1448))
    d.flush()
    assert d.conn.timers[Timer.LOSS_PROBE] == pytest.approx(d.now + 0.022)
    out = d.advance_to_deadline()
    assert [(s.seq - ISS - 1) // 1448 for s in out] == [4]
    assert Timer.LOSS_PROBE not in d.conn.timers
    # The peer had it all: its ACK carries a D-SACK for the probe (RFC 2883): the
    # probe repaired nothing, and cwnd stays.
    cwnd = d.conn.cc.cwnd
    d.receive(
        d.seg(
            ACK,
            P,
            ISS + 1 + 5 * 1448,
            options=(SackOption(((ISS + 1 + 4 * 1448, ISS + 1 + 5 * 1448),)),),
        )
    )
    assert d.conn.cc.cwnd >= cwnd and d.conn.total_retransmits == 1
    assert not [e for e in d.take_events() if isinstance(e, CongestionChanged)]


def test_rfc8985_7_3_probe_with_new_data_and_repairing_a_loss() -> None:
    d = established_options(TcpConfig(snd_buf=100_000), rtt=0.010, window=5 * 1448)
    d.conn.send(bytes(8 * 1448))
    assert len(d.flush()) == 5  # the peer's window: 5 segments
    d.receive(d.seg(ACK, P, ISS + 1, window=8 * 1448))  # the window opens, nothing acked
    d.take_events()
    out = d.advance_to_deadline()
    assert out and all(s.seq >= ISS + 1 + 5 * 1448 for s in out)  # new data
    # A retransmission probe that repairs a loss (no D-SACK): cwnd reduced once.
    d2 = established_options(rtt=0.010)
    d2.conn.send(bytes(3 * 1448))
    d2.flush()
    out = d2.advance_to_deadline()
    d2.receive(d2.seg(ACK, P, ISS + 1 + 3 * 1448))
    ev = [e for e in d2.take_events() if isinstance(e, CongestionChanged)]
    assert [e.cause for e in ev] == ["loss probe repaired a tail loss"]


def test_rfc8985_7_2_one_segment_in_flight_waits_for_a_delayed_ack() -> None:
    # "If FlightSize is one segment: PTO += TLP.max_ack_delay" (200 ms, 220 ms in
    # all), later than the RTO (SRTT + 200 ms): "If Now() + PTO >
    # TCP_RTO_expiration(): PTO = TCP_RTO_expiration() - Now()". The probe goes in
    # the RTO's place: the segment is sent again, cwnd stays, the RTO is re-armed.
    d = established_options(rtt=0.010)
    d.conn.send(b"x")
    d.flush()
    rto_at = d.conn.timers[Timer.RETRANSMIT]
    assert d.conn.timers[Timer.LOSS_PROBE] == rto_at < d.now + 0.220
    cwnd = d.conn.cc.cwnd
    out = d.advance_to_deadline()
    assert [s.payload for s in out] == [b"x"] and d.now == rto_at
    assert d.conn.cc.cwnd == cwnd and d.conn.retransmits == 0
    assert d.conn.timers[Timer.RETRANSMIT] > rto_at and Timer.LOSS_PROBE not in d.conn.timers
    # With a later RTO the full PTO applies.
    d2 = established_options(TcpConfig(rto_min=1.0), rtt=0.010)
    d2.conn.send(b"x")
    d2.flush()
    assert d2.conn.timers[Timer.LOSS_PROBE] == pytest.approx(d2.now + 0.220)


def test_rfc8985_7_no_probe_without_sack() -> None:
    d = established()  # no SACK
    d.conn.send(bytes(3 * 1460))
    d.flush()
    assert Timer.LOSS_PROBE not in d.conn.timers
    d2 = established_options(TcpConfig(tail_loss_probe=False))
    d2.conn.send(bytes(3 * 1448))
    d2.flush()
    assert Timer.LOSS_PROBE not in d2.conn.timers
