"""`netemu bench impair`: the cost of the impairment pipeline itself.

netemu → kernel bulk throughput over a lab's veth with every stage of the
pipeline in place in both directions but set to 0 % (loss, duplicate, corrupt,
reorder, no delay, no rate limit), as a ratio to the same transfer with no
pipeline, measured alternately in the same run (target ≥ 0.9).
"""

from __future__ import annotations

import asyncio

TARGET = 0.9


async def _bulk(nbytes: int, with_pipeline: bool) -> float:
    from ..host import Host
    from ..impair import ImpairConfig, Impairment
    from ..lab.core import Lab
    from .wire import tx_mbps

    def zero() -> ImpairConfig:
        return ImpairConfig(
            loss=0.0,
            duplicate=0.0,
            corrupt=0.0,
            reorder=0.0,
            delay=0.0,
            jitter=0.0,
            rate=0.0,
            limit=100_000,
        )

    with Lab() as lab:
        host = await Host(lab.open_link(), lab.emu_ip, lab.emu_mac).start()
        if with_pipeline:
            host.impair_out = Impairment(zero(), seed=1)
            host.impair_in = Impairment(zero(), seed=2)
        agent = lab.start_agent()
        try:
            return await tx_mbps(host, agent, lab.peer_ip, 5300, nbytes)
        finally:
            host.close()


def run(quick: bool = False) -> dict:
    nbytes = (8 if quick else 32) * 1024 * 1024
    rounds = 2 if quick else 3
    plain, piped = [], []
    for _ in range(rounds):  # alternate, so machine noise hits both alike
        plain.append(asyncio.run(_bulk(nbytes, False)))
        piped.append(asyncio.run(_bulk(nbytes, True)))
    ratio = max(piped) / max(plain)
    return {
        "plain_mbps": round(max(plain), 1),
        "pipeline_mbps": round(max(piped), 1),
        "pipeline_ratio": round(ratio, 3),
        "target": TARGET,
        "meets_target": ratio >= TARGET,
    }


def render(r: dict) -> str:
    return (
        f"impair: netemu→kernel {r['plain_mbps']} Mbit/s without the pipeline, "
        f"{r['pipeline_mbps']} Mbit/s with every stage at 0 %: ratio "
        f"{r['pipeline_ratio']} (target ≥ {r['target']})"
    )
