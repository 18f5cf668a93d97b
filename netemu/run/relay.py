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

from ..host.relay import CLIENT_IP, CLIENT_IP6, EMU_IP, SERVER_IP, SERVER_IP6, Relay
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
    client: dict[str, Any],
    server: dict[str, Any],
    pipes: Pipelines,
    *,
    ipv6: bool = False,
    mtu: int = 1500,
) -> AsyncIterator[RelayLabs]:
    """Both labs up (``client``, ``server``: more of each ``Lab``'s arguments), the relay
    bridging them with ``pipes`` (out: client → server); all down at the end. With
    ``ipv6`` both labs are IPv6 ones too (the peers CLIENT_IP6 and SERVER_IP6, each
    still with its IPv4 address) and the trace and the relay name the peers by their
    IPv6 addresses; ``mtu``: both links' (the bridge joins them: one MTU)."""
    with (
        Lab(
            peer_ip=CLIENT_IP, emu_ip=EMU_IP, ipv6=ipv6, peer_ip6=CLIENT_IP6, mtu=mtu, **client
        ) as lab_a,
        Lab(
            peer_ip=SERVER_IP, emu_ip=EMU_IP, ipv6=ipv6, peer_ip6=SERVER_IP6, mtu=mtu, **server
        ) as lab_b,
    ):
        client_ip, server_ip = (
            (lab_a.peer_ip6, lab_b.peer_ip6) if ipv6 else (lab_a.peer_ip, lab_b.peer_ip)
        )
        assert client_ip is not None and server_ip is not None
        trace = Trace(emulator_ip=client_ip, peer_ip=server_ip)
        relay = await Relay(
            lab_a.open_link(filtered=False),
            lab_b.open_link(filtered=False),
            trace=trace,
            client_ip=client_ip,
            server_ip=server_ip,
            impair_out=pipes[0],
            impair_in=pipes[1],
        ).start()
        try:
            yield RelayLabs({"client": lab_a, "server": lab_b}, trace, relay)
        finally:
            relay.close()


def _addresses(lab: Lab) -> str:
    """A relay peer's addresses: its IPv4 one, and its IPv6 one in an IPv6 lab."""
    return f"{lab.peer_ip} and {lab.peer_ip6}" if lab.peer_ip6 else lab.peer_ip


def _announce(
    labs: dict[str, Lab], overrides: dict[str, float], seconds: float | None, run_dir: Path
) -> None:
    lab_a, lab_b = labs["client"], labs["server"]
    imp = ", ".join(f"{k} {v:g}" for k, v in overrides.items()) or "none"
    print(
        f"relay up: client {_addresses(lab_a)} (lab {lab_a.runid}) ⇄ netemu ⇄ server "
        f"{_addresses(lab_b)} (lab {lab_b.runid}); impairments (each way): {imp}"
    )
    for role, lab in labs.items():
        enter = lab.describe()["enter"].get("peer", "")
        print(f"  {role} {_addresses(lab)}: {enter} PROGRAM …")
    enter_a = lab_a.describe()["enter"].get("peer", "")
    enter_b = lab_b.describe()["enter"].get("peer", "")
    # (over IPv6: the server on ::, both families; the URL's address in brackets)
    bind, host = ("--bind :: ", f"[{lab_b.peer_ip6}]") if lab_b.peer_ip6 else ("", lab_b.peer_ip)
    print(
        f"  e.g. {enter_b} python3 -m http.server {bind}8080\n"
        f"       {enter_a} curl http://{host}:8080/"
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
    overrides: dict[str, float],
    seconds: float | None,
    run_dir: Path,
    seed: int,
    *,
    ipv6: bool = False,
) -> int:
    """``netemu relay``: bridge two fresh kernel peers until a signal (or ``seconds``),
    then write the run directory. Returns the exit code (0). ``ipv6``: IPv6 labs (the
    peers keep their IPv4 addresses too) on the 1500-byte link, IPv6's own MSS."""
    t0 = time.monotonic()
    each = given({}, overrides)
    async with relay_labs({}, {}, pipelines(each, each, seed), ipv6=ipv6) as up:
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
