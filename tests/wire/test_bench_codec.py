"""The codec benchmark runs, reports the agreed keys, and renders."""

from __future__ import annotations

import json

from netemu.bench import codec
from netemu.bench.common import batch_size, best_rate, interleaved_best, ops_per_sec

KEYS = {
    "parse_ops",
    "build_ops",
    "scapy_parse_ops",
    "scapy_build_ops",
    "parse_ratio",
    "build_ratio",
    "parse_target",
    "build_target",
    "meets_targets",
    # the same segment over IPv6 (issue 20)
    "parse_ops_v6",
    "build_ops_v6",
    "scapy_parse_ops_v6",
    "scapy_build_ops_v6",
    "parse_ratio_v6",
    "build_ratio_v6",
}


def test_common_rates() -> None:
    def tick() -> None:
        pass

    assert batch_size(tick, 0.001) >= 1
    assert ops_per_sec(tick, 0.01) > 0
    assert best_rate(tick, 0.01, 2) > 0
    rates = interleaved_best({"a": tick, "b": tick}, 0.01, 2)
    assert set(rates) == {"a", "b"} and min(rates.values()) > 0


def test_codec_bench_quick() -> None:
    result = codec.run(quick=True)
    assert set(result) == KEYS
    json.dumps(result)
    assert result["parse_ops"] > result["scapy_parse_ops"] > 0
    assert result["build_ops"] > result["scapy_build_ops"] > 0
    assert result["parse_ops_v6"] > result["scapy_parse_ops_v6"] > 0
    assert result["build_ops_v6"] > result["scapy_build_ops_v6"] > 0
    ratio = result["parse_ops_v6"] / result["scapy_parse_ops_v6"]
    assert abs(result["parse_ratio_v6"] - ratio) <= 0.06  # (rounded to 0.1; ops rounded)
    text = codec.render(result)
    assert "parse" in text and "build" in text and "scapy" in text and "parse v6" in text
