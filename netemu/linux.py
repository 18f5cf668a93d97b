"""Linux calls the standard library lacks, and switching a thread's network namespace.

Layer rule: a leaf. It imports nothing of netemu's, so ``netemu.lab`` (which creates
namespaces) and ``netemu.link`` (which opens its wire inside one) both use it without
importing each other.

Namespaces are per *thread* on Linux: a thread that ``setns()``-es somewhere creates
its sockets there, reads and writes that namespace's ``/proc/sys/net``, and forks
children that start there. ``in_netns`` switches the calling thread for a block;
``run_in_netns`` runs one callable in a fresh thread. Python 3.11 has no
``os.setns``: ctypes it is (``libc()`` also gives ``recvmmsg``/``sendmmsg``, ``bind``
with a raw ``sockaddr_ll``, ``mount``, ``prctl``...).
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import socket
import threading
from collections.abc import Callable, Iterator
from typing import Any, TypeVar

T = TypeVar("T")

CLONE_NEWNET = 0x40000000
SO_NETNS_COOKIE = 71  # Linux 5.14+

_libc: ctypes.CDLL | None = None


def libc() -> ctypes.CDLL:
    """The C library, loaded once, with ``errno`` kept for ``ctypes.get_errno()``."""
    global _libc
    if _libc is None:
        _libc = ctypes.CDLL(None, use_errno=True)
    return _libc


def check(ret: int, what: str) -> None:
    """Raise ``OSError`` from ``errno`` when a libc call returned non-zero."""
    if ret != 0:
        e = ctypes.get_errno()
        raise OSError(e, f"{what}: {os.strerror(e)}")


def setns(fd: int, nstype: int = CLONE_NEWNET) -> None:
    """Move the *calling thread* into the namespace behind ``fd``."""
    check(libc().setns(fd, nstype), "setns")


def unshare_net() -> None:
    """Move the calling thread into a brand-new network namespace."""
    check(libc().unshare(CLONE_NEWNET), "unshare(CLONE_NEWNET)")


def netns_cookie() -> int:
    """The calling thread's namespace cookie: unique for the boot, never reused
    (inode numbers are)."""
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as s:
        return int.from_bytes(s.getsockopt(socket.SOL_SOCKET, SO_NETNS_COOKIE, 8), "little")


def open_thread_netns() -> int:
    """A new fd on the calling thread's network namespace (the caller closes it)."""
    return os.open("/proc/thread-self/ns/net", os.O_RDONLY | os.O_CLOEXEC)


@contextlib.contextmanager
def in_netns(fd: int) -> Iterator[None]:
    """Run a block with the calling thread inside the namespace ``fd``; switch back after."""
    saved = open_thread_netns()
    try:
        setns(fd)
        try:
            yield
        finally:
            setns(saved)
    finally:
        os.close(saved)


def run_in_netns(fd: int, fn: Callable[..., T], /, *args: Any, **kwargs: Any) -> T:
    """Run ``fn(*args, **kwargs)`` in a fresh thread inside namespace ``fd``; return its
    result or raise its exception. Sockets it creates stay in that namespace."""
    box: dict[str, Any] = {}

    def target() -> None:
        try:
            setns(fd)
            box["result"] = fn(*args, **kwargs)
        except BaseException as e:
            box["error"] = e

    t = threading.Thread(target=target, name="netemu-netns-call", daemon=True)
    t.start()
    t.join()
    if "error" in box:
        raise box["error"]
    return box["result"]
