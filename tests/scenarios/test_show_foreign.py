"""`netemu show` draws the ladder of a capture netemu did not make: tcpdump's."""

from __future__ import annotations

import asyncio
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

from netemu.host import Host
from netemu.tcp import State

pytestmark = [pytest.mark.timeout(60)]


async def _conversation(lab) -> None:
    host = await Host(lab.open_link(), lab.emu_ip, lab.emu_mac).start()
    try:
        agent = lab.start_agent()
        lst = await agent.aio.listen(8080)
        stream = await host.connect(lab.peer_ip, 8080)
        acc = await agent.aio.accept(lst.sock)
        await stream.send(b"hello")
        assert await agent.aio.recv(acc.sock, exact=5) == b"hello"
        await stream.send_eof()  # we close first: FIN-WAIT-*, the kernel CLOSE-WAIT
        await stream.wait_state(State.FIN_WAIT_2, timeout=3)
        await agent.aio.close(acc.sock)  # then the kernel: LAST-ACK, us TIME-WAIT
        await stream.wait_state(State.TIME_WAIT, timeout=3)
        await asyncio.sleep(0.05)
    finally:
        host.close()


@pytest.mark.root
def test_show_draws_a_tcpdump_capture_with_inferred_states(tmp_path: Path):
    if shutil.which("tcpdump") is None:
        pytest.skip("needs tcpdump")  # a failure in CI (conftest)
    from netemu.lab.core import Lab

    pcap = tmp_path / "dump.pcap"
    with Lab() as lab:
        err = tmp_path / "tcpdump.err"
        with err.open("w") as errf:
            dump = lab.spawn(
                [
                    "tcpdump",
                    "-Z",
                    "root",
                    "--immediate-mode",
                    "-i",
                    lab.peer_ifname,
                    "-U",
                    "-n",
                    "-w",
                    str(pcap),
                    "tcp",
                ],
                name="tcpdump",
                stderr=errf,
            )
        end = time.monotonic() + 10
        while "listening on" not in err.read_text() and time.monotonic() < end:
            time.sleep(0.02)  # tcpdump says so once it captures
        time.sleep(0.1)
        asyncio.run(_conversation(lab))
        time.sleep(0.1)
        dump.stop()
    html = tmp_path / "ladder.html"
    run = subprocess.run(
        [sys.executable, "-m", "netemu", "show", str(pcap), "--html", str(html)],
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert run.returncode == 0, run.stderr
    out = run.stdout
    for state in (
        "SYN-SENT",
        "ESTABLISHED",
        "FIN-WAIT-1",
        "FIN-WAIT-2",
        "CLOSE-WAIT",
        "LAST-ACK",
        "TIME-WAIT",
    ):
        assert state in out, (state, out)
    # The client (netemu) reaches FIN-WAIT-2 before the server's LAST-ACK.
    assert out.index("FIN-WAIT-2") < out.index("LAST-ACK")
    assert "<svg" in html.read_text()


def test_show_rejects_a_file_that_is_not_a_capture(tmp_path: Path):
    junk = tmp_path / "junk.pcap"
    junk.write_bytes(b"this is not a pcap file at all")
    run = subprocess.run(
        [sys.executable, "-m", "netemu", "show", str(junk)],
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert run.returncode == 2
    assert run.stderr.startswith("netemu show: ") and "not a pcap" in run.stderr
    assert len(run.stderr.strip().splitlines()) == 1
