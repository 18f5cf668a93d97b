"""What a ``Host`` answers below TCP: ARP (RFC 826: its table, its requests for a
peer's MAC, its replies for its own address) and ICMP echo.

``ArpIcmp`` is a part of ``Host`` (one of its bases), not an object of its own: its
methods are the host's, on the host's table and link, and the receive path calls
them as before (``Host._dispatch``), with no call added on the way.
"""

from __future__ import annotations

import asyncio
import itertools
from typing import Protocol

from ..wire import (
    ARP_REPLY,
    ARP_REQUEST,
    BROADCAST,
    ETHERTYPE_ARP,
    ETHERTYPE_IPV4,
    ICMP_ECHO_REPLY,
    PROTO_ICMP,
    ArpPacket,
    EthernetFrame,
    IcmpEcho,
    IPv4Packet,
)
from .errors import HostError

ZERO_MAC = "00:00:00:00:00:00"
ARP_TIMEOUT = 1.0
ARP_RETRIES = 3


class _HostParts(Protocol):
    """What ``ArpIcmp``'s methods use of the ``Host`` they belong to."""

    ip: str
    mac: str
    arp_cache: dict[str, str]
    _arp_waiters: dict[str, list[asyncio.Future]]
    _ip_id: itertools.count[int]

    def _transmit(self, frames: list[bytes], mark: str | None = None) -> None: ...

    def _send_arp(self, op: int, eth_dst: str, target_ip: str, target_mac: str) -> None: ...


class ArpIcmp:
    """The host's ARP and ICMP echo (a base of ``Host``)."""

    # ------------------------------------------------------------------ ARP
    async def resolve(self: _HostParts, ip: str) -> str:
        """The MAC for ``ip``: from the cache, or by ARP (RFC 826) with retries."""
        mac = self.arp_cache.get(ip)
        if mac:
            return mac
        loop = asyncio.get_running_loop()
        for _ in range(ARP_RETRIES):
            fut: asyncio.Future = loop.create_future()
            self._arp_waiters.setdefault(ip, []).append(fut)
            self._send_arp(ARP_REQUEST, BROADCAST, ip, ZERO_MAC)
            try:
                return await asyncio.wait_for(fut, ARP_TIMEOUT)
            except TimeoutError:
                continue
        raise HostError(f"no ARP reply from {ip}")

    def _send_arp(self: _HostParts, op: int, eth_dst: str, target_ip: str, target_mac: str) -> None:
        arp = ArpPacket(op, self.mac, self.ip, target_mac, target_ip)
        frame = EthernetFrame(eth_dst, self.mac, ETHERTYPE_ARP).header() + arp.emit()
        self._transmit([frame])

    def _on_arp(self: _HostParts, arp: ArpPacket) -> None:
        # RFC 826: merge the sender into the table if we hold it or are the target.
        if arp.target_ip == self.ip or arp.sender_ip in self.arp_cache:
            self.arp_cache[arp.sender_ip] = arp.sender_mac
            for fut in self._arp_waiters.pop(arp.sender_ip, []):
                if not fut.done():
                    fut.set_result(arp.sender_mac)
        # Answer requests for our address, broadcast and unicast alike: the kernel
        # re-checks stale neighbours by unicast.
        if arp.op == ARP_REQUEST and arp.target_ip == self.ip:
            self._send_arp(ARP_REPLY, arp.sender_mac, arp.sender_ip, arp.sender_mac)

    # ------------------------------------------------------------------ ICMP echo
    def _echo_reply(self: _HostParts, eth_src: str, ip: IPv4Packet, icmp: IcmpEcho) -> None:
        reply = IcmpEcho(ICMP_ECHO_REPLY, 0, icmp.identifier, icmp.sequence, icmp.payload)
        body = reply.emit()
        hdr = IPv4Packet(self.ip, ip.src, PROTO_ICMP, identification=next(self._ip_id) & 0xFFFF)
        frame = (
            EthernetFrame(eth_src, self.mac, ETHERTYPE_IPV4).header() + hdr.header(len(body)) + body
        )
        self._transmit([frame])
