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
