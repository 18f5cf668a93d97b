"""The Go peers: built offline on first use, run in the peer namespace."""

from __future__ import annotations

import os

import pytest
from lab_helpers import pid_alive

from netemu.lab import KernelAgent, Lab, gobuild

pytestmark = [pytest.mark.root, pytest.mark.go]


def test_build_is_cached_and_keyed_by_source(tmp_path: object, monkeypatch: pytest.MonkeyPatch
                                             ) -> None:
    first = gobuild.binary("hello")
    assert first.is_file() and os.access(first, os.X_OK)
    assert gobuild.binary("hello") == first  # cached: same hash, no rebuild
    assert first.parent.parent == gobuild.cache_dir() / "go"
    assert set(gobuild.programs()) >= {"hello", "echo"}
    with pytest.raises(gobuild.GoBuildError, match="no Go program"):
        gobuild.binary("nope")


def test_hello_answers_on_loopback_and_on_the_lab_address(lab: Lab, agent: KernelAgent) -> None:
    hello = lab.start_go("hello")
    assert hello.running
    listening = [s for s in lab.peer_sockets(local_port=8080) if s.state == "LISTEN"]
    assert [(s.family, s.local) for s in listening] == [(6, ("::", 8080))]  # dual-stack
    for host in ("127.0.0.1", lab.peer_ip):
        c = agent.connect(host, 8080)
        agent.send(c.sock, b"hi, I am xiao ming")
        assert agent.recv(c.sock, exact=64) == b"hello, xiao ming.\n"  # then EOF
        agent.close(c.sock)
    # Its accepted sockets are IPv6 sockets whose peers show as plain IPv4.
    c = agent.connect(lab.peer_ip, 8080)
    server_side = [s for s in lab.peer_sockets(local_port=8080) if s.state != "LISTEN"]
    assert server_side and all(s.family == 6 and s.remote == c.local for s in server_side)
    pid = hello.pid
    lab.close()
    assert not pid_alive(pid)


def test_echo_and_bulk(lab: Lab, agent: KernelAgent) -> None:
    lab.start_go("echo")  # :8081
    lab.start_go("echo", "-addr", ":9090", "-bulk", "3000000", name="bulk")
    c = agent.connect(lab.peer_ip, 8081)
    data = os.urandom(200_000)
    agent.send(c.sock, data)
    assert agent.recv(c.sock, exact=len(data)) == data
    agent.shutdown(c.sock, "wr")
    assert agent.recv(c.sock) == b""
    b = agent.connect(lab.peer_ip, 9090)
    got = agent.sink(b.sock, timeout=10)
    assert got["bytes"] == 3_000_000 and got["eof"]
