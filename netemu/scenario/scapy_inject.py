"""``inject: {scapy: "<expression>"}``: a packet a scenario builds in scapy's language.

The expression is the scenario author's Python (checked for syntax at load, in
``scenario.segments``), evaluated here when the step runs, in netemu's own process as
root: trusted code, as a command peer is (``netemu validate`` and ``netemu run`` say
so). Its names are scapy's layers (``scapy.all``) and the connection's addresses,
ports and next sequence numbers (``Ends``, ``names``). What it builds must be an IP
packet of the connection's family (``IP(...)`` on IPv4, ``IPv6(...)`` on IPv6), or an
Ether frame carrying one, that fits the lab's MTU; IP src/dst and the Ether addresses
it leaves out are the lab's for the step's direction. ``craft`` returns
the frames; ``inbound_segment`` takes one apart for netemu's endpoint (``dir: in``).
Every failure is a ``StepFailed`` with a one-line reason.

scapy is imported here only, and only when such a step runs (``import scapy.all``
takes about half a second that no other run pays). Layer: netemu.scenario, on
netemu.wire (the Ethernet header, parsing a frame) and netemu.run (``StepFailed``).
"""

from __future__ import annotations

import functools
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, NamedTuple

from ..run.result import StepFailed
from ..wire import MalformedPacket, TcpSegment
from ..wire.ethernet import ETHERTYPE_IPV4, ETHERTYPE_IPV6, eth_header
from ..wire.frame import parse_frame

if TYPE_CHECKING:
    from scapy.packet import Packet

__all__ = ["Ends", "craft", "inbound_segment", "names"]


class Ends(NamedTuple):
    """Who sends the packet and who gets it, by default: the lab's addresses for the
    step's direction (``out``: netemu to the peer)."""

    src_ip: str
    dst_ip: str
    src_mac: str
    dst_mac: str


def names(
    emu_ip: str, peer_ip: str, emu_port: int, peer_port: int, seq: int, ack: int
) -> dict[str, object]:
    """The names an expression has besides scapy's: the connection's addresses and ports,
    and the seq and ack a segment going the step's way carries next."""
    return {
        "emu_ip": emu_ip,
        "peer_ip": peer_ip,
        "emu_port": emu_port,
        "peer_port": peer_port,
        "seq": seq,
        "ack": ack,
    }


@functools.cache
def _scapy_names() -> dict[str, Any]:
    """scapy.all's names, imported on first use."""
    import scapy.all

    return {k: v for k, v in vars(scapy.all).items() if not k.startswith("__")}


def _one_line(e: BaseException) -> str:
    text = " ".join(str(e).split())
    return f"{type(e).__name__}: {text}" if text else type(e).__name__


def _evaluate(expr: str, values: Mapping[str, object]) -> list[Packet]:
    """What the expression builds: one packet, or a list of them (``fragment(...)``)."""
    from scapy.packet import Packet
    from scapy.plist import PacketList

    scope = {**_scapy_names(), **values}
    try:
        got = eval(compile(expr, "<scapy>", "eval"), scope)  # trusted code (see above)
    except Exception as e:  # the author's code: any error is the step's failure
        raise StepFailed(f"the scapy expression failed: {_one_line(e)}") from None
    items = list(got) if isinstance(got, list | tuple | PacketList) else [got]
    for item in items:
        if not isinstance(item, Packet):
            raise StepFailed(
                f"the scapy expression built {type(item).__name__} "
                f"{_short(item)}, not a scapy packet"
            )
    if not items:
        raise StepFailed("the scapy expression built no packet (an empty list)")
    return items


def _short(value: object) -> str:
    text = " ".join(repr(value).split())
    return text if len(text) <= 60 else text[:57] + "..."


def _frame(pkt: Packet, ends: Ends, mtu: int) -> bytes:
    """``pkt``'s frame: its IP addresses (and Ether's) filled in where it gives none."""
    from scapy.layers.inet import IP
    from scapy.layers.inet6 import IPv6
    from scapy.layers.l2 import Ether

    six = ":" in ends.src_ip
    layer, name = (IPv6, "IPv6") if six else (IP, "IP")
    top = pkt if isinstance(pkt, IP | IPv6 | Ether) else None
    ip = pkt.getlayer(layer) if top is not None else None
    if ip is None:
        raise StepFailed(
            f"the scapy expression built {pkt.summary()}: no {'IPv6' if six else 'IPv4'} "
            f"layer, and this connection is {'IPv6' if six else 'IPv4'} (build {name}(...)/..., "
            f"or Ether(...)/{name}(...)/...)"
        )
    for field, value in (("src", ends.src_ip), ("dst", ends.dst_ip)):
        if field not in ip.fields:
            ip.setfieldval(field, value)
    if isinstance(pkt, Ether):
        for field, value in (("src", ends.src_mac), ("dst", ends.dst_mac)):
            if field not in pkt.fields:
                pkt.setfieldval(field, value)
    try:
        data = bytes(pkt)
    except Exception as e:  # a field value scapy cannot put in bytes
        raise StepFailed(f"scapy could not build {pkt.summary()}: {_one_line(e)}") from None
    size = len(data) - 14 if isinstance(pkt, Ether) else len(data)
    if size > mtu:
        raise StepFailed(
            f"the scapy packet is {size} bytes, more than the lab's MTU ({mtu}): {pkt.summary()}"
        )
    if isinstance(pkt, Ether):
        return data
    return eth_header(ends.dst_mac, ends.src_mac, ETHERTYPE_IPV6 if six else ETHERTYPE_IPV4) + data


def craft(expr: str, values: Mapping[str, object], ends: Ends, mtu: int) -> list[bytes]:
    """The frames the expression builds, in order (scapy imported on first use)."""
    return [_frame(pkt, ends, mtu) for pkt in _evaluate(expr, values)]


def inbound_segment(frame: bytes, emu_ip: str) -> tuple[str, TcpSegment]:
    """(source IP, segment) of a crafted frame for netemu's endpoint (``dir: in``): it
    takes one whole TCP segment addressed to it (IPv4, or IPv6 on an IPv6 connection).
    The segment keeps the checksum the expression built (a bad one is dropped, as one
    from the wire would be)."""
    try:
        parsed = parse_frame(frame, verify=False)
    except MalformedPacket as e:
        raise StepFailed(f"dir: in: the scapy packet does not parse: {e}") from None
    ip4, ip6, seg = parsed.ip, parsed.ip6, parsed.tcp
    ip = ip4 if ip4 is not None else ip6
    proto = ip4.protocol if ip4 is not None else ip6.next_header if ip6 is not None else None
    if ip is None or proto != 6 or seg is None or ip.is_fragment:
        what = (
            "not IP"
            if ip is None
            else f"IP protocol {proto}, not TCP"
            if proto != 6
            else "a fragment"
        )
        raise StepFailed(
            f"dir: in hands one whole TCP segment to netemu's endpoint; "
            f"the scapy packet is {what} (send it with dir: out)"
        )
    if ip.dst != emu_ip:
        raise StepFailed(
            f"dir: in hands the segment to netemu's endpoint ({emu_ip}); the "
            f"scapy packet goes to {ip.dst}"
        )
    return ip.src, seg
