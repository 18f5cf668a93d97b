"""An in-memory network between two TCP endpoints, on virtual time."""

from __future__ import annotations

import heapq
import random
from collections.abc import Callable
from dataclasses import dataclass, field

from ..tcp import Connection, Listener, TcpConfig
from ..tcp.connection import reset_for
from ..tcp.state import State
from ..wire.checksum import pseudo_header_sum
from ..wire.tcp import TcpSegment

_CLOSED = State.CLOSED


class VirtualClock:
    def __init__(self, start: float = 0.0) -> None:
        self.now = start


@dataclass
class MemLink:
    """One direction of the wire. Probabilities are per segment; delay is fixed
    plus uniform jitter; a reordered segment is held back by ``reorder_delay``."""

    src_ip: str = "198.18.0.1"
    dst_ip: str = "198.18.0.2"
    loss: float = 0.0
    duplicate: float = 0.0
    reorder: float = 0.0
    delay: float = 0.001
    jitter: float = 0.0
    reorder_delay: float = 0.003
    encode: bool = False  # emit to bytes and parse back through netemu.wire
    drop: Callable[[TcpSegment], bool] | None = None  # scripted drops
    rng: random.Random = field(default_factory=lambda: random.Random(0))
    sent: int = 0
    lost: int = 0
    log: list[tuple[float, TcpSegment]] | None = None
    _queue: list[tuple[float, int, TcpSegment]] = field(default_factory=list)
    _counter: int = 0
    _psum: int | None = None

    def send(self, seg: TcpSegment, now: float) -> None:
        self.sent += 1
        if self.log is not None:
            self.log.append((now, seg))
        if self.encode:
            raw = seg.emit(self.src_ip, self.dst_ip)
            # The pseudo-header's word sum is linear in the length.
            psum = self._psum
            if psum is None:
                psum = self._psum = pseudo_header_sum(self.src_ip, self.dst_ip, 6, 0)
            seg = TcpSegment.parse(raw, psum + len(raw))
        if self.drop is not None and self.drop(seg):
            self.lost += 1
            return
        rng = self.rng
        if self.loss and rng.random() < self.loss:
            self.lost += 1
            return
        if not (self.duplicate or self.jitter or self.reorder):
            self._counter += 1  # the plain case: one copy, fixed delay
            heapq.heappush(self._queue, (now + self.delay, self._counter, seg))
            return
        copies = 2 if self.duplicate and rng.random() < self.duplicate else 1
        for _ in range(copies):
            at = now + self.delay + (rng.random() * self.jitter if self.jitter else 0.0)
            if self.reorder and rng.random() < self.reorder:
                at += self.reorder_delay
            self._counter += 1
            heapq.heappush(self._queue, (at, self._counter, seg))

    def next_time(self) -> float | None:
        return self._queue[0][0] if self._queue else None

    def due(self, now: float) -> list[TcpSegment]:
        out = []
        q = self._queue
        while q and q[0][0] <= now:
            out.append(heapq.heappop(q)[2])
        return out


class MemNetwork:
    """Endpoint ``a`` (a Connection) and ``b`` (a Connection, or a Listener whose
    first accepted connection replaces it), pumped on a virtual clock."""

    def __init__(
        self,
        a: Connection,
        b: Connection | Listener,
        *,
        ab: MemLink | None = None,
        ba: MemLink | None = None,
        clock: VirtualClock | None = None,
    ) -> None:
        self.a = a
        self.b: Connection | Listener = b
        self.clock = clock or VirtualClock()
        self.ab = ab or MemLink(src_ip=a.local_ip, dst_ip=a.remote_ip)
        self.ba = ba or MemLink(src_ip=a.remote_ip, dst_ip=a.local_ip)
        self.resets_from_closed: list[TcpSegment] = []

    @property
    def now(self) -> float:
        return self.clock.now

    def _deliver(self, seg: TcpSegment, to_b: bool, now: float) -> None:
        if to_b:
            if isinstance(self.b, Listener):
                res = self.b.on_segment(seg, self.a.local_ip, now)
                if isinstance(res, Connection):
                    self.b = res
                elif res is not None:
                    self.ba.send(res, now)
                return
            dest = self.b
        else:
            dest = self.a
        if dest.state is State.CLOSED:
            # RFC 9293 §3.10.7.1: the host answers for connections that do not exist.
            rst = reset_for(seg)
            if rst is not None:
                self.resets_from_closed.append(rst)
                (self.ab if dest is self.a else self.ba).send(rst, now)
            return
        dest.receive(seg, now)

    def settle(self) -> int:
        """Run everything due at the current instant; returns segments moved."""
        now = self.clock.now
        moved = 0
        for _ in range(10_000):
            progress = 0
            for conn, link in ((self.a, self.ab), (self.b, self.ba)):
                if not isinstance(conn, Connection):
                    continue
                dl = conn.next_deadline()
                if dl is not None and dl <= now:
                    conn.handle_timer(now)
                out = conn.segments_to_send(now)
                if out:
                    send = link.send
                    for seg in out:
                        send(seg, now)
                    progress += len(out)
            for to_b, link in ((True, self.ab), (False, self.ba)):
                segs = link.due(now)
                if not segs:
                    continue
                progress += len(segs)
                for seg in segs:
                    dest = self.b if to_b else self.a
                    if not isinstance(dest, Listener) and dest.state is not _CLOSED:
                        dest.receive(seg, now)
                    else:
                        self._deliver(seg, to_b, now)
            moved += progress
            if not progress:
                return moved
        raise RuntimeError("the network did not settle (a segment storm?)")

    def next_event(self) -> float | None:
        times = [t for t in (self.ab.next_time(), self.ba.next_time()) if t is not None]
        for conn in (self.a, self.b):
            if isinstance(conn, Connection):
                dl = conn.next_deadline()
                if dl is not None:
                    times.append(dl)
        return min(times) if times else None

    def run(
        self,
        until: Callable[[], bool] | None = None,
        *,
        max_time: float = 600.0,
        app: Callable[[MemNetwork], None] | None = None,
        app_every: float | None = None,
    ) -> bool:
        """Pump until ``until()`` holds (True) or nothing is left to happen / max_time
        passes (False). ``app`` runs after each instant (reads, writes); with
        ``app_every`` it is also woken at that period."""
        deadline = self.clock.now + max_time
        next_app = self.clock.now + app_every if app_every else None
        while True:
            self.settle()
            if app is not None:
                app(self)
                self.settle()
            if until is not None and until():
                return True
            t = self.next_event()
            if next_app is not None and (t is None or next_app < t):
                t = next_app
            if t is None or t > deadline:
                return until is None
            self.clock.now = max(t, self.clock.now)
            if next_app is not None and self.clock.now >= next_app:
                next_app = self.clock.now + app_every  # type: ignore[operator]

    def advance(self, seconds: float) -> None:
        """Let ``seconds`` of virtual time pass, processing everything in it."""
        end = self.clock.now + seconds
        while True:
            self.settle()
            t = self.next_event()
            if t is None or t > end:
                self.clock.now = end
                self.settle()
                return
            self.clock.now = max(t, self.clock.now)


def established_pair(
    config_a: TcpConfig | None = None,
    config_b: TcpConfig | None = None,
    *,
    iss_a: int = 1000,
    iss_b: int = 5000,
    ab: MemLink | None = None,
    ba: MemLink | None = None,
) -> MemNetwork:
    """Two connections (a: 198.18.0.1:40000 client, b: 198.18.0.2:80 server) in
    ESTABLISHED, after a real three-way handshake on the in-memory wire."""
    a = Connection.client(("198.18.0.1", 40000), ("198.18.0.2", 80), config_a, iss=iss_a)
    b = Connection("198.18.0.2", 80, "198.18.0.1", 40000, config_b, iss=iss_b)
    net = MemNetwork(a, Listener("198.18.0.2", 80, config_b), ab=ab, ba=ba)
    net.b = _FixedIssListener(b, config_b)
    a.connect(net.now)
    ok = net.run(
        lambda: (
            a.state is State.ESTABLISHED
            and isinstance(net.b, Connection)
            and net.b.state is State.ESTABLISHED
        ),
        max_time=30,
    )
    server = net.b
    if not ok or not isinstance(server, Connection):
        raise RuntimeError(f"handshake did not complete: a={a.state}, b={server}")
    a.events()
    server.events()
    return net


class _FixedIssListener(Listener):
    """A listener whose one connection has a chosen ISS (readable tests)."""

    def __init__(self, conn: Connection, config: TcpConfig | None) -> None:
        super().__init__(conn.local_ip, conn.local_port, config)
        self._conn = conn

    def on_segment(
        self, seg: TcpSegment, remote_ip: str, now: float, config: TcpConfig | None = None
    ) -> Connection | TcpSegment | None:
        from ..wire.tcp import ACK, RST, SYN

        if seg.flags & SYN and not seg.flags & (ACK | RST):
            self._conn.accept_syn(seg, now)
            return self._conn
        return super().on_segment(seg, remote_ip, now, config)
