"""`netemu bench sack`: what SACK buys under random loss, netemu next to Linux.

``netemu bench core`` reports ``sack_gain``: netemu's throughput with SACK over
without, 1 % loss each way, in memory on virtual time. This bench puts a
reference beside it, measured in the same run: Linux's own gain under the same
impairment. Two kernel peers are bridged by netemu's relay (``netemu relay``),
whose pipeline loses 1 % of the frames and delays each by 1 ms in each
direction (the in-memory link's delay); ``net.ipv4.tcp_sack`` is 1 or 0 in both
peer namespaces, CUBIC on both sockets (netemu's default, as Linux's), and a
kernel client sends to a kernel sink. Beside it, netemu's endpoint sends to a
kernel sink over a lab's veth through the host's own pipelines with the same
settings (``wire_sack_gain``). Each gain is the ratio of wall-clock
throughputs, summed over the rounds, each round on a fresh pair of labs and
seeded loss.

Why a reference: SACK's advantage over NewReno (RFC 6582) is recovering several
losses of one window in one round trip. Under independent loss at rate p, a
loss-driven sender holds a window of about sqrt(1.5/p) segments (12 at 1 %), so
a window rarely holds two losses, and both recoveries cost about one RTT; what
is left of the gain is NewReno's retransmission timeouts (a lost
retransmission), and a timeout costs at least RTO_min (200 ms) however short
the path. Linux under the same impairment shows how large the gain of a mature
stack is; ``kernel_lab_sack_gain`` is Linux's gain again with no delay added,
the lab's own round trip, where a timeout is most of a transfer (beside
``sack_gain_by_delay_ms`` of ``netemu bench core``).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Coroutine
from functools import partial
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from ..lab.kernel import AsyncKernelAgent

from .core import SACK_DELAY as DELAY  # one way, as the in-memory bench's
from .core import SACK_LOSS, sack_gain
from .wire import send_all


async def _kernel_transfer(nbytes: int, sack: bool, seed: int, delay: float = DELAY) -> float:
    """Seconds for ``nbytes`` from a kernel client to a kernel sink through the relay."""
    from ..host.relay import CLIENT_IP, EMU_IP, SERVER_IP, Relay
    from ..impair import ImpairConfig, Impairment
    from ..lab.core import Lab

    sysctls = {"net.ipv4.tcp_sack": int(sack)}
    cfg = ImpairConfig(loss=SACK_LOSS, delay=delay, limit=100_000)
    with (
        Lab(peer_ip=CLIENT_IP, emu_ip=EMU_IP, peer_sysctls=sysctls, congestion="cubic") as a,
        Lab(peer_ip=SERVER_IP, emu_ip=EMU_IP, peer_sysctls=sysctls, congestion="cubic") as b,
    ):
        relay = await Relay(
            a.open_link(filtered=False),
            b.open_link(filtered=False),
            client_ip=a.peer_ip,
            server_ip=b.peer_ip,
            impair_out=Impairment(cfg, seed=2 * seed),
            impair_in=Impairment(cfg, seed=2 * seed + 1),
        ).start()
        try:
            client, server = a.start_agent().aio, b.start_agent().aio
            lst = await server.listen(5204)
            conn = await client.connect(b.peer_ip, 5204, timeout=10)
            acc = await server.accept(lst.sock, timeout=10)
            return await _into_sink(
                server,
                acc.sock,
                nbytes,
                client.source(conn.sock, nbytes, then="shutdown", timeout=300),
            )
        finally:
            relay.close()


async def _netemu_transfer(nbytes: int, sack: bool, seed: int) -> float:
    """Seconds for ``nbytes`` from netemu's endpoint to a kernel sink, the same
    impairment applied by the host's own pipelines (netemu/impair)."""
    from ..host import Host
    from ..impair import ImpairConfig, Impairment
    from ..lab.core import Lab
    from ..tcp import TcpConfig

    cfg = ImpairConfig(loss=SACK_LOSS, delay=DELAY, limit=100_000)
    with Lab(peer_sysctls={"net.ipv4.tcp_sack": int(sack)}, congestion="cubic") as lab:
        host = await Host(
            lab.open_link(), lab.emu_ip, lab.emu_mac, config=TcpConfig(sack=sack)
        ).start()
        try:
            agent = lab.start_agent().aio
            lst = await agent.listen(5205)
            stream = await host.connect(lab.peer_ip, 5205)
            acc = await agent.accept(lst.sock, timeout=10)
            # Impaired from here on: the handshake is not part of the measurement.
            host.impair_out = Impairment(cfg, seed=2 * seed)
            host.impair_in = Impairment(cfg, seed=2 * seed + 1)
            return await _into_sink(agent, acc.sock, nbytes, send_all(stream, nbytes))
        finally:
            host.close()


async def _into_sink(
    agent: AsyncKernelAgent, sock: int, nbytes: int, sending: Awaitable[object]
) -> float:
    """Seconds from the start of ``sending`` (nbytes, then EOF) until the kernel
    agent's sink on ``sock`` has read them all."""
    t0 = time.perf_counter()
    sink = asyncio.create_task(agent.sink(sock, timeout=300))
    await sending
    got = await sink
    dt = time.perf_counter() - t0
    if got["bytes"] != nbytes:
        raise RuntimeError(f"kernel sink got {got['bytes']} of {nbytes} bytes")
    return dt


def _gain(
    key: str, transfer: Callable[..., Coroutine[Any, Any, float]], nbytes: int, rounds: int
) -> dict[str, float]:
    seconds = {True: 0.0, False: 0.0}
    for r in range(rounds):
        for sack in (True, False):  # interleaved: machine noise hits both alike
            seconds[sack] += asyncio.run(transfer(nbytes, sack, seed=r + 1))
    return {
        f"{key}_sack_gain": round(seconds[False] / seconds[True], 2),
        f"{key}_sack_s": round(seconds[True], 3),
        f"{key}_nosack_s": round(seconds[False], 3),
    }


def run(quick: bool = False) -> dict:
    nbytes = (2 if quick else 10) * 1024 * 1024
    result = {"bytes": nbytes, "loss": SACK_LOSS, "delay_s": DELAY}
    rounds = 2 if quick else 3
    result.update(_gain("kernel", _kernel_transfer, nbytes, rounds))
    # Linux again without the added delay (the lab's own round trip, ~0.1 ms with
    # the relay): where a retransmission timeout is most of a transfer, so a few
    # of them make the figure; its transfers are short, so it takes more rounds.
    result.update(_gain("kernel_lab", partial(_kernel_transfer, delay=0.0), nbytes, 4 * rounds))
    result.update(_gain("wire", _netemu_transfer, nbytes, rounds))
    result.update(sack_gain(nbytes))
    result["ratio_to_kernel"] = round(result["sack_gain"] / result["kernel_sack_gain"], 2)
    return result


def render(r: dict) -> str:
    return (
        f"sack: {r['bytes'] / 2**20:.0f} MiB, {r['loss']:.0%} loss and "
        f"{r['delay_s'] * 1000:g} ms delay each way, SACK on over off\n"
        f"  Linux⇄Linux through the relay: {r['kernel_sack_s']} s vs "
        f"{r['kernel_nosack_s']} s: gain {r['kernel_sack_gain']}\n"
        f"  the same without the added delay (the lab's round trip): "
        f"{r['kernel_lab_sack_s']} s vs {r['kernel_lab_nosack_s']} s: "
        f"gain {r['kernel_lab_sack_gain']}\n"
        f"  netemu→Linux, netemu's own pipelines: {r['wire_sack_s']} s vs "
        f"{r['wire_nosack_s']} s: gain {r['wire_sack_gain']}\n"
        f"  netemu in memory (virtual time): {r['sack_virtual_s']} s vs "
        f"{r['nosack_virtual_s']} s: gain {r['sack_gain']} "
        f"({r['ratio_to_kernel']} of Linux's)"
    )
