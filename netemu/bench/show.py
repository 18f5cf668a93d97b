"""`netemu bench show`: `netemu show` on a large capture, next to tshark's `conv,tcp`
(issue 19: "a 200 MB capture in at most 3 times tshark's time and at most 2 times its memory").

It writes its own capture in a temporary directory (``show_capture.write_capture``:
bulk connections with losses and fast retransmissions, many short ones, non-TCP
frames; about 200 MB, or 3 MB with ``--quick``), then runs, one after the other, each
as a child process whose wall time and peak resident memory (``wait4``'s ru_maxrss)
are measured: ``tshark -q -z conv,tcp -r FILE`` and ``netemu show FILE`` (the text
ladder), then ``netemu show --json`` and ``--html`` (reported, not compared). Ratios:
``time_ratio`` = netemu_s / tshark_s, ``rss_ratio`` = netemu_rss_mb / tshark_rss_mb.
Without tshark: BenchError. ``NETEMU_BENCH_SHOW_MB`` sets the size.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from .run import BenchError
from .show_capture import write_capture

DEFAULT_BYTES = 200_000_000
QUICK_BYTES = 3_000_000


def _child(argv: list[str], out: Path) -> tuple[float, float]:
    """(wall seconds, peak RSS in MB) of one child process, its stdout into ``out``."""
    env = dict(os.environ)
    root = str(Path(__file__).resolve().parents[2])
    env["PYTHONPATH"] = root + (os.pathsep + env["PYTHONPATH"] if env.get("PYTHONPATH") else "")
    with open(out, "wb") as f:
        t0 = time.perf_counter()
        proc = subprocess.Popen(argv, stdout=f, stderr=subprocess.DEVNULL, env=env)
        _, status, usage = os.wait4(proc.pid, 0)
        dt = time.perf_counter() - t0
    proc.returncode = os.waitstatus_to_exitcode(status)
    if proc.returncode not in (0, 4):
        raise BenchError(f"{argv[0]} exited with {proc.returncode}")
    return dt, usage.ru_maxrss / 1024


def run(quick: bool = False, size: int | None = None) -> dict[str, Any]:
    tshark = shutil.which("tshark")
    if tshark is None:
        raise BenchError("tshark is not installed: netemu bench show measures against it")
    if size is None:
        mb = os.environ.get("NETEMU_BENCH_SHOW_MB")
        size = int(float(mb) * 1_000_000) if mb else (QUICK_BYTES if quick else DEFAULT_BYTES)
    netemu = [sys.executable, "-m", "netemu", "show"]
    with tempfile.TemporaryDirectory(prefix="netemu-bench-show-") as tmp:
        d = Path(tmp)
        cap = d / "big.pcap"
        made = write_capture(cap, size)
        tshark_s, tshark_mb = _child([tshark, "-q", "-z", "conv,tcp", "-r", str(cap)], d / "t")
        netemu_s, netemu_mb = _child([*netemu, str(cap)], d / "n.txt")
        json_s, json_mb = _child([*netemu, "--json", str(cap)], d / "n.json")
        html_s, html_mb = _child([*netemu, "--html", str(d / "l.html"), str(cap)], d / "h")
        pages = sorted(d.glob("l*.html"))
        html_bytes = sum(p.stat().st_size for p in pages)
    return {
        "frames": made["frames"],
        "connections": made["connections"],
        "capture_mb": round(made["bytes"] / 1e6, 1),
        "netemu_s": round(netemu_s, 3),
        "tshark_s": round(tshark_s, 3),
        "time_ratio": round(netemu_s / tshark_s, 2),
        "netemu_rss_mb": round(netemu_mb, 1),
        "tshark_rss_mb": round(tshark_mb, 1),
        "rss_ratio": round(netemu_mb / tshark_mb, 2),
        "netemu_json_s": round(json_s, 3),
        "netemu_json_rss_mb": round(json_mb, 1),
        "netemu_html_s": round(html_s, 3),
        "netemu_html_rss_mb": round(html_mb, 1),
        "html_pages": len(pages),
        "html_mb": round(html_bytes / 1e6, 1),
    }


def render(r: dict[str, Any]) -> str:
    return (
        f"netemu show on a {r['capture_mb']} MB capture ({r['frames']:,} frames, "
        f"{r['connections']:,} connections) vs tshark -q -z conv,tcp:\n"
        f"  text   {r['netemu_s']:7.2f} s {r['netemu_rss_mb']:7.1f} MB   tshark "
        f"{r['tshark_s']:.2f} s {r['tshark_rss_mb']:.1f} MB   time x{r['time_ratio']} "
        f"(target <= 3), memory x{r['rss_ratio']} (target <= 2)\n"
        f"  --json {r['netemu_json_s']:7.2f} s {r['netemu_json_rss_mb']:7.1f} MB\n"
        f"  --html {r['netemu_html_s']:7.2f} s {r['netemu_html_rss_mb']:7.1f} MB "
        f"({r['html_pages']} pages, {r['html_mb']} MB)"
    )
