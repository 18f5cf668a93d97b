"""A script packet's fields as they are on the wire and back: TCP options, ECN codepoints,
ICMP types and codes.

Both directions use these: an inbound packet's options are built from them
(``inbound``), an outbound one's are compared and printed with them (``match``). Script
space and live space differ for SACK blocks (they move with the acknowledged side's
sequence offset) and for Fast Open cookies (they follow the addresses, ``tfo``).
packetdrill's names: ``nop``, ``eol``, ``mss``, ``wscale``, ``sackOK``, ``sack``,
``TS``, ``FO`` (kind 34), ``FOEXP`` (kind 254, magic 0xf989), ``md5`` (19) and ``ECN``
(AccECN, 172 and 174). Imports the wire codec's option types only.
"""

from __future__ import annotations

import struct
from collections.abc import Iterable

from ..wire.tcp import (
    EolOption,
    MalformedOption,
    MssOption,
    NopOption,
    RawOption,
    SackOption,
    SackPermittedOption,
    TcpOption,
    TimestampOption,
    WindowScaleOption,
)
from .model import TcpOptionSpec
from .state import MASK, Conn, EventFailed
from .tfo import CookieMap

ECN_BITS = {"noecn": 0, "ect1": 1, "ect0": 2, "ce": 3, "ect01": 2}
_ICMP_TYPES = {
    "echo_reply": 0,
    "unreachable": 3,
    "source_quench": 4,
    "redirect": 5,
    "echo_request": 8,
    "time_exceeded": 11,
    "parameter_problem": 12,
    "timestamp_request": 13,
    "timestamp_reply": 14,
    "information_request": 15,
    "information_reply": 16,
    "address_mask_request": 17,
    "address_mask_reply": 18,
}
_ICMP_UNREACH_CODES = {
    "net_unreachable": 0,
    "host_unreachable": 1,
    "protocol_unreachable": 2,
    "port_unreachable": 3,
    "frag_needed": 4,
    "source_route_failed": 5,
    "net_unknown": 6,
    "host_unknown": 7,
    "source_host_isolated": 8,
    "net_prohibited": 9,
    "host_prohibited": 10,
    "net_unreachable_for_tos": 11,
    "host_unreachable_for_tos": 12,
    "packet_filtered": 13,
    "precedence_violation": 14,
    "precedence_cutoff": 15,
}
# ICMPv6 (RFC 4443), packetdrill's names (icmp_packet.c, icmpv6_types): a v6 run's ICMP
# lines use these; each type's codes by its own table.
_ICMP6_TYPES = {
    "unreachable": 1,
    "packet_too_big": 2,
    "time_exceeded": 3,
    "parameter_problem": 4,
    "echo_request": 128,
    "echo_reply": 129,
}
_ICMP6_CODES: dict[str, dict[str, int]] = {
    "unreachable": {
        "no_route": 0,
        "admin_prohibited": 1,
        "not_neighbour": 2,
        "address_unreachable": 3,
        "port_unreachable": 4,
    },
    "time_exceeded": {"exceeded_hop_limit": 0, "exceeded_frag_time": 1},
    "parameter_problem": {"header_field": 0, "unknown_next_header": 1, "unknown_option": 2},
}
_OPT_NAMES: dict[type, str] = {
    NopOption: "nop",
    EolOption: "eol",
    MssOption: "mss",
    WindowScaleOption: "wscale",
    SackPermittedOption: "sackOK",
    SackOption: "sack",
    TimestampOption: "TS",
}


def _numbered(word: str, what: str) -> int | None:
    """``type_3`` / ``code_4`` / a plain number: packetdrill's numeric spellings."""
    w = word[len(what) + 1 :] if word.startswith(what + "_") else word
    return int(w) if w.isdigit() else None


def icmp_type(word: str, six: bool = False) -> int | None:
    """An ICMP type (ICMPv6's with ``six``) by packetdrill's name or number; None:
    unknown."""
    return (_ICMP6_TYPES if six else _ICMP_TYPES).get(word, _numbered(word, "type"))


def icmp_code(word: str, type_word: str = "", six: bool = False) -> int | None:
    """An ICMP code by packetdrill's name or number; None: unknown. IPv4: the
    "unreachable" codes; ICMPv6: the codes of ``type_word``'s own table."""
    table = _ICMP6_CODES.get(type_word, {}) if six else _ICMP_UNREACH_CODES
    return table.get(word, _numbered(word, "code"))


def script_option(
    o: TcpOptionSpec, conn: Conn, cookies: CookieMap, *, inbound: bool
) -> tuple[int, bytes | None]:
    """(kind, data) of a script option on the wire; data None: not compared."""
    k, v = o.kind, o.value
    if k == "nop":
        return 1, None
    if k == "eol":
        return 0, None
    if k == "mss":
        return 2, struct.pack("!H", v)
    if k == "wscale":
        return 3, bytes((v,))
    if k == "sackOK":
        return 4, b""
    if k == "sack":
        off = (conn.kernel_off or 0) if inbound else conn.our_off
        return 5, b"".join(struct.pack("!II", (a + off) & MASK, (b + off) & MASK) for a, b in v)
    if k == "TS":
        val, ecr = v
        return 8, struct.pack("!II", val & MASK, ecr & MASK)
    if k in ("FO", "FOEXP"):
        cookie = _cookie(o, cookies)
        data = cookie if k == "FO" else b"\xf9\x89" + cookie
        return (34 if k == "FO" else 254), data
    if k == "md5":
        if not isinstance(v, bytes):
            raise EventFailed(f"md5 option value {o.text_value!r} is not hex")
        return 19, v
    if k == "ECN":
        kind = 174 if v and v[0][0] == "e1b" else 172
        return kind, b"".join(int(n & 0xFFFFFF).to_bytes(3, "big") for _name, n in v)
    raise EventFailed(f"TCP option {k!r} is not supported by netemu yet")


def _cookie(o: TcpOptionSpec, cookies: CookieMap) -> bytes:
    """A Fast Open cookie as the script writes it, in the lab's address space."""
    v = o.value
    if v is None:
        return b""
    if not isinstance(v, bytes):
        raise EventFailed(
            f"Fast Open cookie {o.text_value or v!r} is not hex (a -D {v}=... define is missing?)"
        )
    return cookies.map(v, to_lab=True)


def option_bytes(o: TcpOption) -> tuple[int, bytes]:
    """(kind, data) of a parsed option as it was on the wire."""
    raw = o.emit()
    if raw[0] in (0, 1):
        return raw[0], b""
    return raw[0], raw[2:]


def option_name(o: TcpOption) -> str:
    """A live option's kind by packetdrill's name (``opt<N>`` for others)."""
    name = _OPT_NAMES.get(type(o))
    if name is not None:
        return name
    assert isinstance(o, RawOption | MalformedOption)
    kind, data = o.kind, o.data if isinstance(o, RawOption) else b""
    if kind == 34:
        return "FO"
    if kind == 254 and data[:2] == b"\xf9\x89":
        return "FOEXP"
    return {19: "md5", 172: "ECN", 174: "ECN"}.get(kind, f"opt{kind}")


def sack_text(blocks: Iterable[tuple[int, int]], conn: Conn) -> str:
    """A live SACK option's blocks in script space, as packetdrill prints them."""
    return "sack " + " ".join(
        f"{(a - conn.our_off) & MASK}:{(b - conn.our_off) & MASK}" for a, b in blocks
    )


def option_text(kind: int, data: bytes, conn: Conn, cookies: CookieMap) -> str:
    """A live option (of a kind with data) in script space, as the script would write
    it."""
    if kind == 34:
        return f"FO {cookies.map(data, to_lab=False).hex()}".strip()
    if kind == 254 and data[:2] == b"\xf9\x89":
        return f"FOEXP {cookies.map(data[2:], to_lab=False).hex()}".strip()
    if kind == 5:
        return sack_text(
            [struct.unpack("!II", data[i : i + 8]) for i in range(0, len(data) - 7, 8)], conn
        )
    if kind == 2 and len(data) == 2:
        return f"mss {int.from_bytes(data, 'big')}"
    if kind == 3 and len(data) == 1:
        return f"wscale {data[0]}"
    return f"opt{kind} {data.hex()}".strip()
