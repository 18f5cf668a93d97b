"""Shared checks for the lab tests: is anything of a run left on this machine?"""

from __future__ import annotations

import os
import socket
import subprocess
import time
from collections.abc import Iterable

from netemu.lab import registry


def pid_alive(pid: int) -> bool:
    """Running (a zombie counts as gone: PID 1 in a container may never reap it)."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            stat = f.read()
    except FileNotFoundError:
        return False
    return stat[stat.rindex(")") + 2] not in "ZX"


def netns_holders(inodes: Iterable[int]) -> list[str]:
    """Every process/thread in, and every fd on, one of these namespaces."""
    wanted = {f"net:[{i}]" for i in inodes}
    found = []
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            tasks = os.listdir(f"/proc/{pid}/task")
        except OSError:
            continue
        for tid in tasks:
            try:
                if os.readlink(f"/proc/{pid}/task/{tid}/ns/net") in wanted:
                    found.append(f"pid {pid} task {tid}")
            except OSError:
                pass
        try:
            fds = os.listdir(f"/proc/{pid}/fd")
        except OSError:
            continue
        for fd in fds:
            try:
                if os.readlink(f"/proc/{pid}/fd/{fd}") in wanted:
                    found.append(f"pid {pid} fd {fd}")
            except OSError:
                pass
    return found


def leftovers(runid: str, inodes: Iterable[int] = (), pids: Iterable[int] = ()) -> list[str]:
    out = []
    if os.path.exists(registry.lock_path(runid)):
        out.append(f"lock file {registry.lock_path(runid)}")
    out += [f"netns name {n}" for n in registry.netns_names() if f"-{runid}-" in n]
    out += [f"host link {n}" for _, n in socket.if_nameindex() if runid in n]
    out += [f"process {p} alive" for p in pids if pid_alive(p)]
    out += [f"namespace held by {h}" for h in netns_holders(inodes)]
    out += [f"tagged process {p}" for p in registry.tagged_processes([runid]) if pid_alive(p)]
    return out


def wait_no_leftovers(
    runid: str, inodes: Iterable[int] = (), pids: Iterable[int] = (), timeout: float = 3.0
) -> list[str]:
    inodes, pids = list(inodes), list(pids)
    deadline = time.monotonic() + timeout
    while True:
        left = leftovers(runid, inodes, pids)
        if not left or time.monotonic() > deadline:
            return left
        time.sleep(0.02)


def in_ns(lab_ns_fd: int, *argv: str) -> str:
    """Run a command (ip, ethtool, sysctl) inside a lab namespace, as an oracle."""
    return subprocess.run(
        ["nsenter", f"--net=/proc/{os.getpid()}/fd/{lab_ns_fd}", *argv],
        check=True,
        capture_output=True,
        text=True,
    ).stdout
