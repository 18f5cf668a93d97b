"""Network namespaces held by file descriptor, and threads that live inside them.

A namespace here is never named by default: a thread calls ``unshare(CLONE_NEWNET)``,
we open ``/proc/thread-self/ns/net`` and from then on only that fd (and the
thread) hold it. When the process dies, even by SIGKILL, the kernel frees it.

Namespaces are per *thread* on Linux: a thread that ``setns()``-es somewhere
creates its sockets there, reads and writes that namespace's ``/proc/sys/net``,
and forks children that start there. ``NsThread`` is a long-lived worker thread
parked in one namespace; ``in_netns`` switches the calling thread for a block;
``run_in_netns`` runs one callable in a fresh thread. Python 3.11 has no
``os.setns``: ctypes it is.
"""

from __future__ import annotations

import contextlib
import ctypes
import errno
import os
import queue
import socket
import threading
from collections.abc import Callable, Iterator
from concurrent.futures import Future
from typing import Any, TypeVar

T = TypeVar("T")

CLONE_NEWNET = 0x40000000
SO_NETNS_COOKIE = 71  # Linux 5.14+
MS_BIND = 4096
MNT_DETACH = 2
NETNS_RUN_DIR = "/run/netns"

_libc: ctypes.CDLL | None = None


def libc() -> ctypes.CDLL:
    global _libc
    if _libc is None:
        _libc = ctypes.CDLL(None, use_errno=True)
    return _libc


def _check(ret: int, what: str) -> None:
    if ret != 0:
        e = ctypes.get_errno()
        raise OSError(e, f"{what}: {os.strerror(e)}")


def setns(fd: int, nstype: int = CLONE_NEWNET) -> None:
    """Move the *calling thread* into the namespace behind ``fd``."""
    _check(libc().setns(fd, nstype), "setns")


def unshare_net() -> None:
    """Move the calling thread into a brand-new network namespace."""
    _check(libc().unshare(CLONE_NEWNET), "unshare(CLONE_NEWNET)")


def thread_netns_inode() -> int:
    return os.stat("/proc/thread-self/ns/net").st_ino


def netns_cookie() -> int:
    """The calling thread's namespace cookie: unique for the boot, never reused
    (inode numbers are)."""
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as s:
        return int.from_bytes(s.getsockopt(socket.SOL_SOCKET, SO_NETNS_COOKIE, 8), "little")


def open_thread_netns() -> int:
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


def bind_name(fd: int, name: str) -> str:
    """Give a namespace an ``ip netns`` name (a bind mount under /run/netns)."""
    os.makedirs(NETNS_RUN_DIR, exist_ok=True)
    path = os.path.join(NETNS_RUN_DIR, name)
    os.close(os.open(path, os.O_RDONLY | os.O_CREAT | os.O_EXCL, 0o444))
    src = f"/proc/{os.getpid()}/fd/{fd}".encode()
    try:
        _check(libc().mount(src, path.encode(), None, MS_BIND, None), f"bind mount {path}")
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

    def __init__(self, name: str, *, create: bool = False, fd: int | None = None,
                 setup: Callable[[], None] | None = None) -> None:
        if create == (fd is not None):
            raise ValueError("NsThread: give exactly one of create=True or fd=")
        self.name = name
        self._jobs: queue.SimpleQueue[tuple[Callable[[], Any], Future[Any]] | None] = (
            queue.SimpleQueue())
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
