"""A script run's addresses, by its IP version (packetdrill's ``--ip_version``):

- ``ipv4``: IPv4 on the wire, ``AF_INET`` sockets;
- ``ipv6``: IPv6 on the wire (the lab's 2001:2::/64 addresses), ``AF_INET6`` sockets;
- ``ipv4-mapped-ipv6``: IPv4 on the wire, ``AF_INET6`` sockets whose addresses are the
  IPv4-mapped ones (``::ffff:198.18.0.2``, RFC 4291 §2.5.5.2), as packetdrill's
  ``live_bind_ip``/``live_connect_ip`` (config.c, finalize_ipv4_mapped_ipv6_config).

Everything else in a run asks this one object which address and family to use: the
packets (``emu``/``peer``), the system calls (``sock_family``, ``sock_local``,
``sock_remote``) and the shell commands (``wire_net``). Imports nothing of netemu's.
"""

from __future__ import annotations

import socket
from dataclasses import dataclass
from typing import Protocol

VERSIONS = ("ipv4", "ipv6", "ipv4-mapped-ipv6")


class LabLike(Protocol):
    emu_ip: str
    peer_ip: str
    emu_ip6: str | None
    peer_ip6: str | None


@dataclass(frozen=True)
class RunAddresses:
    """``emu``/``peer``: netemu's and the kernel's addresses on the wire."""

    version: str
    emu: str
    peer: str

    @classmethod
    def for_lab(cls, lab: LabLike, version: str) -> RunAddresses:
        if version not in VERSIONS:
            raise ValueError(f"unknown IP version {version!r} (one of {', '.join(VERSIONS)})")
        if version == "ipv6":
            if lab.emu_ip6 is None or lab.peer_ip6 is None:
                raise ValueError("an IPv6 run needs a lab with IPv6 (Lab(ipv6=True))")
            return cls(version, lab.emu_ip6, lab.peer_ip6)
        return cls(version, lab.emu_ip, lab.peer_ip)

    @property
    def six(self) -> bool:
        """IPv6 on the wire."""
        return self.version == "ipv6"

    @property
    def sock_family(self) -> int:
        """The family of the script's sockets (``socket(..., ...)``'s domain)."""
        return socket.AF_INET if self.version == "ipv4" else socket.AF_INET6

    def sock(self, wire_ip: str) -> str:
        """A wire address as the script's sockets see it."""
        return "::ffff:" + wire_ip if self.version == "ipv4-mapped-ipv6" else wire_ip

    @property
    def sock_local(self) -> str:
        """The kernel's own address, as its sockets see it."""
        return self.sock(self.peer)

    @property
    def sock_remote(self) -> str:
        """netemu's address, as the kernel's sockets see it."""
        return self.sock(self.emu)

    @property
    def host_prefix(self) -> str:
        """netemu's address as a host route's destination (``ip route add``)."""
        return f"{self.emu}/128" if self.six else f"{self.emu}/32"
