"""Interop with Go's net package (Debian's golang-go): netemu against the Go
echo/bulk server, and a Go client against netemu's listener."""

from __future__ import annotations

import asyncio
import hashlib
import json
import os
import subprocess

import anyio
import pytest

from netemu.host import Host

pytestmark = [pytest.mark.root, pytest.mark.go, pytest.mark.timeout(180)]
SIZE = 4 * 1024 * 1024


def pattern(n: int) -> bytes:
    return bytes(i % 251 for i in range(251)) * (n // 251) + bytes(i % 251 for i in range(n % 251))


@pytest.fixture
async def lab_host():
    if os.geteuid() != 0:
        pytest.skip("needs root")
    from netemu.lab.core import Lab

    with Lab() as lab:
        host = await Host(lab.open_link(), lab.emu_ip, lab.emu_mac).start()
        try:
            yield lab, host
        finally:
            host.close()


async def test_netemu_client_go_echo_server(lab_host):
    lab, host = lab_host
    lab.start_go("echo")
    stream = await host.connect(lab.peer_ip, 8081)
    data = os.urandom(SIZE)

    async def read_all() -> bytes:
        buf = bytearray()
        try:
            while True:
                buf += await stream.receive()
        except anyio.EndOfStream:
            return bytes(buf)

    reader = asyncio.create_task(read_all())
    await stream.send(data)
    await stream.send_eof()
    assert await asyncio.wait_for(reader, 60) == data  # Go closes after echoing all


async def test_netemu_client_go_bulk_server(lab_host):
    lab, host = lab_host
    lab.start_go("echo", "-addr", ":8082", "-bulk", str(SIZE))
    stream = await host.connect(lab.peer_ip, 8082)
    got = bytearray()
    with pytest.raises(anyio.EndOfStream):
        while True:
            got += await stream.receive()
    assert len(got) == SIZE
    await stream.aclose()


async def test_go_client_netemu_echo_server(lab_host):
    lab, host = lab_host
    listener = await host.listen(7000)

    async def serve_one() -> None:
        s = await listener.accept(timeout=30)
        try:
            while True:
                await s.send(await s.receive())
        except anyio.EndOfStream:
            pass
        await s.aclose()

    async def serve(n: int) -> None:
        await asyncio.gather(*(serve_one() for _ in range(n)))

    server = asyncio.create_task(serve(3))
    from netemu.lab.gobuild import binary

    exe = await asyncio.to_thread(binary, "client")
    proc = lab.spawn(
        [str(exe), "-addr", f"{lab.emu_ip}:7000", "-bytes", str(SIZE), "-conns", "3"],
        name="go-client",
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
    )
    stdout, _ = await asyncio.to_thread(proc.popen.communicate, timeout=120)
    await asyncio.wait_for(server, 60)
    lines = stdout.decode().splitlines()
    results = [json.loads(line) for line in lines]
    assert len(results) == 3, lines
    want = hashlib.sha256(pattern(SIZE)).hexdigest()
    for r in results:
        assert r.get("error") is None and r["sent"] == SIZE and r["received"] == SIZE
        assert r["sha256"] == want
