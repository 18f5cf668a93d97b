"""One YAML scenario run, end to end: lab up, peers, netemu's host, the steps, then
the run directory (netemu.run.rundir) and the lab down. A ``mode: relay`` scenario
goes to relay_runner.py. Layer: netemu.scenario, on netemu.run; the packetdrill
language and the command line are not used here."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

from ..run.codecache import decoder_code
from ..run.impair import Pipelines
from ..run.result import EnvironmentProblem, OnStep, Outcome
from ..run.rundir import Progress, pcap_streamed, write_run_dir
from . import schema as S
from .runner import Runner
from .settings import (
    congestion,
    impairments,
    interrupted_account,
    link_notes,
    network_seed,
    peer_sysctls,
)


async def run_scenario(
    sc: S.Scenario,
    run_dir: Path,
    *,
    on_step: OnStep | None = None,
    overrides: dict[str, Any] | None = None,
) -> Outcome:
    if sc.mode == "relay":  # two kernels bridged: relay_runner.py
        from .relay_runner import run_relay_scenario

        return await run_relay_scenario(sc, run_dir, on_step=on_step, overrides=overrides)
    seed = sc.seed
    isn_secret = None if seed is None else seed.to_bytes(16, "big", signed=True)
    progress = Progress(
        sc.name, run_dir, time.monotonic(), account=interrupted_account(sc, None, {})
    )
    try:
        return await _run_in_lab(
            sc, run_dir, on_step, impairments(sc, overrides), isn_secret, progress
        )
    except (asyncio.CancelledError, KeyboardInterrupt, SystemExit):
        # Ctrl-C (the task cancelled) or SIGTERM/SIGHUP (SystemExit in the loop, then the
        # task cancelled as asyncio.run ends): the lab is down by now (its `with` has
        # unwound); the run directory keeps what was seen, marked interrupted.
        progress.write_interrupted()
        raise


def _check_congestion(sc: S.Scenario) -> None:
    """With congestion control set per socket, only the kernel agent can have it."""
    for name, peer in sc.peers.items():
        if peer.congestion_control and peer.kind != "kernel":
            allowed = Path("/proc/sys/net/ipv4/tcp_allowed_congestion_control")
            raise EnvironmentProblem(
                f"peer {name!r} ({peer.kind}) wants congestion control "
                f"{peer.congestion_control}, and this host lets a network namespace "
                f"default only to {allowed.read_text().strip()} ({allowed}): only "
                "the kernel agent sets it, per socket"
            )


async def start_peers(runner: Runner) -> None:
    try:
        await runner.start_peers()
    except FileNotFoundError as e:  # a command: peer's program is not there
        raise EnvironmentProblem(
            f"peer program not found: {e.filename or e} (the scenario's `command:`)"
        ) from None


async def _run_in_lab(
    sc: S.Scenario,
    run_dir: Path,
    on_step: OnStep | None,
    pipes: Pipelines,
    isn_secret: bytes | None,
    progress: Progress,
) -> Outcome:
    passed = False
    error: str | None = None
    with contextlib.ExitStack() as hold:
        # The decoders a run meets, compiled on their first frame: their code from
        # netemu's cache folder when an earlier run compiled it (netemu.run.codecache).
        hold.enter_context(decoder_code())
        async with endpoint_lab(
            sc,
            run_dir,
            hold=hold,
            pipes=pipes,
            isn_secret=isn_secret,
            on_step=on_step,
            progress=progress,
        ) as runner:
            try:
                await start_peers(runner)
                passed = await runner.run()
            except EnvironmentProblem:
                raise
            except Exception as e:  # a peer that would not start, the lab: a failed run
                error = f"{type(e).__name__}: {e}"
        progress.trace = None  # finished: the outputs below are the run's
        return write_outputs(
            sc, run_dir, runner.trace, runner, passed, error, time.monotonic() - progress.t0
        )


@contextlib.asynccontextmanager
async def endpoint_lab(
    sc: S.Scenario,
    run_dir: Path | None,
    *,
    hold: contextlib.ExitStack,
    pipes: Pipelines,
    isn_secret: bytes | None,
    on_step: OnStep | None = None,
    progress: Progress | None = None,
) -> AsyncIterator[Runner]:
    """A lab for an endpoint scenario, up: its peer namespace (sysctls, congestion
    control), netemu's host on the emulator's end with the impairment pipelines, the
    trace (streamed to ``run_dir``/trace.pcap when given) and the scenario's runner,
    whose peers are not started yet (``start_peers``). On the way out: the runner
    stopped, the host closed, the lab down, and signals held (on ``hold``, the
    caller's) from the run's end until the caller has written its outputs. ``netemu
    run`` and the Python API (netemu.api) both open their labs here."""
    from ..host import Host
    from ..lab.core import Lab, signals_deferred
    from ..trace.record import NoteRecord, Trace

    async with contextlib.AsyncExitStack() as stack:  # (the pcap as the run goes)
        ipv6, mtu = sc.uses_ipv6(), sc._link_mtu
        with Lab(
            peer_sysctls=peer_sysctls(sc), congestion=congestion(sc), ipv6=ipv6, mtu=mtu
        ) as lab:
            if lab.cc_per_socket:
                _check_congestion(sc)
            v6 = sc.family == "ipv6"  # the trace's (the report's) addresses: the scenario's
            trace = Trace(
                emulator_ip=(lab.emu_ip6 if v6 else None) or lab.emu_ip,
                peer_ip=(lab.peer_ip6 if v6 else None) or lab.peer_ip,
            )
            if progress is not None:
                progress.trace = trace
            # e.g. the congestion control set per socket; the link `netemu run --ipv6` widened
            for note in lab.notes + link_notes(sc):
                trace.notes.append(NoteRecord(time.monotonic(), note, "note"))
            # Plain AF_PACKET sockets, no packet rings: a scenario scripts a handful of
            # segments, and the rings' set-up and teardown (an 8 MiB mapping, RCU grace
            # periods on close) cost ~60 ms of every run, more than a whole trivial run
            # spends with its lab up; they pay off on bulk transfers (docs/lab.md).
            link = lab.open_link(tx_ring=0, rx_ring=0)
            # Each frame at the time the kernel took it in, on the clock of the peer kernel's
            # tracepoints: the ladder orders both sides' events by it (one recvmsg a frame:
            # a scenario's handful, not bulk; docs/trace.md).
            link.enable_rx_timestamps()
            host = await Host(
                link,
                lab.emu_ip,
                lab.emu_mac,
                ip6=lab.emu_ip6,
                config=sc.config_for(None),
                isn_secret=isn_secret,
                trace=trace,
            ).start()
            host.record_rx_stamps = True
            host.impair_out, host.impair_in = pipes
            runner = Runner(sc, lab=lab, host=host, on_step=on_step)
            if progress is not None:
                progress.account = interrupted_account(sc, runner, {})
            try:
                if run_dir is not None:
                    await stack.enter_async_context(pcap_streamed(trace, run_dir))
                yield runner
            finally:
                # From the run's end to its outputs written, signals wait (a SIGTERM
                # between the lab's teardown and the report killed the process with
                # only the pcap written).
                hold.enter_context(signals_deferred())
                await runner.stop()
                host.close()


def write_outputs(
    sc: S.Scenario,
    run_dir: Path,
    trace: Any,
    runner: Runner,
    passed: bool,
    error: str | None,
    duration: float,
) -> Outcome:
    """The run directory of an endpoint run (netemu run, netemu.api): its verdict is a
    pass when every step passed and nothing else went wrong (``error``)."""
    if error is None:
        error = runner.failure()
    ok = passed and error is None
    report, ladder = write_run_dir(
        trace,
        run_dir,
        name=sc.name,
        result="pass" if ok else "fail",
        steps=[r.as_dict() for r in runner.results],
        duration=duration,
        error=error,
        # the seeds the run used: the scenario's (ISNs, ports) and its impairment
        # pipelines' (network.seed, else the scenario's, else 0), so a run can be repeated
        extra={
            "description": sc.description,
            "seed": sc.seed,
            "network_seed": network_seed(sc),
            # each kernel agent's start-up and its first peer step's wait for it
            **({"agents": agents} if (agents := runner.agents.report()) else {}),
        },
    )
    return Outcome(sc, ok, run_dir, report, ladder)
