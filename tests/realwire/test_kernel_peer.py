"""netemu's endpoint against the Linux kernel and the Go server, on a real veth."""

from __future__ import annotations

import asyncio
import os
import time

import anyio
import pytest

from netemu.tcp import State
from netemu.testing.wirecheck import assert_clean_wire, echo_stream, relative_segments

pytestmark = [pytest.mark.root, pytest.mark.timeout(120)]
TEN_MIB = 10 * 1024 * 1024


async def _peer_state(lab, port: int, want: str, timeout: float = 3.0) -> str:
    """The kernel's state of its socket on ``port`` (by sock_diag), once it is ``want``."""
    end = time.monotonic() + timeout
    states: list[str] = []
    while time.monotonic() < end:
        states = [s.state for s in lab.peer_sockets(port=port) if s.state != "LISTEN"]
        if want in states:
            return want
        await asyncio.sleep(0.01)
    return ",".join(states) or "none"


async def test_netemu_client_kernel_echo_10mib_each_way(lab_host):
    lab, host = lab_host
    agent = lab.start_agent()
    await agent.aio.echo(9000)
    stream = await host.connect(lab.peer_ip, 9000)
    data = os.urandom(TEN_MIB)

    async def read_all() -> bytes:
        buf = bytearray()
        while len(buf) < len(data):
            buf += await stream.receive()
        return bytes(buf)

    reader = asyncio.create_task(read_all())
    await stream.send(data)
    assert await asyncio.wait_for(reader, 60) == data
    await stream.aclose()
    assert_clean_wire(host)


async def test_kernel_client_netemu_server_10mib_each_way(lab_host):
    """A kernel client sends 10 MiB to a netemu echo server and reads it all back:
    each direction byte-exact (the kernel compares what it got with what it sent)."""
    lab, host = lab_host
    listener = await host.listen(7000)
    agent = lab.start_agent()
    data = os.urandom(TEN_MIB)

    async def netemu_echo() -> int:
        s = await listener.accept(timeout=10)
        return await echo_stream(s)

    server = asyncio.create_task(netemu_echo())
    conn = await agent.aio.connect(lab.emu_ip, 7000)
    back = asyncio.create_task(agent.aio.recv(conn.sock, exact=len(data), timeout=90))
    await agent.aio.send(conn.sock, data, timeout=90)
    await agent.aio.shutdown(conn.sock, "wr")
    assert await asyncio.wait_for(back, 100) == data
    assert await asyncio.wait_for(server, 10) == len(data)
    assert_clean_wire(host)


@pytest.mark.go
async def test_go_hello_conversation(lab_host):
    lab, host = lab_host
    lab.start_go("hello")
    stream = await host.connect(lab.peer_ip, 8080)
    await stream.send(b"hello, xiao mei.")
    reply = bytearray()
    with pytest.raises(anyio.EndOfStream):
        while True:
            reply += await stream.receive()
    assert bytes(reply) == b"hello, xiao ming.\n"
    await stream.aclose()
    segs = relative_segments(host)
    # The reply acknowledges our 16 bytes: relative ack 17 (SYN + 16).
    replies = [s for s in segs if s[0] == "in" and s[4] > 0]
    assert replies and replies[0][3] == 17, segs
    fins = [s for s in segs if s[0] == "in" and "F" in s[1]]
    assert fins, segs
    assert_clean_wire(host)


async def test_active_close_both_sides_states(lab_host):
    """We close first: FIN-WAIT-2 here while the kernel sits in CLOSE-WAIT, then
    the kernel closes: LAST-ACK there, TIME-WAIT here."""
    lab, host = lab_host
    agent = lab.start_agent()
    lst = await agent.aio.listen(9100)
    stream = await host.connect(lab.peer_ip, 9100)
    acc = await agent.aio.accept(lst.sock)
    await stream.send_eof()
    await stream.wait_state(State.FIN_WAIT_2, timeout=3)
    assert await _peer_state(lab, 9100, "CLOSE-WAIT") == "CLOSE-WAIT"
    await agent.aio.close(acc.sock)
    await stream.wait_state(State.TIME_WAIT, timeout=3)
    assert await _peer_state(lab, 9100, "CLOSED") in ("CLOSED", "none")
    ours = [(r.old, r.new) for r in host.trace.states]
    assert ours[-3:] == [
        ("ESTABLISHED", "FIN-WAIT-1"),
        ("FIN-WAIT-1", "FIN-WAIT-2"),
        ("FIN-WAIT-2", "TIME-WAIT"),
    ]
    assert_clean_wire(host)


async def test_passive_close_both_sides_states(lab_host):
    """The kernel closes first: FIN-WAIT-2 there, CLOSE-WAIT here; then we close:
    LAST-ACK here, TIME-WAIT there."""
    lab, host = lab_host
    agent = lab.start_agent()
    lst = await agent.aio.listen(9200)
    stream = await host.connect(lab.peer_ip, 9200)
    acc = await agent.aio.accept(lst.sock)
    await agent.aio.shutdown(acc.sock, "wr")
    await stream.wait_state(State.CLOSE_WAIT, timeout=3)
    assert await _peer_state(lab, 9200, "FIN-WAIT-2") == "FIN-WAIT-2"
    await stream.aclose()
    await stream.wait_state(State.CLOSED, timeout=3)
    assert await _peer_state(lab, 9200, "TIME-WAIT") == "TIME-WAIT"
    ours = [(r.old, r.new) for r in host.trace.states]
    assert ours[-3:] == [
        ("ESTABLISHED", "CLOSE-WAIT"),
        ("CLOSE-WAIT", "LAST-ACK"),
        ("LAST-ACK", "CLOSED"),
    ]
    assert_clean_wire(host)
