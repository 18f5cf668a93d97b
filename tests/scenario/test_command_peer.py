"""A command: peer with a port is a server: the run waits until it listens (a new user's
first connect got a reset from a server still starting)."""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path

import pytest

from netemu.scenario.loader import load_scenario_text

pytestmark = [pytest.mark.root, pytest.mark.timeout(60)]

SLOW_SERVER = (
    "import socket, time\n"
    "time.sleep(0.5)\n"
    "s = socket.socket()\n"
    "s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)\n"
    "s.bind(('0.0.0.0', 9000))\n"
    "s.listen()\n"
    "c, _ = s.accept()\n"
    "time.sleep(2)\n"
)


def test_the_run_waits_for_a_command_peer_to_listen(tmp_path: Path) -> None:
    from netemu.scenario.session import run_scenario

    (tmp_path / "srv.py").write_text(SLOW_SERVER)
    text = (
        f"name: slow\npeer: {{kind: command, command: [{sys.executable!r}, "
        f"{str(tmp_path / 'srv.py')!r}], port: 9000}}\n"
        "steps:\n  - connect\n  - expect_state: ESTABLISHED\n"
    )
    sc = load_scenario_text(text, str(tmp_path / "s.yaml"))
    out = asyncio.run(run_scenario(sc, tmp_path / "run"))
    assert out.passed, out.report["error"]


DUAL_SERVER = (
    "import os, socket\n"
    "s = socket.socket(socket.AF_INET6)\n"
    "s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)\n"
    "s.bind(('::', 9000))\n"
    "s.listen()\n"
    "c, addr = s.accept()\n"
    "c.sendall(f\"{os.environ['NETEMU_FAMILY']} {addr[0]}\\n\".encode())\n"
    "c.recv(1)\n"
)


@pytest.mark.parametrize("ipv6", [False, True], ids=["ipv4", "ipv6"])
def test_a_command_peer_is_reached_in_the_scenarios_family(tmp_path: Path, ipv6: bool) -> None:
    """`netemu run --ipv6` (Scenario.as_ipv6) reaches a command server on the peer's
    IPv6 address, and tells it the family (NETEMU_FAMILY)."""
    from netemu.scenario.session import run_scenario

    (tmp_path / "srv.py").write_text(DUAL_SERVER)
    want = "ipv6 2001:2::1" if ipv6 else "ipv4 ::ffff:198.18.0.1"
    text = (
        f"name: dual\npeer: {{kind: command, command: [{sys.executable!r}, "
        f"{str(tmp_path / 'srv.py')!r}], port: 9000}}\n"
        f"steps:\n  - connect\n  - expect_data: {want!r}\n"
    )
    sc = load_scenario_text(text, str(tmp_path / "s.yaml"))
    out = asyncio.run(run_scenario(sc.as_ipv6() if ipv6 else sc, tmp_path / "run"))
    assert out.passed, out.report["error"]
