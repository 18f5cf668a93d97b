"""The values a script's system calls are written in: Linux's symbols (``SYMBOLS``,
packetdrill's symbols_linux.c), the calls netemu makes (``CALLS``, ``ARITY``,
``FD_CALLS``), and ``value``, which turns a parsed expression into a call argument.

Layer rule: the standard library and ``pkt.model`` only; used by the loader's checks,
the runner and ``live`` (the real calls).
"""

from __future__ import annotations

import errno as _errno
from typing import Any

from .model import Expr

# Linux values of the symbols scripts use (packetdrill's symbols_linux.c has the same).
SYMBOLS: dict[str, int] = {
    "AF_UNSPEC": 0,
    "AF_INET": 2,
    "PF_INET": 2,
    "AF_INET6": 10,
    "PF_INET6": 10,
    "SOCK_STREAM": 1,
    "SOCK_DGRAM": 2,
    "SOCK_RAW": 3,
    "IPPROTO_IP": 0,
    "IPPROTO_TCP": 6,
    "IPPROTO_UDP": 17,
    "IPPROTO_IPV6": 41,
    "IPPROTO_ICMP": 1,
    "IPPROTO_ICMPV6": 58,
    "SOCK_NONBLOCK": 0o4000,
    "SOCK_CLOEXEC": 0o2000000,
    "SOL_SOCKET": 1,
    "SOL_TCP": 6,
    "SOL_IP": 0,
    "SOL_IPV6": 41,
    "SOL_UDP": 17,
    "O_RDONLY": 0,
    "O_WRONLY": 1,
    "O_RDWR": 2,
    "O_CREAT": 0o100,
    "O_TRUNC": 0o1000,
    "O_APPEND": 0o2000,
    "O_NONBLOCK": 0o4000,
    "O_NDELAY": 0o4000,
    "O_CLOEXEC": 0o2000000,
    "F_DUPFD": 0,
    "F_GETFD": 1,
    "F_SETFD": 2,
    "F_GETFL": 3,
    "F_SETFL": 4,
    "FD_CLOEXEC": 1,
    "SHUT_RD": 0,
    "SHUT_WR": 1,
    "SHUT_RDWR": 2,
    "MSG_OOB": 0x1,
    "MSG_PEEK": 0x2,
    "MSG_DONTROUTE": 0x4,
    "MSG_CTRUNC": 0x8,
    "MSG_TRUNC": 0x20,
    "MSG_DONTWAIT": 0x40,
    "MSG_EOR": 0x80,
    "MSG_WAITALL": 0x100,
    "MSG_ERRQUEUE": 0x2000,
    "MSG_NOSIGNAL": 0x4000,
    "MSG_MORE": 0x8000,
    "MSG_FASTOPEN": 0x20000000,
    "MSG_ZEROCOPY": 0x4000000,
    "MSG_CMSG_CLOEXEC": 0x40000000,
    "MSG_SPLICE_PAGES": 0x8000000,
    "POLLIN": 0x1,
    "POLLPRI": 0x2,
    "POLLOUT": 0x4,
    "POLLERR": 0x8,
    "POLLHUP": 0x10,
    "POLLNVAL": 0x20,
    "POLLRDNORM": 0x40,
    "POLLRDBAND": 0x80,
    "POLLWRNORM": 0x100,
    "POLLWRBAND": 0x200,
    "POLLMSG": 0x400,
    "POLLRDHUP": 0x2000,
    "EPOLLIN": 0x1,
    "EPOLLPRI": 0x2,
    "EPOLLOUT": 0x4,
    "EPOLLERR": 0x8,
    "EPOLLHUP": 0x10,
    "EPOLLRDNORM": 0x40,
    "EPOLLRDBAND": 0x80,
    "EPOLLWRNORM": 0x100,
    "EPOLLWRBAND": 0x200,
    "EPOLLMSG": 0x400,
    "EPOLLRDHUP": 0x2000,
    "EPOLLEXCLUSIVE": 1 << 28,
    "EPOLLWAKEUP": 1 << 29,
    "EPOLLONESHOT": 1 << 30,
    "EPOLLET": 1 << 31,
    "EPOLL_CTL_ADD": 1,
    "EPOLL_CTL_DEL": 2,
    "EPOLL_CTL_MOD": 3,
    "EPOLL_CLOEXEC": 0o2000000,
    "SPLICE_F_MOVE": 1,
    "SPLICE_F_NONBLOCK": 2,
    "SPLICE_F_MORE": 4,
    "SPLICE_F_GIFT": 8,
    # SOL_SOCKET options
    "SO_DEBUG": 1,
    "SO_REUSEADDR": 2,
    "SO_TYPE": 3,
    "SO_ERROR": 4,
    "SO_DONTROUTE": 5,
    "SO_BROADCAST": 6,
    "SO_SNDBUF": 7,
    "SO_RCVBUF": 8,
    "SO_KEEPALIVE": 9,
    "SO_OOBINLINE": 10,
    "SO_NO_CHECK": 11,
    "SO_PRIORITY": 12,
    "SO_LINGER": 13,
    "SO_BSDCOMPAT": 14,
    "SO_REUSEPORT": 15,
    "SO_PASSCRED": 16,
    "SO_PEERCRED": 17,
    "SO_RCVLOWAT": 18,
    "SO_SNDLOWAT": 19,
    "SO_RCVTIMEO": 20,
    "SO_SNDTIMEO": 21,
    "SO_BINDTODEVICE": 25,
    "SO_ATTACH_FILTER": 26,
    "SO_TIMESTAMP": 29,
    "SO_ACCEPTCONN": 30,
    "SO_SNDBUFFORCE": 32,
    "SO_RCVBUFFORCE": 33,
    "SO_PASSSEC": 34,
    "SO_TIMESTAMPNS": 35,
    "SO_MARK": 36,
    "SO_TIMESTAMPING": 37,
    "SO_PROTOCOL": 38,
    "SO_DOMAIN": 39,
    "SO_RXQ_OVFL": 40,
    "SO_PEEK_OFF": 42,
    "SO_BUSY_POLL": 46,
    "SO_MAX_PACING_RATE": 47,
    "SO_INCOMING_CPU": 49,
    "SO_ZEROCOPY": 60,
    "SO_TXTIME": 61,
    "SCM_RIGHTS": 1,
    "SCM_TIMESTAMP": 29,
    "SCM_TIMESTAMPNS": 35,
    "SCM_TIMESTAMPING": 37,
    "SCM_TSTAMP_SND": 0,
    "SCM_TSTAMP_SCHED": 1,
    "SCM_TSTAMP_ACK": 2,
    "SOF_TIMESTAMPING_TX_HARDWARE": 1 << 0,
    "SOF_TIMESTAMPING_TX_SOFTWARE": 1 << 1,
    "SOF_TIMESTAMPING_RX_HARDWARE": 1 << 2,
    "SOF_TIMESTAMPING_RX_SOFTWARE": 1 << 3,
    "SOF_TIMESTAMPING_SOFTWARE": 1 << 4,
    "SOF_TIMESTAMPING_SYS_HARDWARE": 1 << 5,
    "SOF_TIMESTAMPING_RAW_HARDWARE": 1 << 6,
    "SOF_TIMESTAMPING_OPT_ID": 1 << 7,
    "SOF_TIMESTAMPING_TX_SCHED": 1 << 8,
    "SOF_TIMESTAMPING_TX_ACK": 1 << 9,
    "SOF_TIMESTAMPING_OPT_CMSG": 1 << 10,
    "SOF_TIMESTAMPING_OPT_TSONLY": 1 << 11,
    "SOF_TIMESTAMPING_OPT_STATS": 1 << 12,
    "SOF_TIMESTAMPING_OPT_PKTINFO": 1 << 13,
    "SOF_TIMESTAMPING_OPT_TX_SWHW": 1 << 14,
    "SO_EE_ORIGIN_NONE": 0,
    "SO_EE_ORIGIN_LOCAL": 1,
    "SO_EE_ORIGIN_ICMP": 2,
    "SO_EE_ORIGIN_ICMP6": 3,
    "SO_EE_ORIGIN_TXSTATUS": 4,
    "SO_EE_ORIGIN_ZEROCOPY": 5,
    "SO_EE_ORIGIN_TIMESTAMPING": 4,
    "SO_EE_CODE_ZEROCOPY_COPIED": 1,
    # IPPROTO_IP / IPV6 options
    "IP_TOS": 1,
    "IP_TTL": 2,
    "IP_HDRINCL": 3,
    "IP_OPTIONS": 4,
    "IP_RECVERR": 11,
    "IP_MTU_DISCOVER": 10,
    "IP_MTU": 14,
    "IP_FREEBIND": 15,
    "IP_TRANSPARENT": 19,
    "IP_BIND_ADDRESS_NO_PORT": 24,
    "IP_PMTUDISC_DONT": 0,
    "IP_PMTUDISC_WANT": 1,
    "IP_PMTUDISC_DO": 2,
    "IP_PMTUDISC_PROBE": 3,
    "IPV6_RECVERR": 25,
    "IPV6_TCLASS": 67,
    "IPV6_MTU_DISCOVER": 23,
    "IPV6_V6ONLY": 26,
    "IPV6_MTU": 24,
    "IPV6_HOPLIMIT": 52,
    # IPPROTO_TCP options
    "TCP_NODELAY": 1,
    "TCP_MAXSEG": 2,
    "TCP_CORK": 3,
    "TCP_KEEPIDLE": 4,
    "TCP_KEEPINTVL": 5,
    "TCP_KEEPCNT": 6,
    "TCP_SYNCNT": 7,
    "TCP_LINGER2": 8,
    "TCP_DEFER_ACCEPT": 9,
    "TCP_WINDOW_CLAMP": 10,
    "TCP_INFO": 11,
    "TCP_QUICKACK": 12,
    "TCP_CONGESTION": 13,
    "TCP_MD5SIG": 14,
    "TCP_THIN_LINEAR_TIMEOUTS": 16,
    "TCP_THIN_DUPACK": 17,
    "TCP_USER_TIMEOUT": 18,
    "TCP_REPAIR": 19,
    "TCP_REPAIR_QUEUE": 20,
    "TCP_QUEUE_SEQ": 21,
    "TCP_REPAIR_OPTIONS": 22,
    "TCP_FASTOPEN": 23,
    "TCP_TIMESTAMP": 24,
    "TCP_NOTSENT_LOWAT": 25,
    "TCP_CC_INFO": 26,
    "TCP_SAVE_SYN": 27,
    "TCP_SAVED_SYN": 28,
    "TCP_REPAIR_WINDOW": 29,
    "TCP_FASTOPEN_CONNECT": 30,
    "TCP_ULP": 31,
    "TCP_MD5SIG_EXT": 32,
    "TCP_FASTOPEN_KEY": 33,
    "TCP_FASTOPEN_NO_COOKIE": 34,
    "TCP_ZEROCOPY_RECEIVE": 35,
    "TCP_INQ": 36,
    "TCP_CM_INQ": 36,
    "TCP_TX_DELAY": 37,
    # ioctls
    "SIOCINQ": 0x541B,
    "FIONREAD": 0x541B,
    "SIOCOUTQ": 0x5411,
    "TIOCOUTQ": 0x5411,
    "SIOCOUTQNSD": 0x894B,
    "FIONBIO": 0x5421,
    "SIOCATMARK": 0x8905,
    # tcp_info's constants (packetdrill's, for %{ }% and getsockopt)
    "TCPI_OPT_TIMESTAMPS": 1,
    "TCPI_OPT_SACK": 2,
    "TCPI_OPT_WSCALE": 4,
    "TCPI_OPT_ECN": 8,
    "TCPI_OPT_ECN_SEEN": 16,
    "TCPI_OPT_SYN_DATA": 32,
    "TCPI_OPT_USEC_TS": 64,
    "TCP_ESTABLISHED": 1,
    "TCP_SYN_SENT": 2,
    "TCP_SYN_RECV": 3,
    "TCP_FIN_WAIT1": 4,
    "TCP_FIN_WAIT2": 5,
    "TCP_TIME_WAIT": 6,
    "TCP_CLOSE": 7,
    "TCP_CLOSE_WAIT": 8,
    "TCP_LAST_ACK": 9,
    "TCP_LISTEN": 10,
    "TCP_CLOSING": 11,
    "TCP_NEW_SYN_RECV": 12,
    "TCP_CA_Open": 0,
    "TCP_CA_Disorder": 1,
    "TCP_CA_CWR": 2,
    "TCP_CA_Recovery": 3,
    "TCP_CA_Loss": 4,
    "TCP_INFINITE_SSTHRESH": 0x7FFFFFFF,
}
for _name in dir(_errno):
    if _name.startswith("E") and isinstance(getattr(_errno, _name), int):
        SYMBOLS.setdefault(_name, getattr(_errno, _name))

# System calls netemu makes (packetdrill's full list but its PSP calls and cap_set).
CALLS = (
    "socket",
    "bind",
    "listen",
    "accept",
    "connect",
    "read",
    "readv",
    "recv",
    "recvfrom",
    "recvmsg",
    "write",
    "writev",
    "send",
    "sendto",
    "sendmsg",
    "fcntl",
    "ioctl",
    "close",
    "shutdown",
    "getsockopt",
    "setsockopt",
    "poll",
    "open",
    "sendfile",
    "epoll_create",
    "epoll_ctl",
    "epoll_wait",
    "pipe",
    "splice",
)
# How many arguments each call takes (packetdrill checks them: "expected N args").
ARITY: dict[str, tuple[int, ...]] = {
    "socket": (3,),
    "bind": (3,),
    "listen": (2,),
    "accept": (3,),
    "connect": (3,),
    "read": (3,),
    "readv": (3,),
    "recv": (4,),
    "recvfrom": (6,),
    "recvmsg": (3,),
    "write": (3,),
    "writev": (3,),
    "send": (4,),
    "sendto": (6,),
    "sendmsg": (3,),
    "fcntl": (2, 3),
    "ioctl": (3,),
    "close": (1,),
    "shutdown": (2,),
    "getsockopt": (5,),
    "setsockopt": (5,),
    "poll": (3,),
    "open": (2, 3),
    "sendfile": (4,),
    "epoll_create": (1,),
    "epoll_ctl": (4,),
    "epoll_wait": (4,),
    "pipe": (1,),
    "splice": (6,),
}
# Calls whose result is a new file descriptor (packetdrill's CHECK_FD).
FD_CALLS = ("socket", "accept", "open", "epoll_create")

_BIG = 1 << 64


class ScriptValueError(Exception):
    """An argument the script wrote that cannot be turned into a system call argument."""

    def __init__(self, message: str, expr: Expr | None = None) -> None:
        super().__init__(message)
        self.expr = expr


def value(e: Expr) -> Any:
    """A script expression's value: int, bytes (strings), list, dict (structs), None
    (``NULL``), ``...`` (Ellipsis)."""
    k = e.kind
    if k == "int":
        return int(e.value)
    if k == "ellipsis":
        return ...
    if k == "null":
        return None
    if k == "word":
        if e.value in SYMBOLS:
            return SYMBOLS[e.value]
        if e.value == "NULL":
            return None
        raise ScriptValueError(f"unknown symbol {e.value!r}", e)
    if k == "string":
        return e.value.encode("latin-1", "replace")
    if k == "or":
        v = 0
        for item in e.value:
            x = value(item)
            if not isinstance(x, int):
                raise ScriptValueError(f"'|' of a non-integer: {item.text()}", item)
            v |= x
        return v
    if k == "assign":  # name=value outside braces: the value
        return value(e.value[1])
    if k == "list":
        return [value(x) for x in e.value]
    if k == "struct":
        return {key: value(x) for key, x in e.value.items()}
    if k == "call":
        name, args = e.value
        vals = [value(a) for a in args]
        if name == "htons" and len(vals) == 1:
            return int(vals[0]) & 0xFFFF
        if name == "htonl" and len(vals) == 1:
            return int(vals[0]) & 0xFFFFFFFF
        if name in ("inet_addr", "inet6_addr") and len(vals) == 1:
            return vals[0].decode() if isinstance(vals[0], bytes) else vals[0]
        raise ScriptValueError(f"unknown function {name}()", e)
    raise ScriptValueError(f"cannot use {e.text()!r} here", e)


def check_symbols(e: Expr) -> None:
    """Raise ``ScriptValueError`` for an unknown symbol anywhere in ``e`` (load time)."""
    k = e.kind
    if k == "word" and e.value not in SYMBOLS and e.value != "NULL":
        raise ScriptValueError(f"unknown symbol {e.value!r}", e)
    if k in ("list", "or"):
        for x in e.value:
            check_symbols(x)
    elif k == "assign":
        check_symbols(e.value[1])
    elif k == "struct":
        for x in e.value.values():
            check_symbols(x)
    elif k == "call":
        for x in e.value[1]:
            check_symbols(x)


def errno_name(n: int) -> str:
    return _errno.errorcode.get(n, str(n))


def flag_names(mask: int, prefix: str) -> str:
    names = []
    rest = mask
    for name, bit in SYMBOLS.items():
        if name.startswith(prefix) and bit and bit & (bit - 1) == 0 and rest & bit:
            names.append(name)
            rest &= ~bit
    if rest:
        names.append(hex(rest))
    return "|".join(names) or "0"
