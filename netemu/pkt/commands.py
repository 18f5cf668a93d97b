"""A script's shell commands and ``%{ }%`` snippets, where packetdrill would run them.

- A backquoted command runs with ``/bin/sh`` in the peer's network namespace (whose
  interface is packetdrill's ``tun0``), from the script's folder, with packetdrill's
  environment (``PACKETDRILL_PID``); the script's addresses in its text become the
  lab's (``map_addresses``). Never on the host's network.
- A ``%{ }%`` snippet reads the socket under test's ``TCP_INFO`` (and ``SO_MEMINFO``,
  ``TCP_CC_INFO``) when its event comes (``tcp_info``); the Python runs after the
  script's last event, as packetdrill runs its code file then, by a Python of its own
  in the peer namespace (``netemu.pkt.code``; ``run_code_blocks``).

Imports the lab (to spawn) and the live kernel's symbols only.
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import json
import os
import re
import socket
import struct
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    from ..lab.core import Lab


class ScriptAddresses(Protocol):
    """packetdrill's addresses as the script's options give them."""

    local_ip: str
    remote_ip: str
    gateway_ip: str | None

    @property
    def local_net(self) -> ipaddress.IPv4Network | ipaddress.IPv6Network: ...


class LabAddresses(Protocol):
    """The run's addresses on the wire (``addrs.RunAddresses``)."""

    @property
    def peer(self) -> str: ...

    @property
    def emu(self) -> str: ...


@dataclass
class CommandResult:
    returncode: int
    output: str


async def run_command(
    lab: Lab,
    text: str,
    cwd: Path,
    timeout: float = 30.0,
    addresses: tuple[ScriptAddresses, LabAddresses] | None = None,
) -> CommandResult:
    """Run a backquoted command with /bin/sh in the peer namespace (cwd: the script's
    directory), whose interface is packetdrill's ``tun0``. Never on the host's network:
    the lab spawns it inside the peer's netns. ``addresses``: the script's, mapped onto
    the lab's in the command's text (``map_addresses``)."""
    if addresses is not None:
        text = map_addresses(text, *addresses)
    # packetdrill's environment: PACKETDRILL_PID is its own pid, which is also the
    # command's $PPID (set_sysctls.py and `/tmp/sysctl_restore_${PPID}.sh` rely on it).
    proc = lab.spawn(
        ["/bin/sh", "-c", text],
        name="pkt-command",
        cwd=str(cwd),
        env={"PACKETDRILL_PID": str(os.getpid())},
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        stop_timeout=0.2,
    )
    try:
        out, _ = await asyncio.to_thread(proc.popen.communicate, None, timeout)
    except subprocess.TimeoutExpired:
        proc.stop(timeout=0)
        return CommandResult(124, f"timed out after {timeout:g} s")
    return CommandResult(proc.popen.returncode, (out or b"").decode(errors="replace"))


# An IPv4 address, or an IPv6 one (hex groups and colons, at least two colons; with a
# dotted tail): candidates, each checked by ``ipaddress``.
_ADDRESS = re.compile(
    r"(?<![\w.:])(\d{1,3}(?:\.\d{1,3}){3}"
    r"|(?=[0-9A-Fa-f:]*:[0-9A-Fa-f]*:)[0-9A-Fa-f:]{2,39}(?:\.\d{1,3}){0,3})(?![\w.:])"
)


def map_addresses(text: str, sc: ScriptAddresses, lab: LabAddresses) -> str:
    """packetdrill's addresses in a shell command, as the lab has them: the script's
    local address is the peer's, its remote address, its gateway (packetdrill routes
    the remote address through it) and any other address of the local subnet are
    netemu's, the lab's only neighbour. ``ip route change 192.0.2.1 via 192.168.0.2 dev
    tun0 advmss 600`` thus changes the lab's route to netemu (a host route the lab adds
    for .pkt runs, as packetdrill adds one for its remote address); over IPv6 as well
    (``ip -6 route change 2001:db8::1 via fd3d:fa7b:d17d:8888:: dev tun0``), the
    addresses compared as addresses, not as text."""
    local = ipaddress.ip_address(sc.local_ip)
    # netemu's: the remote address and the gateway, however the command spells them
    neighbour = {ipaddress.ip_address(a) for a in (sc.remote_ip, sc.gateway_ip) if a}
    net = sc.local_net

    def one(m: re.Match[str]) -> str:
        a = m.group(1)
        try:
            ip = ipaddress.ip_address(a)
        except ValueError:
            return a
        if ip == local:
            return str(lab.peer)
        if ip in neighbour or (ip.version == net.version and ip in net):
            return str(lab.emu)
        return a

    return _ADDRESS.sub(one, text)


_CODE_CONSTANTS: dict[str, int] | None = None


def _code_constants() -> dict[str, int]:
    """packetdrill's constants in a snippet's globals (TCP_CA_*, TCPI_OPT_*, TCP_<state>)."""
    global _CODE_CONSTANTS
    if _CODE_CONSTANTS is None:
        from .live import SYMBOLS

        _CODE_CONSTANTS = {
            k: v
            for k, v in SYMBOLS.items()
            if k.startswith(("TCP_CA_", "TCPI_OPT_", "TCP_"))
            and not k.startswith(("TCP_NO", "TCP_MAX"))
        }
    return _CODE_CONSTANTS


_MEMINFO = (
    "SK_MEMINFO_RMEM_ALLOC",
    "SK_MEMINFO_RCVBUF",
    "SK_MEMINFO_WMEM_ALLOC",
    "SK_MEMINFO_SNDBUF",
    "SK_MEMINFO_FWD_ALLOC",
    "SK_MEMINFO_WMEM_QUEUED",
    "SK_MEMINFO_OPTMEM",
    "SK_MEMINFO_BACKLOG",
    "SK_MEMINFO_DROPS",
)


def tcp_info(s: socket.socket | None) -> dict[str, Any]:
    """The ``tcpi_*`` values of socket ``s`` from a real ``getsockopt(TCP_INFO)`` at
    this moment (packetdrill's way), plus ``tcpi_ca_name`` (``TCP_CONGESTION``) and
    packetdrill's constants (``TCP_CA_Open``...)."""
    from ..lab.diag import decode_tcp_info

    out: dict[str, Any] = dict(_code_constants())
    if s is None:
        return out
    try:
        raw = s.getsockopt(socket.IPPROTO_TCP, 11, 512)
        out.update({f"tcpi_{k}": v for k, v in decode_tcp_info(raw).items()})
        ca = s.getsockopt(socket.IPPROTO_TCP, 13, 16).rstrip(b"\0").decode()
        out["tcpi_ca_name"] = ca
    except OSError:
        return out
    # packetdrill's other two: SO_MEMINFO and TCP_CC_INFO (the algorithm's own)
    with contextlib.suppress(OSError, struct.error):
        mem = struct.unpack("9I", s.getsockopt(socket.SOL_SOCKET, 55, 36)[:36])
        out.update(zip(_MEMINFO, mem, strict=True))
    with contextlib.suppress(OSError, struct.error):
        out.update(_cc_info(ca, s.getsockopt(socket.IPPROTO_TCP, 26, 20)))
    return out


def _cc_info(ca: str, cc: bytes) -> dict[str, int]:
    """``TCP_CC_INFO`` of bbr, dctcp and vegas by packetdrill's names."""
    if ca == "bbr" and len(cc) >= 20:
        lo, hi, min_rtt, pg, cg = struct.unpack("5I", cc[:20])
        return dict(
            bbr_bw_lo=lo,
            bbr_bw_hi=hi,
            bbr_bw=hi << 32 | lo,
            bbr_min_rtt=min_rtt,
            bbr_pacing_gain=pg,
            bbr_cwnd_gain=cg,
        )
    if ca == "dctcp" and len(cc) >= 16:
        en, st, alpha, ab_ecn, ab_tot = struct.unpack("HHIII", cc[:16])
        return dict(
            dctcp_enabled=en,
            dctcp_ce_state=st,
            dctcp_alpha=alpha,
            dctcp_ab_ecn=ab_ecn,
            dctcp_ab_tot=ab_tot,
        )
    if ca == "vegas" and len(cc) >= 16:
        en, cnt, rtt, minrtt = struct.unpack("4I", cc[:16])
        return dict(tcpv_enabled=en, tcpv_rttcnt=cnt, tcp_rtt=rtt, tcp_minrtt=minrtt)
    return {}


async def run_code_blocks(
    lab: Lab, blocks: list[tuple[str, dict[str, Any]]], cwd: Path, timeout: float = 60.0
) -> list[str | None]:
    """Each block's verdict (None: it passed; "skipped": not run after an earlier
    failure) from ``python -m netemu.pkt.code`` in the peer namespace, from the
    script's folder."""
    proc = lab.spawn(
        [sys.executable, "-m", "netemu.pkt.code"],
        name="pkt-code",
        cwd=str(cwd),
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        stop_timeout=0.2,
    )
    data = json.dumps([{"text": t, "values": v} for t, v in blocks]).encode()
    skipped: list[str | None] = ["skipped"] * (len(blocks) - 1)
    try:
        out, err = await asyncio.to_thread(proc.popen.communicate, data, timeout)
    except subprocess.TimeoutExpired:
        proc.stop(timeout=0)
        return [f"%{{ }}% did not finish within {timeout:g} s", *skipped]
    try:
        verdicts = json.loads(out or b"null")
    except ValueError:
        verdicts = None
    if not isinstance(verdicts, list) or len(verdicts) != len(blocks):
        last = (err or b"").decode(errors="replace").strip().splitlines()[-1:] or ["no output"]
        return [
            f"%{{ }}%: the snippets' Python exited with status {proc.popen.returncode}: {last[0]}",
            *skipped,
        ]
    return verdicts
