"""Large reads and sends through the kernel agent (issue 17, 2): bytes cross the pipe
raw, so a read of N bytes costs the pipe N bytes and each process about N bytes of
memory, whatever N. Base64 in a JSON line cost the pipe 4/3 N, the agent ~5.6 N of
memory at its peak and netemu ~4 N (a 100 MiB read took 2 s, 0.4 of the TCP core's
throughput; `netemu bench peer-io`)."""

from __future__ import annotations

import os
import socket
import threading

import pytest

from netemu.bench.peer_io import peak_since, reset_peak
from netemu.lab import KernelAgent, Lab

pytestmark = pytest.mark.root

N = 16 << 20


def _wchar(pid: int) -> int:
    with open(f"/proc/{pid}/io") as f:
        return int(next(line for line in f if line.startswith("wchar:")).split()[1])


def _pair(lab: Lab, agent: KernelAgent, port: int) -> tuple[socket.socket, int]:
    """A kernel socket of this process in the peer namespace, connected to the agent's."""
    lst = agent.listen(port, host="127.0.0.1")
    sock = lab.run_in_peer(lambda: socket.create_connection(("127.0.0.1", port), timeout=30))
    acc = agent.accept(lst.sock)
    agent.close(lst.sock)
    return sock, acc.sock


def test_a_large_read_costs_its_size_in_pipe_and_memory(lab: Lab, agent: KernelAgent) -> None:
    data = os.urandom(N)
    sock, peer = _pair(lab, agent, 9400)
    sender = threading.Thread(target=sock.sendall, args=(data,))
    rss = reset_peak(agent.pid), reset_peak("self")
    wrote = _wchar(agent.pid)
    sender.start()  # (it allocates nothing: the kernel copies from data)
    got = agent.recv(peer, exact=N, timeout=30)
    sender.join()
    pipe = _wchar(agent.pid) - wrote
    agent_peak, netemu_peak = peak_since(agent.pid, rss[0]), peak_since("self", rss[1])
    assert got == data
    # the pipe: the bytes and a line; the agent: the buffer it reads into; netemu: the
    # buffer the payload comes into, then the bytes handed out
    costs = (
        f"per byte read: pipe {pipe / N:.3f}, agent {agent_peak / N:.2f}, "
        f"netemu {netemu_peak / N:.2f}"
    )
    assert pipe < N + 4096 and agent_peak < 1.5 * N and netemu_peak < 2.6 * N, costs
    sock.close()


def test_a_large_send_arrives_whole(lab: Lab, agent: KernelAgent) -> None:
    data = os.urandom(N)
    sock, peer = _pair(lab, agent, 9401)
    got = bytearray()

    def drain() -> None:
        while chunk := sock.recv(1 << 20):
            got.extend(chunk)

    reader = threading.Thread(target=drain)
    reader.start()
    assert agent.send(peer, data, timeout=30) == N
    agent.send(peer, b"")  # an empty payload is a payload too
    agent.close(peer)
    reader.join(30)
    assert bytes(got) == data
    sock.close()
