"""The peer kernel's own account of its TCP sockets: tracepoints, read through a
tracefs instance of the run's own.

What the lab kernel reports (measured here on 6.18; docs/trace.md):

- ``sock/inet_sock_set_state``: every TCP state change of every socket, old and new,
  with addresses and ports, at the instant it happens. Two gaps, both the kernel's:
  a request socket (SYN received, SYN-ACK sent) has no event, so an accepted socket
  first appears when the handshake's last ACK arrives, as LISTEN → SYN_RECV →
  ESTABLISHED within microseconds; and entering TIME-WAIT is reported as
  FIN_WAIT2 → CLOSE (or CLOSING → CLOSE): the full socket closes and a timewait
  socket takes its 4-tuple without an event of its own. A connect() is reported
  CLOSE → SYN_SENT before its local port is chosen (sport 0).
- ``tcp/tcp_probe``: snd_cwnd, ssthresh, srtt (µs), snd_wnd, rcv_wnd, snd_nxt,
  snd_una per segment the socket receives in ESTABLISHED (and later).
- ``tcp/tcp_cong_state_set`` (Open, Disorder, CWR, Recovery, Loss),
  ``tcp/tcp_retransmit_skb``, ``tcp/tcp_retransmit_synack`` (a request socket's),
  ``tcp/tcp_send_reset`` (also with no socket: its src is the kernel's end),
  ``tcp/tcp_receive_reset``.

Tracepoints are global to the kernel, and no field of these events names the socket's
network namespace (eprobes, kprobes and fprobes, which could fetch it, are not built
into this kernel). So the lab makes its sockets' 4-tuples unique among live labs
instead (``registry.Slot``: each lab's peer kernel and netemu's endpoint draw
ephemeral ports from a block no other live lab uses), and ``LabFilter`` keeps the
events whose tuple is the lab's. A listener's tuple (``*:8080``) is not unique: its
events come from the listen()/close() system calls, so the process that made them
is checked to be in the lab's peer namespace.

tracefs is used where it is mounted; otherwise it is mounted in a private mount
namespace of a short-lived thread (``unshare(CLONE_FS | CLONE_NEWNS)``), so the host's
mount table never changes; the files opened there stay usable after the thread
ends. The instance (``instances/netemu-<runid>``) is removed on every exit path, and
by ``netemu lab clean`` after a SIGKILL. Timestamps use the ``mono`` trace clock:
CLOCK_MONOTONIC, the clock of ``time.monotonic()`` and so of the run's trace.
"""

from __future__ import annotations

import contextlib
import ctypes
import ipaddress
import os
import re
import threading
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

from ..linux import libc

TRACEFS = "/sys/kernel/tracing"
INSTANCE_PREFIX = "netemu-"
CLONE_FS, CLONE_NEWNS = 0x200, 0x20000
MS_REC, MS_PRIVATE = 0x4000, 1 << 18

# (tracefs event, our kind, kernel-side filter)
EVENTS = (
    ("sock/inet_sock_set_state", "state", "protocol == 6"),
    ("tcp/tcp_probe", "probe", ""),
    ("tcp/tcp_cong_state_set", "cong_state", ""),
    ("tcp/tcp_retransmit_skb", "retransmit", ""),
    ("tcp/tcp_retransmit_synack", "retransmit_synack", ""),
    ("tcp/tcp_send_reset", "send_reset", ""),
    ("tcp/tcp_receive_reset", "receive_reset", ""),
)
_KIND = {path.split("/")[1]: kind for path, kind, _ in EVENTS}

# Kernel TCP_* names (as the events print them) -> RFC 9293 names.
STATES = {
    "TCP_ESTABLISHED": "ESTABLISHED",
    "TCP_SYN_SENT": "SYN-SENT",
    "TCP_SYN_RECV": "SYN-RECEIVED",
    "TCP_FIN_WAIT1": "FIN-WAIT-1",
    "TCP_FIN_WAIT2": "FIN-WAIT-2",
    "TCP_TIME_WAIT": "TIME-WAIT",
    "TCP_CLOSE": "CLOSED",
    "TCP_CLOSE_WAIT": "CLOSE-WAIT",
    "TCP_LAST_ACK": "LAST-ACK",
    "TCP_LISTEN": "LISTEN",
    "TCP_CLOSING": "CLOSING",
    "TCP_NEW_SYN_RECV": "SYN-RECEIVED",
}
# include/net/tcp.h enum tcp_ca_state
CA_STATES = {0: "open", 1: "disorder", 2: "cwr", 3: "recovery", 4: "loss"}

# "<comm>-<pid> [(<tgid>)] [<cpu>] <flags> <seconds>: <event>: <fields>"
_LINE = re.compile(
    r"^\s*(?P<comm>.*?)-(?P<pid>\d+)\s+(?:\(\s*(?P<tgid>[-\d]+)\)\s+)?\[(?P<cpu>\d+)\]\s+"
    r"(?P<flags>\S+)\s+(?P<ts>\d+\.\d+): (?P<event>\w+): (?P<rest>.*)$"
)


class TraceUnavailable(Exception):
    """Kernel tracepoints cannot be read here; the message says why (one line)."""


Endpoint = tuple[str, int]


@dataclass(slots=True)
class KEvent:
    """One tracepoint hit. ``local`` is the socket's own end, ``remote`` its peer's;
    ``t`` is CLOCK_MONOTONIC seconds. ``softirq``: it ran in softirq or interrupt
    context (on whatever task was current), not in a system call of ``pid``."""

    t: float
    kind: str
    local: Endpoint
    remote: Endpoint
    tid: int  # the thread current when it ran (namespaces are per thread)
    pid: int  # its process (thread group)
    softirq: bool
    fields: dict[str, str] = field(default_factory=dict)

    @property
    def old(self) -> str:
        return STATES.get(self.fields.get("oldstate", ""), self.fields.get("oldstate", ""))

    @property
    def new(self) -> str:
        return STATES.get(self.fields.get("newstate", ""), self.fields.get("newstate", ""))


def _plain(ip: str) -> str:
    """IPv4-mapped IPv6 as dotted IPv4 (Go's dual-stack sockets); others unchanged."""
    if ip.startswith("::ffff:") and "." in ip:
        return ip[7:]
    return ip


def _split_ep(text: str) -> Endpoint:
    """``198.18.0.2:80`` or ``[::ffff:198.18.0.2]:80`` (the kernel's %pISpc)."""
    host, _, port = text.rpartition(":")
    return _plain(host.strip("[]")), int(port)


def parse_line(line: str) -> KEvent | None:
    """One line of ``trace_pipe``; None for lines of other events or other shapes
    (the ``# tracer`` header, a "CPU:N [LOST n EVENTS]" line)."""
    m = _LINE.match(line)
    if m is None:
        return None
    kind = _KIND.get(m["event"])
    if kind is None:
        return None
    fields = dict(kv.split("=", 1) for kv in m["rest"].split(" ") if "=" in kv)
    try:
        if "src" in fields:
            local, remote = _split_ep(fields["src"]), _split_ep(fields["dest"])
        else:
            v6 = fields.get("family") == "AF_INET6"
            sa = _plain(fields["saddrv6"]) if v6 else fields["saddr"]
            da = _plain(fields["daddrv6"]) if v6 else fields["daddr"]
            local, remote = (sa, int(fields["sport"])), (da, int(fields["dport"]))
    except (KeyError, ValueError):
        return None
    flags = m["flags"]
    softirq = len(flags) > 2 and flags[2] in "sHhT"
    tid, tgid = int(m["pid"]), m["tgid"]
    return KEvent(
        float(m["ts"]),
        kind,
        local,
        remote,
        tid,
        int(tgid) if tgid and tgid.isdigit() else tid,
        softirq,
        fields,
    )


# --- the tracefs instance -------------------------------------------------------------------


def _write(dir_fd: int, path: str, value: str) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_TRUNC | os.O_CLOEXEC, dir_fd=dir_fd)
    try:
        os.write(fd, value.encode())
    finally:
        os.close(fd)


def _private_mount() -> int:
    """The ``instances`` directory of a tracefs mounted in a private mount namespace
    (of a thread that then ends), as an fd. Raises TraceUnavailable."""
    out: dict[str, object] = {}

    def job() -> None:
        lc = libc()
        try:
            if lc.unshare(CLONE_FS | CLONE_NEWNS) != 0:
                raise OSError(ctypes.get_errno(), "unshare(CLONE_NEWNS)")
            if lc.mount(b"none", b"/", None, MS_REC | MS_PRIVATE, None) != 0:
                raise OSError(ctypes.get_errno(), "making the mount namespace private")
            if lc.mount(b"nodev", TRACEFS.encode(), b"tracefs", 0, None) != 0:
                raise OSError(ctypes.get_errno(), f"mount -t tracefs nodev {TRACEFS}")
            out["fd"] = os.open(
                os.path.join(TRACEFS, "instances"), os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC
            )
        except OSError as e:
            out["err"] = f"{e.args[-1]}: {os.strerror(e.errno or 0)}"

    t = threading.Thread(target=job, name="netemu-tracefs", daemon=True)
    t.start()
    t.join()
    if "fd" not in out:
        raise TraceUnavailable(f"tracefs cannot be mounted: {out.get('err')}")
    return out["fd"]  # type: ignore[return-value]


def instances_dir() -> int:
    """An fd of tracefs's ``instances`` directory (the host's mount when there is one)."""
    if os.geteuid() != 0:
        raise TraceUnavailable("kernel tracepoints need root")
    with contextlib.suppress(OSError):
        return os.open(
            os.path.join(TRACEFS, "instances"), os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC
        )
    return _private_mount()


class KernelTrace:
    """A tracefs instance with the TCP events on, read without blocking.

    ``read()`` drains what the kernel has buffered and returns it parsed; call it
    often enough that the per-CPU buffers (``buffer_kb`` each) do not fill: a full
    buffer loses events, and the next read says so (``lost``)."""

    def __init__(self, name: str, *, buffer_kb: int = 8192) -> None:
        self.name = name
        self.lost = 0
        self._inst_dir = instances_dir()
        self._fd = -1
        self._pipe = -1
        self._tail = b""
        try:
            try:
                os.mkdir(name, dir_fd=self._inst_dir)
            except OSError as e:
                raise TraceUnavailable(
                    f"cannot make tracefs instance {name}: {e.strerror}"
                ) from None
            self._fd = os.open(
                name, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC, dir_fd=self._inst_dir
            )
            try:
                _write(self._fd, "trace_clock", "mono")
                _write(self._fd, "buffer_size_kb", str(buffer_kb))
                _write(self._fd, "options/record-tgid", "1")
                for path, _kind, flt in EVENTS:
                    if flt:
                        _write(self._fd, f"events/{path}/filter", flt)
                    _write(self._fd, f"events/{path}/enable", "1")
            except OSError as e:
                raise TraceUnavailable(
                    f"tracefs instance {name}: {e.strerror} ({e.filename or 'setup'})"
                ) from None
            self._pipe = os.open(
                "trace_pipe", os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC, dir_fd=self._fd
            )
        except BaseException:
            self.close()
            raise

    def read(self) -> list[KEvent]:
        if self._pipe < 0:
            return []
        chunks = [self._tail]
        while True:
            try:
                b = os.read(self._pipe, 1 << 20)
            except BlockingIOError:
                break
            except OSError:
                break
            if not b:
                break
            chunks.append(b)
        data = b"".join(chunks)
        cut = data.rfind(b"\n") + 1
        self._tail = data[cut:]
        out = []
        for raw in data[:cut].decode(errors="replace").splitlines():
            ev = parse_line(raw)
            if ev is not None:
                out.append(ev)
            elif "LOST" in raw:
                m = re.search(r"LOST (\d+) EVENTS", raw)
                self.lost += int(m.group(1)) if m else 1
        return out

    def close(self) -> None:
        """Turn the events off and remove the instance (idempotent)."""
        for fd_name in ("_pipe", "_fd"):
            fd = getattr(self, fd_name)
            if fd >= 0:
                with contextlib.suppress(OSError):
                    os.close(fd)
                setattr(self, fd_name, -1)
        if self._inst_dir >= 0:
            with contextlib.suppress(OSError):
                os.rmdir(self.name, dir_fd=self._inst_dir)
            with contextlib.suppress(OSError):
                os.close(self._inst_dir)
            self._inst_dir = -1


def leftover_instances() -> list[str]:
    """Names of netemu's tracefs instances (live runs' and dead runs')."""
    try:
        fd = instances_dir()
    except TraceUnavailable:
        return []
    try:
        return sorted(n for n in os.listdir(fd) if n.startswith(INSTANCE_PREFIX))
    finally:
        os.close(fd)


def remove_instance(name: str) -> None:
    fd = instances_dir()
    try:
        os.rmdir(name, dir_fd=fd)
    finally:
        os.close(fd)


# --- which events are the lab's ----------------------------------------------------------


class LabFilter:
    """Keeps the events of one lab's peer sockets.

    A socket with a full 4-tuple is the lab's when its local address is the lab's
    peer address, its remote one of the run's lab addresses, and one of its ports is
    one only this run hands out (``own_ports``: its labs' slot blocks, registry.Slot):
    the local port when the peer kernel chose it (its ephemeral block), the remote
    port when netemu's endpoint (its block, or a port the scenario fixed) or another
    of the run's peers chose it. A listener (remote port 0), or a connect() before its
    port is chosen, is the lab's when the system call that changed it was made by a
    thread in the lab's peer namespace."""

    def __init__(
        self,
        peer_ip: str,
        lab_ips: Iterable[str],
        netns_inode: int,
        local_ports: Iterable[range],
        remote_ports: Iterable[range],
        confirm: Callable[[KEvent], bool] | None = None,
        peer_ip6: str | None = None,
    ) -> None:
        """``peer_ip6``: the lab's peer's IPv6 address, its too (an IPv6 lab's).
        ``confirm``: asked about a listener's event when its thread and process are
        gone and no earlier event showed them in the lab (the caller can ask sock_diag
        whether the lab has, or had, that listener)."""
        self.peer_ip = _plain(str(ipaddress.ip_address(peer_ip)))
        self.peer_ips = {self.peer_ip} | (
            {str(ipaddress.ip_address(peer_ip6))} if peer_ip6 else set()
        )
        self.lab_ips = {_plain(str(ipaddress.ip_address(a))) for a in lab_ips}
        self.inode = netns_inode
        self.local_ports = list(local_ports)
        self.remote_ports = list(remote_ports)
        self._tid_ns: dict[int, bool] = {}
        self._pids: set[int] = set()
        self._known: set[tuple[Endpoint, Endpoint]] = set()  # tuples a syscall showed ours
        self.confirm = confirm

    def _in_lab(self, ev: KEvent) -> bool | None:
        """Was the thread that made the system call in the lab's namespace? Namespaces
        are per thread, so the thread is asked first; one gone by now (the kernel agent
        runs each request on a thread of its own) is answered by its process's main
        thread, and a process gone by now (one that exited, closing its listener) by
        an earlier event that showed it in the lab."""
        known = self._tid_ns.get(ev.tid)
        if known is None:
            for path in (f"/proc/{ev.pid}/task/{ev.tid}/ns/net", f"/proc/{ev.pid}/ns/net"):
                try:
                    known = os.stat(path).st_ino == self.inode
                    break
                except OSError:
                    continue
            else:
                return True if ev.pid in self._pids else None  # None: cannot tell
            self._tid_ns[ev.tid] = known
        if known:
            self._pids.add(ev.pid)
        return known

    def __call__(self, ev: KEvent) -> bool:
        (lip, lport), (rip, rport) = ev.local, ev.remote
        if lport and rport:
            if lip not in self.peer_ips or rip not in self.lab_ips:
                return False
            if (
                any(lport in r for r in self.local_ports)
                or any(rport in r for r in self.remote_ports)
                or (ev.local, ev.remote) in self._known
            ):
                return True
            # Both ports fixed by the scenario (a bound connect): a system call of the
            # lab's own makes the tuple the lab's from then on.
            if not ev.softirq and ev.kind == "state" and self._in_lab(ev):
                self._known.add((ev.local, ev.remote))
                return True
            return False
        if ev.softirq or ev.kind != "state":
            return False
        # A listener (bound to the peer's address or to any), or a connect() whose port
        # is not chosen yet: told by the thread that made the system call.
        if lip not in self.peer_ips and lip not in ("0.0.0.0", "::"):
            return False
        mine = self._in_lab(ev)
        if mine is None and self.confirm is not None and not rport:
            mine = self.confirm(ev)
        return bool(mine)
