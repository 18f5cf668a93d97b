"""Address conversions, interned: a lab sees a handful of addresses, and
converting them afresh on every packet would cost more than the rest of a parse."""

import socket

_LIMIT = 4096
_ip_str: dict[bytes, str] = {}
_ip_raw: dict[str, bytes] = {}
_mac_str: dict[bytes, str] = {}
_mac_raw: dict[str, bytes] = {}


def ip_to_str(raw: bytes) -> str:
    s = _ip_str.get(raw)
    if s is None:
        if len(_ip_str) > _LIMIT:
            _ip_str.clear()
        s = _ip_str[bytes(raw)] = socket.inet_ntoa(raw)
    return s


def ip_to_bytes(ip: str) -> bytes:
    b = _ip_raw.get(ip)
    if b is None:
        if len(_ip_raw) > _LIMIT:
            _ip_raw.clear()
        b = _ip_raw[ip] = socket.inet_aton(ip)
    return b


def mac_to_str(raw: bytes) -> str:
    s = _mac_str.get(raw)
    if s is None:
        if len(_mac_str) > _LIMIT:
            _mac_str.clear()
        s = _mac_str[bytes(raw)] = raw.hex(":")
    return s


def mac_to_bytes(mac: str) -> bytes:
    b = _mac_raw.get(mac)
    if b is None:
        b = bytes.fromhex(mac.replace(":", ""))
        if len(b) != 6:
            raise ValueError(f"not a MAC address: {mac!r}")
        if len(_mac_raw) > _LIMIT:
            _mac_raw.clear()
        _mac_raw[mac] = b
    return b
