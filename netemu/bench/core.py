"""`netemu bench core`: the sans-IO stack's own speed, no I/O.

10 MiB go from one in-memory Connection to another on virtual time, every
segment emitted to bytes and parsed back (checksums verified) through
netemu.wire on its way, so the figure is the real per-segment cost of the stack.
Rates are per second of CPU time (time.process_time), which a noisy shared
machine disturbs less than wall time. Endpoints use TcpConfig's defaults
(timestamps, SACK, delayed ACK, CUBIC).

``sack_gain``: the same transfer with 1 % of the segments lost in each
direction, SACK on against SACK off: the ratio of throughputs in *virtual* time
(what the network would deliver), over a few seeds, 1 ms each way (the
in-memory link's delay). Deterministic: the loss pattern is seeded and the
clock is virtual.

``sack_gain_by_delay_ms``: the same ratio at other one-way delays. What SACK
saves under independent loss is mostly NewReno's retransmission timeouts (a
lost retransmission), and a timeout costs at least RTO_min (200 ms, as Linux)
whatever the path: the shorter the round trip, the more of the transfer a
timeout is, and the larger the gain (see docs/design.md, tcp).
"""

from __future__ import annotations

import random
import time

from ..tcp import State, TcpConfig
from ..testing import MemLink, established_pair

TARGET_SEGMENTS_PER_S = 50_000
TARGET_SACK_GAIN = 2.0
SACK_LOSS = 0.01
SACK_SEEDS = (1, 2, 3)
SACK_DELAY_MS = 1.0  # one way: MemLink's default
SACK_DELAY = SACK_DELAY_MS / 1000
SWEEP_DELAYS_MS = (0.05, 0.2, SACK_DELAY_MS, 10.0)  # a veth lab's round trip up to a WAN's


def transfer(
    total: int,
    config: TcpConfig | None = None,
    *,
    loss: float = 0.0,
    seed: int = 1,
    delay: float = SACK_DELAY,
) -> dict:
    ab = MemLink(
        src_ip="198.18.0.1",
        dst_ip="198.18.0.2",
        encode=True,
        loss=loss,
        delay=delay,
        rng=random.Random(seed),
    )
    ba = MemLink(
        src_ip="198.18.0.2",
        dst_ip="198.18.0.1",
        encode=True,
        loss=loss,
        delay=delay,
        rng=random.Random(seed + 1),
    )
    net = established_pair(config, config, ab=ab, ba=ba)
    a, b = net.a, net.b
    # The whole byte stream, made before the clock starts: the application
    # hands out slices of it without copying and checks what arrives against it.
    pattern = bytes(range(256)) * (64 * 1024 // 256)  # 64 KiB pattern
    whole = pattern * (total // len(pattern) + 1)
    stream = memoryview(whole)[:total]
    sent = 0
    received = 0
    exact = True

    def app(_net: object) -> None:
        nonlocal sent, received, exact
        while sent < total:
            n = a.send(stream[sent : sent + 65536])
            if not n:
                break
            sent += n
        data = b.read()  # type: ignore[union-attr]
        if data:
            end = received + len(data)
            exact = exact and whole.startswith(data, received)  # a compare, no copy
            received = end

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
        "acks": ba.sent,
        "cpu_s": round(cpu, 3),
        "wall_s": round(wall, 3),
        "virtual_s": round(net.now, 3),
        "segments_per_s": round(data_segments / cpu) if cpu else 0,
        "mb_per_s": round(total / cpu / 1e6, 2) if cpu else 0,
        "retransmits": a.total_retransmits,
    }


def sack_gain(total: int, seeds: tuple[int, ...] = SACK_SEEDS, delay: float = SACK_DELAY) -> dict:
    """Throughput (bytes per virtual second) with SACK over without, at 1 % loss
    both ways and ``delay`` each way; the other options are the defaults."""
    virtual = {}
    exact = True
    retransmits = {}
    for sack in (True, False):
        cfg = TcpConfig(sack=sack)
        runs = [transfer(total, cfg, loss=SACK_LOSS, seed=s, delay=delay) for s in seeds]
        virtual[sack] = sum(r["virtual_s"] for r in runs)
        retransmits[sack] = sum(r["retransmits"] for r in runs)
        exact = exact and all(r["byte_exact"] for r in runs)
    return {
        "sack_gain": round(virtual[False] / virtual[True], 2) if virtual[True] else 0.0,
        "sack_virtual_s": round(virtual[True], 3),
        "nosack_virtual_s": round(virtual[False], 3),
        "sack_retransmits": retransmits[True],
        "nosack_retransmits": retransmits[False],
        "sack_byte_exact": exact,
    }


def run(quick: bool = False) -> dict:
    total = (2 if quick else 10) * 1024 * 1024
    transfer(total // 8)  # warm up (first-call costs, allocator)
    result = transfer(total)
    result["target_segments_per_s"] = TARGET_SEGMENTS_PER_S
    result["meets_target"] = result["segments_per_s"] >= TARGET_SEGMENTS_PER_S
    by_delay = {ms: sack_gain(total, delay=ms / 1000) for ms in SWEEP_DELAYS_MS}
    result.update(by_delay[SACK_DELAY_MS])
    result["target_sack_gain"] = TARGET_SACK_GAIN
    result["meets_sack_target"] = result["sack_gain"] >= TARGET_SACK_GAIN
    result["sack_delay_ms"] = SACK_DELAY_MS
    result["sack_gain_by_delay_ms"] = {f"{ms:g}": r["sack_gain"] for ms, r in by_delay.items()}
    return result


def render(r: dict) -> str:
    text = (
        f"core: {r['bytes'] / 2**20:.0f} MiB in-memory, every segment through netemu.wire\n"
        f"  {r['segments']} data segments in {r['cpu_s']} s CPU "
        f"({r['virtual_s']} s virtual): {r['segments_per_s']:,} segments/s, "
        f"{r['mb_per_s']} MB/s; byte_exact={r['byte_exact']}; "
        f"target ≥ {r['target_segments_per_s']:,} segments/s: "
        f"{'met' if r['meets_target'] else 'NOT met'}"
    )
    if "sack_gain" in r:
        text += (
            f"\n  1 % loss both ways, {r['sack_delay_ms']:g} ms each way: SACK "
            f"{r['sack_virtual_s']} s, no SACK {r['nosack_virtual_s']} s virtual: "
            f"sack_gain {r['sack_gain']} (target ≥ {r['target_sack_gain']}: "
            f"{'met' if r['meets_sack_target'] else 'NOT met'})"
        )
    if "sack_gain_by_delay_ms" in r:
        text += "\n  sack_gain by one-way delay: " + ", ".join(
            f"{ms} ms {g}" for ms, g in r["sack_gain_by_delay_ms"].items()
        )
    return text
