"""`netemu bench run`: the fixed cost of `netemu run` on a trivial scenario.

The real command line, as a user types it, in a fresh process each time:
``python -m netemu run -q trivial.yaml -o DIR`` on a scenario with a kernel peer
and one ``sleep: 0s`` step. That is process start, imports, loading and
validating the YAML, a lab up and down, the emulated host started and stopped,
and the run directory written (pcap, ladder.txt, ladder.html, report.json); no
waiting. Every run must pass, in a new run directory.

For reference, measured in the same rounds (interleaved, so a noisy machine
disturbs all three alike): ``python_ms``, the interpreter alone (``python -c
pass``), and ``import_ms``, the interpreter plus importing every module a run
imports (recorded from a warm-up run, imported in the same order) and doing
nothing else. So ``run_ms - import_ms`` is the run's own work, loading and
validation included, and ``in_run_ms`` (the report's duration: lab up to lab
down) is the part spent with a lab up. Figures are medians, in wall-clock ms.

The start-up figures of issue 21, in the same rounds:

- ``agent_start_ms`` and ``agent_wait_ms``: a second scenario whose one step is a
  ``peer:`` step (``peer_run_ms``); its report.json says how long the kernel agent took
  to start (spawn to first reply) and how long that first peer step waited for it (the
  agent starts as the run sets up: netemu/scenario/agents.py).
- ``validate_ms`` and ``validate_pkt_ms``: ``python -m netemu validate FILE`` on a
  YAML scenario (close_wait's 19 steps: peer steps, segment and state expectations) and
  on a trivial ``.pkt``, against ``validate_target_ms`` (150).
- with ``--packetdrill PATH``: ``pkt_run_ms``, ``python -m netemu run -q`` on a trivial
  ``.pkt`` (a listener, the handshake, an ACK at +.1, accept), and ``packetdrill_ms``,
  that binary on the same script (from a scratch directory, as ``packetdrill
  FILE.pkt``), alternating which goes first; ``ratio`` = pkt_run_ms / packetdrill_ms,
  target ≤ 1.0. A ratio, measured in the same run: never compare absolute figures
  across machines.

Python's bytecode cache is on, in a temporary directory (``PYTHONPYCACHEPREFIX``),
as for any installed program. An environment that sets ``PYTHONDONTWRITEBYTECODE``
(as an editable checkout without ``__pycache__`` may) recompiles every netemu
module on every run; then ``run_dontwritebytecode_ms`` also reports that cost.
"""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

TARGET_MS = 200.0
VALIDATE_TARGET_MS = 150.0
RATIO_TARGET = 1.0

SCENARIO = """\
name: trivial
description: the fixed cost of a run (netemu bench run)
peer: kernel
steps:
  - sleep: 0s
"""

# One peer step: the kernel agent's start-up, as a run's report.json records it.
PEER_SCENARIO = """\
name: trivial-peer
description: the kernel agent's start-up (netemu bench run)
peer: kernel
steps:
  - peer: {listen: 8080}
"""

# What `netemu validate` checks (scenarios/close_wait.yaml's steps).
VALIDATE_SCENARIO = """\
name: close_wait
description: netemu closes first; the kernel's socket sits in CLOSE-WAIT, then closes
peer: kernel
options:
  msl: 500ms
steps:
  - peer: {listen: 8080}
  - connect: 8080
  - peer: accept
  - expect_state: ESTABLISHED
  - expect_peer_state: ESTABLISHED
  - close
  - expect_segment: {dir: out, flags: "F.", seq: 1, ack: 1, len: 0}
  - expect_state: FIN-WAIT-1
  - expect_segment: {dir: in, flags: ".", ack: 2}
  - expect_state: FIN-WAIT-2
  - expect_peer_state: CLOSE-WAIT
  - sleep: 300ms
  - expect_peer_state: {state: CLOSE-WAIT, note: nothing moves until the kernel closes}
  - peer: close
  - expect_segment: {dir: in, flags: "F.", seq: 1, ack: 2}
  - expect_state: TIME-WAIT
  - expect_segment: {dir: out, flags: ".", seq: 2, ack: 2}
  - expect_peer_state: CLOSED
  - expect_state: {state: CLOSED, within: 2s}
"""

# A trivial packetdrill script: a listener, the handshake, an ACK 100 ms later, accept.
PKT = """\
0   socket(..., SOCK_STREAM, IPPROTO_TCP) = 3
+0  setsockopt(3, SOL_SOCKET, SO_REUSEADDR, [1], 4) = 0
+0  bind(3, ..., ...) = 0
+0  listen(3, 1) = 0

+0  < S 0:0(0) win 32792 <mss 1000,sackOK,nop,nop,nop,wscale 7>
+0  > S. 0:0(0) ack 1 <...>
+.1 < . 1:1(0) ack 1 win 257
+0  accept(3, ..., ...) = 4
"""

# Runs `python -m netemu ARGS` (through runpy, as -m does), then records
# sys.modules in import order.
_RECORD = """\
import atexit, runpy, sys
def _dump():
    with open({out!r}, "w") as f:
        f.write("\\n".join(sys.modules))
atexit.register(_dump)
sys.argv = ["netemu", *{argv!r}]
runpy.run_module("netemu", run_name="__main__", alter_sys=True)
"""

# Imports the recorded modules, in order, and nothing else, as `netemu run` does (the
# collector off while importing: netemu/cli/run.py); exits as it does (gc.freeze: no
# collection of the imported objects at interpreter teardown).
_IMPORT = """\
import gc, importlib, sys
gc.disable()
for name in open({path!r}).read().split():
    try:
        importlib.import_module(name)
    except Exception:
        pass
gc.freeze()
"""


class BenchError(RuntimeError):
    """A run did not pass, or the machine cannot run one (not root)."""


def _wall_ms(
    argv: list[str], env: dict[str, str] | None, *, check: bool = True, cwd: Path | None = None
) -> float:
    t0 = time.perf_counter()
    proc = subprocess.run(
        argv,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        env=env,
        cwd=cwd,
        timeout=120,
    )
    ms = (time.perf_counter() - t0) * 1000
    if check and proc.returncode != 0:
        raise BenchError(
            f"{' '.join(argv)} exited {proc.returncode}: "
            f"{proc.stderr.decode(errors='replace').strip()}"
        )
    return ms


class _Bench:
    """The files of one bench run (in a temporary directory) and its figures, round by
    round."""

    def __init__(self, base: Path, packetdrill: str | None) -> None:
        self.base = base
        self.py = sys.executable
        self.packetdrill = packetdrill
        files = {
            "trivial.yaml": SCENARIO,
            "peer.yaml": PEER_SCENARIO,
            "validate.yaml": VALIDATE_SCENARIO,
            "trivial.pkt": PKT,
        }
        for name, text in files.items():
            (base / name).write_text(text)
        self.pd_dir = base / "packetdrill"  # its scratch directory (it writes there)
        self.pd_dir.mkdir()
        (self.pd_dir / "trivial.pkt").write_text(PKT)
        # Python's bytecode cache on, as for an installed netemu (sudo drops
        # PYTHONDONTWRITEBYTECODE), kept in the temporary directory, not the checkout.
        self.env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
        self.env["PYTHONPYCACHEPREFIX"] = str(base / "pycache")
        self.figures: dict[str, list[float]] = {}

    def add(self, key: str, ms: float) -> None:
        self.figures.setdefault(key, []).append(ms)

    def netemu(self, *args: str) -> list[str]:
        return [self.py, "-m", "netemu", *args]

    def run(self, scenario: str, out: str) -> dict:
        """`netemu run -q` on one file, timed (``out``: its figure); its report."""
        run_dir = self.base / "runs" / f"{out}-{len(self.figures.get(out, ()))}"
        self.add(
            out,
            _wall_ms(
                self.netemu("run", "-q", str(self.base / scenario), "-o", str(run_dir)), self.env
            ),
        )
        report = json.loads((run_dir / "report.json").read_text())
        if report.get("result") != "pass":
            raise BenchError(f"{scenario} did not pass: {report.get('error')}")
        return report

    def record_imports(self) -> list[str]:
        """A warm-up run (page cache, bytecode) that records what a run imports."""
        modules = self.base / "modules.txt"
        args = ["run", "-q", str(self.base / "trivial.yaml"), "-o", str(self.base / "warmup")]
        _wall_ms([self.py, "-c", _RECORD.format(out=str(modules), argv=args)], self.env)
        names = [n for n in modules.read_text().split() if not n.endswith("__main__")]
        modules.write_text("\n".join(names))
        for f in ("validate.yaml", "trivial.pkt"):  # (their bytecode too)
            _wall_ms(self.netemu("validate", str(self.base / f)), self.env)
        return names

    def round(self, i: int, as_is: dict[str, str] | None) -> None:
        py, env = self.py, self.env
        self.add("python", _wall_ms([py, "-c", "pass"], env))
        self.add(
            "import", _wall_ms([py, "-c", _IMPORT.format(path=str(self.base / "modules.txt"))], env)
        )
        self.add("inside", float(self.run("trivial.yaml", "run")["duration"]) * 1000)
        agents = self.run("peer.yaml", "peer_run").get("agents") or {}
        if len(agents) != 1:
            raise BenchError(f"the peer scenario's report has no agent figures: {agents}")
        agent = next(iter(agents.values()))
        self.add("agent_start", float(agent["start_ms"]))
        self.add("agent_wait", float(agent["wait_ms"]))
        self.add(
            "validate", _wall_ms(self.netemu("validate", str(self.base / "validate.yaml")), env)
        )
        self.add(
            "validate_pkt", _wall_ms(self.netemu("validate", str(self.base / "trivial.pkt")), env)
        )
        if self.packetdrill:
            pair = [lambda: self.run("trivial.pkt", "pkt_run"), self.run_packetdrill]
            for go in pair if i % 2 == 0 else pair[::-1]:  # each goes first every other round
                go()
        if as_is is not None:
            self.env = as_is
            try:
                self.run("trivial.yaml", "uncached")
            finally:
                self.env = env

    def run_packetdrill(self) -> None:
        assert self.packetdrill is not None
        self.add("packetdrill", _wall_ms([self.packetdrill, "trivial.pkt"], None, cwd=self.pd_dir))

    def median(self, key: str) -> float:
        return round(statistics.median(self.figures[key]), 1)


def run(quick: bool = False, packetdrill: str | None = None) -> dict:
    if os.geteuid() != 0:
        raise BenchError("bench run needs root: `netemu run` creates network namespaces")
    if packetdrill is not None and not os.access(packetdrill, os.X_OK):
        raise BenchError(f"--packetdrill {packetdrill}: not an executable file")
    rounds = 5 if quick else 11
    with tempfile.TemporaryDirectory(prefix="netemu-bench-run-") as tmp:
        b = _Bench(Path(tmp), packetdrill)
        names = b.record_imports()
        if packetdrill:  # the .pkt run's warm-up (its modules' bytecode), and packetdrill's
            b.run("trivial.pkt", "warm-up")
            b.run_packetdrill()
            b.figures.clear()
        as_is = dict(os.environ) if os.environ.get("PYTHONDONTWRITEBYTECODE") else None
        for i in range(rounds):
            b.round(i, as_is)
    from .parallel import measure as parallel  # scenarios/ with -j 2 vs -j 1 (issue 21)

    return _result(b, rounds, len(names)) | parallel(quick)


def _result(b: _Bench, rounds: int, modules: int) -> dict:
    runs = b.figures["run"]
    run_ms = b.median("run")
    validate_ms, validate_pkt_ms = b.median("validate"), b.median("validate_pkt")
    r = {
        "runs": rounds,
        "run_ms": run_ms,
        "run_min_ms": round(min(runs), 1),
        "run_max_ms": round(max(runs), 1),
        "python_ms": b.median("python"),
        "import_ms": b.median("import"),
        "import_modules": modules,
        "in_run_ms": b.median("inside"),
        "target_ms": TARGET_MS,
        "meets_target": run_ms <= TARGET_MS,
        "peer_run_ms": b.median("peer_run"),
        "agent_start_ms": b.median("agent_start"),
        "agent_wait_ms": b.median("agent_wait"),
        "validate_ms": validate_ms,
        "validate_pkt_ms": validate_pkt_ms,
        "validate_target_ms": VALIDATE_TARGET_MS,
        "validate_meets_target": max(validate_ms, validate_pkt_ms) < VALIDATE_TARGET_MS,
    }
    if "packetdrill" in b.figures:
        pkt_run_ms, packetdrill_ms = b.median("pkt_run"), b.median("packetdrill")
        ratio = round(pkt_run_ms / packetdrill_ms, 3)
        r |= {
            "pkt_run_ms": pkt_run_ms,
            "packetdrill_ms": packetdrill_ms,
            "ratio": ratio,
            "ratio_target": RATIO_TARGET,
            "ratio_meets_target": ratio <= RATIO_TARGET,
        }
    if "uncached" in b.figures:
        # Only when this environment sets PYTHONDONTWRITEBYTECODE: the same run as
        # the environment makes it, every module without a .pyc compiled each time.
        r["run_dontwritebytecode_ms"] = b.median("uncached")
    return r


def _met(ok: bool) -> str:
    return "met" if ok else "NOT met"


def render(r: dict) -> str:
    from .parallel import render as render_parallel

    lines = [
        f"run: `netemu run -q` on a trivial scenario (kernel peer, one `sleep: 0s`), "
        f"{r['runs']} runs, wall clock",
        f"  {r['run_ms']:.0f} ms median (min {r['run_min_ms']:.0f}, max "
        f"{r['run_max_ms']:.0f}); for reference: python alone {r['python_ms']:.0f} ms, "
        f"python + the run's {r['import_modules']} modules {r['import_ms']:.0f} ms, "
        f"lab up→down inside the run {r['in_run_ms']:.0f} ms; "
        f"target ≤ {r['target_ms']:.0f} ms: {_met(r['meets_target'])}",
        f"  kernel agent: starts in {r['agent_start_ms']:.0f} ms (spawn to first reply), "
        f"the first peer step waited {r['agent_wait_ms']:.1f} ms for it (a run whose one "
        f"step is a peer step: {r['peer_run_ms']:.0f} ms)",
        f"  netemu validate: {r['validate_ms']:.0f} ms on a 19-step YAML scenario, "
        f"{r['validate_pkt_ms']:.0f} ms on a .pkt; target < {r['validate_target_ms']:.0f} "
        f"ms: {_met(r['validate_meets_target'])}",
    ]
    if "ratio" in r:
        lines.append(
            f"  a trivial .pkt: netemu run {r['pkt_run_ms']:.0f} ms, packetdrill "
            f"{r['packetdrill_ms']:.0f} ms, ratio {r['ratio']:.2f}; target ≤ "
            f"{r['ratio_target']:.1f}: {_met(r['ratio_meets_target'])}"
        )
    if "run_dontwritebytecode_ms" in r:
        lines.append(
            f"  with this environment's PYTHONDONTWRITEBYTECODE=1 (sources without a .pyc "
            f"compiled on every run): {r['run_dontwritebytecode_ms']:.0f} ms median"
        )
    return "\n".join(lines) + render_parallel(r)
