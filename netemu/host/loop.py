"""What a ``Host`` and a ``Relay`` are alike in: readers of links on the running event
loop, each with one ``loop.call_at`` timer armed for its earliest deadline (a
connection's, an impairment pipeline's); ``async with`` starts and closes them.

Layer: netemu.host; imports the impairment pipelines' type only.
"""

from __future__ import annotations

import asyncio
import math
from collections.abc import Callable
from typing import TYPE_CHECKING, Self

if TYPE_CHECKING:
    from ..impair import Impairment


class DeadlineTimer:
    """Calls ``fire`` at the earliest time ``arm`` was given since it last fired."""

    def __init__(self, fire: Callable[[], None]) -> None:
        self._fire = fire
        self._handle: asyncio.TimerHandle | None = None
        self._at = math.inf  # when _handle fires (inf: no handle)

    def arm(self, loop: asyncio.AbstractEventLoop, when: float) -> None:
        """Fire at ``when`` (loop time), unless it fires at or before it already."""
        if self._at <= when:
            return
        if self._handle is not None:
            self._handle.cancel()
        self._at = when
        self._handle = loop.call_at(when, self._run)

    def _run(self) -> None:
        self._handle = None
        self._at = math.inf
        self._fire()

    def cancel(self) -> None:
        if self._handle is not None:
            self._handle.cancel()
            self._handle = None
            self._at = math.inf


def pipeline_deadlines(*pipes: Impairment | None) -> list[float]:
    """When each of ``pipes`` next has a frame due (None: no pipeline, or none held)."""
    return [d for imp in pipes if imp is not None and (d := imp.next_deadline()) is not None]


class LoopReader:
    """Reads its links on the running loop from ``start`` to ``close`` (once); its
    timer calls ``_on_timer``."""

    def __init__(self) -> None:
        self._loop: asyncio.AbstractEventLoop | None = None
        self._closed = False
        self._timer = DeadlineTimer(self._on_timer)

    async def start(self) -> Self:
        self._loop = loop = asyncio.get_running_loop()
        self._add_readers(loop)
        return self

    async def __aenter__(self) -> Self:
        return await self.start()

    async def __aexit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        if self._loop is not None:
            self._remove_readers(self._loop)
        self._timer.cancel()

    def _add_readers(self, loop: asyncio.AbstractEventLoop) -> None:
        raise NotImplementedError

    def _remove_readers(self, loop: asyncio.AbstractEventLoop) -> None:
        """Stop watching the links (a link already closed: nothing to stop)."""
        raise NotImplementedError

    def _on_timer(self) -> None:
        raise NotImplementedError
