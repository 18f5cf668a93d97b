"""``Lab``: two network namespaces joined by a veth pair, peers inside, nothing left after.

    with Lab(peer_sysctls={"net.ipv4.tcp_fin_timeout": 5}) as lab:
        link = lab.open_link()                 # AF_PACKET on the emulator's veth
        agent = lab.start_agent()              # real kernel sockets in the peer namespace
        ls = agent.listen(8080)
        ...
        lab.peer_sockets(port=8080)            # sock_diag: LISTEN, ESTABLISHED, ...

Per run (``runid``: 6 random hex digits):
  - emulator namespace: veth ``netemu-<runid>-e``, up, MAC 02:6e:<runid>:01 and **no
    IPv4 address** (netemu answers ARP for ``emu_ip`` itself; the kernel, with no
    address and ip_forward=0, stays silent);
  - peer namespace: ``lo`` up, veth ``netemu-<runid>-p`` with ``peer_ip/prefixlen``,
    MAC 02:6e:<runid>:02, tx checksum offload off (so a raw reader sees finished
    checksums and MTU-sized frames), the caller's sysctls;
  - IPv6 disabled (all + default) in both, before the veth exists: an idle lab is
    silent; with ``ipv6=True`` the peer's is on but quiet (netns.QUIET_IPV6), its veth
    with ``peer_ip6``/64 from 2001:2::/48, and netemu answers for ``emu_ip6``;
  - namespaces held by fd only (no ``ip netns`` name unless ``keep=True``), a lock
    file ``/run/netemu/<runid>.lock`` held for the run's life (see ``registry``).

Teardown (``close``) runs on return, exception, Ctrl-C and SIGTERM/SIGHUP (turned
into ``SystemExit`` while a lab is live, when no other handler is installed), and
at interpreter exit for a lab left open; SIGINT/SIGTERM arriving during teardown
are held until it is done. After SIGKILL the kernel frees the namespaces with our
fds, PDEATHSIG kills our children, and ``netemu lab clean`` removes the lock file
and anything that escaped.
"""

from __future__ import annotations

import atexit
import contextlib
import ipaddress
import os
import signal
import socket
import subprocess
import sys
import threading
import time
import weakref
from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import IO, TYPE_CHECKING, Any, TypeVar

from . import registry
from .netns import (
    MLD_SETTLE,
    PREFIXLEN6,
    NsThread,
    bind_name,
    disable_ipv6,
    in_background,
    lab_ip6,
    quiet_ipv6,
    read_sysctl,
    write_sysctl,
)
from .process import LabProcess, spawn, stop_all

if TYPE_CHECKING:
    from ..link import RawLink
    from .diag import DiagProbe, SockState
    from .kernel import KernelAgent
    from .ktrace import KernelTrace

T = TypeVar("T")

LAB_NET = ipaddress.ip_network("198.18.0.0/15")
IFINDEXES6 = (2, 3)  # the veth ends' indexes in an IPv6 lab (see _setup_emu)
GO_DEFAULT_PORTS = {"hello": 8080, "echo": 8081}


class LabError(RuntimeError):
    pass


# --- signals ------------------------------------------------------------------------------

_live: weakref.WeakSet[Lab] = weakref.WeakSet()
_saved_handlers: dict[int, Any] = {}
_EXIT_SIGNALS = (signal.SIGTERM, signal.SIGHUP)


def _exit_on_signal(signum: int, frame: Any) -> None:
    if not _live:  # no lab left: behave as if we were never installed
        signal.signal(signum, signal.SIG_DFL)
        os.kill(os.getpid(), signum)
        return
    raise SystemExit(128 + signum)


def _install_handlers() -> None:
    if threading.current_thread() is not threading.main_thread():
        return
    for sig in _EXIT_SIGNALS:
        if sig not in _saved_handlers and signal.getsignal(sig) is signal.SIG_DFL:
            _saved_handlers[sig] = signal.SIG_DFL
            signal.signal(sig, _exit_on_signal)


def _restore_handlers() -> None:
    if _live or threading.current_thread() is not threading.main_thread():
        return
    for sig, old in list(_saved_handlers.items()):
        if signal.getsignal(sig) is _exit_on_signal:
            signal.signal(sig, old)
        del _saved_handlers[sig]


@contextlib.contextmanager
def _signals_held() -> Iterator[list[int]]:
    """Hold SIGINT/SIGTERM/SIGHUP (main thread only) while tearing down; yields the list
    of signals that arrived meanwhile."""
    pending: list[int] = []
    if threading.current_thread() is not threading.main_thread():
        yield pending
        return
    old: dict[int, Any] = {}
    for sig in (signal.SIGINT, *_EXIT_SIGNALS):
        h = signal.getsignal(sig)
        if h in (signal.SIG_IGN, None):
            continue
        old[sig] = h
        signal.signal(sig, lambda s, f: pending.append(s))
    try:
        yield pending
    finally:
        for held, h in old.items():
            signal.signal(held, h)


@contextlib.contextmanager
def signals_deferred() -> Iterator[None]:
    """SIGINT/SIGTERM/SIGHUP that arrive in the block are delivered at its end: for
    writing a run's outputs whole (a SIGTERM mid-write left a run directory with a
    ladder and a pcap but no report)."""
    with _signals_held() as pending:
        yield
    if pending:
        signal.raise_signal(pending[0])


@atexit.register
def _close_leftovers() -> None:
    for lab in list(_live):
        with contextlib.suppress(Exception):
            lab.close()


# --- the lab ---------------------------------------------------------------------------------


def _mac(runid: str, n: int) -> str:
    return f"02:6e:{runid[0:2]}:{runid[2:4]}:{runid[4:6]}:{n:02x}"


class Lab:
    """One lab: emulator and peer namespaces joined by a veth pair. See the module doc."""

    def __init__(
        self,
        *,
        peer_sysctls: Mapping[str, object] | None = None,
        congestion: str | None = None,
        keep: bool = False,
        emu_ip: str = "198.18.0.1",
        peer_ip: str = "198.18.0.2",
        prefixlen: int = 24,
        mtu: int = 1500,
        log_dir: str | None = None,
        run_dir: str | None = None,
        peer_ifname: str | None = None,
        peer_tx_offload: bool = False,
        ipv6: bool = False,
        emu_ip6: str = "2001:2::1",
        peer_ip6: str = "2001:2::2",
    ) -> None:
        """``ipv6``: the peer's veth also has ``peer_ip6``/64 and netemu may answer for
        ``emu_ip6`` (both in LAB_NET6); the emulator namespace's kernel keeps IPv6 off."""
        net = ipaddress.ip_network(f"{peer_ip}/{prefixlen}", strict=False)
        for ip in (emu_ip, peer_ip):
            if ipaddress.ip_address(ip) not in LAB_NET:
                raise ValueError(f"lab addresses must be in {LAB_NET} (got {ip})")
            if ipaddress.ip_address(ip) not in net:
                raise ValueError(f"{emu_ip} and {peer_ip} are not in one /{prefixlen}")
        if emu_ip == peer_ip:
            raise ValueError("emu_ip and peer_ip must differ")
        ips6: tuple[str | None, str | None] = lab_ip6(emu_ip6, peer_ip6) if ipv6 else (None, None)
        self.emu_ip6, self.peer_ip6 = ips6
        self.peer_sysctls = dict(peer_sysctls or {})
        self.congestion = congestion
        self.keep = keep
        self.emu_ip = emu_ip
        self.peer_ip = peer_ip
        self.prefixlen = prefixlen
        self.mtu = mtu
        self.log_dir = log_dir
        self._lock = registry.RunLock(run_dir)
        self.slot = registry.Slot()
        self.ktrace: KernelTrace | None = None  # once start_kernel_trace() ran
        self.runid = ""
        self.emu_ifname = self.peer_ifname = ""
        # The peer's veth may take a fixed name (a .pkt run calls it packetdrill's tun0):
        # it lives only inside the lab's own peer namespace, so no two labs collide.
        self._peer_ifname = peer_ifname
        # Offloads left on: the peer's kernel sends TSO super-frames with unfinished
        # checksums, as it does through packetdrill's tun (the link reads PACKET_AUXDATA).
        self.peer_tx_offload = peer_tx_offload
        self.emu_mac = self.peer_mac = ""
        self.emu_if_mac = ""  # the emulator veth's own MAC (not netemu's: see _up)
        self.emu_ifindex = self.peer_ifindex = 0
        self.emu_ns: NsThread | None = None
        self.peer_ns: NsThread | None = None
        self.netns_names: dict[str, str] = {}
        self.peer_cc = ""  # the peer namespace's default congestion control, after setup
        self.cc_per_socket = False  # True: the namespace refused ``congestion``
        self.notes: list[str] = []
        self.up_seconds = 0.0
        self._procs: list[LabProcess] = []
        self._links: list[Any] = []
        self._diag: DiagProbe | None = None
        self._started = False
        self._closed = False

    # -- lifecycle ---------------------------------------------------------------------------
    def __repr__(self) -> str:
        state = "closed" if self._closed else "up" if self._started else "new"
        return f"<Lab {self.runid or '?'} {state} emu={self.emu_ip} peer={self.peer_ip}>"

    def start(self) -> Lab:
        if self._started:
            raise LabError("a Lab starts once")
        self._started = True
        t0 = time.perf_counter()
        _live.add(self)
        _install_handlers()
        try:
            self._up()
        except BaseException:
            self._close(unwinding=True)
            raise
        self.up_seconds = time.perf_counter() - t0
        return self

    def _up(self) -> None:
        self.runid = self._lock.acquire(
            {
                "keep": self.keep,
                "argv": sys.argv[:8],
                "emu_ip": self.emu_ip,
                "peer_ip": self.peer_ip,
            }
        )
        rid = self.runid
        self.slot.acquire()
        self.emu_ifname = f"netemu-{rid}-e"
        self.peer_ifname = self._peer_ifname or f"netemu-{rid}-p"
        self.emu_mac, self.peer_mac = _mac(rid, 1), _mac(rid, 2)
        # netemu's MAC is not its veth's: the emulator namespace's kernel then takes
        # every frame for netemu as another host's (PACKET_OTHERHOST) and drops it at
        # its first check, rather than routing it to find it is not for itself (~3 %
        # of netemu's CPU time receiving a bulk transfer). Raw sockets still see it.
        self.emu_if_mac = _mac(rid, 3)
        self.emu_ns = NsThread(f"{rid}-emu", create=True, setup=disable_ipv6)
        self.peer_ns = NsThread(
            f"{rid}-peer", create=True, setup=quiet_ipv6 if self.peer_ip6 else disable_ipv6
        )
        emu, peer = self.emu_ns.wait_ready(), self.peer_ns.wait_ready()
        self._lock.update(
            netns={
                "emu": {"inode": emu.inode, "cookie": emu.cookie, "fd": emu.fd},
                "peer": {"inode": peer.inode, "cookie": peer.cookie, "fd": peer.fd},
            }
        )
        if self.keep:
            for role, ns in (("emu", emu), ("peer", peer)):
                name = f"netemu-{rid}-{role}"
                bind_name(ns.fd, name)
                self.netns_names[role] = name
            self._lock.update(names=sorted(self.netns_names.values()))
        # Sysctls before the veth exists, so ``net.ipv4.conf.default.*`` apply to it too.
        peer.call(self._setup_peer_sysctls)
        self.emu_ifindex = emu.call(self._setup_emu)
        self.peer_ifindex = peer.call(self._setup_peer_link)

    def _setup_emu(self) -> int:
        from .rtnl import Rtnl

        with Rtnl() as rt:
            rt.add_veth(
                self.emu_ifname,
                self.emu_if_mac,
                self.peer_ifname,
                self.peer_mac,
                self.peer_ns.fd,  # type: ignore[union-attr]
                mtu=self.mtu,
                # Not the emulator end's index (both would be 2, each namespace counting
                # its own): the kernel then takes the peer's carrier change for a
                # stacked device's, urgent, and handles it at once, not up to 1 s later,
                # when IPv6 would re-announce the address (MLD) on an idle lab.
                ifindexes=IFINDEXES6 if self.peer_ip6 else (0, 0),
            )
        return socket.if_nametoindex(self.emu_ifname)

    def _setup_peer_sysctls(self) -> None:
        ports = self.slot.peer_ports
        if ports is not None and "net.ipv4.ip_local_port_range" not in self.peer_sysctls:
            # The slot's block: no other live lab's peer picks these (registry.Slot).
            write_sysctl("net.ipv4.ip_local_port_range", f"{ports[0]} {ports[1]}")
        for name, value in self.peer_sysctls.items():
            try:
                write_sysctl(name, value)
            except OSError as e:
                raise LabError(f"peer sysctl {name}={value}: {e.strerror or e}") from None
        if self.congestion:
            try:
                write_sysctl("net.ipv4.tcp_congestion_control", self.congestion)
            except PermissionError:
                self.cc_per_socket = True
                allowed = read_sysctl("net.ipv4.tcp_allowed_congestion_control")
                self.notes.append(
                    f"the peer namespace may not default to {self.congestion} (host allows: "
                    f"{allowed}); the kernel agent sets it per socket (TCP_CONGESTION), other "
                    f"programs get {read_sysctl('net.ipv4.tcp_congestion_control')}"
                )
            except FileNotFoundError:
                raise LabError(
                    f"congestion control {self.congestion!r} is not available (have: "
                    f"{read_sysctl('net.ipv4.tcp_available_congestion_control')})"
                ) from None
        self.peer_cc = read_sysctl("net.ipv4.tcp_congestion_control")

    def _setup_peer_link(self) -> int:
        from .rtnl import Rtnl, set_tx_checksum

        idx = socket.if_nametoindex(self.peer_ifname)
        with Rtnl() as rt:
            rt.set_up(1)  # lo
            rt.set_up(idx)
            rt.add_ipv4(idx, self.peer_ip, self.prefixlen)
            if self.peer_ip6:
                rt.add_ipv6(idx, self.peer_ip6, PREFIXLEN6)
        if self.peer_ip6:
            time.sleep(MLD_SETTLE)  # the address's MLD reports: out before the lab is up
        if not self.peer_tx_offload:
            set_tx_checksum(self.peer_ifname, False)
        return idx

    def close(self) -> None:
        """Tear everything down; idempotent, safe on a half-built lab."""
        self._close(unwinding=sys.exc_info()[0] is not None)

    def _close(self, unwinding: bool) -> None:
        if self._closed:
            return
        self._closed = True
        pending: list[int] = []
        try:
            with _signals_held() as pending:
                try:
                    self._down()
                finally:
                    _live.discard(self)
        finally:
            _restore_handlers()
        if pending and not unwinding:  # deliver what arrived during teardown, now
            signal.raise_signal(pending[0])

    def _down(self) -> None:
        errors: list[BaseException] = []

        def attempt(fn: Callable[[], object]) -> None:
            try:
                fn()
            except Exception as e:
                errors.append(e)

        # The links on a thread: closing an AF_PACKET socket waits out an RCU grace period
        # (synchronize_net, ~10 ms here), which the rest of the teardown need not wait for.
        closer = in_background(attempt, [link.close for link in self._links])
        self._links.clear()
        attempt(self._stop_processes)
        if self.peer_ns is not None and not self.keep:
            attempt(self._destroy_peer_sockets)
        if self._diag is not None:
            attempt(self._diag.close)
            self._diag = None
        if self.ktrace is not None:
            attempt(self.ktrace.close)
            self.ktrace = None
        attempt(self.slot.release)
        for ns in (self.peer_ns, self.emu_ns):
            if ns is not None:
                attempt(ns.stop)
        closer()
        # With ``keep`` the names (and an unheld lock file for ``lab clean``) stay.
        attempt(lambda: self._lock.release(remove=not self.keep))
        if errors:
            raise errors[0]

    def _stop_processes(self) -> None:
        stop_all(self._procs)
        if self._procs:
            # Anything that escaped its process group but carries our tag.
            registry.kill_processes(registry.tagged_processes([self.runid]))
        self._procs.clear()

    def __enter__(self) -> Lab:
        return self.start()

    def __exit__(self, exc_type: object, *exc: object) -> None:
        self._close(unwinding=exc_type is not None)

    async def __aenter__(self) -> Lab:
        return self.start()

    async def __aexit__(self, exc_type: object, *exc: object) -> None:
        self._close(unwinding=exc_type is not None)

    @property
    def live(self) -> bool:
        return self._started and not self._closed

    def _need_live(self) -> tuple[NsThread, NsThread]:
        if not self.live or self.emu_ns is None or self.peer_ns is None:
            raise LabError("the lab is not up")
        return self.emu_ns, self.peer_ns

    # -- facts ------------------------------------------------------------------------------------
    @property
    def env(self) -> dict[str, str]:
        """What peer programs find in their environment."""
        env = {
            registry.ENV_TAG: self.runid,
            # where this run's lock is, so `netemu lab clean` run from any run directory
            # can tell whether the run is alive (the kernel drops the lock at its death)
            registry.ENV_LOCK: self._lock.path,
            "NETEMU_EMU_IP": self.emu_ip,
            "NETEMU_PEER_IP": self.peer_ip,
            "NETEMU_PREFIXLEN": str(self.prefixlen),
            "NETEMU_EMU_MAC": self.emu_mac,
            "NETEMU_PEER_MAC": self.peer_mac,
            "NETEMU_PEER_IF": self.peer_ifname,
        }
        if self.congestion:
            env["NETEMU_TCP_CONGESTION"] = self.congestion
        if self.emu_ip6 and self.peer_ip6:
            env.update(NETEMU_EMU_IP6=self.emu_ip6, NETEMU_PEER_IP6=self.peer_ip6)
        return env

    def describe(self) -> dict[str, Any]:
        pid = os.getpid()
        return {
            "runid": self.runid,
            "emu_ip": self.emu_ip,
            "peer_ip": self.peer_ip,
            "prefixlen": self.prefixlen,
            "emu_ip6": self.emu_ip6,
            "peer_ip6": self.peer_ip6,
            "emu_mac": self.emu_mac,
            "peer_mac": self.peer_mac,
            "emu_if_mac": self.emu_if_mac,
            "emu_ifname": self.emu_ifname,
            "peer_ifname": self.peer_ifname,
            "emu_ifindex": self.emu_ifindex,
            "peer_ifindex": self.peer_ifindex,
            "peer_cc": self.peer_cc,
            "congestion": self.congestion,
            "cc_per_socket": self.cc_per_socket,
            "peer_sysctls": self.peer_sysctls,
            "netns_names": self.netns_names,
            "notes": self.notes,
            "enter": {
                role: f"nsenter --net=/proc/{pid}/fd/{ns.fd}"
                for role, ns in (("emu", self.emu_ns), ("peer", self.peer_ns))
                if ns is not None and ns.fd >= 0
            },
            "up_ms": round(self.up_seconds * 1000, 1),
        }

    # -- running code inside ----------------------------------------------------------------------
    def run_in_peer(self, fn: Callable[..., T], /, *args: Any, **kwargs: Any) -> T:
        """Run ``fn`` on the peer namespace's thread (sockets it opens live there)."""
        return self._need_live()[1].call(fn, *args, **kwargs)

    def run_in_emu(self, fn: Callable[..., T], /, *args: Any, **kwargs: Any) -> T:
        return self._need_live()[0].call(fn, *args, **kwargs)

    def spawn(
        self,
        argv: Sequence[str],
        *,
        env: Mapping[str, str] | None = None,
        name: str | None = None,
        ns: str = "peer",
        stdin: int | IO[Any] | None = subprocess.DEVNULL,
        stdout: int | IO[Any] | None = None,
        stderr: int | IO[Any] | None = None,
        cwd: str | None = None,
        stop_signal: int = signal.SIGTERM,
        stop_timeout: float = 1.0,
    ) -> LabProcess:
        """Start any program in the peer (or ``ns="emu"``) namespace, with the lab's
        addresses in its environment. The lab stops it (and its process group) on
        teardown: ``stop_signal``, up to ``stop_timeout`` s, then SIGKILL."""
        emu, peer = self._need_live()
        thread = peer if ns == "peer" else emu if ns == "emu" else None
        if thread is None:
            raise ValueError(f"ns must be 'peer' or 'emu', not {ns!r}")
        full_env = {**os.environ, **self.env, **(env or {})}
        name = name or os.path.basename(argv[0])
        log = None
        if stderr is None and self.log_dir:
            os.makedirs(self.log_dir, exist_ok=True)
            log = open(os.path.join(self.log_dir, f"{name}.log"), "ab")  # noqa: SIM115
            stderr = log
        try:
            proc = thread.call(
                spawn,
                argv,
                env=full_env,
                name=name,
                stdin=stdin,
                stdout=stdout,
                stderr=stderr,
                cwd=cwd,
                stop_signal=stop_signal,
                stop_timeout=stop_timeout,
            )
        finally:
            if log is not None:
                log.close()
        self._procs.append(proc)
        self._lock.update(children=[p.pid for p in self._procs])
        return proc

    def start_agent(
        self, *, name: str = "agent", stderr: int | IO[Any] | None = None
    ) -> KernelAgent:
        """The kernel agent in the peer namespace (``KernelAgent``; ``.aio`` for async)."""
        from .kernel import AGENT_PATH, KernelAgent

        proc = self.spawn(
            [sys.executable, "-I", "-S", AGENT_PATH],
            name=name,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=stderr,
            stop_timeout=0.5,
        )
        agent = KernelAgent(proc)
        agent.ping()
        return agent

    def start_go(
        self,
        program: str,
        *args: str,
        name: str | None = None,
        port: int | None = None,
        wait: bool = True,
        timeout: float = 10.0,
        stderr: int | IO[Any] | None = None,
    ) -> LabProcess:
        """Build (first time) and start a Go peer (``hello``, ``echo``) in the peer
        namespace; with ``wait``, return once it listens on ``port`` (default: from
        ``-addr`` or the program's default)."""
        from .gobuild import binary

        exe = binary(program)
        if port is None:
            port = GO_DEFAULT_PORTS.get(program)
            for i, a in enumerate(args):
                if a in ("-addr", "--addr") and i + 1 < len(args):
                    port = int(args[i + 1].rsplit(":", 1)[1])
                elif a.startswith(("-addr=", "--addr=")):
                    port = int(a.rsplit(":", 1)[1])
        proc = self.spawn([str(exe), *args], name=name or program, stderr=stderr, stop_timeout=0.5)
        if wait and port is not None:
            self.wait_listening(port, timeout=timeout, proc=proc)
        return proc

    # -- looking at the peer ----------------------------------------------------------------------
    def _probe(self) -> DiagProbe:
        if self._diag is None:
            from .diag import DiagProbe

            self._diag = self._need_live()[1].call(DiagProbe)
        return self._diag

    def _destroy_peer_sockets(self) -> None:
        """Abort what the peer's programs left (DiagProbe.destroy_all), on the way down."""
        from .diag import DiagProbe

        assert self.peer_ns is not None
        probe = self._diag or self.peer_ns.call(DiagProbe)
        try:
            probe.destroy_all()
        finally:
            if probe is not self._diag:
                probe.close()

    def start_kernel_trace(self) -> KernelTrace:
        """Open the run's tracefs instance (``netemu-<runid>``) with the TCP tracepoints
        on; the lab removes it when it goes down. Raises ``ktrace.TraceUnavailable``
        (with the reason) where tracepoints cannot be read, or when the lab holds no
        slot (its tuples would not be unique)."""
        from .ktrace import INSTANCE_PREFIX, KernelTrace, TraceUnavailable

        if self.ktrace is None:
            if self.slot.number is None:
                raise TraceUnavailable(
                    f"no lab slot ({self.slot.why}), so this lab's 4-tuples may be another lab's"
                )
            self.ktrace = KernelTrace(f"{INSTANCE_PREFIX}{self.runid}")
        return self.ktrace

    def peer_sockets(
        self,
        *,
        port: int | None = None,
        local_port: int | None = None,
        remote_port: int | None = None,
        states: int | None = None,
        info: bool = True,
    ) -> list[SockState]:
        """The peer namespace's TCP sockets (both families), via sock_diag; ``states``:
        a mask of kernel TCP_* states (a timewait socket matches its sub-state's bit);
        ``info=False``: no tcp_info, so no socket's lock is taken."""
        from .diag import ALL_STATES

        return self._probe().sockets(
            port=port,
            local_port=local_port,
            remote_port=remote_port,
            states=ALL_STATES if states is None else states,
            info=info,
        )

    def wait_listening(
        self, port: int, *, timeout: float = 5.0, proc: LabProcess | None = None
    ) -> SockState:
        deadline = time.monotonic() + timeout
        while True:
            if (s := self._listener(port, proc, f"before listening on {port}")) is not None:
                return s
            if time.monotonic() > deadline:
                raise LabError(
                    f"nothing listens on port {port} in the peer namespace after {timeout} s"
                )
            time.sleep(0.005)

    async def wait_listening_async(
        self, port: int, *, timeout: float = 5.0, proc: LabProcess | None = None
    ) -> SockState:
        import anyio

        with anyio.fail_after(timeout):
            while (s := self._listener(port, proc, "before listening")) is None:
                await anyio.sleep(0.005)
            return s

    def _listener(self, port: int, proc: LabProcess | None, exited: str) -> SockState | None:
        """The peer's socket listening on ``port``, or None yet; LabError when ``proc``
        (the peer meant to listen) has exited, the message ending in ``exited``."""
        for s in self.peer_sockets(local_port=port):
            if s.state == "LISTEN":
                return s
        if proc is not None and proc.returncode is not None:
            raise LabError(f"{proc.name} exited ({proc.returncode}) {exited}")
        return None

    # -- the emulator's wire -------------------------------------------------------------------------
    def open_link(self, **kwargs: Any) -> RawLink:
        """A ``RawLink`` on the emulator's veth, filtered for ``emu_ip`` (and ``emu_ip6``);
        closed with the lab."""
        from ..link import RawLink

        emu, _ = self._need_live()
        kwargs.setdefault("ip6", self.emu_ip6)
        link = RawLink.open(emu, self.emu_ifindex, self.emu_ip, **kwargs)
        # A Host on this link hands out its ephemeral ports from the lab's slot block, so
        # no two live labs' sockets share a 4-tuple (registry.Slot, lab/ktrace.py).
        link.ephemeral = self.slot.emu_ports
        self._links.append(link)
        return link
