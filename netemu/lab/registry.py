"""Per-run lock files: how ``netemu lab list`` sees live labs and ``netemu lab clean``
tells a dead run's leftovers from a live run's property.

A live run holds ``flock(LOCK_EX)`` on ``<RUN_DIR>/<runid>.lock`` for its whole
life; the file (JSON) names the run's pid, namespaces (inode + cookie, and the
``ip netns`` names if it was kept) and child processes. A lock file nobody holds
belongs to a dead (or finished, kept) run. The lock appears under its final name
only once held and written (it is written under a dot-name, then hard-linked),
so ``clean`` never mistakes a starting run for a dead one.

What a SIGKILLed run can leave, with fd-held namespaces and PDEATHSIG children:
  - its lock file (always);
  - ``/run/netns/netemu-<runid>-*`` names, if the run kept its namespaces;
  - processes that escaped PR_SET_PDEATHSIG: grandchildren of a peer (the death
    signal is not inherited across fork), or a child forked in the instant before
    its prctl. They carry ``NETEMU_RUN=<runid>`` in their environment and sit in
    the run's namespaces (keeping them alive), which is how ``clean`` finds them;
  - nothing in the host namespace: veth ends are created inside the lab namespaces.
``clean`` removes exactly these, and only for runs whose lock is free.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import re
import signal
import socket
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any

from .netns import NETNS_RUN_DIR, unbind_name

RUN_DIR = os.environ.get("NETEMU_RUN_DIR", "/run/netemu")
PREFIX = "netemu"
RUNID_RE = re.compile(r"^[0-9a-f]{6}$")
NAME_RE = re.compile(rf"^{PREFIX}-([0-9a-f]{{6}})-[a-z0-9]+$")
ENV_TAG = "NETEMU_RUN"
ENV_LOCK = "NETEMU_RUN_LOCK"  # the lock file of the run a process belongs to


def new_runid() -> str:
    return os.urandom(3).hex()


def lock_path(runid: str, run_dir: str | None = None) -> str:
    return os.path.join(run_dir or RUN_DIR, f"{runid}.lock")


class RunLock:
    """The lock a live run holds. ``acquire()`` picks a fresh runid when the drawn one is
    taken (by a live or a dead run)."""

    def __init__(self, run_dir: str | None = None) -> None:
        self.run_dir = run_dir or RUN_DIR
        self.runid = ""
        self.path = ""
        self.fd = -1
        self.info: dict[str, Any] = {}

    def acquire(self, info: dict[str, Any], runid: str | None = None) -> str:
        os.makedirs(self.run_dir, mode=0o755, exist_ok=True)
        for _ in range(100):
            rid = runid or new_runid()
            tmp = os.path.join(self.run_dir, f".{rid}.{os.getpid()}.tmp")
            fd = os.open(tmp, os.O_RDWR | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o644)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                self.info = {"runid": rid, "pid": os.getpid(), "started": time.time(), **info}
                _rewrite(fd, self.info)
                final = lock_path(rid, self.run_dir)
                try:
                    os.link(tmp, final)
                except FileExistsError:
                    os.close(fd)
                    if runid:
                        raise
                    continue
                finally:
                    os.unlink(tmp)
            except BaseException:
                with contextlib.suppress(OSError):
                    os.close(fd)
                raise
            self.runid, self.path, self.fd = rid, final, fd
            return rid
        raise RuntimeError("could not draw a free run id")

    def update(self, **info: Any) -> None:
        self.info.update(info)
        if self.fd >= 0:
            _rewrite(self.fd, self.info)

    def release(self, remove: bool = True) -> None:
        """Remove the file (unless the run keeps namespaces for inspection) and unlock."""
        if self.fd < 0:
            return
        if remove:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(self.path)
        os.close(self.fd)
        self.fd = -1


def _rewrite(fd: int, info: dict[str, Any]) -> None:
    data = json.dumps(info, sort_keys=True).encode() + b"\n"
    os.ftruncate(fd, 0)
    os.pwrite(fd, data, 0)


# --- slots: port blocks no two live labs share ---------------------------------------

# Machine-wide, whatever NETEMU_RUN_DIR says: slots keep labs of every run directory
# apart. A slot is held by flock on its file, so a SIGKILLed run frees it at once.
SLOT_DIR = os.environ.get("NETEMU_SLOT_DIR", "/run/netemu/slots")
SLOTS = 40
# Slot n's blocks; no block of one kind overlaps one of the other (a run tells its sockets
# by them): netemu's ephemeral ports 40000-50239, the peer kernels' 50240-60479.
EMU_PORTS_BASE, EMU_PORTS_BLOCK = 40000, 256
PEER_PORTS_BASE, PEER_PORTS_BLOCK = EMU_PORTS_BASE + SLOTS * EMU_PORTS_BLOCK, 256


class Slot:
    """A small number no other live lab on this machine holds. The lab's peer kernels
    take their ephemeral ports from the slot's block (``peer_ports``) and netemu's
    endpoint its own from another (``emu_ports``), so no two live labs have a socket with the
    same 4-tuple unless a scenario fixes both ports: that is what lets kernel
    tracepoints, which are global, be told apart by tuple (lab/ktrace.py)."""

    def __init__(self) -> None:
        self.number: int | None = None
        self.why = ""  # why there is none, when there is none
        self._fd = -1

    def acquire(self) -> int | None:
        """The slot taken, or None when there is none to take (``why`` says why)."""
        try:
            os.makedirs(SLOT_DIR, mode=0o755, exist_ok=True)
        except OSError as e:
            self.why = f"cannot make {SLOT_DIR}: {e.strerror}"
            return None

        def released(n: int) -> float:
            try:
                return os.stat(os.path.join(SLOT_DIR, f"{n}.lock")).st_mtime
            except OSError:
                return 0.0

        # The slot released longest ago first: a socket a SIGKILLed run left behind (an
        # orphan resending its FIN for minutes, in a namespace no one can reach) is then
        # long gone before its tuple's slot is taken again.
        for n in sorted(range(SLOTS), key=lambda n: (released(n), n)):
            try:
                fd = os.open(
                    os.path.join(SLOT_DIR, f"{n}.lock"),
                    os.O_RDWR | os.O_CREAT | os.O_CLOEXEC,
                    0o644,
                )
            except OSError as e:
                self.why = f"cannot open {SLOT_DIR}/{n}.lock: {e.strerror}"
                return None
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                os.close(fd)
                continue
            with contextlib.suppress(OSError):
                os.utime(fd)  # a run SIGKILLed with it leaves this time: a recent one
            self.number, self._fd = n, fd
            return n
        self.why = f"all {SLOTS} lab slots are held by live labs"
        return None

    @property
    def peer_ports(self) -> tuple[int, int] | None:
        if self.number is None:
            return None
        lo = PEER_PORTS_BASE + PEER_PORTS_BLOCK * self.number
        return lo, lo + PEER_PORTS_BLOCK - 1

    @property
    def emu_ports(self) -> range | None:
        """Where netemu's endpoint takes its ephemeral ports in this lab."""
        if self.number is None:
            return None
        lo = EMU_PORTS_BASE + EMU_PORTS_BLOCK * self.number
        return range(lo, lo + EMU_PORTS_BLOCK)

    def release(self) -> None:
        if self._fd >= 0:
            with contextlib.suppress(OSError):
                os.utime(self._fd)  # when it was released: the next taker's order
            os.close(self._fd)  # the file stays: unlinking it would race another taker
            self._fd = -1


# --- looking at runs ----------------------------------------------------------------


@dataclass
class RunRecord:
    runid: str
    path: str
    live: bool
    info: dict[str, Any] = field(default_factory=dict)

    @property
    def pid(self) -> int | None:
        return self.info.get("pid")

    @property
    def kept(self) -> bool:
        return bool(self.info.get("keep"))


def _lock_files(run_dir: str) -> Iterator[tuple[str, str]]:
    try:
        names = sorted(os.listdir(run_dir))
    except FileNotFoundError:
        return
    for name in names:
        rid, ext = os.path.splitext(name)
        if ext == ".lock" and RUNID_RE.match(rid):
            yield rid, os.path.join(run_dir, name)


def _read_info(fd: int) -> dict[str, Any]:
    try:
        raw = os.pread(fd, 1 << 20, 0)
        info = json.loads(raw) if raw.strip() else {}
        return info if isinstance(info, dict) else {}
    except (OSError, ValueError):
        return {}


def _probe(path: str) -> tuple[bool, dict[str, Any]]:
    """(live, info) for one lock file, without taking it from a live run."""
    fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    try:
        info = _read_info(fd)
        try:
            fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
        except BlockingIOError:
            return True, info
        return False, info
    finally:
        os.close(fd)


def list_runs(run_dir: str | None = None) -> list[RunRecord]:
    out = []
    for rid, path in _lock_files(run_dir or RUN_DIR):
        try:
            live, info = _probe(path)
        except FileNotFoundError:
            continue
        out.append(RunRecord(rid, path, live, info))
    return out


def netns_names() -> list[str]:
    """``ip netns`` names that look like netemu's."""
    try:
        return sorted(n for n in os.listdir(NETNS_RUN_DIR) if NAME_RE.match(n))
    except FileNotFoundError:
        return []


def host_links() -> list[tuple[int, str]]:
    """Links in the caller's (host) namespace that look like netemu's. There should never
    be any: lab veths are created inside lab namespaces."""
    return [(i, n) for i, n in socket.if_nameindex() if NAME_RE.match(n)]


# --- processes ------------------------------------------------------------------------


def _environ(pid: int, name: str) -> str | None:
    try:
        with open(f"/proc/{pid}/environ", "rb") as f:
            env = f.read()
    except OSError:
        return None
    key = name.encode() + b"="
    for item in env.split(b"\0"):
        if item.startswith(key):
            return item[len(key) :].decode(errors="replace")
    return None


def _environ_tag(pid: int) -> str | None:
    return _environ(pid, ENV_TAG)


def lock_alive(path: str) -> bool | None:
    """True when the run that holds the lock file at ``path`` lives (its flock is held),
    False when it is provably dead (no file: the run ended; or the lock is free), None
    when it cannot be told (unreadable)."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    except FileNotFoundError:
        return False
    except OSError:
        return None
    try:
        fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
    except BlockingIOError:
        return True
    finally:
        os.close(fd)
    return False


def _pids() -> Iterator[int]:
    me = os.getpid()
    for name in os.listdir("/proc"):
        if name.isdigit() and int(name) != me:
            yield int(name)


def netns_inode_of(pid: int) -> int | None:
    try:
        return os.stat(f"/proc/{pid}/ns/net").st_ino
    except OSError:
        return None


def tagged_processes(runids: Iterable[str] | None = None) -> dict[int, str]:
    """pid -> runid for processes whose environment carries ``NETEMU_RUN`` (restricted
    to ``runids`` when given)."""
    wanted = None if runids is None else set(runids)
    out = {}
    for pid in _pids():
        tag = _environ_tag(pid)
        if tag and (wanted is None or tag in wanted):
            out[pid] = tag
    return out


def _cookie_of_pid(pid: int) -> int | None:
    from ..linux import netns_cookie, run_in_netns

    try:
        fd = os.open(f"/proc/{pid}/ns/net", os.O_RDONLY | os.O_CLOEXEC)
    except OSError:
        return None
    try:
        return run_in_netns(fd, netns_cookie)
    except OSError:
        return None
    finally:
        os.close(fd)


def kill_processes(pids: Iterable[int], sig: int = signal.SIGKILL) -> list[int]:
    """Signal each pid and its process group when it leads one; return those signalled."""
    done = []
    for pid in pids:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            if os.getpgid(pid) == pid:
                os.killpg(pid, sig)
            else:
                os.kill(pid, sig)
            done.append(pid)
    return done


# --- clean -------------------------------------------------------------------------------


def _lock_now(path: str, flags: int) -> int | None:
    """An fd on ``path`` holding its exclusive lock, or None when another process holds
    it (FileNotFoundError passes through)."""
    fd = os.open(path, flags | os.O_CLOEXEC)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        os.close(fd)
        return None
    return fd


@dataclass
class _Sweep:
    """One ``clean``: the runs it found live or dead, the dead runs' locks it holds
    (nobody may reuse their ids meanwhile) and the actions it took or would take."""

    run_dir: str
    dry_run: bool
    actions: list[str] = field(default_factory=list)
    live_ids: set[str] = field(default_factory=set)
    dead: dict[str, dict[str, Any]] = field(default_factory=dict)
    held: list[int] = field(default_factory=list)

    def claim_dead_runs(self) -> None:
        """Take the lock of every run in ``run_dir`` nobody holds: those runs are dead."""
        for rid, path in _lock_files(self.run_dir):
            try:
                fd = _lock_now(path, os.O_RDWR)
            except FileNotFoundError:
                continue
            if fd is None:
                self.live_ids.add(rid)
                continue
            self.held.append(fd)  # kept until we are done: nobody may reuse the id meanwhile
            info = _read_info(fd)
            info["_path"] = path
            self.dead[rid] = info
        if os.path.abspath(self.run_dir) != os.path.abspath(RUN_DIR):
            # Another run dir (tests, NETEMU_RUN_DIR): runs live in the default one are
            # just as untouchable.
            self.live_ids |= {r.runid for r in list_runs(RUN_DIR) if r.live}

    def tagged_victims(self) -> dict[int, str]:
        """Processes tagged with a run that is provably dead. A process names its run's
        lock (NETEMU_RUN_LOCK), wherever that run's directory is: a run this cleaner's
        directory does not hold is alive while its lock is held, and is left alone (it
        used to be taken for dead and killed)."""
        victims: dict[int, str] = {}
        tagged = tagged_processes()
        for pid, tag in tagged.items():
            if tag in self.live_ids:
                continue
            if tag in self.dead:  # its lock is here and we hold it: provably dead
                victims[pid] = f"tagged {ENV_TAG}={tag}"
                continue
            own_lock = _environ(pid, ENV_LOCK)
            alive = lock_alive(own_lock) if own_lock else None
            if alive:
                self.live_ids.add(tag)
                continue
            if alive is False or (
                alive is None
                and not own_lock
                and not any(os.path.exists(lock_path(tag, d)) for d in (self.run_dir, RUN_DIR))
            ):
                victims[pid] = f"tagged {ENV_TAG}={tag}"
        for pid in [p for p, why in victims.items() if tagged.get(p) in self.live_ids]:
            del victims[pid]  # a sibling showed its run alive after it was listed
        return victims

    def namespace_victims(self, victims: dict[int, str]) -> None:
        """Add the processes sitting in a dead run's namespace, confirmed by cookie
        (inode numbers are reused, cookies are not)."""
        ns_by_inode: dict[int, tuple[str, int]] = {}
        for rid, info in self.dead.items():
            for ns in (info.get("netns") or {}).values():
                if isinstance(ns, dict) and ns.get("inode") and ns.get("cookie"):
                    ns_by_inode[int(ns["inode"])] = (rid, int(ns["cookie"]))
        if not ns_by_inode:
            return
        for pid in _pids():
            if pid in victims:
                continue
            ino = netns_inode_of(pid)
            if ino in ns_by_inode:
                rid, cookie = ns_by_inode[ino]
                if _cookie_of_pid(pid) == cookie:
                    victims[pid] = f"in dead run {rid}'s namespace"

    def _orphan(self, name: str) -> bool:
        match = NAME_RE.match(name)
        return match is not None and match.group(1) not in self.live_ids

    def remove_names_and_links(self, victims: dict[int, str]) -> None:
        """Kill the victims, then remove the names and links of runs with no live lock (a
        live run locks before naming; a run whose processes showed it alive is live too)."""
        orphan_names = [n for n in netns_names() if self._orphan(n)]
        orphan_links = [(i, n) for i, n in host_links() if self._orphan(n)]
        for pid, why in sorted(victims.items()):
            self.actions.append(f"kill pid {pid} ({why})")
        if not self.dry_run:
            kill_processes(victims)
        for name in orphan_names:
            self.actions.append(f"remove netns name {name}")
            if not self.dry_run:
                unbind_name(os.path.join(NETNS_RUN_DIR, name))
        if orphan_links and not self.dry_run:
            from .rtnl import Rtnl

            with Rtnl() as rt:
                for idx, _name in orphan_links:
                    with contextlib.suppress(OSError):
                        rt.del_link(idx)
        self.actions += [f"delete link {name}" for _, name in orphan_links]

    def remove_trace_instances(self) -> None:
        """tracefs instances (``netemu-<runid>``) of runs with no live lock."""
        from .ktrace import INSTANCE_PREFIX, leftover_instances, remove_instance

        for name in leftover_instances():
            rid = name[len(INSTANCE_PREFIX) :]
            # (a dead run's lock is held by this cleaner now: it is not asked again)
            if (
                RUNID_RE.match(rid)
                and rid not in self.live_ids
                and (
                    rid in self.dead
                    or not any(lock_alive(lock_path(rid, d)) for d in (self.run_dir, RUN_DIR))
                )
            ):
                self.actions.append(f"remove tracefs instance {name}")
                if not self.dry_run:
                    with contextlib.suppress(OSError):
                        remove_instance(name)

    def remove_dead_locks(self) -> None:
        for rid, info in sorted(self.dead.items()):
            self.actions.append(f"remove lock of dead run {rid} (pid {info.get('pid', '?')})")
            if not self.dry_run:
                with contextlib.suppress(FileNotFoundError):
                    os.unlink(info["_path"])

    def remove_stale_dot_files(self) -> None:
        """Dot-files of runs killed between creating and publishing their lock."""
        with contextlib.suppress(FileNotFoundError):
            for name in os.listdir(self.run_dir):
                if not (name.startswith(".") and name.endswith(".tmp")):
                    continue
                path = os.path.join(self.run_dir, name)
                try:
                    fd = _lock_now(path, os.O_RDONLY)
                except FileNotFoundError:
                    continue
                if fd is None:
                    continue
                try:
                    if time.time() - os.fstat(fd).st_mtime > 10:
                        self.actions.append(f"remove stale {name}")
                        if not self.dry_run:
                            os.unlink(path)
                finally:
                    os.close(fd)


def clean(run_dir: str | None = None, *, dry_run: bool = False) -> list[str]:
    """Remove what dead runs left; never touch a live run. Returns what was (or, with
    ``dry_run``, would be) done, one line per action."""
    sweep = _Sweep(run_dir or RUN_DIR, dry_run)
    try:
        sweep.claim_dead_runs()
        victims = sweep.tagged_victims()
        sweep.namespace_victims(victims)
        sweep.remove_names_and_links(victims)
        sweep.remove_trace_instances()
        sweep.remove_dead_locks()
        sweep.remove_stale_dot_files()
    finally:
        for fd in sweep.held:
            os.close(fd)
    return sweep.actions
