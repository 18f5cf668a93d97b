"""Cross-field rules of a scenario, run once its fields are valid: which connection
and peer each step is on, what opens a connection before it is used, listeners and
ports, relay mode's limits. The checker resolves defaults on the way (``conn``,
``peer``, ``within``, ``timeout``, ``relative``) and reports ``Problem``s.

Layer rule: reads the models of ``scenario.peers``, ``steps`` and ``segments``;
``scenario.schema`` (the ``Scenario`` model) runs it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from .peers import DEFAULT_PORTS, ConnectionSpec
from .segments import Drop, ExpectNoSegment, ExpectSegment, Inject
from .steps import (
    Abort,
    Accept,
    Close,
    Connect,
    ExpectData,
    ExpectEvent,
    ExpectPeerState,
    ExpectState,
    Listen,
    PeerStep,
    Recv,
    Send,
    Shutdown,
    StepBase,
    TimeoutMixin,
    WithinMixin,
)
from .units import did_you_mean, show

if TYPE_CHECKING:
    from .schema import Scenario

CONN_STEPS = (Connect, Accept, Send, Recv, Shutdown, Close, Abort, ExpectData, ExpectEvent)
WIRE_STEPS = (Inject, Drop, ExpectSegment, ExpectNoSegment)


class Problem:
    """A cross-field problem: ``loc`` as in pydantic errors, ``key``: point at the key."""

    __slots__ = ("key", "loc", "message")

    def __init__(self, loc: tuple[str | int, ...], message: str, key: bool = False) -> None:
        self.loc = loc
        self.message = message
        self.key = key


class Checker:
    """Cross-field rules; resolves defaults on the way (conn, peer, within, relative)."""

    def __init__(self, s: Scenario) -> None:
        self.s = s
        self.problems: list[Problem] = []

    def err(self, loc: tuple[str | int, ...], message: str, key: bool = False) -> None:
        self.problems.append(Problem(loc, message, key))

    def run(self) -> list[Problem]:
        self.peers()
        self.one_namespace()
        self.connections()
        self.steps()
        self.network()
        return self.problems

    def peers(self) -> None:
        s = self.s
        if s.peer is not None and s.peers:
            self.err(("peers",), "give either 'peer' or 'peers', not both", key=True)
        elif s.peer is None and not s.peers:
            self.err((), "missing 'peer' (e.g. peer: kernel, or peers: {name: {kind: ...}})")
        elif s.peer is not None:
            s.peers = {"peer": s.peer}
        self.own_sysctls = {name: set(p.sysctls) for name, p in s.peers.items()}
        for p in s.peers.values():
            p.sysctls = {**s.sysctls, **p.sysctls}
            if p.port is None:
                p.port = DEFAULT_PORTS.get(p.kind)

    def one_namespace(self) -> None:
        """In endpoint mode every peer runs in the lab's one peer namespace: two peers
        that want one sysctl (or congestion control) set two ways would get one of
        them, silently."""
        first: dict[str, tuple[str, str]] = {}  # setting -> (peer, value)
        for name, p in self.s.peers.items():
            settings: list[tuple[str, str, tuple[str, ...], bool]] = [
                (k, v, ("sysctls", k), k in self.own_sysctls.get(name, ()))
                for k, v in p.sysctls.items()
            ]
            if p.congestion_control is not None:
                settings.append(
                    ("congestion_control", p.congestion_control, ("congestion_control",), True)
                )
            for key, value, sub, own in settings:
                other = first.setdefault(key, (name, value))
                if other[1] != value:
                    loc = ("peers", name, *sub) if own else ("peers", other[0], *sub)
                    self.err(
                        loc,
                        f"peers {show(other[0])} and {show(name)} share one "
                        f"namespace: {key} is {other[1]} for {show(other[0])} and "
                        f"{value} for {show(name)}, and only one can hold (set it "
                        "once)",
                        key=key != "congestion_control",
                    )

    def network(self) -> None:
        """netem's reorder lets a frame skip the delay the others wait: with none, nothing
        is held back and nothing overtakes."""
        net = self.s.network
        for d in ("out", "in"):
            imp = net.direction(d)
            if imp.reorder and not (imp.delay or imp.jitter):
                loc = (
                    ("network", "reorder")
                    if "reorder" in net.model_fields_set
                    else ("network", d, "reorder")
                )
                self.err(
                    loc,
                    f"reorder needs a delay or jitter (in {show(d)}): without one "
                    "nothing is held back for a frame to overtake",
                )

    def peer_listen_conn(self, st: StepBase, args: tuple[str | int, ...]) -> None:
        if isinstance(st, PeerStep) and st.listen is not None and st.conn is not None:
            self.err(
                (*args, "conn"),
                "a peer listen is on no connection: 'conn' does "
                "nothing (a peer accept names the connection)",
                key=True,
            )

    def peer_ref(
        self, at: tuple[str | int, ...], args: tuple[str | int, ...], name: str | None
    ) -> str | None:
        """Resolve a peer name: ``at`` locates the whole thing, ``args`` its mapping."""
        peers = self.s.peers
        if not peers:
            return name
        if name is None:
            if len(peers) == 1:
                return next(iter(peers))
            self.err(at, f"several peers ({', '.join(peers)}): say which with 'peer:'")
            return None
        if name not in peers:
            hint = did_you_mean(name, peers) or f" (peers: {', '.join(peers)})"
            self.err((*args, "peer"), f"unknown peer {show(name)}{hint}")
        return name

    def connections(self) -> None:
        for name, spec in self.s.connections.items():
            loc = ("connections", name)
            spec.peer = self.peer_ref(loc, loc, spec.peer)
            if spec.raw and spec.port is None and spec.local_port is None:
                self.err(
                    loc,
                    f"raw connection {show(name)} needs 'port' (the peer's) or "
                    "'local_port' (netemu's, when the peer connects)",
                )
            if spec.raw and spec.options is not None and spec.options.model_fields_set:
                self.err(
                    (*loc, "options"),
                    f"connection {show(name)} is raw: netemu's "
                    "endpoint sends nothing on it, so 'options' do nothing",
                    key=True,
                )

    def steps(self) -> None:
        s = self.s
        self.default = s.default_conn()
        self.raw = {n for n, c in s.connections.items() if c.raw}
        self.created_at = self.opened_at()
        self.known = set(s.connections) | set(self.created_at)
        self.accepted_specs()
        self.opened: dict[str, StepBase] = {}
        self.listens: list[int] = []
        for i, st in enumerate(s.steps):
            at: tuple[str | int, ...] = ("steps", i)  # the step as a whole
            args: tuple[str | int, ...] = (*at, st.ACTION)  # its arguments
            conn = getattr(st, "conn", None)
            self.step_peer_and_port(st, at, args, conn)
            self.step_conn(st, at, args, conn)
            if isinstance(st, Inject) and not st.relative:
                for f in ("seq", "ack"):
                    v = getattr(st, f)
                    if v is not None and not 0 <= v < 2**32:
                        self.err(
                            (*args, f),
                            f"{f} {v} is out of range for an absolute "
                            "sequence number (0 to 4294967295)",
                        )

    def opened_at(self) -> dict[str, int]:
        """The connections netemu opens (connect/accept): name -> index of the first
        step opening it."""
        created_at: dict[str, int] = {}
        for i, st in enumerate(self.s.steps):
            if isinstance(st, Connect | Accept) and (st.conn or self.default) not in self.raw:
                created_at.setdefault(st.conn or self.default, i)
        return created_at

    def accepted_specs(self) -> None:
        """A declared connection that accept opens: netemu's listener makes it, so its
        options and port are not its own."""
        for name, i in self.created_at.items():
            spec, opener = self.s.connections.get(name), self.s.steps[i]
            if spec is None or not isinstance(opener, Accept):
                continue
            loc = ("connections", name)
            if spec.options is not None and spec.options.model_fields_set:
                self.err(
                    (*loc, "options"),
                    f"connection {show(name)} is opened by accept "
                    f"({opener.where()}): it has the listener's options (put them on "
                    "the listen step)",
                    key=True,
                )
            if spec.port is not None:
                self.err(
                    (*loc, "port"),
                    f"connection {show(name)} is opened by accept "
                    f"({opener.where()}): the peer chooses its port (a peer connect's "
                    "local_port sets it)",
                    key=True,
                )

    def step_peer_and_port(
        self, st: StepBase, at: tuple[str | int, ...], args: tuple[str | int, ...], conn: str | None
    ) -> None:
        """One step's defaults, its peer, and the ports of connect, listen and accept."""
        s = self.s
        declared, default = s.connections, self.default
        if isinstance(st, Connect) and not st.wait and "timeout" in st.model_fields_set:
            self.err(
                (*args, "timeout"),
                "'timeout' does nothing with 'wait: false' "
                "(the connect goes on once the SYN is sent)",
                key=True,
            )
        self.peer_listen_conn(st, args)
        self.defaults(st)
        if (
            isinstance(st, ExpectPeerState)
            and st.port is not None
            and st.conn is None
            and st.peer is not None
            and len(s.peers) > 1
        ):
            # All peers share the peer namespace: a listener there is the namespace's,
            # whichever peer made it (asking it of one peer passed on another's).
            self.err(
                (*args, "peer"),
                f"'peer' with 'port' alone: the peers "
                f"({', '.join(sorted(s.peers))}) share one namespace, and its "
                f"listener on {st.port} is answered whichever of them listens; "
                "drop 'peer', or name the connection ('conn')",
            )
        if isinstance(st, Connect | PeerStep | ExpectPeerState):
            self.conn_peer(args, st, declared, default)
            st.peer = self.peer_ref(at, args, st.peer)
        if isinstance(st, Connect):
            self.connect_port(at, st, declared.get(conn or default))
        if isinstance(st, PeerStep) and st.peer in s.peers and s.peers[st.peer].kind != "kernel":
            self.err(
                at,
                f"peer {show(st.peer)} is a {s.peers[st.peer].kind} peer: only a "
                "kernel peer takes commands",
            )
        if isinstance(st, Listen):
            self.listens.append(st.port)
        if isinstance(st, Accept):
            self.accept_port(at, args, st, self.listens, declared.get(conn or default))

    def step_conn(
        self, st: StepBase, at: tuple[str | int, ...], args: tuple[str | int, ...], conn: str | None
    ) -> None:
        """The connection a step is on (its default resolved): known, not raw where
        netemu's endpoint acts, opened before it is used."""
        default, known = self.default, self.known
        conn_at = (*args, "conn") if conn is not None else at
        if isinstance(st, (*CONN_STEPS, ExpectState)):
            name = conn or default
            st.conn = name
            if name in self.raw:
                self.err(
                    conn_at,
                    f"connection {show(name)} is raw: "
                    + (
                        "it has no state of its own; use expect_peer_state"
                        if isinstance(st, ExpectState)
                        else "netemu's endpoint sends nothing on "
                        "it; use inject, expect_segment, drop and peer steps"
                    ),
                )
            elif name not in known:
                self.unknown_conn(at, args, name, conn is not None, known)
            elif isinstance(st, ExpectState):
                pass  # a state is asked of a connection whenever it is opened
            elif isinstance(st, Connect | Accept):
                if name in self.opened:
                    self.err(
                        at,
                        f"connection {show(name)} is already opened by the "
                        f"{self.opened[name].ACTION} at {self.opened[name].where()}",
                    )
                self.opened.setdefault(name, st)
            elif name not in self.opened:
                where = self.created_at.get(name)
                later = (
                    f" (it is opened later, at {self.s.steps[where].where()})"
                    if where is not None
                    else ""
                )
                self.err(
                    at, f"connection {show(name)} is used before connect or accept opens it{later}"
                )
        elif isinstance(st, (*WIRE_STEPS, PeerStep, ExpectPeerState)):
            if conn is not None and conn not in known:
                self.unknown_conn(at, args, conn, True, known)
            elif (
                conn is None
                and default in known
                and not (isinstance(st, ExpectPeerState) and st.port is not None)
                and not (isinstance(st, PeerStep) and st.listen is not None)
            ):
                st.conn = default

    def defaults(self, st: StepBase) -> None:
        s = self.s
        if isinstance(st, WithinMixin) and st.within is None:
            st.within = s.timeout
        if isinstance(st, TimeoutMixin) and st.timeout is None:
            st.timeout = s.timeout
        if isinstance(st, Inject | ExpectSegment | ExpectNoSegment) and st.relative is None:
            st.relative = s.relative

    def unknown_conn(
        self,
        at: tuple[str | int, ...],
        args: tuple[str | int, ...],
        name: str,
        explicit: bool,
        known: set[str],
    ) -> None:
        if explicit:
            hint = did_you_mean(name, sorted(known)) or (
                f" (connections: {', '.join(sorted(known))})"
                if known
                else " (declare it under 'connections:' or open it with connect or accept)"
            )
            self.err((*args, "conn"), f"unknown connection {show(name)}{hint}")
        else:
            self.err(
                at,
                f"no connection {show(name)}: open one with connect or accept, or "
                "name one with 'conn:'",
            )

    def connect_port(
        self, at: tuple[str | int, ...], st: Connect, spec: ConnectionSpec | None
    ) -> None:
        if st.port is not None:
            return
        peer = self.s.peers.get(st.peer or "")
        st.port = (spec.port if spec else None) or (peer.port if peer else None)
        if st.port is None and peer is not None:
            self.err(at, f"connect needs 'port': a {peer.kind} peer has no default port")

    def conn_peer(
        self,
        args: tuple[str | int, ...],
        st: Connect | PeerStep | ExpectPeerState,
        declared: dict[str, ConnectionSpec],
        default: str,
    ) -> None:
        """A declared connection's ``peer`` is its steps' peer: the default, and a step
        that names another is an error (the step's won, silently)."""
        if isinstance(st, PeerStep) and st.listen is not None:
            return  # on no connection
        if isinstance(st, ExpectPeerState) and st.port is not None and st.conn is None:
            return  # a socket named by its port
        name = st.conn or default
        spec = declared.get(name)
        if spec is None or spec.peer is None:
            return
        if st.peer is None:
            st.peer = spec.peer
        elif st.peer != spec.peer:
            self.err(
                (*args, "peer"),
                f"connection {show(name)} is peer {show(spec.peer)}'s "
                f"(connections:), not {show(st.peer)}'s",
            )

    def accept_port(
        self,
        at: tuple[str | int, ...],
        args: tuple[str | int, ...],
        st: Accept,
        listens: list[int],
        spec: ConnectionSpec | None = None,
    ) -> None:
        own = spec.local_port if spec is not None and not spec.raw else None
        if listens and own is not None:  # the connection's local_port: which listener
            if st.port is None and own not in listens:
                self.err(
                    at,
                    f"no earlier listen on port {own}, connection "
                    f"{show(st.conn)}'s local_port (listening on "
                    f"{', '.join(map(str, listens))})",
                )
                return
            if st.port is not None and st.port != own:
                self.err(
                    (*args, "port"),
                    f"accept on port {st.port}, but connection "
                    f"{show(st.conn)}'s local_port is {own}",
                )
                return
            st.port = own
        if not listens:
            self.err(at, "accept needs an earlier 'listen' step")
        elif st.port is None:
            if len(set(listens)) > 1:
                self.err(
                    at,
                    f"several listeners ({', '.join(map(str, listens))}): say which with 'port:'",
                )
            else:
                st.port = listens[0]
        elif st.port not in listens:
            self.err(
                (*args, "port"),
                f"no earlier listen on port {st.port} (listening on "
                f"{', '.join(map(str, listens))})",
            )


# --- relay mode ------------------------------------------------------------------

RELAY_PEERS = ("client", "server")
# Steps that act on netemu's own endpoint: relay mode has none.
ENDPOINT_STEPS = (
    Connect,
    Listen,
    Accept,
    Send,
    Recv,
    Shutdown,
    Close,
    Abort,
    Inject,
    ExpectState,
    ExpectData,
    ExpectEvent,
)


_RELAY_HINT = "use peer steps (peer: {peer: client, …}), drop, expect_segment or expect_peer_state"
_RELAY_HINTS = {
    **{
        a: f"use a peer step, e.g. peer: {{peer: client, {a}: …}}"
        for a in ("connect", "listen", "send", "shutdown", "close", "abort")
    },
    "accept": "use a peer step, e.g. peer: {peer: server, accept: true}",
    "recv": "use a peer step, e.g. peer: {peer: server, read: N} or {expect: …}",
    "expect_data": "use a peer step, e.g. peer: {peer: server, expect: …}",
    "expect_state": "use expect_peer_state: {peer: client, state: …}",
    "inject": "script faults with drop, check segments with expect_segment",
}


class RelayChecker(Checker):
    """``mode: relay``: two kernel peers, ``client`` (lab A) and ``server`` (lab B), that
    netemu bridges; only peer, wire (drop, expect_segment, expect_no_segment), sleep and
    expect_peer_state steps. ``conn`` names a kernel-to-kernel connection, opened by a
    peer ``connect`` or ``accept`` (default ``c``)."""

    def run(self) -> list[Problem]:
        s = self.s
        if s.peer is not None:
            self.err(
                ("peer",),
                "relay mode needs two kernel peers: peers: {client: {kind: "
                "kernel}, server: {kind: kernel}}",
                key=True,
            )
        self.peers()
        if s.peer is None and s.peers:
            if set(s.peers) != set(RELAY_PEERS):
                self.err(
                    ("peers",),
                    "relay mode needs exactly two peers named client and "
                    f"server (got {', '.join(s.peers)})",
                    key=True,
                )
            for name, p in s.peers.items():
                if p.kind != "kernel":
                    self.err(
                        ("peers", name, "kind"),
                        f"relay mode bridges kernel peers: {show(name)} is a {p.kind} peer",
                    )
        if s.connections:
            self.err(
                ("connections",),
                "relay mode has no netemu connections: the peers "
                "connect to each other (peer: {peer: client, connect: …})",
                key=True,
            )
        if s.options.model_fields_set:
            self.err(
                ("options",),
                "relay mode has no endpoint of netemu's: 'options' do "
                "nothing (the peers' kernels take sysctls)",
                key=True,
            )
        for name, p in s.peers.items():
            if p.port is not None:
                self.err(
                    ("peers", name, "port"),
                    "a relay peer has no default port: 'port' "
                    "does nothing (a peer connect or listen names its port)",
                    key=True,
                )
        self.relay_steps()
        self.network()
        return self.problems

    def relay_steps(self) -> None:
        s = self.s
        opened = {
            st.conn or "c"
            for st in s.steps
            if isinstance(st, PeerStep) and st.command in ("connect", "accept")
        }
        listens: dict[str | None, list[int]] = {}
        for i, st in enumerate(s.steps):
            at: tuple[str | int, ...] = ("steps", i)
            args: tuple[str | int, ...] = (*at, st.ACTION)
            self.peer_listen_conn(st, args)
            self.defaults(st)
            if isinstance(st, ENDPOINT_STEPS):
                self.err(
                    at,
                    f"'{st.ACTION}' acts on netemu's own endpoint, which relay mode "
                    f"does not have: {_RELAY_HINTS.get(st.ACTION, _RELAY_HINT)}",
                )
                continue
            if isinstance(st, PeerStep | ExpectPeerState):
                st.peer = self.peer_ref(at, args, st.peer)
            if isinstance(st, PeerStep) and st.listen is not None:  # (its one action)
                listens.setdefault(st.peer, []).append(st.listen.port)
                continue
            if isinstance(st, PeerStep) and st.accept is not None:
                have = listens.get(st.peer, [])
                if not have:
                    self.err(at, f"peer {show(st.peer)} accepts without an earlier peer listen")
                elif st.accept.port is None and len(set(have)) == 1:
                    st.accept.port = have[0]
            if not isinstance(st, (*WIRE_STEPS, PeerStep, ExpectPeerState)):
                continue
            conn = getattr(st, "conn", None)
            if isinstance(st, ExpectPeerState) and st.port is not None and conn is None:
                continue
            if conn is not None and conn not in opened:
                hint = did_you_mean(conn, sorted(opened)) or (
                    f" (connections: {', '.join(sorted(opened))})"
                    if opened
                    else " (a peer connect or accept opens one)"
                )
                self.err((*args, "conn"), f"unknown connection {show(conn)}{hint}")
            st.conn = conn or "c"
