"""A trace recorded by two real emulated hosts (socket-pair link, no root): tshark
reads its pcap, the ladder draws both sides, and the states inferred from the
frames alone agree with the states both endpoints recorded."""

from __future__ import annotations

import asyncio
import subprocess

import anyio

from netemu.host import Host
from netemu.tcp import State
from netemu.testing.links import socketpair_links
from netemu.trace import NoteRecord, infer_trace, render_ladder_text, write_pcap


async def test_recorded_trace_round_trip(tmp_path, tshark: str) -> None:
    la, lb = socketpair_links()
    a = await Host(la, "198.18.0.1", "02:00:00:00:00:01", isn_secret=b"a" * 16).start()
    b = await Host(lb, "198.18.0.2", "02:00:00:00:00:02", isn_secret=b"b" * 16).start()
    try:
        listener = await b.listen(8080)

        async def server() -> None:
            s = await listener.accept(timeout=5)
            assert await s.receive() == b"hello"
            with_eof = b""
            try:
                while True:
                    with_eof += await s.receive()
            except anyio.EndOfStream:
                pass
            await s.send(b"bye")
            await s.aclose()

        srv = asyncio.create_task(server())
        a.trace.notes.append(NoteRecord(a.now(), "connect", "step"))
        c = await a.connect("198.18.0.2", 8080)
        await c.send(b"hello")
        a.trace.notes.append(NoteRecord(a.now(), "close", "step"))
        await c.send_eof()
        assert await c.receive() == b"bye"
        await asyncio.wait_for(srv, 10)
        await c.wait_state(State.TIME_WAIT, timeout=5)
    finally:
        a.close()
        b.close()

    trace = a.trace
    ours = [r.new for r in trace.states]
    peers = [r.new for r in b.trace.states if r.local[1] == 8080]
    # the peer's records, placed by their endpoint, show on the right of the ladder
    trace.peer_states = []
    trace.states = [*trace.states, *(r for r in b.trace.states if r.local[1] == 8080)]
    text = render_ladder_text(trace)
    assert "SYN+ACK seq=0 ack=1" in text and "PSH+ACK seq=1 ack=1 len=5" in text
    for line in text.splitlines():
        if line.rstrip().endswith("│ CLOSE-WAIT"):
            break
    else:
        raise AssertionError(f"the peer's CLOSE-WAIT is not on the right:\n{text}")

    inferred = infer_trace(trace)
    client = [r.new for r in inferred.states if r.conn == "client"]
    server = [r.new for r in inferred.states if r.conn == "server"]
    assert client == ours[: len(client)] and client[-1] == "TIME-WAIT"
    assert server == peers

    path = tmp_path / "trace.pcap"
    write_pcap(trace, path)
    proc = subprocess.run(
        [tshark, "-n", "-r", str(path), "-Y", "tcp", "-T", "fields", "-e", "tcp.flags"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 0, proc.stderr
    assert len(proc.stdout.split()) == sum(1 for line in text.splitlines() if " #" in line)
