"""The step loop every runner shares: steps in order, each with its ``StepResult``,
timed; a step that raises ``StepFailed`` (or anything else: the peer, the host, the
lab) fails with its message, noted on the trace; the first failure ends the loop and
``skip_rest`` marks what was not reached. A runner says what a step is
(``new_result``), how one runs (``act``) and what its notes say; the rest is here.
Imports the trace's records only."""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import Generic, TypeVar

from ..trace.record import NoteRecord, Trace
from .result import OnStep, StepFailed, StepResult

StepT = TypeVar("StepT")


class StepLoop(Generic[StepT]):
    """A runner's step loop; the runner sets ``trace``, ``results`` and ``on_step``."""

    trace: Trace
    results: list[StepResult]
    on_step: OnStep | None

    # -- what a runner says -------------------------------------------------------------
    def new_result(self, index: int, step: StepT, status: str = "pending") -> StepResult:
        raise NotImplementedError

    def begin(self, res: StepResult, step: StepT) -> None:
        """Before step ``res.index`` runs (a note on the trace, say)."""

    async def act(self, step: StepT, res: StepResult) -> bool:
        """Run one step; True when its result comes later (a blocking call), else it
        passed by returning."""
        raise NotImplementedError

    def fail_text(self, res: StepResult) -> str:
        """The trace's note of a failed step."""
        raise NotImplementedError

    def halted(self) -> bool:
        """Whether the run failed apart from its current step (a deferred one)."""
        return False

    def _report(self, res: StepResult) -> None:
        """A step's result, to ``on_step`` (the console)."""
        if self.on_step is not None:
            self.on_step(res)

    def _fail_note(self, res: StepResult) -> None:
        self.note(self.fail_text(res), "fail")

    # -- the loop -----------------------------------------------------------------------
    def note(self, text: str, kind: str) -> None:
        self.trace.notes.append(NoteRecord(time.monotonic(), text, kind))

    async def run_steps(self, steps: Sequence[StepT], first: int = 1) -> bool:
        """Every step in order until one fails (False) or all passed (True); the first
        is step number ``first`` (netemu.api runs its steps one call at a time)."""
        for i, step in enumerate(steps, first):
            res = self.new_result(i, step)
            self.results.append(res)
            self.begin(res, step)
            started = time.monotonic()
            deferred = False
            try:
                deferred = await self.act(step, res)
                if not deferred:
                    res.status = "pass"
            except StepFailed as e:
                res.status, res.message = "fail", str(e)
            except Exception as e:  # an error in a peer, the host or the lab
                res.status, res.message = "fail", f"{type(e).__name__}: {e}"
            res.seconds = time.monotonic() - started
            if res.status == "fail":
                self._fail_note(res)
            if not deferred:
                self._report(res)
            if res.status == "fail" or self.halted():
                return False
        return True

    def skip_rest(self, steps: Sequence[StepT]) -> None:
        """A ``skipped`` result for every step not reached."""
        done = {r.index for r in self.results}
        self.results.extend(
            self.new_result(i, step, "skipped") for i, step in enumerate(steps, 1) if i not in done
        )
