"""netemu.wire: bytes ⇄ records. Knows bytes, not state.

Parsing raises only ``MalformedPacket`` (``BadChecksum`` is one); a TCP option of
bad length does not: it ends the segment's option list as a ``MalformedOption``, as
Linux stops reading options there and keeps the segment. Emitting takes valid records
and produces exact bytes.

Layer rule: the bottom layer. It imports nothing of netemu's and does no I/O (no file,
no socket, no clock): its generated decoders are compiled in memory at import.
"""

from .arp import ARP_REPLY, ARP_REQUEST, ArpPacket
from .checksum import internet_checksum, pseudo_header_sum
from .errors import BadChecksum, MalformedPacket
from .ethernet import (
    BROADCAST,
    ETHERTYPE_ARP,
    ETHERTYPE_IPV4,
    ETHERTYPE_IPV6,
    EthernetFrame,
    mac_to_bytes,
    mac_to_str,
)
from .frame import Frame, FrameHead6, build_tcp_frame, parse_frame
from .icmp import ICMP_ECHO_REPLY, ICMP_ECHO_REQUEST, IcmpEcho
from .icmp6 import (
    ICMP6_DEST_UNREACHABLE,
    ICMP6_ECHO_REPLY,
    ICMP6_ECHO_REQUEST,
    ICMP6_PACKET_TOO_BIG,
    ND_NEIGHBOR_ADVERTISEMENT,
    ND_NEIGHBOR_SOLICITATION,
    Icmp6,
)
from .ipv4 import FLAG_DF, FLAG_MF, PROTO_ICMP, PROTO_TCP, IPv4Packet
from .ipv6 import IPv6Fragment, IPv6Packet, ipv6_to_str
from .seq import seq_add, seq_diff, seq_ge, seq_gt, seq_in_window, seq_le, seq_lt, seq_max, seq_min
from .tcp import (
    ACK,
    CWR,
    ECE,
    EOL,
    FIN,
    NOP,
    NS,
    PSH,
    RST,
    SACK_PERMITTED,
    SYN,
    URG,
    EolOption,
    MalformedOption,
    MssOption,
    NopOption,
    RawOption,
    SackOption,
    SackPermittedOption,
    TcpFlags,
    TcpOption,
    TcpSegment,
    TimestampOption,
    WindowScaleOption,
    flags_str,
)

__all__ = [
    "ACK",
    "ARP_REPLY",
    "ARP_REQUEST",
    "BROADCAST",
    "CWR",
    "ECE",
    "EOL",
    "ETHERTYPE_ARP",
    "ETHERTYPE_IPV4",
    "ETHERTYPE_IPV6",
    "FIN",
    "FLAG_DF",
    "FLAG_MF",
    "ICMP6_DEST_UNREACHABLE",
    "ICMP6_ECHO_REPLY",
    "ICMP6_ECHO_REQUEST",
    "ICMP6_PACKET_TOO_BIG",
    "ICMP_ECHO_REPLY",
    "ICMP_ECHO_REQUEST",
    "ND_NEIGHBOR_ADVERTISEMENT",
    "ND_NEIGHBOR_SOLICITATION",
    "NOP",
    "NS",
    "PROTO_ICMP",
    "PROTO_TCP",
    "PSH",
    "RST",
    "SACK_PERMITTED",
    "SYN",
    "URG",
    "ArpPacket",
    "BadChecksum",
    "EolOption",
    "EthernetFrame",
    "Frame",
    "FrameHead6",
    "IPv4Packet",
    "IPv6Fragment",
    "IPv6Packet",
    "Icmp6",
    "IcmpEcho",
    "MalformedOption",
    "MalformedPacket",
    "MssOption",
    "NopOption",
    "RawOption",
    "SackOption",
    "SackPermittedOption",
    "TcpFlags",
    "TcpOption",
    "TcpSegment",
    "TimestampOption",
    "WindowScaleOption",
    "build_tcp_frame",
    "flags_str",
    "internet_checksum",
    "ipv6_to_str",
    "mac_to_bytes",
    "mac_to_str",
    "parse_frame",
    "pseudo_header_sum",
    "seq_add",
    "seq_diff",
    "seq_ge",
    "seq_gt",
    "seq_in_window",
    "seq_le",
    "seq_lt",
    "seq_max",
    "seq_min",
]
