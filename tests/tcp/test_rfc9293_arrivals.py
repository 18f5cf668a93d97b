"""Segment arrival rules (RFC 9293 §3.10.7) and their RFC 5961 hardening.

Ready-made states from netemu.testing.states: our ISS 1000, the peer's 5000.
The peer's SYN had no window scale, so RCV.WND is the plain 65535.
"""

from __future__ import annotations

import pytest

from netemu.tcp import (
    Connection,
    ConnectionReset,
    Listener,
    State,
    TcpConfig,
    reset_for,
)
from netemu.testing import Driver, brief
from netemu.testing.states import (
    ISS,
    PEER_ISS,
    RCV_NXT,
    SND_MAX,
    SND_UNA,
    SYNCHRONIZED,
    established,
    established_options,
    in_state,
    syn_received,
    syn_sent,
)
from netemu.wire.tcp import (
    ACK,
    FIN,
    NOP,
    PSH,
    RST,
    SYN,
    MssOption,
    TcpSegment,
    WindowScaleOption,
)

S = State
RST_STATES = [S.SYN_RECEIVED, *SYNCHRONIZED]
# States in which a RST reports "connection reset" to the user (§3.10.7.4, second).
RESET_REPORTED = {S.ESTABLISHED, S.FIN_WAIT_1, S.FIN_WAIT_2, S.CLOSE_WAIT}


def kinds(events: list) -> list[str]:
    return [type(e).__name__ for e in events]


# ---------------------------------------------------------------- RST (RFC 5961 §3.2)
@pytest.mark.parametrize("state", RST_STATES, ids=str)
def test_rfc5961_3_2_rst_exact_seq_resets(state: State) -> None:
    # "If the RST bit is set and the sequence number exactly matches the next
    # expected sequence number (RCV.NXT), then TCP MUST reset the connection."
    d = in_state(state)
    out = d.receive(d.seg(RST, RCV_NXT[state]))
    assert out == []  # a RST is never answered
    assert d.conn.state is S.CLOSED
    assert d.transitions() == [(state, S.CLOSED, "recv RST")]
    events = d.take_events()
    assert ("ConnectionReset" in kinds(events)) == (state in RESET_REPORTED)
    assert kinds(events)[-1] == "Closed"
    assert d.conn.next_deadline() is None


@pytest.mark.parametrize("state", RST_STATES, ids=str)
def test_rfc5961_3_2_rst_in_window_draws_challenge_ack(state: State) -> None:
    # "If the RST bit is set and the sequence number does not exactly match the
    # next expected sequence value, yet is within the current receive window, TCP
    # MUST send an acknowledgment (challenge ACK): <SEQ=SND.NXT><ACK=RCV.NXT><CTL=ACK>"
    d = in_state(state)
    for off in (1, 1000, 65534):
        out = d.receive(d.seg(RST | ACK, RCV_NXT[state] + off, SND_MAX[state]))
        assert brief(out) == [(ACK, SND_MAX[state], RCV_NXT[state])]
    assert d.conn.state is state
    assert d.transitions() == []


@pytest.mark.parametrize("state", RST_STATES, ids=str)
def test_rfc5961_3_2_rst_out_of_window_dropped(state: State) -> None:
    # "If the RST bit is set and the sequence number is outside the current
    # receive window, silently drop the segment."
    d = in_state(state)
    for seq in (RCV_NXT[state] - 1, RCV_NXT[state] + 65535, RCV_NXT[state] + 2**31):
        assert d.receive(d.seg(RST, seq)) == []
    assert d.conn.state is state
    assert d.take_events() == []


def test_rfc9293_3_10_7_4_rst_in_syn_received_from_simultaneous_open_is_refusal() -> None:
    # "If this connection was initiated with an active OPEN (i.e., came from
    # SYN-SENT state), then the connection was refused; signal the user
    # "connection refused"."
    d = syn_sent()
    d.receive(d.seg(SYN, PEER_ISS, options=Driver.syn_options()))
    assert d.conn.state is S.SYN_RECEIVED
    d.take_events()
    assert d.receive(d.seg(RST, PEER_ISS + 1)) == []
    assert d.conn.state is S.CLOSED
    assert ConnectionReset(refused=True) in d.take_events()


def test_rfc5961_3_2_rst_syn_ack_at_irs_in_syn_received_is_dropped() -> None:
    # "If the RST bit is set and the sequence number is outside the current receive
    # window, silently drop the segment": RST+SYN+ACK at IRS is, in SYN-RECEIVED (RCV.NXT
    # is IRS+1); stripping its SYN as a simultaneous open's SYN-ACK would not make it
    # acceptable (issue 17, 7: it reset the connection; Linux keeps it).
    d = syn_sent()
    d.receive(d.seg(SYN, PEER_ISS, options=Driver.syn_options()))
    assert d.conn.state is S.SYN_RECEIVED
    d.take_events()
    assert d.receive(d.seg(RST | SYN | ACK, PEER_ISS, ISS + 1)) == []
    assert d.conn.state is S.SYN_RECEIVED
    assert d.take_events() == []


def test_rfc5961_7_challenge_acks_rate_limited() -> None:
    # "limit the number of challenge ACKs ... sent per second"
    d = established(TcpConfig(challenge_ack_limit=3))
    outs = [d.receive(d.seg(RST, PEER_ISS + 10)) for _ in range(5)]
    assert [len(o) for o in outs] == [1, 1, 1, 0, 0]
    d.advance(1.0)
    assert len(d.receive(d.seg(RST, PEER_ISS + 10))) == 1
    assert d.conn.state is S.ESTABLISHED


# ---------------------------------------------------------------- RST in SYN-SENT
def test_rfc9293_3_10_7_3_syn_sent_rst_with_ack_of_syn_resets() -> None:
    # "If the ACK was acceptable, then signal to the user "error: connection
    # reset", drop the segment, enter CLOSED state, delete TCB, and return."
    d = syn_sent()
    assert d.receive(d.seg(RST | ACK, 0, ISS + 1)) == []
    assert d.conn.state is S.CLOSED
    assert d.transitions() == [(S.SYN_SENT, S.CLOSED, "recv RST+ACK")]
    assert ConnectionReset(refused=True) in d.take_events()


def test_rfc9293_3_10_7_3_syn_sent_rst_without_ack_dropped() -> None:
    # "Otherwise (no ACK), drop the segment and return."
    d = syn_sent()
    assert d.receive(d.seg(RST, 0)) == []
    assert d.receive(d.seg(RST, PEER_ISS)) == []
    assert d.conn.state is S.SYN_SENT and d.take_events() == []


@pytest.mark.parametrize("ack", [ISS, ISS - 1, ISS + 2, ISS + 100000])
def test_rfc9293_3_10_7_3_syn_sent_rst_with_bad_ack_dropped(ack: int) -> None:
    # "If SEG.ACK =< ISS or SEG.ACK > SND.NXT, send a reset (unless the RST bit is
    # set, if so drop the segment and return)"
    d = syn_sent()
    assert d.receive(d.seg(RST | ACK, 0, ack)) == []
    assert d.conn.state is S.SYN_SENT


@pytest.mark.parametrize("ack", [ISS, ISS + 2])
def test_rfc9293_3_10_7_3_syn_sent_bad_ack_draws_rst(ack: int) -> None:
    # "... send a reset <SEQ=SEG.ACK><CTL=RST>, discard the segment, and return."
    d = syn_sent()
    assert brief(d.receive(d.seg(SYN | ACK, PEER_ISS, ack))) == [(RST, ack, 0)]
    assert brief(d.receive(d.seg(ACK, PEER_ISS, ack))) == [(RST, ack, 0)]
    assert d.conn.state is S.SYN_SENT


def test_rfc9293_3_10_7_3_syn_sent_neither_syn_nor_rst_dropped() -> None:
    d = syn_sent()
    assert d.receive(d.seg(ACK, PEER_ISS, ISS + 1)) == []
    assert d.receive(d.seg(FIN, PEER_ISS)) == []
    assert d.conn.state is S.SYN_SENT


# ---------------------------------------------------------------- SYN (RFC 5961 §4)
@pytest.mark.parametrize("state", SYNCHRONIZED, ids=str)
@pytest.mark.parametrize("where", [0, 100, -100, 70000, 2**31], ids=lambda w: f"seq{w:+}")
def test_rfc5961_4_2_syn_in_synchronized_state_draws_challenge_ack(
    state: State, where: int
) -> None:
    # "If the SYN bit is set, irrespective of the sequence number, TCP MUST send
    # an ACK (also referred to as challenge ACK) to the remote peer:
    # <SEQ=SND.NXT><ACK=RCV.NXT><CTL=ACK>. After sending the acknowledgment, TCP
    # MUST drop the unacceptable segment and stop processing further."
    d = in_state(state)
    timers = dict(d.conn.timers)
    out = d.receive(d.seg(SYN, RCV_NXT[state] + where, options=Driver.syn_options()))
    assert brief(out) == [(ACK, SND_MAX[state], RCV_NXT[state])]
    assert d.conn.state is state and d.take_events() == []
    assert d.conn.timers == timers  # TIME-WAIT is not restarted by a SYN


def test_rfc5961_4_2_syn_ack_in_established_draws_challenge_ack() -> None:
    d = established()
    out = d.receive(d.seg(SYN | ACK, PEER_ISS, ISS + 1, options=Driver.syn_options()))
    assert brief(out) == [(ACK, ISS + 1, PEER_ISS + 1)]
    assert d.conn.state is S.ESTABLISHED


# ---------------------------------------------------------------- ACK (RFC 5961 §5)
def test_rfc9293_3_10_7_4_ack_of_unsent_data_acked_and_dropped() -> None:
    # "If the ACK acks something not yet sent (SEG.ACK > SND.NXT), then send an
    # ACK, drop the segment, and return."
    d = established()
    out = d.receive(d.seg(ACK | PSH, PEER_ISS + 1, ISS + 100, b"data"))
    assert brief(out) == [(ACK, ISS + 1, PEER_ISS + 1)]
    assert d.conn.readable == 0 and d.conn.rcv_nxt == PEER_ISS + 1  # text dropped
    assert d.conn.snd_una == ISS + 1


@pytest.mark.parametrize("state", [S.FIN_WAIT_1, S.CLOSING, S.LAST_ACK], ids=str)
def test_rfc9293_3_10_7_4_ack_beyond_our_fin_acked_and_dropped(state: State) -> None:
    d = in_state(state)
    out = d.receive(d.seg(ACK, RCV_NXT[state], SND_MAX[state] + 1))
    assert brief(out) == [(ACK, SND_MAX[state], RCV_NXT[state])]
    assert d.conn.state is state


def test_rfc5961_5_2_old_ack_below_window_draws_challenge_ack() -> None:
    # "The ACK value is considered acceptable only if it is in the range of
    # ((SND.UNA - MAX.SND.WND) =< SEG.ACK =< SND.NXT). All incoming segments whose
    # ACK value doesn't satisfy the above condition MUST be discarded and an ACK
    # sent back."
    d = established()
    assert d.conn.max_snd_wnd == 65535
    too_old = ISS + 1 - 65535 - 1
    out = d.receive(d.seg(ACK | PSH, PEER_ISS + 1, too_old, b"data"))
    assert brief(out) == [(ACK, ISS + 1, PEER_ISS + 1)]
    assert d.conn.readable == 0  # discarded
    # At the edge of the range, the (old) ACK is acceptable and the text processed.
    out = d.receive(d.seg(ACK | PSH, PEER_ISS + 1, ISS + 1 - 65535, b"data"))
    assert brief(out) == [(ACK, ISS + 1, PEER_ISS + 5)]
    assert d.conn.read() == b"data"


def test_rfc9293_3_10_7_4_duplicate_ack_ignored() -> None:
    # "If the ACK is a duplicate (SEG.ACK =< SND.UNA), it can be ignored."
    d = established()
    d.conn.send(b"x" * 100)
    d.flush()
    assert d.receive(d.seg(ACK, PEER_ISS + 1, ISS + 1)) == []
    assert d.conn.snd_una == ISS + 1 and d.conn.state is S.ESTABLISHED


def test_rfc9293_3_10_7_4_syn_received_bad_ack_draws_rst() -> None:
    # "If the segment acknowledgment is not acceptable, form a reset segment
    # <SEQ=SEG.ACK><CTL=RST> and send it."
    d = syn_received()
    for ack in (ISS, ISS + 2, ISS + 5000):
        assert brief(d.receive(d.seg(ACK, PEER_ISS + 1, ack))) == [(RST, ack, 0)]
    assert d.conn.state is S.SYN_RECEIVED
    assert d.transitions() == []


def test_rfc9293_3_10_7_4_ack_bit_off_dropped() -> None:
    # "if the ACK bit is off, drop the segment and return"
    d = established()
    assert d.receive(d.seg(PSH, PEER_ISS + 1, 0, b"noack")) == []
    assert d.conn.readable == 0


# ---------------------------------------------------------------- closed ports (§3.10.7.1)
def test_rfc9293_3_10_7_1_reset_for_segment_without_ack() -> None:
    # "If the incoming segment has an ACK field, the reset takes its sequence
    # number from the ACK field of the segment, otherwise the reset has sequence
    # number zero and the ACK field is set to the sum of the sequence number and
    # segment length of the incoming segment. The connection remains in the CLOSED state."
    syn = TcpSegment(40000, 80, 5000, 0, SYN, 65535)
    rst = reset_for(syn)
    assert rst is not None
    assert (rst.src_port, rst.dst_port) == (80, 40000)
    assert brief([rst]) == [(RST | ACK, 0, 5001)]
    data_fin = TcpSegment(40000, 80, 2**32 - 3, 0, FIN | PSH, 65535, b"0123456789")
    assert brief([reset_for(data_fin)]) == [(RST | ACK, 0, 8)]  # modulo 2**32


def test_rfc9293_3_10_7_1_reset_for_segment_with_ack() -> None:
    seg = TcpSegment(40000, 80, 5000, 777, ACK | PSH, 65535, b"hello")
    assert brief([reset_for(seg)]) == [(RST, 777, 0)]
    assert reset_for(seg).window == 0  # type: ignore[union-attr]


@pytest.mark.parametrize("flags", [RST, RST | ACK, RST | SYN])
def test_rfc9293_3_10_7_1_rst_never_answered(flags: int) -> None:
    # "An incoming segment containing a RST is discarded."
    assert reset_for(TcpSegment(40000, 80, 5000, 777, flags, 0)) is None


# ---------------------------------------------------------------- LISTEN (§3.10.7.2)
def _listener() -> Listener:
    return Listener("10.0.0.1", 80)


def test_rfc9293_3_10_7_2_listen_rst_ignored() -> None:
    # "First, check for a RST: An incoming RST should be ignored. Return."
    assert _listener().on_segment(TcpSegment(40000, 80, 5000, 0, RST, 0), "10.0.0.2", 0) is None
    assert (
        _listener().on_segment(TcpSegment(40000, 80, 5000, 1, RST | ACK, 0), "10.0.0.2", 0) is None
    )


@pytest.mark.parametrize("flags", [ACK, ACK | PSH, SYN | ACK, FIN | ACK])
def test_rfc9293_3_10_7_2_listen_ack_draws_rst(flags: int) -> None:
    # "Second, check for an ACK: Any acknowledgment is bad if it arrives on a
    # connection still in the LISTEN state. An acceptable reset segment should be
    # formed for any arriving ACK-bearing segment. The RST should be formatted as
    # follows: <SEQ=SEG.ACK><CTL=RST>"
    res = _listener().on_segment(TcpSegment(40000, 80, 5000, 4242, flags, 100), "10.0.0.2", 0)
    assert isinstance(res, TcpSegment)
    assert brief([res]) == [(RST, 4242, 0)] and (res.src_port, res.dst_port) == (80, 40000)


def test_rfc9293_3_10_7_2_listen_syn_creates_syn_received() -> None:
    res = _listener().on_segment(TcpSegment(40000, 80, 5000, 0, SYN, 100), "10.0.0.2", 0)
    assert not isinstance(res, TcpSegment) and res is not None
    assert res.state is S.SYN_RECEIVED and (res.remote_ip, res.remote_port) == ("10.0.0.2", 40000)


def test_rfc9293_3_10_7_2_listen_syn_fin_dropped_as_linux() -> None:
    # RFC 9293 is silent on SYN+FIN; Linux discards it in LISTEN (tcp_rcv_state_process),
    # opening nothing: so does netemu (issue 17, 7).
    seg = TcpSegment(40000, 80, 5000, 0, SYN | FIN, 100)
    assert _listener().on_segment(seg, "10.0.0.2", 0) is None


@pytest.mark.parametrize("flags", [0, FIN, PSH])
def test_rfc9293_3_10_7_2_listen_other_dropped(flags: int) -> None:
    # "Fourth, other data or control ... drop the segment and return."
    seg = TcpSegment(40000, 80, 5000, 0, flags, 100, b"x")
    assert _listener().on_segment(seg, "10.0.0.2", 0) is None


# ---------------------------------------------------------------- data with SYN
def test_rfc9293_3_10_7_3_data_on_syn_ack_delivered() -> None:
    # "If there are other controls or text in the segment, then continue
    # processing at the sixth step below where the URG bit is checked".
    d = syn_sent()
    out = d.receive(
        d.seg(SYN | ACK | PSH, PEER_ISS, ISS + 1, b"hello", options=Driver.syn_options())
    )
    assert d.conn.state is S.ESTABLISHED
    assert brief(out) == [(ACK, ISS + 1, PEER_ISS + 6)]
    assert d.conn.read() == b"hello"


def test_rfc9293_3_10_7_3_data_and_fin_on_syn_ack() -> None:
    d = syn_sent()
    out = d.receive(d.seg(SYN | ACK | FIN, PEER_ISS, ISS + 1, b"bye", options=Driver.syn_options()))
    assert brief(out) == [(ACK, ISS + 1, PEER_ISS + 5)]
    assert d.conn.state is S.CLOSE_WAIT
    assert d.conn.read() == b"bye" and d.conn.at_eof


def test_rfc9293_3_10_7_2_data_on_syn_delivered_once_established() -> None:
    # LISTEN: "Any other control or text should be queued for processing later."
    d = syn_received(syn_payload=b"early")
    assert d.conn.readable == 0  # not before ESTABLISHED
    # The client ACKs our SYN; its SND.NXT is past its data.
    out = d.receive(d.seg(ACK, PEER_ISS + 6, ISS + 1))
    assert d.conn.state is S.ESTABLISHED
    assert d.conn.read() == b"early"
    assert brief(out) == [(ACK, ISS + 1, PEER_ISS + 6)]  # the data is acknowledged
    assert d.take_events().count(ConnectionReset()) == 0


def test_rfc9293_3_10_7_2_data_on_syn_then_retransmitted() -> None:
    # The client retransmits the data it sent with its SYN (not acknowledged by
    # the SYN,ACK): delivered once, not twice.
    d = syn_received(syn_payload=b"early")
    d.receive(d.seg(ACK | PSH, PEER_ISS + 1, ISS + 1, b"early"))
    assert d.conn.state is S.ESTABLISHED
    assert d.conn.read() == b"early"
    assert d.conn.rcv_nxt == PEER_ISS + 6


# ---------------------------------------------------------------- acceptability (§3.10.7.4)
def _zero_window() -> Driver:
    """ESTABLISHED with RCV.WND = 0: a 1000-byte buffer filled, nothing read."""
    d = established(TcpConfig(rcv_buf=1000))
    out = d.receive(d.seg(ACK | PSH, PEER_ISS + 1, ISS + 1, b"z" * 1000))
    assert [(s.ack, s.window) for s in out] == [(PEER_ISS + 1001, 0)]
    assert d.conn.rcv_wnd() == 0
    return d


def test_rfc9293_3_10_7_4_len0_wnd0_acceptable_only_at_rcv_nxt() -> None:
    # Segment Length 0, Receive Window 0: "SEG.SEQ = RCV.NXT"
    d = _zero_window()
    rcv_nxt = PEER_ISS + 1001
    assert d.receive(d.seg(ACK, rcv_nxt, ISS + 1)) == []  # acceptable: no reply
    for seq in (rcv_nxt - 1, rcv_nxt + 1):
        assert brief(d.receive(d.seg(ACK, seq, ISS + 1))) == [(ACK, ISS + 1, rcv_nxt)]


def test_rfc9293_3_10_7_4_len0_wnd_positive() -> None:
    # Segment Length 0, Receive Window >0: "RCV.NXT =< SEG.SEQ < RCV.NXT+RCV.WND"
    d = established()
    rcv_nxt, wnd = PEER_ISS + 1, d.conn.rcv_wnd()
    assert wnd == 65535
    for seq in (rcv_nxt, rcv_nxt + 1, rcv_nxt + wnd - 1):
        assert d.receive(d.seg(ACK, seq, ISS + 1)) == []
    for seq in (rcv_nxt - 1, rcv_nxt + wnd, rcv_nxt + 2**31):
        assert brief(d.receive(d.seg(ACK, seq, ISS + 1))) == [(ACK, ISS + 1, rcv_nxt)]


def test_rfc9293_3_10_7_4_len_positive_wnd0_not_acceptable() -> None:
    # Segment Length >0, Receive Window 0: "not acceptable"
    d = _zero_window()
    rcv_nxt = PEER_ISS + 1001
    out = d.receive(d.seg(ACK | PSH, rcv_nxt, ISS + 1, b"more"))
    assert [(s.flags, s.seq, s.ack, s.window) for s in out] == [(ACK, ISS + 1, rcv_nxt, 0)]
    assert d.conn.rcv_nxt == rcv_nxt and d.conn.readable == 1000
    # ... but "special allowance should be made to accept valid ACKs": the ACK
    # field of the segment at RCV.NXT is still processed.
    d.conn.send(b"q" * 10)
    d.flush()
    d.receive(d.seg(ACK | PSH, rcv_nxt, ISS + 11, b"more"))
    assert d.conn.snd_una == ISS + 11


def test_rfc9293_3_10_7_4_len_positive_wnd_positive() -> None:
    # Segment Length >0, Receive Window >0: "RCV.NXT =< SEG.SEQ < RCV.NXT+RCV.WND
    # or RCV.NXT =< SEG.SEQ+SEG.LEN-1 < RCV.NXT+RCV.WND"
    d = established()
    rcv_nxt = PEER_ISS + 1
    # starts in the window
    out = d.receive(d.seg(ACK | PSH, rcv_nxt, ISS + 1, b"abc"))
    assert brief(out) == [(ACK, ISS + 1, rcv_nxt + 3)]
    # starts before RCV.NXT, ends in the window: only the new part is taken
    out = d.receive(d.seg(ACK | PSH, rcv_nxt + 1, ISS + 1, b"bcdef"))
    assert brief(out) == [(ACK, ISS + 1, rcv_nxt + 6)]
    assert d.conn.read() == b"abcdef"
    # entirely old: not acceptable, ACKed, nothing delivered
    out = d.receive(d.seg(ACK | PSH, rcv_nxt, ISS + 1, b"abc"))
    assert brief(out) == [(ACK, ISS + 1, rcv_nxt + 6)] and d.conn.readable == 0
    # beyond the window: not acceptable
    wnd = d.conn.rcv_wnd()
    out = d.receive(d.seg(ACK | PSH, rcv_nxt + 6 + wnd, ISS + 1, b"far"))
    assert brief(out) == [(ACK, ISS + 1, rcv_nxt + 6)] and d.conn.readable == 0
    # straddling the right edge: acceptable, trimmed to the window (held out of order)
    out = d.receive(d.seg(ACK | PSH, rcv_nxt + 6 + wnd - 2, ISS + 1, b"edge"))
    assert brief(out) == [(ACK, ISS + 1, rcv_nxt + 6)]
    assert d.conn.rcvq.ooo_bytes == 2


def test_rfc9293_3_10_7_4_sequence_wraps_modulo_2_32() -> None:
    # The same rules across the wrap of the sequence space (§3.4).
    d = Driver.client(iss=2**32 - 2)
    d.connect()
    out = d.receive(d.seg(SYN | ACK, 2**32 - 3, 2**32 - 1, options=Driver.syn_options()))
    assert brief(out) == [(ACK, 2**32 - 1, 2**32 - 2)]
    d.conn.send(b"0123")
    out = d.flush()
    assert brief(out) == [(ACK | PSH, 2**32 - 1, 2**32 - 2)]
    out = d.receive(d.seg(ACK | PSH, 2**32 - 2, 3, b"abcdef"))
    assert brief(out) == [(ACK, 3, 4)]
    assert d.conn.snd_una == 3 and d.conn.read() == b"abcdef"


def test_rfc9293_3_10_7_4_syn_received_segment_outside_window_acked() -> None:
    d = syn_received()
    out = d.receive(d.seg(ACK, PEER_ISS - 10, ISS + 1))
    assert brief(out) == [(ACK, ISS + 1, PEER_ISS + 1)]
    assert d.conn.state is S.SYN_RECEIVED


def test_rfc9293_3_10_7_4_time_wait_old_duplicate_acked() -> None:
    d = in_state(S.TIME_WAIT)
    out = d.receive(d.seg(ACK | PSH, PEER_ISS - 5, SND_UNA[S.TIME_WAIT], b"old"))
    assert brief(out) == [(ACK, ISS + 2, PEER_ISS + 2)]
    assert d.conn.state is S.TIME_WAIT


# ---------------------------------------------------------------- options of bad length
# A bad-length option, and what follows it to the end of a 4-byte-aligned tail: kind 254
# length 1; length 0; kind 8 (timestamps) overrunning the header; a kind with no room
# for its length byte.
BAD_TAILS = {
    "len1": b"\xfe\x01\x00\x00",
    "len0": b"\xfe\x00\x00\x00",
    "overrun": b"\x08\x0a\x00\x00",
    "no-length": b"\x01\x01\x01\xfe",
}


def _with_bad_option(seg: TcpSegment, tail: bytes) -> TcpSegment:
    """``seg`` as it arrives with ``tail`` after its options: emitted, the tail put at
    the end of its option area, parsed back by the wire layer."""
    buf = bytearray(seg.emit("10.0.0.2", "10.0.0.1"))
    hlen = buf[12] >> 4 << 2
    buf[hlen:hlen] = tail
    buf[12] = (hlen + len(tail)) >> 2 << 4 | buf[12] & 0x0F
    return TcpSegment.parse(bytes(buf))


@pytest.mark.parametrize("tail", BAD_TAILS.values(), ids=BAD_TAILS.keys())
def test_rfc9293_option_with_bad_length_stops_parsing_keeps_segment(tail: bytes) -> None:
    # RFC 9293 §3.1 (MUST-7): "A TCP implementation MUST be prepared to handle an illegal
    # option length (e.g., zero)". Linux stops reading options there and processes the
    # segment with the options before it (tcp_parse_options: "silly options", "don't
    # parse partial options"): in the lab, kernel 6.18 ACKed such a segment's data and
    # echoed the TSval before the bad option. The wire layer refused the whole segment
    # (issue 17, 7).
    d = established_options()
    seg = _with_bad_option(d.seg(ACK | PSH, PEER_ISS + 1, ISS + 1, b"hello"), tail)
    assert seg.payload == b"hello" and seg.malformed_option is not None
    out = d.receive(seg)
    assert brief(out) == [(ACK, ISS + 1, PEER_ISS + 6)]
    assert out[0].timestamp.tsecr == seg.timestamp.tsval  # the TSopt before it counted
    assert d.conn.read() == b"hello"


def test_rfc9293_option_with_bad_length_hides_the_options_after_it() -> None:
    # Linux takes a SYN's options up to the bad one (the lab's kernel: MSS and window
    # scale before it were honoured, a window scale after it was not).
    before = _with_bad_option(
        TcpSegment(40000, 80, 5000, 0, SYN, 100, b"", (MssOption(1000), NOP, WindowScaleOption(7))),
        b"\xfe\x01\x00\x00",
    )
    after = _with_bad_option(
        TcpSegment(40000, 80, 5000, 0, SYN, 100, b"", (MssOption(1000),)),
        b"\xfe\x01\x00\x00\x01\x03\x03\x07",
    )
    cfg = TcpConfig(timestamps=False, sack=False)
    conn = Listener("10.0.0.1", 80, cfg).on_segment(before, "10.0.0.2", 0)
    assert isinstance(conn, Connection)
    assert (conn.snd_mss, conn.snd_wscale, conn.rcv_wscale) == (1000, 7, 7)
    conn = Listener("10.0.0.1", 80, cfg).on_segment(after, "10.0.0.2", 0)
    assert isinstance(conn, Connection)
    assert (conn.snd_mss, conn.snd_wscale, conn.rcv_wscale) == (1000, 0, 0)
    (synack,) = conn.segments_to_send(0)
    assert synack.flags == SYN | ACK and synack.wscale is None  # as the kernel's SYN-ACK


def _far(seg: TcpSegment, left: int = 28) -> TcpSegment:
    """``seg`` with a bad option (kind 254 length 1) ``left`` bytes before the end of
    its option area (NOPs in front of it to keep the area aligned)."""
    olen = len(b"".join(o.emit() for o in seg.options))
    pad = -(olen + left) % 4
    return _with_bad_option(seg, b"\x01" * pad + b"\xfe\x01" + bytes(left - 2))


@pytest.mark.parametrize("state", [S.SYN_SENT, S.SYN_RECEIVED, *SYNCHRONIZED[:-1]], ids=str)
def test_linux_6_7_bad_option_with_18_bytes_left_drops_segment_unread(state: State) -> None:
    # Since 6.7, a kernel built with TCP-MD5 (the lab's 6.18, as the distributions')
    # walks the options for a signature before a socket sees the segment, while 18
    # bytes are left (tcp_do_parse_auth_options), and a bad length met on that walk
    # drops it (tcp_inbound_hash: SKB_DROP_REASON_TCP_AUTH_HDR, tracepoint
    # tcp_hash_bad_header): in the lab, 18 bytes left was dropped, 17 was ACKed.
    assert SYNCHRONIZED[-1] is S.TIME_WAIT

    def snapshot(c: Connection) -> tuple:
        return c.state, c.snd_una, c.rcv_nxt, c.snd_wnd

    seq = RCV_NXT[state] if state is not S.SYN_SENT else PEER_ISS
    flags = SYN | ACK if state is S.SYN_SENT else ACK | PSH
    payload = b"" if state is S.SYN_SENT else b"hello"
    d = in_state(state)
    before = snapshot(d.conn)
    out = d.receive(_far(d.seg(flags, seq, SND_MAX[state], payload, window=9999), 18))
    assert out == [] and d.take_events() == [] and snapshot(d.conn) == before
    # Processed as the same segment without the bad option is: with 17 bytes left
    # (below the walk), and wherever it is for Linux before 6.7 or a kernel built
    # without TCP-MD5 and TCP-AO (auth_option_walk None).
    clean = in_state(state)
    want = brief(clean.receive(clean.seg(flags, seq, SND_MAX[state], payload, window=9999)))
    assert snapshot(clean.conn) != before
    for config, left in ((None, 17), (TcpConfig(auth_option_walk=None), 28)):
        d = in_state(state, config)
        seg = _far(d.seg(flags, seq, SND_MAX[state], payload, window=9999), left)
        assert brief(d.receive(seg)) == want and snapshot(d.conn) == snapshot(clean.conn)


def test_linux_6_7_bad_option_walk_spares_time_wait() -> None:
    # TIME-WAIT's path makes no such walk (tcp_timewait_state_process): the lab's kernel
    # in TIME-WAIT ACKed a retransmitted FIN whose bad option had 28 bytes left.
    d = in_state(S.TIME_WAIT)
    out = d.receive(_far(d.seg(FIN | ACK, PEER_ISS + 1, ISS + 2)))
    assert brief(out) == [(ACK, ISS + 2, PEER_ISS + 2)]


def test_linux_6_7_bad_option_walk_drops_before_listener_and_closed_port() -> None:
    # The walk comes before the listener (no SYN-ACK, no RST for an ACK) and before the
    # reset a closed port sends (tcp_v4_send_reset returns): the lab's kernel answered
    # neither with 24 or 28 bytes left, and both with 4.
    syn = _far(TcpSegment(40000, 80, 5000, 0, SYN, 100, b"", (MssOption(1000),)))
    ack = _far(TcpSegment(40000, 80, 5000, 4242, ACK, 100))
    assert _listener().on_segment(syn, "10.0.0.2", 0) is None
    assert _listener().on_segment(ack, "10.0.0.2", 0) is None
    assert reset_for(syn) is None and reset_for(ack) is None
    assert isinstance(reset_for(syn, None), TcpSegment)
    near = _with_bad_option(TcpSegment(40000, 80, 5000, 4242, ACK, 100), b"\xfe\x01\x00\x00")
    assert brief([reset_for(near)]) == [(RST, 4242, 0)]
    assert brief([_listener().on_segment(near, "10.0.0.2", 0)]) == [(RST, 4242, 0)]
    lst = Listener("10.0.0.1", 80, TcpConfig(auth_option_walk=None))
    assert isinstance(lst.on_segment(syn, "10.0.0.2", 0), Connection)
    assert brief([lst.on_segment(ack, "10.0.0.2", 0)]) == [(RST, 4242, 0)]
