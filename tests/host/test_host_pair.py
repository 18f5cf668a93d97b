"""Two emulated hosts joined by a socket pair: the asyncio adapter without root."""

from __future__ import annotations

import asyncio

import anyio
import pytest

from netemu.host import Host
from netemu.tcp import State, TcpConfig
from netemu.testing.links import socketpair_links

A_IP, B_IP = "198.18.0.1", "198.18.0.2"
A_MAC, B_MAC = "02:00:00:00:00:01", "02:00:00:00:00:02"


async def _pair(config: TcpConfig | None = None) -> tuple[Host, Host]:
    la, lb = socketpair_links()
    a = await Host(la, A_IP, A_MAC, config=config, isn_secret=b"a" * 16).start()
    b = await Host(lb, B_IP, B_MAC, config=config, isn_secret=b"b" * 16).start()
    return a, b


async def test_arp_resolves_both_ways():
    a, b = await _pair()
    assert await a.resolve(B_IP) == B_MAC
    assert b.arp_cache[A_IP] == A_MAC  # learned from the request aimed at it
    a.close()
    b.close()


async def test_arp_through_a_delay_pipeline_waits_the_delay_not_the_retry():
    # An ARP request sent by resolve() (no flush after it) into a delay pipeline: the
    # host's timer must wake for it. It did not, and the request waited for the 1 s
    # retry (every scenario with `network: {delay: ...}` connected a second late).
    from netemu.run.impair import pipelines

    a, b = await _pair()
    a.impair_out, a.impair_in = pipelines({"delay": 0.02}, {}, seed=1)
    t0 = asyncio.get_running_loop().time()
    assert await a.resolve(B_IP) == B_MAC
    took = asyncio.get_running_loop().time() - t0
    assert 0.02 <= took < 0.5, took
    a.close()
    b.close()


async def test_stream_transfer_byte_exact_and_close_states():
    a, b = await _pair()
    listener = await b.listen(8080)
    payload = bytes(range(256)) * 4096  # 1 MiB

    async def server() -> bytes:
        s = await listener.accept(timeout=5)
        got = bytearray()
        try:
            while True:
                got += await s.receive()
        except anyio.EndOfStream:
            pass
        assert s.state is State.CLOSE_WAIT
        await s.send(b"bye")
        await s.aclose()
        return bytes(got)

    srv = asyncio.create_task(server())
    c = await a.connect(B_IP, 8080)
    assert c.state is State.ESTABLISHED
    await c.send(payload)
    await c.send_eof()
    assert await c.receive() == b"bye"
    with pytest.raises(anyio.EndOfStream):
        await c.receive()
    assert await asyncio.wait_for(srv, 10) == payload
    await c.wait_state(State.TIME_WAIT, timeout=5)
    states = [(r.old, r.new) for r in a.trace.states]
    assert ("FIN-WAIT-1", "FIN-WAIT-2") in states and ("FIN-WAIT-2", "TIME-WAIT") in states
    a.close()
    b.close()


async def test_closed_port_answers_rst_and_connect_is_refused():
    a, b = await _pair()
    from netemu.host import ConnectionRefused

    with pytest.raises(ConnectionRefused):
        await a.connect(B_IP, 9, timeout=5)
    assert b.stats["rst_sent"] == 1
    a.close()
    b.close()


async def test_icmp_echo_is_answered():
    from netemu.wire import ICMP_ECHO_REQUEST, IcmpEcho, IPv4Packet, parse_frame
    from netemu.wire.ethernet import ETHERTYPE_IPV4, EthernetFrame

    a, b = await _pair()
    await a.resolve(B_IP)
    body = IcmpEcho(ICMP_ECHO_REQUEST, 0, 7, 1, b"ping").emit()
    frame = (
        EthernetFrame(B_MAC, A_MAC, ETHERTYPE_IPV4).header()
        + IPv4Packet(A_IP, B_IP, 1).header(len(body))
        + body
    )
    a.inject_frame(frame)
    for _ in range(50):
        await asyncio.sleep(0.01)
        replies = [parse_frame(f.data) for f in a.trace.frames if f.direction == "in"]
        replies = [r for r in replies if r.icmp is not None and r.icmp.type == 0]
        if replies:
            break
    assert replies and replies[0].icmp.payload == b"ping" and replies[0].icmp.identifier == 7
    a.close()
    b.close()
