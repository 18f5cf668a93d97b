"""False passes of issue 16: a `within` window is the time of the thing expected, not
the time the runner's poll got to look. The event loop can be held up (a busy host, a
garbage collection): a frame, a state or an event that came after the deadline, seen
by a poll that woke late, passed. Each test fails on the code before its fix.

These run the runner's expectations on a trace and connections of their own (no lab):
``_stall`` holds the event loop past the window, as a busy host would, and records
the expected thing at its end, the moment the host would have read it."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from types import SimpleNamespace

import pytest

from netemu.run.result import StepFailed
from netemu.scenario.loader import load_scenario_text
from netemu.scenario.runner import Runner
from netemu.tcp import State
from netemu.tcp.events import Connected
from netemu.trace.record import StateRecord, Trace
from netemu.wire import IPv4Packet, TcpSegment
from netemu.wire.frame import build_tcp_frame

EMU, PEER = ("198.18.0.1", 40000), ("198.18.0.2", 8080)
STALL = 0.08  # the event loop held up for 80 ms, past every 50 ms window below


def _runner(steps: str) -> tuple[Runner, Trace, SimpleNamespace]:
    sc = load_scenario_text(f"name: w\npeer: kernel\nsteps:\n{steps}", "w.yaml")
    trace = Trace(emulator_ip=EMU[0], peer_ip=PEER[0])
    host = SimpleNamespace(trace=trace, names={}, event_log={}, event_times={})
    return Runner(sc, lab=None, host=host), trace, host  # type: ignore[arg-type]


class _Conn:
    """The public face of a netemu.tcp.Connection that the expectations read."""

    def __init__(self, state: State) -> None:
        self.state = state
        self.local_ip, self.local_port = EMU
        self.remote_ip, self.remote_port = PEER
        self.iss, self.irs = 1000, 5000


def _open(runner: Runner, state: State) -> _Conn:
    """Connection c, as a connect step leaves it."""
    conn = _Conn(state)
    ctx = runner._ctx("c")
    ctx.conn, ctx.local_port, ctx.peer_port = conn, EMU[1], PEER[1]  # type: ignore[assignment]
    return conn


def _run(runner: Runner, step_index: int, at_end_of_stall: Callable[[], None]) -> None:
    async def main() -> None:
        def stall() -> None:
            time.sleep(STALL)
            at_end_of_stall()

        asyncio.get_running_loop().call_later(0.001, stall)
        await runner._run_step(runner.sc.steps[step_index])

    asyncio.run(main())


def test_a_segment_after_within_does_not_match_however_late_the_poll():
    runner, trace, _ = _runner("  - expect_segment: {dir: out, flags: S, within: 50ms}\n")
    syn = build_tcp_frame(
        "02:00:00:00:00:01",
        "02:00:00:00:00:02",
        IPv4Packet(EMU[0], PEER[0], 6),
        TcpSegment(EMU[1], PEER[1], 1000, 0, 0x02, 65535),
    )
    with pytest.raises(StepFailed, match="too late"):
        _run(runner, 0, lambda: trace.frame("out", syn))


def test_a_state_reached_after_within_does_not_pass_however_late_the_poll():
    runner, trace, _ = _runner(
        "  - connect: {port: 8080, wait: false}\n"
        "  - expect_state: {state: ESTABLISHED, within: 50ms}\n"
    )
    conn = _open(runner, State.SYN_SENT)

    def established() -> None:
        conn.state = State.ESTABLISHED
        trace.states.append(
            StateRecord(time.monotonic(), "c", EMU, PEER, "SYN-SENT", "ESTABLISHED", "recv SYN+ACK")
        )

    with pytest.raises(StepFailed, match="after within"):
        _run(runner, 1, established)


def test_a_state_reached_before_the_step_passes():
    runner, trace, _ = _runner(
        "  - connect: {port: 8080, wait: false}\n"
        "  - expect_state: {state: ESTABLISHED, within: 50ms}\n"
    )
    _open(runner, State.ESTABLISHED)
    trace.states.append(
        StateRecord(time.monotonic() - 1, "c", EMU, PEER, "SYN-SENT", "ESTABLISHED", "recv SYN+ACK")
    )
    asyncio.run(runner._run_step(runner.sc.steps[1]))


def test_an_event_after_within_does_not_pass_however_late_the_poll():
    runner, _, host = _runner(
        "  - connect: {port: 8080, wait: false}\n"
        "  - expect_event: {event: connected, within: 50ms}\n"
    )
    conn = _open(runner, State.SYN_SENT)

    def connected() -> None:
        host.event_log.setdefault(conn, []).append(Connected())
        host.event_times.setdefault(conn, []).append(time.monotonic())

    with pytest.raises(StepFailed, match="after within"):
        _run(runner, 1, connected)
