"""Lab pieces that need no root: the BPF program, the run registry, the Go cache path."""

from __future__ import annotations

import fcntl
import json
import os
import struct
from pathlib import Path

import pytest

from netemu.lab import gobuild, registry
from netemu.link.raw import bpf_program
from netemu.wire import (
    ARP_REPLY,
    ARP_REQUEST,
    BROADCAST,
    ETHERTYPE_ARP,
    SYN,
    ArpPacket,
    EthernetFrame,
    IPv4Packet,
    TcpSegment,
    build_tcp_frame,
)

US, PEER = "198.18.0.1", "198.18.0.2"
MAC_US, MAC_PEER = "02:00:00:00:00:01", "02:00:00:00:00:02"


def run_bpf(program: list[tuple[int, int, int, int]], pkt: bytes) -> int:
    """A classic-BPF interpreter for the instructions our filter uses."""
    a, pc = 0, 0
    while True:
        code, jt, jf, k = program[pc]
        if code == 0x28:  # ld h [k]
            if k + 2 > len(pkt):
                return 0
            a = struct.unpack_from("!H", pkt, k)[0]
        elif code == 0x20:  # ld w [k]
            if k + 4 > len(pkt):
                return 0
            a = struct.unpack_from("!I", pkt, k)[0]
        elif code == 0x15:  # jeq #k
            pc += jt if a == k else jf
        elif code == 0x06:  # ret #k
            return k
        else:
            raise AssertionError(f"unexpected opcode {code:#x}")
        pc += 1


def arp(eth_dst: str, op: int, target_ip: str, sender_ip: str = PEER) -> bytes:
    return (
        EthernetFrame(eth_dst, MAC_PEER, ETHERTYPE_ARP).header()
        + ArpPacket(op, MAC_PEER, sender_ip, "00:00:00:00:00:00", target_ip).emit()
    )


def tcp(dst_ip: str) -> bytes:
    return build_tcp_frame(
        MAC_PEER, MAC_US, IPv4Packet(PEER, dst_ip, 6), TcpSegment(1, 2, 3, 0, SYN, 100)
    )


@pytest.mark.parametrize(
    ("frame", "passes"),
    [
        (arp(BROADCAST, ARP_REQUEST, US), True),
        (arp(MAC_US, ARP_REQUEST, US), True),  # unicast re-check of a stale entry
        (arp(MAC_US, ARP_REPLY, US), True),  # the reply to our own request
        (arp(BROADCAST, ARP_REQUEST, PEER, PEER), True),  # gratuitous
        (arp(MAC_US, ARP_REQUEST, "198.18.0.9"), False),
        (arp("ff:ff:ff:ff:ff:fe", ARP_REQUEST, "198.18.0.9"), False),
        (tcp(US), True),
        (tcp("198.18.0.9"), False),
        (EthernetFrame(MAC_US, MAC_PEER, 0x86DD).header() + bytes(40), False),
        (b"\x00" * 10, False),  # runt
    ],
    ids=[
        "arp-bcast",
        "arp-unicast",
        "arp-reply",
        "garp",
        "arp-other",
        "arp-almost-bcast",
        "ipv4-us",
        "ipv4-other",
        "ipv6",
        "runt",
    ],
)
def test_bpf_filter(frame: bytes, passes: bool) -> None:
    assert (run_bpf(bpf_program(US), frame) > 0) == passes


def test_bpf_filter_without_ip_passes_arp_and_ipv4_only() -> None:
    prog = bpf_program(None)
    assert run_bpf(prog, tcp("198.18.0.9")) > 0
    assert run_bpf(prog, arp(MAC_US, ARP_REQUEST, "198.18.0.9")) > 0
    assert run_bpf(prog, EthernetFrame(MAC_US, MAC_PEER, 0x86DD).header() + bytes(40)) == 0


US6, PEER6 = "2001:2::1", "2001:2::2"


def ip6_frame(dst: str) -> bytes:
    from netemu.wire import IPv6Packet

    return build_tcp_frame(
        MAC_PEER, MAC_US, IPv6Packet(PEER6, dst, 6), TcpSegment(1, 2, 3, 0, SYN, 100)
    )


@pytest.mark.parametrize(
    ("frame", "passes"),
    [
        (ip6_frame(US6), True),
        (ip6_frame("ff02::1:ff00:1"), True),  # our solicited-node group (NS)
        (ip6_frame("2001:2::3"), False),
        (ip6_frame("2001:2::1:1"), False),
        (ip6_frame("ff02::1:ff00:2"), False),  # the peer's group
        (ip6_frame("ff02::1"), False),
        (ip6_frame("ff02::2:ff00:1"), False),
        (tcp(US), True),
        (tcp("198.18.0.9"), False),
        (arp(BROADCAST, ARP_REQUEST, US), True),
        (arp(MAC_US, ARP_REQUEST, "198.18.0.9"), False),
    ],
)
def test_bpf_filter_with_ipv6(frame: bytes, passes: bool) -> None:
    assert (run_bpf(bpf_program(US, US6), frame) > 0) == passes


def test_run_lock_lifecycle(tmp_path: Path) -> None:
    lock = registry.RunLock(str(tmp_path))
    rid = lock.acquire({"keep": False})
    assert registry.RUNID_RE.match(rid)
    assert sorted(os.listdir(tmp_path)) == [f"{rid}.lock"]  # no dot-file left
    runs = registry.list_runs(str(tmp_path))
    assert [(r.runid, r.live, r.pid) for r in runs] == [(rid, True, os.getpid())]
    lock.update(children=[1, 2])
    assert json.loads(Path(lock.path).read_text())["children"] == [1, 2]
    # A second lock never gets the same id while this one exists.
    with pytest.raises(FileExistsError):
        registry.RunLock(str(tmp_path)).acquire({}, runid=rid)
    lock.release()
    assert os.listdir(tmp_path) == []


def test_clean_in_a_run_dir_spares_live_and_removes_dead(
    tmp_path: Path, clean_serial: None
) -> None:
    live = registry.RunLock(str(tmp_path))
    live_id = live.acquire({})
    dead_id = registry.new_runid()
    (tmp_path / f"{dead_id}.lock").write_text(json.dumps({"runid": dead_id, "pid": 1}))
    (tmp_path / "unrelated.txt").write_text("not ours")
    actions = registry.clean(str(tmp_path), dry_run=True)
    assert f"remove lock of dead run {dead_id} (pid 1)" in actions
    assert not [a for a in actions if live_id in a]
    assert (tmp_path / f"{dead_id}.lock").exists()  # dry run
    if os.geteuid() == 0:
        actions = registry.clean(str(tmp_path))
        assert not (tmp_path / f"{dead_id}.lock").exists()
    assert (tmp_path / f"{live_id}.lock").exists() and (tmp_path / "unrelated.txt").exists()
    # The live lock is still held: nobody else can take it.
    fd = os.open(tmp_path / f"{live_id}.lock", os.O_RDONLY)
    try:
        with pytest.raises(BlockingIOError):
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    finally:
        os.close(fd)
    live.release()


def test_go_cache_dir(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("NETEMU_CACHE", str(tmp_path))
    assert gobuild.cache_dir() == tmp_path
    monkeypatch.delenv("NETEMU_CACHE")
    assert gobuild.cache_dir().parts[-2:] == (".cache", "netemu")
