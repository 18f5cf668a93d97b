"""Hostile segments into every TCP state (issue 17): the rules the fuzz found
broken, one test each, named after the rule."""

from __future__ import annotations

from netemu.tcp import Closed, State, StateChanged, TcpConfig
from netemu.testing import Driver
from netemu.testing.states import (
    ISS,
    PEER_ISS,
    established,
    established_options,
    syn_received,
    syn_sent,
)
from netemu.wire.seq import MASK, seq_le
from netemu.wire.tcp import ACK, FIN, NOP, PSH, RST, SYN, SackOption, TimestampOption


# ------------------------------------------------------------------ what the fuzz found
def test_rfc9293_3_10_4_close_in_closed_state_reports_nothing() -> None:
    # RFC 9293 §3.10.4, CLOSE: "CLOSED STATE (i.e., TCB does not exist) ... return
    # "error: connection does not exist"". A connection reset (or never opened)
    # that is closed again sends nothing and reports no second Closed (it did).
    d = established()
    d.receive(d.seg(RST | ACK, PEER_ISS + 1, 1001))
    assert d.conn.state is State.CLOSED
    assert sum(isinstance(e, Closed) for e in d.take_events()) == 1
    for call in (d.conn.close, d.conn.shutdown, d.conn.abort):
        call()
        assert d.flush() == []
        assert d.take_events() == []
    fresh = Driver.client()
    fresh.conn.close()
    fresh.conn.shutdown()
    assert fresh.flush() == [] and fresh.take_events() == []


def test_rfc9293_3_10_7_4_syn_text_trimmed_to_the_receive_window() -> None:
    # Text on a SYN is "queued for processing later" (§3.10.7.2, §3.10.7.3), and the
    # seventh step keeps only what lies within RCV.WND: here the 1000 bytes the
    # SYN,ACK offered, of a 3000-byte SYN (all 3000 were delivered to a 1000-byte
    # buffer). Passive open, then simultaneous open.
    # The peer's ACK (SEQ past its 3000 bytes) lies beyond the window; it sends the
    # bytes again, as the SYN,ACK acknowledged none of them.
    cfg = TcpConfig(rcv_buf=1000, window_scale=None)
    d = syn_received(cfg, syn_payload=bytes(3000))
    assert d.sent[-1].window == 1000
    d.receive(d.seg(ACK | PSH, PEER_ISS + 1, ISS + 1, bytes(3000)))
    assert d.conn.state is State.ESTABLISHED
    assert d.conn.readable == 1000 and d.conn.rcv_nxt == PEER_ISS + 1001
    assert d.sent[-1].ack == PEER_ISS + 1001 and d.sent[-1].window == 0
    d = syn_sent(cfg)
    out = d.receive(d.seg(SYN, PEER_ISS, 0, bytes(3000), options=Driver.syn_options()))
    assert d.conn.state is State.SYN_RECEIVED and out[0].window == 1000
    d.receive(d.seg(ACK | PSH, PEER_ISS + 1, ISS + 1, bytes(3000)))
    assert d.conn.state is State.ESTABLISHED
    assert d.conn.readable == 1000 and d.conn.rcv_nxt == PEER_ISS + 1001


def test_rfc9293_3_10_5_abort_deletes_the_tcb_and_its_timers() -> None:
    # ABORT: "Send a reset segment ... delete the TCB, enter CLOSED state". With
    # data in flight, sending the RST armed the retransmission timer again in
    # CLOSED, which later reported a TimedOut and a second Closed.
    d = established()
    d.conn.send(b"x" * 100)
    d.flush()
    d.take_events()
    d.conn.abort()
    assert [s.flags for s in d.flush()] == [RST | ACK]
    assert d.conn.state is State.CLOSED and d.conn.next_deadline() is None
    assert d.advance(1000.0) == []
    assert [type(e) for e in d.take_events()] == [StateChanged, Closed]


def test_rfc1122_4_2_2_16_shrunk_window_no_new_data_on_timeout() -> None:
    # "If this happens [the window shrinks], the sender SHOULD NOT send new data,
    # but SHOULD retransmit normally the old unacknowledged data between SND.UNA
    # and SND.UNA+SND.WND." The timeout's probe into the closed window is the head
    # as it went out (100 bytes), not the head plus new bytes up to an MSS.
    d = established()
    d.conn.send(b"a" * 100)
    assert [len(s.payload) for s in d.flush()] == [100]
    d.conn.send(b"b" * 1000)  # held by Nagle: 100 bytes unacknowledged
    assert d.flush() == []
    assert d.receive(d.seg(ACK, PEER_ISS + 1, ISS + 1, window=0)) == []
    out = d.advance_to_deadline()
    assert [(s.seq, s.payload) for s in out] == [(ISS + 1, b"a" * 100)]


def test_rfc9293_3_10_7_4_fin_ahead_of_a_hole_is_not_received_until_reached() -> None:
    # Eighth step: a FIN is processed when it is next in sequence ("advance RCV.NXT
    # over the FIN"); one beyond a hole is only held. A reset then does not make
    # the stream look ended (at_eof said True), and data running past the held FIN
    # means it was not the end: it is forgotten, and the real FIN counts.
    d = established()
    d.receive(d.seg(FIN | ACK, PEER_ISS + 101, ISS + 1))  # bytes 5001..5100 missing
    d.receive(d.seg(RST | ACK, PEER_ISS + 1, ISS + 1))
    assert d.conn.state is State.CLOSED and not d.conn.at_eof
    d = established()
    d.receive(d.seg(FIN | ACK, PEER_ISS + 101, ISS + 1))
    d.receive(d.seg(ACK, PEER_ISS + 1, ISS + 1, b"x" * 200))
    assert d.conn.state is State.ESTABLISHED and d.conn.rcv_nxt == PEER_ISS + 201
    assert d.conn.fin_seq_received is None
    d.receive(d.seg(RST | ACK, PEER_ISS + 201, ISS + 1))
    assert d.conn.state is State.CLOSED and not d.conn.at_eof
    d = established()
    d.receive(d.seg(FIN | ACK, PEER_ISS + 101, ISS + 1))
    d.receive(d.seg(ACK, PEER_ISS + 1, ISS + 1, b"x" * 200))
    d.receive(d.seg(FIN | ACK, PEER_ISS + 201, ISS + 1))
    assert d.conn.state is State.CLOSE_WAIT and d.conn.rcv_nxt == PEER_ISS + 202


def test_rfc9293_3_8_6_sacked_data_still_fills_the_peer_window() -> None:
    # The peer may take data up to SND.UNA + SND.WND. SACKed bytes no longer count
    # against cwnd (RFC 6675 pipe), but they sit in the peer's buffer, inside that
    # window: new data past its edge went out all the same (1540 bytes, here).
    d = established_options(ts=False, sack=True, window=3000)
    d.conn.send(b"x" * 6000)
    assert [(s.seq, len(s.payload)) for s in d.flush()] == [(ISS + 1, 1460), (ISS + 1461, 1460)]
    sack = (NOP, NOP, SackOption(((ISS + 1461, ISS + 2921),)))
    out = d.receive(d.seg(ACK, PEER_ISS + 1, ISS + 1, window=3000, options=sack))
    assert all(seq_le((s.seq + len(s.payload)) & MASK, ISS + 1 + 3000) for s in out)


def test_rfc7323_5_3_paws_reads_the_same_tsopt_on_the_fast_path() -> None:
    # R1: a segment whose TSval is older than TS.Recent is dropped (and ACKed).
    # With two TSopts, the general path reads the first; header prediction read the
    # last, and took in-order data PAWS drops everywhere else.
    d = established_options(ts=True, sack=False)
    d.advance(0.1)
    recent = d.conn.ts_recent
    new = TimestampOption(recent + 100, 0)
    seg = d.seg(ACK | PSH, PEER_ISS + 1, ISS + 1, b"data", ts=(recent - 5, 0),
                options=(NOP, NOP, new))
    assert d.conn.ts_ok and seg.timestamp == TimestampOption(recent - 5, 0)
    out = d.receive(seg)
    assert d.conn.readable == 0 and d.conn.rcv_nxt == PEER_ISS + 1
    assert [(s.flags, s.ack) for s in out] == [(ACK, PEER_ISS + 1)]
