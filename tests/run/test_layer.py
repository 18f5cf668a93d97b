"""netemu.run, the layer every kind of run shares: the step loop, the run directory
writer, the impairment pipelines; and the layer rule (it imports neither format)."""

from __future__ import annotations

import ast
import asyncio
import json
from pathlib import Path

import pytest

from netemu.run.impair import given, pipelines
from netemu.run.result import StepFailed, StepResult
from netemu.run.rundir import Progress, write_run_dir
from netemu.run.steps import StepLoop
from netemu.trace.record import Trace

ROOT = Path(__file__).resolve().parents[2] / "netemu"


class Loop(StepLoop[str]):
    """Steps are words: "ok" passes, "fail" raises StepFailed, "boom" anything else."""

    def __init__(self) -> None:
        self.trace = Trace(emulator_ip="198.18.0.1", peer_ip="198.18.0.2")
        self.results: list[StepResult] = []
        self.seen: list[tuple[int, str]] = []
        self.on_step = lambda res: self.seen.append((res.index, res.status))

    def new_result(self, index: int, step: str, status: str = "pending") -> StepResult:
        return StepResult(index, index * 10, "word", step, status)

    async def act(self, step: str, res: StepResult) -> bool:
        if step == "fail":
            raise StepFailed("it did not hold")
        if step == "boom":
            raise KeyError("x")
        return False

    def fail_text(self, res: StepResult) -> str:
        return f"step {res.index} failed: {res.message}"


def test_the_loop_stops_at_the_first_failure_and_skips_the_rest() -> None:
    loop = Loop()
    steps = ["ok", "fail", "ok"]
    assert asyncio.run(loop.run_steps(steps)) is False
    loop.skip_rest(steps)
    assert [(r.index, r.status) for r in loop.results] == [(1, "pass"), (2, "fail"), (3, "skipped")]
    assert loop.results[1].message == "it did not hold"
    assert loop.seen == [(1, "pass"), (2, "fail")]  # a skipped step is not reported
    assert [(n.kind, n.text) for n in loop.trace.notes] == [
        ("fail", "step 2 failed: it did not hold")
    ]


def test_an_error_in_a_step_fails_it_with_its_type() -> None:
    loop = Loop()
    assert asyncio.run(loop.run_steps(["boom"])) is False
    assert loop.results[0].message == "KeyError: 'x'"


def test_step_result_dict_has_the_script_time_only_when_set() -> None:
    assert "t" not in StepResult(1, 2, "send", "send x").as_dict()
    assert StepResult(1, 2, "syscall", "x", t=0.1234567).as_dict()["t"] == 0.123457


def test_pipelines_none_when_nothing_set_and_seeded_per_direction() -> None:
    assert pipelines({}, {}, 7) == (None, None)
    out, in_ = pipelines(given({"loss": None}, {"loss": 0.5}), {}, 7)
    assert out is not None and in_ is None
    assert out.config.loss == 0.5 and out.config.limit == 100_000
    again, _ = pipelines({"loss": 0.5}, {}, 7)
    assert again is not None and out.rng.random() == again.rng.random()


def test_the_run_directory_and_an_interrupted_one(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    trace = Trace(emulator_ip="198.18.0.1", peer_ip="198.18.0.2")
    report, _ = write_run_dir(
        trace,
        tmp_path / "a",
        name="x",
        result="pass",
        steps=[],
        duration=0.5,
        error=None,
        extra={"seed": 3},
    )
    assert {p.name for p in (tmp_path / "a").iterdir()} == {
        "trace.pcap",
        "ladder.txt",
        "ladder.html",
        "report.json",
    }
    assert report["result"] == "pass" and report["seed"] == 3
    progress = Progress("x", tmp_path / "b", 0.0)
    progress.write_interrupted()  # the lab never came up: nothing
    assert not (tmp_path / "b").exists()
    progress.trace = trace
    progress.account = lambda: (
        [{"index": 1, "status": "interrupted"}],
        " during step 1",
        {"seed": 3},
    )
    progress.write_interrupted()
    written = json.loads((tmp_path / "b" / "report.json").read_text())
    assert written["result"] == "interrupted"
    assert written["error"] == "interrupted during step 1 (a signal)"
    assert "interrupted during step 1; what was seen is in" in capsys.readouterr().err


def _imports(package: str) -> set[str]:
    out = set()
    for path in (ROOT / package).rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom) and node.module:
                out.add(("." * node.level) + node.module)
            elif isinstance(node, ast.Import):
                out.update(a.name for a in node.names)
    return out


@pytest.mark.parametrize(
    ("package", "never"),
    [
        ("run", ("scenario", "pkt", "cli")),
        ("scenario", ("pkt", "cli")),
        ("pkt", ("scenario", "cli")),
    ],
)
def test_layer_rule(package: str, never: tuple[str, ...]) -> None:
    """netemu.run imports neither format; the formats not each other, nor the CLI."""
    bad = {
        m
        for m in _imports(package)
        if any(m.lstrip(".").split(".")[0] == n or m.startswith(f"netemu.{n}") for n in never)
        and (m.startswith("..") or m.startswith("netemu."))
    }
    assert not bad
