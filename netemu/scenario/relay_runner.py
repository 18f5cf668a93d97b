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

Also here: ``run_relay_scenario`` (what ``netemu run`` calls for a relay scenario);
the labs and the relay are netemu.run.relay's. Layer: netemu.scenario, on netemu.run.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from pathlib import Path
from typing import Any

from ..host.relay import Relay
from ..lab.core import Lab
from ..run.peerview import PeerView, relay_record
from ..run.relay import ROLES, relay_account, relay_labs
from ..run.result import OnStep, Outcome, StepFailed
from ..run.rundir import Progress, pcap_streamed, write_run_dir
from ..trace.record import NoteRecord, Trace
from . import schema as S
from .agents import Agents
from .conns import ConnCtx, segment_of
from .peer_steps import peer_connect, peer_listen, sock_step
from .runner import Runner
from .settings import impairments, interrupted_account, lab_args, link_notes


class RelayConn(ConnCtx):
    """A kernel-to-kernel connection: ``local_port`` is the client's port,
    ``peer_port`` the server's; ``isns.ours`` the client's ISN, ``isns.peers`` the
    server's (so the base matching reads "out" seq from the client's ISN)."""

    def learn_isns(self, trace: Trace) -> None:
        if self.isns.ours is not None and self.isns.peers is not None:
            return
        for f in trace.frames:
            seg = segment_of(f.data)
            if seg is None or not seg.flags & 0x02 or not self.owns(seg, f.direction):
                continue
            if f.direction == "out" and self.isns.ours is None:
                self.isns.ours = seg.seq
            elif f.direction == "in" and self.isns.peers is None:
                self.isns.peers = seg.seq


class RelayRunner(Runner):
    def __init__(
        self,
        scenario: S.Scenario,
        *,
        labs: dict[str, Lab],
        relay: Relay,
        on_step: OnStep | None = None,
    ) -> None:
        super().__init__(scenario, lab=labs["client"], host=relay, on_step=on_step)  # type: ignore[arg-type]
        self.labs = labs
        self.relay = relay
        self.socks: dict[tuple[str, str], int] = {}  # (peer, conn) -> the agent's socket
        self.listening: dict[str, dict[int, int]] = {p: {} for p in labs}  # peer -> port -> sock

    async def start_peers(self) -> None:
        self.agents = Agents(self.labs)  # each peer's agent in its own lab
        # the agents the steps use, started on threads now (a step names none: client's)
        self.agents.prestart(self.sc.steps, default="client")
        self.peers = PeerView(self.labs, self.trace, relay_record(self.trace)).start()

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
        agent = (await self.agents.get(peer)).aio
        timeout = self._timeout(step.timeout)
        if (listen := step.listen) is not None:
            lst = await peer_listen(agent, listen, bool(self.labs[peer].peer_ip6))
            self.listening[peer][listen.port] = lst.sock
            return
        ctx = self._ctx(step.conn)
        if (accept := step.accept) is not None:
            mine = self.listening[peer]
            if not mine:
                raise StepFailed(f"peer {peer} is not listening")
            port = accept.port if accept.port is not None else next(iter(mine))
            acc = await agent.accept(mine[port], timeout=timeout)
            self.socks[(peer, ctx.name)] = acc.sock
            self._ports(ctx, peer, port, acc.peer[1] if acc.peer else None)
            ctx.learn_isns(self.trace)
            return
        if (c := step.connect) is not None:
            other = self.labs["server" if peer == "client" else "client"]
            ip = other.peer_ip6 if self.sc.family_of(ctx.name) == "ipv6" else other.peer_ip
            assert ip is not None  # (an IPv6 scenario's labs are IPv6 ones)
            res = await peer_connect(agent, ip, c, timeout)
            self.socks[(peer, ctx.name)] = res.sock
            self._ports(ctx, peer, res.local[1] if res.local else None, c.port)
            ctx.learn_isns(self.trace)
            return
        sock = self.socks.get((peer, ctx.name))
        if sock is None:
            raise StepFailed(
                f"peer {peer} has no socket for connection '{ctx.name}' "
                "(peer connect or peer accept first)"
            )
        await sock_step(agent, sock, step, timeout, who=f"peer {peer}", clip=60)

    def _peer_role(self, step: S.ExpectPeerState) -> str:
        return step.peer or "client"

    def _peer_ports(self, role: str, ctx: ConnCtx) -> tuple[int | None, int | None]:
        return (
            (ctx.local_port, ctx.peer_port) if role == "client" else (ctx.peer_port, ctx.local_port)
        )


# --- running ------------------------------------------------------------------------


async def run_relay_scenario(
    sc: S.Scenario,
    run_dir: Path,
    *,
    on_step: OnStep | None = None,
    overrides: dict[str, Any] | None = None,
) -> Outcome:
    """``netemu run`` of a ``mode: relay`` scenario."""
    extra = {"mode": "relay"}
    progress = Progress(
        sc.name,
        run_dir,
        time.monotonic(),
        roles=ROLES,
        account=interrupted_account(sc, None, extra),
    )
    try:
        return await _run_relay(sc, run_dir, on_step, overrides, progress)
    except (asyncio.CancelledError, KeyboardInterrupt, SystemExit):  # as run_scenario
        progress.write_interrupted()
        raise


async def _run_relay(
    sc: S.Scenario,
    run_dir: Path,
    on_step: OnStep | None,
    overrides: dict[str, Any] | None,
    progress: Progress,
) -> Outcome:
    from ..lab.core import signals_deferred

    passed = False
    error: str | None = None
    # From the run's end to its outputs written, signals wait (a SIGTERM between the
    # labs' teardown and the report killed the process with only the pcap written).
    with contextlib.ExitStack() as hold:
        async with relay_labs(
            lab_args(sc, "client"),
            lab_args(sc, "server"),
            impairments(sc, overrides),
            ipv6=sc.uses_ipv6(),
            mtu=sc._link_mtu,
        ) as up:
            progress.trace = up.trace
            for note in link_notes(sc):
                up.trace.notes.append(NoteRecord(time.monotonic(), note, "note"))
            runner = RelayRunner(sc, labs=up.labs, relay=up.relay, on_step=on_step)
            progress.account = interrupted_account(sc, runner, {"mode": "relay"})
            try:
                async with pcap_streamed(up.trace, run_dir):
                    await runner.start_peers()
                    passed = await runner.run()
            except Exception as e:  # an agent that would not start, the lab: a failed run
                error = f"{type(e).__name__}: {e}"
            finally:
                hold.enter_context(signals_deferred())
                await runner.stop()
        progress.trace = None  # finished: the outputs below are the run's
        if error is None:
            error = runner.failure()
        ok = passed and error is None
        report, ladder = write_run_dir(
            up.trace,
            run_dir,
            name=sc.name,
            result="pass" if ok else "fail",
            steps=[r.as_dict() for r in runner.results],
            duration=time.monotonic() - progress.t0,
            error=error,
            roles=ROLES,
            extra={
                "description": sc.description,
                "mode": "relay",
                "relay": relay_account(up.relay, runner.hooks),
            },
        )
        return Outcome(sc, ok, run_dir, report, ladder)  # (then a signal that came)
