"""Ready-made states of one connection, driven by hand (the test plays the peer).

Numbers are fixed so tests read like the figures of RFC 9293: our ISS is 1000,
the peer's 5000, so after the handshake SND.NXT = 1001 and RCV.NXT = 5001. The
peer's SYN carries MSS 1460 and no window scale (windows are unscaled). Every
builder checks the segments of the way there and drains its events, so a test
sees only its own.
"""

from __future__ import annotations

from collections.abc import Callable

from ..tcp import State, TcpConfig
from ..wire.tcp import ACK, FIN, SYN
from .driver import Driver, brief


def _expect(got: object, want: object) -> None:
    if got != want:
        raise AssertionError(f"ready-made state: got {got!r}, expected {want!r}")


ISS = 1000  # ours
PEER_ISS = 5000

# A short MSL keeps TIME-WAIT tests quick (2·MSL = 2 s).
SHORT_MSL = TcpConfig(msl=1.0)


# ------------------------------------------------------------------ single connection
def syn_sent(config: TcpConfig | None = None) -> Driver:
    """connect() issued, the SYN <SEQ=1000> sent."""
    d = Driver.client(config, iss=ISS)
    out = d.connect()
    _expect([(s.flags, s.seq) for s in out], [(SYN, ISS)])
    d.take_events()
    return d


def syn_received(config: TcpConfig | None = None, syn_payload: bytes = b"") -> Driver:
    """A passive open that accepted <SEQ=5000><CTL=SYN> and sent
    <SEQ=1000><ACK=5001><CTL=SYN,ACK>."""
    syn_seg = Driver.client().seg(SYN, PEER_ISS, 0, syn_payload, options=Driver.syn_options())
    d = Driver.server(syn_seg, config, iss=ISS)
    out = d.flush()
    _expect(brief(out), [(SYN | ACK, ISS, PEER_ISS + 1)])
    d.take_events()
    return d


def established(config: TcpConfig | None = None) -> Driver:
    """Active open completed: SND.UNA = SND.NXT = 1001, RCV.NXT = 5001."""
    d = syn_sent(config)
    out = d.receive(d.seg(SYN | ACK, PEER_ISS, ISS + 1, options=Driver.syn_options()))
    _expect(brief(out), [(ACK, ISS + 1, PEER_ISS + 1)])
    _expect(d.conn.state, State.ESTABLISHED)
    d.take_events()
    return d


# The peer's timestamp clock in established_options(): PEER_TS + milliseconds.
PEER_TS = 700_000


def established_options(
    config: TcpConfig | None = None,
    *,
    ts: bool = True,
    sack: bool = True,
    wscale: int | None = None,
    window: int = 65535,
    rtt: float = 0.0,
) -> Driver:
    """Like established(), but the peer's SYN,ACK also offered timestamps (its
    clock: PEER_TS + ms, and the Driver adds them to every segment from then on),
    SACK-permitted and, if given, a window scale. Our TS clock has offset 0 (a
    fixed ISS), so our TSval is the milliseconds of ``now``. The SYN,ACK comes
    ``rtt`` after the SYN (the first RTT sample)."""
    d = syn_sent(config)
    syn = d.sent[-1].timestamp
    d.advance(rtt)
    opts = Driver.syn_options(
        1460, wscale, sack=sack, ts=(PEER_TS, syn.tsval) if ts and syn is not None else None
    )
    out = d.receive(d.seg(SYN | ACK, PEER_ISS, ISS + 1, window=window, options=opts))
    _expect(brief(out), [(ACK, ISS + 1, PEER_ISS + 1)])
    _expect(d.conn.state, State.ESTABLISHED)
    if ts and syn is not None:
        d.peer_ts = (PEER_TS - int(d.now * 1000 + 1e-6)) & 0xFFFFFFFF  # PEER_TS at the SYN,ACK
    d.take_events()
    return d


def _close(d: Driver, state: State) -> Driver:
    """close(): our FIN <SEQ=1001><ACK=RCV.NXT> goes out, and ``state`` follows."""
    d.conn.close()
    out = d.flush()
    _expect(brief(out), [(FIN | ACK, ISS + 1, d.conn.rcv_nxt)])
    _expect(d.conn.state, state)
    d.take_events()
    return d


def _peer_fin(d: Driver, ack: int, state: State) -> Driver:
    """The peer's FIN <SEQ=5001><ACK=ack> arrives: our ACK of it <SEQ=SND.MAX>
    <ACK=5002> goes out, and ``state`` follows."""
    out = d.receive(d.seg(FIN | ACK, PEER_ISS + 1, ack))
    _expect(brief(out), [(ACK, d.conn.snd_max, PEER_ISS + 2)])
    _expect(d.conn.state, state)
    d.take_events()
    return d


def fin_wait_1(config: TcpConfig | None = None) -> Driver:
    """close() in ESTABLISHED: our FIN <SEQ=1001> is out, not acknowledged.

    The FIN-WAIT states here come from close(), not shutdown(): the reader is
    gone, so data arriving later draws a RST (as Linux), and FIN-WAIT-2 runs
    the fin_timeout timer. Build a half-close with shutdown() by hand."""
    return _close(established(config), State.FIN_WAIT_1)


def fin_wait_2(config: TcpConfig | None = None) -> Driver:
    """Our FIN acknowledged: SND.UNA = 1002."""
    d = fin_wait_1(config)
    _expect(d.receive(d.seg(ACK, PEER_ISS + 1, ISS + 2)), [])
    _expect(d.conn.state, State.FIN_WAIT_2)
    d.take_events()
    return d


def close_wait(config: TcpConfig | None = None) -> Driver:
    """The peer's FIN <SEQ=5001> arrived and was acknowledged: RCV.NXT = 5002."""
    return _peer_fin(established(config), ISS + 1, State.CLOSE_WAIT)


def last_ack(config: TcpConfig | None = None) -> Driver:
    """close() in CLOSE-WAIT: our FIN <SEQ=1001><ACK=5002> is out."""
    return _close(close_wait(config), State.LAST_ACK)


def closing(config: TcpConfig | None = None) -> Driver:
    """Simultaneous close: in FIN-WAIT-1 the peer's FIN arrived without an ACK
    of ours."""
    return _peer_fin(fin_wait_1(config), ISS + 1, State.CLOSING)


def time_wait(config: TcpConfig | None = None) -> Driver:
    """Active close completed: FIN-WAIT-2 received the peer's FIN. Without a
    config, MSL is 1 s (SHORT_MSL): TIME-WAIT ends 2 s after it began."""
    return _peer_fin(fin_wait_2(config or SHORT_MSL), ISS + 2, State.TIME_WAIT)


BUILDERS: dict[State, Callable[..., Driver]] = {
    State.SYN_SENT: syn_sent,
    State.SYN_RECEIVED: syn_received,
    State.ESTABLISHED: established,
    State.FIN_WAIT_1: fin_wait_1,
    State.FIN_WAIT_2: fin_wait_2,
    State.CLOSE_WAIT: close_wait,
    State.LAST_ACK: last_ack,
    State.CLOSING: closing,
    State.TIME_WAIT: time_wait,
}

# RCV.NXT, SND.UNA and SND.MAX in each ready-made state (SYN-SENT has no RCV.NXT).
_PEER_FIN_IN = (State.CLOSE_WAIT, State.LAST_ACK, State.CLOSING, State.TIME_WAIT)
_OUR_FIN_OUT = (State.FIN_WAIT_1, State.FIN_WAIT_2, State.CLOSING, State.LAST_ACK, State.TIME_WAIT)
_OUR_FIN_ACKED = (State.FIN_WAIT_2, State.TIME_WAIT)
RCV_NXT = {st: PEER_ISS + (2 if st in _PEER_FIN_IN else 1) for st in BUILDERS}
SND_MAX = {st: ISS + (2 if st in _OUR_FIN_OUT else 1) for st in BUILDERS}
SND_UNA = {
    st: ISS
    + (0 if st in (State.SYN_SENT, State.SYN_RECEIVED) else 2 if st in _OUR_FIN_ACKED else 1)
    for st in BUILDERS
}
SYNCHRONIZED = [
    State.ESTABLISHED,
    State.FIN_WAIT_1,
    State.FIN_WAIT_2,
    State.CLOSE_WAIT,
    State.CLOSING,
    State.LAST_ACK,
    State.TIME_WAIT,
]


def in_state(state: State, config: TcpConfig | None = None) -> Driver:
    """A Driver already in ``state`` (any state but LISTEN and CLOSED)."""
    return BUILDERS[state](config)


__all__ = [
    "BUILDERS",
    "ISS",
    "PEER_ISS",
    "PEER_TS",
    "RCV_NXT",
    "SHORT_MSL",
    "SND_MAX",
    "SND_UNA",
    "SYNCHRONIZED",
    "close_wait",
    "closing",
    "established",
    "established_options",
    "fin_wait_1",
    "fin_wait_2",
    "in_state",
    "last_ack",
    "syn_received",
    "syn_sent",
    "time_wait",
]
