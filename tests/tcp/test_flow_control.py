"""Flow control: the receive window, SWS avoidance on both sides, Nagle, and
zero-window probing (RFC 9293 §3.8.6, RFC 1122 §4.2.3.3-4, RFC 896)."""

from __future__ import annotations

import pytest

from netemu.tcp import State, TcpConfig, Timer
from netemu.testing import Driver, brief, established_pair
from netemu.testing.states import ISS, PEER_ISS, established, syn_sent
from netemu.wire.tcp import ACK, FIN, PSH, SYN

S = State


def _established(
    config: TcpConfig | None = None, *, peer_window: int = 65535, peer_wscale: int | None = None
) -> Driver:
    """ESTABLISHED with a chosen peer window (on its SYN,ACK, unscaled)."""
    d = syn_sent(config)
    d.receive(
        d.seg(
            SYN | ACK,
            PEER_ISS,
            ISS + 1,
            window=peer_window,
            options=Driver.syn_options(1460, peer_wscale),
        )
    )
    assert d.conn.state is S.ESTABLISHED
    d.take_events()
    return d


def _data(d: Driver, offset: int, n: int, fill: bytes = b"d") -> list:
    """The peer sends n bytes at PEER_ISS+1+offset; returns our reply."""
    return d.receive(d.seg(ACK | PSH, PEER_ISS + 1 + offset, d.conn.snd_max, fill * n))


# ---------------------------------------------------------------- the receiver
def test_rfc9293_3_8_6_receiver_advertises_free_buffer_space() -> None:
    d = established(TcpConfig(rcv_buf=10000))
    assert d.sent[-1].window == 10000  # the handshake's ACK
    out = _data(d, 0, 3000)
    assert [(s.ack, s.window) for s in out] == [(PEER_ISS + 3001, 7000)]
    assert d.conn.read() == b"d" * 3000
    out = _data(d, 3000, 100)
    assert [(s.ack, s.window) for s in out] == [(PEER_ISS + 3101, 9900)]


def test_rfc9293_3_8_6_2_2_right_edge_never_moves_left() -> None:
    # "the receiver SHOULD NOT shrink the window, i.e., move the right window edge
    # to the left": unread data closes the window from the left only.
    d = established(TcpConfig(rcv_buf=10000))
    edge = PEER_ISS + 1 + 10000
    off = 0
    for n in (1000, 2000, 1460, 1460, 3000, 1080):
        out = _data(d, off, n)
        off += n
        assert [s.ack + s.window for s in out] == [edge]
    assert d.conn.rcv_wnd() == 0 and out[0].window == 0
    # Beyond the edge nothing is taken.
    out = _data(d, off, 10)
    assert [(s.ack, s.window) for s in out] == [(PEER_ISS + 1 + off, 0)]
    assert d.conn.readable == 10000


def test_rfc7323_2_3_scaled_window_rounds_up_until_the_buffer_is_full() -> None:
    # With window scaling the field is RCV.WND >> shift; it is rounded up (the
    # edge does not appear to retreat) while the edge stays within one unit of
    # the buffer's end, and rounded down past that (RFC 7323 §2.3 and Appendix
    # F: a retraction of less than 2**S, which the sender must accept). The
    # edge never runs ahead of the buffer by a unit or more.
    d = _established(TcpConfig(rcv_buf=100000, window_scale=7), peer_wscale=7)
    assert d.conn.rcv_wscale == 7
    first = d.sent[-1]
    edge = first.ack + (first.window << 7)
    off = 0
    for n in (1000, 333, 1460, 7, 5000):
        out = _data(d, off, n)
        off += n
        new_edge = out[0].ack + (out[0].window << 7)
        assert new_edge > edge - 128
        free = 100000 - d.conn.readable
        assert new_edge - out[0].ack < free + 128
        if new_edge < edge:
            assert (out[0].window + 1) << 7 >= free + 128  # only when rounding up overshoots
        edge = new_edge


def test_rfc1122_4_2_3_3_receiver_sws_avoidance() -> None:
    # "the receiver ... SHOULD NOT advance the right window edge until it can be
    # advanced by at least min(0.5 * RCV.BUFF, Eff.snd.MSS)" (RFC 9293 §3.8.6.2.2)
    d = established(TcpConfig(rcv_buf=10000))
    off = 0
    for n in (1460,) * 6 + (1240,):
        _data(d, off, n)
        off += n
    assert d.conn.rcv_wnd() == 0
    d.conn.read(500)
    assert d.flush() == []  # no tiny window update
    probe = d.seg(ACK, PEER_ISS + off, ISS + 1)  # a zero-window probe (one below)
    assert [(s.ack, s.window) for s in d.receive(probe)] == [(PEER_ISS + 1 + off, 0)]
    d.conn.read(1000)  # 1500 free now: >= min(5000, 1460)
    out = d.flush()
    assert [(s.flags, s.ack, s.window) for s in out] == [(ACK, PEER_ISS + 1 + off, 1500)]


def test_rfc1122_4_2_3_3_window_update_after_read_from_zero() -> None:
    d = established(TcpConfig(rcv_buf=4000))
    _data(d, 0, 4000)
    assert d.conn.rcv_wnd() == 0
    d.conn.read()
    assert [(s.flags, s.window) for s in d.flush()] == [(ACK, 4000)]


@pytest.mark.parametrize("we_close_first", [False, True])
def test_no_window_update_once_the_peers_fin_is_in(we_close_first: bool) -> None:
    # Linux's tcp_cleanup_rbuf: "Even if window raised up to infinity, do not send
    # window open ACK in states, where we will not receive more." In TIME-WAIT, toward
    # a peer already CLOSED, such an ACK draws a RST that ends TIME-WAIT early (seen
    # against Go's echo server: tests/interop).
    d = established(TcpConfig(rcv_buf=4000))
    _data(d, 0, 3000)
    assert d.conn.rcv_wnd() == 1000
    if we_close_first:
        d.conn.shutdown()
        (fin,) = d.flush()
        assert fin.flags & FIN
    d.receive(d.seg(ACK | FIN, PEER_ISS + 3001, d.conn.snd_max))
    d.flush()
    assert d.conn.state is (S.TIME_WAIT if we_close_first else S.CLOSE_WAIT)
    d.conn.read()  # 3000 bytes freed: a window update, were more to come
    assert d.flush() == []


# ---------------------------------------------------------------- the sender
def test_rfc896_nagle_small_writes_coalesce_while_unacknowledged() -> None:
    # RFC 1122 §4.2.3.4: "If there is unacknowledged data (i.e., SND.NXT >
    # SND.UNA), then the sending TCP buffers all user data (regardless of the PSH
    # bit) until the outstanding data has been acknowledged or until the TCP can
    # send a full-sized segment"
    d = established(TcpConfig(nagle=True))
    d.conn.send(b"a")
    assert [s.payload for s in d.flush()] == [b"a"]  # nothing in flight: at once
    for c in b"bcd":
        d.conn.send(bytes([c]))
        assert d.flush() == []
    out = d.receive(d.seg(ACK, PEER_ISS + 1, ISS + 2))
    assert [(s.seq, s.payload) for s in out] == [(ISS + 2, b"bcd")]
    # A full-sized segment is not held.
    d.conn.send(b"x" * 1460)
    out = d.flush()
    assert [len(s.payload) for s in out] == [1460]


def test_rfc896_nodelay_small_writes_go_out_at_once() -> None:
    d = established(TcpConfig(nagle=False))
    for c in b"abcd":
        d.conn.send(bytes([c]))
        assert [s.payload for s in d.flush()] == [bytes([c])]
    assert d.conn.snd_max == ISS + 5


def test_rfc896_nagle_on_the_wire() -> None:
    for nagle, want in ((True, 2), (False, 50)):
        net = established_pair(TcpConfig(nagle=nagle))
        net.ab.log = []
        for _ in range(50):
            net.a.send(b"z")
            net.settle()
        b = net.b
        net.run(lambda b=b: b.readable == 50, max_time=1)  # type: ignore[misc]
        assert len([s for _, s in net.ab.log if s.payload]) == want


def test_rfc1122_4_2_3_4_sender_sws_avoidance() -> None:
    # Send when "(1) a maximum-sized segment can be sent, (2) ... all queued data
    # can be sent, or (3) at least a fraction Fs of the maximum window can be sent"
    d = _established(TcpConfig(nagle=False), peer_window=1000)
    d.conn.send(b"s" * 3000)
    out = d.flush()
    assert [len(s.payload) for s in out] == [1000]  # (3): the whole (max) window
    # 400 acknowledged, the window stays 1000: 400 usable < 1000/2, held.
    assert d.receive(d.seg(ACK, PEER_ISS + 1, ISS + 401, window=1000)) == []
    out = d.receive(d.seg(ACK, PEER_ISS + 1, ISS + 601, window=1000))
    assert [len(s.payload) for s in out] == [600]  # 600 >= 500
    out = d.receive(d.seg(ACK, PEER_ISS + 1, ISS + 1601, window=1000))
    assert [len(s.payload) for s in out] == [1000]
    out = d.receive(d.seg(ACK, PEER_ISS + 1, ISS + 2601, window=1000))
    assert [len(s.payload) for s in out] == [400]  # (2): all that is queued


def test_rfc9293_3_8_6_2_1_sws_override_timer() -> None:
    # "To avoid a resulting deadlock, it is necessary to have a timeout to force
    # transmission of data, overriding the SWS avoidance algorithm."
    # Data held by SWS avoidance with nothing in flight: if the peer's window
    # update is lost, only a timer gets the data moving again.
    d = _established(TcpConfig(nagle=False), peer_window=1000)
    d.conn.send(b"s" * 1500)
    assert [len(s.payload) for s in d.flush()] == [1000]
    # The peer acknowledges all, but its (unread) buffer leaves a 100-byte window.
    assert d.receive(d.seg(ACK, PEER_ISS + 1, ISS + 1001, window=100)) == []
    assert d.conn.next_deadline() is not None
    out = d.advance(5.0)
    assert out and out[0].seq == ISS + 1001  # a probe, or the 100 bytes the window allows
    # The peer answers with its opened window: the rest goes.
    out = d.receive(d.seg(ACK, PEER_ISS + 1, d.conn.snd_max, window=1000))
    assert d.conn.snd_max == ISS + 1501


def test_rfc9293_3_8_6_1_zero_window_probes_with_back_off() -> None:
    # "The sending TCP peer must regularly transmit at least one octet of new data
    # (if available), or retransmit to the receiving TCP peer even if the send
    # window is zero, in order to "probe" the window." RFC 1122 §4.2.2.17: "the
    # transmitting host SHOULD send the first zero-window probe when a zero window
    # has existed for the retransmission timeout period, and SHOULD increase
    # exponentially the interval between successive probes."
    d = _established(TcpConfig(nagle=False), peer_window=3000)
    rto = d.conn.rtt.current()
    d.conn.send(b"p" * 5000)
    out = d.flush()
    assert sum(len(s.payload) for s in out) == 2920  # two full segments (80 left, SWS)
    d.receive(d.seg(ACK, PEER_ISS + 1, ISS + 2921, window=0))
    assert d.conn.snd_wnd == 0 and Timer.PERSIST in d.conn.timers
    probes = []
    for _ in range(5):
        for s in d.advance_to_deadline():
            probes.append(d.now)
            # Linux's probe: <SEQ=SND.UNA-1><CTL=ACK>, no data; the answer is an ACK.
            assert brief([s]) == [(ACK, ISS + 2920, PEER_ISS + 1)] and not s.payload
            assert d.receive(d.seg(ACK, PEER_ISS + 1, ISS + 2921, window=0)) == []
    gaps = [round(b - a, 6) for a, b in zip([0.0, *probes], probes, strict=False)]
    assert gaps == [rto, 2 * rto, 4 * rto, 8 * rto, 16 * rto]
    assert d.conn.state is S.ESTABLISHED  # probing never times out the connection
    # The window opens: the transfer resumes and the persist timer stops.
    out = d.receive(d.seg(ACK, PEER_ISS + 1, ISS + 2921, window=65535))
    assert sum(len(s.payload) for s in out) == 2080
    assert Timer.PERSIST not in d.conn.timers


def test_rfc9293_3_8_6_1_zero_window_probe_answered_with_window() -> None:
    # The receiving side: a probe (unacceptable) draws an ACK carrying the window.
    d = established(TcpConfig(rcv_buf=2000))
    _data(d, 0, 2000)
    out = d.receive(d.seg(ACK, PEER_ISS + 2000, ISS + 1))
    assert [(s.ack, s.window) for s in out] == [(PEER_ISS + 2001, 0)]
    d.conn.read()
    out = d.flush()
    assert [(s.ack, s.window) for s in out] == [(PEER_ISS + 2001, 2000)]


def test_rfc9293_3_8_6_2_2_window_shrunk_to_zero_is_probed() -> None:
    # "If the window shrinks to zero, the TCP implementation MUST probe it in the
    # standard way" - here with data in flight when the (foreign) receiver
    # shrinks its window to zero and the data is lost.
    d = established(TcpConfig(nagle=False))
    d.conn.send(b"w" * 2000)
    assert sum(len(s.payload) for s in d.flush()) == 2000
    assert d.receive(d.seg(ACK, PEER_ISS + 1, ISS + 1, window=0)) == []
    sent = []
    for _ in range(4):
        out = d.advance_to_deadline()
        sent += out
    assert sent, "nothing probes the shrunk window"
    assert all(s.seq in (ISS, ISS + 1) for s in sent)
    # The window opens again: everything is delivered.
    out = d.receive(d.seg(ACK, PEER_ISS + 1, ISS + 1, window=65535))
    out += d.advance(d.conn.rtt.current())
    assert {s.seq for s in out if s.payload} >= {ISS + 1}
    d.receive(d.seg(ACK, PEER_ISS + 1, ISS + 2001, window=65535))
    assert d.conn.snd_una == ISS + 2001 and d.conn.state is S.ESTABLISHED


def test_rfc9293_3_8_6_fin_goes_out_whatever_the_window() -> None:
    d = _established(peer_window=0)
    d.conn.close()
    out = d.flush()
    assert brief(out) == [(FIN | ACK, ISS + 1, PEER_ISS + 1)]


@pytest.mark.parametrize("peer_window", [0, 1])
def test_zero_window_transfer_resumes_when_reader_reads(peer_window: int) -> None:
    # No deadlock: b never reads until a's window has been zero for a while.
    net = established_pair(None, TcpConfig(rcv_buf=8192 if peer_window else 4096))
    a, b = net.a, net.b
    data = bytes(range(256)) * 256  # 64 KiB
    sent = a.send(data)
    net.run(max_time=5)
    assert a.snd_wnd == 0 and b.readable > 0
    got = bytearray(b.read())
    sent += a.send(data[sent:])

    def app(n: object) -> None:
        nonlocal sent
        got.extend(b.read())  # type: ignore[union-attr]
        sent += a.send(data[sent:])

    assert net.run(lambda: len(got) == len(data), app=app, max_time=120)
    assert bytes(got) == data
