"""Just enough rtnetlink (and one ethtool ioctl) to build a lab, with ``struct``.

Importing pyroute2 costs ~240 ms here (its package ``__init__`` pulls in
everything, so no submodule import is cheaper); a lab needs five messages. A
socket of this class talks to the namespace it was *created* in: create it in the
namespace's thread.
"""

from __future__ import annotations

import ctypes
import fcntl
import itertools
import os
import socket
import struct

NLMSG_HDR = struct.Struct("=IHHII")
NLMSG_ERROR = 2
NLMSG_DONE = 3
NLM_F_REQUEST = 0x1
NLM_F_ACK = 0x4
NLM_F_EXCL = 0x200
NLM_F_CREATE = 0x400

RTM_NEWLINK = 16
RTM_DELLINK = 17
RTM_NEWADDR = 20

IFINFOMSG = struct.Struct("=BxHiII")  # family, type, index, flags, change
IFADDRMSG = struct.Struct("=BBBBi")  # family, prefixlen, flags, scope, index
IFLA_ADDRESS = 1
IFLA_IFNAME = 3
IFLA_MTU = 4
IFLA_LINKINFO = 18
IFLA_NET_NS_FD = 28
IFLA_INFO_KIND = 1
IFLA_INFO_DATA = 2
VETH_INFO_PEER = 1
IFA_ADDRESS = 1
IFA_LOCAL = 2
IFA_BROADCAST = 4
IFA_F_NODAD = 0x02
IFF_UP = 0x1

SIOCETHTOOL = 0x8946
ETHTOOL_GTXCSUM = 0x16
ETHTOOL_STXCSUM = 0x17

_seq = itertools.count(1)


def _attr(kind: int, payload: bytes) -> bytes:
    n = 4 + len(payload)
    return struct.pack("=HH", n, kind) + payload + b"\0" * (-n & 3)


def _name(name: str) -> bytes:
    raw = name.encode()
    if not 0 < len(raw) < 16:
        raise ValueError(f"interface name {name!r} must have 1..15 bytes")
    return raw + b"\0"


class Rtnl:
    """A NETLINK_ROUTE socket in the calling thread's namespace."""

    def __init__(self) -> None:
        self.sock = socket.socket(
            socket.AF_NETLINK, socket.SOCK_RAW | socket.SOCK_CLOEXEC, socket.NETLINK_ROUTE
        )
        self.sock.bind((0, 0))

    def close(self) -> None:
        self.sock.close()

    def __enter__(self) -> Rtnl:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def request(self, msg_type: int, flags: int, body: bytes) -> None:
        """Send one request and wait for its ACK; a netlink error becomes OSError."""
        seq = next(_seq)
        self.sock.send(
            NLMSG_HDR.pack(16 + len(body), msg_type, flags | NLM_F_REQUEST | NLM_F_ACK, seq, 0)
            + body
        )
        while True:
            data = self.sock.recv(65536)
            off = 0
            while off + 16 <= len(data):
                length, kind, _, rseq, _ = NLMSG_HDR.unpack_from(data, off)
                if rseq == seq and kind == NLMSG_ERROR:
                    (err,) = struct.unpack_from("=i", data, off + 16)
                    if err:
                        raise OSError(-err, f"rtnetlink: {os.strerror(-err)}")
                    return
                off += (length + 3) & ~3

    def add_veth(
        self,
        name: str,
        mac: str,
        peer_name: str,
        peer_mac: str,
        peer_netns_fd: int,
        *,
        mtu: int = 1500,
        up: bool = True,
        ifindexes: tuple[int, int] = (0, 0),
    ) -> None:
        """Create a veth pair: ``name`` here (up if ``up``), ``peer_name`` directly inside
        ``peer_netns_fd`` (no move between namespaces), down: the kernel refuses to open
        the peer end before the pair is joined (ENOTCONN), so bring it up from its own
        namespace after. ``ifindexes``: the two ends' indexes (0, 0: the kernel's pick;
        it takes the peer's only with this end's)."""
        flags = IFF_UP if up else 0
        peer = (
            IFINFOMSG.pack(socket.AF_UNSPEC, 0, ifindexes[1], 0, 0)
            + _attr(IFLA_IFNAME, _name(peer_name))
            + _attr(IFLA_ADDRESS, bytes.fromhex(peer_mac.replace(":", "")))
            + _attr(IFLA_MTU, struct.pack("=I", mtu))
            + _attr(IFLA_NET_NS_FD, struct.pack("=I", peer_netns_fd))
        )
        linkinfo = _attr(IFLA_INFO_KIND, b"veth\0") + _attr(
            IFLA_INFO_DATA, _attr(VETH_INFO_PEER, peer)
        )
        body = (
            IFINFOMSG.pack(socket.AF_UNSPEC, 0, ifindexes[0], flags, 0)
            + _attr(IFLA_IFNAME, _name(name))
            + _attr(IFLA_ADDRESS, bytes.fromhex(mac.replace(":", "")))
            + _attr(IFLA_MTU, struct.pack("=I", mtu))
            + _attr(IFLA_LINKINFO, linkinfo)
        )
        self.request(RTM_NEWLINK, NLM_F_CREATE | NLM_F_EXCL, body)

    def set_up(self, ifindex: int, up: bool = True) -> None:
        self.request(
            RTM_NEWLINK,
            0,
            IFINFOMSG.pack(socket.AF_UNSPEC, 0, ifindex, IFF_UP if up else 0, IFF_UP),
        )

    def add_ipv4(self, ifindex: int, ip: str, prefixlen: int) -> None:
        raw = socket.inet_aton(ip)
        host_bits = (1 << (32 - prefixlen)) - 1
        bcast = struct.pack("!I", struct.unpack("!I", raw)[0] | host_bits)
        body = (
            IFADDRMSG.pack(socket.AF_INET, prefixlen, 0, 0, ifindex)
            + _attr(IFA_LOCAL, raw)
            + _attr(IFA_ADDRESS, raw)
            + _attr(IFA_BROADCAST, bcast)
        )
        self.request(RTM_NEWADDR, NLM_F_CREATE | NLM_F_EXCL, body)

    def add_ipv6(self, ifindex: int, ip: str, prefixlen: int) -> None:
        """``ip/prefixlen`` on ``ifindex``, usable at once (IFA_F_NODAD: no duplicate
        address detection, so no solicitation goes out and no wait)."""
        raw = socket.inet_pton(socket.AF_INET6, ip)
        body = IFADDRMSG.pack(socket.AF_INET6, prefixlen, IFA_F_NODAD, 0, ifindex) + _attr(
            IFA_ADDRESS, raw
        )
        self.request(RTM_NEWADDR, NLM_F_CREATE | NLM_F_EXCL, body)

    def del_link(self, ifindex: int) -> None:
        self.request(RTM_DELLINK, 0, IFINFOMSG.pack(socket.AF_UNSPEC, 0, ifindex, 0, 0))


def _ethtool_value(ifname: str, cmd: int, data: int = 0) -> int:
    """One SIOCETHTOOL ``struct ethtool_value`` call, on a socket in the calling thread's
    namespace."""
    value = (ctypes.c_uint32 * 2)(cmd, data)
    ifreq = struct.pack("16sP16x", ifname.encode(), ctypes.addressof(value))
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        fcntl.ioctl(s.fileno(), SIOCETHTOOL, ifreq)
    return value[1]


def set_tx_checksum(ifname: str, on: bool) -> None:
    """``ethtool -K IFNAME tx on|off``: with tx checksumming off the kernel also drops
    TSO, so a raw reader on the other end sees finished checksums and MTU-sized frames."""
    _ethtool_value(ifname, ETHTOOL_STXCSUM, 1 if on else 0)


def get_tx_checksum(ifname: str) -> bool:
    return bool(_ethtool_value(ifname, ETHTOOL_GTXCSUM))


__all__ = ["Rtnl", "get_tx_checksum", "set_tx_checksum"]
