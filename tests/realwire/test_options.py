"""TCP options against the Linux kernel on a real veth (root; never skipped in CI):
window scale, timestamps and SACK-permitted negotiated as the kernel offers
them, seen on the SYN and SYN-ACK of our recorded trace; bulk transfers both
ways with each congestion control; SACK recovery of segments we drop.
"""

from __future__ import annotations

import asyncio
import os

import pytest

from netemu.host import DropRule, Host
from netemu.run.hooks import Hooks
from netemu.tcp import CongestionChanged, TcpConfig
from netemu.testing.wirecheck import assert_clean_wire, echo_stream
from netemu.wire import ACK, SYN, parse_frame
from netemu.wire.tcp import (
    MssOption,
    SackPermittedOption,
    TimestampOption,
    WindowScaleOption,
)

pytestmark = [pytest.mark.root, pytest.mark.timeout(180)]
TEN_MIB = 10 * 1024 * 1024
ALL = {MssOption, SackPermittedOption, TimestampOption, WindowScaleOption}


def _handshake(host: Host) -> tuple:
    """The SYN and SYN-ACK of the first connection in the trace, as recorded."""
    syn = synack = None
    for f in host.trace.frames:
        seg = parse_frame(f.data).tcp
        if seg is None:
            continue
        if seg.flags & (SYN | ACK) == SYN and syn is None:
            syn = (f.direction, seg)
        elif seg.flags & (SYN | ACK) == SYN | ACK and synack is None:
            synack = (f.direction, seg)
    assert syn is not None and synack is not None
    return syn, synack


def _kinds(seg) -> set:
    return {type(o) for o in seg.options} & ALL


async def _lab_host(peer_sysctls: dict | None = None):
    from netemu.lab.core import Lab

    lab = Lab(peer_sysctls=peer_sysctls or {})
    lab.__enter__()
    host = await Host(lab.open_link(), lab.emu_ip, lab.emu_mac).start()
    return lab, host


@pytest.fixture
async def lab_host():
    if os.geteuid() != 0:
        pytest.skip("needs root")  # conftest at tests/ turns this into a failure in CI
    lab, host = await _lab_host()
    try:
        yield lab, host
    finally:
        host.close()
        lab.__exit__(None, None, None)


async def test_netemu_client_negotiates_every_option_the_kernel_offers(lab_host):
    lab, host = lab_host
    agent = lab.start_agent()
    await agent.aio.listen(9300)
    stream = await host.connect(lab.peer_ip, 9300)
    (d_syn, syn), (d_synack, synack) = _handshake(host)
    assert (d_syn, d_synack) == ("out", "in")
    # Our SYN: MSS, SACK-permitted, timestamps, window scale (Linux's layout).
    assert _kinds(syn) == ALL and syn.timestamp.tsecr == 0 and syn.wscale == 7
    # The kernel's SYN-ACK offers them all back and echoes our TSval.
    assert _kinds(synack) == ALL
    assert synack.timestamp.tsecr == syn.timestamp.tsval
    conn = stream.conn
    assert conn.ts_ok and conn.sack_ok
    assert conn.snd_wscale == synack.wscale and conn.rcv_wscale == 7
    assert conn.smss == min(synack.mss, 1460) - 12
    await stream.send(b"ping")
    await asyncio.sleep(0.05)
    # Every later segment, both ways, carries timestamps (RFC 7323 §3.2).
    later = [parse_frame(f.data).tcp for f in host.trace.frames]
    later = [s for s in later if s is not None and not s.flags & SYN]
    assert later and all(s.timestamp is not None for s in later)
    await stream.aclose()
    assert_clean_wire(host)


async def test_kernel_client_gets_its_options_mirrored(lab_host):
    lab, host = lab_host
    listener = await host.listen(7300)
    agent = lab.start_agent()
    conn = await agent.aio.connect(lab.emu_ip, 7300)
    s = await listener.accept(timeout=5)
    (d_syn, syn), (d_synack, synack) = _handshake(host)
    assert (d_syn, d_synack) == ("in", "out")
    assert _kinds(syn) == ALL and _kinds(synack) == ALL
    assert synack.timestamp.tsecr == syn.timestamp.tsval
    assert s.conn.ts_ok and s.conn.sack_ok and s.conn.snd_wscale == syn.wscale
    await agent.aio.send(conn.sock, b"x" * 5000)
    assert await s.receive_exactly(5000) == b"x" * 5000
    await s.aclose()
    assert_clean_wire(host)


async def _recv_n(stream, n: int) -> bytes:
    buf = bytearray()
    while len(buf) < n:
        buf += await stream.receive()
    return bytes(buf)


@pytest.mark.parametrize("off", ["kernel", "netemu"])
async def test_options_off_on_either_side(off: str):
    if os.geteuid() != 0:
        pytest.skip("needs root")
    sysctls = (
        {"net.ipv4.tcp_sack": 0, "net.ipv4.tcp_timestamps": 0, "net.ipv4.tcp_window_scaling": 0}
        if off == "kernel"
        else {}
    )
    lab, host = await _lab_host(sysctls)
    try:
        agent = lab.start_agent()
        await agent.aio.echo(9301)
        cfg = (
            TcpConfig()
            if off == "kernel"
            else TcpConfig(timestamps=False, sack=False, window_scale=None)
        )
        stream = await host.connect(lab.peer_ip, 9301, config=cfg)
        (_, syn), (_, synack) = _handshake(host)
        assert _kinds(syn) == (ALL if off == "kernel" else {MssOption})
        assert _kinds(synack) == {MssOption}
        conn = stream.conn
        assert not conn.ts_ok and not conn.sack_ok and conn.snd_wscale == 0
        assert conn.smss == min(synack.mss, 1460)
        data = os.urandom(300_000)  # more than 64 KiB: unscaled windows still work
        reader = asyncio.create_task(_recv_n(stream, len(data)))
        await stream.send(data)
        assert await asyncio.wait_for(reader, 30) == data
        await stream.aclose()
        assert_clean_wire(host)
    finally:
        host.close()
        lab.__exit__(None, None, None)


@pytest.mark.parametrize("cc", ["newreno", "cubic"])
async def test_10mib_each_way_with_our_congestion_control(lab_host, cc: str):
    """netemu (client, with ``cc``) sends 10 MiB to the kernel's echo server and
    reads them back, byte-exact; then a kernel client does the same through a
    netemu echo server (netemu sending with ``cc`` again)."""
    lab, host = lab_host
    cfg = TcpConfig(congestion_control=cc)  # type: ignore[arg-type]
    agent = lab.start_agent()
    await agent.aio.echo(9400)
    stream = await host.connect(lab.peer_ip, 9400, config=cfg)
    assert stream.conn.cc.name == cc
    data = os.urandom(TEN_MIB)
    reader = asyncio.create_task(_recv_n(stream, len(data)))
    await stream.send(data)
    assert await asyncio.wait_for(reader, 90) == data
    await stream.aclose()

    listener = await host.listen(7400, config=cfg)

    async def netemu_echo() -> int:
        s = await listener.accept(timeout=10)
        assert s.conn.cc.name == cc
        return await echo_stream(s)

    server = asyncio.create_task(netemu_echo())
    conn = await agent.aio.connect(lab.emu_ip, 7400)
    back = asyncio.create_task(agent.aio.recv(conn.sock, exact=len(data), timeout=90))
    await agent.aio.send(conn.sock, data, timeout=90)
    await agent.aio.shutdown(conn.sock, "wr")
    assert await asyncio.wait_for(back, 100) == data
    assert await asyncio.wait_for(server, 10) == len(data)
    assert_clean_wire(host)


async def test_sack_recovers_dropped_segments_without_a_timeout(lab_host):
    """Three of our data segments dropped in one window: the kernel SACKs
    around them, and all three go again before any retransmission timeout."""
    lab, host = lab_host
    agent = lab.start_agent()
    lst = await agent.aio.listen(9500)
    stream = await host.connect(lab.peer_ip, 9500)
    acc = await agent.aio.accept(lst.sock)
    conn = stream.conn
    first = (conn.iss + 1) & 0xFFFFFFFF
    smss = conn.smss
    lost = {(first + k * smss) & 0xFFFFFFFF for k in (2, 5, 8)}
    Hooks().attach(host).rules.append(
        DropRule(
            "out",
            lambda s: s.seq in lost and bool(s.payload),
            count=3,
            description="segments 3, 6, 9",
        )
    )
    data = os.urandom(20 * smss)
    await stream.send(data)
    got = await agent.aio.recv(acc.sock, exact=len(data), timeout=10)
    assert got == data
    events = [e for e in host.event_log.get(conn, []) if isinstance(e, CongestionChanged)]
    phases = [e.phase for e in events]
    assert "fast-recovery" in phases and "loss" not in phases, events
    sacks = [parse_frame(f.data).tcp for f in host.trace.frames if f.direction == "in"]
    assert any(s is not None and s.sack_blocks for s in sacks)
    await stream.aclose()
