"""A lab in a child process, ended by SIGINT, SIGTERM or SIGKILL: nothing may remain
(after `netemu lab clean` for SIGKILL)."""

from __future__ import annotations

import ctypes
import json
import signal
import subprocess
import sys
import time
from typing import Any

import pytest
from lab_helpers import leftovers, pid_alive, wait_no_leftovers

from netemu.lab import registry

pytestmark = pytest.mark.root

CHILD = r"""
import json, signal, subprocess, sys, time
signal.signal(signal.SIGINT, signal.default_int_handler)  # even if our parent ignores it
from netemu.lab import Lab
with Lab(keep=sys.argv[1] == "keep") as lab:
    agent = lab.start_agent()
    agent.listen(9000)
    # Two grandchildren: one keeps our environment tag, one clears its environment.
    sh = lab.spawn(["sh", "-c", "sleep 60 & echo $!; env -i sleep 61 & echo $!; wait"],
                   stdout=subprocess.PIPE)
    grandchild = int(sh.popen.stdout.readline())
    untagged = int(sh.popen.stdout.readline())
    # $! is known at fork: wait until both have become sleep (the environment a
    # process shows is its own only after exec; during exec it is unreadable).
    for pid in (grandchild, untagged):
        while not open(f"/proc/{pid}/cmdline", "rb").read().startswith(b"sleep"):
            time.sleep(0.005)
    print(json.dumps({
        "runid": lab.runid, "inodes": [lab.emu_ns.inode, lab.peer_ns.inode],
        "children": [agent.pid, sh.pid], "grandchild": grandchild, "untagged": untagged,
        "names": sorted(lab.netns_names.values()),
    }), flush=True)
    while True:
        time.sleep(0.05)
"""


def _term_with_parent() -> None:
    """In the child: SIGTERM (a clean teardown) if this test process dies first."""
    ctypes.CDLL(None).prctl(1, signal.SIGTERM, 0, 0, 0)  # PR_SET_PDEATHSIG


def start_child(keep: bool = False) -> tuple[subprocess.Popen[bytes], dict[str, Any]]:
    p = subprocess.Popen(
        [sys.executable, "-c", CHILD, "keep" if keep else "-"],
        stdout=subprocess.PIPE,
        start_new_session=True,
        preexec_fn=_term_with_parent,
    )
    try:
        line = p.stdout.readline()  # type: ignore[union-attr]
        assert line, "the child failed to start its lab"
        info = json.loads(line)
        assert all(pid_alive(pid) for pid in all_pids(info))
        left = leftovers(info["runid"])
        assert f"lock file {registry.lock_path(info['runid'])}" in left
        assert {f"netns name {n}" for n in info["names"]} <= set(left)
        assert {f"tagged process {pid}" for pid in [*info["children"], info["grandchild"]]} <= set(
            left
        )
    except BaseException:
        stop_child(p)
        raise
    return p, info


def stop_child(p: subprocess.Popen[bytes]) -> None:
    """The test's own safety net: never leave the child (and its lab) running."""
    if p.poll() is None:
        p.terminate()  # SIGTERM: the lab tears down
        try:
            p.wait(5)
        except subprocess.TimeoutExpired:
            p.kill()
            p.wait()


def all_pids(info: dict[str, Any]) -> list[int]:
    return [*info["children"], info["grandchild"], info["untagged"]]


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM])
def test_interrupt_or_terminate_tears_down(sig: int) -> None:
    p, info = start_child()
    try:
        p.send_signal(sig)
        rc = p.wait(10)
        assert rc in (-sig, 128 + sig, 1)  # KeyboardInterrupt / SystemExit(128+sig)
        assert wait_no_leftovers(info["runid"], info["inodes"], all_pids(info)) == []
    finally:
        stop_child(p)


@pytest.mark.parametrize("keep", [False, True], ids=["fd-only", "kept-names"])
def test_sigkill_then_clean(keep: bool, clean_serial: None) -> None:
    p, info = start_child(keep)
    p.kill()
    p.wait(5)
    try:
        check_sigkill_then_clean(p, info, keep)
    finally:  # if a check failed, still leave nothing of this run
        registry.clean()


def check_sigkill_then_clean(p: subprocess.Popen[bytes], info: dict[str, Any], keep: bool) -> None:
    rid = info["runid"]
    # PDEATHSIG took the children; the grandchildren (death signals are not inherited
    # across fork) survive, re-parented, and hold the peer namespace.
    deadline = time.monotonic() + 3
    while any(pid_alive(c) for c in info["children"]) and time.monotonic() < deadline:
        time.sleep(0.02)
    assert not any(pid_alive(c) for c in info["children"])
    assert pid_alive(info["grandchild"]) and pid_alive(info["untagged"])
    run = next(r for r in registry.list_runs() if r.runid == rid)
    assert not run.live  # the lock died with its holder
    if keep:
        assert set(info["names"]) <= set(registry.netns_names())
    actions = registry.clean()
    mine = [a for a in actions if rid in a]
    assert f"kill pid {info['grandchild']} (tagged NETEMU_RUN={rid})" in mine
    assert f"kill pid {info['untagged']} (in dead run {rid}'s namespace)" in mine
    assert f"remove lock of dead run {rid} (pid {p.pid})" in mine
    assert wait_no_leftovers(rid, info["inodes"], all_pids(info)) == []
    # A second clean finds nothing of this run.
    assert not [a for a in registry.clean() if rid in a]


def test_clean_from_another_run_dir_leaves_a_live_run_alone(tmp_path, clean_serial: None) -> None:
    # A live run whose lock lives in a directory this cleaner does not look in (another
    # NETEMU_RUN_DIR): its processes and kept names must survive `netemu lab clean`
    # (issue 17, 1: they were taken for a dead run's, and killed).
    import os

    run_a, run_b = tmp_path / "a", tmp_path / "b"
    env = {**os.environ, "NETEMU_RUN_DIR": str(run_a)}
    p = subprocess.Popen(
        [sys.executable, "-c", CHILD, "keep"],
        stdout=subprocess.PIPE,
        start_new_session=True,
        preexec_fn=_term_with_parent,
        env=env,
    )
    try:
        line = p.stdout.readline()  # type: ignore[union-attr]
        assert line, "the child failed to start its lab"
        info = json.loads(line)
        actions = registry.clean(str(run_b))
        assert not [a for a in actions if info["runid"] in a], actions
        assert all(pid_alive(pid) for pid in all_pids(info))
        assert set(info["names"]) <= set(registry.netns_names())
    finally:
        stop_child(p)
        registry.clean(str(run_a))  # a kept lab keeps its names after the run: its own dir
    assert wait_no_leftovers(info["runid"], info["inodes"], all_pids(info)) == []
