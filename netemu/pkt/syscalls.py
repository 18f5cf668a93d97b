"""A script's system calls, made for real on the kernel under test (``live.LiveKernel``).

As packetdrill makes them: a call the script does not mark as blocking runs inline (on
packetdrill's main thread; here the event loop's thread, under a SIGALRM watchdog), so
it returns in microseconds and the next relative time counts from its return; a call
with an end time (``+0...0.5 call(...)``) runs on a worker thread, as on packetdrill's
syscall thread, and the script goes on while it blocks. packetdrill's ``end_syscall``
checks the result: "the return value (any non-negative fd where the script names one),
then the errno, then the output arguments"; a blocking call's return time is checked
with a tolerance that grows with the call's own span.

Layer: the connection table (``state``) learns what each call did; the clock checks
its time; failures raise ``EventFailed``.
"""

from __future__ import annotations

import asyncio
import queue
import signal
import threading
from collections.abc import Callable
from dataclasses import dataclass
from types import FrameType
from typing import TYPE_CHECKING, Any

from .clock import ScriptClock
from .model import Event, Syscall
from .state import ConnTable, EventFailed

if TYPE_CHECKING:
    from .live import LiveKernel, Result


class _CallBlocked(Exception):
    pass


def _expired(signum: int, frame: FrameType | None) -> None:
    raise _CallBlocked


def can_inline() -> bool:
    """Inline calls need SIGALRM as their watchdog: only the main thread gets signals."""
    return threading.current_thread() is threading.main_thread()


class Workers:
    """Daemon threads that run system calls, kept warm: starting a thread costs ~2 ms
    here (the new thread and the GIL), a queued call ~0.05 ms. A call goes to an idle
    worker, or to a new one while the others are blocked."""

    def __init__(self) -> None:
        self._q: queue.SimpleQueue[Callable[[], None] | None] = queue.SimpleQueue()
        self._idle = 0
        self._n = 0
        self._lock = threading.Lock()
        self.submit(lambda: None)  # one warm worker before the script's time 0

    def submit(self, fn: Callable[[], None]) -> None:
        with self._lock:
            if self._idle == 0:
                self._n += 1
                self._idle += 1
                threading.Thread(target=self._loop, name=f"pkt-call-{self._n}", daemon=True).start()
            self._idle -= 1
        self._q.put(fn)

    def _loop(self) -> None:
        while True:
            fn = self._q.get()
            if fn is None:
                return
            fn()
            with self._lock:
                self._idle += 1

    def stop(self) -> None:
        for _ in range(self._n):
            self._q.put(None)


@dataclass
class BlockedCall:
    """A blocking system call in flight (``...`` end time)."""

    task: asyncio.Future[Result]
    event: Event
    call: Syscall
    end: float  # its scheduled return (script time)
    t0: float  # when it was made (script time)
    start: float = 0.0  # the call's scheduled start (script time)


def check_result(sc: Syscall, r: Result) -> None:
    """packetdrill's ``end_syscall``: the result (any non-negative fd where the script
    names one), then the errno, then the output arguments."""
    from .live import FD_CALLS, SYMBOLS, errno_name, value

    want = None if sc.ret.kind == "ellipsis" else value(sc.ret)
    got = r.text()
    if isinstance(want, int):
        if sc.name in FD_CALLS and want >= 0:
            if r.ret < 0:
                raise EventFailed(f"{sc.name}(): expected non-negative result but got {got}")
        elif r.ret != want:
            raise EventFailed(
                f"{sc.name}(): expected result {want}"
                + (f" {sc.errno}" if sc.errno else "")
                + f" but got {got}"
            )
        if sc.errno is not None:
            want_errno = SYMBOLS.get(sc.errno)
            if want_errno is not None and r.errno != want_errno:
                raise EventFailed(
                    f"{sc.name}(): expected errno {sc.errno} but got "
                    f"{errno_name(r.errno) if r.errno else 'none'} ({got})"
                )
    if r.mismatch:
        raise EventFailed(r.mismatch)


class SysCalls:
    """Makes the script's calls on ``kernel``; ``grace``: how long past its time a call
    may block before it fails as blocked."""

    def __init__(
        self, kernel: LiveKernel | None, conns: ConnTable, clock: ScriptClock, *, grace: float
    ) -> None:
        self.kernel = kernel
        self.conns = conns
        self.clock = clock
        self.grace = grace
        self.workers = Workers()
        # SIGALRM's handler before the run's inline calls
        self._alarm_old: Callable[[int, FrameType | None], Any] | int | None = None
        self._alarm_set = False

    def stop(self) -> None:
        if self._alarm_set:
            signal.signal(
                signal.SIGALRM, self._alarm_old if self._alarm_old is not None else signal.SIG_DFL
            )
            self._alarm_set = False
        self.workers.stop()

    async def call(self, ev: Event, sc: Syscall, start: float) -> BlockedCall | None:
        """Make ``sc`` (event ``ev``, due at ``start``) and check how it returned; a
        ``BlockedCall`` when it is blocking still (``finish`` checks it later)."""
        end = None
        if sc.end is not None:
            base = start - ev.time.start if ev.time.relative else 0.0
            end = base + sc.end
        self.conns.before_call(sc)
        if end is None and can_inline():
            r = self._inline(sc)
        elif end is not None:
            fut = self._start(sc)
            blocked = BlockedCall(fut, ev, sc, end, self.clock.now(), start)
            await asyncio.sleep(0)
            if not fut.done():
                return blocked
            r = await fut
        else:
            fut = self._start(sc)
            try:
                r = await asyncio.wait_for(asyncio.shield(fut), self.grace + 1.0)
            except TimeoutError:
                raise EventFailed(self._blocked_text(sc)) from None
        self.clock.call_end = r.ended - self.clock.t0
        self._returned(sc, r, ev.line, "system call return", end, start)
        return None

    async def finish(self, b: BlockedCall) -> None:
        """Wait for a blocking call to return and check it."""
        sc = b.call
        left = max(b.end - self.clock.now(), 0) + self.clock.tolerance(b.end) + self.grace
        try:
            r = await asyncio.wait_for(asyncio.shield(b.task), left)
        except TimeoutError:
            raise EventFailed(
                f"{sc.name}() had not returned {left:.3f} s after its scheduled end ({b.end:.6f} s)"
            ) from None
        self._returned(sc, r, b.event.line, "blocking system call return", b.end, b.start)

    def _returned(
        self, sc: Syscall, r: Result, line: int, what: str, end: float | None, start: float
    ) -> None:
        self.conns.after_call(sc, r, self.kernel)
        check_result(sc, r)
        if end is not None:
            # packetdrill: a blocking call's return tolerance grows with the call's own
            # span (from its start), not with the gap since the previous event.
            late = self.clock.check(
                line,
                what,
                r.ended - self.clock.t0,
                end,
                end,
                self.clock.span_tolerance(end - start),
                sc.end_text,
            )
            if late:
                raise EventFailed(late)

    def _start(self, sc: Syscall) -> asyncio.Future[Result]:
        """Run ``sc`` for real on a worker thread (as packetdrill's syscall thread): a
        call that blocks blocks that thread, never the event loop."""
        loop = asyncio.get_running_loop()
        fut: asyncio.Future[Result] = loop.create_future()
        kernel = self.kernel
        assert kernel is not None

        def resolve(r: Result) -> None:
            if not fut.done():
                fut.set_result(r)

        def reject(e: BaseException) -> None:
            if not fut.done():
                fut.set_exception(e)

        def work() -> None:
            try:
                r = kernel.call(sc)
            except BaseException as e:  # handed to the event loop
                loop.call_soon_threadsafe(reject, e)
                return
            loop.call_soon_threadsafe(resolve, r)

        self.workers.submit(work)
        return fut

    def _blocked_text(self, sc: Syscall) -> str:
        return (
            f"{sc.name}() blocked for more than {self.grace + 1.0:g} s; if it is meant "
            "to block, give its end time: '+0...0.5 call(...)'"
        )

    def _inline(self, sc: Syscall) -> Result:
        """A call the script does not mark as blocking runs right here, as packetdrill's
        main thread makes it: it returns in microseconds, and the next relative time
        counts from then. Should it block after all, SIGALRM ends it after the grace
        time (EINTR) and the step fails saying so."""
        assert self.kernel is not None
        if not self._alarm_set:  # the handler once a run (stop() puts back the old)
            self._alarm_old = signal.signal(signal.SIGALRM, _expired)
            self._alarm_set = True
        signal.setitimer(signal.ITIMER_REAL, self.grace + 1.0)
        try:
            return self.kernel.call(sc)
        except _CallBlocked:
            raise EventFailed(self._blocked_text(sc)) from None
        finally:
            signal.setitimer(signal.ITIMER_REAL, 0)
