"""SACK: the receiver's blocks (RFC 2018 §4, D-SACK RFC 2883), the sender's
scoreboard and loss recovery (RFC 6675), against NewReno (RFC 6582).

Hand-driven connections come from netemu.testing.states.established_options
(the peer offered SACK and timestamps); pairs run on the in-memory network.
"""

from __future__ import annotations

import pytest

from netemu.tcp import TcpConfig
from netemu.tcp.events import CongestionChanged
from netemu.tcp.recovery import RecoveryMode
from netemu.tcp.sack import Scoreboard
from netemu.testing import MemLink, brief, established_pair
from netemu.testing.states import ISS, PEER_ISS, established, established_options
from netemu.wire.tcp import ACK, PSH, SackOption

P = PEER_ISS + 1  # the peer's first data byte


def _blocks(segs: list) -> list[list[tuple[int, int]]]:
    """SACK blocks of each segment, relative to the peer's first data byte."""
    return [[(left - P, right - P) for left, right in s.sack_blocks] for s in segs]


def _peer_data(d, off: int, n: int = 100) -> list:
    return d.receive(d.seg(ACK | PSH, P + off, d.conn.snd_max, bytes([off % 251]) * n))


# ------------------------------------------------------------------ the receiver
def test_rfc2018_4_first_block_is_the_latest_arrival_then_the_recent_ones() -> None:
    # "The first SACK block ... MUST specify the contiguous block of data containing
    # the segment which triggered this ACK"; the others repeat "the most recently
    # reported SACK blocks". With timestamps, 3 blocks fit in the 40 bytes.
    d = established_options()
    assert _blocks(_peer_data(d, 100)) == [[(100, 200)]]
    assert _blocks(_peer_data(d, 300)) == [[(300, 400), (100, 200)]]
    assert _blocks(_peer_data(d, 500)) == [[(500, 600), (300, 400), (100, 200)]]
    assert _blocks(_peer_data(d, 700)) == [[(700, 800), (500, 600), (300, 400)]]
    # An arrival that joins two blocks reports the joined block first.
    assert _blocks(_peer_data(d, 200)) == [[(100, 400), (700, 800), (500, 600)]]
    # One that advances the ACK: "unless that segment advanced the Acknowledgment
    # Number field": the remaining blocks, most recent first.
    out = _peer_data(d, 0)
    assert brief(out) == [(ACK, ISS + 1, P + 400)]
    assert _blocks(out) == [[(700, 800), (500, 600)]]
    # Layout: NOP NOP TSopt NOP NOP SACK (Linux's).
    assert [type(o).__name__ for o in out[0].options] == [
        "NopOption",
        "NopOption",
        "TimestampOption",
        "NopOption",
        "NopOption",
        "SackOption",
    ]


def test_rfc2018_3_four_blocks_without_timestamps() -> None:
    d = established_options(ts=False)
    for off in (100, 300, 500, 700, 900):
        out = _peer_data(d, off)
    assert _blocks(out) == [[(900, 1000), (700, 800), (500, 600), (300, 400)]]


def test_rfc2018_no_sack_blocks_when_not_negotiated() -> None:
    d = established()  # the peer's SYN,ACK had no SACK-permitted
    out = _peer_data(d, 100)
    assert brief(out) == [(ACK, ISS + 1, P)] and out[0].sack_blocks == ()
    d2 = established(TcpConfig(sack=False))
    assert not d2.conn.sack_ok


def test_rfc2883_dsack_reports_a_duplicate_segment() -> None:
    # "the first block in the SACK option MUST specify the contiguous block of
    # data of the received packet that triggered the D-SACK" (below the ACK).
    d = established_options()
    _peer_data(d, 0)
    out = _peer_data(d, 0)  # again
    assert brief(out) == [(ACK, ISS + 1, P + 100)]
    assert _blocks(out) == [[(0, 100)]]
    # With out-of-order data held, the D-SACK block comes first, then the SACK blocks.
    _peer_data(d, 300)
    out = _peer_data(d, 0)
    assert _blocks(out) == [[(0, 100), (300, 400)]]


# ------------------------------------------------------------------ the scoreboard
def test_rfc6675_3_update_merges_blocks_and_ignores_bad_ones() -> None:
    sb = Scoreboard()
    sb.una = 1000
    assert sb.update(((2000, 3000), (3000, 3500)), snd_max=10_000) == 1500
    assert sb.ranges == [[1000, 2500]]
    assert sb.update(((2500, 2800),), snd_max=10_000) == 0  # nothing new
    assert (
        sb.update(((500, 900), (9000, 11_000), (5, 3)), snd_max=10_000) == 0
    )  # below, beyond, bad
    assert sb.update(((1500, 2200),), snd_max=10_000) == 500
    assert sb.ranges == [[500, 2500]]
    sb.advance(2000)
    assert sb.ranges == [[0, 1500]] and sb.una == 2000


def test_rfc6675_4_is_lost_pipe_and_next_seg() -> None:
    # Ten 100-byte segments sent; 0-99, 300-399 and 600-699 lost; the rest SACKed.
    sb = Scoreboard(dupthresh=3)
    sb.update(((100, 300), (400, 600), (700, 1000)), snd_max=1000)
    mss = 100
    # IsLost: "DupThresh discontiguous SACKed sequences ... above" or "more than
    # (DupThresh - 1) * SMSS bytes" SACKed above.
    assert sb.is_lost(0, mss) and sb.is_lost(300, mss) and sb.is_lost(600, mss)
    assert sb.lost_edge(mss) == 700
    # SetPipe: no octet is both unSACKed and not lost; nothing retransmitted yet.
    assert sb.pipe(1000, 0, mss) == 0
    # NextSeg rule (1): the first lost hole above HighRxt.
    assert sb.next_seg(0, mss, lost_only=True) == (0, 100)
    assert sb.next_seg(100, mss, lost_only=True) == (300, 100)
    assert sb.next_seg(400, mss, lost_only=True) == (600, 100)
    assert sb.next_seg(700, mss, lost_only=True) is None
    # After retransmitting the first hole, it counts in the pipe.
    assert sb.pipe(1000, 100, mss) == 100
    # Only two segments SACKed above 600-699: not lost by the byte rule.
    sb2 = Scoreboard()
    sb2.update(((700, 900),), snd_max=1000)
    assert not sb2.is_lost(0, mss)
    assert sb2.pipe(1000, 0, mss) == 800  # 0-699 and 900-999 may still be in flight
    assert sb2.next_seg(0, mss, lost_only=False) == (0, 100)  # rule (3)


# ------------------------------------------------------------------ the sender
def _sender(config: TcpConfig | None = None, segments: int = 10):
    """Established with SACK (no timestamps: 1460-byte segments), ``segments``
    full segments sent (IW10 allows ten)."""
    d = established_options(config or TcpConfig(congestion_control="newreno"), ts=False)
    d.conn.send(bytes(1460 * segments))
    out = d.flush()
    assert len(out) == min(segments, 10)
    return d


def _sack_ack(d, *blocks: tuple[int, int]):
    """A duplicate ACK (of ISS+1) SACKing segment numbers [i, j)."""
    sack = tuple((ISS + 1 + i * 1460, ISS + 1 + j * 1460) for i, j in blocks)
    return d.receive(d.seg(ACK, P, ISS + 1, options=(SackOption(sack),)))


def test_rfc6675_5_is_lost_starts_recovery_before_three_dupacks() -> None:
    # "(2) If DupAcks < DupThresh but IsLost (HighACK + 1) returns true --
    # indicating at least three segments have arrived above the current
    # cumulative acknowledgment point, which is taken to indicate loss -- go to
    # step (4)": one ACK SACKing segments 1-3 (a stretch ACK) is enough.
    d = _sender()
    out = _sack_ack(d, (1, 4))
    assert d.conn.recovery.mode is RecoveryMode.SACK and d.conn.recovery.dupacks == 1
    assert [(s.seq - ISS - 1) // 1460 for s in out] == [0]  # the first hole, at once
    ev = [e for e in d.take_events() if isinstance(e, CongestionChanged)]
    assert ev and ev[-1].phase == "fast-recovery"


@pytest.mark.parametrize("limited", [True, False])
def test_rfc6675_5_step_3_limited_transmit_with_sack(limited: bool) -> None:
    # "(3) ... the TCP MAY transmit previously unsent data segments as per
    # Limited Transmit": SACKed data has left the pipe, so each of the first
    # two duplicate ACKs makes room for one new segment; with limited transmit
    # off, nothing new goes before recovery.
    d = _sender(TcpConfig(congestion_control="newreno", limited_transmit=limited), 20)
    out = _sack_ack(d, (1, 2)) + _sack_ack(d, (1, 3))
    assert [(s.seq - ISS - 1) // 1460 for s in out] == ([10, 11] if limited else [])
    assert d.conn.recovery.mode is None
    out = _sack_ack(d, (1, 4))
    assert d.conn.recovery.mode is RecoveryMode.SACK and (out[0].seq - ISS - 1) // 1460 == 0


def test_rfc6675_5_retransmits_every_hole_then_ends_on_recovery_point() -> None:
    d = _sender()
    # Segments 0, 3 and 6 lost; the others arrive, one SACK per arrival (the
    # receiver's blocks, newest first).
    out: list = []
    for blocks in (
        [(1, 2)],
        [(1, 3)],
        [(4, 5), (1, 3)],
        [(4, 6), (1, 3)],
        [(7, 8), (4, 6), (1, 3)],
        [(7, 9), (4, 6), (1, 3)],
        [(7, 10), (4, 6), (1, 3)],
    ):
        out += _sack_ack(d, *blocks)
    assert d.conn.recovery.mode is RecoveryMode.SACK
    rtx = sorted({(s.seq - ISS - 1) // 1460 for s in out})
    assert rtx == [0, 3, 6]  # each hole once, before any timeout
    assert d.conn.total_retransmits == 3
    # The retransmissions arrive: the cumulative ACK passes RecoveryPoint.
    d.receive(d.seg(ACK, P, ISS + 1 + 10 * 1460))
    assert d.conn.recovery.mode is None
    assert d.conn.cc.cwnd == d.conn.cc.ssthresh == 5 * 1460  # NewReno: FlightSize / 2


def _three_losses(sack: bool) -> tuple[float, int, int]:
    """20 segments in flight on a 10 ms + 10 ms path; the 4th, 8th and 12th
    lost once. Returns (time from the first duplicate ACK to the recovery of
    all, segments retransmitted, retransmission timeouts)."""
    lost = {ISS + 1 + i * 1460 for i in (3, 7, 11)}

    def drop(seg) -> bool:
        if seg.seq in lost and seg.payload:
            lost.discard(seg.seq)
            return True
        return False

    cfg = TcpConfig(
        sack=sack,
        timestamps=False,
        congestion_control="newreno",
        initial_cwnd_segments=20,
        delayed_ack=False,
    )
    net = established_pair(
        cfg,
        cfg,
        ab=MemLink(delay=0.010, drop=drop),
        ba=MemLink(src_ip="198.18.0.2", dst_ip="198.18.0.1", delay=0.010),
    )
    a, b = net.a, net.b
    a.send(bytes(20 * 1460))
    start = net.now
    first_dup = None
    timeouts = 0
    while a.snd_una != a.snd_max or a.snd_max == a.iss + 1:
        net.advance(0.001)
        timeouts += sum(
            1 for e in a.events() if isinstance(e, CongestionChanged) and e.phase == "loss"
        )
        if first_dup is None and a.recovery.dupacks:
            first_dup = net.now
        assert net.now - start < 2.0
    assert b.read() == bytes(20 * 1460)  # type: ignore[union-attr]
    return net.now - first_dup, a.total_retransmits, timeouts  # type: ignore[operator]


def test_rfc6675_three_losses_in_a_window_recovered_in_one_rtt_newreno_needs_three() -> None:
    rtt = 0.020
    with_sack, rtx_sack, rto_sack = _three_losses(sack=True)
    without, rtx_nr, rto_nr = _three_losses(sack=False)
    # SACK: the three holes go out together once loss is detected; all is
    # acknowledged about one round trip later.
    assert with_sack == pytest.approx(rtt, abs=0.006)
    # NewReno (RFC 6582): one hole per round trip, each revealed by a partial ACK.
    assert without == pytest.approx(3 * rtt, abs=0.006)
    assert rtx_sack == rtx_nr == 3 and rto_sack == rto_nr == 0


def test_rfc6675_5_1_after_a_timeout_sacked_data_is_not_sent_again() -> None:
    d = _sender(TcpConfig(congestion_control="newreno", tail_loss_probe=False))
    _sack_ack(d, (1, 2))
    _sack_ack(d, (1, 3))  # two duplicate ACKs, two segments SACKed: not yet lost
    assert d.conn.recovery.mode is None
    out = d.advance_to_deadline()  # the RTO
    assert brief(out) == [(ACK, ISS + 1, P)]  # the head, one segment (cwnd = 1 SMSS)
    out = d.receive(
        d.seg(
            ACK, P, ISS + 1 + 1460, options=(SackOption(((ISS + 1 + 1460, ISS + 1 + 3 * 1460),)),)
        )
    )
    # Slow start from one segment: two go, and 1-2 (SACKed) are skipped.
    assert [(s.seq - ISS - 1) // 1460 for s in out] == [3, 4]


def test_rfc6675_lost_retransmission_is_sent_again_before_the_rto() -> None:
    d = _sender(segments=20)
    out = _sack_ack(d, (1, 4))
    assert [(s.seq - ISS - 1) // 1460 for s in out] == [0]
    # The retransmission of segment 0 is lost; the rest keeps arriving, and new
    # data (10, 11, ...) goes out as the pipe drains. Once more than two
    # segments sent after the retransmission are SACKed, segment 0 goes again.
    for j in range(5, 15):
        out += _sack_ack(d, (1, j))
    sent = [(s.seq - ISS - 1) // 1460 for s in out]
    assert sent.count(0) == 2 and sent.index(0, 1) > sent.index(12), sent
    assert d.conn.recovery.mode is RecoveryMode.SACK and d.conn.retransmits == 0  # no timeout


def test_rfc6582_newreno_without_sack_retransmits_on_partial_acks() -> None:
    d = established(TcpConfig(congestion_control="newreno"))
    d.conn.send(bytes(1460 * 10))
    d.flush()
    for _ in range(3):
        out = d.receive(d.seg(ACK, P, ISS + 1))
    assert brief(out)[0] == (ACK, ISS + 1, P) and d.conn.recovery.mode is RecoveryMode.NEWRENO
    # A partial ACK: the next hole goes at once (RFC 6582 §3.2 step 3).
    out = d.receive(d.seg(ACK, P, ISS + 1 + 3 * 1460))
    assert out[0].seq == ISS + 1 + 3 * 1460 and d.conn.recovery.mode is RecoveryMode.NEWRENO
    d.receive(d.seg(ACK, P, ISS + 1 + 10 * 1460))  # the full ACK
    assert d.conn.recovery.mode is None
