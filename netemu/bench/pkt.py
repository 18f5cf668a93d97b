"""`netemu bench pkt`: what a packetdrill script costs beyond the time it schedules.

packetdrill itself spends about 0.2 s per script on top of the script's own clock
(tun device set up and torn down, its process, init scripts); that is the budget
(``budget_ms``; packetdrill is not packaged for Debian, so it cannot be timed in the
same run like the other benches' references).

Two figures, medians in wall-clock ms:

- ``overhead_ms``: per script, in one process (what each further script of
  ``netemu run DIR`` costs): ``run_pkt`` from lab up to the run directory written
  (pcap, ladder.txt, ladder.html, report.json) and the lab down, minus the script's
  scheduled time (``PktScript.scheduled_seconds``: every wait it asks for);
- ``cli_ms``: one ``python -m netemu run -q X.pkt`` in a fresh process (interpreter
  start and imports included) minus the scheduled time.

The scripts are built in (a handshake; data, SACK and a fast retransmit, with a shell
include that sets sysctls in the peer namespace); every run must pass.
"""

from __future__ import annotations

import asyncio
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

BUDGET_MS = 200.0

_INCLUDE = """\
#!/bin/sh
sysctl -q net.ipv4.tcp_timestamps=0
sysctl -q net.ipv4.tcp_sack=1
"""

SCRIPTS = {
    "handshake.pkt": """\
// netemu bench pkt: a passive open.
    0 socket(..., SOCK_STREAM, IPPROTO_TCP) = 3
   +0 setsockopt(3, SOL_SOCKET, SO_REUSEADDR, [1], 4) = 0
   +0 bind(3, ..., ...) = 0
   +0 listen(3, 1) = 0
   +0 < S 0:0(0) win 32792 <mss 1000,sackOK,nop,nop,nop,wscale 7>
   +0 > S. 0:0(0) ack 1 <...>
 +.02 < . 1:1(0) ack 1 win 257
   +0 accept(3, ..., ...) = 4
   +0 close(4) = 0
   +0 > F. 1:1(0) ack 1
""",
    "sack.pkt": """\
// netemu bench pkt: four segments, the first lost, three SACKs, a fast retransmit.
`./bench_sysctls.sh`
    0 socket(..., SOCK_STREAM, IPPROTO_TCP) = 3
   +0 setsockopt(3, SOL_SOCKET, SO_REUSEADDR, [1], 4) = 0
   +0 bind(3, ..., ...) = 0
   +0 listen(3, 1) = 0
   +0 < S 0:0(0) win 32792 <mss 1000,sackOK,nop,nop,nop,wscale 7>
   +0 > S. 0:0(0) ack 1 <...>
 +.02 < . 1:1(0) ack 1 win 257
   +0 accept(3, ..., ...) = 4
   +0 write(4, ..., 4000) = 4000
   +0 > P. 1:4001(4000) ack 1
 +.02 < . 1:1(0) ack 1 win 257 <sack 1001:2001,nop,nop>
   +0 < . 1:1(0) ack 1 win 257 <sack 1001:3001,nop,nop>
   +0 < . 1:1(0) ack 1 win 257 <sack 1001:4001,nop,nop>
   +0 > . 1:1001(1000) ack 1
 +.02 < . 1:1(0) ack 4001 win 257
   +0 %{ assert tcpi_total_retrans == 1 }%
""",
}


class BenchError(RuntimeError):
    pass


def _write_scripts(d: Path) -> list[Path]:
    inc = d / "bench_sysctls.sh"
    inc.write_text(_INCLUDE)
    inc.chmod(0o755)
    out = []
    for name, text in SCRIPTS.items():
        (d / name).write_text(text)
        out.append(d / name)
    return out


def run(quick: bool = False) -> dict:
    if os.geteuid() != 0:
        raise BenchError("bench pkt needs root: it runs scripts in a lab")
    from ..pkt import load_pkt
    from ..pkt.session import run_pkt

    rounds = 3 if quick else 8
    per_script: dict[str, list[float]] = {}
    overheads: list[float] = []
    cli: list[float] = []
    with tempfile.TemporaryDirectory(prefix="netemu-bench-pkt-") as tmp:
        d = Path(tmp)
        paths = _write_scripts(d)
        loaded = [load_pkt(p) for p in paths]
        asyncio.run(run_pkt(loaded[0], d / "warmup"))  # imports, caches
        n = 0
        for _ in range(rounds):
            for sc in loaded:
                n += 1
                t0 = time.monotonic()
                out = asyncio.run(run_pkt(sc, d / f"run{n}"))
                wall = time.monotonic() - t0
                if not out.passed:
                    raise BenchError(f"{sc.name} failed: {out.report.get('error')}")
                ms = (wall - sc.scheduled_seconds()) * 1000
                overheads.append(ms)
                per_script.setdefault(sc.name, []).append(ms)
        for i in range(2 if quick else 4):
            sc = loaded[i % len(loaded)]
            argv = [
                sys.executable,
                "-m",
                "netemu",
                "run",
                "-q",
                str(sc.path),
                "-o",
                str(d / f"cli{i}"),
            ]
            t0 = time.perf_counter()
            proc = subprocess.run(argv, stdin=subprocess.DEVNULL, capture_output=True, timeout=120)
            wall = time.perf_counter() - t0
            if proc.returncode != 0:
                raise BenchError(
                    f"{' '.join(argv)} exited {proc.returncode}: "
                    f"{proc.stdout.decode(errors='replace')[-400:]}"
                )
            cli.append((wall - sc.scheduled_seconds()) * 1000)
    med = statistics.median(overheads)
    return {
        "overhead_ms": round(med, 1),
        "overhead_min_ms": round(min(overheads), 1),
        "overhead_max_ms": round(max(overheads), 1),
        "per_script_ms": {k: round(statistics.median(v), 1) for k, v in per_script.items()},
        "cli_ms": round(statistics.median(cli), 1),
        "budget_ms": BUDGET_MS,
        "ratio": round(med / BUDGET_MS, 3),
        "runs": len(overheads),
        "scheduled_ms": {sc.name: round(sc.scheduled_seconds() * 1000, 1) for sc in loaded},
    }


def render(r: dict) -> str:
    per = ", ".join(f"{k} {v:.0f} ms" for k, v in r["per_script_ms"].items())
    verdict = "within" if r["overhead_ms"] <= r["budget_ms"] else "OVER"
    return (
        f"pkt: {r['overhead_ms']:.0f} ms per script beyond its own schedule (median of "
        f"{r['runs']}; {r['overhead_min_ms']:.0f}-{r['overhead_max_ms']:.0f}; {per}), "
        f"{verdict} packetdrill's ~{r['budget_ms']:.0f} ms (ratio {r['ratio']:.2f}); "
        f"one `netemu run X.pkt` process: {r['cli_ms']:.0f} ms"
    )
