"""Interop with Go's net package (Debian's golang-go), written as a user writes them:
on the public Python API (netemu.api, docs/python.md) through the plugin's
``netemu_lab`` fixture. netemu against the Go echo and bulk servers, and a Go client
against netemu's listener; each test also checks what the lab saw of both sides."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess

import anyio
import pytest

from netemu.api import go_program

pytestmark = [pytest.mark.root, pytest.mark.go, pytest.mark.timeout(180)]
SIZE = 4 * 1024 * 1024


def pattern(n: int) -> bytes:
    return bytes(i % 251 for i in range(251)) * (n // 251) + bytes(i % 251 for i in range(n % 251))


async def read_to_eof(stream) -> bytes:
    buf = bytearray()
    try:
        while True:
            buf += await stream.receive()
    except anyio.EndOfStream:
        return bytes(buf)


async def test_netemu_client_go_echo_server(netemu_lab):
    async with netemu_lab(peer="go-echo") as lab:
        stream = await lab.connect()  # the go-echo peer's port (8081)
        data = os.urandom(SIZE)
        got = b""

        async def reader() -> None:
            nonlocal got
            got = await read_to_eof(stream)

        async with anyio.create_task_group() as tg:
            tg.start_soon(reader)
            await stream.send(data)
            await stream.send_eof()
        assert got == data  # Go closes after echoing all
        await stream.aclose()
        await lab.step("expect_state: TIME-WAIT")  # our FIN went first
    assert lab.result == "pass"
    assert lab.states()[:2] == ["SYN-SENT", "ESTABLISHED"]
    assert "CLOSE-WAIT" in lab.peer_states()  # Go's socket: our FIN first, then its own


async def test_netemu_client_go_bulk_server(netemu_lab):
    async with netemu_lab(peer="kernel") as lab:
        await lab.start_server(
            [str(go_program("echo")), "-addr", ":8082", "-bulk", str(SIZE)], port=8082
        )
        stream = await lab.connect(8082)
        got = await read_to_eof(stream)  # Go sends SIZE bytes, then closes
        assert len(got) == SIZE
        await stream.aclose()
    assert lab.result == "pass"
    assert "FIN-WAIT-1" in lab.peer_states()  # the Go server closed first


async def test_go_client_netemu_echo_server(netemu_lab):
    async with netemu_lab(peer="kernel") as lab:
        await lab.listen(7000)

        async def echo(name: str) -> None:
            stream = await lab.accept(7000, conn=name, timeout="30s")
            try:
                while True:
                    await stream.send(await stream.receive())
            except anyio.EndOfStream:
                pass
            await stream.aclose()

        client = [str(go_program("client")), "-addr", f"{lab.emu_ip}:7000"]
        proc = lab.spawn(
            [*client, "-bytes", str(SIZE), "-conns", "3"],
            name="go-client",
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
        )
        async with anyio.create_task_group() as tg:
            for i in range(3):
                tg.start_soon(echo, f"s{i}")
            stdout, _ = await anyio.to_thread.run_sync(lambda: proc.popen.communicate(timeout=120))
        lines = stdout.decode().splitlines()
        results = [json.loads(line) for line in lines]
        assert len(results) == 3, lines
        want = hashlib.sha256(pattern(SIZE)).hexdigest()
        for r in results:
            assert r.get("error") is None and r["sent"] == SIZE and r["received"] == SIZE
            assert r["sha256"] == want
    for name in ("s0", "s1", "s2"):
        assert "ESTABLISHED" in lab.states(name)
