"""What a run and its steps come to, for every kind of run: ``StepResult`` (one
step's verdict, as the console prints it and report.json keeps it), ``StepFailed``
(a step's expectation did not hold), ``EnvironmentProblem`` (exit code 3) and
``Outcome`` (a finished run). Imports nothing of netemu's."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol


class StepFailed(Exception):
    """An expectation did not hold: ``message`` says what was expected and seen."""


class EnvironmentProblem(Exception):
    """Not root, a missing tool: exit code 3."""


@dataclass
class StepResult:
    index: int
    line: int
    action: str
    text: str
    status: str = "pending"  # pass, fail, skipped
    message: str = ""
    seconds: float = 0.0
    t: float | None = None  # script time the event ran at (a .pkt's)

    def as_dict(self) -> dict[str, Any]:
        d: dict[str, Any] = {
            "index": self.index,
            "line": self.line,
            "action": self.action,
            "step": self.text,
            "status": self.status,
            "message": self.message,
            "seconds": round(self.seconds, 4),
        }
        if self.t is not None:
            d["t"] = round(self.t, 6)
        return d


OnStep = Callable[[StepResult], None]  # a step's result as it comes (the console)


class RunSource(Protocol):
    """What a run was made from (a scenario, a loaded .pkt script), as far as the run
    layer reads it."""

    @property
    def name(self) -> str: ...

    @property
    def description(self) -> str: ...

    @property
    def steps(self) -> Sequence[object]: ...


@dataclass
class Outcome:
    scenario: RunSource  # a scenario, a loaded .pkt script
    passed: bool
    run_dir: Path
    report: dict[str, Any]
    ladder: str
