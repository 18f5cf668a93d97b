"""A live lab with an emulated host on its wire (root; never skipped in CI)."""

from __future__ import annotations

import os

import pytest

from netemu.host import Host


@pytest.fixture
async def lab_host():
    if os.geteuid() != 0:
        pytest.skip("needs root")  # conftest at tests/ turns this into a failure in CI
    from netemu.lab.core import Lab

    with Lab(peer_sysctls={"net.ipv4.tcp_fin_timeout": 5}) as lab:
        host = await Host(lab.open_link(), lab.emu_ip, lab.emu_mac).start()
        try:
            yield lab, host
        finally:
            host.close()
