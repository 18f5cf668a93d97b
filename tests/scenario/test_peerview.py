"""PeerView: the peer kernel's sockets from its tracepoints (or polls), built from
ready-made events the way lab/ktrace.py parses them. No lab: the labs are stand-ins
with the few attributes PeerView reads."""

from __future__ import annotations

import os
from types import SimpleNamespace

import pytest

from netemu.lab.ktrace import KEvent, TraceUnavailable
from netemu.run.peerview import PeerView, SockView, states_of
from netemu.trace.record import PeerStateRecord, Trace

PEER, EMU = "198.18.0.2", "198.18.0.1"
MY_NS = os.stat("/proc/self/ns/net").st_ino
ME = os.getpid()


class FakeTrace:
    name = "netemu-fake00"

    def __init__(self) -> None:
        self.pending: list[KEvent] = []
        self.lost = 0

    def read(self) -> list[KEvent]:
        out, self.pending = self.pending, []
        return out


class FakeLab:
    def __init__(self, kt: FakeTrace | None) -> None:
        self.emu_ip, self.peer_ip = EMU, PEER
        self.emu_ip6 = self.peer_ip6 = None  # an IPv4 lab
        self.peer_ns = SimpleNamespace(inode=MY_NS)
        self.slot = SimpleNamespace(peer_ports=(50496, 50751), emu_ports=range(40256, 40512))
        self.kt = kt
        self.timewait: list[SockView] = []  # what sock_diag lists in FIN-WAIT-2/TIME-WAIT
        self.diag: list = []

    def start_kernel_trace(self) -> FakeTrace:
        if self.kt is None:
            raise TraceUnavailable("kernel tracepoints need root")
        return self.kt

    def peer_sockets(self, states: int | None = None, info: bool = True, **_kw) -> list:
        return list(self.timewait) if states is not None else list(self.diag)


def ev(t, local, remote, old="", new="", *, kind="state", softirq=True, **fields) -> KEvent:
    f = {
        "oldstate": "TCP_"
        + old.replace("-", "_")
        .replace("SYN_RECEIVED", "SYN_RECV")
        .replace("FIN_WAIT_", "FIN_WAIT")
        .replace("CLOSED", "CLOSE"),
        "newstate": "TCP_"
        + new.replace("-", "_")
        .replace("SYN_RECEIVED", "SYN_RECV")
        .replace("FIN_WAIT_", "FIN_WAIT")
        .replace("CLOSED", "CLOSE"),
        **fields,
    }
    return KEvent(t, kind, local, remote, ME, ME, softirq, f)


CONN = ((PEER, 8080), (EMU, 40256))  # netemu's port from the lab's block


def view(kt: FakeTrace | None = None) -> tuple[PeerView, Trace, FakeLab]:
    trace = Trace()
    lab = FakeLab(FakeTrace() if kt is None else kt)

    def record(role, t, local, remote, old, new, source, info):
        trace.peer_states.append(
            PeerStateRecord(t, local, remote, new, info, old=old, source=source)
        )

    pv = PeerView({"peer": lab}, trace, record)
    pv.start()
    pv._stop.set()  # no thread: the tests drain by hand
    if pv._thread is not None:
        pv._thread.join()
    return pv, trace, lab


def states(trace: Trace) -> list[tuple[str, str]]:
    return [(r.state, r.source) for r in trace.peer_states]


def test_a_passive_close_in_order_with_the_listener_apart() -> None:
    pv, trace, lab = view()
    lab.kt.pending = [
        ev(1.0, ("0.0.0.0", 8080), ("0.0.0.0", 0), "CLOSED", "LISTEN", softirq=False),
        ev(1.1, *CONN, "LISTEN", "SYN-RECEIVED"),
        ev(1.1, *CONN, "SYN-RECEIVED", "ESTABLISHED"),
        ev(1.2, *CONN, "ESTABLISHED", "CLOSE-WAIT"),
        ev(1.5, *CONN, "CLOSE-WAIT", "LAST-ACK", softirq=False),
        ev(1.50004, *CONN, "LAST-ACK", "CLOSED"),
    ]
    pv.refresh()
    assert states(trace) == [
        ("LISTEN", "kernel"),
        ("SYN-RECEIVED", "kernel"),
        ("ESTABLISHED", "kernel"),
        ("CLOSE-WAIT", "kernel"),
        ("LAST-ACK", "kernel"),
        ("CLOSED", "kernel"),
    ]
    assert [r.t for r in trace.peer_states] == [1.0, 1.1, 1.1, 1.2, 1.5, 1.50004]
    # what expect_peer_state asks: the socket now (a closed one is gone), and its past
    assert [(s.local, s.state) for s in pv.snapshot("peer")] == [(("0.0.0.0", 8080), "LISTEN")]
    hist = [SockView(k[0], k[1], st) for _t, k, st in pv.history("peer")]
    assert "LAST-ACK" in states_of(hist, 8080, 40256, None)
    assert states_of(hist, 8080, 40257, None) == []  # another connection's never answers


def test_entering_time_wait_is_told_by_the_timewait_socket() -> None:
    pv, trace, lab = view()
    lab.kt.pending = [
        ev(1.0, *CONN, "SYN-SENT", "ESTABLISHED", softirq=False),
        ev(1.1, *CONN, "ESTABLISHED", "FIN-WAIT-1", softirq=False),
        ev(1.2, *CONN, "FIN-WAIT-1", "FIN-WAIT-2"),
        ev(1.3, *CONN, "FIN-WAIT-2", "CLOSED"),
    ]
    lab.timewait = [SockView(*CONN, "TIME-WAIT")]
    pv.refresh()
    assert states(trace)[-2:] == [("FIN-WAIT-2", "kernel"), ("TIME-WAIT", "kernel")]
    assert "timewait" in trace.peer_states[-1].info["kernel"]
    lab.timewait = []  # 2·MSL later: the timewait socket is gone, with no tracepoint
    pv.refresh()
    assert states(trace)[-1] == ("CLOSED", "poll")


def test_an_orphans_fin_wait_2_waits_on_then_time_wait() -> None:
    """A socket its program closed: FIN_WAIT2 → CLOSE is reported at once, and the
    timewait socket that holds the tuple in FIN-WAIT-2 moves to TIME-WAIT silently."""
    pv, trace, lab = view()
    lab.kt.pending = [
        ev(1.0, *CONN, "SYN-SENT", "ESTABLISHED", softirq=False),
        ev(1.2, *CONN, "FIN-WAIT-1", "FIN-WAIT-2"),
        ev(1.2, *CONN, "FIN-WAIT-2", "CLOSED"),
    ]
    lab.timewait = [SockView(*CONN, "FIN-WAIT-2")]
    pv.refresh()
    assert states(trace)[-1] == ("FIN-WAIT-2", "kernel")  # not CLOSED
    lab.timewait = [SockView(*CONN, "TIME-WAIT")]
    pv.refresh()
    assert states(trace)[-1] == ("TIME-WAIT", "poll")


def fin_to_peer(trace: Trace, t: float) -> None:
    """netemu's FIN to the peer's socket of CONN, on the wire at ``t``."""
    from netemu.wire import IPv4Packet, TcpSegment, build_tcp_frame

    data = build_tcp_frame(
        "02:00:00:00:00:01",
        "02:00:00:00:00:02",
        IPv4Packet(EMU, PEER, 6),
        TcpSegment(40256, 8080, 1, 2, 0x11, 502, b"", ()),
    )
    trace.frame("out", data, t=t)


@pytest.mark.parametrize(
    ("fin_at", "want"),
    [
        # the remote's FIN came first: into TIME-WAIT when the kernel says the socket closed
        (1.2999, [("FIN-WAIT-2", 1.2, "kernel"), ("TIME-WAIT", 1.3, "kernel")]),
        # the socket's program had closed it: a FIN-WAIT-2 timewait socket from 1.3, and
        # TIME-WAIT when the FIN came at 1.31 (though sock_diag is asked later)
        (1.31, [("FIN-WAIT-2", 1.2, "kernel"), ("TIME-WAIT", 1.31, "poll")]),
    ],
)
def test_time_wait_is_timed_by_the_fin_that_causes_it(fin_at, want) -> None:
    pv, trace, lab = view()
    fin_to_peer(trace, fin_at)
    lab.kt.pending = [
        ev(1.0, *CONN, "SYN-SENT", "ESTABLISHED", softirq=False),
        ev(1.2, *CONN, "FIN-WAIT-1", "FIN-WAIT-2"),
        ev(1.3, *CONN, "FIN-WAIT-2", "CLOSED"),
    ]
    lab.timewait = [SockView(*CONN, "TIME-WAIT")]  # what sock_diag says by the time it is asked
    pv.refresh()
    got = [(r.state, round(r.t, 4), r.source) for r in trace.peer_states]
    assert got[-2:] == want


def test_a_reset_closes_without_time_wait() -> None:
    pv, trace, lab = view()
    lab.timewait = [SockView(*CONN, "TIME-WAIT")]  # (would be misread without the reset)
    lab.kt.pending = [
        ev(1.0, *CONN, "SYN-SENT", "ESTABLISHED", softirq=False),
        ev(1.1, *CONN, kind="receive_reset"),
        ev(1.1, *CONN, "FIN-WAIT-2", "CLOSED"),
    ]
    pv.refresh()
    assert states(trace)[-1] == ("CLOSED", "kernel")
    assert [e.kind for e in trace.peer_events] == ["receive_reset"]


def test_connect_before_its_port_is_chosen() -> None:
    """connect() reports SYN_SENT with sport 0; the socket's next change names it."""
    pv, trace, lab = view()
    lab.kt.pending = [
        ev(1.0, (PEER, 0), (EMU, 80), "CLOSED", "SYN-SENT", softirq=False),
        ev(1.001, (PEER, 50500), (EMU, 80), "SYN-SENT", "ESTABLISHED"),
    ]
    pv.refresh()
    assert [(r.t, r.local, r.old, r.state) for r in trace.peer_states] == [
        (1.0, (PEER, 50500), "CLOSED", "SYN-SENT"),
        (1.001, (PEER, 50500), "SYN-SENT", "ESTABLISHED"),
    ]


def test_events_of_a_socket_not_born_in_this_run_are_left_out() -> None:
    """An orphan of an earlier lab in the same slot (the same addresses and ports) may
    still send: its events are not this run's socket's."""
    pv, trace, lab = view()
    lab.kt.pending = [
        ev(0.5, *CONN, kind="retransmit"),
        ev(0.6, *CONN, "FIN-WAIT-1", "FIN-WAIT-2"),
        ev(0.7, *CONN, "LAST-ACK", "CLOSED"),
    ]
    pv.refresh()
    assert trace.peer_states == [] and trace.peer_events == [] and pv.foreign == 3
    # a socket a listener spawns, or a connect's, is born in this run: an orphan is
    # neither (and the ports are the lab's block: no other live lab has them)
    lab.kt.pending = [
        ev(0.8, *CONN, "LISTEN", "SYN-RECEIVED"),
        ev(0.9, *CONN, kind="retransmit", state="TCP_SYN_RECV"),
    ]
    pv.refresh()
    assert states(trace) == [("SYN-RECEIVED", "kernel")]
    assert [(e.kind, e.detail) for e in trace.peer_events] == [("retransmit", "SYN-RECEIVED")]


def test_a_reset_with_no_socket_is_the_kernels() -> None:
    pv, trace, lab = view()
    lab.kt.pending = [
        ev(1.0, (PEER, 9), (EMU, 40300), kind="send_reset", reason="NO_SOCKET"),
        ev(1.1, (PEER, 8080), (EMU, 40301), kind="retransmit_synack"),
    ]
    pv.refresh()
    assert [(e.kind, e.detail) for e in trace.peer_events] == [
        ("send_reset", "NO_SOCKET"),
        ("retransmit", "SYN+ACK"),
    ]


def test_congestion_is_recorded_when_it_changes() -> None:
    pv, trace, lab = view()

    def probe(t, cwnd, ssthresh=2147483647):
        return ev(
            t,
            *CONN,
            kind="probe",
            snd_cwnd=str(cwnd),
            ssthresh=str(ssthresh),
            srtt="300",
            snd_wnd="65535",
            rcv_wnd="65535",
        )

    lab.kt.pending = [
        ev(1.0, *CONN, "SYN-SENT", "ESTABLISHED", softirq=False),
        probe(1.1, 10),
        probe(1.2, 10),
        probe(1.3, 11),
        ev(1.4, *CONN, kind="cong_state", cong_state="3"),
        probe(1.5, 5, 7),
        probe(1.6, 5, 7),
    ]
    pv.refresh()
    got = [(c.cwnd, c.ssthresh, c.ca_state, c.cause) for c in trace.peer_congestion]
    assert got == [
        (10, 2147483647, "open", "tcp_probe"),
        (11, 2147483647, "open", "tcp_probe"),
        (11, 2147483647, "recovery", "tcp_cong_state_set"),
        (5, 7, "recovery", "tcp_probe"),
    ]
    assert trace.peer_congestion[0].srtt_us == 300


def test_without_tracepoints_it_polls_and_says_why() -> None:
    trace = Trace()
    lab = FakeLab(None)
    pv = PeerView(
        {"peer": lab},
        trace,
        lambda *a: trace.peer_states.append(
            PeerStateRecord(a[1], a[2], a[3], a[5], a[7], old=a[4], source=a[6])
        ),
    )
    pv.start()
    try:
        assert pv.source == "poll" and "root" in pv.reason
        assert trace.peer_source == "poll" and "root" in trace.peer_source_note
    finally:
        pv.stop()


@pytest.mark.parametrize(
    ("own", "other", "port", "listener", "want"),
    [
        (8080, 40256, None, False, ["ESTABLISHED"]),
        (None, 40256, None, False, ["ESTABLISHED"]),
        (8080, None, None, False, []),  # netemu's port unknown: no socket is the connection's
        (None, 40256, 8080, False, ["ESTABLISHED"]),  # the connection's socket on the port
        (None, 40999, 8080, False, []),  # never the listener, nor another connection's
        (None, None, 8080, False, []),
        (None, None, 8080, True, ["LISTEN"]),  # `port` alone: the listener, once there are
        (None, 40256, 8080, True, ["LISTEN"]),  # connections on its port too
        (None, None, 9000, True, []),
    ],
)
def test_states_of(own, other, port, listener, want) -> None:
    socks = [
        SockView((PEER, 8080), ("0.0.0.0", 0), "LISTEN"),
        SockView((PEER, 8080), (EMU, 40256), "ESTABLISHED"),
        SockView((PEER, 8080), (EMU, 40257), "CLOSE-WAIT"),
    ]
    assert states_of(socks, own, other, port, listener) == want


def test_expect_peer_state_judges_within_by_the_kernels_time() -> None:
    """The event loop held up past `within`: a peer state the kernel entered after the
    deadline, seen by a check that woke late, does not pass (it did, judged by when
    the check looked)."""
    import asyncio
    import time as _time

    from netemu.run.result import StepFailed
    from netemu.scenario.loader import load_scenario_text
    from netemu.scenario.runner import Runner

    pv, trace, lab = view()
    sc = load_scenario_text(
        "name: w\npeer: kernel\nsteps:\n"
        "  - expect_peer_state: {state: CLOSE-WAIT, within: 50ms}\n"
        "  - expect_peer_state: {state: LAST-ACK, within: 50ms, seen: true}\n"
        "  - expect_peer_state: {state: CLOSE-WAIT, within: 50ms, seen: true}\n",
        "w.yaml",
    )
    host = SimpleNamespace(trace=trace, names={}, event_log={}, event_times={})
    runner = Runner(sc, lab=None, host=host)  # type: ignore[arg-type]
    runner.peers = pv
    ctx = runner._ctx("c")
    ctx.local_port, ctx.peer_port = CONN[1][1], CONN[0][1]
    lab.kt.pending = [ev(_time.monotonic(), *CONN, "SYN-SENT", "ESTABLISHED", softirq=False)]

    def step(index: int, old: str, new: str) -> None:
        async def main() -> None:
            def stall() -> None:
                _time.sleep(0.08)  # the loop is held past the window; the state comes now
                lab.kt.pending.append(ev(_time.monotonic(), *CONN, old, new))

            asyncio.get_running_loop().call_later(0.001, stall)
            await runner._run_step(sc.steps[index])

        asyncio.run(main())

    for index, old, new in ((0, "ESTABLISHED", "CLOSE-WAIT"), (1, "CLOSE-WAIT", "LAST-ACK")):
        with pytest.raises(StepFailed, match="after this step began, later than within"):
            step(index, old, new)
    # a state the socket went through before the step began is in time for seen: true
    step(2, "LAST-ACK", "CLOSED")


def test_a_tuple_used_again_answers_for_its_latest_socket() -> None:
    """netemu's fixed local_port used by two connections one after the other: the
    second's history is not the first's (a seen: true on it passed on the first's
    FIN-WAIT-2), and the first's timewait socket ending is not the second's CLOSED."""
    pv, trace, lab = view()
    lab.kt.pending = [
        ev(1.0, ("0.0.0.0", 8080), ("0.0.0.0", 0), "CLOSED", "LISTEN", softirq=False),
        ev(1.1, *CONN, "LISTEN", "SYN-RECEIVED"),
        ev(1.1, *CONN, "SYN-RECEIVED", "ESTABLISHED"),
        ev(1.2, *CONN, "ESTABLISHED", "FIN-WAIT-1", softirq=False),
        ev(1.3, *CONN, "FIN-WAIT-1", "FIN-WAIT-2"),
        ev(1.4, *CONN, "FIN-WAIT-2", "CLOSED"),
    ]
    lab.timewait = [SockView(*CONN, "TIME-WAIT")]
    fin_to_peer(trace, 1.35)
    pv.refresh()
    lab.kt.pending = [
        ev(2.1, *CONN, "LISTEN", "SYN-RECEIVED"),
        ev(2.1, *CONN, "SYN-RECEIVED", "ESTABLISHED"),
    ]
    lab.timewait = []  # the first socket's timewait socket is gone (the second took over)
    pv.refresh()
    hist = [SockView(k[0], k[1], st) for _t, k, st in pv.history("peer")]
    assert states_of(hist, 8080, 40256, None) == ["SYN-RECEIVED", "ESTABLISHED"]
    assert [s.state for s in pv.snapshot("peer") if s.remote[1]] == ["ESTABLISHED"]


def test_a_connects_port_is_named_at_once_and_its_events_kept() -> None:
    """connect() reports SYN_SENT before its port is chosen: sock_diag names it at once
    (a peer stuck in SYN-SENT was reported CLOSED), and the reset it gets before anyone
    asked is its own."""
    pv, trace, lab = view()
    lab.diag = []
    synsent = SockView((PEER, 50500), (EMU, 9000), "SYN-SENT")
    lab.timewait = []
    lab.peer_sockets = lambda states=None, info=True, **kw: (  # type: ignore[method-assign]
        [synsent] if states == 1 << 2 else []
    )
    lab.kt.pending = [ev(1.0, (PEER, 0), (EMU, 9000), "CLOSED", "SYN-SENT", softirq=False)]
    pv.refresh()
    assert [(r.local, r.state, r.t) for r in trace.peer_states] == [
        ((PEER, 50500), "SYN-SENT", 1.0)
    ]
    # the next connect's answer came before sock_diag was asked: held, then named
    lab.peer_sockets = lambda states=None, info=True, **kw: []  # type: ignore[method-assign]
    lab.kt.pending = [
        ev(2.0, (PEER, 0), (EMU, 9001), "CLOSED", "SYN-SENT", softirq=False),
        ev(2.001, (PEER, 50502), (EMU, 9001), kind="receive_reset"),
        ev(2.001, (PEER, 50502), (EMU, 9001), "SYN-SENT", "CLOSED"),
    ]
    pv.refresh()
    assert [(r.local[1], r.state) for r in trace.peer_states[1:]] == [
        (50502, "SYN-SENT"),
        (50502, "CLOSED"),
    ]
    assert [e.kind for e in trace.peer_events] == ["receive_reset"]
