"""netemu's host over IPv6 against the peer's kernel in an IPv6 lab: neighbour
discovery both ways (no kernel on the emulator side), a connection each way, the
MSS IPv6 allows (link MTU - 60), ICMPv6 echo, Packet Too Big cutting the MSS."""

from __future__ import annotations

import asyncio
import socket

import pytest

from netemu.host import Host
from netemu.lab import Lab
from netemu.wire import Icmp6


def ping6(dst: str) -> bytes:
    with socket.socket(socket.AF_INET6, socket.SOCK_RAW, socket.IPPROTO_ICMPV6) as s:
        s.settimeout(2.0)
        s.sendto(Icmp6.echo(True, 7, 1, b"ping").emit("::", "::"), (dst, 0))
        return s.recv(2048)  # (the kernel fills in the checksum of what it sends)


pytestmark = pytest.mark.root


def test_host_over_ipv6_against_the_kernel() -> None:
    async def main() -> None:
        with Lab(ipv6=True) as lab:
            agent = lab.start_agent()
            ls = agent.listen(8080, host="::")
            link = lab.open_link(tx_ring=0, rx_ring=0)
            host = await Host(link, lab.emu_ip, lab.emu_mac, ip6=lab.emu_ip6).start()
            try:
                s = await host.connect(lab.peer_ip6, 8080)
                acc = agent.accept(ls.sock)
                assert acc.peer[0] == lab.emu_ip6 and acc.local[0] == lab.peer_ip6
                assert s.conn.local_ip == lab.emu_ip6 and s.conn.config.mss == 1440
                assert host.arp_cache[lab.peer_ip6] == lab.peer_mac  # by NS/NA
                # the kernel connects to us: it solicits our address, we answer
                lst = await host.listen(9000)
                agent.connect(lab.emu_ip6, 9000, wait=False)
                t = await asyncio.wait_for(lst.accept(), 3)
                assert (t.conn.local_ip, t.conn.remote_ip) == (lab.emu_ip6, lab.peer_ip6)
                assert t.conn.config.mss == 1440 and t.conn.snd_mss == 1440
                # an echo request from the peer's kernel (a raw ICMPv6 socket): answered
                got = await asyncio.to_thread(lab.run_in_peer, ping6, lab.emu_ip6)
                assert got[0] == 129
                assert got.endswith(b"ping")
                # a Packet Too Big about the connection's segments: its MSS shrinks
                invoking = (
                    bytes.fromhex("60000000")
                    + (1400).to_bytes(2, "big")
                    + b"\x06\x40"
                    + socket.inet_pton(socket.AF_INET6, lab.emu_ip6)
                    + socket.inet_pton(socket.AF_INET6, lab.peer_ip6)
                    + s.conn.local_port.to_bytes(2, "big")
                    + (8080).to_bytes(2, "big")
                )
                host._packet_too_big(Icmp6.packet_too_big(1300, invoking))
                assert s.conn.snd_mss == 1300 - 60
            finally:
                host.close()

    asyncio.run(main())
