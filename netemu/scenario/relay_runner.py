"""Relay mode (``mode: relay``): two kernel peers, ``client`` in lab A and ``server``
in lab B, bridged by a ``netemu.host.relay.Relay`` that impairs, drops and records
their frames. ``RelayRunner`` is the scenario ``Runner`` with the handlers that
differ: peer steps go to the named peer's own lab, a peer ``connect`` reaches the
other peer's address, ``expect_peer_state`` asks the named peer's kernel. Wire
steps (drop, expect_segment, expect_no_segment) are the base runner's: ``dir: out``
is client → server, ``in`` server → client, seq/ack relative to the sender's ISN.

Both kernels' socket states come from a ``PeerView`` (their tracepoints, or sock_diag
polls where those cannot be read): the client's are recorded as ``StateRecord``s (the
ladder's left column), the server's as ``PeerStateRecord``s (the right column).

Also here: ``run_relay_scenario`` (what ``netemu run`` calls for a relay scenario)
and ``relay_main`` (``netemu relay``: a relay held open for programs of your own).
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from pathlib import Path
from typing import Any

from ..host.relay import CLIENT_IP, EMU_IP, SERVER_IP, Relay
from ..trace.record import PeerStateRecord, StateRecord, Trace
from . import schema as S
from .peerview import PeerView
from .runner import ConnCtx, Runner, StepFailed, _segment

ROLES = ("client", "server")


class RelayConn(ConnCtx):
    """A kernel-to-kernel connection: ``local_port`` is the client's port,
    ``peer_port`` the server's; ``isns.ours`` the client's ISN, ``isns.peers`` the
    server's (so the base matching reads "out" seq from the client's ISN)."""

    def learn_isns(self, trace: Trace) -> None:
        if self.isns.ours is not None and self.isns.peers is not None:
            return
        for f in trace.frames:
            seg = _segment(f.data)
            if seg is None or not seg.flags & 0x02 or not self.owns(seg, f.direction):
                continue
            if f.direction == "out" and self.isns.ours is None:
                self.isns.ours = seg.seq
            elif f.direction == "in" and self.isns.peers is None:
                self.isns.peers = seg.seq


def relay_record(trace: Trace) -> Any:
    """PeerView's record callback for relay mode: the client kernel's states go to the
    ladder's left column (``StateRecord``s), the server's to the right."""

    def record(role: str, t: float, local: Any, remote: Any, old: str, new: str,
               source: str, info: dict) -> None:
        if role == "client":
            trace.states.append(StateRecord(t, "client", tuple(local), tuple(remote), old, new,
                                            "kernel tracepoint" if source == "kernel"
                                            else "sock_diag"))
        else:
            trace.peer_states.append(PeerStateRecord(t, local, remote, new, info, old=old,
                                                     source=source))
    return record


class RelayRunner(Runner):
    def __init__(self, scenario: S.Scenario, *, labs: dict[str, Any], relay: Relay,
                 on_step: Any = None) -> None:
        super().__init__(scenario, lab=labs["client"], host=relay, on_step=on_step)  # type: ignore[arg-type]
        self.labs = labs
        self.relay = relay
        self.socks: dict[tuple[str, str], int] = {}  # (peer, conn) -> the agent's socket
        self.listening: dict[str, dict[int, int]] = {p: {} for p in labs}  # peer -> port -> sock

    async def start_peers(self) -> None:
        self.peers = PeerView(self.labs, self.trace, relay_record(self.trace)).start()
        for name in self.labs:
            self.agents[name] = None  # started by its first peer step

    async def _agent(self, peer: str | None) -> Any:
        if peer not in self.labs:
            raise StepFailed(f"unknown peer {peer!r} (relay peers: client, server)")
        agent = self.agents.get(peer)
        if agent is None:
            agent = self.agents[peer] = await asyncio.to_thread(
                self.labs[peer].start_agent, name=f"agent-{peer}")
        return agent

    def _ctx(self, name: str | None) -> ConnCtx:
        name = name or "c"
        ctx = self.ctx.get(name)
        if ctx is None:
            ctx = self.ctx[name] = RelayConn(name)
        return ctx

    def _ports(self, ctx: ConnCtx, peer: str, own: int | None, other: int | None) -> None:
        """Orient the connection: ``local_port`` the client's, ``peer_port`` the server's."""
        client, server = (own, other) if peer == "client" else (other, own)
        if client is not None:
            ctx.local_port = client
        if server is not None:
            ctx.peer_port = server

    async def _do_peer(self, step: S.PeerStep) -> None:
        peer = step.peer or "client"
        agent = (await self._agent(peer)).aio
        cmd = step.command
        timeout = self._timeout(step.timeout)
        if cmd == "listen":
            lst = await agent.listen(step.listen.port, backlog=step.listen.backlog,
                                     opts=step.listen.setsockopt)
            self.listening[peer][step.listen.port] = lst.sock
            return
        ctx = self._ctx(step.conn)
        if cmd == "accept":
            mine = self.listening[peer]
            if not mine:
                raise StepFailed(f"peer {peer} is not listening")
            port = step.accept.port if step.accept.port is not None else next(iter(mine))
            acc = await agent.accept(mine[port], timeout=timeout)
            self.socks[(peer, ctx.name)] = acc.sock
            self._ports(ctx, peer, port, acc.peer[1] if acc.peer else None)
            ctx.learn_isns(self.trace)
            return
        if cmd == "connect":
            c = step.connect
            other = "server" if peer == "client" else "client"
            bind = ("0.0.0.0", c.local_port) if c.local_port is not None else None
            res = await agent.connect(self.labs[other].peer_ip, c.port, timeout=timeout,
                                      wait=c.wait, opts=c.setsockopt, bind=bind)
            self.socks[(peer, ctx.name)] = res.sock
            self._ports(ctx, peer, res.local[1] if res.local else None, c.port)
            ctx.learn_isns(self.trace)
            return
        sock = self.socks.get((peer, ctx.name))
        if sock is None:
            raise StepFailed(f"peer {peer} has no socket for connection '{ctx.name}' "
                             "(peer connect or peer accept first)")
        if cmd == "send":
            await agent.send(sock, step.send.payload() or b"", timeout=timeout)
        elif cmd in ("read", "expect"):
            want = step.expect.payload() if cmd == "expect" else None
            n = len(want) if want is not None else int(step.read)
            got = await agent.recv(sock, exact=n, timeout=timeout)
            if want is not None and got != want:
                raise StepFailed(f"peer {peer} read {got[:60]!r}, expected {want[:60]!r}")
            if len(got) != n:
                raise StepFailed(f"peer {peer} read {len(got)} bytes, expected {n}")
        elif cmd == "shutdown":
            await agent.shutdown(sock, {"write": "wr", "read": "rd", "both": "rdwr"}[
                step.shutdown])
        elif cmd == "close":
            await agent.close(sock)
        elif cmd == "abort":
            await agent.abort(sock)
        elif cmd == "setsockopt":
            await agent.setsockopt(sock, step.setsockopt)

    def _peer_role(self, step: S.ExpectPeerState) -> str:
        return step.peer or "client"

    def _peer_ports(self, role: str, ctx: ConnCtx) -> tuple[int | None, int | None]:
        return ((ctx.local_port, ctx.peer_port) if role == "client"
                else (ctx.peer_port, ctx.local_port))


# --- running ------------------------------------------------------------------------


def _lab_args(sc: S.Scenario | None, role: str) -> dict[str, Any]:
    peer = sc.peers.get(role) if sc is not None else None
    return {"peer_sysctls": dict(peer.sysctls) if peer else {},
            "congestion": peer.congestion_control if peer else None}


def write_outputs(trace: Trace, run_dir: Path, *, name: str, result: str,
                  steps: list[dict[str, Any]], duration: float, error: str | None,
                  extra: dict[str, Any]) -> tuple[dict[str, Any], str]:
    """trace.pcap, ladder.txt, ladder.html (client left, server right), report.json."""
    from ..trace.atomic import atomic_write_text
    from ..trace.ladder import render_ladder_texts, write_ladder_html
    from ..trace.pcap import write_pcap
    from ..trace.report import write_report

    run_dir.mkdir(parents=True, exist_ok=True)
    write_pcap(trace, run_dir / "trace.pcap")
    whole, ladder = render_ladder_texts(trace, roles=ROLES, title=name)
    atomic_write_text(run_dir / "ladder.txt", whole)
    write_ladder_html(trace, run_dir / "ladder.html", roles=ROLES, title=name)
    report = write_report(run_dir / "report.json", scenario=name, result=result, trace=trace,
                          steps=steps, duration=duration, error=error, extra=extra)
    return report, ladder


async def run_relay_scenario(sc: S.Scenario, run_dir: Path, *, on_step: Any = None,
                             overrides: dict[str, Any] | None = None) -> Any:
    """``netemu run`` of a ``mode: relay`` scenario; returns a session ``Outcome``."""
    from .session import Progress

    progress = Progress(sc, run_dir, time.monotonic(), roles=ROLES, extra={"mode": "relay"})
    try:
        return await _run_relay(sc, run_dir, on_step, overrides, progress)
    except (asyncio.CancelledError, KeyboardInterrupt, SystemExit):  # as run_scenario
        progress.write_interrupted()
        raise


async def _run_relay(sc: S.Scenario, run_dir: Path, on_step: Any,
                     overrides: dict[str, Any] | None, progress: Any) -> Any:
    from ..lab.core import Lab, signals_deferred
    from .session import Outcome, impairments, pcap_streamed

    out_pipe, in_pipe = impairments(sc, overrides)
    t0 = progress.t0
    runner: RelayRunner | None = None
    passed = False
    error: str | None = None
    # From the run's end to its outputs written, signals wait (a SIGTERM between the
    # labs' teardown and the report killed the process with only the pcap written).
    with contextlib.ExitStack() as hold:
        with Lab(peer_ip=CLIENT_IP, emu_ip=EMU_IP, **_lab_args(sc, "client")) as lab_a, \
                Lab(peer_ip=SERVER_IP, emu_ip=EMU_IP, **_lab_args(sc, "server")) as lab_b:
            trace = Trace(emulator_ip=lab_a.peer_ip, peer_ip=lab_b.peer_ip)
            progress.trace = trace
            relay = await Relay(lab_a.open_link(filtered=False), lab_b.open_link(filtered=False),
                                trace=trace, client_ip=lab_a.peer_ip, server_ip=lab_b.peer_ip,
                                impair_out=out_pipe, impair_in=in_pipe).start()
            runner = RelayRunner(sc, labs={"client": lab_a, "server": lab_b}, relay=relay,
                                 on_step=on_step)
            progress.runner = runner
            try:
                async with pcap_streamed(trace, run_dir):
                    await runner.start_peers()
                    passed = await runner.run()
            except Exception as e:  # an agent that would not start, the lab: a failed run
                error = f"{type(e).__name__}: {e}"
            finally:
                hold.enter_context(signals_deferred())
                await runner.stop()
                relay.close()
        progress.trace = None  # finished: the outputs below are the run's
        steps = [r.as_dict() for r in runner.results]
        if error is None:
            error = runner.failure()
        ok = passed and error is None
        report, ladder = write_outputs(
            trace, run_dir, name=sc.name, result="pass" if ok else "fail", steps=steps,
            duration=time.monotonic() - t0, error=error,
            extra={"description": sc.description, "mode": "relay", "relay": relay.describe()})
        return Outcome(sc, ok, run_dir, report, ladder)  # (then a signal that came)


# --- netemu relay ---------------------------------------------------------------------

_OVERRIDES = ("loss", "delay", "jitter", "reorder", "duplicate", "corrupt", "rate")


def relay_main(args: Any) -> int:
    """`netemu relay`: bridge two fresh kernel peers until Ctrl-C (or --seconds), then
    write a run directory. 0 done, 2 bad input, 3 environment."""
    import os
    import sys

    from . import units
    from .session import default_run_dir

    parsers = {"loss": units.parse_percent, "duplicate": units.parse_percent,
               "reorder": units.parse_percent, "corrupt": units.parse_percent,
               "delay": units.parse_duration, "jitter": units.parse_duration,
               "rate": units.parse_rate}
    overrides: dict[str, Any] = {}
    for name in _OVERRIDES:
        raw = getattr(args, name, None)
        if raw is None:
            continue
        try:
            overrides[name] = parsers[name](raw)
        except ValueError as e:
            print(f"netemu relay: --{name} {raw}: {e}", file=sys.stderr)
            return 2
    if os.geteuid() != 0:
        print("netemu relay: needs root to create network namespaces", file=sys.stderr)
        return 3
    run_dir = Path(args.output) if args.output else default_run_dir("relay")
    try:
        return asyncio.run(_relay_session(overrides, args.seconds, run_dir, args.seed))
    except KeyboardInterrupt:
        return 130


def _pipelines(overrides: dict[str, Any], seed: int) -> tuple[Any, Any]:
    from ..impair import ImpairConfig, Impairment

    cfg = ImpairConfig(**{k: float(v) for k, v in overrides.items()}, limit=100_000)
    if not cfg.active:
        return None, None
    return Impairment(cfg, seed=seed * 2), Impairment(cfg, seed=seed * 2 + 1)


async def _relay_session(overrides: dict[str, Any], seconds: float | None, run_dir: Path,
                         seed: int) -> int:
    import signal

    from ..lab.core import Lab

    out_pipe, in_pipe = _pipelines(overrides, seed)
    t0 = time.monotonic()
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    with Lab(peer_ip=CLIENT_IP, emu_ip=EMU_IP) as lab_a, \
            Lab(peer_ip=SERVER_IP, emu_ip=EMU_IP) as lab_b:
        trace = Trace(emulator_ip=lab_a.peer_ip, peer_ip=lab_b.peer_ip)
        relay = await Relay(lab_a.open_link(filtered=False), lab_b.open_link(filtered=False),
                            trace=trace, client_ip=lab_a.peer_ip, server_ip=lab_b.peer_ip,
                            impair_out=out_pipe, impair_in=in_pipe).start()
        labs = {"client": lab_a, "server": lab_b}
        poller = PeerView(labs, trace, relay_record(trace)).start()
        imp = ", ".join(f"{k} {v:g}" for k, v in overrides.items()) or "none"
        print(f"relay up: client {lab_a.peer_ip} (lab {lab_a.runid}) ⇄ netemu ⇄ server "
              f"{lab_b.peer_ip} (lab {lab_b.runid}); impairments (each way): {imp}")
        for role, lab in labs.items():
            enter = lab.describe()["enter"].get("peer", "")
            print(f"  {role} {lab.peer_ip}: {enter} PROGRAM …")
        enter_a = lab_a.describe()["enter"].get("peer", "")
        enter_b = lab_b.describe()["enter"].get("peer", "")
        print(f"  e.g. {enter_b} python3 -m http.server 8080\n"
              f"       {enter_a} curl http://{lab_b.peer_ip}:8080/")
        print("  (`netemu lab list` shows both labs.) "
              + (f"Stopping after {seconds:g} s." if seconds else "Ctrl-C stops.")
              + f" Run directory: {run_dir}", flush=True)
        handled = []
        for sig in (signal.SIGINT, signal.SIGTERM):
            with contextlib.suppress(ValueError, RuntimeError, NotImplementedError):
                loop.add_signal_handler(sig, stop.set)
                handled.append(sig)
        try:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), seconds)
        finally:
            for sig in handled:
                loop.remove_signal_handler(sig)
            poller.stop()
            relay.close()
    write_outputs(trace, run_dir, name="relay", result="pass", steps=[],
                  duration=time.monotonic() - t0, error=None,
                  extra={"mode": "relay", "relay": relay.describe(),
                         "impairments": overrides})
    segs = sum(1 for f in trace.frames if _segment(f.data) is not None)
    print(f"relay down: {len(trace.frames)} frames ({segs} TCP segments, "
          f"{relay.stats['dropped']} dropped) → {run_dir}")
    return 0
