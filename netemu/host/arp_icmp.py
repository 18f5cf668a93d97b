"""What a ``Host`` answers below TCP: ARP (RFC 826: its table, its requests for a
peer's MAC, its replies for its own address) and ICMP echo; for its IPv6 address,
neighbour discovery (RFC 4861: solicitations answered, unicast and multicast, its own
sent to the peer's solicited-node group; one table with ARP's, by address), ICMPv6
echo, and Packet Too Big (RFC 8201) fed to the connection it is about.

``ArpIcmp`` is a part of ``Host`` (one of its bases), not an object of its own: its
methods are the host's, on the host's table and link, and the receive path calls
them as before (``Host._dispatch``), with no call added on the way.
"""

from __future__ import annotations

import asyncio
import dataclasses
import itertools
from typing import Protocol

from ..tcp import Connection, TcpConfig
from ..wire import (
    ARP_REPLY,
    ARP_REQUEST,
    BROADCAST,
    ETHERTYPE_ARP,
    ETHERTYPE_IPV4,
    ETHERTYPE_IPV6,
    ICMP6_ECHO_REQUEST,
    ICMP6_PACKET_TOO_BIG,
    ICMP_ECHO_REPLY,
    ND_NEIGHBOR_ADVERTISEMENT,
    ND_NEIGHBOR_SOLICITATION,
    PROTO_ICMP,
    ArpPacket,
    BadChecksum,
    EthernetFrame,
    Icmp6,
    IcmpEcho,
    IPv4Packet,
    IPv6Packet,
    MalformedPacket,
    parse_frame,
)
from ..wire.icmp6 import (
    IPV6_MIN_MTU,
    NA_OVERRIDE,
    ND_OPT_SOURCE_LL,
    ND_OPT_TARGET_LL,
    NH_ICMPV6,
    multicast_mac,
    solicited_node,
)
from .errors import HostError

ZERO_MAC = "00:00:00:00:00:00"
ARP_TIMEOUT = 1.0
ARP_RETRIES = 3


class _HostParts(Protocol):
    """What ``ArpIcmp``'s methods use of the ``Host`` they belong to."""

    ip: str
    ip6: str | None
    mac: str
    conns: dict[tuple[str, int, int], Connection]
    _dirty: set[Connection]
    arp_cache: dict[str, str]
    _arp_waiters: dict[str, list[asyncio.Future]]
    _ip_id: itertools.count[int]

    def _transmit(self, frames: list[bytes], mark: str | None = None) -> None: ...

    def _send_arp(self, op: int, eth_dst: str, target_ip: str, target_mac: str) -> None: ...

    def _send_ns(self, ip: str) -> None: ...

    def _send_icmp6(self, eth_dst: str, dst: str, msg: Icmp6, hop_limit: int = 64) -> None: ...

    def _learn(self, ip: str, mac: str) -> None: ...

    def _packet_too_big(self, msg: Icmp6) -> None: ...


class ArpIcmp:
    """The host's ARP and ICMP echo (a base of ``Host``)."""

    # ------------------------------------------------------------------ ARP
    async def resolve(self: _HostParts, ip: str) -> str:
        """The MAC for ``ip``: from the cache, or by ARP (RFC 826) or, for an IPv6
        address, neighbour solicitation (RFC 4861), with retries."""
        mac = self.arp_cache.get(ip)
        if mac:
            return mac
        loop = asyncio.get_running_loop()
        for _ in range(ARP_RETRIES):
            fut: asyncio.Future = loop.create_future()
            self._arp_waiters.setdefault(ip, []).append(fut)
            if ":" in ip:
                self._send_ns(ip)
            else:
                self._send_arp(ARP_REQUEST, BROADCAST, ip, ZERO_MAC)
            try:
                return await asyncio.wait_for(fut, ARP_TIMEOUT)
            except TimeoutError:
                continue
        raise HostError(f"no {'neighbour advertisement' if ':' in ip else 'ARP reply'} from {ip}")

    def _send_arp(self: _HostParts, op: int, eth_dst: str, target_ip: str, target_mac: str) -> None:
        arp = ArpPacket(op, self.mac, self.ip, target_mac, target_ip)
        frame = EthernetFrame(eth_dst, self.mac, ETHERTYPE_ARP).header() + arp.emit()
        self._transmit([frame])

    def _on_arp(self: _HostParts, arp: ArpPacket) -> None:
        # RFC 826: merge the sender into the table if we hold it or are the target.
        if arp.target_ip == self.ip or arp.sender_ip in self.arp_cache:
            self._learn(arp.sender_ip, arp.sender_mac)
        # Answer requests for our address, broadcast and unicast alike: the kernel
        # re-checks stale neighbours by unicast.
        if arp.op == ARP_REQUEST and arp.target_ip == self.ip:
            self._send_arp(ARP_REPLY, arp.sender_mac, arp.sender_ip, arp.sender_mac)

    def _learn(self: _HostParts, ip: str, mac: str) -> None:
        self.arp_cache[ip] = mac
        for fut in self._arp_waiters.pop(ip, []):
            if not fut.done():
                fut.set_result(mac)

    # ------------------------------------------------------------------ NDP, ICMPv6
    def _send_icmp6(
        self: _HostParts, eth_dst: str, dst: str, msg: Icmp6, hop_limit: int = 64
    ) -> None:
        assert self.ip6 is not None
        body = msg.emit(self.ip6, dst)
        hdr = IPv6Packet(self.ip6, dst, NH_ICMPV6, hop_limit=hop_limit).header(len(body))
        self._transmit([EthernetFrame(eth_dst, self.mac, ETHERTYPE_IPV6).header() + hdr + body])

    def _send_ns(self: _HostParts, ip: str) -> None:
        group = solicited_node(ip)
        ns = Icmp6.neighbor_solicitation(ip, self.mac)
        self._send_icmp6(multicast_mac(group), group, ns, 255)

    def _on_icmp6(self: _HostParts, eth_src: str, ip6: IPv6Packet, msg: Icmp6) -> None:
        """Neighbour discovery (a message whose hop limit is not 255 came through a
        router: ignored, RFC 4861 §7.1), echo requests, Packet Too Big."""
        kind = msg.type
        if kind == ND_NEIGHBOR_SOLICITATION and ip6.hop_limit == 255:
            if msg.target != self.ip6:
                return
            if ip6.src == "::":  # another's duplicate address detection: to all nodes
                na = Icmp6.neighbor_advertisement(self.ip6, self.mac, NA_OVERRIDE)
                self._send_icmp6(multicast_mac("ff02::1"), "ff02::1", na, 255)
                return
            mac = msg.link_layer_option(ND_OPT_SOURCE_LL)
            if mac is not None:  # (§7.2.3: the sender's entry, created or updated)
                self._learn(ip6.src, mac)
            na = Icmp6.neighbor_advertisement(self.ip6, self.mac)
            self._send_icmp6(mac or eth_src, ip6.src, na, 255)
        elif kind == ND_NEIGHBOR_ADVERTISEMENT and ip6.hop_limit == 255:
            target = msg.target
            if target in self.arp_cache or target in self._arp_waiters:
                self._learn(target, msg.link_layer_option(ND_OPT_TARGET_LL) or eth_src)
        elif kind == ICMP6_ECHO_REQUEST and ip6.dst == self.ip6:
            reply = Icmp6.echo(False, msg.identifier, msg.sequence, msg.data)
            self._send_icmp6(eth_src, ip6.src, reply)
        elif kind == ICMP6_PACKET_TOO_BIG:
            self._packet_too_big(msg)

    def _local_ip(self: _HostParts, remote_ip: str) -> str:
        """Our address in ``remote_ip``'s family."""
        if ":" not in remote_ip:
            return self.ip
        if self.ip6 is None:
            raise HostError(f"no IPv6 address here to reach {remote_ip} from")
        return self.ip6

    def _config_for(self, remote_ip: str, config: TcpConfig) -> TcpConfig:
        """``config`` for a connection to ``remote_ip``: over IPv6, an MSS no larger
        than the link's MTU (at least 1280, RFC 8200 §5) less 60, IPv6's 40-byte header
        and TCP's 20 (RFC 6691); the TCP core knows no family."""
        if ":" not in remote_ip:
            return config
        mss = max(getattr(getattr(self, "link", None), "mtu", 1500), IPV6_MIN_MTU) - 60
        return config if config.mss <= mss else dataclasses.replace(config, mss=mss)

    def _packet_too_big(self: _HostParts, msg: Icmp6) -> None:
        """RFC 8201 §4: the connection whose segment was too big sends smaller ones,
        never for an MTU below IPv6's minimum (1280, RFC 8200 §5)."""
        inv = msg.data  # our packet, as much of it as came back
        if len(inv) < 44 or inv[6] != 6:  # (its IPv6 header, then TCP's ports)
            return
        try:
            ip = IPv6Packet.parse(inv, allow_short=True)
        except MalformedPacket:
            return
        if ip.src != self.ip6:
            return
        key = (ip.dst, int.from_bytes(inv[42:44], "big"), int.from_bytes(inv[40:42], "big"))
        conn = self.conns.get(key)
        if conn is not None:
            conn.path_mss(max(msg.mtu, IPV6_MIN_MTU) - 60)  # IPv6 + TCP headers
            self._dirty.add(conn)

    # ------------------------------------------------------------------ ICMP echo
    def _echo_reply(self: _HostParts, eth_src: str, ip: IPv4Packet, icmp: IcmpEcho) -> None:
        reply = IcmpEcho(ICMP_ECHO_REPLY, 0, icmp.identifier, icmp.sequence, icmp.payload)
        body = reply.emit()
        hdr = IPv4Packet(self.ip, ip.src, PROTO_ICMP, identification=next(self._ip_id) & 0xFFFF)
        frame = (
            EthernetFrame(eth_src, self.mac, ETHERTYPE_IPV4).header() + hdr.header(len(body)) + body
        )
        self._transmit([frame])


def spoiled(frame: bytes) -> str | None:
    """The trace's note for an injected frame whose checksum is bad (an ``inject``'s
    ``bad_checksum``, a scapy expression's ``chksum``): its receiver drops it unread."""
    try:
        parse_frame(frame, verify=True)
    except BadChecksum:  # (a MalformedPacket: caught first)
        return "bad checksum: the receiver drops it"
    except MalformedPacket:  # not ours to judge: sent as built
        pass
    return None
