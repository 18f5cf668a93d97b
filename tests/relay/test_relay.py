"""Relay mode: two kernels bridged by netemu at layer 2 (netemu/host/relay.py), the
relay scenarios (netemu/scenario/relay_runner.py) and their schema rules."""

from __future__ import annotations

import asyncio
import subprocess
import sys
from pathlib import Path

import pytest

from netemu.scenario.loader import validate_text

ROOT = Path(__file__).resolve().parents[2]


def _run(coro):
    return asyncio.run(asyncio.wait_for(coro, 30))


async def _bridged(body):
    from netemu.host.relay import Relay
    from netemu.lab import Lab

    with Lab(peer_ip="198.18.0.2") as a, Lab(peer_ip="198.18.0.3") as b:
        relay = await Relay(
            a.open_link(filtered=False),
            b.open_link(filtered=False),
            client_ip=a.peer_ip,
            server_ip=b.peer_ip,
        ).start()
        try:
            return await body(a, b, relay)
        finally:
            relay.close()


@pytest.mark.root
def test_bridge_passes_a_kernel_connection_byte_exact():
    data = bytes((i * 7 + i // 251) & 0xFF for i in range(300_000))

    async def body(a, b, relay):
        client, server = a.start_agent().aio, b.start_agent().aio
        ls = await server.listen(8080)
        c = await client.connect(b.peer_ip, 8080, timeout=5)
        acc = await server.accept(ls.sock, timeout=5)
        assert acc.peer == (a.peer_ip, c.local[1])
        sending = asyncio.create_task(client.send(c.sock, data, timeout=10))
        got = await server.recv(acc.sock, exact=len(data), timeout=10)
        await sending
        await server.send(acc.sock, b"reply", timeout=5)
        back = await client.recv(c.sock, exact=5, timeout=5)
        return got, back, relay

    got, back, relay = _run(_bridged(body))
    assert got == data and back == b"reply"
    dirs = {f.direction for f in relay.trace.frames}
    assert dirs == {"out", "in"}
    assert relay.stats["dropped"] == 0
    assert relay.stats["relayed"] == relay.stats["out"] + relay.stats["in"]


@pytest.mark.root
def test_drop_rule_drops_exactly_one_fin_and_the_kernel_retransmits_it():
    from netemu.host import DropRule
    from netemu.run.hooks import Hooks
    from netemu.wire import FIN, parse_frame

    async def body(a, b, relay):
        Hooks().attach(relay).rules.append(
            DropRule("in", lambda seg: bool(seg.flags & FIN), 1, description="server FIN")
        )
        client, server = a.start_agent().aio, b.start_agent().aio
        ls = await server.listen(8080)
        c = await client.connect(b.peer_ip, 8080, timeout=5)
        acc = await server.accept(ls.sock, timeout=5)
        await server.close(acc.sock)
        await asyncio.sleep(0.1)
        assert [s.state for s in a.peer_sockets() if s.remote[1] == 8080] == ["ESTABLISHED"]
        for _ in range(300):  # the retransmitted FIN arrives: the client goes CLOSE-WAIT
            if [s.state for s in a.peer_sockets() if s.remote[1] == 8080] == ["CLOSE-WAIT"]:
                break
            await asyncio.sleep(0.01)
        await client.close(c.sock)
        await asyncio.sleep(0.05)
        return relay

    relay = _run(_bridged(body))
    fins = [
        (f.direction, f.mark)
        for f in relay.trace.frames
        if (seg := parse_frame(f.data, verify=False).tcp) is not None and seg.flags & FIN
    ]
    server_fins = [m for d, m in fins if d == "in"]
    assert server_fins[0] == "dropped" and server_fins[1:] and None in server_fins[1:]
    assert server_fins.count("dropped") == 1
    assert relay.script.rules[0].dropped == 1
    assert ("out", None) in fins  # the client's FIN went through


@pytest.mark.root
@pytest.mark.timeout(120)
def test_relay_lost_fin_ladder_shows_the_drop_and_both_kernels(tmp_path: Path):
    run = subprocess.run(
        [
            sys.executable,
            "-m",
            "netemu",
            "run",
            "-q",
            str(ROOT / "scenarios" / "relay_lost_fin.yaml"),
            "-o",
            str(tmp_path / "run"),
        ],
        capture_output=True,
        text=True,
        timeout=100,
        cwd=ROOT,
    )
    assert run.returncode == 0, run.stdout + run.stderr
    ladder = (tmp_path / "run" / "ladder.txt").read_text()
    assert "(client)" in ladder and "(server)" in ladder
    assert "✗ dropped" in ladder
    fin_lines = [ln for ln in ladder.splitlines() if "FIN+ACK seq=1 ack=1" in ln]
    assert len(fin_lines) == 2 and "dropped" in fin_lines[0] and "dropped" not in fin_lines[1]
    lines = ladder.splitlines()

    def side(state: str) -> set[str]:
        out = set()
        for ln in lines:
            if "▸" in ln:  # a step's line, not a state row
                continue
            # (a timewait socket's sub-state change has no tracepoint: it is polled)
            if ln.rstrip().endswith(("│ " + state, f"│ {state} (polled)")):
                out.add("right")
            elif f" {state} │" in ln:
                out.add("left")
        return out

    assert "left" in side("CLOSE-WAIT")  # the client, after the retransmitted FIN
    assert "right" in side("FIN-WAIT-1")  # the server, while its FIN is lost
    assert "right" in side("FIN-WAIT-2")
    assert "right" in side("TIME-WAIT")


RELAY_HEAD = """name: r
mode: relay
peers: {client: {kind: kernel}, server: {kind: kernel}}
steps:
"""


def _errors(text: str) -> list[str]:
    return [str(e) for e in validate_text(text, "relay.yaml")]


def test_relay_scenario_validates():
    assert (
        _errors(
            RELAY_HEAD
            + """  - peer: {peer: server, listen: 8080}
  - peer: {peer: client, connect: 8080}
  - peer: {peer: server, accept: true}
  - drop: {dir: in, match: {flags: "+F"}}
  - expect_segment: {dir: out, flags: S}
  - expect_peer_state: {peer: client, state: ESTABLISHED}
"""
        )
        == []
    )


@pytest.mark.parametrize(
    ("steps", "where", "message"),
    [
        (
            "  - peer: {peer: server, listen: 8080}\n  - connect: 8080\n",
            "6:5",
            "'connect' acts on netemu's own endpoint, which relay mode does not have",
        ),
        ("  - listen: 8080\n", "5:5", "'listen' acts on netemu's own endpoint"),
        ("  - send: hi\n", "5:5", "'send' acts on netemu's own endpoint"),
        ("  - recv: hi\n", "5:5", "'recv' acts on netemu's own endpoint"),
        ("  - close\n", "5:5", "'close' acts on netemu's own endpoint"),
        ("  - inject: {flags: S}\n", "5:5", "'inject' acts on netemu's own endpoint"),
        ("  - peer: {listen: 8080}\n", "5:5", "several peers (client, server): say which"),
        (
            "  - peer: {peer: client, accept: true}\n",
            "5:5",
            "peer 'client' accepts without an earlier peer listen",
        ),
        (
            "  - peer: {peer: client, connect: 80}\n  - expect_segment: {dir: out, conn: d}\n",
            "6:38",
            "unknown connection 'd'",
        ),
    ],
)
def test_relay_mode_errors_have_file_line_col(steps: str, where: str, message: str):
    errors = _errors(RELAY_HEAD + steps)
    assert any(e.startswith(f"relay.yaml:{where}: ") and message in e for e in errors), errors


def test_relay_mode_needs_client_and_server_kernel_peers():
    errors = _errors("name: r\nmode: relay\npeer: kernel\nsteps:\n  - sleep: 1s\n")
    assert any(e.startswith("relay.yaml:3:1: ") and "two kernel peers" in e for e in errors)
    errors = _errors(
        "name: r\nmode: relay\npeers: {a: kernel, server: go-hello}\nsteps:\n  - sleep: 1s\n"
    )
    assert any("client and server" in e for e in errors), errors
    assert any("go-hello peer" in e for e in errors), errors
    errors = _errors("name: r\nmode: relais\npeer: kernel\nsteps:\n  - sleep: 1s\n")
    assert any(e.startswith("relay.yaml:2:7: ") and "did you mean 'relay'" in e for e in errors), (
        errors
    )
