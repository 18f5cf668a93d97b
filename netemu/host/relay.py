"""Relay mode: netemu stands between two real peers at layer 2.

Two labs each give a kernel peer a veth whose other end is in an emulator
namespace; a ``Relay`` holds an unfiltered ``RawLink`` on each emulator end and
bridges them: every frame read from ``client_link`` is sent on ``server_link``
and vice versa (ARP, and in IPv6 labs neighbour discovery, included, so the peers
resolve each other through the bridge). On the way, each direction has

  1. scripted faults: the drop rules of the script on it (``script``, the
     ``ScriptHooks`` of netemu.host.script, as on ``Host``), applied first;
  2. a netem-style ``Impairment`` pipeline (``impair_out`` client → server,
     ``impair_in`` server → client), on one ``loop.call_at`` timer armed for the
     earliest pipeline deadline.

Every frame is recorded in ``trace`` once, when it reaches the relay (the
sender's side of the bridge): direction ``"out"`` = client → server, ``"in"`` =
server → client; a frame kept off the other wire is marked ``"dropped"`` with
the reason as its note ("drop rule: …", "loss", …), a corrupted one is noted.
The attribute names match ``Host``'s where the scenario runner uses them
(``trace``, ``script``, ``impair_out``, ``impair_in``, ``start``, ``close``).
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections import deque
from collections.abc import Callable
from typing import Any

from ..impair import Impairment
from ..trace.record import Trace
from ..wire import MalformedPacket, TcpSegment, parse_frame
from .loop import LoopReader, pipeline_deadlines
from .script import Direction, ScriptHooks

OUT: Direction = "out"
IN: Direction = "in"
# The addresses of relay mode's labs: the client peer, the server peer, and netemu's
# (each lab's emulator side; the bridge itself has no address); and in IPv6 labs the
# peers' IPv6 ones too (the lab's range, netemu.lab.netns.LAB_NET6: the client has an
# endpoint lab's peer address, the server the next one).
CLIENT_IP, SERVER_IP, EMU_IP = "198.18.0.2", "198.18.0.3", "198.18.0.1"
CLIENT_IP6, SERVER_IP6 = "2001:2::2", "2001:2::3"


class _Side:
    """One bridge port: the link frames arrive on, and what waits to leave on it."""

    def __init__(self, link: Any) -> None:
        self.link = link
        self.backlog: deque[bytes] = deque()  # frames the socket buffer refused (EAGAIN)
        self.writer = False


class Relay(LoopReader):
    """A transparent, impairing, recording bridge between two links (see module doc)."""

    def __init__(
        self,
        client_link: Any,
        server_link: Any,
        *,
        trace: Trace | None = None,
        client_ip: str = "",
        server_ip: str = "",
        impair_out: Impairment | None = None,
        impair_in: Impairment | None = None,
    ) -> None:
        super().__init__()
        self.client = _Side(client_link)
        self.server = _Side(server_link)
        self.client_ip, self.server_ip = client_ip, server_ip
        # The ladder puts the trace's "emulator" on the left: here, the client.
        self.trace = trace if trace is not None else Trace(emulator_ip=client_ip, peer_ip=server_ip)
        self.script: ScriptHooks | None = None
        self.impair_out = impair_out  # client -> server
        self.impair_in = impair_in  # server -> client
        self.on_frame: list[Callable[[str, bytes, TcpSegment | None], None]] = []
        self.stats = {"out": 0, "in": 0, "dropped": 0, "relayed": 0, "tx_backlog": 0}

    # ------------------------------------------------------------------ lifecycle
    def _add_readers(self, loop: asyncio.AbstractEventLoop) -> None:
        loop.add_reader(self.client.link.fileno(), self._on_readable, OUT)
        loop.add_reader(self.server.link.fileno(), self._on_readable, IN)

    def _remove_readers(self, loop: asyncio.AbstractEventLoop) -> None:
        for side in (self.client, self.server):
            with contextlib.suppress(ValueError, OSError):
                loop.remove_reader(side.link.fileno())
            if side.writer:
                with contextlib.suppress(ValueError, OSError):
                    loop.remove_writer(side.link.fileno())

    def now(self) -> float:
        return time.monotonic()

    # ------------------------------------------------------------------ the bridge
    def _on_readable(self, direction: Direction) -> None:
        if self._closed:
            return
        src = self.client if direction == OUT else self.server
        batch = src.link.recv_batch(256)
        if not batch:
            return
        now = self.now()
        imp = self.impair_out if direction == OUT else self.impair_in
        trace = self.trace
        script = self.script
        passed: list[bytes] = []
        for data, _csum_not_ready in batch:
            self.stats[direction] += 1
            seg = None
            if script is not None or self.on_frame:
                try:
                    seg = parse_frame(data, verify=False).tcp
                except MalformedPacket:
                    seg = None
            for hook in self.on_frame:
                hook(direction, data, seg)
            if seg is not None and script is not None:
                rule = script.drops(direction, seg)
                if rule is not None:
                    self.stats["dropped"] += 1
                    trace.frame(
                        direction,
                        data,
                        "dropped",
                        f"drop rule: {rule.description}" if rule.description else "drop rule",
                        t=now,
                    )
                    continue
            if imp is None:
                trace.frame(direction, data, t=now)
                passed.append(data)
                continue
            fate = imp.push(data, now)
            if fate.copies == 0:
                self.stats["dropped"] += 1
                trace.frame(direction, data, "dropped", fate.why, t=now)
            else:
                trace.frame(direction, data, None, "corrupted" if fate.corrupted else None, t=now)
        if imp is not None:
            passed.extend(imp.due(now))
        if passed:
            self._send(direction, passed)
        self._arm_timer()

    def _send(self, direction: Direction, frames: list[bytes]) -> None:
        dst = self.server if direction == OUT else self.client
        self.stats["relayed"] += len(frames)
        if dst.backlog:  # keep the order: behind what is already waiting
            dst.backlog.extend(frames)
            return
        n = dst.link.send_batch(frames)
        if n < len(frames):
            dst.backlog.extend(frames[n:])
            self.stats["tx_backlog"] += len(frames) - n
            self._want_writable(dst)

    def _want_writable(self, side: _Side) -> None:
        if side.writer or self._loop is None or self._closed:
            return
        side.writer = True
        self._loop.add_writer(side.link.fileno(), self._on_writable, side)

    def _on_writable(self, side: _Side) -> None:
        if self._closed:
            return
        frames = list(side.backlog)
        n = side.link.send_batch(frames)
        for _ in range(n):
            side.backlog.popleft()
        if not side.backlog and self._loop is not None:
            side.writer = False
            self._loop.remove_writer(side.link.fileno())

    # ------------------------------------------------------------------ the one timer
    def _arm_timer(self) -> None:
        if self._loop is None or self._closed:
            return
        times = pipeline_deadlines(self.impair_out, self.impair_in)
        if times:
            self._timer.arm(self._loop, min(times))

    def _on_timer(self) -> None:
        if self._closed:  # a callback already due when close() ran (Ctrl-C): the links
            return  # may be gone (EBADF was printed as a traceback)
        now = self.now()
        for direction, imp in ((OUT, self.impair_out), (IN, self.impair_in)):
            if imp is not None:
                frames = imp.due(now)
                if frames:
                    self._send(direction, frames)
        self._arm_timer()

    def describe(self) -> dict[str, Any]:
        """Its addresses and counts (the drop rules are the script's: netemu.run.relay)."""
        return {"client_ip": self.client_ip, "server_ip": self.server_ip, **self.stats}
