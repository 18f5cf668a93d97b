"""`netemu bench concurrent`: 1,000 netemu connections at once to the Go hello
server, each sending a message, reading the answer to EOF and closing; none may
be lost or hang."""

from __future__ import annotations

import asyncio
import time
from typing import TYPE_CHECKING

import anyio

if TYPE_CHECKING:
    from ..host import Host

GREETING = b"hello, xiao mei."
REPLY = b"hello, xiao ming.\n"


async def _one(host: Host, ip: str, timeout: float) -> bool:
    try:
        with anyio.fail_after(timeout):
            s = await host.connect(ip, 8080, timeout=timeout)
            await s.send(GREETING)
            got = bytearray()
            try:
                while True:
                    got += await s.receive()
            except anyio.EndOfStream:
                pass
            await s.aclose()
            return bytes(got) == REPLY
    except Exception:
        return False


async def _run(n: int, timeout: float) -> dict:
    from ..host import Host
    from ..host.host import EPHEMERAL
    from ..lab.core import Lab

    with Lab(
        peer_sysctls={"net.core.somaxconn": 4096, "net.ipv4.tcp_max_syn_backlog": 4096}
    ) as lab:
        lab.start_go("hello", stderr=asyncio.subprocess.DEVNULL)
        # 1,000 ports at once: more than a lab slot's block (registry.Slot); this run reads
        # no kernel tracepoints, so its tuples need not be told from other labs'.
        host = await Host(lab.open_link(), lab.emu_ip, lab.emu_mac, ephemeral=EPHEMERAL).start()
        try:
            await host.resolve(lab.peer_ip)
            t0 = time.perf_counter()
            results = await asyncio.gather(*(_one(host, lab.peer_ip, timeout) for _ in range(n)))
            seconds = time.perf_counter() - t0
        finally:
            host.close()
    return {
        "connections": n,
        "completed": sum(results),
        "seconds": round(seconds, 3),
        "per_second": round(n / seconds, 1),
    }


def run(quick: bool = False) -> dict:
    n = 200 if quick else 1000
    r = asyncio.run(_run(n, timeout=60.0))
    r["meets_target"] = r["completed"] == r["connections"]
    return r


def render(r: dict) -> str:
    return (
        f"concurrent: {r['completed']}/{r['connections']} connections to the Go hello "
        f"server completed in {r['seconds']} s ({r['per_second']}/s); "
        f"{'none lost' if r['meets_target'] else 'SOME LOST OR HUNG'}"
    )
