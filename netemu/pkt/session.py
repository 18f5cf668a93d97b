"""One .pkt run, end to end: lab up, kernel agent, host, the script's init commands,
the script, its cleanup command, then the run directory (netemu.run.rundir:
trace.pcap, ladder.txt, ladder.html, report.json) and the lab down. Layer: netemu.pkt,
on netemu.run; the YAML format and the command line are not used here."""

from __future__ import annotations

import asyncio
import shlex
import socket
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..lab.core import Lab
from ..run.codecache import decoder_code
from ..run.peerview import infer_peer_states
from ..run.result import OnStep, Outcome, StepResult
from ..run.rundir import Progress, TraceFiles, write_run_dir
from ..trace.record import Trace
from ..wire.frame import warm_decoders
from .addrs import RunAddresses
from .commands import CommandResult, run_command
from .load import PktScript
from .model import Command
from .runner import PktRunner

if TYPE_CHECKING:
    from ..host import Host


async def run_pkt(
    sc: PktScript,
    run_dir: Path,
    *,
    on_step: OnStep | None = None,
    strict_timing: bool = True,
    tolerance_usecs: int | None = None,
    seed: int | None = None,
    write: bool = True,
) -> Outcome:
    """Run a loaded script in a fresh lab (``.report`` also holds ``timing``: every
    checked time, and ``notes``; with ``write`` False, no run directory)."""
    run = PktRun(
        sc,
        run_dir,
        on_step=on_step,
        strict_timing=strict_timing,
        tolerance_usecs=tolerance_usecs,
        seed=seed,
    )
    # System calls run on threads of this process: with Python's default GIL switch
    # interval (5 ms) each call's hand-back waits for it (~2 ms a call measured here,
    # where packetdrill's calls take microseconds); 50 us makes it ~0.1 ms.
    switch = sys.getswitchinterval()
    sys.setswitchinterval(5e-5)
    progress = Progress(sc.name, run_dir, run.t0, account=run.interrupted_account)
    try:
        return await run.run(progress, write)
    except (asyncio.CancelledError, KeyboardInterrupt, SystemExit):
        # Ctrl-C, SIGTERM/SIGHUP: the run directory keeps what was seen (issue 17, 6),
        # as a YAML run's does.
        if write:
            progress.write_interrupted()
        raise
    finally:
        sys.setswitchinterval(switch)


class PktRun:
    """One run of a loaded script: what it has done so far, and its outputs."""

    def __init__(
        self,
        sc: PktScript,
        run_dir: Path,
        *,
        on_step: OnStep | None,
        strict_timing: bool,
        tolerance_usecs: int | None,
        seed: int | None,
    ) -> None:
        self.sc, self.run_dir, self.on_step = sc, run_dir, on_step
        self.strict, self.tolerance_usecs, self.seed = strict_timing, tolerance_usecs, seed
        self.t0 = time.monotonic()
        self.cwd = Path(sc.path).resolve().parent
        self.results: list[StepResult] = []  # the init commands', then the script's
        self.runner: PktRunner | None = None
        self.notes: list[str] = []
        self.timing: list[dict[str, Any]] = []
        self.phases: dict[str, float] = {}
        self.punctuality: dict[str, Any] | None = None
        self.late: str | None = None  # netemu's own lateness failed the run
        self.error: str | None = None
        self._addrs: RunAddresses | None = None  # once the lab is up

    async def run(self, progress: Progress, write: bool) -> Outcome:
        sc = self.sc
        passed = False
        drawn: TraceFiles | None = None
        try:
            with Lab(
                congestion=sc.congestion,
                peer_ifname="tun0",
                peer_tx_offload=True,
                mtu=sc.mtu,
                ipv6=sc.six,
            ) as lab:
                self._addrs = addrs = RunAddresses.for_lab(lab, sc.ip_version)
                trace = Trace(emulator_ip=addrs.emu, peer_ip=addrs.peer)
                progress.trace = trace
                passed = await self._in_lab(lab, trace)
                self.notes = [*lab.notes, *self.notes]
                if write:  # the trace is whole (the host is closed): its files, meanwhile
                    drawn = TraceFiles(trace, self.run_dir, sc.name)
                    drawn.start()
        except BaseException:
            if drawn is not None:
                drawn.join()  # (before an interrupted run's outputs are written)
            raise
        duration = time.monotonic() - self.t0
        if "script" in self.phases:
            self.phases["teardown"] = duration - self.phases["setup"] - self.phases["script"]
        failed = [r for r in self.results if r.status == "fail"]
        error = self.late if self.late is not None else self.error
        if error is None and failed:
            f = failed[0]
            error = f"line {f.line} {f.action}: {f.message}"
        passed = passed and error is None and not failed
        more = {"netemu_late": self.late, **self._punctuality()}
        if not write:
            report = {
                "scenario": sc.name,
                "result": "pass" if passed else "fail",
                "duration": duration,
                "error": error,
                "timing": self.timing,
                "notes": self.notes,
                "phases": self.phases,
                **more,
                "steps": [r.as_dict() for r in self.results],
            }
            return Outcome(sc, passed, self.run_dir, report, "")
        report, ladder = write_run_dir(
            trace,
            self.run_dir,
            name=sc.name,
            result="pass" if passed else "fail",
            steps=[r.as_dict() for r in self.results],
            duration=duration,
            error=error,
            extra=self._extra(self.notes, self.timing, self.phases, more),
            drawn=drawn,
        )
        return Outcome(sc, passed, self.run_dir, report, ladder)

    @property
    def addrs(self) -> RunAddresses:
        """The run's addresses (the lab is up)."""
        assert self._addrs is not None
        return self._addrs

    def _punctuality(self) -> dict[str, Any]:
        return {} if self.punctuality is None else {"punctuality": self.punctuality}

    def _extra(
        self,
        notes: list[str],
        timing: list[dict[str, Any]],
        phases: dict[str, float],
        more: dict[str, Any],
    ) -> dict[str, Any]:
        """report.json's keys beyond the common ones."""
        sc = self.sc
        return {
            "description": sc.description,
            "source": str(sc.path),
            "format": "packetdrill",
            "scheduled_seconds": round(sc.scheduled_seconds(), 6),
            "tolerance_usecs": self.tolerance_usecs
            if self.tolerance_usecs is not None
            else sc.tolerance_usecs,
            "strict_timing": self.strict,
            "timing": timing,
            "notes": notes,
            "phases": {k: round(v, 6) for k, v in phases.items()},
            **more,
        }

    def interrupted_account(self) -> tuple[list[dict[str, Any]], str, dict[str, Any]]:
        """What report.json says of a run a signal interrupted."""
        results = [*self.results, *(self.runner.results if self.runner else [])]
        where = f" at line {results[-1].line}" if results else ""
        return [r.as_dict() for r in results], where, self._extra([], [], {}, {})

    async def _in_lab(self, lab: Lab, trace: Trace) -> bool:
        from ..host import Host
        from ..trace.record import NoteRecord

        # Plain sockets, no packet rings: a script moves a handful of segments, and the
        # rings' set-up and teardown cost ~60 ms (as in the YAML runner, docs/lab.md).
        host = await Host(
            lab.open_link(tx_ring=0, rx_ring=0),
            lab.emu_ip,
            lab.emu_mac,
            trace=trace,
            ip6=lab.emu_ip6,
        ).start()
        passed = False
        try:
            await host.resolve(self.addrs.peer)
            ok = await self._init(lab)
            if lab.cc_per_socket:
                trace.notes.append(NoteRecord(time.monotonic(), lab.notes[-1], "note"))
            if ok:
                passed = await self._script(lab, host, trace)
        except Exception as e:  # the lab, the host: a failed run
            self.error = f"{type(e).__name__}: {e}"
        finally:
            host.close()
        return passed

    async def _command(self, lab: Lab, res: StepResult, text: str, what: str) -> CommandResult:
        """Run a command step: ``res`` passes or fails with "``what`` exited with status N"
        and the output's last line."""
        out = await run_command(lab, text, self.cwd, addresses=(self.sc, self.addrs))
        res.status = "pass" if out.returncode == 0 else "fail"
        if out.returncode != 0:
            res.message = f"{what} exited with status {out.returncode}" + (
                f": {out.output.strip().splitlines()[-1]}" if out.output.strip() else ""
            )
        if self.on_step is not None:
            self.on_step(res)
        return out

    async def _init(self, lab: Lab) -> bool:
        """The route of the script's remote address, the ``--init_scripts`` and the init
        commands; False when one failed."""
        sc = self.sc
        # packetdrill routes its remote address through tun0 by a route of its own
        # (which scripts change: `ip route change <remote> ... advmss 600`).
        # Added when a command names a route (a process costs ~5 ms a script).
        texts = [
            ev.action.text
            for ev in (*sc.script.init_commands, *sc.script.events)
            if isinstance(ev.action, Command)
        ]
        if any("route" in t for t in texts):
            six = "-6" if self.addrs.six else "-4"
            await run_command(
                lab, f"ip {six} route add {self.addrs.host_prefix} dev tun0", self.cwd
            )
        inits = [
            *((x, f"--init_scripts {x}", shlex.quote(x), 0) for x in sc.init_scripts),
            *(
                (ev.action.text, ev.action.text, ev.action.text, ev.line)
                for ev in sc.script.init_commands
                if isinstance(ev.action, Command)
            ),
        ]
        for text, shown, argv_text, line in inits:
            res = StepResult(0, line, "command", shown)
            out = await self._command(lab, res, argv_text, f"`{text}`")
            if out.output.strip():
                self.notes.extend(f"`{text}`: {ln}" for ln in out.output.strip().splitlines()[-5:])
            self.results.append(res)
            if out.returncode != 0:
                return False
        return True

    async def _script(self, lab: Lab, host: Host, trace: Trace) -> bool:
        """The script's events, then its cleanup command (packetdrill runs it, passed or
        failed)."""
        from .live import LiveKernel

        sc = self.sc
        kernel = LiveKernel(
            new_socket=lambda f, t, p: _peer_socket(lab, f, t, p),
            family=self.addrs.sock_family,
            local_ip=self.addrs.sock_local,
            remote_ip=self.addrs.sock_remote,
            script_local=sc.local_ip,
            script_remote=sc.remote_ip,
            bind_port=sc.bind_port,
            connect_port=sc.connect_port,
            congestion=sc.congestion if lab.cc_per_socket else None,
            cwd=str(self.cwd),
        )
        runner = self.runner = PktRunner(
            sc,
            lab=lab,
            addrs=self.addrs,
            host=host,
            kernel=kernel,
            on_step=self.on_step,
            strict_timing=self.strict,
            tolerance_usecs=self.tolerance_usecs,
            seed=self.seed,
        )
        await runner.start()
        with decoder_code():  # (their code from netemu's cache folder: ~1 ms, not ~11)
            warm_decoders()  # before the script's clock starts: none compiles on its first frame
        self.phases["setup"] = time.monotonic() - self.t0
        try:
            passed = await runner.run()
        finally:
            await runner.stop()
            runner.flush_reports()
            # sock_diag is not polled during a .pkt run: its socket lock delays the
            # kernel under test
            infer_peer_states(trace, self.addrs.peer)
        cleanup = None
        ev = sc.cleanup
        if ev is not None and isinstance(ev.action, Command):
            cleanup = StepResult(len(sc.script.events) + 1, ev.line, "command", ev.source)
            await self._command(lab, cleanup, ev.action.text, "cleanup command")
        self.phases["script"] = time.monotonic() - self.t0 - self.phases["setup"]
        self.runner = None  # its results are the run's now
        self.results.extend(runner.results)
        if cleanup is not None:
            self.results.append(cleanup)
        self.notes.extend(runner.notes)
        self.timing = [t.as_dict() for t in runner.timing]
        self.punctuality = runner.punctuality()
        self.late = runner.netemu_late
        return passed


def _peer_socket(lab: Lab, family: int, stype: int, proto: int) -> socket.socket:
    """A socket in the peer namespace, made by this thread (a setns there and back,
    ~0.03 ms) instead of the namespace's own thread (~0.5 ms a hop): a script's
    ``socket()`` is an event like any other and must not be late."""
    from ..linux import in_netns

    assert lab.peer_ns is not None
    with in_netns(lab.peer_ns.fd):
        return socket.socket(family, stype, proto)
