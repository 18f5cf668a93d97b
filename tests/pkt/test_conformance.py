"""Verdicts as packetdrill gives them, on the points where netemu once differed: each
case comes from trying netemu next to packetdrill (a first user's scripts, the kernel's
own selftests) and is a small script of our own. A pass where packetdrill fails is the
worst bug a verification tool can have, so most cases here must fail."""

from __future__ import annotations

import asyncio
import os
from pathlib import Path

import pytest

from netemu.pkt import PktError, load_pkt_text

# the kernel's timing against packetdrill's 4 ms: run alone (pyproject: timing)
pytestmark = pytest.mark.timing

HEAD = """\
`sysctl -q net.ipv4.tcp_timestamps=0 net.ipv4.tcp_rmem="4096 540000 15728640" net.ipv4.tcp_wmem="4096 262144 4194304"`
    0 socket(..., SOCK_STREAM, IPPROTO_TCP) = 3
   +0 setsockopt(3, SOL_SOCKET, SO_REUSEADDR, [1], 4) = 0
   +0 bind(3, ..., ...) = 0
   +0 listen(3, 1) = 0
   +0 < S 0:0(0) win 32792 <mss 1000,nop,wscale 7>
   +0 > S. 0:0(0) ack 1 <mss 1460,nop,wscale 8>
  +.01 < . 1:1(0) ack 1 win 257
   +0 accept(3, ..., ...) = 4
"""


def run(text: str, tmp_path: Path, argv: list[str] | None = None, **kw):
    from netemu.pkt.session import run_pkt

    sc = load_pkt_text(text, str(tmp_path / "t.pkt"), argv)
    for _ in range(3):  # a run netemu itself was late for says nothing: run it again
        out = asyncio.run(run_pkt(sc, tmp_path / "run", write=False, **kw))
        if not out.report.get("netemu_late"):
            return out
    return out


# --- what packetdrill's grammar refuses, netemu refuses (exit 2 before any lab) --------


@pytest.mark.parametrize(
    ("line", "message"),
    [
        ("%{ assert True }%", "an event needs a time"),
        ("+0 < (tos 0x2, ttl 7) . 1:1(0) ack 1 win 257", "ttl goes alone"),
        ("* close(4) = 0", "event time * can only be used with outbound packets"),
        ("+0~+.1 < . 1:1(0) ack 1 win 257", "time range can only be used with outbound"),
        (
            "+0 < . 1:1(0) ack 1 win 257 <mss 1000,sackOK,nop,wscale 7>",
            "TCP options are not padded correctly: 10 bytes",
        ),
    ],
)
def test_what_packetdrills_grammar_refuses_is_refused(line: str, message: str):
    with pytest.raises(PktError) as e:
        load_pkt_text(HEAD + line + "\n", "t.pkt")
    assert str(e.value).startswith("t.pkt:10:") and message in str(e.value), str(e.value)


def test_a_trailing_command_without_time_is_packetdrills_cleanup():
    sc = load_pkt_text(HEAD + "`true`\n", "t.pkt")
    assert sc.cleanup is not None and sc.cleanup.line == 10
    assert len(sc.script.events) == 8


# --- outbound fields packetdrill compares though the script does not write them --------


@pytest.mark.root
def test_an_ack_without_ack_n_is_compared_as_0(tmp_path: Path):
    out = run(HEAD + "   +0 write(4, ..., 10) = 10\n   +0 > P. 1:11(10)\n", tmp_path)
    assert not out.passed
    assert "live packet field tcp_ack_seq: expected: 0 vs actual: 1" in out.report["error"]


@pytest.mark.root
def test_the_urgent_pointer_is_compared(tmp_path: Path):
    out = run(HEAD + "   +0 write(4, ..., 10) = 10\n   +0 > P. 1:11(10) ack 1 urg 3\n", tmp_path)
    assert not out.passed
    assert "tcp_urg_ptr: expected: 3 vs actual: 0" in out.report["error"]


@pytest.mark.root
def test_an_epoll_event_is_compared_when_none_came(tmp_path: Path):
    text = (
        HEAD
        + """\
   +0 epoll_create(1) = 5
   +0 epoll_ctl(5, EPOLL_CTL_ADD, 4, {events=EPOLLIN, fd=4}) = 0
   +0 epoll_wait(5, {events=EPOLLIN, fd=4}, 1, 0) = 0
"""
    )
    out = run(text, tmp_path)
    assert not out.passed
    assert "epoll_wait(): expected events EPOLLIN but got 0" in out.report["error"]
    ok = run(
        text.replace("{events=EPOLLIN, fd=4}, 1, 0) = 0", "{events=0, ptr=0}, 1, 0) = 0"), tmp_path
    )
    assert ok.passed, ok.report["error"]


# --- %{ }%: one program at the script's end, as packetdrill's code file ---------------


@pytest.mark.root
def test_snippets_share_their_names_and_run_after_the_last_event(tmp_path: Path):
    out = run(
        HEAD
        + """\
   +0 %{ mss0 = tcpi_snd_mss }%
   +0 write(4, ..., 10) = 10
   +0 > P. 1:11(10) ack 1
   +0 %{ assert tcpi_snd_mss == mss0 == 1000, (mss0, tcpi_snd_mss) }%
""",
        tmp_path,
    )
    assert out.passed, out.report["error"]


@pytest.mark.root
def test_a_slow_snippet_does_not_delay_the_events_after_it(tmp_path: Path):
    # packetdrill runs the Python after the script: a 30 ms snippet between an inbound
    # segment and the kernel's immediate ACK must not make that ACK look early.
    out = run(
        HEAD
        + """\
   +0 < P. 1:11(10) ack 1 win 257
   +0 %{
import time
t = time.monotonic()
while time.monotonic() - t < 0.03:
    pass
}%
   +0 > . 1:1(0) ack 11
""",
        tmp_path,
        ["--tolerance_usecs=10000"],
    )  # 30 ms inline would fail; 10: a loaded CI
    assert out.passed, out.report["error"]


@pytest.mark.root
def test_the_cleanup_command_runs_when_the_script_fails(tmp_path: Path):
    mark = tmp_path / "cleaned"
    out = run(HEAD + f"   +0 > P. 1:2(1) ack 1\n`touch {mark}`\n", tmp_path)
    assert not out.passed
    assert mark.exists()


# --- calls -----------------------------------------------------------------------------


@pytest.mark.root
def test_sendto_with_dots_sends_to_the_remote_address(tmp_path: Path):
    out = run(
        """\
    0 socket(..., SOCK_DGRAM, IPPROTO_UDP) = 3
   +0 sendto(3, ..., 30, 0, ..., ...) = 30
   +0 > udp (30)
""",
        tmp_path,
    )
    assert out.passed, out.report["error"]


@pytest.mark.root
def test_connect_af_unspec_disconnects(tmp_path: Path):
    out = run(
        HEAD
        + """\
   +0 connect(4, AF_UNSPEC, ...) = 0
   +0 > R. 1:1(0) ack 1
""",
        tmp_path,
    )
    assert out.passed, out.report["error"]


@pytest.mark.root
def test_an_absolute_time_already_passed_runs_at_once_unblamed(tmp_path: Path):
    # packetdrill runs a call whose absolute time is past at once, unchecked (the
    # kernel's Fast Open selftest restarts at `0 socket(...)`); not netemu's lateness.
    out = run(HEAD + "  0.001 close(4) = 0\n   +0 > F. 1:1(0) ack 1\n", tmp_path)
    assert out.passed, out.report["error"]
    assert out.report["netemu_late"] is None


@pytest.mark.root
def test_snippets_run_in_the_peer_namespace_from_the_scripts_folder(tmp_path: Path):
    # The script author's code runs where packetdrill runs it: in the test's network
    # namespace (its interface is tun0), from the script's folder; never in netemu's
    # process or the host's namespace.
    out = run(
        HEAD
        + f"""\
   +0 %{{
import os, socket
assert "tun0" in [name for _i, name in socket.if_nameindex()], socket.if_nameindex()
assert os.getcwd() == {str(tmp_path)!r}, os.getcwd()
assert os.getpid() != {os.getpid()}
}}%
""",
        tmp_path,
    )
    assert out.passed, out.report["error"]
