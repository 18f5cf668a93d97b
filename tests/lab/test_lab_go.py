"""The Go peers: built offline on first use, run in the peer namespace."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from lab_helpers import pid_alive

from netemu.lab import KernelAgent, Lab, gobuild

pytestmark = [pytest.mark.root, pytest.mark.go]


def test_build_is_cached_and_keyed_by_source() -> None:
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
    (server_side,) = lab.peer_sockets(local_port=8080, remote_port=c.local[1])
    assert server_side.family == 6 and server_side.remote == c.local
    # The earlier ones: the server closed first, so its sockets wait in TIME-WAIT.
    assert {s.state for s in lab.peer_sockets(local_port=8080)} >= {"LISTEN", "TIME-WAIT"}
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


def test_source_change_rebuilds(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Offline, self-contained: a fresh cache, HOME unusable, GOPROXY off."""
    src = tmp_path / "src" / "greet"
    src.mkdir(parents=True)
    text = (gobuild.GO_SOURCES / "hello" / "main.go").read_text()
    (src / "main.go").write_text(text)
    monkeypatch.setattr(gobuild, "GO_SOURCES", tmp_path / "src")
    monkeypatch.setenv("NETEMU_CACHE", str(tmp_path / "cache"))
    monkeypatch.setenv("HOME", "/nonexistent")
    one = gobuild.binary("greet")
    (src / "main.go").write_text(text.replace("hello, xiao ming.", "hi, xiao ming."))
    two = gobuild.binary("greet")
    assert one != two and two.is_file() and not one.exists()  # rebuilt, old one dropped
    assert (tmp_path / "cache" / "go" / "gocache").is_dir()
    with Lab() as lab:
        proc = lab.spawn([str(two), "-addr", ":8088"])
        lab.wait_listening(8088, proc=proc)
        agent = lab.start_agent()
        c = agent.connect("127.0.0.1", 8088)
        agent.send(c.sock, b"?")
        assert agent.recv(c.sock, exact=100) == b"hi, xiao ming.\n"
