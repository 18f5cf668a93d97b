"""`netemu bench wire`: netemu on a real veth against the kernel, as ratios.

In one run, over the same kind of lab (tx checksum offload off on the sending
ends, as the lab runs): kernel⇄kernel bulk throughput (a kernel socket in the
emulator namespace, given an address for this measurement only, sending to a
kernel sink in the peer namespace), netemu→kernel and kernel→netemu bulk
throughput, their ratios, and the fixed cost of bringing a lab up and down.

The netemu transfers run in the order IPv4, IPv6, IPv6, IPv4 (the first transfer of a
process pays for its warm-up: each family gets one first and one second place), each
family's two averaged. Over IPv6 (an IPv6 lab: netemu 2001:2::1, the kernel 2001:2::2,
listening on ``::``) they give ``tx_ratio_v6`` and ``rx_ratio_v6``, over the same
kernel⇄kernel reference as the IPv4 ratios: ``tx_ratio_v6 / tx_ratio`` is netemu's
IPv6 throughput over its IPv4 throughput in the same run (issue 20's target: at most
10 % less, ``v6_within``; ``v6_meets_target``).
"""

from __future__ import annotations

import asyncio
import socket
import statistics
import subprocess
import time
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from ..host import Host, TcpStream
    from ..lab.core import Lab
    from ..lab.kernel import KernelAgent

TARGET_RATIO = 0.10
TARGET_LAB_MS = 50.0
V6_WITHIN = 0.10  # IPv6's ratios at least 90 % of IPv4's (issue 20)


def _lab(**kw: Any) -> Lab:
    from ..lab.core import Lab

    return Lab(**kw)


def lab_up_down_ms(rounds: int = 11) -> float:
    times = []
    for _ in range(rounds):
        t0 = time.perf_counter()
        with _lab():
            pass
        times.append((time.perf_counter() - t0) * 1000)
    return statistics.median(times)


def kernel_mbps(nbytes: int) -> float:
    """Kernel → kernel over the lab's veth, tx offload off on both ends."""
    with _lab() as lab:

        def setup_emu() -> None:
            subprocess.run(
                ["ip", "addr", "add", f"{lab.emu_ip}/{lab.prefixlen}", "dev", lab.emu_ifname],
                check=True,
            )
            subprocess.run(
                ["ethtool", "-K", lab.emu_ifname, "tx", "off"],
                check=True,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )

        lab.run_in_emu(setup_emu)
        agent = lab.start_agent()
        lst = agent.listen(5201)

        def connect() -> socket.socket:
            return socket.create_connection((lab.peer_ip, 5201), timeout=10)

        sock = lab.run_in_emu(connect)
        acc = agent.accept(lst.sock)
        rid = agent.submit("sink", sock=acc.sock, timeout=60)
        chunk = memoryview(bytes(1 << 20))
        t0 = time.perf_counter()
        sent = 0
        while sent < nbytes:
            sent += sock.send(chunk[: min(len(chunk), nbytes - sent)])
        sock.shutdown(socket.SHUT_WR)
        res = agent.result("sink", rid, deadline=time.monotonic() + 60)
        dt = time.perf_counter() - t0
        sock.close()
        return res["bytes"] * 8 / dt / 1e6


async def send_all(stream: TcpStream, nbytes: int) -> None:
    """Send ``nbytes`` of zeros on a netemu stream in 1 MiB writes, then EOF."""
    chunk = bytes(1 << 20)
    sent = 0
    while sent < nbytes:
        n = min(len(chunk), nbytes - sent)
        await stream.send(chunk[:n])
        sent += n
    await stream.send_eof()


async def tx_mbps(
    host: Host, agent: KernelAgent, peer_ip: str, port: int, nbytes: int, listen_on: str = "0.0.0.0"
) -> float:
    """netemu → kernel: Mbit/s of ``nbytes`` sent on a new stream to a kernel sink
    listening on ``port`` (from the first byte until the sink has seen EOF)."""
    lst = await agent.aio.listen(port, host=listen_on)
    stream = await host.connect(peer_ip, port)
    acc = await agent.aio.accept(lst.sock)
    sink = asyncio.create_task(agent.aio.sink(acc.sock, timeout=120))
    t0 = time.perf_counter()
    await send_all(stream, nbytes)
    res = await sink
    return float(res["bytes"]) * 8 / (time.perf_counter() - t0) / 1e6


async def _netemu_mbps(nbytes: int, six: bool = False) -> tuple[float, float]:
    """(netemu → kernel, kernel → netemu) Mbit/s, over IPv4, or over IPv6 (``six``)."""
    from ..host import Host

    with _lab(ipv6=six) as lab:
        ip6 = lab.emu_ip6 if six else None
        host = await Host(lab.open_link(), lab.emu_ip, lab.emu_mac, ip6=ip6).start()
        agent = lab.start_agent()
        peer = (lab.peer_ip6 or lab.peer_ip) if six else lab.peer_ip
        any_addr = "::" if six else "0.0.0.0"
        try:
            tx = await tx_mbps(host, agent, peer, 5202, nbytes, listen_on=any_addr)
            # kernel → netemu
            lst2 = await agent.aio.listen(5203, host=any_addr)
            stream2 = await host.connect(peer, 5203)
            acc2 = await agent.aio.accept(lst2.sock)
            t0 = time.perf_counter()
            src = asyncio.create_task(
                agent.aio.source(acc2.sock, nbytes, then="shutdown", timeout=120)
            )
            got = 0
            import anyio

            try:
                while True:
                    got += len(await stream2.receive(1 << 20))
            except anyio.EndOfStream:
                pass
            rx = got * 8 / (time.perf_counter() - t0) / 1e6
            await src
            return tx, rx
        finally:
            host.close()


def run(quick: bool = False) -> dict:
    nbytes = (16 if quick else 64) * 1024 * 1024
    kernel = kernel_mbps(nbytes * 4)  # the kernel is fast: give it a longer run
    # IPv4, IPv6, IPv6, IPv4 (the first transfer of a process pays for warming up: each
    # family gets one first and one second place), each family's two averaged.
    runs = {six: [asyncio.run(_netemu_mbps(nbytes, six))] for six in (False, True)}
    for six in (True, False):
        runs[six].append(asyncio.run(_netemu_mbps(nbytes, six)))
    (tx, rx), (tx6, rx6) = (
        (statistics.fmean(a for a, _ in runs[six]), statistics.fmean(b for _, b in runs[six]))
        for six in (False, True)
    )
    lab_ms = lab_up_down_ms(5 if quick else 11)
    within = min(tx6 / tx, rx6 / rx) >= 1 - V6_WITHIN
    return {
        "kernel_mbps": round(kernel, 1),
        "tx_mbps": round(tx, 1),
        "rx_mbps": round(rx, 1),
        "tx_ratio": round(tx / kernel, 4),
        "rx_ratio": round(rx / kernel, 4),
        "tx_mbps_v6": round(tx6, 1),
        "rx_mbps_v6": round(rx6, 1),
        "tx_ratio_v6": round(tx6 / kernel, 4),
        "rx_ratio_v6": round(rx6 / kernel, 4),
        "v6_within": V6_WITHIN,
        "v6_meets_target": within,
        "lab_up_down_ms": round(lab_ms, 1),
        "target_ratio": TARGET_RATIO,
        "target_lab_ms": TARGET_LAB_MS,
        "meets_targets": tx / kernel >= TARGET_RATIO
        and rx / kernel >= TARGET_RATIO
        and lab_ms <= TARGET_LAB_MS,
    }


def render(r: dict) -> str:
    return (
        "wire: bulk over the lab's veth (tx offload off), same run\n"
        f"  kernel⇄kernel {r['kernel_mbps']:,.0f} Mbit/s | netemu→kernel "
        f"{r['tx_mbps']:,.0f} Mbit/s (ratio {r['tx_ratio']:.3f}) | kernel→netemu "
        f"{r['rx_mbps']:,.0f} Mbit/s (ratio {r['rx_ratio']:.3f}); target ratio ≥ "
        f"{r['target_ratio']}\n"
        f"  lab up+down: {r['lab_up_down_ms']} ms median (target ≤ {r['target_lab_ms']} ms)"
        + (
            f"\n  over IPv6: netemu→kernel {r['tx_mbps_v6']:,.0f} Mbit/s (ratio "
            f"{r['tx_ratio_v6']:.3f}) | kernel→netemu {r['rx_mbps_v6']:,.0f} Mbit/s (ratio "
            f"{r['rx_ratio_v6']:.3f}); within {r['v6_within']:.0%} of IPv4's: "
            f"{'met' if r['v6_meets_target'] else 'NOT met'}"
            if "tx_ratio_v6" in r
            else ""
        )
    )
