"""Network namespaces held by file descriptor, and worker threads parked inside them;
sysctls and ``ip netns`` names.

A namespace here is never named by default: a thread calls ``unshare(CLONE_NEWNET)``,
we open ``/proc/thread-self/ns/net`` and from then on only that fd (and the
thread) hold it. When the process dies, even by SIGKILL, the kernel frees it.

``NsThread`` is a long-lived worker thread parked in one namespace. Switching a thread
(``setns``, ``in_netns``, ``run_in_netns``) lives in the leaf ``netemu.linux``, which
``netemu.link`` uses too.
"""

from __future__ import annotations

import contextlib
import ctypes
import errno
import ipaddress
import os
import queue
import threading
from collections.abc import Callable
from concurrent.futures import Future
from typing import Any, TypeVar

from ..linux import check, libc, netns_cookie, open_thread_netns, setns, unshare_net

T = TypeVar("T")

MS_BIND = 4096
MNT_DETACH = 2
NETNS_RUN_DIR = "/run/netns"


def write_sysctl(name: str, value: object) -> None:
    """Write a sysctl in the calling thread's network namespace (``net.`` ones follow
    the thread). ``name`` is dotted (``net.ipv4.tcp_fin_timeout``) or a /proc/sys path."""
    path = name if name.startswith("/") else "/proc/sys/" + name.replace(".", "/")
    with open(path, "w") as f:
        f.write(str(value))


def read_sysctl(name: str) -> str:
    path = name if name.startswith("/") else "/proc/sys/" + name.replace(".", "/")
    with open(path) as f:
        return f.read().strip()


def disable_ipv6() -> None:
    try:
        write_sysctl("net.ipv6.conf.all.disable_ipv6", 1)
        write_sysctl("net.ipv6.conf.default.disable_ipv6", 1)
    except FileNotFoundError:  # a kernel without IPv6 (ipv6.disable=1): quiet already
        pass


# IPv6 on, and quiet (before any interface but lo exists, so "default" covers the
# veth): no link-local address (addr_gen_mode 1), so no router solicitation and no
# MLD report for a link-local's groups; no duplicate address detection. What is left
# (MLD reports for the address's solicited-node group) goes out as the address
# arrives, while the lab comes up (docs/lab.md).
QUIET_IPV6 = {
    "net.ipv6.conf.default.addr_gen_mode": 1,
    "net.ipv6.conf.default.accept_dad": 0,
    "net.ipv6.conf.default.dad_transmits": 0,
    "net.ipv6.conf.default.router_solicitations": 0,
    "net.ipv6.conf.default.accept_ra": 0,
    "net.ipv6.conf.all.accept_ra": 0,
    # The MLD reports an address's solicited-node group takes (mld_qrv of them, 2) at
    # once, not spread over a second: the lab waits them out (MLD_SETTLE).
    "net.ipv6.conf.default.mldv1_unsolicited_report_interval": 0,
    "net.ipv6.conf.default.mldv2_unsolicited_report_interval": 0,
}
MLD_SETTLE = 0.05  # s: the reports are out well within this (measured: 10-25 ms)


LAB_NET6 = ipaddress.ip_network("2001:2::/48")  # RFC 5180's benchmarking range
PREFIXLEN6 = 64


def lab_ip6(emu_ip6: str, peer_ip6: str) -> tuple[str, str]:
    """A lab's two IPv6 addresses, checked (in LAB_NET6, distinct) and in compact
    text (RFC 5952, as the wire's parser writes them)."""
    emu, peer = ipaddress.ip_address(emu_ip6), ipaddress.ip_address(peer_ip6)
    for ip in (emu, peer):
        if ip not in LAB_NET6:
            raise ValueError(f"lab IPv6 addresses must be in {LAB_NET6} (got {ip})")
    if emu == peer:
        raise ValueError("emu_ip6 and peer_ip6 must differ")
    return str(emu), str(peer)


def quiet_ipv6() -> None:
    """The peer namespace of an IPv6 lab: IPv6 on, quiet (``QUIET_IPV6``)."""
    for name, value in QUIET_IPV6.items():
        write_sysctl(name, value)


def bind_name(fd: int, name: str) -> str:
    """Give a namespace an ``ip netns`` name (a bind mount under /run/netns)."""
    os.makedirs(NETNS_RUN_DIR, exist_ok=True)
    path = os.path.join(NETNS_RUN_DIR, name)
    os.close(os.open(path, os.O_RDONLY | os.O_CREAT | os.O_EXCL, 0o444))
    src = f"/proc/{os.getpid()}/fd/{fd}".encode()
    try:
        check(libc().mount(src, path.encode(), None, MS_BIND, None), f"bind mount {path}")
    except OSError:
        os.unlink(path)
        raise
    return path


def unbind_name(path: str) -> None:
    """Undo ``bind_name`` (also for names a dead run left)."""
    if libc().umount2(path.encode(), MNT_DETACH) != 0:
        e = ctypes.get_errno()
        if e not in (errno.EINVAL, errno.ENOENT):  # EINVAL: not a mount point
            raise OSError(e, f"umount {path}: {os.strerror(e)}")
    with contextlib.suppress(FileNotFoundError):
        os.unlink(path)


class NsThread:
    """A worker thread parked in one network namespace, running submitted callables.

    ``NsThread(create=True)`` makes a new namespace; ``NsThread(fd=...)`` joins one.
    Processes forked from this thread start in its namespace; their
    ``PR_SET_PDEATHSIG`` fires when *this thread* exits, so the thread lives as long
    as the lab does.
    """

    def __init__(
        self,
        name: str,
        *,
        create: bool = False,
        fd: int | None = None,
        setup: Callable[[], None] | None = None,
    ) -> None:
        if create == (fd is not None):
            raise ValueError("NsThread: give exactly one of create=True or fd=")
        self.name = name
        self._jobs: queue.SimpleQueue[tuple[Callable[[], Any], Future[Any]] | None] = (
            queue.SimpleQueue()
        )
        self._ready: Future[None] = Future()
        self._create = create
        self._join_fd = fd
        self._setup = setup
        self.fd = -1  # our own fd on the namespace (ours to close)
        self.inode = 0
        self.cookie = 0
        self._thread = threading.Thread(target=self._main, name=f"netemu-ns-{name}", daemon=True)
        self._thread.start()

    def wait_ready(self) -> NsThread:
        self._ready.result()
        return self

    def _main(self) -> None:
        try:
            if self._create:
                unshare_net()
            else:
                setns(self._join_fd)  # type: ignore[arg-type]
            self.fd = open_thread_netns()
            self.inode = os.fstat(self.fd).st_ino
            self.cookie = netns_cookie()
            if self._setup is not None:
                self._setup()
        except BaseException as e:
            self._ready.set_exception(e)
            return
        self._ready.set_result(None)
        while True:
            job = self._jobs.get()
            if job is None:
                return
            fn, fut = job
            if not fut.set_running_or_notify_cancel():
                continue
            try:
                fut.set_result(fn())
            except BaseException as e:
                fut.set_exception(e)

    @property
    def alive(self) -> bool:
        return self._thread.is_alive()

    def submit(self, fn: Callable[..., T], /, *args: Any, **kwargs: Any) -> Future[T]:
        fut: Future[T] = Future()
        if not self._thread.is_alive():
            fut.set_exception(RuntimeError(f"namespace thread {self.name} has stopped"))
            return fut
        self._jobs.put((lambda: fn(*args, **kwargs), fut))
        return fut

    def call(self, fn: Callable[..., T], /, *args: Any, **kwargs: Any) -> T:
        """Run ``fn`` in the namespace and wait for it."""
        if threading.current_thread() is self._thread:
            return fn(*args, **kwargs)
        return self.submit(fn, *args, **kwargs).result()

    def stop(self) -> None:
        """Let the thread end (after queued jobs) and close our namespace fd."""
        if self._thread.is_alive():
            self._jobs.put(None)
            if threading.current_thread() is not self._thread:
                self._thread.join()
        if self.fd >= 0:
            os.close(self.fd)
            self.fd = -1


def in_background(
    run: Callable[[Callable[[], object]], None], fns: list[Callable[[], object]]
) -> Callable[[], None]:
    """``run(fn)`` for each of ``fns``, in order, on a thread of its own (what can go on
    while the caller does something else: Lab's teardown closes its links so); returns
    what waits for it. All run here, at once, when no thread can be started
    (interpreter shutdown, Python 3.12 and later)."""

    def each() -> None:
        for fn in fns:
            run(fn)

    thread = threading.Thread(target=each, name="netemu-lab-down", daemon=True)
    try:
        thread.start()
    except RuntimeError:
        each()
        return lambda: None
    return thread.join
