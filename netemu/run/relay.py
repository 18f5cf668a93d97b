"""Relay mode's lab: two labs, a ``client`` kernel peer in one and a ``server`` in the
other, bridged by a ``netemu.host.relay.Relay`` that impairs, drops and records their
frames (``relay_labs``); and ``hold_relay``, the relay held open for programs of the
user's own (``netemu relay``) until a signal or its time is up, then its run
directory. A relay scenario's steps are netemu.scenario's (relay_runner.py)."""

from __future__ import annotations

import asyncio
import contextlib
import signal
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..host.relay import CLIENT_IP, EMU_IP, SERVER_IP, Relay
from ..lab.core import Lab
from ..trace.record import Trace
from ..wire import parse_frame
from .hooks import Hooks
from .impair import Pipelines, given, pipelines
from .peerview import PeerView, relay_record
from .rundir import write_run_dir

ROLES = ("client", "server")


@dataclass
class RelayLabs:
    labs: dict[str, Lab]  # by role: client, server
    trace: Trace
    relay: Relay


@contextlib.asynccontextmanager
async def relay_labs(
    client: dict[str, Any], server: dict[str, Any], pipes: Pipelines
) -> AsyncIterator[RelayLabs]:
    """Both labs up (``client``, ``server``: more of each ``Lab``'s arguments), the relay
    bridging them with ``pipes`` (out: client → server); all down at the end."""
    with (
        Lab(peer_ip=CLIENT_IP, emu_ip=EMU_IP, **client) as lab_a,
        Lab(peer_ip=SERVER_IP, emu_ip=EMU_IP, **server) as lab_b,
    ):
        trace = Trace(emulator_ip=lab_a.peer_ip, peer_ip=lab_b.peer_ip)
        relay = await Relay(
            lab_a.open_link(filtered=False),
            lab_b.open_link(filtered=False),
            trace=trace,
            client_ip=lab_a.peer_ip,
            server_ip=lab_b.peer_ip,
            impair_out=pipes[0],
            impair_in=pipes[1],
        ).start()
        try:
            yield RelayLabs({"client": lab_a, "server": lab_b}, trace, relay)
        finally:
            relay.close()


def _announce(
    labs: dict[str, Lab], overrides: dict[str, float], seconds: float | None, run_dir: Path
) -> None:
    lab_a, lab_b = labs["client"], labs["server"]
    imp = ", ".join(f"{k} {v:g}" for k, v in overrides.items()) or "none"
    print(
        f"relay up: client {lab_a.peer_ip} (lab {lab_a.runid}) ⇄ netemu ⇄ server "
        f"{lab_b.peer_ip} (lab {lab_b.runid}); impairments (each way): {imp}"
    )
    for role, lab in labs.items():
        enter = lab.describe()["enter"].get("peer", "")
        print(f"  {role} {lab.peer_ip}: {enter} PROGRAM …")
    enter_a = lab_a.describe()["enter"].get("peer", "")
    enter_b = lab_b.describe()["enter"].get("peer", "")
    print(
        f"  e.g. {enter_b} python3 -m http.server 8080\n"
        f"       {enter_a} curl http://{lab_b.peer_ip}:8080/"
    )
    print(
        "  (`netemu lab list` shows both labs.) "
        + (f"Stopping after {seconds:g} s." if seconds else "Ctrl-C stops.")
        + f" Run directory: {run_dir}",
        flush=True,
    )


async def _until_stopped(seconds: float | None) -> None:
    """Until SIGINT or SIGTERM, or ``seconds`` passed."""
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    handled = []
    for sig in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(ValueError, RuntimeError, NotImplementedError):
            loop.add_signal_handler(sig, stop.set)
            handled.append(sig)
    try:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), seconds)
    finally:
        for sig in handled:
            loop.remove_signal_handler(sig)


def _is_tcp(data: bytes) -> bool:
    try:
        return parse_frame(data, verify=False).tcp is not None
    except ValueError:
        return False


def relay_account(relay: Relay, hooks: Hooks | None) -> dict[str, Any]:
    """What report.json says of the relay: its addresses and counts, and the drop rules
    of the script on it (``hooks``; None: none)."""
    return {**relay.describe(), "drop_rules": hooks.describe() if hooks is not None else []}


async def hold_relay(
    overrides: dict[str, float], seconds: float | None, run_dir: Path, seed: int
) -> int:
    """``netemu relay``: bridge two fresh kernel peers until a signal (or ``seconds``),
    then write the run directory. Returns the exit code (0)."""
    t0 = time.monotonic()
    each = given({}, overrides)
    async with relay_labs({}, {}, pipelines(each, each, seed)) as up:
        poller = PeerView(up.labs, up.trace, relay_record(up.trace)).start()
        _announce(up.labs, overrides, seconds, run_dir)
        try:
            await _until_stopped(seconds)
        finally:
            poller.stop()
    trace, relay = up.trace, up.relay
    write_run_dir(
        trace,
        run_dir,
        name="relay",
        result="pass",
        steps=[],
        duration=time.monotonic() - t0,
        error=None,
        extra={"mode": "relay", "relay": relay_account(relay, None), "impairments": overrides},
        roles=ROLES,
    )
    segs = sum(1 for f in trace.frames if _is_tcp(f.data))
    print(
        f"relay down: {len(trace.frames)} frames ({segs} TCP segments, "
        f"{relay.stats['dropped']} dropped) → {run_dir}"
    )
    return 0
