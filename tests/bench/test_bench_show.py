"""`netemu bench show`: a small capture of its own, the figures it reports (the
targets are the full bench's business, not a test's)."""

from __future__ import annotations

import shutil

import pytest

from netemu.bench import show
from netemu.bench.run import BenchError
from netemu.bench.show_capture import write_capture
from netemu.trace.pcap import read_capture

KEYS = {
    "frames",
    "netemu_s",
    "tshark_s",
    "time_ratio",
    "netemu_rss_mb",
    "tshark_rss_mb",
    "rss_ratio",
    "connections",
    "netemu_json_s",
    "netemu_html_s",
}


def test_capture_is_what_it_says(tmp_path) -> None:
    made = write_capture(tmp_path / "c.pcap", 400_000)
    assert made["bytes"] == (tmp_path / "c.pcap").stat().st_size >= 400_000
    packets = read_capture(tmp_path / "c.pcap")
    assert len(packets) == made["frames"]
    assert made["connections"] > 6


@pytest.mark.skipif(shutil.which("tshark") is None, reason="tshark is not installed")
@pytest.mark.timeout(120)
def test_quick_bench_reports_every_figure() -> None:
    r = show.run(quick=True)
    assert set(r) >= KEYS
    assert r["frames"] > 1000 and r["connections"] > 6
    for k in ("netemu_s", "tshark_s", "netemu_rss_mb", "tshark_rss_mb", "netemu_json_s"):
        assert r[k] > 0
    assert r["time_ratio"] == pytest.approx(r["netemu_s"] / r["tshark_s"], rel=0.02)
    assert r["rss_ratio"] == pytest.approx(r["netemu_rss_mb"] / r["tshark_rss_mb"], rel=0.02)
    assert "tshark" in show.render(r)


def test_without_tshark_it_says_so(monkeypatch) -> None:
    monkeypatch.setattr(show.shutil, "which", lambda name: None)
    with pytest.raises(BenchError, match="tshark"):
        show.run(quick=True)
