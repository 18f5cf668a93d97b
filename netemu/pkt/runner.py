"""Execute a packetdrill script on a live lab, as packetdrill does on a tun device.

The kernel under test is the lab's peer. ``PktRunner`` runs the script's events in
order, each at its time, and hands each to the piece that does it:

- ``<`` packets: built and injected by ``inbound`` on a *raw* connection of netemu's
  host (netemu's endpoint sends nothing by itself), in the lab's addresses;
- ``>`` packets: the next segments the kernel sends on the connection under test,
  waited for by ``outbound`` and compared field by field in script space by ``match``
  (sequence numbers relative to the ISNs, TS values and Fast Open cookies mapped,
  ``tfo``); one larger (TSO/GSO) packet in the script matches a run of segments;
- system calls: real syscalls on sockets in the peer's namespace (``syscalls``, through
  ``live.LiveKernel``); non-blocking calls inline under a watchdog, blocking ones on a
  worker thread, as packetdrill's syscall thread does;
- shell commands and ``%{ }%`` snippets: in the peer's namespace (``commands``);
- times: packetdrill's rules and tolerance (``clock``), against the kernel's own
  receive timestamps where the link has them. With ``strict_timing`` (the default of
  ``netemu run``) a late event fails its step; otherwise it is a note.

The connection table (``state``) is what they share; a piece that finds the script
not kept raises ``EventFailed``, which fails the event's step (``StepFailed``).
"""

from __future__ import annotations

import asyncio
import contextlib
import random
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from ..host.script import ScriptHooks
from ..run.hooks import Hooks
from ..run.result import StepFailed, StepResult
from ..run.steps import StepLoop
from ..trace.record import NoteRecord, Trace
from ..wire import TcpSegment
from .addrs import RunAddresses
from .clock import ScriptClock
from .commands import run_code_blocks, run_command, tcp_info
from .inbound import Inbound, SendingHost
from .match import Matcher
from .model import Code, Command, Event, PacketSpec, Syscall
from .outbound import Outbound
from .state import ConnTable, EventFailed
from .syscalls import BlockedCall, SysCalls
from .tfo import CookieMap

if TYPE_CHECKING:
    from ..lab.core import Lab
    from .live import LiveKernel
    from .load import PktScript


@dataclass
class Pending:
    """A blocking system call in flight and the step its result goes to."""

    call: BlockedCall
    result: StepResult


class RunHost(SendingHost, Protocol):
    """netemu's host as a script run uses it: it tells each frame to ``on_frame``, and
    consults the run's hooks (``script``: its raw ports)."""

    on_frame: list[Callable[[str, bytes, TcpSegment | None], None]]
    script: ScriptHooks | None


class PktRunner(StepLoop[Event]):
    """Runs one loaded script's events on ``lab`` through netemu's ``host`` and the
    peer's ``kernel``; ``results``, ``timing`` and ``notes`` say how it went."""

    def __init__(
        self,
        loaded: PktScript,
        *,
        lab: Lab,
        host: RunHost,
        addrs: RunAddresses | None = None,
        kernel: LiveKernel | None = None,
        strict_timing: bool = False,
        tolerance_usecs: int | None = None,
        grace: float = 2.0,
        on_step: Callable[[StepResult], None] | None = None,
        seed: int | None = None,
    ) -> None:
        self.loaded = loaded
        self.script = loaded.script
        self.lab = lab
        self.host = host
        # The wire's addresses (IPv4 unless the script's --ip_version says otherwise).
        self.addrs = addrs = addrs or RunAddresses.for_lab(lab, loaded.ip_version)
        self.trace: Trace = host.trace
        self.kernel = kernel  # LiveKernel: the script's real system calls
        self.notes: list[str] = []
        self.clock = ScriptClock(
            self.trace,
            (tolerance_usecs if tolerance_usecs is not None else loaded.tolerance_usecs) / 1e6,
            loaded.tolerance_percent,
            strict_timing,
            self.notes,
        )
        self.timing = self.clock.timing
        rng = random.Random(seed)
        self.conns = ConnTable(
            host,
            Hooks().attach(host),
            addrs.peer,
            rng,
            bind_port=loaded.bind_port,
            connect_port=loaded.connect_port,
        )
        self.cookies = CookieMap(
            (loaded.remote_ip, loaded.local_ip),
            (addrs.emu, addrs.peer),
            self._sysctl_tfo_key,
            self._listener_tfo_key,
        )
        self.inbound = Inbound(lab, addrs, host, self.conns, self.cookies, rng, mss=loaded.mss)
        self.outbound = Outbound(
            self.trace,
            addrs.peer,
            self.conns,
            self.clock,
            Matcher(self.cookies, self.clock, loaded.tcp_ts_tick_usecs),
            grace=grace,
            strict_segments=loaded.strict_segments,
            non_fatal="packet" in loaded.non_fatal,
        )
        self.calls = SysCalls(kernel, self.conns, self.clock, grace=grace)
        self._code_queue: list[tuple[str, dict[str, Any], StepResult]] = []
        self.on_step = on_step
        self._reports: list[StepResult] = []
        self.results: list[StepResult] = []
        self.pending: Pending | None = None
        self._failed = False
        host.on_frame.append(self.outbound.on_frame)

    # ------------------------------------------------------------------ plumbing
    @property
    def t0(self) -> float:
        """Script time 0 (``time.monotonic()``)."""
        return self.clock.t0

    @t0.setter
    def t0(self, t: float) -> None:
        self.clock.t0 = t

    @property
    def tol(self) -> float:
        return self.clock.tol

    @property
    def netemu_late(self) -> str | None:
        """netemu's own lateness that failed the run (strict timing)."""
        return self.clock.netemu_late

    def punctuality(self) -> dict[str, Any]:
        return self.clock.punctuality()

    def _sysctl_tfo_key(self) -> str:
        from ..lab.netns import read_sysctl

        key: str = self.lab.run_in_peer(read_sysctl, "net.ipv4.tcp_fastopen_key")
        return key

    def _listener_tfo_key(self) -> bytes | None:
        """The key of the newest open listener, when the script gave it one by
        ``setsockopt(TCP_FASTOPEN_KEY)``: a listener's own key makes its cookies."""
        k = self.kernel
        if k is None:
            return None
        listeners = [f for f in k.fds.values() if f.kind == "socket" and f.listening]
        return listeners[-1].tfo_key if listeners else None

    async def start(self) -> None:
        link = getattr(self.host, "link", None)
        if link is not None and hasattr(link, "enable_rx_timestamps"):
            with contextlib.suppress(ValueError, OSError):
                link.enable_rx_timestamps()
                self.outbound.stamps = link.rx_stamps
        if any(
            o.kind in ("FO", "FOEXP")
            for ev in self.script.events
            if isinstance(ev.action, PacketSpec)
            for o in ev.action.options or ()
        ):
            self.cookies.sysctl_key()  # read before time 0, not at the first cookie
            for ev in self.script.events:  # and every cookie mapped (SipHash: ~1 ms)
                if isinstance(ev.action, PacketSpec) and ev.action.direction == "<":
                    for o in ev.action.options or ():
                        if o.kind in ("FO", "FOEXP") and isinstance(o.value, bytes):
                            self.cookies.map(o.value, to_lab=True)
        # No sock_diag polling of the peer while a script runs: a dump with TCP_INFO
        # takes each socket's lock, and the kernel under test then answered a FIN ~5 ms
        # late (close-remote-fin-then-close failed its +0 ACK; passes without polling).
        # The peer's states are inferred from the packets (see session.py).

    async def stop(self) -> None:
        if self.kernel is not None:
            self.kernel.close_all()
        self.calls.stop()
        self.inbound.close()
        if self.pending is not None:
            with contextlib.suppress(BaseException):
                await asyncio.wait_for(asyncio.shield(self.pending.call.task), 1.0)
        with contextlib.suppress(ValueError):
            self.host.on_frame.remove(self.outbound.on_frame)

    # ------------------------------------------------------------------ the run
    async def run(self) -> bool:
        events = self.script.events
        self.t0 = time.monotonic()
        if self.kernel is not None:
            self.kernel.t0_realtime = time.time() - (time.monotonic() - self.t0)
            self.kernel.tolerance_us = int(self.tol * 1e6)
        ok = await self.run_steps(events)
        if ok:
            ok = await self._finish_pending()
        if ok and not self._failed:
            ok = await self._run_code()
        for _text, _values, res in self._code_queue:  # the script failed before its end
            res.status = "skipped"
            res.message = "not run: the script failed first (packetdrill runs %{ }% at its end)"
            self._report(res)
        self._code_queue.clear()
        if not ok:
            self.skip_rest(events)
        self.results.sort(key=lambda r: r.index)
        return ok and not self._failed

    # The step loop's (netemu.run.steps): an event's result, its run, its notes.
    def new_result(self, index: int, step: Event, status: str = "pending") -> StepResult:
        return StepResult(index, step.line, step.kind, step.source, status)

    async def act(self, step: Event, res: StepResult) -> bool:
        return await self._event(step, res)

    def halted(self) -> bool:
        return self._failed  # a blocking call finished badly while we went on

    def _report(self, res: StepResult) -> None:
        """Step results reach ``on_step`` (the console) in the script's idle gaps, never
        between two events: printing a line costs up to ~3 ms, and relative times
        anchor on the moment the previous event ended, as in packetdrill."""
        if self.on_step is not None:
            self._reports.append(res)

    def flush_reports(self) -> None:
        reports, self._reports = self._reports, []
        if self.on_step is not None:
            for res in reports:
                self.on_step(res)

    def fail_text(self, res: StepResult) -> str:
        return f"line {res.line} failed: {res.message.splitlines()[0]}"

    def skip_rest(self, steps: Sequence[Event]) -> None:
        super().skip_rest(steps)
        if self.pending is not None:
            p = self.pending
            if p.result.status == "pending":  # not the failure: the script ended first
                p.result.status = "skipped"
                p.result.message = "still blocked when the script failed"
                self._report(p.result)

    async def _finish_pending(self) -> bool:
        if self.pending is None:
            return True
        await self._await_pending()
        return not self._failed

    def _idle(self) -> bool:
        """The script waits a while: print the step results so far (True when there
        were any)."""
        if not self._reports:
            return False
        self.flush_reports()
        return True

    # ------------------------------------------------------------------ events
    async def _event(self, ev: Event, res: StepResult) -> bool:
        """Run one event; True when its result comes later (a blocking call)."""
        try:
            return await self._do_event(ev, res)
        except EventFailed as e:
            raise StepFailed(str(e)) from None

    async def _do_event(self, ev: Event, res: StepResult) -> bool:
        clock = self.clock
        start, end, checked = clock.schedule(ev)
        # An absolute time the script has already passed: packetdrill runs the event at
        # once, unchecked (not netemu's lateness).
        timed = checked and not (ev.time.kind in ("abs", "range") and start < clock.now())
        tol = clock.tolerance(start)
        a = ev.action
        deferred = False
        if isinstance(a, PacketSpec) and ev.kind == "expect":
            self._step_note(ev)
            await self.outbound.expect(ev, a, start, end, tol, checked, res)
        else:
            if ev.kind == "syscall" and self.pending is not None:
                await self._await_pending()
                if self._failed:
                    raise StepFailed("a blocking call before this one failed")
            # An inbound packet is built before its time, sent at its time.
            built = self.inbound.build(a) if isinstance(a, PacketSpec) else None
            await clock.sleep_until(start, self._idle)
            res.t = clock.now()
            self._step_note(ev)
            if built is not None:
                self.inbound.send(built)
                clock.sent_at = res.t
            if timed:
                self._left(ev, res.t, start, end, tol)
            if isinstance(a, Syscall):
                blocked = await self.calls.call(ev, a, start)
                if blocked is not None:
                    self.pending = Pending(blocked, res)
                    deferred = True
            elif isinstance(a, Command):
                await self._command(a.text)
            elif isinstance(a, Code):
                self._code(a.text, res)
                deferred = True
        clock.done(ev, start, deferred=deferred)
        return deferred

    def _left(self, ev: Event, t: float, start: float, end: float, tol: float) -> None:
        """netemu's own event (a packet it sends, a call, a command) left at ``t``: how
        late, and a failure when it missed its time."""
        self.clock.lateness.append(max(t - start, 0.0))
        late = self.clock.check(ev.line, f"{ev.kind} start", t, start, end, tol, ev.time.text)
        if late:
            raise StepFailed(late)

    def _step_note(self, ev: Event) -> None:
        self.trace.notes.append(
            NoteRecord(time.monotonic(), f"line {ev.line}: {ev.source}", "step")
        )

    async def _await_pending(self) -> None:
        """The blocking call in flight returns and is checked: its step's result."""
        p = self.pending
        if p is None:
            return
        self.pending = None
        res = p.result
        try:
            await self.calls.finish(p.call)
            res.status = "pass"
        except (StepFailed, EventFailed) as e:
            res.status, res.message = "fail", str(e)
        except Exception as e:
            res.status, res.message = "fail", f"{type(e).__name__}: {e}"
        res.seconds = time.monotonic() - self.t0 - p.call.t0
        if res.status == "fail":
            self._failed = True
            self._fail_note(res)
        self._report(res)

    # ------------------------------------------------------------------ shell and code
    async def _command(self, text: str) -> None:
        out = await run_command(
            self.lab, text, Path(self.script.path).parent, addresses=(self.loaded, self.addrs)
        )
        if out.output.strip():
            for line in out.output.strip().splitlines()[-5:]:
                self.notes.append(f"`{text}`: {line}")
        if out.returncode != 0:
            raise StepFailed(
                f"`{text}` exited with status {out.returncode}"
                + (f": {out.output.strip().splitlines()[-1]}" if out.output.strip() else "")
            )

    def _code(self, text: str, res: StepResult) -> None:
        """packetdrill's code event: the socket's TCP_INFO (and SO_MEMINFO, TCP_CC_INFO)
        taken now; the Python itself runs after the script's last event, as packetdrill
        runs its code file then (a snippet costs milliseconds that the events after it
        must not pay)."""
        values = tcp_info(self.conns.sut_socket(self.kernel))
        if not any(k.startswith("tcpi_") for k in values):
            raise StepFailed("no TCP_INFO: the socket under test is not open in the kernel")
        self._code_queue.append((text, values, res))

    async def _run_code(self) -> bool:
        """The script's snippets, in order, once its events are over, by a Python of
        their own in the peer namespace (``netemu.pkt.code``); the first that fails
        fails the script (packetdrill: its code file's python3 exit status)."""
        if not self._code_queue:
            return True
        verdicts = await run_code_blocks(
            self.lab,
            [(t, v) for t, v, _r in self._code_queue],
            Path(self.script.path).resolve().parent,
        )
        ok = True
        for (_text, _values, res), why in zip(self._code_queue, verdicts, strict=True):
            if why == "skipped":
                res.status, res.message = "skipped", "an earlier %{ }% failed"
            elif why is None:
                res.status, res.message = "pass", ""
            else:
                res.status, res.message = "fail", why
                ok = False
                self._fail_note(res)
            self._report(res)
        self._code_queue.clear()
        return ok
