"""Byte-exact both ways through netem-style impairments on both directions:
10 % loss, 5 % duplication, 25 % reordering, 1 % corruption.

`make test` moves 1 MiB each way; `make soak` (NETEMU_SOAK=1) the full 10 MiB,
which takes minutes at 10 % loss and belongs with the long runs."""

from __future__ import annotations

import asyncio
import os

import pytest

from netemu.impair import ImpairConfig, Impairment
from netemu.testing.wirecheck import assert_clean_wire  # noqa: F401 - corrupt frames are expected here

pytestmark = [pytest.mark.root, pytest.mark.timeout(900)]
SIZE = (10 if os.environ.get("NETEMU_SOAK") else 1) * 1024 * 1024
HARSH = dict(loss=0.10, duplicate=0.05, reorder=0.25, corrupt=0.01, delay=0.002, limit=100_000)


def impair(host, seed: int) -> None:
    host.impair_out = Impairment(ImpairConfig(**HARSH), seed=seed)
    host.impair_in = Impairment(ImpairConfig(**HARSH), seed=seed + 1)


async def echo_through(host, ip: str, port: int, data: bytes) -> bytes:
    stream = await host.connect(ip, port, timeout=30)

    async def read_all() -> bytes:
        buf = bytearray()
        while len(buf) < len(data):
            buf += await stream.receive()
        return bytes(buf)

    reader = asyncio.create_task(read_all())
    await stream.send(data)
    got = await asyncio.wait_for(reader, 240)
    await stream.aclose()
    return got


async def test_kernel_echo_under_harsh_impairments(lab_host):
    lab, host = lab_host
    impair(host, 11)
    agent = lab.start_agent()
    await agent.aio.echo(9000)
    data = os.urandom(SIZE)
    assert await echo_through(host, lab.peer_ip, 9000, data) == data
    st_out, st_in = host.impair_out.stats, host.impair_in.stats
    assert st_out.lost and st_out.duplicated and st_out.reordered and st_out.corrupted
    assert st_in.lost and st_in.corrupted
    assert host.stats["bad_checksum"] >= 1  # corrupted inbound frames were caught and dropped


@pytest.mark.go
async def test_go_echo_under_harsh_impairments(lab_host):
    lab, host = lab_host
    impair(host, 21)
    lab.start_go("echo")
    data = os.urandom(SIZE)
    assert await echo_through(host, lab.peer_ip, 8081, data) == data
