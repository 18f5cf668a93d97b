"""Run a loaded scenario on a live lab: steps in order, each with a timeout,
expectations checked against the live trace, then the trace written out.

The runner turns steps into calls on host / lab / peers, and expectations into
waits on the trace and on the public state of connections; it never reaches
into TCP internals beyond ``Connection``'s public attributes.
"""

from __future__ import annotations

import asyncio
import os
import random
import time
from dataclasses import dataclass, field
from typing import Any

from ..host import DropRule, Host, TcpStream
from ..tcp import Connection, State
from ..tcp.events import Closed, Connected, ConnectionReset, PeerClosed, TimedOut
from ..trace.record import NoteRecord, PeerStateRecord, Trace
from ..wire import TcpSegment, parse_frame
from ..wire.tcp import (
    EOL,
    NOP,
    SACK_PERMITTED,
    MssOption,
    RawOption,
    SackOption,
    TimestampOption,
    WindowScaleOption,
)
from . import schema as S
from .match import Isns, describe, mismatch
from .peerview import PeerView, SockView, matching, states_of


class StepFailed(Exception):
    """An expectation did not hold: ``message`` says what was expected and seen."""


@dataclass
class ConnCtx:
    name: str
    raw: bool = False
    conn: Connection | None = None
    stream: TcpStream | None = None
    local_port: int | None = None
    peer_port: int | None = None
    isns: Isns = field(default_factory=Isns)
    peer_sock: int | None = None  # the kernel agent's socket for the peer's end
    cursor: dict[str, int] = field(default_factory=lambda: {"in": 0, "out": 0})

    def owns(self, seg: TcpSegment, direction: str) -> bool:
        if self.local_port is None:
            return True
        if direction == "out":
            return seg.src_port == self.local_port and (
                self.peer_port is None or seg.dst_port == self.peer_port)
        return seg.dst_port == self.local_port and (
            self.peer_port is None or seg.src_port == self.peer_port)

    def learn_isns(self, trace: Trace) -> None:
        if self.conn is not None:
            self.isns.ours = self.conn.iss
            if self.conn.state not in (State.SYN_SENT, State.CLOSED) or self.conn.irs:
                self.isns.peers = self.conn.irs
        if self.isns.peers is None:  # raw, or not yet known: the peer's SYN tells
            for f in trace.frames:
                if f.direction != "in":
                    continue
                seg = _segment(f.data)
                if seg is not None and seg.flags & 0x02 and self.owns(seg, "in"):
                    self.isns.peers = seg.seq
                    break


def _segment(data: bytes) -> TcpSegment | None:
    try:
        return parse_frame(data, verify=False).tcp
    except ValueError:
        return None


def _checksums_good(data: bytes) -> bool:
    try:
        parse_frame(data, verify=True)
    except ValueError:  # BadChecksum, MalformedPacket
        return False
    return True


@dataclass
class StepResult:
    index: int
    line: int
    action: str
    text: str
    status: str = "pending"  # pass, fail, skipped
    message: str = ""
    seconds: float = 0.0

    def as_dict(self) -> dict[str, Any]:
        return {"index": self.index, "line": self.line, "action": self.action,
                "step": self.text, "status": self.status, "message": self.message,
                "seconds": round(self.seconds, 4)}


def step_text(step: S.StepBase) -> str:
    """A short human description of a step, for the terminal and the ladder."""
    data = step.model_dump(exclude_none=True, exclude_defaults=True, by_alias=True,
                           exclude={"note", "timeout", "peer", "relative", "conn"})
    if getattr(step, "within", None) is not None and "within" not in step.model_fields_set:
        data.pop("within", None)  # filled in from the scenario's default, not written
    parts = []
    for k, v in data.items():
        if isinstance(v, dict):
            inner = ", ".join(f"{a}: {_label(b)}" for a, b in v.items()
                              if b not in (None, {}, True))
            parts.append(f"{k}" + (f" {{{inner}}}" if inner else ""))
        else:
            parts.append(f"{k}={_label(v)}")
    return f"{step.ACTION} {', '.join(parts)}".strip()


def _label(v: object) -> str:
    """A value as a step's label shows it: floats rounded (0.7, not
    0.7000000000000001), control characters escaped (a label is one line)."""
    if isinstance(v, float):
        text = f"{v:.9g}"
    else:
        text = str(v)
    return text.encode("unicode_escape").decode("ascii") if not text.isprintable() else text


class Runner:
    def __init__(self, scenario: S.Scenario, *, lab: Any, host: Host,
                 on_step: Any = None) -> None:
        self.sc = scenario
        self.lab = lab
        self.host = host
        self.trace = host.trace
        self.on_step = on_step
        self.rng = random.Random(scenario.seed)
        self.ctx: dict[str, ConnCtx] = {}
        for name, spec in scenario.connections.items():
            self.ctx[name] = ConnCtx(name, raw=spec.raw, local_port=spec.local_port,
                                     peer_port=spec.port)
        self.agents: dict[str, Any] = {}  # peer name -> KernelAgent
        self.peer_listeners: dict[int, int] = {}  # port -> agent listening socket
        self.results: list[StepResult] = []
        self.step_starts: list[float] = []  # when each step began (time.monotonic())
        # The segments of no connection of the scenario's (a program that connects by
        # itself): one cursor for them, so that no segment meets two expectations.
        self._any = ConnCtx("*")
        self.peers: PeerView | None = None

    # ------------------------------------------------------------------ set-up
    def _record_peer(self, role: str, t: float, local: Any, remote: Any, old: str, new: str,
                     source: str, info: dict) -> None:
        self.trace.peer_states.append(PeerStateRecord(t, local, remote, new, info, old=old,
                                                      source=source))

    async def start_peers(self) -> None:
        lab = self.lab
        # The kernel's account of the peer's sockets begins before any peer does.
        fixed = [c.local_port for c in self.ctx.values() if c.local_port]
        fixed += [st.local_port for st in self.sc.steps
                  if isinstance(getattr(st, "local_port", None), int)]
        self.peers = PeerView({"peer": lab}, self.trace, self._record_peer,
                              fixed_ports=fixed).start()
        for name, peer in self.sc.peers.items():
            if peer.kind == "kernel":
                self.agents[name] = None  # started by its first peer step (_agent)
            elif peer.kind in ("go-hello", "go-echo"):
                program = peer.kind.split("-", 1)[1]
                args = [] if peer.port is None else ["-addr", f":{peer.port}"]
                await asyncio.to_thread(lab.start_go, program, *args, name=name)
            elif peer.kind == "command":
                proc = lab.spawn(list(peer.command or []), env=dict(peer.env), name=name)
                if peer.port is not None:  # a server: its first connect must find it up
                    await lab.wait_listening_async(peer.port, proc=proc)
        for ctx in self.ctx.values():
            if ctx.raw:
                if ctx.local_port is None:
                    ctx.local_port = self.host.ephemeral_port(lab.peer_ip, ctx.peer_port or 0)
                self.host.raw_ports.add(ctx.local_port)
                ctx.isns.ours = self.rng.getrandbits(32)
        if any(c.raw for c in self.ctx.values()):
            await self.host.resolve(lab.peer_ip)

    async def stop(self) -> None:
        if self.peers is not None:
            await asyncio.to_thread(self.peers.stop)

    # ------------------------------------------------------------------ the run
    async def run(self) -> bool:
        steps = self.sc.steps
        for i, step in enumerate(steps, 1):
            res = StepResult(i, step.line, step.ACTION, step_text(step))
            self.results.append(res)
            note = f" — {step.note}" if step.note else ""  # the step's own note: the ladder's
            self.trace.notes.append(NoteRecord(time.monotonic(), f"step {i}: {res.text}{note}",
                                               "step"))
            t0 = time.monotonic()
            self.step_starts.append(t0)
            try:
                # A handler may say something about its pass: res.message, and a note.
                detail = await self._run_step(step)
                res.status = "pass"
                if detail:
                    res.message = detail
                    self.trace.notes.append(NoteRecord(time.monotonic(),
                                                       f"step {i}: {detail}", "pass"))
            except StepFailed as e:
                res.status, res.message = "fail", str(e)
            except TimeoutError as e:
                res.status, res.message = "fail", f"timed out: {e}" if str(e) else "timed out"
            except Exception as e:  # an error in a peer, the host or the lab
                res.status, res.message = "fail", f"{type(e).__name__}: {e}"
            res.seconds = time.monotonic() - t0
            if res.status == "fail":
                self.trace.notes.append(NoteRecord(time.monotonic(),
                                                   f"step {i} failed: {res.message}", "fail"))
            if self.on_step is not None:
                self.on_step(res)
            if res.status == "fail":
                for j, later in enumerate(steps[i:], i + 1):
                    self.results.append(StepResult(j, later.line, later.ACTION,
                                                   step_text(later), "skipped"))
                return False
        return True

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

    async def _agent(self, peer: str | None) -> Any:
        """The kernel peer's agent, started on first use: a run whose steps never
        command the kernel peer does not pay for a Python subprocess (~50 ms)."""
        if peer is None:
            if len(self.agents) != 1:
                raise StepFailed("name the peer: this scenario has several kernel peers")
            peer = next(iter(self.agents))
        agent = self.agents[peer]
        if agent is None:
            agent = self.agents[peer] = await asyncio.to_thread(
                self.lab.start_agent, name=f"agent-{peer}")
        return agent

    async def _run_step(self, step: S.StepBase) -> str | None:
        """Run one step; what its handler says about its pass (None: nothing)."""
        handler = getattr(self, f"_do_{step.ACTION}")
        return await handler(step)  # type: ignore[no-any-return]

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
        spec = self.sc.connections.get(ctx.name)
        local_port = step.local_port if step.local_port is not None else (
            spec.local_port if spec is not None else None)
        conn = await self.host.open(self.lab.peer_ip, step.port, local_port=local_port,
                                    config=cfg, name=ctx.name, wait=False)
        ctx.conn, ctx.stream = conn, TcpStream(self.host, conn)
        ctx.local_port, ctx.peer_port = conn.local_port, conn.remote_port
        ctx.learn_isns(self.trace)
        if step.wait:
            await self.host.wait_for(conn, lambda c: c.state not in (State.SYN_SENT,
                                                                     State.SYN_RECEIVED),
                                     self._timeout(step.timeout))
            if conn.state is State.CLOSED:
                raise StepFailed(f"connect to port {step.port} failed: "
                                 f"{self._events_text(conn)}")
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
            raise StepFailed(f"received {len(buf)} bytes {bytes(buf[:60])!r}"
                             + (f", wanted {n}" if n is not None else ", no EOF")
                             + f" within {timeout:g} s") from None
        return bytes(buf)

    async def _do_recv(self, step: S.Recv) -> None:
        _, stream = self._stream(step.conn)
        want = step.payload()
        got = await self._read(stream, None if step.until_eof else len(want or b""),
                               self._timeout(step.timeout))
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
        return not any(other is not ctx and other.local_port is not None
                       and other.owns(seg, direction) for other in self.ctx.values())

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

        self.host.drop_rules.append(DropRule(step.dir, match, step.count,
                                             description=step_text(step)))

    async def _do_inject(self, step: S.Inject) -> None:
        ctx = self._ctx(step.conn)
        ctx.learn_isns(self.trace)
        relative = self.sc.relative if step.relative is None else step.relative
        ours, peers = ((ctx.isns.ours, ctx.isns.peers) if step.dir == "out"
                       else (ctx.isns.peers, ctx.isns.ours))
        seq = step.seq or 0
        ack = step.ack or 0
        if relative:
            seq = (seq + (ours or 0)) & 0xFFFFFFFF
            ack = (ack + (peers or 0)) & 0xFFFFFFFF
        if step.seq is None or step.ack is None:  # the connection's current values
            now_seq, now_ack = self._current(ctx, step.dir)
            seq = now_seq if step.seq is None else seq
            ack = (now_ack if step.flags & 0x10 else 0) if step.ack is None else ack
        options = tuple(self._option(o, ctx, step.dir, relative) for o in step.options)
        local = ctx.local_port or 0
        remote = ctx.peer_port or 0
        src, dst = (local, remote) if step.dir == "out" else (remote, local)
        seg = TcpSegment(src, dst, seq, ack, step.flags,
                         65535 if step.win is None else step.win,
                         step.payload() or b"", options, step.urg or 0)
        if step.bad_checksum:
            good = int.from_bytes(seg.emit(self.host.ip, self.lab.peer_ip)[16:18], "big")
            seg.checksum = good ^ 0xFFFF
        if step.dir == "out":
            await self.host.resolve(self.lab.peer_ip)
            self.host.inject(seg, self.lab.peer_ip)
        else:
            self.host.inject_inbound(seg, self.lab.peer_ip)

    def _current(self, ctx: ConnCtx, direction: str) -> tuple[int, int]:
        """(seq, ack) a segment going ``direction`` carries next: the sender's next
        sequence number and what it has of the other side. netemu's endpoint knows its
        own (snd.nxt, rcv.nxt); on a raw connection, the trace tells: after the last
        segment each side sent (a SYN or FIN counts one), else its ISN."""
        conn = ctx.conn
        if conn is not None:
            return ((conn.snd_nxt, conn.rcv_nxt) if direction == "out"
                    else (conn.rcv_nxt, conn.snd_nxt))
        ctx.learn_isns(self.trace)
        nxt = {"out": ctx.isns.ours, "in": ctx.isns.peers}
        for f in self.trace.frames:
            seg = _segment(f.data)
            if seg is None or not self._owns(ctx, seg, f.direction):
                continue
            end = (seg.seq + seg.seg_len) & 0xFFFFFFFF
            have = nxt[f.direction]
            if have is None or 0 < (end - have) & 0xFFFFFFFF < 0x80000000:
                nxt[f.direction] = end
        other = "in" if direction == "out" else "out"
        return nxt[direction] or 0, nxt[other] or 0

    def _option(self, spec: S.TcpOptionSpec, ctx: ConnCtx, direction: str,
                relative: bool) -> Any:
        kind, v = spec.kind, spec.value
        if kind == "mss":
            return MssOption(v)
        if kind == "wscale":
            return WindowScaleOption(v)
        if kind == "sackok":
            return SACK_PERMITTED
        if kind == "ts":
            return TimestampOption(v[0], v[1])
        if kind == "nop":
            return NOP
        if kind == "eol":
            return EOL
        if kind == "sack":
            base = (ctx.isns.peers if direction == "out" else ctx.isns.ours) or 0
            off = base if relative else 0
            return SackOption(tuple(((a + off) & 0xFFFFFFFF, (b + off) & 0xFFFFFFFF)
                                    for a, b in v))
        return RawOption(v[0], bytes(v[1]))

    async def _do_peer(self, step: S.PeerStep) -> None:
        agent = (await self._agent(step.peer)).aio
        cmd = step.command
        timeout = self._timeout(step.timeout)
        ctx = self._ctx(step.conn)
        if cmd == "listen":
            lst = await agent.listen(step.listen.port, backlog=step.listen.backlog,
                                     opts=step.listen.setsockopt)
            self.peer_listeners[step.listen.port] = lst.sock
            return
        if cmd == "accept":
            port = step.accept.port if step.accept.port is not None else next(
                iter(self.peer_listeners))
            acc = await agent.accept(self.peer_listeners[port], timeout=timeout)
            ctx.peer_sock = acc.sock
            if ctx.peer_port is None:
                ctx.peer_port = port
            return
        if cmd == "connect":
            c = step.connect
            bind = ("0.0.0.0", c.local_port) if c.local_port is not None else None
            res = await agent.connect(self.host.ip, c.port, timeout=timeout, wait=c.wait,
                                      opts=c.setsockopt, bind=bind)
            ctx.peer_sock = res.sock
            if ctx.raw and ctx.peer_port is None and res.local:
                ctx.peer_port = res.local[1]  # a raw connection injects to the peer's port
            elif not ctx.raw and ctx.conn is None and res.local:
                # netemu's end, until `accept` takes it: its ports are known now, and
                # its wire steps see its frames only (not every connection's)
                ctx.local_port, ctx.peer_port = c.port, res.local[1]
            return
        if ctx.peer_sock is None:
            raise StepFailed(f"the peer has no socket for connection '{ctx.name}' "
                             "(peer accept or peer connect first)")
        sock = ctx.peer_sock
        if cmd == "send":
            await agent.send(sock, step.send.payload() or b"", timeout=timeout)
        elif cmd in ("read", "expect"):
            want = step.expect.payload() if cmd == "expect" else None
            n = len(want) if want is not None else int(step.read)
            got = await agent.recv(sock, exact=n, timeout=timeout)
            if want is not None and got != want:
                raise StepFailed(f"the peer read {got!r}, expected {want!r}")
            if len(got) != n:  # the agent's read stops short at EOF
                raise StepFailed(f"the peer read {len(got)} bytes, expected {n} (then EOF)")
        elif cmd == "shutdown":
            await agent.shutdown(sock, {"write": "wr", "read": "rd", "both": "rdwr"}[
                step.shutdown])
        elif cmd == "close":
            await agent.close(sock)
        elif cmd == "abort":
            await agent.abort(sock)
        elif cmd == "setsockopt":
            await agent.setsockopt(sock, step.setsockopt)

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
        if ctx.conn is None:
            raise StepFailed(f"connection '{ctx.name}' is not open")
        want = State(step.state) if not isinstance(step.state, State) else step.state
        t0 = time.monotonic()
        within = self._timeout(step.within)
        late: list[float] = []

        def check() -> bool:
            conn = ctx.conn
            if conn.state is not want:
                return False
            # The window is the time the state was reached (its record's), not the time
            # a poll that woke late saw it.
            local, remote = (conn.local_ip, conn.local_port), (conn.remote_ip, conn.remote_port)
            for rec in reversed(self.trace.states):
                if rec.new == want.value and tuple(rec.local) == local \
                        and tuple(rec.remote) == remote:
                    if rec.t > t0 + within:
                        late[:] = [rec.t - t0]
                        return False
                    break
            return True

        if not await self._poll(check, within, t0):
            if late and ctx.conn.state is want:
                raise StepFailed(f"reached {want} {late[0]:.3f} s into the step, after within "
                                 f"{within:g} s")
            raise StepFailed(f"state {ctx.conn.state}, expected {want}")

    # The peer socket a step means, in either runner: ``_peer_role`` names the lab
    # (this runner has one peer kernel), ``_peer_ports`` the socket's own port and its
    # remote's for a connection (the peer end of ours: its port, netemu's).
    def _peer_role(self, step: S.ExpectPeerState) -> str:
        return "peer"

    def _peer_ports(self, role: str, ctx: ConnCtx) -> tuple[int | None, int | None]:
        return ctx.peer_port, ctx.local_port

    def _peer_state_now(self, role: str, ctx: ConnCtx, port: int | None,
                        listener: bool = False) -> str:
        assert self.peers is not None
        own, other = self._peer_ports(role, ctx)
        states = states_of(self.peers.snapshot(role), own, other, port, listener)
        return states[0] if states else "CLOSED"

    def _peer_went_through(self, role: str, ctx: ConnCtx, port: int | None,
                           listener: bool = False) -> list[SockView]:
        """Every state the step's peer socket went through (PeerView.history), in order,
        each with the time it was entered."""
        assert self.peers is not None
        own, other = self._peer_ports(role, ctx)
        hist = [SockView(k[0], k[1], st, t) for t, k, st in self.peers.history(role)]
        return matching(hist, own, other, port, listener)

    async def _do_expect_peer_state(self, step: S.ExpectPeerState) -> None:
        """The state now, or with ``seen: true`` any state the socket went through."""
        assert self.peers is not None
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
            if self.peers.source != "kernel":
                return True
            entered = [h.t for h in self._peer_went_through(role, ctx, step.port, listener)
                       if h.state == want]
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
            raise StepFailed(f"{who} became {want} {late[0]:.3f} s after this step began, "
                             f"later than within {within:g} s")
        path = " → ".join(went_through()) or "nothing"
        why = "" if self.peers.source == "kernel" else (
            f"; the peer's states were polled ({self.peers.reason}): a state shorter than "
            "the interval is missed")
        if step.seen:
            raise StepFailed(f"{who} never was {want}; it went through: {path}{why}")
        raise StepFailed(f"{who} is {seen[-1] if seen else '?'}, expected {want} "
                         f"(it went through: {path}){why}")

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
                if f.direction != direction or f.mark in ("bad-checksum", "malformed") \
                        or (f.mark == "dropped") != want_dropped:
                    continue
                seg = _segment(f.data)
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
        if ours and not _checksums_good(f.data):
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
            seg = _segment(f.data)
            if seg is None or not self._owns(ctx, seg, f.direction):
                continue
            if mismatch(step, seg, f.direction, ctx.isns, relative) is None:
                raise StepFailed("unexpected segment "
                                 f"{describe(seg, f.direction, ctx.isns, relative)}")

    _EVENTS = {"connected": (Connected,), "reset": (ConnectionReset,),
               "refused": (ConnectionReset,), "timeout": (TimedOut,), "eof": (PeerClosed,),
               "closed": (Closed,)}

    def _events_text(self, conn: Connection) -> str:
        names = [type(e).__name__ for e in self.host.event_log.get(conn, [])
                 if type(e).__name__ != "StateChanged"]
        return ", ".join(names) or "no events"

    async def _do_expect_event(self, step: S.ExpectEvent) -> None:
        ctx = self._ctx(step.conn)
        if ctx.conn is None:
            raise StepFailed(f"connection '{ctx.name}' is not open")
        kinds = self._EVENTS[step.event]
        t0 = time.monotonic()
        within = self._timeout(step.within)
        late: list[float] = []

        def check() -> bool:
            times = self.host.event_times.get(ctx.conn, [])
            for e, t in zip(self.host.event_log.get(ctx.conn, []), times, strict=False):
                if isinstance(e, kinds) and (step.event != "refused" or e.refused):
                    if t <= t0 + within:  # the event's time, not the poll's
                        return True
                    late[:] = [t - t0]
            return False

        if not await self._poll(check, within, t0):
            if late:
                raise StepFailed(f"the {step.event} event came {late[0]:.3f} s into the step, "
                                 f"after within {within:g} s")
            raise StepFailed(f"no {step.event} event; events: {self._events_text(ctx.conn)}")


def is_root() -> bool:
    return os.geteuid() == 0
