"""Drive one sans-IO Connection by hand: the test plays the peer.

A ``Driver`` owns a Connection and a virtual "now". The test hands it segments
(built with ``seg()``, addressed from the peer), lets time pass, and reads back
what the connection emitted and reported::

    d = Driver.client(iss=1000)
    d.connect()                      # -> [SYN seq=1000]
    out = d.receive(d.seg(SYN | ACK, seq=5000, ack=1001))
    assert out[0].flags == ACK and out[0].ack == 5001

Every emitted segment is also kept in ``d.sent``; events accumulate in
``d.events`` until read with ``d.take_events()``.
"""

from __future__ import annotations

from ..tcp import Connection, State, TcpConfig
from ..tcp.events import Event, StateChanged
from ..wire.tcp import (
    NOP,
    SACK_PERMITTED,
    MssOption,
    TcpOption,
    TcpSegment,
    TimestampOption,
    WindowScaleOption,
)

LOCAL = ("10.0.0.1", 40000)
REMOTE = ("10.0.0.2", 80)


class Driver:
    def __init__(self, conn: Connection, now: float = 0.0) -> None:
        self.conn = conn
        self.now = now
        self.sent: list[TcpSegment] = []
        self.events: list[Event] = []
        # With peer_ts set, seg() adds the peer's timestamps to every segment:
        # TSval = peer_ts + milliseconds of now, TSecr = the last TSval we sent.
        self.peer_ts: int | None = None
        self.last_tsval = 0

    # ---------------------------------------------------------------- factories
    @classmethod
    def client(
        cls, config: TcpConfig | None = None, *, iss: int = 1000, now: float = 0.0
    ) -> Driver:
        """A CLOSED connection from LOCAL to REMOTE with a fixed ISS."""
        return cls(Connection.client(LOCAL, REMOTE, config, iss=iss), now)

    @classmethod
    def server(
        cls, syn: TcpSegment, config: TcpConfig | None = None, *, iss: int = 1000, now: float = 0.0
    ) -> Driver:
        """A passive connection (LOCAL is the server) that just accepted ``syn``:
        SYN-RECEIVED, its SYN-ACK not yet flushed."""
        d = cls(Connection(LOCAL[0], LOCAL[1], REMOTE[0], REMOTE[1], config, iss=iss), now)
        d.conn.accept_syn(syn, now)
        d._collect()
        return d

    # ---------------------------------------------------------------- segments
    def seg(
        self,
        flags: int,
        seq: int,
        ack: int = 0,
        payload: bytes = b"",
        *,
        window: int = 65535,
        options: tuple[TcpOption, ...] = (),
        ts: tuple[int, int] | None = None,
    ) -> TcpSegment:
        """A segment from the peer (REMOTE) to the connection (LOCAL). ``ts``
        (TSval, TSecr) adds a timestamps option; so does ``peer_ts``, if set."""
        if ts is None and self.peer_ts is not None:
            ts = ((self.peer_ts + int(self.now * 1000 + 1e-6)) & 0xFFFFFFFF, self.last_tsval)
        if ts is not None:
            options = (NOP, NOP, TimestampOption(*ts), *options)
        return TcpSegment(
            self.conn.remote_port,
            self.conn.local_port,
            seq & 0xFFFFFFFF,
            ack & 0xFFFFFFFF,
            flags,
            window,
            payload,
            options,
        )

    @staticmethod
    def syn_options(
        mss: int | None = 1460,
        wscale: int | None = None,
        *,
        sack: bool = False,
        ts: tuple[int, int] | None = None,
    ) -> tuple[TcpOption, ...]:
        """A SYN's options: MSS, SACK-permitted, timestamps (TSval, TSecr), window
        scale, in Linux's order."""
        opts: list[TcpOption] = []
        if mss is not None:
            opts.append(MssOption(mss))
        if sack:
            opts.append(SACK_PERMITTED)
        if ts is not None:
            opts.append(TimestampOption(*ts))
        if wscale is not None:
            opts += (NOP, WindowScaleOption(wscale))
        return tuple(opts)

    # ---------------------------------------------------------------- actions
    def connect(self) -> list[TcpSegment]:
        self.conn.connect(self.now)
        return self.flush()

    def receive(self, *segs: TcpSegment) -> list[TcpSegment]:
        """Deliver segments at the current time; return what the connection sends."""
        for s in segs:
            self.conn.receive(s, self.now)
            self._collect()
        return self.flush()

    def flush(self) -> list[TcpSegment]:
        """What the connection sends now (after an API call)."""
        out = self.conn.segments_to_send(self.now)
        self.sent.extend(out)
        for s in out:
            ts = s.timestamp
            if ts is not None:
                self.last_tsval = ts.tsval
        self._collect()
        return out

    def advance(self, seconds: float) -> list[TcpSegment]:
        """Let time pass, firing each timer at its own deadline; return everything sent."""
        end = self.now + seconds
        out: list[TcpSegment] = []
        while True:
            dl = self.conn.next_deadline()
            if dl is None or dl > end:
                break
            self.now = max(self.now, dl)
            self.conn.handle_timer(self.now)
            out += self.flush()
        self.now = end
        out += self.flush()
        return out

    def advance_to_deadline(self) -> list[TcpSegment]:
        """Jump to the next timer deadline and fire it."""
        dl = self.conn.next_deadline()
        if dl is None:
            raise AssertionError("no timer armed")
        return self.advance(max(dl - self.now, 0.0))

    # ---------------------------------------------------------------- events
    def _collect(self) -> None:
        self.events.extend(self.conn.events())

    def take_events(self) -> list[Event]:
        self._collect()
        ev, self.events = self.events, []
        return ev

    def transitions(self) -> list[tuple[State, State, str]]:
        """(old, new, cause) of the StateChanged events pending (not consumed)."""
        self._collect()
        return [(e.old, e.new, e.cause) for e in self.events if isinstance(e, StateChanged)]


def brief(segs: list[TcpSegment]) -> list[tuple[int, int, int]]:
    """(flags, seq, ack) of each segment, for compact assertions."""
    return [(s.flags, s.seq, s.ack) for s in segs]


__all__ = ["LOCAL", "REMOTE", "Driver", "brief"]
