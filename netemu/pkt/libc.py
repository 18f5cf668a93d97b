"""System calls ``socket`` cannot make as a script writes them, through libc: a NULL
buffer (the kernel answers EFAULT, or 0 for a length of 0), ``connect`` or
``sendto`` to a sockaddr that is only a family (``AF_UNSPEC``), and ``connect`` or
``bind`` with a sockaddr of another family than the socket's (an IPv4 one on an
``AF_INET6`` socket: Python refuses it before the kernel sees it).

Layer rule: the standard library only (ctypes, loaded on first use).
"""

from __future__ import annotations

import os
import struct
from typing import Any

_LIBC: Any = None


def _libc() -> Any:
    global _LIBC
    import ctypes

    if _LIBC is None:
        _LIBC = ctypes.CDLL(None, use_errno=True)
    return _LIBC


def _result(ret: int) -> int:
    """A libc call's return value, or its errno as an ``OSError``."""
    import ctypes

    if ret < 0:
        e = ctypes.get_errno()
        raise OSError(e, os.strerror(e))
    return int(ret)


def null_buffer_call(name: str, fd: int, n: int, *flags: int) -> int:
    """A call with a NULL buffer reaches the kernel as written (EFAULT, or 0 for n=0)."""
    import ctypes

    fn = getattr(_libc(), name)
    fn.restype = ctypes.c_ssize_t
    return _result(
        fn(
            ctypes.c_int(fd),
            ctypes.c_void_p(None),
            ctypes.c_size_t(n),
            *[ctypes.c_int(f) for f in flags],
        )
    )


def connect_family(fd: int, family: int) -> int:
    """``connect`` to a sockaddr that is only a family (``AF_UNSPEC``: the kernel
    disconnects the socket, as packetdrill's scripts use it)."""
    import ctypes

    addr = struct.pack("=H14x", family)
    return _result(
        _libc().connect(ctypes.c_int(fd), ctypes.c_char_p(addr), ctypes.c_uint(len(addr)))
    )


def sendto_family(fd: int, n: int, flags: int, family: int) -> int:
    """``sendto`` with a sockaddr that is only a family (packetdrill's ``AF_UNSPEC``
    argument): the kernel decides what such an address means."""
    import ctypes

    addr = struct.pack("=H14x", family)
    buf = ctypes.create_string_buffer(max(n, 1))
    fn = _libc().sendto
    fn.restype = ctypes.c_ssize_t
    return _result(
        fn(
            ctypes.c_int(fd),
            buf,
            ctypes.c_size_t(n),
            ctypes.c_int(flags),
            ctypes.c_char_p(addr),
            ctypes.c_uint(len(addr)),
        )
    )


def sockaddr_in(ip: str, port: int) -> bytes:
    """A ``struct sockaddr_in`` (IPv4) or ``sockaddr_in6`` (an address with colons)."""
    import socket

    if ":" in ip:
        return struct.pack("=H", socket.AF_INET6) + struct.pack(
            "!HI16sI", port, 0, socket.inet_pton(socket.AF_INET6, ip), 0
        )
    return struct.pack("=H", socket.AF_INET) + struct.pack("!H4s8x", port, socket.inet_aton(ip))


def addr_call(name: str, fd: int, addr: bytes) -> int:
    """``connect`` or ``bind`` (``name``) with the sockaddr bytes as written: the kernel
    judges a family that is not the socket's (EINVAL, EAFNOSUPPORT)."""
    import ctypes

    fn = getattr(_libc(), name)
    return _result(fn(ctypes.c_int(fd), ctypes.c_char_p(addr), ctypes.c_uint(len(addr))))
