"""Everything a run knows of its peer kernels' sockets, from one place.

Two sources, one interface (docs/trace.md, "where each lane's facts come from"):

- ``kernel``: the kernel's own tracepoints (lab/ktrace.py). Every state change of
  every peer socket, in order, timestamped on the trace's clock when it happened;
  the kernel's cwnd, ssthresh, srtt and congestion state per socket; its
  retransmissions and resets. Nothing is polled, so nothing is lost or perturbed.
- ``poll``: sock_diag dumps every few milliseconds, where tracepoints cannot be read
  (not root, no tracefs, no free lab slot): a state shorter than the interval is
  missed and every change is seen late. The run's report says which source it had
  and, for ``poll``, why.

A runner gives ``PeerView`` its labs by role ("peer", or the relay's "client" and
"server") and a ``record`` callback that files a state change where its ladder
wants it; ``snapshot(role)`` answers "what is the peer's socket in now", and
``history(role)`` "what has it been through", the same way for both sources.
``peer_record`` and ``relay_record`` are those callbacks for one peer and for the
relay's two. Where neither source may run (a .pkt run: reading the kernel perturbs
it), ``infer_peer_states`` gives the ladder states inferred from the packets.

Layer: part of netemu.run; imports lab.ktrace and the trace's records.
"""

from __future__ import annotations

import contextlib
import functools
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from ..lab.core import Lab
from ..trace.record import (
    PeerCongestionRecord,
    PeerEventRecord,
    PeerStateRecord,
    StateRecord,
    Trace,
)

Endpoint = tuple[str, int]
Key = tuple[Endpoint, Endpoint]
# record(role, t, local, remote, old, new, source, info)
RecordFn = Callable[[str, float, Endpoint, Endpoint, str, str, str, dict], None]

KERNEL_INTERVAL = 0.005  # how often the kernel's buffer is drained (events keep their times)
POLL_INTERVAL = 0.002  # sock_diag's pace when polling


@dataclass(slots=True)
class SockView:
    """A peer socket as ``snapshot`` shows it (the fields sock_diag's SockState has);
    in a history, ``t`` is when it entered ``state``."""

    local: Endpoint
    remote: Endpoint
    state: str
    t: float = 0.0


def matching(
    socks: Any, own: int | None, other: int | None, port: int | None, listener: bool = False
) -> list[Any]:
    """The entries, among ``socks`` (anything with ``local``, ``remote`` and ``state``:
    sock_diag's sockets, a snapshot, a history), of the peer socket a step means: with
    ``listener``, the one listening on ``port``; with ``port``, the connection's socket
    on that local port (remote port ``other``); without, the socket of the connection
    whose remote port is ``other`` (and local port ``own``, when known). A socket of
    another connection never answers for this one, nor a listener for a connection."""
    socks = list(socks)
    if listener:
        return [s for s in socks if s.local[1] == port and s.remote[1] == 0]
    if other is None:
        return []
    return [
        s
        for s in socks
        if s.remote[1] != 0
        and s.remote[1] == other
        and s.local[1] == (port if port is not None else own if own is not None else s.local[1])
    ]


def states_of(
    socks: Any, own: int | None, other: int | None, port: int | None, listener: bool = False
) -> list[str]:
    """The states of ``matching``'s entries."""
    return [s.state for s in matching(socks, own, other, port, listener)]


class PeerView:
    def __init__(
        self,
        labs: dict[str, Any],
        trace: Trace,
        record: RecordFn,
        *,
        fixed_ports: Iterable[int] = (),
    ) -> None:
        """``fixed_ports``: netemu ports the scenario names (``local_port``), which are
        the run's too (and may be another run's: docs/trace.md)."""
        self.labs, self.trace, self._record = labs, trace, record
        self.fixed_ports = sorted(set(fixed_ports))
        self.source = ""
        self.reason = ""  # why ``poll``
        self._lock = threading.RLock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._ktrace: Any = None
        self._filters: dict[str, Any] = {}
        # per role: key -> last state (CLOSED kept, so a late look still sees it)
        self._now: dict[str, dict[Key, str]] = {role: {} for role in labs}
        self._history: dict[str, list[tuple[float, Key, str]]] = {role: [] for role in labs}
        self._pending_connect: dict[tuple[str, str, Endpoint], list[float]] = {}
        self._reset_at: dict[Key, float] = {}
        self._cc: dict[Key, tuple[int, int, int, str]] = {}  # cwnd, ssthresh, srtt_us, ca_state
        self._born: set[Key] = set()
        self._tw: dict[str, set[Key]] = {role: set() for role in labs}  # timewait-held
        self.foreign = 0  # events on the lab's tuples of sockets not born in this run

    # -- life ----------------------------------------------------------------------------
    def start(self) -> PeerView:
        from ..lab.ktrace import LabFilter, TraceUnavailable

        first = next(iter(self.labs.values()))
        try:
            self._ktrace = first.start_kernel_trace()
        except TraceUnavailable as e:
            self.source, self.reason = "poll", str(e)
        else:
            self.source = "kernel"
            self.trace.peer_trace_instance = self._ktrace.name
            labs = list(self.labs.values())
            lab_ips = {lab.emu_ip for lab in labs} | {lab.peer_ip for lab in labs}
            lab_ips |= {ip for lab in labs for ip in (lab.emu_ip6, lab.peer_ip6) if ip}

            def peer_block(lab: Lab) -> list[range]:
                ports = lab.slot.peer_ports
                return [] if ports is None else [range(ports[0], ports[1] + 1)]

            emu_blocks = [lab.slot.emu_ports for lab in labs if lab.slot.emu_ports]
            fixed = [range(p, p + 1) for p in self.fixed_ports]
            for role, lab in self.labs.items():
                # The remote end's port is netemu's, or another of the run's peers' (relay).
                others = [r for o in labs if o is not lab for r in peer_block(o)]
                self._filters[role] = LabFilter(
                    lab.peer_ip,
                    lab_ips,
                    lab.peer_ns.inode,
                    peer_block(lab),
                    emu_blocks + fixed + others,
                    confirm=functools.partial(self._confirm_listener, role),
                    peer_ip6=lab.peer_ip6,
                )
        self.trace.peer_source, self.trace.peer_source_note = self.source, self.reason
        self._thread = threading.Thread(target=self._run, name=f"peer-{self.source}", daemon=True)
        self._thread.start()
        return self

    def _run(self) -> None:
        interval = KERNEL_INTERVAL if self.source == "kernel" else POLL_INTERVAL
        while not self._stop.is_set():
            if not self.refresh():
                return
            self._stop.wait(interval)

    def stop(self) -> None:
        """Stop after one last look (states reached at the very end)."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(2.0)
            self._thread = None
            with contextlib.suppress(Exception):
                self.refresh()
        if self._ktrace is not None and self._ktrace.lost:
            self.trace.peer_source_note = (
                f"the kernel's trace buffer overflowed: {self._ktrace.lost} events lost"
            )

    def refresh(self) -> bool:
        """Bring the view up to date now (a drain or a dump); False once the lab is gone."""
        with self._lock:
            if self.source == "kernel":
                try:
                    events = self._ktrace.read()
                except Exception:
                    return False
                for ev in events:
                    for role, keep in self._filters.items():
                        if keep(ev):
                            self._on_event(role, ev)
                            break
                self._watch_timewait()
                return True
            for role, lab in self.labs.items():
                try:
                    socks = lab.peer_sockets()
                except Exception:  # the lab is going down
                    return False
                self.observe(role, socks)
            return True

    # -- what runners ask ----------------------------------------------------------------
    def snapshot(self, role: str) -> list[Any]:
        """The role's sockets now: sock_diag's list when polling; the kernel's reported
        states otherwise (a socket gone CLOSED is left out, as sock_diag would)."""
        if self.source != "kernel":
            socks = self.labs[role].peer_sockets()
            with self._lock:
                self.observe(role, socks)  # what an expectation saw is in the ladder too
            return socks
        self.refresh()
        with self._lock:
            return [SockView(k[0], k[1], st) for k, st in self._now[role].items() if st != "CLOSED"]

    def history(self, role: str) -> list[tuple[float, Key, str]]:
        """Every (time, key, state) the role's sockets went through, in order: for a
        tuple used by more than one socket in the run (a fixed local_port), only the
        latest socket's (an earlier one's states are not the one now on the tuple's)."""
        self.refresh()
        with self._lock:
            hist = list(self._history[role])
        opening = ("SYN-SENT", "SYN-RECEIVED", "LISTEN")
        start: dict[Key, int] = {}
        prev: dict[Key, str] = {}
        for i, (_t, key, state) in enumerate(hist):
            before = prev.get(key)
            if before is None or (state in opening and before not in opening):
                start[key] = i  # a new socket on this tuple
            prev[key] = state
        return [h for i, h in enumerate(hist) if i >= start[h[1]]]

    # -- polling -------------------------------------------------------------------------
    def observe(self, role: str, socks: list[Any]) -> None:
        """A sock_diag dump: record what changed since the last one."""
        now = time.monotonic()
        last = self._now[role]
        seen = set()
        for s in socks:
            key = (tuple(s.local), tuple(s.remote))
            seen.add(key)
            old = last.get(key)
            if old != s.state:
                self._emit(
                    role,
                    now,
                    key,
                    old or "",
                    s.state,
                    "poll",
                    {"rqueue": s.rqueue, "wqueue": s.wqueue, "cc": s.cc},
                )
        for key in [k for k, st in last.items() if k not in seen and st != "CLOSED"]:
            if key[1][1] != 0:
                self._emit(role, now, key, last[key], "CLOSED", "poll", {})
            else:
                last[key] = "CLOSED"

    # -- the kernel's events -------------------------------------------------------------
    def _emit(
        self, role: str, t: float, key: Key, old: str, new: str, source: str, info: dict
    ) -> None:
        self._now[role][key] = new
        self._history[role].append((t, key, new))
        self._record(role, t, key[0], key[1], old, new, source, info)

    def _confirm_listener(self, role: str, ev: Any) -> bool:
        """A listener's listen() or close() whose thread and process are gone: the lab's
        when sock_diag shows the lab listening on that port now (listen), or no longer
        (close) after this view saw it listen. (A dump of listeners without tcp_info
        takes no socket's lock.)"""
        try:
            socks = self.labs[role].peer_sockets(states=1 << 10, info=False)
        except Exception:
            return False
        listening = any(s.local[1] == ev.local[1] for s in socks)
        if ev.new == "LISTEN":
            return listening
        return not listening and self._now[role].get((ev.local, ev.remote)) == "LISTEN"

    def _born_here(self, role: str, ev: Any, key: Key) -> bool:
        """Is this a socket of this run's peer? Only then do its events count: a socket
        an earlier lab in the same slot left (a SIGKILLed run's orphan resending its FIN
        in a namespace nobody can reach) may have the same tuple, but it was not born in
        this run. A socket is born here when a change of it comes from a system call
        (the filter checked the namespace or the ports), when it leaves SYN-SENT (a
        connect) or LISTEN (a listener spawned it): an orphan does neither. A reset the
        kernel sends, or a SYN-ACK it resends, has no such past to check (no socket, or
        a request socket: a live listener's)."""
        if key in self._born or ev.kind in ("send_reset", "retransmit_synack"):
            return True
        if self._pending_connect.get((role, ev.local[0], ev.remote)):
            # a connect of the run's to this destination whose port is not named yet
            # (it got its answer before sock_diag was asked): its SYN resent, a reset
            self._born.add(key)
            return True
        if ev.kind == "state" and (ev.old in ("LISTEN", "SYN-SENT") or not ev.softirq):
            self._born.add(key)
            return True
        self.foreign += 1
        return False

    def _on_event(self, role: str, ev: Any) -> None:
        kind = ev.kind
        key = (ev.local, ev.remote)
        if key[0][1] and key[1][1] and not self._born_here(role, ev, key):
            return
        if kind == "state":
            self._on_state(role, ev, key)
        elif kind == "probe":
            f = ev.fields
            self._congestion(
                role,
                ev.t,
                key,
                cwnd=int(f.get("snd_cwnd", 0)),
                ssthresh=int(f.get("ssthresh", 0)),
                srtt=int(f.get("srtt", 0)),
                cause="tcp_probe",
                extra={"snd_wnd": int(f.get("snd_wnd", 0)), "rcv_wnd": int(f.get("rcv_wnd", 0))},
            )
        elif kind == "cong_state":
            from ..lab.ktrace import CA_STATES

            ca = int(ev.fields.get("cong_state", 0))
            self._congestion(
                role, ev.t, key, ca_state=CA_STATES.get(ca, str(ca)), cause="tcp_cong_state_set"
            )
        else:
            if kind in ("send_reset", "receive_reset"):
                self._reset_at[key] = ev.t
            if kind == "retransmit_synack":
                kind, detail = "retransmit", "SYN+ACK"
            elif kind == "send_reset":
                detail = ev.fields.get("reason", "")
            else:  # the socket's state, as the kernel names it (retransmit)
                from ..lab.ktrace import STATES  # (not at import: a .pkt run reads no trace)

                st = ev.fields.get("state", "")
                detail = STATES.get(st, st)
            self.trace.peer_events.append(
                PeerEventRecord(ev.t, role, ev.local, ev.remote, kind, detail)
            )

    def _on_state(self, role: str, ev: Any, key: Key) -> None:
        old, new = ev.old, ev.new
        if ev.local[1] == 0 and new == "SYN-SENT":
            # connect() reports SYN_SENT before its port is chosen. sock_diag names it
            # (SYN-SENT sockets only, without tcp_info: no lock taken) while it waits
            # for the SYN-ACK; if it has moved on already, its next change names it
            # (FIFO per destination).
            port = self._syn_sent_port(role, ev, key)
            if port is None:
                self._pending_connect.setdefault((role, ev.local[0], ev.remote), []).append(ev.t)
                return
            key = ((ev.local[0], port), ev.remote)
            self._born.add(key)
            self._tw[role].discard(key)
            self._emit(
                role,
                ev.t,
                key,
                "CLOSED",
                "SYN-SENT",
                "kernel",
                {"kernel": "TCP_CLOSE → TCP_SYN_SENT (its port from sock_diag)"},
            )
            return
        if old in ("LISTEN", "CLOSED"):  # a new socket on this tuple: the timewait
            self._tw[role].discard(key)  # socket of an earlier one is not it
        if old == "SYN-SENT" and self._now[role].get(key) != "SYN-SENT":
            pend = self._pending_connect.get((role, ev.local[0], ev.remote))
            if pend:
                self._tw[role].discard(key)
                self._emit(
                    role,
                    pend.pop(0),
                    key,
                    "CLOSED",
                    "SYN-SENT",
                    "kernel",
                    {"kernel": "TCP_CLOSE → TCP_SYN_SENT (port not yet chosen)"},
                )
        info = {"kernel": f"{ev.fields.get('oldstate')} → {ev.fields.get('newstate')}"}
        if (
            new == "CLOSED"
            and old in ("FIN-WAIT-1", "FIN-WAIT-2", "CLOSING")
            and key not in self._reset_at
        ):
            # Entering TIME-WAIT (or, for a socket its program closed, a FIN-WAIT-2 that
            # waits on without it): the full socket closes and a timewait socket takes its
            # tuple, with no event of its own (lab/ktrace.py). sock_diag lists it (its
            # sub-state as its state); from now on the tuple is watched there.
            tw = self._timewait_state(role, key)
            if tw is not None:
                info["kernel"] += f"; a timewait socket holds the tuple in {tw} (sock_diag)"
                self._tw[role].add(key)
                if tw == "TIME-WAIT" and old == "FIN-WAIT-2":
                    # Into TIME-WAIT now, if the remote's FIN came before this; else (a
                    # socket its program had closed) into a FIN-WAIT-2 timewait socket
                    # now, and TIME-WAIT when the FIN came, after it: sock_diag, asked a
                    # little later, cannot tell the two apart.
                    fin = self._fin_to(key, ev.t - 0.001)
                    if fin is not None and fin > ev.t:
                        self._emit(
                            role,
                            fin,
                            key,
                            old,
                            tw,
                            "poll",
                            {
                                "kernel": "timewait socket: FIN-WAIT-2 until the FIN "
                                "came (its frame's time), TIME-WAIT after "
                                "(sock_diag)"
                            },
                        )
                        return
                if tw != old:
                    self._emit(role, ev.t, key, old, tw, "kernel", info)
                return
        self._emit(role, ev.t, key, old, new, "kernel", info)

    def _fin_to(self, key: Key, after: float) -> float | None:
        """When the first FIN toward the socket ``key`` (from its remote) was on the wire
        at or after ``after``, by the trace's frames (read from this thread); None if
        none was."""
        from ..wire.frame import parse_tcp_frame

        best = None
        for t, _direction, data, mark in self.trace.frames_from_another_thread():
            if (
                t < after
                or mark in ("dropped", "bad-checksum", "malformed")
                or (best is not None and t >= best)
            ):
                continue
            got = parse_tcp_frame(data, False)
            if got is None:
                continue
            src, dst, seg = got
            if seg.flags & 0x01 and (dst, seg.dst_port) == key[0] and (src, seg.src_port) == key[1]:
                best = t
        return best

    def _syn_sent_port(self, role: str, ev: Any, key: Key) -> int | None:
        """The local port of the one SYN-SENT socket to ``ev.remote`` that no record
        has named yet, or None (none, or more than one: then the next change names it)."""
        try:
            socks = self.labs[role].peer_sockets(states=1 << 2, info=False)
        except Exception:
            return None
        ports = [
            s.local[1]
            for s in socks
            if tuple(s.remote) == ev.remote
            and s.local[0] == ev.local[0]
            and self._now[role].get((tuple(s.local), ev.remote)) != "SYN-SENT"
        ]
        return ports[0] if len(ports) == 1 else None

    def _timewait_socks(self, role: str) -> dict[Key, str] | None:
        """The role's sockets in FIN-WAIT-2 or TIME-WAIT (where timewait sockets are: a
        timewait socket matches its sub-state's bit), from a dump without tcp_info, so
        no socket's lock is taken; None when the lab cannot be asked."""
        try:
            socks = self.labs[role].peer_sockets(states=(1 << 5) | (1 << 6), info=False)
        except Exception:
            return None
        return {(tuple(s.local), tuple(s.remote)): s.state for s in socks}

    def _timewait_state(self, role: str, key: Key) -> str | None:
        socks = self._timewait_socks(role)
        return None if socks is None else socks.get(key)

    def _watch_timewait(self) -> None:
        """A timewait socket changes sub-state (FIN-WAIT-2 → TIME-WAIT when the FIN comes)
        and ends with no tracepoint: those of the run's tuples are looked at each
        refresh, and what changed is recorded as polled."""
        for role, keys in self._tw.items():
            if not keys:
                continue
            socks = self._timewait_socks(role)
            if socks is None:
                continue
            now = time.monotonic()
            for key in list(keys):
                st = socks.get(key, "CLOSED")
                was = self._now[role].get(key, "")
                if st != was:
                    t, how = now, "timewait socket (sock_diag)"
                    if was == "FIN-WAIT-2" and st == "TIME-WAIT":
                        since = max(
                            (t0 for t0, k, s0 in self._history[role] if k == key and s0 == was),
                            default=now,
                        )
                        fin = self._fin_to(key, since)
                        if fin is not None:  # it moved when the remote's FIN came
                            t, how = fin, how + "; timed by the FIN's frame"
                    self._emit(role, t, key, was, st, "poll", {"kernel": how})
                if st == "CLOSED":
                    keys.discard(key)

    def _congestion(
        self,
        role: str,
        t: float,
        key: Key,
        *,
        cause: str,
        cwnd: int | None = None,
        ssthresh: int | None = None,
        srtt: int | None = None,
        ca_state: str | None = None,
        extra: dict | None = None,
    ) -> None:
        cur = self._cc.setdefault(key, (0, 0, 0, "open"))
        new = (
            cwnd if cwnd is not None else cur[0],
            ssthresh if ssthresh is not None else cur[1],
            srtt if srtt is not None else cur[2],
            ca_state if ca_state is not None else cur[3],
        )
        changed = (new[0], new[1], new[3]) != (cur[0], cur[1], cur[3])
        self._cc[key] = new
        if changed:
            self.trace.peer_congestion.append(
                PeerCongestionRecord(
                    t,
                    role,
                    key[0],
                    key[1],
                    new[0],
                    new[1],
                    new[2],
                    new[3],
                    cause,
                    dict(extra or {}),
                )
            )


# -- where a state change is filed (a PeerView's ``record``) ---------------------------


def peer_record(trace: Trace) -> RecordFn:
    """One peer kernel against netemu's endpoint: its states are the ladder's right
    column (``PeerStateRecord``s)."""

    def record(
        role: str,
        t: float,
        local: Endpoint,
        remote: Endpoint,
        old: str,
        new: str,
        source: str,
        info: dict,
    ) -> None:
        trace.peer_states.append(
            PeerStateRecord(t, local, remote, new, info, old=old, source=source)
        )

    return record


def relay_record(trace: Trace) -> RecordFn:
    """Relay mode: the client kernel's states go to the ladder's left column
    (``StateRecord``s), the server's to the right."""
    peer = peer_record(trace)

    def record(
        role: str,
        t: float,
        local: Endpoint,
        remote: Endpoint,
        old: str,
        new: str,
        source: str,
        info: dict,
    ) -> None:
        if role == "client":
            trace.states.append(
                StateRecord(
                    t,
                    "client",
                    (local[0], local[1]),
                    (remote[0], remote[1]),
                    old,
                    new,
                    "kernel tracepoint" if source == "kernel" else "sock_diag",
                )
            )
        else:
            peer(role, t, local, remote, old, new, source, info)

    return record


def infer_peer_states(trace: Trace, peer_ip: str) -> None:
    """The kernel's states for the ladder, inferred from the packets after the run
    (``trace.infer``), marked as such: where sock_diag is not polled during the run (a
    .pkt's: its socket lock delays the kernel under test; packetdrill shows no states
    at all)."""
    from ..trace.infer import infer_trace

    try:
        inf = infer_trace(trace)
    except Exception:  # a ladder without the peer's states beats a failed run
        return
    for st in inf.states:
        if st.local[0] == peer_ip:
            trace.peer_states.append(
                PeerStateRecord(
                    st.t,
                    st.local,
                    st.remote,
                    st.new,
                    {"cause": st.cause},
                    old=st.old,
                    source="inferred",
                )
            )
    trace.peer_states.sort(key=lambda r: r.t)
    trace.peer_source = "inferred"
    trace.peer_source_note = (
        "inferred from the packets after the script: tracepoints and "
        "sock_diag are not read during a .pkt run"
    )
