"""The kernel agents of a scenario run (netemu/scenario/agents.py): started on a thread
as soon as the run sets up, for the peers its ``peer:`` steps command only; a first
peer step then finds its agent ready. A fake lab stands in for the real one (the real
run's report.json: tests/bench/test_bench_run.py)."""

from __future__ import annotations

import asyncio
import threading
import time
from typing import Any

import pytest

from netemu.run.result import StepFailed
from netemu.scenario.agents import Agents
from netemu.scenario.loader import load_scenario_text


class FakeLab:
    def __init__(self) -> None:
        self.started: list[tuple[str, str]] = []  # (agent name, thread name)
        self.release = threading.Event()

    def start_agent(self, *, name: str) -> Any:
        self.started.append((name, threading.current_thread().name))
        assert self.release.wait(5)
        return f"agent of {name}"


def _steps(text: str) -> list[Any]:
    return list(load_scenario_text(text).steps)


TWO = "name: x\npeers: {a: kernel, b: kernel}\nsteps:\n"


def test_prestart_starts_the_commanded_peers_at_once_on_a_thread() -> None:
    steps = _steps(TWO + "  - sleep: 0s\n  - peer: {peer: b, listen: 8080}\n")
    labs = {"a": FakeLab(), "b": FakeLab()}

    async def main() -> None:
        agents = Agents(dict(labs))  # type: ignore[arg-type]
        agents.prestart(steps, default=agents.only())
        # No await yet: the thread runs while the event loop's thread is busy (the run's
        # set-up), not only once the loop next gets control.
        deadline = time.monotonic() + 5
        while not labs["b"].started and time.monotonic() < deadline:
            time.sleep(0.001)
        assert labs["b"].started and labs["b"].started[0][0] == "agent-b"
        assert labs["b"].started[0][1] != threading.current_thread().name
        assert labs["a"].started == []  # no step commands peer a: no agent for it
        time.sleep(0.05)  # the set-up goes on; the agent gets ready meanwhile
        labs["b"].release.set()
        await asyncio.sleep(0.05)
        assert await agents.get("b") == "agent of agent-b"
        report = agents.report()
        assert set(report) == {"b"}
        assert report["b"]["start_ms"] >= 50  # (it waited for the release)
        assert report["b"]["wait_ms"] < report["b"]["start_ms"]
        await agents.settle()

    asyncio.run(main())


def test_an_agent_no_step_announced_starts_on_first_use() -> None:
    lab = FakeLab()
    lab.release.set()

    async def main() -> None:
        agents = Agents({"peer": lab})  # type: ignore[dict-item]
        agents.prestart([], default=agents.only())
        await asyncio.sleep(0.02)
        assert lab.started == []
        assert await agents.get(None) == "agent of agent-peer"  # the only kernel peer
        assert set(agents.report()["peer"]) == {"start_ms", "wait_ms"}
        await agents.settle()

    asyncio.run(main())


def test_a_step_naming_no_peer_among_several_fails() -> None:
    steps = _steps(TWO + "  - peer: {peer: a, listen: 8080}\n")
    labs = {"a": FakeLab(), "b": FakeLab()}
    for lab in labs.values():
        lab.release.set()

    async def main() -> None:
        agents = Agents(dict(labs))  # type: ignore[arg-type]
        assert agents.only() is None
        agents.prestart(steps, default=agents.only())
        with pytest.raises(StepFailed, match="name the peer"):
            await agents.get(None)
        with pytest.raises(StepFailed, match="unknown peer 'c'"):
            await agents.get("c")
        await agents.settle()
        assert [n for n, _ in labs["a"].started] == ["agent-a"] and labs["b"].started == []

    asyncio.run(main())
