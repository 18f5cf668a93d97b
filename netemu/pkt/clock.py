"""Script time for a packetdrill run: when each event is due and whether it happened in time.

packetdrill's rules, as its ``run.c`` applies them:

- a relative time (``+0.1``) counts from the previous event; two consecutive inbound
  packets are anchored to each other (the second to the first's *scheduled* time), a
  ``>`` packet that follows a system call counts from the moment the call returned, and
  one after a sniffed packet from that packet's arrival;
- ``*`` is any time (unchecked), ``0.1~0.2`` a range, a bare number an absolute time;
- the tolerance is ``--tolerance_usecs`` (default 4 ms) or ``--tolerance_percent``
  (default 12.5 %) of the gap since the previous event, whichever is larger.

``ScriptClock`` holds that state and checks each time; every check that fails or that
the run records becomes a ``Timing``. netemu's own lateness (an injected packet or a
call that left late) is told apart from the kernel's. With ``strict`` timing (``netemu
run``'s default) a late event fails its step; otherwise it is a note. Imports the
trace's records and the script's model only.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from ..trace.record import NoteRecord, Trace
from .model import Event


@dataclass
class Timing:
    line: int
    what: str
    expected: str
    actual: float
    tolerance: float
    ok: bool

    def text(self) -> str:
        return (
            f"line {self.line}: {self.what} expected at {self.expected} s, happened at "
            f"{self.actual:.6f} s (tolerance {self.tolerance * 1000:.1f} ms)"
        )

    def as_dict(self) -> dict[str, Any]:
        return {
            "line": self.line,
            "what": self.what,
            "expected": self.expected,
            "actual": round(self.actual, 6),
            "tolerance": round(self.tolerance, 6),
            "ok": self.ok,
        }


def when_text(start: float, end: float, checked: bool) -> str:
    """An event's scheduled time as the messages print it (``*``: unchecked)."""
    if not checked:
        return "*"
    return f"{start:.6f}" if end == start else f"{start:.6f}~{end:.6f}"


@dataclass
class ScriptClock:
    """Script time 0 is ``t0`` (``time.monotonic()``); ``tol`` seconds and ``tol_pct``
    percent are the script's tolerances."""

    trace: Trace
    tol: float
    tol_pct: float
    strict: bool
    notes: list[str]  # the run's notes: non-strict timing misses land here
    t0: float = 0.0
    timing: list[Timing] = field(default_factory=list)
    lateness: list[float] = field(default_factory=list)  # how late each timed event left
    netemu_late: str | None = None  # netemu's own lateness failed the run
    last_sched: float | None = None  # the previous event's scheduled time
    last_event: Event | None = None
    # When netemu's last own action took effect: a non-blocking system call returned,
    # an inbound packet left. A packet the kernel sends in answer counts from it.
    anchor: float | None = None
    call_end: float | None = None  # when this event's system call returned
    sent_at: float | None = None  # when this event's inbound packet left
    packet_end: float | None = None  # the last matched packet's time

    def now(self) -> float:
        """Script time: seconds since the script's time 0."""
        return time.monotonic() - self.t0

    def schedule(self, ev: Event) -> tuple[float, float, bool]:
        """(start, end, checked) in script time for ``ev``; anchors relative times as
        packetdrill does."""
        t = ev.time
        if t.kind == "any":
            now = self.now()
            return now, float("inf"), False
        if t.kind in ("abs", "range"):
            return t.start, t.end if t.end is not None else t.start, True
        last = self.last_event
        if (
            last is not None
            and self.last_sched is not None
            and ev.kind == "inject"
            and last.kind == "inject"
        ):
            base = self.last_sched
        elif self.anchor is not None and ev.kind == "expect":
            # A packet the kernel sends because of a system call or an inbound packet:
            # from the moment the call returned or the packet left, as packetdrill's
            # clock reads right after it (not later, when netemu got round to this
            # event: a delay of netemu's own moved the window, and an answer on time
            # failed as early).
            base = self.anchor
        elif last is not None and last.kind == "expect" and self.packet_end is not None:
            # After a sniffed packet packetdrill's clock reads microseconds after the
            # packet arrived; netemu may have read it later (its time is the kernel's
            # receive timestamp): count from the packet, so no read delay adds up.
            base = self.packet_end
        else:
            base = self.now()
        end = base + (t.end if t.end is not None else t.start)
        return base + t.start, end, True

    def done(self, ev: Event, start: float, *, deferred: bool) -> None:
        """``ev`` (scheduled at ``start``) is over: the next relative time counts from
        it."""
        self.last_event = ev
        self.last_sched = start if ev.time.kind != "any" else self.now()
        if ev.kind == "syscall":
            self.anchor = None if deferred else self.call_end
        else:
            self.anchor = self.sent_at if ev.kind == "inject" else None
        self.call_end = self.sent_at = None

    def tolerance(self, start: float) -> float:
        """The tolerance of an event due at ``start``: grows with the gap since the
        previous event."""
        tol = self.tol
        if self.last_sched is not None:
            tol = max(tol, self.tol_pct / 100.0 * (start - self.last_sched))
        return tol

    def span_tolerance(self, span: float) -> float:
        """The tolerance that grows with ``span`` seconds (a blocking call's own, or the
        script's age for TS values) rather than with the gap since the last event."""
        return max(self.tol, self.tol_pct / 100.0 * span)

    def check(
        self, line: int, what: str, actual: float, start: float, end: float, tol: float, text: str
    ) -> str | None:
        """Record whether ``what`` (at ``actual``) kept its time; the failure message
        when it did not and that fails the step."""
        if end == float("inf"):
            return None
        ok = start - tol <= actual <= end + tol
        if ok and what.endswith(" start"):
            return None  # netemu's own punctuality: recorded only when it slipped
        expected = when_text(start, end, True)
        rec = Timing(line, what, expected + (f" ({text})" if text else ""), actual, tol, ok)
        self.timing.append(rec)
        if ok:
            return None
        if what.endswith(" start"):  # netemu itself left late: not the kernel's miss
            msg = (
                f"netemu was late by {(actual - end) * 1000:.1f} ms at line {line} "
                f"({what[:-6]} scheduled at {expected}, tolerance {tol * 1000:.1f} ms)"
            )
            self.trace.notes.append(NoteRecord(time.monotonic(), msg, "fail"))
            if self.strict:
                self.netemu_late = msg
                return msg
            self.notes.append(msg)
            return None
        msg = "timing: " + rec.text()
        self.trace.notes.append(NoteRecord(time.monotonic(), msg, "note"))
        if self.strict:
            return msg
        self.notes.append(msg)
        return None

    async def sleep_until(self, t: float, idle: Callable[[], bool]) -> None:
        """Wake at script time ``t`` to within ~0.1 ms: the event loop's timers wake up
        to 1 ms late (epoll's millisecond timeout), so the last 1.5 ms are spun.
        ``idle`` runs first when there are more than 20 ms to wait (True: it did
        something, which took time)."""
        deadline = self.t0 + t
        delay = deadline - time.monotonic()
        if delay > 0.020 and idle():
            delay = deadline - time.monotonic()
        if delay > 0.0015:
            await asyncio.sleep(delay - 0.0015)
        while time.monotonic() < deadline:
            await asyncio.sleep(0)  # frames that arrive meanwhile are still read

    def punctuality(self) -> dict[str, Any]:
        """How late netemu's own events (packets it sent, calls, commands) left after
        their scheduled times: packetdrill's are microseconds late."""
        late = sorted(self.lateness)
        if not late:
            return {"events": 0}
        return {
            "events": len(late),
            "median_ms": round(late[len(late) // 2] * 1000, 3),
            "p90_ms": round(late[int(len(late) * 0.9)] * 1000, 3),
            "max_ms": round(late[-1] * 1000, 3),
        }
