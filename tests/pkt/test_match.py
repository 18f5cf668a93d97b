"""The run-time pieces of a .pkt run that need no lab: matching the kernel's segments
against script packets (match, fields), the script clock, inbound TS ecr mapping,
Fast Open cookies between address pairs, and shell-command address mapping."""

from __future__ import annotations

import random
import time
from types import SimpleNamespace

import pytest

from netemu.pkt.clock import ScriptClock
from netemu.pkt.commands import map_addresses
from netemu.pkt.inbound import live_ecr
from netemu.pkt.load import load_pkt_text
from netemu.pkt.match import Matcher, flowlabel_mismatch, ip_mismatch, learn_ts
from netemu.pkt.model import PacketSpec
from netemu.pkt.parser import parse_text
from netemu.pkt.state import Conn, ConnTable, EventFailed
from netemu.pkt.tfo import CookieMap, cookie
from netemu.run.hooks import Hooks
from netemu.trace.record import Trace
from netemu.wire import TcpSegment
from netemu.wire.tcp import (
    ACK,
    NOP,
    PSH,
    SACK_PERMITTED,
    SYN,
    MssOption,
    SackOption,
    TimestampOption,
    WindowScaleOption,
)

KEY = "a1a1a1a1-b2b2b2b2-c3c3c3c3-d4d4d4d4"


def pkt(line: str) -> PacketSpec:
    ev = parse_text(
        "0 socket(..., SOCK_STREAM, IPPROTO_TCP) = 3\n+0 " + line + "\n", "m.pkt"
    ).events[1]
    assert isinstance(ev.action, PacketSpec)
    return ev.action


def matcher(tick: int = 0) -> Matcher:
    cookies = CookieMap(
        ("192.0.2.1", "192.168.0.1"), ("10.0.0.1", "10.0.0.2"), lambda: KEY, lambda: None
    )
    return Matcher(cookies, ScriptClock(Trace(), 0.004, 12.5, True, [], time.monotonic()), tick)


def conn() -> Conn:
    """A connection whose kernel ISN is 1000 and netemu's 5000."""
    return Conn(40000, 8080, our_off=5000, cursor=0, kernel_off=1000)


def seg(seq: int, ack: int, flags: int, n: int = 0, opts: tuple = (), win: int = 502) -> TcpSegment:
    return TcpSegment(8080, 40000, seq, ack, flags, win, bytes(n), opts)


def test_a_matching_segment_and_each_field_that_differs():
    m, c = matcher(), conn()
    s = seg(1001, 5001, ACK | PSH, 100)
    assert m.mismatch(pkt("> P. 1:101(100) ack 1"), c, [s]) is None
    assert (
        m.mismatch(pkt("> P. 2:102(100) ack 1"), c, [s])
        == "live packet field tcp_seq: expected: 2 vs actual: 1"
    )
    assert (
        m.mismatch(pkt("> F. 1:101(100) ack 1"), c, [s])
        == "live packet field tcp flags: expected: F. vs actual: P."
    )
    assert (
        m.mismatch(pkt("> P. 1:101(100) ack 7"), c, [s])
        == "live packet field tcp_ack_seq: expected: 7 vs actual: 1"
    )
    assert (
        m.mismatch(pkt("> P. 1:101(100) ack 1 win 9"), c, [s])
        == "live packet field tcp_window: expected: 9 vs actual: 502"
    )
    assert (
        m.mismatch(pkt("> P. 1:51(50) ack 1"), c, [s])
        == "live packet payload length: expected: 50 vs actual: 100"
    )


def test_a_tso_packet_is_short_until_its_run_is_whole():
    m, c = matcher(), conn()
    a, b = seg(1001, 5001, ACK, 100), seg(1101, 5001, ACK | PSH, 100)
    p = pkt("> P. 1:201(200) ack 1")
    assert m.mismatch(p, c, [a]) == "short"
    assert m.mismatch(p, c, [a, b]) is None
    assert (
        m.actual_text(a, 0.5, c, [a, b])
        == "0.500000 P. 1:201(200) ack 1 win 502 (a run of 2 segments)"
    )


def test_options_are_compared_in_order_and_printed_in_script_space():
    m, c = matcher(), conn()
    opts = (MssOption(1460), NOP, NOP, SACK_PERMITTED, NOP, WindowScaleOption(7))
    s = seg(1000, 0, SYN, opts=opts)
    c.kernel_syn = 0
    assert m.mismatch(pkt("> S 0:0(0) <mss 1460,nop,nop,sackOK,nop,wscale 7>"), c, [s]) is None
    assert m.mismatch(pkt("> S 0:0(0) <mss 1460,sackOK,nop,nop,nop,wscale 7>"), c, [s]) == (
        "bad outbound TCP options: expected <mss,sackOK,nop,nop,nop,wscale> vs actual "
        "<mss,nop,nop,sackOK,nop,wscale>"
    )
    assert (
        m.mismatch(pkt("> S 0:0(0) <mss 1460,nop,nop,sackOK,nop,wscale 9>"), c, [s])
        == "bad value in outbound TCP option wscale: expected wscale 9 vs actual wscale 7"
    )
    assert m.mismatch(pkt("> S 0:0(0) <...>"), c, [s]) is None
    sack = seg(1001, 5101, ACK, opts=(NOP, NOP, SackOption(((5201, 5301),))))
    assert m.actual_text(sack, 1.0, c).endswith("ack 101 win 502 <nop,nop,sack 201:301>")


def test_ts_values_count_from_the_first_one_mapped():
    m, c = matcher(), conn()
    s = seg(1001, 5001, ACK, opts=(NOP, NOP, TimestampOption(777000, 5)))
    learn_ts(pkt("> . 1:1(0) ack 1 <nop,nop,TS val 100 ecr 5>"), s, c)
    assert c.first_ts == (100, 777000) and c.ts_map == {100: 777000}
    assert m.actual_text(s, 0.0, c).endswith("<nop,nop,TS val 100 ecr 5>")
    assert live_ecr(c, 100) == 777000 and live_ecr(c, 110) == 777010
    assert live_ecr(Conn(1, 2, 0, 0), 42) == 42


def test_ts_val_checked_only_with_a_tick():
    c = conn()
    c.first_ts = (100, 777000)
    s = seg(1001, 5001, ACK, opts=(NOP, NOP, TimestampOption(779000, 5)))
    p = pkt("> . 1:1(0) ack 1 <nop,nop,TS val 101 ecr 5>")
    assert matcher().mismatch(p, c, [s]) is None
    why = matcher(tick=1000).mismatch(p, c, [s])
    assert why == "bad outbound TCP timestamp value: expected 101 vs actual 2100 (tick 1000 us)"


def test_ip_fields():
    p = pkt("> [ect0] . 1:1(0) ack 1")
    assert ip_mismatch(p, (2, 64, 0)) is None
    assert ip_mismatch(p, (1, 64, 0)) == "live packet field ip ecn: expected: ect0 vs actual: ect1"
    assert ip_mismatch(pkt("> [ect01] . 1:1(0) ack 1"), (1, 64, 0)) is None


def test_flowlabels_map_as_packetdrills():
    """A script's flow label names one of the kernel's: the same script label needs the
    same live label, a new one a new live one; 0 in the live packet fails."""
    c = conn()
    one, two = pkt("> (flowlabel 0x1) . 1:1(0) ack 1"), pkt("> (flowlabel 0x2) . 1:1(0) ack 1")
    assert flowlabel_mismatch(pkt("> . 1:1(0) ack 1"), (0, 64, 0), c) is None
    assert flowlabel_mismatch(one, (0, 64, 0), c) == "flowlabel unmarked in the live packet"
    assert flowlabel_mismatch(one, (0, 64, 0xABCDE), c) is None  # learnt
    assert flowlabel_mismatch(one, (0, 64, 0xABCDE), c) is None
    assert flowlabel_mismatch(one, (0, 64, 0x12345), c) == (
        "inconsistent flowlabels for this packet: expected: 0xabcde vs actual: 0x12345"
    )
    assert flowlabel_mismatch(two, (0, 64, 0xABCDE), c) == (
        "expected a different flowlabel but got the same"
    )
    assert flowlabel_mismatch(two, (0, 64, 0x12345), c) is None
    assert c.flowlabels == (2, 0x12345)


def test_fast_open_cookies_follow_the_addresses():
    m = matcher()
    script = cookie(KEY, "192.0.2.1", "192.168.0.1")
    lab = cookie(KEY, "10.0.0.1", "10.0.0.2")
    assert m.cookies.map(script, to_lab=True) == lab
    assert m.cookies.map(lab, to_lab=False) == script
    assert m.cookies.map(b"\x01" * 8, to_lab=True) == b"\x01" * 8  # not valid: as it is

    def unreadable_key() -> str:
        raise OSError("no such sysctl")

    unreadable = CookieMap(("a", "b"), ("c", "d"), unreadable_key, lambda: None)
    assert unreadable.sysctl_key() is None and unreadable.map(script, to_lab=True) == script


def test_the_clock_anchors_relative_times_and_checks_them():
    notes: list[str] = []
    clock = ScriptClock(Trace(), 0.004, 12.5, False, notes)
    ev = parse_text(
        "0 socket(..., SOCK_STREAM, IPPROTO_TCP) = 3\n+0 < S 0:0(0) win 1000\n"
        "+.1 < . 1:1(0) ack 1 win 1000\n",
        "c.pkt",
    ).events
    clock.t0 = 0.0
    clock.done(ev[1], 1.0, deferred=False)
    start, end, checked = clock.schedule(ev[2])  # an inject after an inject: from its time
    assert (start, end, checked) == (pytest.approx(1.1), pytest.approx(1.1), True)
    assert clock.tolerance(1.01) == 0.004 and clock.tolerance(1.1) == pytest.approx(0.0125)
    assert clock.check(3, "outbound packet", 1.103, 1.1, 1.1, 0.004, "+.1") is None
    assert clock.check(3, "outbound packet", 1.2, 1.1, 1.1, 0.004, "+.1") is None  # lenient
    assert notes == [
        "timing: line 3: outbound packet expected at 1.100000 (+.1) s, happened "
        "at 1.200000 s (tolerance 4.0 ms)"
    ]
    assert [t.ok for t in clock.timing] == [True, False]


def test_a_packet_answering_an_inbound_one_counts_from_when_it_left():
    """`+0 < S …` then `+0 > S. …`: the kernel's answer is due when netemu's SYN left
    (packetdrill's clock reads right after its write), not when netemu got round to the
    next event: a make test run saw netemu held off 4 ms after its SYN, and the kernel's
    SYN-ACK, on time, fail as 4 ms early."""
    clock = ScriptClock(Trace(), 0.004, 12.5, True, [])
    ev = parse_text(
        "0 socket(..., SOCK_STREAM, IPPROTO_TCP) = 3\n+0 < S 0:0(0) win 1000\n"
        "+0 > S. 0:0(0) ack 1\n+.1 `true`\n",
        "c.pkt",
    ).events
    clock.t0 = time.monotonic() - 0.005  # script time now: 5 ms
    clock.sent_at = 0.0008  # the SYN left at 0.8 ms
    clock.done(ev[1], 0.0007, deferred=False)
    assert clock.schedule(ev[2])[:2] == (0.0008, 0.0008)
    clock.done(ev[2], 0.0008, deferred=False)  # (an expect leaves no anchor)
    assert clock.schedule(ev[3])[0] == pytest.approx(0.105, abs=0.002)  # from now


def test_no_connection_to_expect_on():
    host = SimpleNamespace(trace=Trace(), ephemeral_port=lambda ip, p: 40000)
    hooks = Hooks()
    table = ConnTable(host, hooks, "10.0.0.2", random.Random(1), bind_port=8080, connect_port=8080)
    with pytest.raises(EventFailed, match="no connection to expect a packet on"):
        table.for_outbound()
    c = table.for_inbound()
    assert c.passive and c.kernel_port == 8080 and hooks.raw_ports == {40000}
    assert table.for_outbound() is c


HANDSHAKE_PKT = "0 socket(..., SOCK_STREAM, IPPROTO_TCP) = 3\n+0 close(3) = 0\n"


def test_shell_addresses_become_the_labs():
    sc = load_pkt_text(HANDSHAKE_PKT, "t.pkt")
    lab = SimpleNamespace(peer="10.0.0.2", emu="10.0.0.1")
    assert (
        map_addresses(
            "ip route change 192.0.2.1 via 192.168.0.2 dev tun0 src 192.168.0.1 v1.2.3.4", sc, lab
        )
        == "ip route change 10.0.0.1 via 10.0.0.1 dev tun0 src 10.0.0.2 v1.2.3.4"
    )


def test_shell_ipv6_addresses_become_the_labs():
    """packetdrill's IPv6 defaults (remote 2001:DB8::1, gateway fd3d:fa7b:d17d:8888::0 in
    the local /48) compared as addresses, however the command spells them; other
    addresses, other families and words with colons stay as written."""
    sc = load_pkt_text(HANDSHAKE_PKT, "t.pkt", ["--ip_version=ipv6"])
    lab = SimpleNamespace(peer="2001:2::2", emu="2001:2::1")
    assert (
        map_addresses(
            "ip -6 route change 2001:DB8::1 via fd3d:fa7b:d17d:8888::0 dev tun0 advmss 600;"
            " ping -c1 fd3d:fa7b:d17d::1 2001:db9::1 192.0.2.1 a:b 12:30:00",
            sc,
            lab,
        )
        == "ip -6 route change 2001:2::1 via 2001:2::1 dev tun0 advmss 600;"
        " ping -c1 2001:2::2 2001:db9::1 192.0.2.1 a:b 12:30:00"
    )


def test_a_gateway_outside_the_local_subnet_is_netemus_too():
    """--gateway_ip (`netemu run --help`: "mapped onto netemu's") even where it is not
    in the local subnet; before, only the subnet's addresses were mapped."""
    argv = ["--ip_version=ipv6", "--local_ip=fd00::1", "--gateway_ip=fe80::99"]
    sc = load_pkt_text(HANDSHAKE_PKT, "t.pkt", argv)
    lab = SimpleNamespace(peer="2001:2::2", emu="2001:2::1")
    assert map_addresses("ip -6 route add fe80::99 dev tun0 via FE80::99", sc, lab) == (
        "ip -6 route add 2001:2::1 dev tun0 via 2001:2::1"
    )
