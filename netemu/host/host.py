"""One emulated host on a link: the only asyncio code of netemu.

It reads the link when its fd is readable (drain until EAGAIN, process the
batch, then flush every connection that has something to say), keeps one
``loop.call_at`` timer armed for the earliest TCP deadline, answers ARP and
ICMP echo itself (arp_icmp.py's ``ArpIcmp``, one of its bases), demultiplexes
TCP by 4-tuple, answers closed ports with RST, and records every frame, state
change and congestion event in a ``Trace``.
What a script running on it wants (ports it owns, segments to drop) the host asks
of ``script`` (netemu.host.script's ``ScriptHooks``), which the run layer implements.

Layer: netemu.host, on tcp, wire, trace and impair; never the run layer or the
formats above it (run, scenario, pkt).
"""

from __future__ import annotations

import asyncio
import contextlib
import heapq
import itertools
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from ..tcp import Connection, Listener, State, TcpConfig
from ..tcp.connection import reset_for
from ..tcp.events import CongestionChanged, StateChanged
from ..tcp.isn import IsnGenerator
from ..trace.record import CongestionRecord, StateRecord, Trace
from ..wire import (
    ICMP_ECHO_REQUEST,
    BadChecksum,
    IPv4Packet,
    IPv6Packet,
    MalformedPacket,
    TcpSegment,
    parse_frame,
)
from ..wire.frame import Frame, FrameHead, FrameHead6, build_tcp_frame, parse_tcp_frame
from .arp_icmp import ZERO_MAC, ArpIcmp, spoiled
from .errors import ConnectionRefused, HostError
from .loop import LoopReader, pipeline_deadlines

if TYPE_CHECKING:
    from ..impair import Impairment
    from .script import ScriptHooks
    from .stream import TcpListener, TcpStream

EPHEMERAL = range(40000, 60000)


@dataclass
class _Listening:
    listener: Listener
    backlog: int
    queue: asyncio.Queue = field(default_factory=asyncio.Queue)
    pending: int = 0  # connections handed out but not yet accepted


class Host(LoopReader, ArpIcmp):
    """An emulated host with its own TCP, on ``link`` (see netemu.link): IPv4 address
    ``ip`` and, with ``ip6``, an IPv6 address too (each connection in its peer's family)."""

    def __init__(
        self,
        link,
        ip: str,
        mac: str,
        *,
        config: TcpConfig | None = None,
        isn_secret: bytes | None = None,
        trace: Trace | None = None,
        name: str = "netemu",
        ephemeral: range | None = None,
        ip6: str | None = None,
    ) -> None:
        """``ephemeral``: the ports ``ephemeral_port`` hands out; by default the link's
        (a lab's link carries its slot's block, so live labs' 4-tuples differ:
        lab/registry.py ``Slot``), else 40000-59999."""
        super().__init__()
        self.link = link
        self.ip = ip
        self.ip6 = ip6
        self.mac = mac
        self.name = name
        self.config = config or TcpConfig()
        self.isn = IsnGenerator(isn_secret)
        self.trace = trace if trace is not None else Trace(emulator_ip=ip)
        self.arp_cache: dict[str, str] = {}
        self._arp_waiters: dict[str, list[asyncio.Future]] = {}
        self.conns: dict[tuple[str, int, int], Connection] = {}
        self.names: dict[Connection, str] = {}
        self.listeners: dict[int, _Listening] = {}
        # What a script running on this host wants of it (its raw ports, its drop rules);
        # None: no script, and the receive and send paths take their plain course.
        self.script: ScriptHooks | None = None
        # netem-style pipelines (netemu.impair) per direction; None: the frames pass.
        self.impair_out: Impairment | None = None
        self.impair_in: Impairment | None = None
        self.on_frame: list[Callable[[str, bytes, TcpSegment | None], None]] = []
        self._wakeups: dict[Connection, asyncio.Event] = {}
        self._any_change = asyncio.Event()  # wakes accept(): some connection moved
        self._accepted: set[Connection] = set()
        # Every event of each connection, and when it came: the host's record of what its
        # connections did (a TcpStream tells a reset from an EOF by it; a scenario's
        # expectations read it), kept where the events are taken from the connections.
        self.event_log: dict[Connection, list] = {}
        self.event_times: dict[Connection, list[float]] = {}  # when each of event_log's came
        self._dirty: set[Connection] = set()
        self._deadlines: list[tuple[float, int, Connection]] = []
        self._seq = itertools.count()
        self._ip_id = itertools.count(1)
        self._heads: dict[str, FrameHead | FrameHead6] = {}  # dst_ip -> its frames' L2+L3 heads
        self.ephemeral: range = ephemeral or getattr(link, "ephemeral", None) or EPHEMERAL
        # Record each frame at the time the kernel took it in (the link's rx_stamps,
        # which this host then pops): a scenario's host. A .pkt runner reads them itself.
        self.record_rx_stamps = False
        self._next_port = self.ephemeral.start
        self.stats = {"rx": 0, "tx": 0, "bad_checksum": 0, "malformed": 0, "rst_sent": 0}

    # ------------------------------------------------------------------ lifecycle
    def _add_readers(self, loop: asyncio.AbstractEventLoop) -> None:
        loop.add_reader(self.link.fileno(), self._on_readable)

    def _remove_readers(self, loop: asyncio.AbstractEventLoop) -> None:
        with contextlib.suppress(ValueError, OSError):
            loop.remove_reader(self.link.fileno())

    def close(self) -> None:
        """Stop reading and the timer; wake whoever waits on a connection."""
        super().close()
        for ev in self._wakeups.values():
            ev.set()

    def now(self) -> float:
        return time.monotonic()

    # ------------------------------------------------------------------ receive path
    def _on_readable(self) -> None:
        batch = self.link.recv_batch(256)
        if not batch:
            return
        now = self.now()
        stamps = getattr(self.link, "rx_stamps", None) if self.record_rx_stamps else None
        if stamps is None:
            self._take_in(batch, now)
            return
        # The link notes when the kernel received each frame (a scenario's link:
        # RawLink.enable_rx_timestamps). The trace records each frame at that time, so
        # frames read in one batch keep their order against the peer kernel's own events
        # (a state change between two of them); netemu's endpoint handles them now, and
        # its state changes are timed when they happen.
        since = self.trace.record_count()
        self._take_in(batch, now)
        # Every frame that arrives is recorded once, in order, as "in" (dropped, bad or
        # not), whatever else the batch made (our answers are "out").
        self.trace.retime_in(since, [stamps.pop(id(data), None) for data, _ in batch])

    def _take_in(self, batch: list[tuple[bytes, bool]], now: float) -> None:
        self.stats["rx"] += len(batch)
        imp = self.impair_in
        if imp is None:
            self._receive(batch, now)
            self._flush(now)
            return
        script = self.script
        for data, csum_not_ready in batch:
            # Impaired: the trace shows the frame as it arrived on the wire; our
            # stack sees it when (and as) the pipeline lets it through. A drop rule
            # takes its frame here, on arrival, so the trace records it as dropped (it
            # used to be recorded as arrived and dropped later, unmarked).
            if script is not None and self._rule_drops_in(script, data, csum_not_ready):
                self.trace.frame("in", data, "dropped", "drop rule", t=now)
                continue
            fate = imp.push(data, now)
            if fate.copies == 0:
                self.trace.frame("in", data, "dropped", fate.why, t=now)
            else:
                self.trace.frame("in", data, None, "corrupted" if fate.corrupted else None, t=now)
        due = imp.due(now)
        if due:
            self._receive([(data, False) for data in due], now, record=False, rules=False)
        self._flush(now)

    @staticmethod
    def _rule_drops_in(script: ScriptHooks, data: bytes, csum_not_ready: bool) -> bool:
        try:
            seg = parse_frame(data, verify=not csum_not_ready).tcp
        except (BadChecksum, MalformedPacket):
            return False
        return seg is not None and script.drops("in", seg) is not None

    def _receive(
        self, batch: list[tuple[bytes, bool]], now: float, record: bool = True, rules: bool = True
    ) -> None:
        """``rules``: apply the script's drop rules (False: the impaired path applied
        them when the frames arrived)."""
        if (self.script is not None and rules) or self.on_frame:
            for data, csum_not_ready in batch:
                self._receive_frame(data, csum_not_ready, now, record, rules)
        else:
            self._receive_plain(batch, now, record)

    def _receive_plain(
        self, batch: list[tuple[bytes, bool]], now: float, record: bool = True
    ) -> None:
        """``_receive_frame`` for a whole batch when no script or hook is set: a
        regular TCP frame is decoded without its Ethernet and IPv4 records
        (``parse_tcp_frame``), and a segment of a known connection goes straight to it."""
        trace_frame = self.trace.frame if record else None
        conns = self.conns
        dirty = self._dirty
        mine = (self.ip, self.ip6)
        closed = State.CLOSED
        for data, csum_not_ready in batch:
            got = parse_tcp_frame(data, not csum_not_ready)
            if got is None:  # ARP, ICMP, anything irregular, a bad checksum: counted there
                self._receive_frame(data, csum_not_ready, now, record)
                continue
            if trace_frame is not None:
                trace_frame("in", data, None, None, now)
            src, dst, seg = got
            if dst in mine:  # (TCP for another address: _dispatch would ignore it)
                conn = conns.get((src, seg.src_port, seg.dst_port))
                if conn is not None and conn.state is not closed:
                    conn.receive(seg, now)
                    dirty.add(conn)
                else:
                    self._on_tcp(src, seg, now)

    def _receive_frame(
        self, data: bytes, csum_not_ready: bool, now: float, record: bool = True, rules: bool = True
    ) -> None:
        trace = self.trace
        try:
            frame = parse_frame(data, verify=not csum_not_ready)
        except BadChecksum as e:
            self.stats["bad_checksum"] += 1
            if record:
                trace.frame("in", data, "bad-checksum", e.reason, t=now)
            return
        except MalformedPacket as e:
            self.stats["malformed"] += 1
            if record:
                trace.frame("in", data, "malformed", e.reason, t=now)
            return
        seg = frame.tcp
        script = self.script
        if seg is not None and rules and script is not None and script.drops("in", seg) is not None:
            if record:
                trace.frame("in", data, "dropped", t=now)
            return
        if record:
            trace.frame("in", data, t=now)
        for hook in self.on_frame:
            hook("in", data, seg)
        ip = frame.ip or frame.ip6
        if seg is not None and ip is not None and (ip.dst == self.ip or ip.dst == self.ip6):
            self._on_tcp(ip.src, seg, now)
        else:
            self._dispatch(frame)

    def _dispatch(self, frame: Frame) -> None:
        """A frame that is not TCP for us: ARP, ICMP echo, or nothing."""
        if frame.arp is not None:
            self._on_arp(frame.arp)
            return
        if frame.icmp6 is not None and frame.ip6 is not None and self.ip6 is not None:
            with contextlib.suppress(MalformedPacket):  # (a bad NDP option, a short target)
                self._on_icmp6(frame.eth.src, frame.ip6, frame.icmp6)
            return
        ip = frame.ip
        if ip is None or ip.dst != self.ip or frame.tcp is not None:
            return
        if frame.icmp is not None and frame.icmp.type == ICMP_ECHO_REQUEST:
            self._echo_reply(frame.eth.src, ip, frame.icmp)

    def _on_tcp(self, src_ip: str, seg: TcpSegment, now: float) -> None:
        key = (src_ip, seg.src_port, seg.dst_port)
        conn = self.conns.get(key)
        if conn is not None and conn.state is not State.CLOSED:
            conn.receive(seg, now)
            self._dirty.add(conn)
            return
        script = self.script
        if script is not None and script.owns_port(seg.dst_port):
            return
        lst = self.listeners.get(seg.dst_port)
        if lst is not None:
            if lst.pending >= lst.backlog and seg.flags & 0x02:
                return  # accept queue full: drop the SYN, as Linux does
            res = lst.listener.on_segment(
                seg, src_ip, now, self._config_for(src_ip, lst.listener.config)
            )
            if isinstance(res, Connection):
                res.local_ip = self._local_ip(src_ip)  # (the listener's is IPv4's)
                self._adopt(res, key, f"{seg.dst_port}<{src_ip}:{seg.src_port}")
                lst.pending += 1
                self._dirty.add(res)
                return
            if res is not None:
                self._send_segment(res, src_ip)
            return
        # RFC 9293 §3.10.7.1: no connection — answer with a reset.
        rst = reset_for(seg)
        if rst is not None:
            self.stats["rst_sent"] += 1
            self._send_segment(rst, src_ip)

    # ------------------------------------------------------------------ send path
    def _frame_for(self, seg: TcpSegment, dst_ip: str) -> bytes | None:
        """The frame for ``seg``: exactly ``build_tcp_frame(self.mac, <dst MAC>,
        IPv4Packet(self.ip, dst_ip, 6, identification=<next id>), seg)``, with the
        Ethernet and IPv4 headers from a per-destination ``FrameHead`` packed
        with the segment's."""
        mac = self.arp_cache.get(dst_ip)
        if mac is None:
            return None
        head = self._heads.get(dst_ip)
        if head is None or head.dst_mac != mac:
            src = self._local_ip(dst_ip)
            head = self._heads[dst_ip] = (FrameHead6 if ":" in dst_ip else FrameHead)(
                self.mac, mac, src, dst_ip
            )
        return seg.emit(self._local_ip(dst_ip), dst_ip, head, next(self._ip_id) & 0xFFFF)

    def _send_segment(self, seg: TcpSegment, dst_ip: str, mark: str | None = None) -> bool:
        frame = self._frame_for(seg, dst_ip)
        if frame is None:
            return False
        script = self.script
        if script is not None and script.drops("out", seg) is not None:
            self.trace.frame("out", frame, "dropped")
            return True
        self._transmit([frame], mark)
        return True

    # The inject* primitives put on the wire (or into our stack) a segment or frame no
    # connection of ours made: a script's, marked "injected" in the trace. They are the
    # host's jobs: only it frames a segment as its own (its ARP cache, its IPv4 ids),
    # owns the link and the trace, and takes a frame in through its receive path.
    def inject(self, seg: TcpSegment, dst_ip: str) -> bytes:
        """Send a hand-made segment (a scenario's ``inject``) as one of ours, past the
        impairments and the drop rules; returns its frame."""
        frame = self._frame_for(seg, dst_ip)
        if frame is None:
            raise HostError(f"no ARP entry for {dst_ip}: resolve it first")
        self._transmit([frame], "injected", spoiled(frame) if seg.checksum is not None else None)
        return frame

    def inject_inbound(self, seg: TcpSegment, src_ip: str) -> bytes:
        """Deliver a hand-made segment to our own stack as if ``src_ip`` sent it."""
        mac = self.arp_cache.get(src_ip, ZERO_MAC)
        me = self._local_ip(src_ip)
        ip = (
            IPv6Packet(src_ip, me, 6)
            if ":" in me
            else IPv4Packet(src_ip, me, 6, identification=next(self._ip_id) & 0xFFFF)
        )
        frame = build_tcp_frame(mac, self.mac, ip, seg)
        now = self.now()
        if seg.checksum is not None:  # set by hand (a scenario's bad_checksum): check it
            try:
                parse_frame(frame, verify=True)
            except BadChecksum:  # dropped unread, as one from the wire would be
                self.stats["bad_checksum"] += 1
                self.trace.frame("in", frame, "injected", "bad checksum: not delivered", t=now)
                return frame
        self.trace.frame("in", frame, "injected", t=now)
        self._on_tcp(src_ip, seg, now)
        self._flush(now)
        return frame

    def inject_frame(self, frame: bytes, note: str | None = None) -> None:
        """Send a frame made whole elsewhere (a .pkt script's, a scapy expression's, in
        any address) on our link, past the impairments, recorded as injected with
        ``note``. Nothing is parsed here: a .pkt script's packets go out on its
        schedule (``spoiled`` tells a caller with time to spare about a bad checksum)."""
        self._transmit([frame], "injected", note)

    def _transmit(
        self, frames: list[bytes], mark: str | None = None, note: str | None = None
    ) -> None:
        imp = self.impair_out
        if imp is not None and mark is None:
            t = self.now()
            for f in frames:
                fate = imp.push(f, t)
                if fate.copies == 0:
                    self.trace.frame("out", f, "dropped", fate.why, t=t)
            frames = imp.due(t)
            if imp.next_deadline() is not None:
                # Frames held (a delay, the rate): the timer must wake for them, whoever
                # sent them; an ARP request from resolve() has no _flush after it to arm
                # it (a 10 ms delay held the first SYN's ARP for the 1 s retry).
                self._arm_timer()
            if not frames:
                return
        self._wire_out(frames, mark, note)

    def _wire_out(
        self, frames: list[bytes], mark: str | None = None, note: str | None = None
    ) -> None:
        t = self.now()
        # What the link cannot take now (its send buffer or ring is full) is
        # dropped, as a full qdisc drops: TCP retransmits it. The trace says so.
        sent = self.link.send_batch(frames)
        n = len(frames)
        record = self.trace.frame_batch
        record("out", frames if sent == n else frames[:sent], mark, note, t=t)
        if sent < n:
            record("out", frames[sent:], "dropped", "the link's send buffer is full", t=t)
            self.stats["tx_dropped"] = self.stats.get("tx_dropped", 0) + n - sent
        self.stats["tx"] += sent
        for hook in self.on_frame:
            for f in frames:
                hook("out", f, None)

    def _flush(self, now: float) -> None:
        """Send what every touched connection has to say; report its events."""
        dirty, self._dirty = self._dirty, set()
        frames: list[bytes] = []
        trace = self.trace
        frame_for = self._frame_for
        script = self.script
        for conn in dirty:
            remote_ip = conn.remote_ip
            for seg in conn.segments_to_send(now):
                frame = frame_for(seg, remote_ip)
                if frame is None:
                    continue
                if script is not None and script.drops("out", seg) is not None:
                    trace.frame("out", frame, "dropped", t=now)
                    continue
                frames.append(frame)
            self._handle_events(conn, now)
            dl = conn.next_deadline()
            if dl is not None:
                heapq.heappush(self._deadlines, (dl, next(self._seq), conn))
        if frames:
            self._transmit(frames)
        self._arm_timer()

    def _handle_events(self, conn: Connection, now: float) -> None:
        # Wake whoever waits on this connection: an ACK that frees send buffer
        # space raises no event, but a blocked send() must look again.
        waiter = self._wakeups.get(conn)
        if waiter is not None:
            waiter.set()
        events = conn.events()
        if not events:
            return
        name = self.names.get(conn, "?")
        for ev in events:
            # (exact types: events are not subclassed)
            if type(ev) is StateChanged:
                self.trace.states.append(
                    StateRecord(
                        now,
                        name,
                        (conn.local_ip, conn.local_port),
                        (conn.remote_ip, conn.remote_port),
                        ev.old.value,
                        ev.new.value,
                        ev.cause,
                    )
                )
            elif type(ev) is CongestionChanged:
                self.trace.congestion.append(
                    CongestionRecord(
                        now,
                        name,
                        (conn.local_ip, conn.local_port),
                        (conn.remote_ip, conn.remote_port),
                        ev.cwnd,
                        ev.ssthresh,
                        ev.phase,
                        ev.cause,
                    )
                )
        self.event_log.setdefault(conn, []).extend(events)
        self.event_times.setdefault(conn, []).extend([now] * len(events))
        self._any_change.set()
        if conn.state is State.CLOSED:
            self._forget(conn)

    def _forget(self, conn: Connection) -> None:
        key = (conn.remote_ip, conn.remote_port, conn.local_port)
        if self.conns.get(key) is conn:
            del self.conns[key]
        lst = self.listeners.get(conn.local_port)
        if conn.passive and lst is not None and conn not in self._accepted:
            lst.pending = max(lst.pending - 1, 0)

    # ------------------------------------------------------------------ the one timer
    def _arm_timer(self) -> None:
        heap = self._deadlines
        # Drop stale entries: the connection's deadline moved since they were pushed.
        while heap:
            when, _, conn = heap[0]
            if conn.next_deadline() == when:
                break
            heapq.heappop(heap)
        if self._loop is None or self._closed:
            return
        if self.impair_out is None and self.impair_in is None:  # (no pipeline: the plain way)
            if heap:
                self._timer.arm(self._loop, heap[0][0])
            return
        times = pipeline_deadlines(self.impair_out, self.impair_in)
        if heap:
            times.append(heap[0][0])
        if times:
            self._timer.arm(self._loop, min(times))

    def _on_timer(self) -> None:
        now = self.now()
        heap = self._deadlines
        while heap and heap[0][0] <= now:
            _, _, conn = heapq.heappop(heap)
            dl = conn.next_deadline()
            if dl is not None and dl <= now:
                conn.handle_timer(now)
                self._dirty.add(conn)
            elif dl is not None:
                heapq.heappush(heap, (dl, next(self._seq), conn))
        if self.impair_in is not None:
            for data in self.impair_in.due(now):
                self._receive_frame(data, False, now, record=False)
        if self.impair_out is not None:
            frames = self.impair_out.due(now)
            if frames:
                self._wire_out(frames)
        self._flush(now)

    # ------------------------------------------------------------------ user API
    def _adopt(self, conn: Connection, key: tuple[str, int, int], name: str) -> None:
        self.conns[key] = conn
        self.names[conn] = name
        self._wakeups[conn] = asyncio.Event()

    def rename(self, conn: Connection, name: str) -> None:
        """Call ``conn`` ``name`` from now on, and in what the trace holds of it already
        (its state and congestion records): a connection a listener made is named
        when it is accepted, after its handshake."""
        old = self.names.get(conn)
        self.names[conn] = name
        if old is None or old == name:
            return
        local, remote = (conn.local_ip, conn.local_port), (conn.remote_ip, conn.remote_port)
        records: list[StateRecord | CongestionRecord] = [*self.trace.states, *self.trace.congestion]
        for rec in records:
            if rec.conn == old and tuple(rec.local) == local and tuple(rec.remote) == remote:
                rec.conn = name

    def touch(self, conn: Connection) -> None:
        """After a user call on ``conn``: send what it now has to say."""
        self._dirty.add(conn)
        self._flush(self.now())

    def ephemeral_port(self, remote_ip: str, remote_port: int) -> int:
        eph = self.ephemeral
        for _ in range(len(eph)):
            port = self._next_port
            self._next_port = port + 1 if port + 1 < eph.stop else eph.start
            if (remote_ip, remote_port, port) not in self.conns and port not in self.listeners:
                return port
        raise HostError("no free ephemeral port")

    async def open(
        self,
        remote_ip: str,
        remote_port: int,
        *,
        local_port: int | None = None,
        config: TcpConfig | None = None,
        name: str | None = None,
        wait: bool = True,
        timeout: float | None = None,
    ) -> Connection:
        """Active open. With ``wait``, returns once ESTABLISHED (or raises)."""
        await self.resolve(remote_ip)
        port = local_port or self.ephemeral_port(remote_ip, remote_port)
        conn = Connection(
            self._local_ip(remote_ip),
            port,
            remote_ip,
            remote_port,
            self._config_for(remote_ip, config or self.config),
            isn_generator=self.isn,
        )
        self._adopt(
            conn, (remote_ip, remote_port, port), name or f"{port}>{remote_ip}:{remote_port}"
        )
        conn.connect(self.now())
        self.touch(conn)
        if wait:
            await self.wait_for(
                conn,
                lambda c: c.state is not State.SYN_SENT and c.state is not State.SYN_RECEIVED,
                timeout,
            )
            if conn.state is State.CLOSED:
                raise ConnectionRefused(f"connection to {remote_ip}:{remote_port} failed")
        return conn

    def listen_port(
        self, port: int, *, backlog: int = 128, config: TcpConfig | None = None
    ) -> None:
        if port in self.listeners:
            raise HostError(f"port {port} is already listening")
        self.listeners[port] = _Listening(
            Listener(self.ip, port, config or self.config, self.isn), backlog
        )

    def unlisten(self, port: int) -> None:
        self.listeners.pop(port, None)

    async def accept_connection(self, port: int, timeout: float | None = None) -> Connection:
        """The next connection on ``port`` to reach ESTABLISHED (or beyond)."""
        lst = self.listeners.get(port)
        if lst is None:
            raise HostError(f"port {port} is not listening")
        accepted = self._accepted

        def ready() -> Connection | None:
            for conn in list(self.conns.values()):
                if (
                    conn.local_port == port
                    and conn.passive
                    and conn not in accepted
                    and conn.state not in (State.SYN_RECEIVED, State.CLOSED)
                ):
                    return conn
            return None

        loop = asyncio.get_running_loop()
        end = None if timeout is None else loop.time() + timeout
        while True:
            conn = ready()
            if conn is not None:
                accepted.add(conn)
                lst.pending = max(lst.pending - 1, 0)
                return conn
            ev = self._any_change
            ev.clear()
            remaining = None if end is None else end - loop.time()
            if remaining is not None and remaining <= 0:
                raise TimeoutError(f"no connection on port {port}")
            try:
                await asyncio.wait_for(ev.wait(), remaining)
            except TimeoutError:
                raise TimeoutError(f"no connection on port {port}") from None

    async def wait_for(
        self, conn: Connection, cond: Callable[[Connection], bool], timeout: float | None = None
    ) -> None:
        """Wait until ``cond(conn)`` holds; TimeoutError after ``timeout`` seconds."""
        ev = self._wakeups[conn]
        loop = asyncio.get_running_loop()
        end = None if timeout is None else loop.time() + timeout
        while not cond(conn):
            if self._closed:
                raise HostError("host closed")
            ev.clear()
            remaining = None if end is None else end - loop.time()
            if remaining is not None and remaining <= 0:
                raise TimeoutError(
                    f"timed out waiting on {self.names.get(conn)} (state {conn.state})"
                )
            try:
                await asyncio.wait_for(ev.wait(), remaining)
            except TimeoutError:
                if not cond(conn):
                    raise TimeoutError(
                        f"timed out waiting on {self.names.get(conn)} (state {conn.state})"
                    ) from None

    # ------------------------------------------------------------------ streams
    async def connect(
        self, remote_ip: str, remote_port: int, *, timeout: float | None = 10.0, **kw
    ) -> TcpStream:
        """Active open; an anyio-style byte stream once ESTABLISHED."""
        from .stream import TcpStream

        conn = await self.open(remote_ip, remote_port, timeout=timeout, **kw)
        return TcpStream(self, conn)

    async def listen(
        self, port: int, *, backlog: int = 128, config: TcpConfig | None = None
    ) -> TcpListener:
        from .stream import TcpListener

        self.listen_port(port, backlog=backlog, config=config)
        return TcpListener(self, port)
