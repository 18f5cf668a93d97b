"""Shared builders for the wire tests: valid records and frames, made by netemu."""

from __future__ import annotations

from netemu.wire import (
    ACK,
    ARP_REQUEST,
    ICMP_ECHO_REQUEST,
    NOP,
    PSH,
    SACK_PERMITTED,
    SYN,
    ArpPacket,
    EthernetFrame,
    Frame,
    IcmpEcho,
    IPv4Packet,
    MssOption,
    SackOption,
    TcpSegment,
    TimestampOption,
    WindowScaleOption,
    build_tcp_frame,
)

MAC_A, MAC_B = "02:00:00:00:00:01", "02:00:00:00:00:02"
IP_A, IP_B = "198.18.0.1", "198.18.0.2"


def tcp_frame(
    options: tuple = (NOP, NOP, TimestampOption(1, 2)),
    payload: bytes = b"hello",
    flags: int = ACK | PSH,
    ip_options: bytes = b"",
    padding: bytes = b"",
) -> bytes:
    ip = IPv4Packet(IP_A, IP_B, 6, identification=7, options=ip_options)
    seg = TcpSegment(40000, 8080, 1000, 2000, flags, 65535, payload, options, padding=padding)
    return build_tcp_frame(MAC_A, MAC_B, ip, seg)


def syn_frame() -> bytes:
    return tcp_frame(
        (MssOption(1460), SACK_PERMITTED, TimestampOption(5, 0), NOP, WindowScaleOption(7)),
        b"",
        SYN,
    )


def sack_frame() -> bytes:
    return tcp_frame(
        (NOP, NOP, TimestampOption(9, 8), NOP, NOP, SackOption(((10, 20), (30, 40)))), b""
    )


def arp_frame() -> bytes:
    arp = ArpPacket(ARP_REQUEST, MAC_A, IP_A, "00:00:00:00:00:00", IP_B)
    return Frame(
        EthernetFrame("ff:ff:ff:ff:ff:ff", MAC_A, 0x0806), arp=arp, trailer=bytes(18)
    ).emit()


def icmp_frame() -> bytes:
    ip = IPv4Packet(IP_A, IP_B, 1, identification=9)
    echo = IcmpEcho(ICMP_ECHO_REQUEST, 0, 0x1234, 7, b"ping-payload")
    return Frame(EthernetFrame(MAC_B, MAC_A, 0x0800), ip=ip, icmp=echo).emit()


def valid_frames() -> list[bytes]:
    """One of each kind the codec decodes, as seeds for mutation."""
    return [
        tcp_frame(),
        syn_frame(),
        sack_frame(),
        tcp_frame((), b"x" * 33),
        tcp_frame(ip_options=b"\x01\x01\x01\x00"),
        tcp_frame(payload=b"odd"),
        tcp_frame((MssOption(536), NOP, NOP, NOP), padding=b"") + bytes(10),  # Ethernet trailer
        arp_frame(),
        icmp_frame(),
    ]
