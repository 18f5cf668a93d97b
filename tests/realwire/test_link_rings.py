"""RawLink's packet rings on a real veth: order, back-pressure, and the frames too long
for a slot (which take the plain socket path both ways)."""

from __future__ import annotations

import errno
import select
import subprocess
import time

import pytest

from netemu.lab import Lab
from netemu.link import RawLink
from netemu.link.raw import RX_RING_OK
from netemu.wire import ACK, IPv4Packet, TcpSegment, build_tcp_frame

pytestmark = [pytest.mark.root, pytest.mark.timeout(60)]


def _recv(link: RawLink, n: int, timeout: float = 3.0) -> list[tuple[bytes, bool]]:
    got: list[tuple[bytes, bool]] = []
    end = time.monotonic() + timeout
    while len(got) < n and time.monotonic() < end:
        select.select([link], [], [], max(end - time.monotonic(), 0))
        got += link.recv_batch(1000)
    return got


def _frames(
    lab: Lab, src_mac: str, dst_mac: str, src: str, dst: str, n: int, size: int = 1448
) -> list[bytes]:
    return [
        build_tcp_frame(
            src_mac,
            dst_mac,
            IPv4Packet(src, dst, 6),
            TcpSegment(1000, 80, i, 1, ACK, 1000, bytes([i & 0xFF]) * (1 + (i * 7919) % size)),
        )
        for i in range(n)
    ]


def test_rings_are_in_use_and_keep_order_past_their_size() -> None:
    with Lab() as lab:
        link = lab.open_link()
        peer = RawLink.open(lab.peer_ns, lab.peer_ifindex, None, filtered=False)
        try:
            assert link._tx is not None and (link._rx is not None) == RX_RING_OK
            # More frames than the 512 transmit slots, in one batch: all go, in order.
            out = _frames(lab, lab.emu_mac, lab.peer_mac, lab.emu_ip, "198.18.0.99", 1500)
            assert link.send_batch(out) == 1500 and link.tx_frames == 1500
            got = _recv(peer, 1500)
            assert [f for f, _ in got] == out
            # And the other way, more than a batch of reads at a time.
            back = _frames(lab, lab.peer_mac, lab.emu_mac, lab.peer_ip, lab.emu_ip, 1200)
            assert peer.send_batch(back) == 1200
            got = _recv(link, 1200)
            assert [f for f, _ in got] == back
            assert link.rx_frames == 1200 and link.stats()["drops"] == 0
            assert link.recv_batch() == []
            # Short frames (ACKs) go by sendmmsg, not the ring: more than its 64 slots
            # in one batch, and runs of them between ring frames, keep their order.
            short = _frames(lab, lab.emu_mac, lab.peer_mac, lab.emu_ip, "198.18.0.99", 150, 60)
            assert link._smm is not None and max(map(len, short)) <= 256
            mixed = [*short[:100], out[5], *short[100:], out[6]]
            assert link.send_batch(mixed) == len(mixed)
            assert [f for f, _ in _recv(peer, len(mixed))] == mixed
        finally:
            peer.close()


def test_frames_longer_than_a_slot_pass_whole_and_in_order() -> None:
    """With a 9000-byte MTU (set after the links were opened), a jumbo frame fits no
    ring slot: received, the kernel also queues it whole on the socket; sent, it goes
    by plain send(). Longer than the MTU, the kernel's error reaches the caller."""
    with Lab() as lab:
        link = lab.open_link()
        peer = RawLink.open(lab.peer_ns, lab.peer_ifindex, None, filtered=False)
        try:
            for run, ifname in (
                (lab.run_in_emu, lab.emu_ifname),
                (lab.run_in_peer, lab.peer_ifname),
            ):
                run(
                    lambda ifname=ifname: subprocess.run(
                        ["ip", "link", "set", "dev", ifname, "mtu", "9000"], check=True
                    )
                )
            small = _frames(lab, lab.peer_mac, lab.emu_mac, lab.peer_ip, lab.emu_ip, 3, 100)
            jumbo = _frames(lab, lab.peer_mac, lab.emu_mac, lab.peer_ip, lab.emu_ip, 2, 8000)
            jumbo = [f for f in jumbo if len(f) > 2048] or jumbo
            seq = [small[0], *jumbo, small[1], jumbo[0], small[2]]
            assert peer.send_batch(seq) == len(seq)
            assert [f for f, _ in _recv(link, len(seq))] == seq
            out = _frames(lab, lab.emu_mac, lab.peer_mac, lab.emu_ip, "198.18.0.99", 3, 8000)
            out = [out[0][:100], jumbo[0][:6000], out[2][:200]]
            assert link.send_batch(out) == 3
            assert [f for f, _ in _recv(peer, 3)] == out
            with pytest.raises(OSError) as e:
                link.send(bytes(9100))
            assert e.value.errno in (errno.EMSGSIZE, errno.EINVAL)
        finally:
            peer.close()


def test_without_rings_the_same() -> None:
    with Lab() as lab:
        link = lab.open_link(tx_ring=0, rx_ring=0)
        peer = RawLink.open(
            lab.peer_ns, lab.peer_ifindex, None, filtered=False, tx_ring=0, rx_ring=0
        )
        try:
            assert link._tx is None and link._rx is None
            out = _frames(lab, lab.emu_mac, lab.peer_mac, lab.emu_ip, "198.18.0.99", 300)
            assert link.send_batch(out) == 300
            assert [f for f, _ in _recv(peer, 300)] == out
            back = _frames(lab, lab.peer_mac, lab.emu_mac, lab.peer_ip, lab.emu_ip, 300)
            assert peer.send_batch(back) == 300
            assert [f for f, _ in _recv(link, 300)] == back
        finally:
            peer.close()
