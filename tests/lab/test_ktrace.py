"""The kernel-trace reader: trace_pipe lines as this kernel (6.18) prints them, and the
filter that keeps one lab's sockets among every namespace's (lab/ktrace.py)."""

from __future__ import annotations

import os
import socket
import time

import pytest

from netemu.lab.ktrace import KEvent, LabFilter, parse_line

# Lines in the shape `cat trace_pipe` gives with record-tgid on (fields from the
# events' print formats: tracefs events/*/format).
STATE = (
    "     python3-14836 (  14830) [001] ..s2.  8225.465605: inet_sock_set_state: "
    "family=AF_INET protocol=IPPROTO_TCP sport=8080 dport=40256 saddr=198.18.0.2 "
    "daddr=198.18.0.1 saddrv6=::ffff:198.18.0.2 daddrv6=::ffff:198.18.0.1 "
    "oldstate=TCP_CLOSE_WAIT newstate=TCP_LAST_ACK"
)
STATE_V6MAPPED = (
    "      hello-19181 (  19179) [000] .....  8662.952264: inet_sock_set_state: "
    "family=AF_INET6 protocol=IPPROTO_TCP sport=8080 dport=40000 "
    "saddr=0.0.0.0 daddr=0.0.0.0 saddrv6=::ffff:198.18.0.2 "
    "daddrv6=::ffff:198.18.0.1 oldstate=TCP_ESTABLISHED newstate=TCP_FIN_WAIT1"
)
PROBE = (
    "          <idle>-0       (-------) [001] ..s2.  8225.470941: tcp_probe: family=AF_INET "
    "src=198.18.0.2:8080 dest=198.18.0.1:40256 mark=0x0 data_len=1000 "
    "snd_nxt=0x8120d45d snd_una=0x8120d45d snd_cwnd=10 ssthresh=2147483647 "
    "snd_wnd=65536 srtt=45 rcv_wnd=65483 sock_cookie=652 skbaddr=00000000f44c8cd5 "
    "skaddr=000000009427d904"
)
PROBE_V6 = (
    "          <idle>-0       (-------) [001] ..s2.  8225.470941: tcp_probe: "
    "family=AF_INET6 src=[::ffff:198.18.0.2]:8080 dest=[::ffff:198.18.0.1]:40256 "
    "mark=0x0 data_len=0 snd_nxt=0x1 snd_una=0x1 snd_cwnd=7 ssthresh=5 snd_wnd=1 "
    "srtt=99 rcv_wnd=1 sock_cookie=1 skbaddr=0 skaddr=0"
)


def test_state_line() -> None:
    ev = parse_line(STATE)
    assert ev is not None and ev.kind == "state"
    assert ev.local == ("198.18.0.2", 8080) and ev.remote == ("198.18.0.1", 40256)
    assert (ev.old, ev.new) == ("CLOSE-WAIT", "LAST-ACK")
    assert ev.t == pytest.approx(8225.465605) and ev.softirq
    assert (ev.tid, ev.pid) == (14836, 14830)


def test_dual_stack_socket_reads_as_ipv4() -> None:
    ev = parse_line(STATE_V6MAPPED)
    assert ev is not None and ev.local == ("198.18.0.2", 8080) and not ev.softirq
    assert ev.new == "FIN-WAIT-1"
    probe = parse_line(PROBE_V6)
    assert probe is not None and probe.remote == ("198.18.0.1", 40256)
    assert probe.fields["snd_cwnd"] == "7"


def test_probe_line_and_idle_task() -> None:
    ev = parse_line(PROBE)
    assert ev is not None and ev.kind == "probe" and ev.pid == 0
    assert ev.fields["ssthresh"] == "2147483647" and ev.fields["srtt"] == "45"


@pytest.mark.parametrize(
    "line",
    [
        "# tracer: nop",
        "",
        "CPU:1 [LOST 12 EVENTS]",
        "   bash-1 (1) [000] ..... 1.000000: sched_switch: prev_comm=bash",
        STATE.replace("sport=8080", "sport=x"),
    ],
)
def test_other_lines_are_not_events(line: str) -> None:
    assert parse_line(line) is None


def _ev(
    local, remote, *, softirq=True, old="ESTABLISHED", new="CLOSE-WAIT", kind="state", pid=None
) -> KEvent:
    pid = os.getpid() if pid is None else pid
    return KEvent(
        1.0,
        kind,
        local,
        remote,
        pid,
        pid,
        softirq,
        {"oldstate": "TCP_" + old.replace("-", "_"), "newstate": "TCP_" + new.replace("-", "_")},
    )


def _filter(inode: int) -> LabFilter:
    return LabFilter(
        "198.18.0.2",
        ["198.18.0.1", "198.18.0.2"],
        inode,
        local_ports=[range(50496, 50752)],
        remote_ports=[range(40256, 40512)],
    )


def test_filter_keeps_the_labs_tuples_only() -> None:
    keep = _filter(inode=1)
    peer, emu = "198.18.0.2", "198.18.0.1"
    assert keep(_ev((peer, 8080), (emu, 40300)))  # netemu's port from our block
    assert keep(_ev((peer, 50500), (emu, 80)))  # the peer kernel's from our block
    # another lab (the same addresses: every lab has them) with its own blocks
    assert not keep(_ev((peer, 8080), (emu, 40000)))
    assert not keep(_ev((peer, 50300), (emu, 80)))
    # a port of our peer's block at the remote end is another lab's netemu's, not ours
    assert not keep(_ev((peer, 8080), (emu, 50500)))
    # not the lab's addresses
    assert not keep(_ev(("10.0.0.2", 8080), (emu, 40300)))
    assert not keep(_ev((peer, 8080), ("10.0.0.1", 40300)))


def test_listener_is_told_by_the_syscalls_namespace() -> None:
    mine = os.stat("/proc/self/ns/net").st_ino
    listen = dict(
        local=("0.0.0.0", 8080), remote=("0.0.0.0", 0), softirq=False, old="CLOSE", new="LISTEN"
    )
    assert _filter(inode=mine)(_ev(**listen))  # this thread's namespace is "the lab"
    assert not _filter(inode=mine + 1)(_ev(**listen))  # another namespace's listener
    # in softirq context the current task says nothing
    assert not _filter(inode=mine)(_ev(**{**listen, "softirq": True}))


def test_a_process_gone_counts_when_seen_in_the_lab_before() -> None:
    mine = os.stat("/proc/self/ns/net").st_ino
    keep = _filter(inode=mine)
    listen = dict(local=("0.0.0.0", 8080), remote=("0.0.0.0", 0), softirq=False)
    assert keep(_ev(**listen, old="CLOSE", new="LISTEN"))
    gone = _ev(**listen, old="LISTEN", new="CLOSE")
    gone.tid = 2**22 + 7  # no such thread: /proc cannot answer
    assert keep(gone)
    stranger = _ev(**listen, old="LISTEN", new="CLOSE", pid=2**22 + 9)
    assert not keep(stranger)


def test_fixed_ports_become_the_labs_by_a_syscall() -> None:
    """Both ports fixed by the scenario (a bound connect): outside every block, so only
    a system call of the lab's makes the tuple the lab's."""
    mine = os.stat("/proc/self/ns/net").st_ino
    keep = _filter(inode=mine)
    peer, emu = "198.18.0.2", "198.18.0.1"
    later = _ev((peer, 9001), (emu, 9000), old="SYN-SENT", new="ESTABLISHED")
    assert not keep(later)
    assert keep(_ev((peer, 9001), (emu, 9000), softirq=False, old="CLOSE", new="SYN-SENT"))
    assert keep(later)


@pytest.mark.root
def test_instance_sees_a_listen_and_goes_away() -> None:
    from netemu.lab.ktrace import KernelTrace, leftover_instances

    name = f"netemu-test{os.getpid()}"
    kt = KernelTrace(name)
    try:
        assert name in leftover_instances()
        s = socket.socket()
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
        t0 = time.monotonic()
        s.listen()
        s.close()
        time.sleep(0.01)
        evs = [e for e in kt.read() if e.kind == "state" and e.local[1] == port]
        assert [(e.old, e.new) for e in evs] == [("CLOSED", "LISTEN"), ("LISTEN", "CLOSED")]
        # the trace clock is time.monotonic()'s
        assert t0 - 0.001 <= evs[0].t <= time.monotonic()
        assert evs[0].tid == __import__("threading").get_native_id()
    finally:
        kt.close()
    assert name not in leftover_instances()
