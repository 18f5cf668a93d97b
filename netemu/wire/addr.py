"""Address conversions, interned: a lab sees a handful of addresses, and
converting them afresh on every packet would cost more than the rest of a parse.

Each table is a dict whose ``__missing__`` converts and remembers, so the hot
path is one C-level subscript (``_MAC_STR[raw]``) and the public functions are
the tables' bound ``__getitem__``. IPv4 addresses travel as 32-bit ints on the
hot path: ``struct`` unpacks them that way, and the checksum wants them so.
"""

from __future__ import annotations

import socket
from collections.abc import Callable, Hashable
from typing import TypeVar

_LIMIT = 4096
_K = TypeVar("_K", bound=Hashable)
_V = TypeVar("_V")


class _Interned(dict[_K, _V]):
    """key -> convert(key), computed once; cleared when it grows past ``_LIMIT``."""

    __slots__ = ("_convert",)

    def __init__(self, convert: Callable[[_K], _V]) -> None:
        super().__init__()
        self._convert = convert

    def __missing__(self, key: _K) -> _V:
        value = self._convert(key)  # raises on a bad key: nothing is stored
        if len(self) >= _LIMIT:
            self.clear()
        self[key] = value
        return value


def _mac_from_str(mac: str) -> bytes:
    b = bytes.fromhex(mac.replace(":", ""))
    if len(b) != 6:
        raise ValueError(f"not a MAC address: {mac!r}")
    return b


def _mac_to_str(raw: bytes) -> str:
    if len(raw) != 6:
        raise ValueError(f"not a MAC address: {raw!r}")
    return raw.hex(":")


_MAC_STR: _Interned[bytes, str] = _Interned(_mac_to_str)  # 6 raw bytes -> "aa:bb:cc:dd:ee:ff"
_MAC_RAW: _Interned[str, bytes] = _Interned(_mac_from_str)  # "aa:bb:cc:dd:ee:ff" -> 6 raw bytes
_IP_STR: _Interned[int, str] = _Interned(
    lambda v: socket.inet_ntoa(v.to_bytes(4, "big"))
)  # int -> dotted quad


def _ip_pair(raw: bytes) -> tuple[str, str, int]:
    src, dst = int.from_bytes(raw[:4], "big"), int.from_bytes(raw[4:], "big")
    return _IP_STR[src], _IP_STR[dst], src + dst


# The 8 address bytes of an IPv4 header -> (source, destination, a word sum of the
# two, for the checksums): one lookup a frame.
_IP_PAIR: _Interned[bytes, tuple[str, str, int]] = _Interned(_ip_pair)
_IP_INT: _Interned[str, int] = _Interned(
    lambda s: int.from_bytes(socket.inet_aton(s), "big")
)  # dotted quad -> int


def _addr_int(ip: str) -> int:
    if ":" in ip:
        return int.from_bytes(socket.inet_pton(socket.AF_INET6, ip), "big")
    return int.from_bytes(socket.inet_aton(ip), "big")


# An address of either family -> its bytes as one integer: congruent (mod 0xFFFF) to
# the word sum of its 16-bit words, which is all a pseudo-header needs of it (IPv4,
# RFC 9293 §3.1; IPv6, RFC 8200 §8.1): the checksums of both families add it alike.
_ADDR_SUM: _Interned[str, int] = _Interned(_addr_int)


def _ip6_pair(raw: bytes) -> tuple[str, str, int]:
    src, dst = raw[:16], raw[16:]
    return (
        socket.inet_ntop(socket.AF_INET6, src),
        socket.inet_ntop(socket.AF_INET6, dst),
        int.from_bytes(src, "big") + int.from_bytes(dst, "big"),
    )


# The 32 address bytes of an IPv6 header -> (source, destination, their word sum).
_IP6_PAIR: _Interned[bytes, tuple[str, str, int]] = _Interned(_ip6_pair)

mac_to_str: Callable[[bytes], str] = _MAC_STR.__getitem__
mac_to_bytes: Callable[[str], bytes] = _MAC_RAW.__getitem__
ip_from_int: Callable[[int], str] = _IP_STR.__getitem__
ip_to_int: Callable[[str], int] = _IP_INT.__getitem__


def ip_to_str(raw: bytes) -> str:
    """Dotted quad of 4 raw bytes."""
    if len(raw) != 4:
        raise ValueError(f"not an IPv4 address: {raw!r}")
    return _IP_STR[int.from_bytes(raw, "big")]


def ip_to_bytes(ip: str) -> bytes:
    """4 raw bytes of a dotted quad."""
    return _IP_INT[ip].to_bytes(4, "big")
