"""A script's ``<`` packet as a frame on the wire, from netemu to the kernel under test.

packetdrill writes inbound packets in script space and its own addresses; here they
leave from netemu's raw connection in the lab's addresses:

- sequence numbers: netemu's are the script's plus a random ISN of our own
  (``Conn.our_off``); "packetdrill's remote ISN is the script's SYN sequence number",
  so a SYN scripted at N moves every later number by N. Acks and SACK blocks count from
  the kernel's ISN (``Conn.kernel_off``, learnt from its SYN or SYN-ACK);
- a ``TS ecr`` names one of the kernel's TS values in script space: it is mapped back to
  the live value (packetdrill's TS val map, ``live_ecr``); Fast Open cookies follow the
  addresses (``tfo.CookieMap``);
- IP fields the script gives (``[tos 0x..]``, ``[ect0]``, ``ttl``); ICMP messages quote
  the connection's segment as packetdrill's do; UDP goes with zeros as its payload;
- a TCP packet larger than the link's MTU goes as one GSO frame (``PACKET_VNET_HDR``),
  as packetdrill's tun hands it to the kernel (``--mss`` its segment size).

``build`` makes the frame before the event's time, ``send`` puts it on the wire at
that time. Imports the wire codec, the lab's addresses and the connection table.
"""

from __future__ import annotations

import random
import socket
import struct
from typing import TYPE_CHECKING, Protocol

from ..wire import TcpSegment
from ..wire.checksum import internet_checksum, mod_ffff, pseudo_header_sum
from ..wire.ethernet import ETHERTYPE_IPV4, ETHERTYPE_IPV6, eth_header
from ..wire.icmp6 import Icmp6
from ..wire.ipv4 import IPv4Packet
from ..wire.ipv6 import IPv6Packet
from ..wire.tcp import (
    ACK,
    EOL,
    NOP,
    SACK_PERMITTED,
    SYN,
    MssOption,
    RawOption,
    SackOption,
    TcpOption,
    TimestampOption,
    WindowScaleOption,
)
from .fields import ECN_BITS, icmp_code, icmp_type, script_option
from .model import PacketSpec, TcpOptionSpec
from .state import MASK, Conn, ConnTable, EventFailed, RawHost
from .tfo import CookieMap

if TYPE_CHECKING:
    from ..lab.core import Lab
    from .addrs import RunAddresses


class SendingHost(RawHost, Protocol):
    """netemu's host as the inbound side uses it: its MAC, its clock, its link."""

    mac: str

    def inject_frame(self, frame: bytes) -> None: ...

    def now(self) -> float: ...


Built = tuple[bytes, int | None]  # the frame, and its header length when it goes as GSO


class Inbound:
    """Builds and sends the script's inbound packets on the lab's link."""

    def __init__(
        self,
        lab: Lab,
        addrs: RunAddresses,
        host: SendingHost,
        conns: ConnTable,
        cookies: CookieMap,
        rng: random.Random,
        *,
        mss: int | None,
    ) -> None:
        self.lab = lab
        self.addrs = addrs
        self.ip_len = 40 if addrs.six else 20  # the IP header netemu writes
        self.host = host
        self.conns = conns
        self.cookies = cookies
        self.rng = rng
        self.mss = mss
        self._gso_sock: socket.socket | None = None

    def close(self) -> None:
        if self._gso_sock is not None:
            self._gso_sock.close()

    def send(self, built: Built) -> None:
        frame, gso_hdr = built
        if gso_hdr is not None:
            self._send_gso(frame, gso_hdr)
        else:
            self.host.inject_frame(frame)

    def build(self, pkt: PacketSpec) -> Built:
        """The script's inbound packet in the lab's address space, ready to go: TCP
        with any option, IP fields, ICMP quoting the connection's segment, UDP; one
        larger than the link's MTU goes as a GSO frame (second item: its header
        length), as packetdrill's tun takes it."""
        lab, addrs = self.lab, self.addrs
        bind_port = self.conns.bind_port
        if pkt.proto == "icmp":
            frame = self._icmp_frame(pkt)
        elif pkt.proto == "udp":
            conn = self.conns.for_inbound()
            sport, dport, n = (
                pkt.src_port or conn.emu_port,
                pkt.dst_port or bind_port,
                8 + pkt.length,
            )
            # The checksum over the pseudo-header: optional in IPv4, required in IPv6
            # (RFC 8200 §8.1: a zero one is dropped); the payload is zeros.
            s = mod_ffff(pseudo_header_sum(addrs.emu, addrs.peer, 17, n) + sport + dport + n)
            csum = (0xFFFF - s) or 0xFFFF
            udp = struct.pack("!HHHH", sport, dport, n, csum)
            frame = self._ip_frame(pkt, 17, udp + bytes(pkt.length))
        else:
            conn = self.conns.for_inbound()
            seg = self._segment(pkt, conn)
            tcp = seg.emit(addrs.emu, addrs.peer)
            frame = self._ip_frame(pkt, 6, tcp)
            if len(frame) - 14 > lab.mtu:
                return frame, 14 + self.ip_len + (len(tcp) - len(seg.payload))
        if len(frame) - 14 > lab.mtu:
            raise EventFailed(
                f"a {len(frame) - 14}-byte {pkt.proto} packet is larger than "
                f"the link's MTU ({lab.mtu}); only TCP goes as GSO"
            )
        return frame, None

    def _segment(self, pkt: PacketSpec, conn: Conn) -> TcpSegment:
        if pkt.flags & SYN:
            # packetdrill's remote ISN is the script's SYN sequence number: later
            # sequence numbers (and the kernel's acks) count from it, as tcpdump's.
            if conn.syn_off is None:
                conn.syn_off = conn.our_off
                conn.our_off = (conn.our_off + pkt.start) & MASK
            seq = (pkt.start + conn.syn_off) & MASK
        else:
            seq = (pkt.start + conn.our_off) & MASK
        k_off = conn.kernel_off or 0
        ack = (pkt.ack + k_off) & MASK if pkt.ack is not None else 0
        opts = tuple(self._option(o, conn, pkt) for o in pkt.options or ())
        return TcpSegment(
            pkt.src_port or conn.emu_port,
            pkt.dst_port or conn.kernel_port or self.conns.bind_port,
            seq,
            ack,
            pkt.flags,
            65535 if pkt.win is None else pkt.win,
            bytes(pkt.length),
            opts,
            urgent=pkt.urg or 0,
        )

    def _ip_frame(self, pkt: PacketSpec, proto: int, payload: bytes) -> bytes:
        """``payload`` in an IP header from netemu to the kernel: the script's TOS (IPv6:
        traffic class), ECN codepoint, TTL (hop limit) and IPv6 flow label."""
        tos, ttl, flow = 0, 64, 0
        ip = pkt.ip
        if ip is not None:
            if ip.tos is not None:
                tos = ip.tos
            if ip.ecn is not None:
                tos = (tos & ~3) | ECN_BITS[ip.ecn]
            if ip.ttl is not None:
                ttl = ip.ttl
            flow = ip.flowlabel or 0
        a = self.addrs
        mac = eth_header(
            self.lab.peer_mac, self.host.mac, ETHERTYPE_IPV6 if a.six else ETHERTYPE_IPV4
        )
        if a.six:
            hdr6 = IPv6Packet(
                a.emu, a.peer, proto, hop_limit=ttl, traffic_class=tos, flow_label=flow
            )
            return mac + hdr6.header(len(payload)) + payload
        hdr = IPv4Packet(
            a.emu, a.peer, proto, tos=tos, ttl=ttl, identification=self.rng.getrandbits(16)
        ).header(len(payload))
        return mac + hdr + payload

    def _icmp_frame(self, pkt: PacketSpec) -> bytes:
        """packetdrill's ICMP (ICMPv6 over IPv6: icmp_packet.c): the message quotes an IP
        header and the first 8 bytes of the TCP header of a segment the kernel sent on
        the connection under test (ports, and the sequence number the script gives, in
        the kernel's space)."""
        ic = pkt.icmp
        assert ic is not None
        a = self.addrs
        itype = icmp_type(ic.type, a.six)
        if itype is None:
            raise EventFailed(f"unknown {'ICMPv6' if a.six else 'ICMP'} type {ic.type!r}")
        code = 0
        if ic.code is not None:
            named = icmp_code(ic.code, ic.type, a.six)
            if named is None:
                raise EventFailed(
                    f"unknown {'ICMPv6' if a.six else 'ICMP'} code {ic.code!r} for "
                    f"{ic.type!r} (a -D {ic.code}=... define is missing?)"
                )
            code = named
        if a.six:  # packet too big: a 32-bit MTU (RFC 4443 §3.2)
            rest = struct.pack("!I", ic.mtu or 0)
        else:  # fragmentation needed: a 16-bit next-hop MTU (RFC 1191)
            rest = struct.pack("!HH", 0, ic.mtu or 0) if ic.mtu is not None else bytes(4)
        quoted = b""
        if ic.echoed in ("tcp", None):  # nothing bracketed: packetdrill quotes [0:0(0)]
            conn = self.conns.for_inbound()
            seq = ((ic.start or 0) + (conn.kernel_off or 0)) & MASK
            quoted = self._quoted_ip(6, 20 + (ic.length or 0)) + struct.pack(
                "!HHI", conn.kernel_port or self.conns.bind_port, conn.emu_port, seq
            )
        elif ic.echoed == "udp":
            quoted = self._quoted_ip(17, 8 + (ic.length or 0)) + bytes(8)
        body = rest + quoted
        if ic.echoed == "raw":  # packetdrill: no quote, the message padded to N bytes
            body = body.ljust(max(0, (ic.length or 0) - 4), b"\0")
        if a.six:
            return self._ip_frame(pkt, 58, Icmp6(itype, code, body).emit(a.emu, a.peer))
        msg = bytes((itype, code)) + b"\0\0" + body
        msg = msg[:2] + struct.pack("!H", internet_checksum(msg)) + msg[4:]
        return self._ip_frame(pkt, 1, msg)

    def _quoted_ip(self, proto: int, length: int) -> bytes:
        """The IP header an ICMP message quotes: the kernel's packet to netemu, with the
        zero TTL (hop limit) packetdrill writes."""
        a = self.addrs
        if a.six:
            return IPv6Packet(a.peer, a.emu, proto, hop_limit=0).header(length)
        return IPv4Packet(a.peer, a.emu, proto, ttl=0, flags=0).header(length)

    def _send_gso(self, frame: bytes, hdr_len: int) -> None:
        """One TCP frame longer than the MTU, as a GSO frame (``PACKET_VNET_HDR``): the
        peer's kernel takes it as one large segment, as from packetdrill's tun."""
        if self._gso_sock is None:
            self._gso_sock = self.lab.run_in_emu(_open_gso_socket, self.lab.emu_ifindex)
        start = 14 + self.ip_len  # the TCP header
        mss = self.mss or (self.lab.mtu - self.ip_len - 20)
        # virtio_net_hdr: flags NEEDS_CSUM, gso_type TCPV4 (1) or TCPV6 (4), hdr_len,
        # gso_size, csum_start (the TCP header), csum_offset (its checksum field).
        vnet = struct.pack("=BBHHHH", 1, 4 if self.addrs.six else 1, hdr_len, mss, start, 16)
        # NEEDS_CSUM: the checksum field holds the pseudo-header's sum, not inverted.
        tcp_len = len(frame) - start
        partial = mod_ffff(pseudo_header_sum(self.addrs.emu, self.addrs.peer, 6, tcp_len))
        frame = frame[: start + 16] + struct.pack("!H", partial) + frame[start + 18 :]
        self._gso_sock.send(vnet + frame)
        self.host.trace.frame("out", frame, "injected", t=self.host.now())

    def _option(self, o: TcpOptionSpec, conn: Conn, pkt: PacketSpec) -> TcpOption:
        if o.kind == "nop":
            return NOP
        if o.kind == "eol":
            return EOL
        if o.kind == "mss":
            return MssOption(o.value)
        if o.kind == "wscale":
            return WindowScaleOption(o.value)
        if o.kind == "sackOK":
            return SACK_PERMITTED
        if o.kind == "sack":
            k_off = conn.kernel_off or 0
            return SackOption(tuple(((a + k_off) & MASK, (b + k_off) & MASK) for a, b in o.value))
        if o.kind == "TS":
            val, ecr = o.value
            if pkt.flags & ACK:
                ecr = live_ecr(conn, ecr)
            return TimestampOption(val, ecr)
        kind, data = script_option(o, conn, self.cookies, inbound=True)
        return RawOption(kind, data or b"")


def live_ecr(conn: Conn, script_ecr: int) -> int:
    """packetdrill's mapping of an inbound TS ecr to the kernel's real TS value: the
    value the kernel sent where the script named it, else counted from the first one
    mapped, else the newest the kernel sent."""
    if script_ecr in conn.ts_map:
        return conn.ts_map[script_ecr]
    if conn.first_ts is not None:
        s, live = conn.first_ts
        return (script_ecr - s + live) & MASK
    if conn.last_live_ts is not None:
        return conn.last_live_ts
    return script_ecr


def _open_gso_socket(ifindex: int) -> socket.socket:
    """An AF_PACKET socket that sends frames with a ``virtio_net_hdr`` in front (protocol
    0: it receives nothing)."""
    s = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, 0)
    s.setsockopt(263, 15, 1)
    s.bind((socket.if_indextoname(ifindex), 0))
    return s
