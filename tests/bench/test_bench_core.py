"""`netemu bench core`: the in-memory transfer it times, and its SACK figures."""

from __future__ import annotations

from netemu.bench import core
from netemu.tcp import TcpConfig

MIB = 1024 * 1024


def test_transfer_is_byte_exact_and_counts_segments() -> None:
    r = core.transfer(MIB)
    assert r["completed"] and r["byte_exact"]
    assert r["segments"] >= MIB // 1448 and r["retransmits"] == 0
    assert r["virtual_s"] > 0


def test_transfer_takes_the_delay_it_is_given() -> None:
    slow = core.transfer(MIB, delay=0.010)["virtual_s"]
    fast = core.transfer(MIB, delay=0.001)["virtual_s"]
    assert slow > 5 * fast  # the same window needs ten times the round trip


def test_lossy_transfers_stay_exact_with_and_without_sack() -> None:
    for sack in (True, False):
        r = core.transfer(MIB, TcpConfig(sack=sack), loss=core.SACK_LOSS, seed=3)
        assert r["byte_exact"] and r["retransmits"] > 0


def test_sack_gain_is_nosack_time_over_sack_time() -> None:
    r = core.sack_gain(MIB, seeds=(1,), delay=0.0002)
    assert r["sack_byte_exact"]
    assert r["sack_gain"] == round(r["nosack_virtual_s"] / r["sack_virtual_s"], 2)


def test_render_names_the_delay_and_the_sweep() -> None:
    r = {
        "bytes": 10 * MIB,
        "segments": 7242,
        "cpu_s": 0.1,
        "virtual_s": 0.2,
        "segments_per_s": 72420,
        "mb_per_s": 100.0,
        "byte_exact": True,
        "target_segments_per_s": 50000,
        "meets_target": True,
        "sack_gain": 1.23,
        "sack_virtual_s": 3.5,
        "nosack_virtual_s": 4.3,
        "target_sack_gain": 2.0,
        "meets_sack_target": False,
        "sack_delay_ms": 1.0,
        "sack_gain_by_delay_ms": {"0.05": 4.0, "1": 1.23},
    }
    text = core.render(r)
    assert "1 ms each way" in text and "sack_gain 1.23 (target ≥ 2.0: NOT met)" in text
    assert "sack_gain by one-way delay: 0.05 ms 4.0, 1 ms 1.23" in text
