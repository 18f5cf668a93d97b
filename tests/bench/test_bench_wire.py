"""`netemu bench wire --json`: netemu's bulk throughput against the kernel's on the
same veth, over IPv4 and over IPv6 (issue 20's ``tx_ratio_v6``/``rx_ratio_v6``), in
one run. Checks the keys and that they are what they say, not the targets."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

pytestmark = [pytest.mark.root, pytest.mark.timeout(300)]


def test_bench_wire_quick_json_has_both_families() -> None:
    out = subprocess.run(
        [sys.executable, "-m", "netemu", "bench", "wire", "--quick", "--json"],
        capture_output=True,
        text=True,
        timeout=280,
    )
    assert out.returncode == 0, out.stdout + out.stderr
    r = json.loads(out.stdout)
    kernel = r["kernel_mbps"]
    assert kernel > 0
    for key in ("tx", "rx", "tx_v6", "rx_v6"):
        name = key.replace("_v6", "")
        six = "_v6" if key.endswith("_v6") else ""
        mbps = r[f"{name}_mbps{six}"]
        assert mbps > 0
        assert r[f"{name}_ratio{six}"] == pytest.approx(mbps / kernel, abs=1e-4)
    worst = min(r["tx_mbps_v6"] / r["tx_mbps"], r["rx_mbps_v6"] / r["rx_mbps"])
    assert r["v6_within"] == 0.1
    assert r["v6_meets_target"] == (worst >= 0.9)
