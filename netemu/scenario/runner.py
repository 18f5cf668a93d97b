"""Run a loaded scenario's steps on a live lab: each step's action (``_do_<action>``),
in the order and with the verdicts of netemu.run.steps' loop; expectations checked
against the live trace. The run around it (lab, host, run directory) is session.py's.

The runner turns steps into calls on host / lab / peers, and expectations into
waits on the trace and on the public state of connections; it never reaches
into TCP internals beyond ``Connection``'s public attributes. Layer: netemu.scenario,
on netemu.run.
"""

from __future__ import annotations

import asyncio
import random
import time
from typing import TYPE_CHECKING, Any

from ..host import DropRule, Host, TcpStream
from ..host.host import ZERO_MAC, spoiled
from ..run.hooks import Hooks
from ..run.peerview import PeerView, SockView, matching, peer_record, states_of
from ..run.result import OnStep, StepFailed, StepResult
from ..run.steps import StepLoop
from ..tcp import Connection, State
from ..tcp.events import Closed, Connected, ConnectionReset, PeerClosed, TimedOut
from ..wire import TcpSegment
from . import schema as S
from .agents import Agents
from .conns import ConnCtx, checksums_good, segment_of, step_text
from .match import Isns, describe, mismatch
from .peer_steps import injected_segment, peer_connect, peer_listen, sock_step

if TYPE_CHECKING:
    from ..lab.core import Lab


class Runner(StepLoop[S.StepBase]):
    def __init__(
        self, scenario: S.Scenario, *, lab: Lab, host: Host, on_step: OnStep | None = None
    ) -> None:
        self.sc = scenario
        self.lab = lab
        self.host = host
        self.trace = host.trace
        self.on_step = on_step
        self.rng = random.Random(scenario.seed)
        self.ctx: dict[str, ConnCtx] = {}
        for name, spec in scenario.connections.items():
            self.ctx[name] = ConnCtx(
                name, raw=spec.raw, local_port=spec.local_port, peer_port=spec.port
            )
        kernel = [name for name, peer in scenario.peers.items() if peer.kind == "kernel"]
        self.agents = Agents(dict.fromkeys(kernel, lab))  # (relay: a lab per peer)
        self.peer_listeners: dict[int, int] = {}  # port -> agent listening socket
        self.results: list[StepResult] = []
        self.step_starts: list[float] = []  # when each step began (time.monotonic())
        # The segments of no connection of the scenario's (a program that connects by
        # itself): one cursor for them, so that no segment meets two expectations.
        self._any = ConnCtx("*")
        self.peers: PeerView | None = None
        # The raw ports and drop rules of the run, on the host from the first raw
        # connection or drop step on (until then, its plain receive and send paths).
        self.hooks: Hooks | None = None

    # ------------------------------------------------------------------ set-up
    async def start_peers(self) -> None:
        lab = self.lab
        # The kernel's account of the peer's sockets begins before any peer does.
        fixed = [c.local_port for c in self.ctx.values() if c.local_port]
        fixed += [
            port for st in self.sc.steps if isinstance(port := getattr(st, "local_port", None), int)
        ]
        # the agents the steps use, started on threads now: ready by the first step
        self.agents.prestart(self.sc.steps, default=self.agents.only())
        self.peers = PeerView(
            {"peer": lab}, self.trace, peer_record(self.trace), fixed_ports=fixed
        ).start()
        for name, peer in self.sc.peers.items():
            if peer.kind in ("go-hello", "go-echo"):
                program = peer.kind.split("-", 1)[1]
                args: list[str] = [] if peer.port is None else ["-addr", f":{peer.port}"]
                await asyncio.to_thread(lab.start_go, program, *args, name=name)
            elif peer.kind == "command":
                env = {"NETEMU_FAMILY": self.sc.family, **peer.env}  # (its addresses: lab.env)
                proc = lab.spawn(list(peer.command or []), env=env, name=name)
                if peer.port is not None:  # a server: its first connect must find it up
                    await lab.wait_listening_async(peer.port, proc=proc)
        for ctx in self.ctx.values():
            if ctx.raw:
                peer_ip = self._ends(ctx)[1]
                if ctx.local_port is None:
                    ctx.local_port = self.host.ephemeral_port(peer_ip, ctx.peer_port or 0)
                self._hooks().claim(ctx.local_port)
                ctx.isns.ours = self.rng.getrandbits(32)
                await self.host.resolve(peer_ip)

    def _ends(self, ctx: ConnCtx) -> tuple[str, str]:
        """(netemu's, the peer's) addresses on ``ctx``'s connection, in its family."""
        if self.sc.family_of(ctx.name) == "ipv6":
            assert self.host.ip6 is not None and self.lab.peer_ip6 is not None
            return self.host.ip6, self.lab.peer_ip6
        return self.host.ip, self.lab.peer_ip

    def _hooks(self) -> Hooks:
        if self.hooks is None:
            self.hooks = Hooks().attach(self.host)
        return self.hooks

    async def stop(self) -> None:
        await self.agents.settle()
        if self.peers is not None:
            await asyncio.to_thread(self.peers.stop)

    # ------------------------------------------------------------------ the run
    async def run(self) -> bool:
        ok = await self.run_steps(self.sc.steps)
        if not ok:
            self.skip_rest(self.sc.steps)
        return ok

    def new_result(self, index: int, step: S.StepBase, status: str = "pending") -> StepResult:
        return StepResult(index, step.line, step.ACTION, step_text(step), status)

    def begin(self, res: StepResult, step: S.StepBase) -> None:
        note = f" — {step.note}" if step.note else ""  # the step's own note: the ladder's
        self.note(f"step {res.index}: {res.text}{note}", "step")
        self.step_starts.append(time.monotonic())

    async def act(self, step: S.StepBase, res: StepResult) -> bool:
        try:
            # A handler may say something about its pass: res.message, and a note.
            detail = await self._run_step(step)
        except TimeoutError as e:
            raise StepFailed(f"timed out: {e}" if str(e) else "timed out") from None
        if detail:
            res.message = detail
            self.note(f"step {res.index}: {detail}", "pass")
        return False

    def fail_text(self, res: StepResult) -> str:
        return f"step {res.index} failed: {res.message}"

    def failure(self) -> str | None:
        """The run's error as report.json writes it: its first failed step, or None."""
        failed = [r for r in self.results if r.status == "fail"]
        if not failed:
            return None
        f = failed[0]
        return f"step {f.index} (line {f.line}) {f.action}: {f.message}"

    def _timeout(self, value: float | None) -> float:
        return float(value) if value is not None else float(self.sc.timeout)

    def _ctx(self, name: str | None) -> ConnCtx:
        name = name or self.sc.default_conn()
        ctx = self.ctx.get(name)
        if ctx is None:
            ctx = self.ctx[name] = ConnCtx(name)
        return ctx

    def _stream(self, name: str | None) -> tuple[ConnCtx, TcpStream]:
        ctx = self._ctx(name)
        if ctx.stream is None:
            raise StepFailed(f"connection '{ctx.name}' is not open")
        return ctx, ctx.stream

    async def _run_step(self, step: S.StepBase) -> str | None:
        """Run one step; what its handler says about its pass (None: nothing)."""
        handler = getattr(self, f"_do_{step.ACTION}")
        return await handler(step)

    def _earlier(self, t: float, t0: float) -> str:
        """How long before this step (which began at ``t0``) time ``t`` was, and during
        which step: "0.012 s before this step began (during step 4)"."""
        during = sum(1 for start in self.step_starts if start <= t)
        where = f"during step {during}" if during else "before the first step"
        return f"{t0 - t:.3f} s before this step began ({where})"

    # ------------------------------------------------------------------ acts
    async def _do_connect(self, step: S.Connect) -> None:
        ctx = self._ctx(step.conn)
        cfg = self.sc.config_for(ctx.name, step.options)
        # The step's local_port, else the connection's (`connections: {d: {local_port:
        # 40000}}`): a port the scenario names is the one used, never an ephemeral one.
        assert step.port is not None  # the loader fills it in (the connection's, a server's)
        spec = self.sc.connections.get(ctx.name)
        local_port = (
            step.local_port
            if step.local_port is not None
            else (spec.local_port if spec is not None else None)
        )
        conn = await self.host.open(
            self._ends(ctx)[1],
            step.port,
            local_port=local_port,
            config=cfg,
            name=ctx.name,
            wait=False,
        )
        ctx.conn, ctx.stream = conn, TcpStream(self.host, conn)
        ctx.local_port, ctx.peer_port = conn.local_port, conn.remote_port
        ctx.learn_isns(self.trace)
        if step.wait:
            await self.host.wait_for(
                conn,
                lambda c: c.state not in (State.SYN_SENT, State.SYN_RECEIVED),
                self._timeout(step.timeout),
            )
            if conn.state is State.CLOSED:
                raise StepFailed(f"connect to port {step.port} failed: {self._events_text(conn)}")
        ctx.learn_isns(self.trace)

    async def _do_listen(self, step: S.Listen) -> None:
        cfg = self.sc.config_for(None, step.options)
        self.host.listen_port(step.port, backlog=step.backlog, config=cfg)

    async def _do_accept(self, step: S.Accept) -> None:
        ctx = self._ctx(step.conn)
        port = step.port if step.port is not None else next(iter(self.host.listeners))
        conn = await self.host.accept_connection(port, self._timeout(step.timeout))
        self.host.rename(conn, ctx.name)  # its records from the handshake on, too
        ctx.conn, ctx.stream = conn, TcpStream(self.host, conn)
        ctx.local_port, ctx.peer_port = conn.local_port, conn.remote_port
        ctx.learn_isns(self.trace)

    async def _do_send(self, step: S.Send) -> None:
        _, stream = self._stream(step.conn)
        await asyncio.wait_for(stream.send(step.payload() or b""), self._timeout(step.timeout))

    async def _read(self, stream: TcpStream, n: int | None, timeout: float) -> bytes:
        import anyio

        buf = bytearray()

        async def go() -> None:
            try:
                while n is None or len(buf) < n:
                    buf.extend(await stream.receive(65536 if n is None else n - len(buf)))
            except anyio.EndOfStream:
                pass

        try:
            await asyncio.wait_for(go(), timeout)
        except TimeoutError:
            raise StepFailed(
                f"received {len(buf)} bytes {bytes(buf[:60])!r}"
                + (f", wanted {n}" if n is not None else ", no EOF")
                + f" within {timeout:g} s"
            ) from None
        return bytes(buf)

    async def _do_recv(self, step: S.Recv) -> None:
        _, stream = self._stream(step.conn)
        want = step.payload()
        got = await self._read(
            stream, None if step.until_eof else len(want or b""), self._timeout(step.timeout)
        )
        if want is not None and step.data is not None and got != want:
            raise StepFailed(f"received {got!r}, expected {want!r}")
        if want is not None and step.hex is not None and got != want:
            raise StepFailed(f"received {got.hex()}, expected {want.hex()}")
        if want is not None and step.bytes is not None and len(got) != len(want):
            raise StepFailed(f"received {len(got)} bytes, expected {len(want)}")

    async def _do_expect_data(self, step: S.ExpectData) -> None:
        _, stream = self._stream(step.conn)
        want = step.payload() or b""
        got = await self._read(stream, len(want), self._timeout(step.within))
        if got != want:
            raise StepFailed(f"received {got!r}, expected {want!r}")

    async def _do_shutdown(self, step: S.Shutdown) -> None:
        await self._stream(step.conn)[1].send_eof()

    async def _do_close(self, step: S.Close) -> None:
        await self._stream(step.conn)[1].aclose()

    async def _do_abort(self, step: S.Abort) -> None:
        self._stream(step.conn)[1].abort()

    async def _do_sleep(self, step: S.Sleep) -> None:
        await asyncio.sleep(float(step.duration))

    def _owns(self, ctx: ConnCtx, seg: TcpSegment, direction: str) -> bool:
        """Whether ``seg`` is of ``ctx``'s connection. While its ports are unknown (it is
        not open yet), any segment may be, except one of another connection whose
        ports are known."""
        if ctx.local_port is not None:
            return ctx.owns(seg, direction)
        return not any(
            other is not ctx and other.local_port is not None and other.owns(seg, direction)
            for other in self.ctx.values()
        )

    async def _do_drop(self, step: S.Drop) -> None:
        ctx = self._ctx(step.conn) if step.conn or self.ctx else None
        relative = self.sc.relative

        def match(seg: TcpSegment, _dir: str = step.dir) -> bool:
            if ctx is not None:
                if not self._owns(ctx, seg, _dir):
                    return False
                ctx.learn_isns(self.trace)
            isns = ctx.isns if ctx is not None else Isns()
            return mismatch(step.match, seg, _dir, isns, relative) is None

        self._hooks().rules.append(
            DropRule(step.dir, match, step.count, description=step_text(step))
        )

    async def _do_inject(self, step: S.Inject) -> None:
        ctx = self._ctx(step.conn)
        ctx.learn_isns(self.trace)
        if step.scapy is not None:
            return await self._inject_scapy(step.scapy, step.dir, ctx)
        relative = self.sc.relative if step.relative is None else step.relative
        # the connection's current values, where the step gives no seq or ack
        now = self._current(ctx, step.dir) if step.seq is None or step.ack is None else None
        seg = injected_segment(step, ctx, relative, now)
        emu, peer = self._ends(ctx)
        if step.bad_checksum:
            good = int.from_bytes(seg.emit(emu, peer)[16:18], "big")
            seg.checksum = good ^ 0xFFFF
        if step.dir == "out":
            await self.host.resolve(peer)
            self.host.inject(seg, peer)
        else:
            self.host.inject_inbound(seg, peer)

    async def _inject_scapy(self, expr: str, direction: str, ctx: ConnCtx) -> None:
        """``inject: {scapy: ...}``: the frames the expression builds, with the
        connection's addresses, ports and next (seq, ack) as its names (trusted code)."""
        from .scapy_inject import Ends, craft, inbound_segment, names

        host, (emu, peer) = self.host, self._ends(ctx)
        values = names(
            emu, peer, ctx.local_port or 0, ctx.peer_port or 0, *self._current(ctx, direction)
        )
        if direction == "out":
            ends = Ends(emu, peer, host.mac, await host.resolve(peer))
            for frame in craft(expr, values, ends, self.lab.mtu):
                host.inject_frame(frame, spoiled(frame))
            return
        # to netemu's endpoint: the host makes the frame again, from the segment
        ends = Ends(peer, emu, ZERO_MAC, host.mac)
        for src, seg in [inbound_segment(f, emu) for f in craft(expr, values, ends, self.lab.mtu)]:
            host.inject_inbound(seg, src)

    def _current(self, ctx: ConnCtx, direction: str) -> tuple[int, int]:
        """(seq, ack) a segment going ``direction`` carries next: the sender's next
        sequence number and what it has of the other side. netemu's endpoint knows its
        own (snd.nxt, rcv.nxt); on a raw connection, the trace tells: after the last
        segment each side sent (a SYN or FIN counts one), else its ISN. A segment its
        receiver threw away unread (a bad checksum, corrupted on the way) moved
        nothing: the next one takes its place."""
        conn = ctx.conn
        if conn is not None:
            return (
                (conn.snd_nxt, conn.rcv_nxt) if direction == "out" else (conn.rcv_nxt, conn.snd_nxt)
            )
        ctx.learn_isns(self.trace)
        nxt = {"out": ctx.isns.ours, "in": ctx.isns.peers}
        for f in self.trace.frames:
            if f.mark in ("bad-checksum", "malformed"):
                continue
            seg = segment_of(f.data)
            if seg is None or not self._owns(ctx, seg, f.direction) or self._not_intact(f):
                continue
            end = (seg.seq + seg.seg_len) & 0xFFFFFFFF
            have = nxt[f.direction]
            if have is None or 0 < (end - have) & 0xFFFFFFFF < 0x80000000:
                nxt[f.direction] = end
        other = "in" if direction == "out" else "out"
        return nxt[direction] or 0, nxt[other] or 0

    async def _do_peer(self, step: S.PeerStep) -> None:
        agent = (await self.agents.get(step.peer)).aio
        timeout = self._timeout(step.timeout)
        ctx = self._ctx(step.conn)
        if (listen := step.listen) is not None:
            lst = await peer_listen(agent, listen, bool(self.lab.peer_ip6))
            self.peer_listeners[listen.port] = lst.sock
            return
        if (accept := step.accept) is not None:
            port = accept.port if accept.port is not None else next(iter(self.peer_listeners))
            acc = await agent.accept(self.peer_listeners[port], timeout=timeout)
            ctx.peer_sock = acc.sock
            if ctx.peer_port is None:
                ctx.peer_port = port
            return
        if (c := step.connect) is not None:
            res = await peer_connect(agent, self._ends(ctx)[0], c, timeout)
            ctx.peer_sock = res.sock
            if ctx.raw and ctx.peer_port is None and res.local:
                ctx.peer_port = res.local[1]  # a raw connection injects to the peer's port
            elif not ctx.raw and ctx.conn is None and res.local:
                # netemu's end, until `accept` takes it: its ports are known now, and
                # its wire steps see its frames only (not every connection's)
                ctx.local_port, ctx.peer_port = c.port, res.local[1]
            return
        if ctx.peer_sock is None:
            raise StepFailed(
                f"the peer has no socket for connection '{ctx.name}' "
                "(peer accept or peer connect first)"
            )
        sock = ctx.peer_sock
        await sock_step(agent, sock, step, timeout, who="the peer", at_eof=" (then EOF)")

    # ------------------------------------------------------------------ expectations
    async def _poll(self, check: Any, within: float, step_start: float) -> Any:
        """Call ``check()`` until it returns something truthy or ``within`` passes."""
        while True:
            out = check()
            if out:
                return out
            if time.monotonic() - step_start >= within:
                return None
            await asyncio.sleep(0.002)

    async def _do_expect_state(self, step: S.ExpectState) -> None:
        ctx = self._ctx(step.conn)
        conn = ctx.conn
        if conn is None:
            raise StepFailed(f"connection '{ctx.name}' is not open")
        want = State(step.state) if not isinstance(step.state, State) else step.state
        t0 = time.monotonic()
        within = self._timeout(step.within)
        late: list[float] = []

        def check() -> bool:
            if conn.state is not want:
                return False
            # The window is the time the state was reached (its record's), not the time
            # a poll that woke late saw it.
            local, remote = (conn.local_ip, conn.local_port), (conn.remote_ip, conn.remote_port)
            for rec in reversed(self.trace.states):
                if (
                    rec.new == want.value
                    and tuple(rec.local) == local
                    and tuple(rec.remote) == remote
                ):
                    if rec.t > t0 + within:
                        late[:] = [rec.t - t0]
                        return False
                    break
            return True

        if not await self._poll(check, within, t0):
            if late and conn.state is want:
                raise StepFailed(
                    f"reached {want} {late[0]:.3f} s into the step, after within {within:g} s"
                )
            raise StepFailed(f"state {conn.state}, expected {want}")

    # The peer socket a step means, in either runner: ``_peer_role`` names the lab
    # (this runner has one peer kernel), ``_peer_ports`` the socket's own port and its
    # remote's for a connection (the peer end of ours: its port, netemu's).
    def _peer_role(self, step: S.ExpectPeerState) -> str:
        return "peer"

    def _peer_ports(self, role: str, ctx: ConnCtx) -> tuple[int | None, int | None]:
        return ctx.peer_port, ctx.local_port

    def _peer_state_now(
        self, role: str, ctx: ConnCtx, port: int | None, listener: bool = False
    ) -> str:
        assert self.peers is not None
        own, other = self._peer_ports(role, ctx)
        states = states_of(self.peers.snapshot(role), own, other, port, listener)
        return states[0] if states else "CLOSED"

    def _peer_went_through(
        self, role: str, ctx: ConnCtx, port: int | None, listener: bool = False
    ) -> list[SockView]:
        """Every state the step's peer socket went through (PeerView.history), in order,
        each with the time it was entered."""
        assert self.peers is not None
        own, other = self._peer_ports(role, ctx)
        hist = [SockView(k[0], k[1], st, t) for t, k, st in self.peers.history(role)]
        return matching(hist, own, other, port, listener)

    async def _do_expect_peer_state(self, step: S.ExpectPeerState) -> None:
        """The state now, or with ``seen: true`` any state the socket went through."""
        peers = self.peers
        assert peers is not None
        ctx = self._ctx(step.conn)
        role = self._peer_role(step)
        # `port` alone names the peer's listener on it; with `conn`, that connection's
        # socket on it.
        listener = step.port is not None and step.conn is None
        want = step.state.value if isinstance(step.state, State) else str(step.state)
        t0 = time.monotonic()
        seen: list[str] = []

        within = self._timeout(step.within)
        late: list[float] = []

        def went_through() -> list[str]:
            states = [h.state for h in self._peer_went_through(role, ctx, step.port, listener)]
            return [st for i, st in enumerate(states) if i == 0 or states[i - 1] != st]

        def in_time() -> bool:
            """With the kernel's own times, ``within`` is judged by when the socket
            entered ``want`` (last time), not by when this step looked."""
            if peers.source != "kernel":
                return True
            entered = [
                h.t
                for h in self._peer_went_through(role, ctx, step.port, listener)
                if h.state == want
            ]
            if step.seen:
                entered = entered[:1]
            if entered and entered[-1] - t0 > within:
                late[:] = [entered[-1] - t0]
                return False
            return True

        def check() -> bool:
            if step.seen:
                seen[:] = went_through()
                return want in seen and in_time()
            st = self._peer_state_now(role, ctx, step.port, listener)
            if not seen or seen[-1] != st:
                seen.append(st)
            return st == want and in_time()

        if await self._poll(check, within, t0):
            return
        who = f"{role} listener on {step.port}" if listener else f"{role} socket"
        if late:
            raise StepFailed(
                f"{who} became {want} {late[0]:.3f} s after this step began, "
                f"later than within {within:g} s"
            )
        path = " → ".join(went_through()) or "nothing"
        why = (
            ""
            if peers.source == "kernel"
            else (
                f"; the peer's states were polled ({peers.reason}): a state shorter than "
                "the interval is missed"
            )
        )
        if step.seen:
            raise StepFailed(f"{who} never was {want}; it went through: {path}{why}")
        raise StepFailed(
            f"{who} is {seen[-1] if seen else '?'}, expected {want} (it went through: {path}){why}"
        )

    async def _do_expect_segment(self, step: S.ExpectSegment) -> str | None:
        ctx = self._ctx(step.conn) if (step.conn or self.ctx) else self._any
        relative = self.sc.relative if step.relative is None else step.relative
        direction = step.dir
        within = self._timeout(step.within)
        t0 = time.monotonic()
        not_before = t0 + float(step.after) if step.after is not None else None
        want_dropped = bool(getattr(step, "dropped", False))
        seen: list[str] = []
        matched: list[tuple[float, str]] = []  # (its time, its description)

        def check() -> bool:
            ctx.learn_isns(self.trace)
            frames = self.trace.frames  # (read afresh: it does not grow by itself)
            i = ctx.cursor[direction]
            while i < len(frames):
                f = frames[i]
                i += 1
                # A dropped frame (a drop rule, an impairment) never reached the other
                # side: it satisfies an expectation only one that asks for it
                # (`dropped: true`), and then only it does. Nor did a corrupted one, or
                # one with a bad checksum: the receiver threw it away.
                if (
                    f.direction != direction
                    or f.mark in ("bad-checksum", "malformed")
                    or (f.mark == "dropped") != want_dropped
                ):
                    continue
                seg = segment_of(f.data)
                if seg is None or not self._owns(ctx, seg, direction):
                    continue
                why = mismatch(step, seg, direction, ctx.isns, relative)
                if why is None and not want_dropped:
                    why = self._not_intact(f)
                if why is None and f.t > t0 + within:  # the frame's time, not the poll's
                    why = f"too late ({f.t - t0:.3f} s into the step, within {within:g} s)"
                if why is None and (not_before is None or f.t >= not_before):
                    ctx.cursor[direction] = i
                    matched.append((f.t, describe(seg, direction, ctx.isns, relative)))
                    return True
                seen.append(f"{describe(seg, direction, ctx.isns, relative)}: {why or 'too early'}")
            return False

        if not await self._poll(check, within, t0):
            want = step_text(step)
            seen = list(dict.fromkeys(seen))  # each poll re-reads the frames after the cursor
            got = "; ".join(seen[-4:]) if seen else "nothing"
            raise StepFailed(f"no segment matched [{want}] within {within:g} s; seen: {got}")
        t, what = matched[-1]
        if t < t0:  # passed over by an earlier step, or on the wire before this one
            return f"matched {what}, sent {self._earlier(t, t0)}"
        return None

    def _not_intact(self, f: Any) -> str | None:
        """Why frame ``f`` (not dropped) did not reach its receiver intact, or None.
        An impairment's corruption is noted on the frame where it was recorded on
        arrival (netemu's incoming direction, both of the relay's); the frames netemu
        itself puts on the wire (its endpoint's, and every injected one) carry final
        checksums, so a bad one there is a corrupted or ``bad_checksum`` frame that
        the receiver threw away."""
        if f.note == "corrupted":
            return "corrupted on the way (the receiver threw it away)"
        ours = f.mark == "injected" or (f.direction == "out" and isinstance(self.host, Host))
        if ours and not checksums_good(f.data):
            return "bad checksum (the receiver threw it away)"
        return None

    async def _do_expect_no_segment(self, step: S.ExpectNoSegment) -> None:
        ctx = self._ctx(step.conn) if (step.conn or self.ctx) else self._any
        relative = self.sc.relative if step.relative is None else step.relative
        start = len(self.trace.frames)
        await asyncio.sleep(float(step.for_))
        ctx.learn_isns(self.trace)
        for f in self.trace.frames[start:]:
            if (step.dir is not None and f.direction != step.dir) or f.mark == "dropped":
                continue
            seg = segment_of(f.data)
            if seg is None or not self._owns(ctx, seg, f.direction):
                continue
            if mismatch(step, seg, f.direction, ctx.isns, relative) is None:
                raise StepFailed(
                    f"unexpected segment {describe(seg, f.direction, ctx.isns, relative)}"
                )

    _EVENTS = {
        "connected": (Connected,),
        "reset": (ConnectionReset,),
        "refused": (ConnectionReset,),
        "timeout": (TimedOut,),
        "eof": (PeerClosed,),
        "closed": (Closed,),
    }

    def _events_text(self, conn: Connection) -> str:
        """The connection's events in expect_event's words: "refused", "reset",
        "timeout (SYN retries)", "eof", "closed"."""
        names = []
        for e in self.host.event_log.get(conn, []):
            if isinstance(e, ConnectionReset):
                names.append("refused" if e.refused else "reset")
            elif isinstance(e, TimedOut):
                names.append(f"timeout ({e.what})")
            else:
                name = next((k for k, kinds in self._EVENTS.items() if isinstance(e, kinds)), "")
                names.append(name)
        return ", ".join(n for n in names if n) or "no events"

    async def _do_expect_event(self, step: S.ExpectEvent) -> None:
        ctx = self._ctx(step.conn)
        conn = ctx.conn
        if conn is None:
            raise StepFailed(f"connection '{ctx.name}' is not open")
        kinds = self._EVENTS[step.event]
        t0 = time.monotonic()
        within = self._timeout(step.within)
        late: list[float] = []

        def check() -> bool:
            times = self.host.event_times.get(conn, [])
            for e, t in zip(self.host.event_log.get(conn, []), times, strict=False):
                if isinstance(e, kinds) and (
                    step.event != "refused" or (isinstance(e, ConnectionReset) and e.refused)
                ):
                    if t <= t0 + within:  # the event's time, not the poll's
                        return True
                    late[:] = [t - t0]
            return False

        if not await self._poll(check, within, t0):
            if late:
                raise StepFailed(
                    f"the {step.event} event came {late[0]:.3f} s into the step, "
                    f"after within {within:g} s"
                )
            raise StepFailed(f"no {step.event} event; events: {self._events_text(conn)}")
