"""The kernel agent, spawned commands, and running Python inside a lab namespace."""

from __future__ import annotations

import os
import socket
import subprocess
import time

import pytest
from lab_helpers import pid_alive, wait_no_leftovers

from netemu.lab import AgentError, AgentTimeout, KernelAgent, Lab, in_netns, run_in_netns

pytestmark = pytest.mark.root


def test_listen_accept_send_recv_shutdown(agent: KernelAgent) -> None:
    ls = agent.listen(9000)
    assert ls.port == 9000
    c = agent.connect("127.0.0.1", 9000, opts={"TCP_NODELAY": 1})
    acc = agent.accept(ls.sock)
    assert acc.peer == c.local and c.peer == ("127.0.0.1", 9000)
    assert agent.send(c.sock, b"hello") == 5
    assert agent.recv(acc.sock) == b"hello"
    assert agent.send(acc.sock, bytes(range(256)) * 1000) == 256000
    assert agent.recv(c.sock, exact=256000) == bytes(range(256)) * 1000
    agent.shutdown(c.sock, "wr")
    assert agent.recv(acc.sock) == b""  # EOF
    agent.send(acc.sock, b"still open the other way")
    assert agent.recv(c.sock, exact=24) == b"still open the other way"
    agent.close(acc.sock)
    assert agent.recv(c.sock) == b""
    agent.close(c.sock)
    assert agent.sockets() == {ls.sock: "listen"}


def test_errors_and_timeouts(agent: KernelAgent) -> None:
    with pytest.raises(AgentError) as e:
        agent.connect("127.0.0.1", 9)
    assert e.value.error == "ECONNREFUSED"
    ls = agent.listen(9001)
    with pytest.raises(AgentTimeout):
        agent.accept(ls.sock, timeout=0.1)
    c = agent.connect("127.0.0.1", 9001)
    with pytest.raises(AgentTimeout):
        agent.recv(c.sock, timeout=0.1)
    with pytest.raises(AgentError) as e:
        agent.send(99, b"x")
    assert e.value.error == "EBADF"
    with pytest.raises(AgentError) as e:
        agent.setsockopt(c.sock, {"SO_NOSUCH": 1})
    assert e.value.error == "badrequest"
    with pytest.raises(AgentError, match="EADDRINUSE"):
        agent.listen(9001, opts={"SO_REUSEADDR": 0})


def test_abort_sends_rst(lab: Lab, agent: KernelAgent) -> None:
    ls = agent.listen(9002)
    c = agent.connect(lab.peer_ip, 9002)
    acc = agent.accept(ls.sock)
    agent.abort(c.sock)
    with pytest.raises(AgentError) as e:
        agent.recv(acc.sock, timeout=2)
    assert e.value.error == "ECONNRESET"


def test_socket_options(agent: KernelAgent) -> None:
    ls = agent.listen(9003)
    c = agent.connect("127.0.0.1", 9003, opts={"SO_RCVBUF": 8192, "TCP_CONGESTION": "reno"})
    agent.setsockopt(
        c.sock,
        {
            "SO_KEEPALIVE": 1,
            "TCP_KEEPIDLE": 3,
            "TCP_KEEPINTVL": 2,
            "TCP_KEEPCNT": 4,
            "SO_SNDBUF": 16384,
            "TCP_NODELAY": 1,
            "SO_LINGER": [1, 5],
        },
    )
    got = agent.getsockopt(
        c.sock,
        "so_keepalive",
        "TCP_KEEPIDLE",
        "TCP_KEEPINTVL",
        "TCP_KEEPCNT",
        "SO_RCVBUF",
        "SO_SNDBUF",
        "TCP_NODELAY",
        "TCP_CONGESTION",
        "SO_LINGER",
    )
    assert got == {
        "SO_KEEPALIVE": 1,
        "TCP_KEEPIDLE": 3,
        "TCP_KEEPINTVL": 2,
        "TCP_KEEPCNT": 4,
        "SO_RCVBUF": 16384,
        "SO_SNDBUF": 32768,
        "TCP_NODELAY": 1,
        "TCP_CONGESTION": "reno",
        "SO_LINGER": [1, 5],
    }  # the kernel doubles buffers
    info = agent.info(c.sock)
    assert info["state"] == "ESTABLISHED" and info["cc"] == "reno"
    assert info["rcv_wscale"] == 0  # a small locked receive buffer: no window scaling
    agent.close(ls.sock)


def test_echo_source_sink(lab: Lab, agent: KernelAgent) -> None:
    echo = agent.echo(7)
    c = agent.connect(lab.peer_ip, echo.port)
    data = os.urandom(300_000)
    assert agent.send(c.sock, data) == len(data)
    assert agent.recv(c.sock, exact=len(data)) == data
    agent.close(c.sock)
    agent.close(echo.sock)  # stops the echo server
    with pytest.raises(AgentError):
        agent.connect(lab.peer_ip, 7)

    ls = agent.listen(9004)
    tx = agent.connect(lab.peer_ip, 9004)
    rx = agent.accept(ls.sock)
    pending = agent.submit("sink", sock=rx.sock, timeout=30)  # runs while source sends
    sent = agent.source(tx.sock, 20_000_000, then="shutdown")
    sunk = agent.result("sink", pending, deadline=time.monotonic() + 30)
    assert sent["sent"] == sunk["bytes"] == 20_000_000 and sunk["eof"]


async def test_async_calls_run_concurrently(lab: Lab, agent: KernelAgent) -> None:
    import anyio

    aio = agent.aio
    ls = await aio.listen(9005)
    results: dict[str, object] = {}

    async def accept() -> None:
        results["accepted"] = await aio.accept(ls.sock, timeout=5)

    async def connect() -> None:
        await anyio.sleep(0.05)  # accept is already waiting in the agent
        results["connected"] = await aio.connect(lab.peer_ip, 9005)

    async with anyio.create_task_group() as tg:
        tg.start_soon(accept)
        tg.start_soon(connect)
    acc, con = results["accepted"], results["connected"]
    assert acc.peer == con.local  # type: ignore[attr-defined]
    # The sync and async faces share one pipe.
    agent.send(con.sock, b"sync")  # type: ignore[attr-defined]
    assert await aio.recv(acc.sock, exact=4) == b"sync"  # type: ignore[attr-defined]
    with pytest.raises(AgentTimeout):
        await aio.recv(acc.sock, timeout=0.05)  # type: ignore[attr-defined]


def test_agent_gone_is_an_error_not_a_hang(lab: Lab) -> None:
    agent = lab.start_agent()
    agent.proc.signal_group(9)
    agent.proc.wait(2)
    with pytest.raises(AgentError) as e:
        agent.ping()
    assert e.value.error == "EOF"


def test_spawn_runs_in_peer_namespace_with_lab_env() -> None:
    with Lab() as lab:
        p = lab.spawn(
            [
                "sh",
                "-c",
                'echo "$NETEMU_PEER_IP $NETEMU_EMU_IP $NETEMU_EMU_MAC '
                '$NETEMU_PEER_IF $NETEMU_RUN"; exec sleep 30',
            ],
            stdout=subprocess.PIPE,
        )
        line = p.popen.stdout.readline().decode().split()
        assert line == [lab.peer_ip, lab.emu_ip, lab.emu_mac, lab.peer_ifname, lab.runid]
        assert os.stat(f"/proc/{p.pid}/ns/net").st_ino == lab.peer_ns.inode
        assert os.getpgid(p.pid) == p.pid  # its own process group
        with open(f"/proc/{p.pid}/status") as f:
            assert f"PPid:\t{os.getpid()}\n" in f.read()
        e = lab.spawn(["sleep", "30"], ns="emu")
        assert os.stat(f"/proc/{e.pid}/ns/net").st_ino == lab.emu_ns.inode
        # A grandchild in the same group goes with it.
        g = lab.spawn(
            ["sh", "-c", "sleep 30 & echo $!; wait"],
            stdout=subprocess.PIPE,
            stop_signal=15,
            stop_timeout=0.2,
        )
        grandchild = int(g.popen.stdout.readline())
        assert pid_alive(grandchild)
        pids, rid = [p.pid, e.pid, g.pid, grandchild], lab.runid
        inodes = [lab.emu_ns.inode, lab.peer_ns.inode]
    assert wait_no_leftovers(rid, inodes, pids) == []


def test_lab_stops_a_process_that_ignores_sigterm() -> None:
    with Lab() as lab:
        p = lab.spawn(
            ["sh", "-c", "trap '' TERM; echo ready; while :; do sleep 0.05; done"],
            stdout=subprocess.PIPE,
            stop_timeout=0.2,
        )
        assert p.popen.stdout.readline() == b"ready\n"
        t0 = time.monotonic()
    assert time.monotonic() - t0 < 2
    assert p.returncode == -9 and not pid_alive(p.pid)


def test_python_in_the_namespaces(lab: Lab, agent: KernelAgent) -> None:
    def listening_socket() -> socket.socket:
        s = socket.socket()
        s.bind((lab.peer_ip, 9100))
        s.listen()
        return s

    srv = lab.run_in_peer(listening_socket)  # a plain Python socket, in the peer namespace
    try:
        c = agent.connect(lab.peer_ip, 9100)
        conn, addr = srv.accept()
        assert addr == c.local
        conn.close()
    finally:
        srv.close()
    host_ino = os.stat("/proc/thread-self/ns/net").st_ino
    assert (
        run_in_netns(lab.peer_ns.fd, lambda: os.stat("/proc/thread-self/ns/net").st_ino)
        == lab.peer_ns.inode
    )
    with in_netns(lab.emu_ns.fd):
        assert os.stat("/proc/thread-self/ns/net").st_ino == lab.emu_ns.inode
        assert [n for _, n in socket.if_nameindex()] == ["lo", lab.emu_ifname]
    assert os.stat("/proc/thread-self/ns/net").st_ino == host_ino
    assert lab.run_in_emu(lambda: socket.if_nametoindex(lab.emu_ifname)) == lab.emu_ifindex
