"""RawLink on a lab: the emulator's wire, against the peer's real kernel."""

from __future__ import annotations

import select
import time

import pytest

from netemu.lab import Lab
from netemu.lab.rtnl import set_tx_checksum
from netemu.link import RawLink
from netemu.wire import (
    ACK,
    ARP_REPLY,
    ARP_REQUEST,
    BROADCAST,
    ETHERTYPE_ARP,
    ETHERTYPE_IPV6,
    SYN,
    ArpPacket,
    BadChecksum,
    EthernetFrame,
    IPv4Packet,
    TcpSegment,
    build_tcp_frame,
    parse_frame,
)

pytestmark = pytest.mark.root


def recv_until(link: RawLink, n: int = 1, timeout: float = 3.0) -> list[tuple[bytes, bool]]:
    got: list[tuple[bytes, bool]] = []
    deadline = time.monotonic() + timeout
    while len(got) < n:
        left = deadline - time.monotonic()
        if left <= 0:
            break
        select.select([link], [], [], left)
        got += link.recv_batch()
    return got


def arp_reply_for(lab: Lab, request: bytes) -> bytes:
    arp = parse_frame(request).arp
    assert arp is not None
    reply = ArpPacket(ARP_REPLY, lab.emu_mac, lab.emu_ip, arp.sender_mac, arp.sender_ip)
    return EthernetFrame(arp.sender_mac, lab.emu_mac, ETHERTYPE_ARP).header() + reply.emit()


def test_idle_lab_is_silent() -> None:
    """IPv6 off and no address on the emulator side: not one frame in a second, on
    either end (unfiltered)."""
    with Lab() as lab:
        emu = RawLink.open(lab.emu_ns, lab.emu_ifindex, None, filtered=False)
        peer = RawLink.open(lab.peer_ns, lab.peer_ifindex, None, filtered=False)
        try:
            time.sleep(1.0)
            assert emu.recv_batch() == [] and peer.recv_batch() == []
            assert emu.stats() == {"packets": 0, "drops": 0}
        finally:
            emu.close()
            peer.close()


def test_idle_ipv6_lab_is_silent() -> None:
    """An IPv6 lab (the peer's kernel with an address from 2001:2::/48): no DAD, no
    router solicitation, no MLD report once it is up: not one frame in 10 s, on either
    end (unfiltered; issue 20)."""
    with Lab(ipv6=True) as lab:
        assert (lab.emu_ip6, lab.peer_ip6) == ("2001:2::1", "2001:2::2")
        emu = RawLink.open(lab.emu_ns, lab.emu_ifindex, None, filtered=False)
        peer = RawLink.open(lab.peer_ns, lab.peer_ifindex, None, filtered=False)
        try:
            time.sleep(10.0)
            assert emu.recv_batch() == [] and peer.recv_batch() == []
            assert emu.stats() == {"packets": 0, "drops": 0}
        finally:
            emu.close()
            peer.close()


def test_arp_by_hand_then_kernel_syn_with_valid_checksum(lab: Lab, agent: object) -> None:
    link = lab.open_link()
    assert link.fileno() >= 0 and link.ip == lab.emu_ip
    c = agent.connect(lab.emu_ip, 80, wait=False)  # type: ignore[attr-defined]
    ((frame, not_ready),) = recv_until(link)
    f = parse_frame(frame)
    assert not not_ready
    assert f.eth.dst == BROADCAST and f.eth.src == lab.peer_mac
    assert f.arp == ArpPacket(
        ARP_REQUEST, lab.peer_mac, lab.peer_ip, "00:00:00:00:00:00", lab.emu_ip
    )
    link.send(arp_reply_for(lab, frame))
    ((frame, not_ready),) = recv_until(link)  # our own reply is not looped back
    assert not not_ready and len(frame) <= 1514
    f = parse_frame(frame, verify=True)  # the checksum is really there (tx off on the peer)
    assert f.eth.src == lab.peer_mac and f.eth.dst == lab.emu_mac
    assert (f.ip.src, f.ip.dst) == (lab.peer_ip, lab.emu_ip)
    assert f.tcp.flags == SYN and f.tcp.dst_port == 80 and f.tcp.src_port == c.local[1]
    assert f.tcp.mss == 1460 and f.tcp.sack_permitted and f.tcp.timestamp is not None
    assert [s.state for s in lab.peer_sockets(port=80)] == ["SYN-SENT"]
    assert link.rx_frames == 2 and link.tx_frames == 1


def test_kernel_arp_for_any_datagram_then_unicast_arp(lab: Lab) -> None:
    """The peer kernel ARPs for us before its first datagram (here UDP, sent from a
    socket opened on the peer namespace's thread); with a neighbour entry gone stale it
    re-checks by unicast, which the filter must pass as well."""
    import socket

    link = lab.open_link()

    def send_udp() -> None:
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
            s.sendto(b"hi", (lab.emu_ip, 9))

    lab.run_in_peer(send_udp)
    ((frame, _),) = recv_until(link)
    assert parse_frame(frame).arp.target_ip == lab.emu_ip
    link.send(arp_reply_for(lab, frame))
    f = parse_frame(recv_until(link)[0][0])
    while f.arp is not None:  # a loaded machine: the kernel may ask again before our reply
        assert f.arp.op == ARP_REQUEST and f.arp.target_ip == lab.emu_ip
        link.send(arp_reply_for(lab, frame))
        f = parse_frame(recv_until(link)[0][0])
    assert f.ip.protocol == 17 and f.ip.dst == lab.emu_ip and f.ip.payload.endswith(b"hi")
    # Unicast ARP request (as from a stale entry): target our IP, sent to our MAC.
    peer = RawLink.open(lab.peer_ns, lab.peer_ifindex, None, filtered=False)
    try:
        req = ArpPacket(ARP_REQUEST, lab.peer_mac, lab.peer_ip, lab.emu_mac, lab.emu_ip)
        peer.send(EthernetFrame(lab.emu_mac, lab.peer_mac, ETHERTYPE_ARP).header() + req.emit())
        ((frame, _),) = recv_until(link)
        assert parse_frame(frame).arp == req
    finally:
        peer.close()


def test_filter_passes_only_what_is_ours(lab: Lab) -> None:
    link = lab.open_link()
    peer = RawLink.open(lab.peer_ns, lab.peer_ifindex, None, filtered=False)
    try:

        def tcp(dst_ip: str, dst_mac: str) -> bytes:
            return build_tcp_frame(
                lab.peer_mac,
                dst_mac,
                IPv4Packet(lab.peer_ip, dst_ip, 6),
                TcpSegment(1000, 80, 1, 0, SYN, 1000),
            )

        def arp(eth_dst: str, target: str) -> bytes:
            a = ArpPacket(ARP_REQUEST, lab.peer_mac, lab.peer_ip, "00:00:00:00:00:00", target)
            return EthernetFrame(eth_dst, lab.peer_mac, ETHERTYPE_ARP).header() + a.emit()

        ours = [
            tcp(lab.emu_ip, lab.emu_mac),
            arp(BROADCAST, lab.emu_ip),
            arp(BROADCAST, "198.18.0.77"),  # broadcast ARP (gratuitous, or for others)
            arp(lab.emu_mac, lab.emu_ip),
        ]
        not_ours = [
            tcp("198.18.0.9", lab.emu_mac),
            tcp("198.18.0.255", BROADCAST),
            arp(lab.emu_mac, "198.18.0.9"),  # unicast ARP for someone else
            EthernetFrame(lab.emu_mac, lab.peer_mac, ETHERTYPE_IPV6).header() + bytes(40),
            EthernetFrame(lab.emu_mac, lab.peer_mac, 0x88B5).header() + bytes(46),
        ]
        frames = [
            not_ours[0],
            ours[0],
            not_ours[1],
            ours[1],
            not_ours[2],
            ours[2],
            not_ours[3],
            ours[3],
            not_ours[4],
        ]
        assert peer.send_batch(frames) == len(frames)
        got = recv_until(link, len(ours), timeout=2)
        time.sleep(0.05)
        got += link.recv_batch()
        assert [f for f, _ in got] == ours
    finally:
        peer.close()


def test_batches_drain_in_order_and_respect_max(lab: Lab) -> None:
    link = lab.open_link()
    peer = RawLink.open(lab.peer_ns, lab.peer_ifindex, None, filtered=False)
    try:
        frames = [
            build_tcp_frame(
                lab.peer_mac,
                lab.emu_mac,
                IPv4Packet(lab.peer_ip, lab.emu_ip, 6),
                TcpSegment(1000, 80, i, 1, ACK, 1000, b"x" * (i % 1400)),
            )
            for i in range(500)
        ]
        assert peer.send_batch(frames) == 500
        time.sleep(0.05)
        first = link.recv_batch(10)
        assert len(first) == 10
        rest = link.recv_batch(1000)
        assert [f for f, _ in first + rest] == frames
        assert link.recv_batch() == []
        assert link.stats()["drops"] == 0
        # And the other way: the emulator's sends arrive in order at the peer.
        back = [
            build_tcp_frame(
                lab.emu_mac,
                lab.peer_mac,
                IPv4Packet(lab.emu_ip, "198.18.0.99", 6),
                TcpSegment(80, 1000, i, 1, ACK, 1000),
            )
            for i in range(200)
        ]
        assert link.send_batch(back) == 200
        time.sleep(0.05)
        assert [f for f, _ in peer.recv_batch(1000)] == back
    finally:
        peer.close()


def test_offloaded_checksum_is_reported_not_mistaken_for_corruption(
    lab: Lab, agent: object
) -> None:
    """With tx checksumming back on at the peer, the kernel's segments arrive with the
    checksum unfinished: PACKET_AUXDATA says so (TP_STATUS_CSUMNOTREADY)."""
    lab.run_in_peer(set_tx_checksum, lab.peer_ifname, True)
    link = lab.open_link()
    agent.connect(lab.emu_ip, 80, wait=False)  # type: ignore[attr-defined]
    ((frame, not_ready),) = recv_until(link)
    assert not not_ready  # ARP has no checksum to offload
    link.send(arp_reply_for(lab, frame))
    ((frame, not_ready),) = recv_until(link)
    assert not_ready
    with pytest.raises(BadChecksum):
        parse_frame(frame, verify=True)
    assert parse_frame(frame, verify=False).tcp.flags == SYN


def test_open_by_namespace_fd_and_close(lab: Lab) -> None:
    link = RawLink.open(lab.emu_ns.fd, lab.emu_ifindex, lab.emu_ip)
    assert not link.closed
    link.close()
    assert link.closed
