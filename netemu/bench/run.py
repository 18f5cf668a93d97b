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

Python's bytecode cache is on, in a temporary directory (``PYTHONPYCACHEPREFIX``),
as for any installed program. An environment that sets ``PYTHONDONTWRITEBYTECODE``
(as an editable checkout without ``__pycache__`` may) recompiles every netemu
module on every run; then ``run_dontwritebytecode_ms`` also reports that cost.

``parallel_ratio`` (and its ``parallel_*`` figures): the bundled scenarios with ``-j 2``
over ``-j 1``, verdicts compared (netemu/bench/parallel.py).
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

SCENARIO = """\
name: trivial
description: the fixed cost of a run (netemu bench run)
peer: kernel
steps:
  - sleep: 0s
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


def _wall_ms(argv: list[str], env: dict[str, str], *, check: bool = True) -> float:
    t0 = time.perf_counter()
    proc = subprocess.run(
        argv,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        env=env,
        timeout=120,
    )
    ms = (time.perf_counter() - t0) * 1000
    if check and proc.returncode != 0:
        raise BenchError(
            f"{' '.join(argv)} exited {proc.returncode}: "
            f"{proc.stderr.decode(errors='replace').strip()}"
        )
    return ms


def run(quick: bool = False) -> dict:
    if os.geteuid() != 0:
        raise BenchError("bench run needs root: `netemu run` creates network namespaces")
    rounds = 5 if quick else 11
    py = sys.executable
    with tempfile.TemporaryDirectory(prefix="netemu-bench-run-") as tmp:
        base = Path(tmp)
        scenario = base / "trivial.yaml"
        scenario.write_text(SCENARIO)
        modules = base / "modules.txt"

        def run_argv(i: int | str) -> list[str]:
            return [py, "-m", "netemu", "run", "-q", str(scenario), "-o", str(base / f"run-{i}")]

        def check(i: int | str) -> float:
            report = json.loads((base / f"run-{i}" / "report.json").read_text())
            if report.get("result") != "pass":
                raise BenchError(f"the trivial scenario did not pass: {report.get('error')}")
            return float(report["duration"]) * 1000

        # Python's bytecode cache on, as for an installed netemu (sudo drops
        # PYTHONDONTWRITEBYTECODE), kept in the temporary directory, not the checkout.
        env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
        env["PYTHONPYCACHEPREFIX"] = str(base / "pycache")
        # Warm-up (page cache, bytecode), which also records what a run imports.
        args = run_argv("warmup")[3:]
        _wall_ms([py, "-c", _RECORD.format(out=str(modules), argv=args)], env)
        names = [n for n in modules.read_text().split() if not n.endswith("__main__")]
        modules.write_text("\n".join(names))
        import_argv = [py, "-c", _IMPORT.format(path=str(modules))]
        as_is = dict(os.environ) if os.environ.get("PYTHONDONTWRITEBYTECODE") else None

        runs: list[float] = []
        python: list[float] = []
        imports: list[float] = []
        inside: list[float] = []
        uncached: list[float] = []
        for i in range(rounds):
            python.append(_wall_ms([py, "-c", "pass"], env))
            imports.append(_wall_ms(import_argv, env))
            runs.append(_wall_ms(run_argv(i), env))
            inside.append(check(i))
            if as_is is not None:
                uncached.append(_wall_ms(run_argv(f"{i}-as-is"), as_is))
                check(f"{i}-as-is")

    run_ms = statistics.median(runs)
    from .parallel import measure as parallel  # scenarios/ with -j 2 vs -j 1 (issue 21)

    return {
        "runs": rounds,
        "run_ms": round(run_ms, 1),
        "run_min_ms": round(min(runs), 1),
        "run_max_ms": round(max(runs), 1),
        "python_ms": round(statistics.median(python), 1),
        "import_ms": round(statistics.median(imports), 1),
        "import_modules": len(names),
        "in_run_ms": round(statistics.median(inside), 1),
        "target_ms": TARGET_MS,
        "meets_target": run_ms <= TARGET_MS,
        # Only when this environment sets PYTHONDONTWRITEBYTECODE: the same run as
        # the environment makes it, every module without a .pyc compiled each time.
        **({"run_dontwritebytecode_ms": round(statistics.median(uncached), 1)} if uncached else {}),
        **parallel(quick),
    }


def render(r: dict) -> str:
    from .parallel import render as render_parallel

    return (
        f"run: `netemu run -q` on a trivial scenario (kernel peer, one `sleep: 0s`), "
        f"{r['runs']} runs, wall clock\n"
        f"  {r['run_ms']:.0f} ms median (min {r['run_min_ms']:.0f}, max "
        f"{r['run_max_ms']:.0f}); for reference: python alone {r['python_ms']:.0f} ms, "
        f"python + the run's {r['import_modules']} modules {r['import_ms']:.0f} ms, "
        f"lab up→down inside the run {r['in_run_ms']:.0f} ms; "
        f"target ≤ {r['target_ms']:.0f} ms: {'met' if r['meets_target'] else 'NOT met'}"
        + (
            f"\n  with this environment's PYTHONDONTWRITEBYTECODE=1 (sources without a .pyc "
            f"compiled on every run): {r['run_dontwritebytecode_ms']:.0f} ms median"
            if "run_dontwritebytecode_ms" in r
            else ""
        )
        + render_parallel(r)
    )
