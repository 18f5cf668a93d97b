"""The lab itself: what it builds, what it leaves (nothing), how fast."""

from __future__ import annotations

import argparse
import json
import os
import signal
import socket
import statistics
import time

import pytest
from lab_helpers import in_ns, leftovers, wait_no_leftovers

from netemu.lab import Lab, LabError, registry
from netemu.lab.netns import read_sysctl

pytestmark = pytest.mark.root


def test_up_down_leaves_nothing() -> None:
    with Lab() as lab:
        rid = lab.runid
        inodes = [lab.emu_ns.inode, lab.peer_ns.inode]
        assert lab.live and os.path.exists(registry.lock_path(rid))
        assert registry.RUNID_RE.match(rid)
        assert lab.emu_ns.inode != lab.peer_ns.inode != os.stat("/proc/self/ns/net").st_ino
        assert not registry.netns_names() or all(rid not in n for n in registry.netns_names())
    assert not lab.live
    assert wait_no_leftovers(rid, inodes) == []


def test_up_down_median_time() -> None:
    times = []
    for _ in range(15):
        t0 = time.perf_counter()
        with Lab():
            pass
        times.append(time.perf_counter() - t0)
    median_ms = statistics.median(times) * 1000
    print(f"lab up+down: median {median_ms:.1f} ms, min {min(times) * 1000:.1f} ms")
    assert median_ms <= 50


def test_addresses_macs_offload_ipv6(lab: Lab) -> None:
    peer = json.loads(in_ns(lab.peer_ns.fd, "ip", "-j", "addr", "show"))
    emu = json.loads(in_ns(lab.emu_ns.fd, "ip", "-j", "addr", "show"))
    by_name = {i["ifname"]: i for i in peer}
    p = by_name[lab.peer_ifname]
    assert p["address"] == lab.peer_mac and p["ifindex"] == lab.peer_ifindex
    assert [(a["family"], a["local"], a["prefixlen"]) for a in p["addr_info"]] == [
        ("inet", "198.18.0.2", 24)
    ]
    assert "UP" in p["flags"] and "UP" in by_name["lo"]["flags"]
    e = {i["ifname"]: i for i in emu}[lab.emu_ifname]
    # The veth's own MAC is not netemu's: the emulator kernel drops netemu's frames early.
    assert e["address"] == lab.emu_if_mac != lab.emu_mac and "UP" in e["flags"]
    assert e["addr_info"] == []  # netemu answers for 198.18.0.1 itself
    assert lab.emu_ip == "198.18.0.1"
    # Not a single inet6 address anywhere: IPv6 is off in both namespaces.
    assert all(a["family"] != "inet6" for i in peer + emu for a in i["addr_info"])
    for fd in (lab.peer_ns.fd, lab.emu_ns.fd):
        out = in_ns(
            fd,
            "sysctl",
            "-n",
            "net.ipv6.conf.all.disable_ipv6",
            "net.ipv6.conf.default.disable_ipv6",
        )
        assert out.split() == ["1", "1"]
    features = in_ns(lab.peer_ns.fd, "ethtool", "-k", lab.peer_ifname)
    assert "tx-checksumming: off" in features
    assert "tx-tcp-segmentation: off" in features  # TSO follows checksumming
    # The host namespace saw none of it.
    assert all(lab.runid not in n for _, n in socket.if_nameindex())


def test_peer_sysctls_applied_host_untouched() -> None:
    host_before = read_sysctl("net.ipv4.tcp_fin_timeout")
    sysctls = {"net.ipv4.tcp_fin_timeout": 7, "net.ipv4.tcp_syn_retries": 2, "net/ipv4/tcp_sack": 0}
    with Lab(peer_sysctls=sysctls) as lab:
        assert lab.run_in_peer(read_sysctl, "net.ipv4.tcp_fin_timeout") == "7"
        out = in_ns(
            lab.peer_ns.fd,
            "sysctl",
            "-n",
            "net.ipv4.tcp_fin_timeout",
            "net.ipv4.tcp_syn_retries",
            "net.ipv4.tcp_sack",
        )
        assert out.split() == ["7", "2", "0"]
        assert lab.run_in_emu(read_sysctl, "net.ipv4.tcp_fin_timeout") == host_before
    assert read_sysctl("net.ipv4.tcp_fin_timeout") == host_before


def test_bad_sysctl_fails_cleanly() -> None:
    lab = Lab(peer_sysctls={"net.ipv4.no_such_knob": 1})
    with pytest.raises(LabError, match="no_such_knob"):
        lab.start()
    assert wait_no_leftovers(lab.runid) == []


def test_congestion_control_namespace_or_per_socket() -> None:
    allowed = read_sysctl("net.ipv4.tcp_allowed_congestion_control").split()
    want = "cubic" if "cubic" not in allowed else "reno"
    host_cc = read_sysctl("net.ipv4.tcp_congestion_control")
    with Lab(congestion=want) as lab:
        if want in allowed:
            assert not lab.cc_per_socket and lab.peer_cc == want
        else:  # this machine: "reno bbr" allowed, cubic available but refused
            assert lab.cc_per_socket and lab.peer_cc == host_cc and lab.notes
        assert lab.env["NETEMU_TCP_CONGESTION"] == want
        agent = lab.start_agent()
        ls = agent.listen(9000)
        c = agent.connect("127.0.0.1", 9000)
        acc = agent.accept(ls.sock)
        assert agent.info(c.sock)["cc"] == want
        assert agent.info(acc.sock)["cc"] == want
        ccs = {s.state: s.cc for s in lab.peer_sockets(port=9000)}
        assert ccs == {"LISTEN": want, "ESTABLISHED": want}
    assert read_sysctl("net.ipv4.tcp_congestion_control") == host_cc


def test_unavailable_congestion_control_is_an_error() -> None:
    with pytest.raises(LabError, match="not available"):
        Lab(congestion="no-such-cc").start()


def test_addresses_must_be_lab_range() -> None:
    with pytest.raises(ValueError, match=r"198\.18\.0\.0/15"):
        Lab(peer_ip="10.0.0.2", emu_ip="10.0.0.1")
    with pytest.raises(ValueError, match="not in one"):
        Lab(peer_ip="198.18.0.2", emu_ip="198.19.0.1")
    with Lab(emu_ip="198.19.7.1", peer_ip="198.19.7.200", prefixlen=24) as lab:
        assert lab.env["NETEMU_PEER_IP"] == "198.19.7.200"
        assert "198.19.7.200/24" in in_ns(lab.peer_ns.fd, "ip", "-br", "addr")


def test_keep_names_then_clean(clean_serial: None) -> None:
    with Lab(keep=True) as lab:
        rid = lab.runid
        names = sorted(lab.netns_names.values())
        assert names == [f"netemu-{rid}-emu", f"netemu-{rid}-peer"]
        assert set(names) <= set(registry.netns_names())
        import subprocess

        out = subprocess.run(
            ["ip", "netns", "exec", f"netemu-{rid}-peer", "ip", "-br", "addr"],
            check=True,
            capture_output=True,
            text=True,
        ).stdout
        assert "198.18.0.2/24" in out
        run = next(r for r in registry.list_runs() if r.runid == rid)
        assert run.live and run.kept and run.info["names"] == names
    # Kept: names and an unheld lock file remain, for inspection, until `lab clean`.
    assert set(names) <= set(registry.netns_names())
    run = next(r for r in registry.list_runs() if r.runid == rid)
    assert not run.live and run.kept
    actions = registry.clean()
    assert any(f"netemu-{rid}-peer" in a for a in actions)
    assert leftovers(rid) == []


def test_clean_spares_live_runs_and_kills_dead_runs_strays(clean_serial: None) -> None:
    with Lab() as lab:
        # A fake dead run: its lock file (unheld) and a stray process carrying its tag.
        dead = registry.new_runid()
        with open(registry.lock_path(dead), "w") as f:
            json.dump({"runid": dead, "pid": 1, "started": time.time()}, f)
        env = {**os.environ, registry.ENV_TAG: dead}
        import subprocess

        stray = subprocess.Popen(["sleep", "30"], env=env, start_new_session=True)
        mine = lab.spawn(["sleep", "30"])
        try:
            actions = registry.clean()
            assert f"remove lock of dead run {dead} (pid 1)" in actions
            assert any(a.startswith(f"kill pid {stray.pid} ") for a in actions)
            assert stray.wait(3) == -signal.SIGKILL
            # The live lab is untouched.
            assert os.path.exists(registry.lock_path(lab.runid))
            assert mine.running
            assert lab.start_agent().ping()["pid"] > 0
        finally:
            if stray.poll() is None:
                stray.kill()
                stray.wait()


@pytest.fixture
def default_sigterm():
    """These tests need SIGTERM at its default (a lab leaves other handlers alone)."""
    old = signal.signal(signal.SIGTERM, signal.SIG_DFL)
    yield
    signal.signal(signal.SIGTERM, old)


def test_signal_handlers_installed_and_restored(default_sigterm: None) -> None:
    with Lab():
        assert signal.getsignal(signal.SIGTERM) is not signal.SIG_DFL
        with Lab():
            pass
        assert signal.getsignal(signal.SIGTERM) is not signal.SIG_DFL
    assert signal.getsignal(signal.SIGTERM) is signal.SIG_DFL


def test_a_users_sigterm_handler_is_left_alone() -> None:
    def mine(signum: int, frame: object) -> None:
        pass

    old = signal.signal(signal.SIGTERM, mine)
    try:
        with Lab():
            assert signal.getsignal(signal.SIGTERM) is mine
        assert signal.getsignal(signal.SIGTERM) is mine
    finally:
        signal.signal(signal.SIGTERM, old)


def test_sigterm_in_process_tears_down(default_sigterm: None) -> None:
    seen: dict[str, object] = {}
    with pytest.raises(SystemExit) as info, Lab() as lab:
        seen.update(
            rid=lab.runid,
            inodes=[lab.emu_ns.inode, lab.peer_ns.inode],
            pid=lab.spawn(["sleep", "30"]).pid,
        )
        os.kill(os.getpid(), signal.SIGTERM)
        time.sleep(5)
    assert info.value.code == 128 + signal.SIGTERM
    assert not lab.live
    assert wait_no_leftovers(seen["rid"], seen["inodes"], [seen["pid"]]) == []


async def test_async_lab_and_agent() -> None:
    import asyncio

    async with Lab() as lab:
        agent = lab.start_agent().aio
        ls = await agent.listen(7000)
        await lab.wait_listening_async(7000)
        accepted, connected = await asyncio.gather(
            agent.accept(ls.sock, timeout=5), agent.connect(lab.peer_ip, 7000)
        )
        assert accepted.peer == connected.local
        await agent.send(connected.sock, b"ping")
        assert await agent.recv(accepted.sock, exact=4) == b"ping"
        rid = lab.runid
    assert wait_no_leftovers(rid) == []


def test_cli_list_and_clean(capsys: pytest.CaptureFixture[str]) -> None:
    from netemu.lab.cli import register

    parser = argparse.ArgumentParser(prog="netemu")
    register(parser.add_subparsers(dest="command"))
    with Lab() as lab:
        args = parser.parse_args(["lab", "list", "--json"])
        assert args.func(args) == 0
        data = json.loads(capsys.readouterr().out)
        mine = next(r for r in data["runs"] if r["runid"] == lab.runid)
        assert mine["live"] and mine["pid"] == os.getpid()
        args = parser.parse_args(["lab", "list"])
        assert args.func(args) == 0
        out = capsys.readouterr().out
        assert f"{lab.runid}  live" in out and "nsenter --net=/proc/" in out
        args = parser.parse_args(["lab", "clean", "--dry-run"])
        assert args.func(args) == 0
        assert lab.runid not in capsys.readouterr().out
