"""Each netem stage against its configured statistics over ≥ 10,000 frames, on
virtual time; seeded runs are identical."""

from __future__ import annotations

import itertools
import statistics

import pytest

from netemu.impair import ImpairConfig, Impairment
from netemu.wire import parse_frame
from netemu.wire.frame import build_tcp_frame
from netemu.wire.ipv4 import IPv4Packet
from netemu.wire.tcp import ACK, TcpSegment

N = 20_000


def frame(i: int) -> bytes:
    seg = TcpSegment(40000, 80, i, 0, ACK, 1000, b"x" * 100)
    return build_tcp_frame(
        "02:00:00:00:00:01", "02:00:00:00:00:02", IPv4Packet("198.18.0.1", "198.18.0.2", 6), seg
    )


FRAMES = [frame(i) for i in range(N)]


def run(cfg: ImpairConfig, seed: int = 1, gap: float = 0.001) -> tuple[Impairment, list]:
    """Push N frames, one every ``gap`` seconds; collect (time, frame) as they leave."""
    imp = Impairment(cfg, seed=seed)
    out = []
    for i, f in enumerate(FRAMES):
        now = i * gap
        imp.push(f, now)
        out.extend((now, g) for g in imp.due(now))
    t = N * gap
    while imp.next_deadline() is not None:
        t = imp.next_deadline()
        out.extend((t, g) for g in imp.due(t))
    return imp, out


def losses(imp: Impairment, frames: list[bytes]) -> list[bool]:
    """Whether each frame was lost; the queue is drained as it goes."""
    out = []
    for f in frames:
        out.append(imp.push(f, 0.0).lost)
        imp.due(0.0)
    return out


def seq_of(f: bytes) -> int:
    return int.from_bytes(f[38:42], "big")


def test_loss_rate_matches():
    imp, out = run(ImpairConfig(loss=0.10))
    assert imp.stats.lost / N == pytest.approx(0.10, abs=0.01)
    assert len(out) == N - imp.stats.lost


def test_correlated_loss_keeps_the_rate_and_makes_bursts():
    def runs_of_losses(cfg: ImpairConfig) -> tuple[float, float]:
        imp = Impairment(cfg, seed=3)
        lost = losses(imp, FRAMES)
        bursts, cur = [], 0
        for x in lost:
            if x:
                cur += 1
            elif cur:
                bursts.append(cur)
                cur = 0
        return statistics.mean(bursts), sum(lost) / len(lost)

    plain, plain_rate = runs_of_losses(ImpairConfig(loss=0.2))
    corr, corr_rate = runs_of_losses(ImpairConfig(loss=0.2, loss_correlation=0.75))
    assert plain_rate == pytest.approx(0.2, abs=0.01)
    assert corr_rate == pytest.approx(0.2, abs=0.02)  # the rate holds (unlike netem's formula)
    assert corr > plain * 2  # correlated losses come in longer runs


def test_gilbert_elliott_burst_length_and_rate():
    p, r = 0.01, 0.25  # mean bad-burst 1/r = 4 frames; stationary P(bad) = p/(p+r)
    imp = Impairment(ImpairConfig(ge_p=p, ge_r=r), seed=5)
    lost = losses(imp, FRAMES * 3)
    bursts, cur = [], 0
    for x in lost:
        if x:
            cur += 1
        elif cur:
            bursts.append(cur)
            cur = 0
    assert statistics.mean(bursts) == pytest.approx(1 / r, rel=0.15)
    assert sum(lost) / len(lost) == pytest.approx(p / (p + r), rel=0.15)


@pytest.mark.parametrize("dist", ["uniform", "normal", "pareto", "paretonormal"])
def test_delay_and_jitter_distribution(dist):
    cfg = ImpairConfig(delay=0.050, jitter=0.010, distribution=dist, limit=N)
    imp = Impairment(cfg, seed=7)
    delays = []
    for i, f in enumerate(FRAMES):
        now = i * 0.001
        imp.push(f, now)
        t = imp._queue[-1][0] if imp._queue else now
        delays.append(t - now)
    assert statistics.mean(delays) == pytest.approx(0.050, abs=0.002)
    sd = statistics.pstdev(delays)
    if dist == "uniform":  # uniform on ±10 ms: sd = 10/√3 ms
        assert sd == pytest.approx(0.010 / 3**0.5, rel=0.05)
        assert min(delays) >= 0.040 - 1e-9 and max(delays) <= 0.060 + 1e-9
    else:
        assert sd == pytest.approx(0.010, rel=0.25)


def test_reorder_rate_and_overtaking():
    cfg = ImpairConfig(delay=0.010, reorder=0.25, limit=N)
    imp, out = run(cfg)
    assert imp.stats.reordered / N == pytest.approx(0.25, abs=0.015)
    seqs = [seq_of(f) for _, f in out]
    overtakes = sum(1 for a, b in itertools.pairwise(seqs) if b < a)
    assert overtakes > N * 0.1
    assert sorted(seqs) == list(range(N))  # nothing lost or duplicated


def test_reorder_gap_sends_every_nth_at_once():
    imp, _ = run(ImpairConfig(delay=0.010, reorder=1.0, gap=5, limit=N))
    assert imp.stats.reordered == pytest.approx(N / 5, abs=2)


def test_duplicate_rate():
    imp, out = run(ImpairConfig(duplicate=0.05))
    assert imp.stats.duplicated / N == pytest.approx(0.05, abs=0.008)
    assert len(out) == N + imp.stats.duplicated


def test_corrupt_rate_and_receiver_sees_a_bad_checksum():
    imp, out = run(ImpairConfig(corrupt=0.02))
    assert imp.stats.corrupted / N == pytest.approx(0.02, abs=0.005)
    bad = 0
    for _, f in out:
        try:
            parse_frame(f)
        except ValueError:
            bad += 1
    assert bad == imp.stats.corrupted  # every flipped bit is caught by a checksum


def test_rate_paces_frames():
    size = len(FRAMES[0])
    rate = 1_000_000  # 1 Mbit/s
    _imp, out = run(ImpairConfig(rate=rate, packet_overhead=24, limit=N), gap=0.0)
    times = [t for t, _ in out]
    per_frame = (size + 24) * 8 / rate
    assert times[-1] == pytest.approx(N * per_frame, rel=1e-6)


def test_limit_tail_drops():
    imp, out = run(ImpairConfig(delay=1.0, limit=100), gap=0.0001)
    assert imp.stats.overlimit > 0
    assert len(out) == N - imp.stats.overlimit


def test_seeded_runs_are_identical():
    cfg = ImpairConfig(
        loss=0.1, duplicate=0.05, reorder=0.25, corrupt=0.01, delay=0.005, jitter=0.002, limit=N
    )
    a = run(cfg, seed=42)[1]
    b = run(cfg, seed=42)[1]
    c = run(cfg, seed=43)[1]
    assert a == b
    assert a != c


def test_inactive_config_is_reported_inactive():
    assert not ImpairConfig().active
    assert ImpairConfig(loss=0.01).active


def test_bad_values_are_rejected():
    with pytest.raises(ValueError, match="loss"):
        ImpairConfig(loss=1.5)
    with pytest.raises(ValueError, match="distribution"):
        ImpairConfig(distribution="cauchy")


def test_without_delay_or_rate_frames_leave_at_once_as_through_the_queue():
    """No delay, jitter or rate: frames wait in a plain list instead of the heap; the
    same pipeline made to use the heap gives the same frames in the same order."""
    cfg = ImpairConfig(loss=0.05, duplicate=0.05, corrupt=0.05)
    at_once = Impairment(cfg, seed=7)
    queued = Impairment(cfg, seed=7)
    queued._immediate = False  # the general path: every frame through the heap
    got_once, got_queued, fates = [], [], []
    for i, f in enumerate(FRAMES[:2000]):
        now = i * 0.001
        fate = at_once.push(f, now)
        assert fate == queued.push(f, now)
        fates.append(fate)
        assert at_once.next_deadline() == (now if fate.copies else None)
        got_once += at_once.due(now)
        got_queued += queued.due(now)
    assert got_once == got_queued and len(at_once) == 0
    assert {f.copies for f in fates} == {0, 1, 2} and any(f.corrupted for f in fates)


def test_tail_drop_is_reported_as_no_copy_left():
    imp = Impairment(ImpairConfig(limit=2, delay=0.1), seed=1)
    assert [imp.push(f, 0.0).copies for f in FRAMES[:3]] == [1, 1, 0]
    fate = imp.push(FRAMES[3], 0.0)
    assert (fate.lost, fate.why, fate.copies) == (True, "queue limit", 0)
    assert imp.stats.overlimit == 2 and len(imp) == 2
