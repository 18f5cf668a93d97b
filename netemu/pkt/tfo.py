"""TCP Fast Open cookies as Linux computes them, so a script's cookie can follow its addresses.

A packetdrill script for a Fast Open server hard-codes the cookie the kernel hands out for
the script's addresses (e.g. ``TFO_COOKIE=3021b9d889017eeb`` for 192.0.2.1 -> 192.168.0.1
under the key ``a1a1a1a1-b2b2b2b2-c3c3c3c3-d4d4d4d4``). The lab uses other addresses, so a
cookie is translated the way an address is: ``translate(cookie, key, script_pair,
lab_pair)`` gives the cookie valid in the lab, and swapping the pairs gives it back.

What Linux does (net/ipv4/tcp_fastopen.c, since 5.3; the byte orders are the whole trick):

* the sysctl ``net.ipv4.tcp_fastopen_key`` reads four 32-bit hex words ``w0-w1-w2-w3``
  (optionally ``,`` and a backup key; the primary signs new cookies) and stores each word
  little-endian, so the 16 key bytes are ``le32(w0) le32(w1) le32(w2) le32(w3)``. The
  ``TCP_FASTOPEN_KEY`` socket option takes those 16 bytes as they are;
* the SipHash key is two little-endian 64-bit words of those bytes, k0 = bytes 0..7 and
  k1 = bytes 8..15 (so k0 = w1 << 32 | w0);
* the message is the SYN's source address followed by its destination address, as they
  sit in the IP header (network order): 8 bytes for IPv4, 32 for IPv6;
* the cookie is SipHash-2-4's 64-bit result stored little-endian: 8 bytes, in the order
  the option carries them and packetdrill prints them.

``CookieMap`` applies that to a run: which key signs (a listener's own, else the
sysctl's), and each cookie translated once.
"""

from __future__ import annotations

import contextlib
import ipaddress
import re
import struct
from collections.abc import Callable

__all__ = [
    "COOKIE_LEN",
    "KEY_LEN",
    "CookieMap",
    "cookie",
    "key_from_sysctl",
    "siphash24",
    "translate",
]

KEY_LEN = 16
COOKIE_LEN = 8
_M64 = (1 << 64) - 1

# SipHash-2-4 written out here: the standard library has no keyed SipHash (hashlib offers
# none, and hash() is not keyable), and a cookie is computed once per script, off the hot path.


def _rotl(x: int, b: int) -> int:
    return ((x << b) | (x >> (64 - b))) & _M64


def _sipround(v0: int, v1: int, v2: int, v3: int) -> tuple[int, int, int, int]:
    v0 = (v0 + v1) & _M64
    v1 = _rotl(v1, 13) ^ v0
    v0 = _rotl(v0, 32)
    v2 = (v2 + v3) & _M64
    v3 = _rotl(v3, 16) ^ v2
    v0 = (v0 + v3) & _M64
    v3 = _rotl(v3, 21) ^ v0
    v2 = (v2 + v1) & _M64
    v1 = _rotl(v1, 17) ^ v2
    v2 = _rotl(v2, 32)
    return v0, v1, v2, v3


def siphash24(key: bytes, data: bytes) -> int:
    """SipHash-2-4 of ``data`` under the 16-byte ``key``, as the 64-bit integer the paper
    defines (its little-endian bytes are the paper's output bytes)."""
    if len(key) != KEY_LEN:
        raise ValueError(f"a SipHash key is {KEY_LEN} bytes, not {len(key)}")
    k0, k1 = struct.unpack("<QQ", key)
    v0 = k0 ^ 0x736F6D6570736575
    v1 = k1 ^ 0x646F72616E646F6D
    v2 = k0 ^ 0x6C7967656E657261
    v3 = k1 ^ 0x7465646279746573
    # Whole 8-byte words, then the tail zero-padded with the length's low byte on top.
    full = len(data) - len(data) % 8
    words = [int.from_bytes(data[i : i + 8], "little") for i in range(0, full, 8)]
    words.append(int.from_bytes(data[full:], "little") | ((len(data) & 0xFF) << 56))
    for m in words:
        v3 ^= m
        v0, v1, v2, v3 = _sipround(v0, v1, v2, v3)
        v0, v1, v2, v3 = _sipround(v0, v1, v2, v3)
        v0 ^= m
    v2 ^= 0xFF
    for _ in range(4):
        v0, v1, v2, v3 = _sipround(v0, v1, v2, v3)
    return v0 ^ v1 ^ v2 ^ v3


_WORD = re.compile(r"\s*(?:0[xX])?([0-9a-fA-F]{1,8})\s*")


def key_from_sysctl(text: str) -> bytes:
    """The 16 key bytes the kernel keeps for ``net.ipv4.tcp_fastopen_key`` set to ``text``.

    ``text`` is ``w0-w1-w2-w3`` (hex words of up to 32 bits, as the kernel's
    ``%x-%x-%x-%x``), optionally followed by ``,`` and a backup key, which does not sign
    new cookies and is only checked for form here. Raises ``ValueError`` otherwise."""
    keys = text.strip().split(",")
    if len(keys) > 2:
        raise ValueError(f"tcp_fastopen_key holds a primary and at most one backup key: {text!r}")
    parsed = []
    for one in keys:
        parts = one.split("-")
        matches = [_WORD.fullmatch(p) for p in parts]
        if len(parts) != 4 or not all(matches):
            raise ValueError(f"not a tcp_fastopen_key (four hex words w0-w1-w2-w3): {one!r}")
        parsed.append(struct.pack("<4I", *(int(m.group(1), 16) for m in matches if m)))
    return parsed[0]


def _key_bytes(key: str | bytes) -> bytes:
    if isinstance(key, str):
        return key_from_sysctl(key)
    key = bytes(key)
    if len(key) != KEY_LEN:
        raise ValueError(f"a raw Fast Open key is {KEY_LEN} bytes, not {len(key)}")
    return key


def _packed(addr: str) -> tuple[int, bytes]:
    ip = ipaddress.ip_address(addr.strip("[]") if isinstance(addr, str) else addr)
    # An IPv4-mapped address names an IPv4 SYN (a dual-stack listener gets those as IPv4).
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    return ip.version, ip.packed


def cookie(key: str | bytes, saddr: str, daddr: str) -> bytes:
    """The 8-byte Fast Open cookie Linux gives a SYN from ``saddr`` to ``daddr``.

    ``key`` is the sysctl's text (``a1a1a1a1-b2b2b2b2-c3c3c3c3-d4d4d4d4``, primary key
    used) or the 16 raw bytes of ``TCP_FASTOPEN_KEY``. Addresses are IPv4 or IPv6, both of
    one family; raises ``ValueError`` on a bad key or address."""
    kb = _key_bytes(key)
    (sv, sp), (dv, dp) = _packed(saddr), _packed(daddr)
    if sv != dv:
        raise ValueError(f"addresses of two families: {saddr} -> {daddr}")
    return siphash24(kb, sp + dp).to_bytes(COOKIE_LEN, "little")


def translate(
    cookie_bytes: bytes, key: str | bytes, from_pair: tuple[str, str], to_pair: tuple[str, str]
) -> bytes | None:
    """``cookie(key, *to_pair)`` if ``cookie_bytes`` is the valid cookie for ``from_pair``
    (source, destination), else ``None`` (a deliberately bad or foreign cookie is left
    alone by the caller)."""
    if bytes(cookie_bytes) != cookie(key, *from_pair):
        return None
    return cookie(key, *to_pair)


class CookieMap:
    """A run's cookies between the script's addresses and the lab's: a cookie the kernel
    would make for the script's addresses is the one it makes for the lab's, as addresses
    are mapped. ``sysctl_key`` reads the peer's ``net.ipv4.tcp_fastopen_key`` (once);
    ``listener_key`` gives the newest open listener's ``TCP_FASTOPEN_KEY``, if the
    script set one (a listener's own key makes its cookies)."""

    def __init__(
        self,
        script: tuple[str, str],
        lab: tuple[str, str],
        sysctl_key: Callable[[], str],
        listener_key: Callable[[], bytes | None],
    ) -> None:
        self.script = script  # (remote, local): netemu's side, then the kernel's
        self.lab = lab
        self._sysctl_key = sysctl_key
        self._listener_key = listener_key
        self._key_text: str | None = None
        self._key_read = False
        self._memo: dict[tuple[bytes, bool, str | bytes | None], bytes] = {}

    def sysctl_key(self) -> str | None:
        """The peer's sysctl key; None when it cannot be read."""
        if not self._key_read:
            with contextlib.suppress(Exception):
                self._key_text = self._sysctl_key()
            self._key_read = True
        return self._key_text

    def map(self, cookie_bytes: bytes, *, to_lab: bool) -> bytes:
        """``cookie_bytes`` in the lab's addresses (``to_lab``) or back in the script's;
        a cookie that is not valid for the one side (a deliberately bad one, or no key)
        is left as it is."""
        key = self._listener_key() or self.sysctl_key()
        got = self._memo.get((cookie_bytes, to_lab, key))
        if got is None:
            got = self._memo[(cookie_bytes, to_lab, key)] = self._translate(
                cookie_bytes, key, to_lab=to_lab
            )
        return got

    def _translate(self, cookie_bytes: bytes, key: str | bytes | None, *, to_lab: bool) -> bytes:
        if key is None or len(cookie_bytes) != COOKIE_LEN:
            return cookie_bytes
        got = (
            translate(cookie_bytes, key, self.script, self.lab)
            if to_lab
            else translate(cookie_bytes, key, self.lab, self.script)
        )
        return got if got is not None else cookie_bytes
