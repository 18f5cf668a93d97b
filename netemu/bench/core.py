"""`netemu bench core`: the sans-IO stack's own speed, no I/O.

10 MiB go from one in-memory Connection to another on virtual time, every
segment emitted to bytes and parsed back (checksums verified) through
netemu.wire on its way, so the figure is the real per-segment cost of the stack.
Rates are per second of CPU time (time.process_time), which a noisy shared
machine disturbs less than wall time.
"""

from __future__ import annotations

import time

from ..tcp import State, TcpConfig
from ..testing import MemLink, established_pair

TARGET_SEGMENTS_PER_S = 50_000


def transfer(total: int, config: TcpConfig | None = None, *, loss: float = 0.0,
             seed: int = 1) -> dict:
    import random

    ab = MemLink(src_ip="198.18.0.1", dst_ip="198.18.0.2", encode=True, loss=loss,
                 rng=random.Random(seed))
    ba = MemLink(src_ip="198.18.0.2", dst_ip="198.18.0.1", encode=True, loss=loss,
                 rng=random.Random(seed + 1))
    net = established_pair(config, config, ab=ab, ba=ba)
    a, b = net.a, net.b
    payload = bytes(range(256)) * (64 * 1024 // 256)  # 64 KiB pattern
    sent = 0
    received = 0
    exact = True

    def app(_net: object) -> None:
        nonlocal sent, received, exact
        while sent < total:
            off = sent % len(payload)
            n = a.send(payload[off:off + min(len(payload) - off, total - sent)])
            if not n:
                break
            sent += n
        data = b.read()  # type: ignore[union-attr]
        if data:
            off = received % len(payload)
            want = (payload[off:] + payload * (len(data) // len(payload) + 1))[:len(data)]
            exact = exact and data == want
            received += len(data)

    segs_before = ab.sent
    t0 = time.process_time()
    w0 = time.perf_counter()
    ok = net.run(lambda: received >= total, app=app, max_time=3600)
    cpu = time.process_time() - t0
    wall = time.perf_counter() - w0
    data_segments = ab.sent - segs_before
    return {
        "bytes": total,
        "completed": ok and b.state is State.ESTABLISHED,  # type: ignore[union-attr]
        "byte_exact": bool(ok and exact and received == total),
        "segments": data_segments,
        "cpu_s": round(cpu, 3),
        "wall_s": round(wall, 3),
        "virtual_s": round(net.now, 3),
        "segments_per_s": round(data_segments / cpu) if cpu else 0,
        "mb_per_s": round(total / cpu / 1e6, 2) if cpu else 0,
        "retransmits": a.total_retransmits,
    }


def run(quick: bool = False) -> dict:
    total = (2 if quick else 10) * 1024 * 1024
    result = transfer(total)
    result["target_segments_per_s"] = TARGET_SEGMENTS_PER_S
    result["meets_target"] = result["segments_per_s"] >= TARGET_SEGMENTS_PER_S
    return result


def render(r: dict) -> str:
    return (
        f"core: {r['bytes'] / 2**20:.0f} MiB in-memory, every segment through netemu.wire\n"
        f"  {r['segments']} data segments in {r['cpu_s']} s CPU "
        f"({r['virtual_s']} s virtual): {r['segments_per_s']:,} segments/s, "
        f"{r['mb_per_s']} MB/s; byte_exact={r['byte_exact']}; "
        f"target ≥ {r['target_segments_per_s']:,} segments/s: "
        f"{'met' if r['meets_target'] else 'NOT met'}"
    )
