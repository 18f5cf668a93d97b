"""The kernel peers' agents of a scenario run (netemu/lab/agent.py: real kernel sockets
on command, a Python subprocess in the peer namespace).

An agent takes ~30-50 ms to start (a fresh interpreter, then its first reply). A peer
that a ``peer:`` step of the scenario commands gets its agent started in the
background as the run sets up (``prestart``, before the first step), so that its first
peer step finds it ready instead of waiting for it; a peer no step commands gets none
(a run that never uses it does not pay for a subprocess). What each cost is in the
run's report.json (``agents``: ``start_ms``, spawn to first reply; ``wait_ms``, how long
its first peer step waited for it) and in ``netemu bench run``'s ``agent_start_ms``.
Layer: netemu.scenario.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import time
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from ..run.result import StepFailed
from . import schema as S

if TYPE_CHECKING:
    from ..lab.core import Lab
    from ..lab.kernel import KernelAgent


class Agents:
    """The agents of the kernel peers, by peer name, each in its peer's lab."""

    def __init__(self, labs: dict[str, Lab]) -> None:
        self.labs = labs
        self._started: dict[str, asyncio.Future[KernelAgent]] = {}
        self._t0: dict[str, float] = {}
        self.timing: dict[str, dict[str, float]] = {}

    def prestart(self, steps: Sequence[S.StepBase], default: str | None) -> None:
        """Start now, on a thread of their own, the agents of the peers a ``peer:`` step
        commands (``default``: the peer a step that names none commands). The thread
        starts at once, not when the event loop next runs: the run's set-up (the
        peer view's tracepoints, ~60 ms) runs on the loop's thread meanwhile."""
        wanted = {
            step.peer or default
            for step in steps
            if isinstance(step, S.PeerStep) and (step.peer or default) in self.labs
        }
        for name in self.labs:
            if name in wanted:
                self._start(name)

    def only(self) -> str | None:
        """The peer a ``peer:`` step that names none commands: the only kernel peer."""
        return next(iter(self.labs)) if len(self.labs) == 1 else None

    def _start(self, name: str) -> asyncio.Future[KernelAgent]:
        started = self._started.get(name)
        if started is None:
            self._t0[name] = time.monotonic()
            start = functools.partial(self._spawn, self.labs[name], name)
            started = asyncio.get_running_loop().run_in_executor(None, start)
            self._started[name] = started
        return started

    def _spawn(self, lab: Lab, name: str) -> KernelAgent:
        agent = lab.start_agent(name=f"agent-{name}")
        self.timing[name] = {"start_ms": round((time.monotonic() - self._t0[name]) * 1000, 2)}
        return agent

    async def get(self, peer: str | None) -> KernelAgent:
        """The peer's agent, started now if it was not already; the first call for a
        peer records how long it waited for it."""
        if peer is None:
            peer = self.only()
        if peer is None or peer not in self.labs:
            raise StepFailed(
                "name the peer: this scenario has several kernel peers"
                if peer is None
                else f"unknown peer {peer!r} (kernel peers: {', '.join(self.labs)})"
            )
        started = self._start(peer)
        t0 = time.monotonic()
        agent = await started
        timing = self.timing[peer]
        if "wait_ms" not in timing:
            timing["wait_ms"] = round((time.monotonic() - t0) * 1000, 2)
        return agent

    async def settle(self) -> None:
        """Every agent started is up (or failed) before the lab goes down: none is left
        half-spawned while the lab stops its processes."""
        for started in self._started.values():
            with contextlib.suppress(Exception):
                await started

    def report(self) -> dict[str, Any]:
        """report.json's ``agents``: {peer: {start_ms, wait_ms}}; {} when none started."""
        return {name: dict(t) for name, t in self.timing.items()}
