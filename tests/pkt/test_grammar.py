"""The whole packetdrill language in the .pkt parser: every construct of its grammar
on small scripts of our own, what each gives in the model, and errors at line:col."""

from __future__ import annotations

from pathlib import Path

import pytest

from netemu.pkt.model import Code, Command, Expr, IcmpSpec, IpSpec, PacketSpec, Syscall
from netemu.pkt.parser import FLAG_BITS, PktError, parse_file, parse_text

HEAD = "0 socket(..., SOCK_STREAM, IPPROTO_TCP) = 3\n"
F = FLAG_BITS


def actions(body: str, **kw) -> list:
    """The actions of the events of ``body`` (after a first socket() line)."""
    return [e.action for e in parse_text(HEAD + body, "g.pkt", **kw).events[1:]]


def one(body: str, **kw):
    (a,) = actions(body, **kw)
    return a


def err(text: str, **kw) -> str:
    with pytest.raises(PktError) as e:
        parse_text(text, "g.pkt", **kw)
    s = str(e.value)
    assert "\n" not in s
    return s


def reparsed(a: PacketSpec | Syscall):
    """``a`` written back with text() and parsed again."""
    return one("+0 " + a.text() + "\n")


# --- packets: flags ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("flags", "bits", "ace"),
    [
        ("SEW", F["S"] | F["E"] | F["W"], None),
        ("SE.", F["S"] | F["E"] | F["."], None),
        ("E.", F["E"] | F["."], None),
        ("W.", F["W"] | F["."], None),
        ("A.", 0x100 | F["."], None),
        ("AE.", 0x100 | F["E"] | F["."], None),
        ("SAEW", F["S"] | 0x100 | F["E"] | F["W"], None),
        ("U.", F["U"] | F["."], None),
        ("S.0", F["S"] | F["."], 0),
        ("S.5", F["S"] | F["."] | F["E"] | 0x100, 5),
        (".7", F["."] | F["E"] | F["W"] | 0x100, 7),
        ("P.2", F["P"] | F["."] | F["W"], 2),
        ("-", 0, None),
    ],
)
def test_flags(flags: str, bits: int, ace: int | None):
    p = one(f"+0 > {flags} 1:1(0) ack 1\n")
    assert p.flags == bits and p.flags_text == flags and p.ace == ace
    assert p.text() == f"> {flags} 1:1(0) ack 1"
    assert reparsed(p) == p


def test_ae_is_the_ninth_flag_bit():
    assert FLAG_BITS["A"] == 0x100


@pytest.mark.parametrize(
    ("flags", "col", "message"),
    [
        ("SE.5", 9, "conflicting TCP flag '5'"),
        ("E.5", 8, "conflicting TCP flag '5'"),
        ("S.55", 9, "conflicting TCP flag '5'"),
        ("S.5E", 9, "expected the sequence number"),  # as packetdrill: 'S', '.5', then 'E'
        ("SA4", 8, "conflicting TCP flag '4'"),
        ("SQ", 7, "unknown TCP flag 'Q' in 'SQ'"),
        ("S8", 7, "unknown TCP flag '8'"),
    ],
)
def test_bad_flags(flags: str, col: int, message: str):
    got = err(HEAD + f"+0 > {flags} 1:1(0) ack 1\n")
    assert got.startswith(f"g.pkt:2:{col}: ") and message in got, got


# --- packets: IP header fields ----------------------------------------------------------


@pytest.mark.parametrize(
    ("written", "ip"),
    [
        ("[ect0]", IpSpec(ecn="ect0", text="[ect0]")),
        ("[ect1]", IpSpec(ecn="ect1", text="[ect1]")),
        ("[ce]", IpSpec(ecn="ce", text="[ce]")),
        ("[noecn]", IpSpec(ecn="noecn", text="[noecn]")),
        ("[ect01]", IpSpec(ecn="ect01", text="[ect01]")),
        ("(tos 0x2c)", IpSpec(tos=0x2C, text="(tos 0x2c)")),
        ("[tos 0x3]", IpSpec(tos=3, text="[tos 0x3]")),
        ("(flowlabel 0xabcde)", IpSpec(flowlabel=0xABCDE, text="(flowlabel 0xabcde)")),
        ("(ttl 17)", IpSpec(ttl=17, text="(ttl 17)")),
        ("[ce, flowlabel 0x7]", IpSpec(ecn="ce", flowlabel=7, text="[ce, flowlabel 0x7]")),
        ("(tos 0x1,flowlabel 0x2)", IpSpec(tos=1, flowlabel=2, text="(tos 0x1,flowlabel 0x2)")),
    ],
)
def test_ip_fields(written: str, ip: IpSpec):
    p = one(f"+0 > {written} S. 0:0(0) ack 1 <...>\n")
    assert p.ip == ip and p.flags == F["S"] | F["."]
    assert p.text() == f"> {written} S. 0:0(0) ack 1 <...>"
    assert reparsed(p) == p


def test_ip_fields_render_without_text():
    assert IpSpec(ecn="ect1", flowlabel=0x10).render() == "[ect1, flowlabel 0x10]"
    assert IpSpec(tos=0x10, ttl=9).render() == "[tos 0x10, ttl 9]"


@pytest.mark.parametrize(
    ("line", "where", "message"),
    [
        ("+0 < [ect01] S 0:0(0) win 10\n", "2:6", "[ect01] can only be used with outbound packets"),
        ("+0 < [ect2] S 0:0(0) win 10\n", "2:7", "unknown IP header field 'ect2'"),
        ("+0 < [tos 0x100] S 0:0(0) win 10\n", "2:11", "tos 0x100 is out of range (0-255)"),
        (
            "+0 < (flowlabel 0x100000) S 0:0(0) win 1\n",
            "2:17",
            "flowlabel 0x100000 is out of range",
        ),
        ("+0 < [ect0, ce] S 0:0(0) win 10\n", "2:13", "only one of noecn, ect0"),
        ("+0 < [ect0 S 0:0(0) win 10\n", "2:12", "expected ',' or ']' in the IP header fields"),
        ("+0 < [ect0] udp (10)\n", "2:13", "ECN can only be used with TCP packets"),
    ],
)
def test_bad_ip_fields(line: str, where: str, message: str):
    got = err(HEAD + line)
    assert got.startswith(f"g.pkt:{where}: ") and message in got, got


# --- packets: urg, ack, ports, PSP ------------------------------------------------------


def test_urgent_pointer_ports_and_psp():
    urg, ports, psp, noack = actions("""\
+0 < U. 1:101(100) ack 1 win 1000 urg 50
+0 < 4000>8080 S 0:0(0) win 1000
+0 > encap psp spi 0x17 . 1:1(0) ack 1
+0 < . 1:1001(1000) win 100
""")
    assert urg.urg == 50 and urg.text() == "< U. 1:101(100) ack 1 win 1000 urg 50"
    assert (ports.src_port, ports.dst_port) == (4000, 8080)
    assert ports.text() == "< 4000>8080 S 0:0(0) win 1000"
    assert psp.psp_spi == 0x17 and psp.text() == "> encap psp spi 23 . 1:1(0) ack 1"
    assert noack.ack is None and noack.flags == F["."]  # packetdrill sends ack 0
    for p in (urg, ports, psp, noack):
        assert reparsed(p) == p


# --- packets: ICMP and UDP --------------------------------------------------------------


@pytest.mark.parametrize(
    ("written", "icmp"),
    [
        ("icmp unreachable", IcmpSpec("unreachable")),
        ("icmp unreachable port_unreachable", IcmpSpec("unreachable", "port_unreachable")),
        (
            "icmp unreachable frag_needed mtu 1200 [1:1461(1460)]",
            IcmpSpec("unreachable", "frag_needed", 1200, 1, 1461, 1460, echoed="tcp"),
        ),
        ("icmp unreachable frag_needed mtu 800", IcmpSpec("unreachable", "frag_needed", 800)),
        (
            "icmp packet_too_big mtu 1400 [0:1000(1000)]",
            IcmpSpec("packet_too_big", None, 1400, 0, 1000, 1000, echoed="tcp"),
        ),
        (
            "icmp unreachable host_unreachable [5:15(10)]",
            IcmpSpec("unreachable", "host_unreachable", None, 5, 15, 10, echoed="tcp"),
        ),
        ("icmp type_3 code_4 mtu 600", IcmpSpec("type_3", "code_4", 600)),
        ("icmp unreachable MY_CODE", IcmpSpec("unreachable", "MY_CODE")),
        ("icmp echo_request id 9", IcmpSpec("echo_request", echo_id=9)),
        (
            "icmp unreachable port_unreachable [udp (40)]",
            IcmpSpec("unreachable", "port_unreachable", length=40, echoed="udp"),
        ),
        (
            "icmp echo_reply id 3 [raw (64)]",
            IcmpSpec("echo_reply", echo_id=3, length=64, echoed="raw"),
        ),
    ],
)
def test_icmp(written: str, icmp: IcmpSpec):
    p = one(f"+0 < {written}\n")
    icmp.text = written
    assert p.proto == "icmp" and p.icmp == icmp
    assert (p.flags, p.flags_text, p.start, p.end, p.length) == (0, "", 0, 0, 0)
    assert p.text() == f"< {written}"
    assert reparsed(p) == p
    icmp.text = ""
    assert icmp.render() == written


def test_icmp_then_more_events_and_ip_fields():
    icmp, close, icmp2 = actions("""\
+0 < icmp unreachable
1 close(3) = 0
+0 < [ttl 2] icmp time_exceeded [1:2(1)]
""")
    assert icmp.icmp.code is None and isinstance(close, Syscall)
    assert icmp2.ip == IpSpec(ttl=2, text="[ttl 2]") and icmp2.icmp.echoed == "tcp"


def test_udp():
    a, b, c = actions("+0 < udp (100)\n+0 > udp 5000>53 (0)\n+0 < [tos 0x4] udp (9)\n")
    assert a.proto == "udp" and a.length == 100 and a.flags == 0 and a.text() == "< udp (100)"
    assert (b.src_port, b.dst_port, b.length) == (5000, 53, 0)
    assert b.text() == "> udp 5000>53 (0)"
    assert c.ip.tos == 4 and c.text() == "< [tos 0x4] udp (9)"
    for p in (a, b, c):
        assert reparsed(p) == p


@pytest.mark.parametrize(
    ("line", "where", "message"),
    [
        ("+0 < icmp mtu 5\n", "2:11", "expected the ICMP type"),
        ("+0 < icmp unreachable frag_needed mtu x\n", "2:39", "expected the MTU after 'mtu'"),
        ("+0 < icmp unreachable [1:3(1)]\n", "2:24", "inconsistent sequence range 1:3(1)"),
        ("+0 < icmp unreachable [1:2(1)\n", "3:1", "expected ']' to close the packet"),
        ("+0 < udp 100\n", "2:10", "expected '(' before the UDP payload length"),
        ("+0 < udp (70000)\n", "2:11", "UDP payload length 70000 is out of range"),
    ],
)
def test_bad_icmp_and_udp(line: str, where: str, message: str):
    got = err(HEAD + line)
    assert got.startswith(f"g.pkt:{where}: ") and message in got, got


# --- packets: TCP options ---------------------------------------------------------------


def test_fast_open_options():
    p = one(
        "+0 < S 0:0(0) win 100 <mss 1460,FO,FO abcd1234,FO 12345678,FOEXP,"
        "FOEXP 00ff00ff00ff00ff,FOEXP MY_COOKIE,nop>\n"
    )
    got = [(o.kind, o.value, o.text_value) for o in p.options]
    assert got == [
        ("mss", 1460, ""),
        ("FO", None, ""),
        ("FO", b"\xab\xcd\x12\x34", "abcd1234"),
        ("FO", b"\x12\x34\x56\x78", "12345678"),
        ("FOEXP", None, ""),
        ("FOEXP", bytes.fromhex("00ff00ff00ff00ff"), "00ff00ff00ff00ff"),
        ("FOEXP", "MY_COOKIE", "MY_COOKIE"),
        ("nop", None, ""),
    ]
    assert p.text().endswith(
        "<mss 1460,FO,FO abcd1234,FO 12345678,FOEXP,FOEXP 00ff00ff00ff00ff,FOEXP MY_COOKIE,nop>"
    )
    assert reparsed(p) == p


def test_md5_and_accecn_options():
    p = one(
        "+0 < . 1:1(0) ack 1 win 9 <md5 00112233445566778899aabbccddeeff,"
        "ECN e0b 1,ECN e1b 2 ceb 3,ECN e0b 4 ceb 5 e1b 6,ECN e1b 7 ceb 8 e0b 16777215>\n"
    )
    md5, *ecn = p.options
    assert md5.kind == "md5" and md5.value == bytes(range(0, 256, 17))
    assert [o.value for o in ecn] == [
        (("e0b", 1),),
        (("e1b", 2), ("ceb", 3)),
        (("e0b", 4), ("ceb", 5), ("e1b", 6)),
        (("e1b", 7), ("ceb", 8), ("e0b", 16777215)),
    ]
    assert ecn[1].text() == "ECN e1b 2 ceb 3" and ecn[1].text_value == "e1b 2 ceb 3"
    assert reparsed(p) == p


def test_option_values_render_without_text():
    from netemu.pkt.model import TcpOptionSpec

    assert TcpOptionSpec("FO", b"\x01\x02").text() == "FO 0102"
    assert TcpOptionSpec("FOEXP").text() == "FOEXP"
    assert TcpOptionSpec("ECN", (("e0b", 1), ("ceb", 2))).text() == "ECN e0b 1 ceb 2"


@pytest.mark.parametrize(
    ("opts", "col", "message"),
    [
        ("FO abc", 25, "FO cookie: 'abc' has an odd number of hex digits"),
        ("FO " + "00" * 39, 25, "FO cookie: 39 bytes is more than the 38 that fit"),
        ("FOEXP " + "00" * 37, 28, "FOEXP cookie: 37 bytes is more than the 36 that fit"),
        ("md5 " + "00" * 17, 26, "md5 digest: 17 bytes is more than the 16 that fit"),
        ("md5", 25, "expected the digest (hex) after 'md5', found '>'"),
        ("FO 0x12", 25, "FO cookie: '0x12' is not a hex string"),
        ("FO ab-cd", 27, "expected '>' to close the TCP option list"),
        ("ECN ceb 1", 26, "expected 'e0b N' or 'e1b N' after 'ECN'"),
        ("ECN e0b 1 e1b 2", 32, "expected '>' to close the TCP option list"),
        ("ECN e0b 16777216", 30, "AccECN e0b 16777216 is out of range"),
        ("mss 65536", 22, "mss 65536 is out of range"),
        ("sack 1:2 3:4 5:6 7:8 9:10", 22, "at most 4 SACK blocks"),
        ("mpcapable", 22, "TCP option 'mpcapable' is not in packetdrill's language"),
        ("exp 1", 22, "TCP option 'exp' is not in packetdrill's language"),
        ("bogus", 22, "unknown TCP option 'bogus'"),
    ],
)
def test_bad_options(opts: str, col: int, message: str):
    got = err(HEAD + f"+0 < S 0:0(0) win 1 <{opts}>\n")
    assert got.startswith(f"g.pkt:2:{col}: ") and message in got, got


# --- packets: other errors --------------------------------------------------------------


@pytest.mark.parametrize(
    ("line", "where", "message"),
    [
        (
            "+0 < ipv4 1.2.3.4 > 5.6.7.8: S 0:0(0) win 1\n",
            "2:6",
            "packet encapsulation is not supported (an outer IPv4 header",
        ),
        ("+0 < gre: S 0:0(0) win 1\n", "2:6", "packet encapsulation is not supported (GRE)"),
        ("+0 < mpls (label 1, tc 0, [S], ttl 2): S 0:0(0) win 1\n", "2:6", "(MPLS)"),
        ("+0 < S 0:0(0) win 1 ecr 5\n", "2:21", "unexpected 'ecr' in a packet"),
        ("+0 < S 0:0(0) win 1 <mss 5> ack 3\n", "2:29", "unexpected 'ack' after the packet"),
        ("+0 < S 0:0(0) urg 65536\n", "2:19", "urgent pointer 65536 is out of range"),
        ("+0 < S 4294967296:4294967296(0) win 1\n", "2:8", "sequence number 4294967296 is out"),
        (
            "+0 < S 0:0(0) win 1 <mss MSS>\n",
            "2:26",
            "found 'MSS' (to use a name, define it: --define=MSS=...)",
        ),
        ("+0 < 70000>1 S 0:0(0) win 1\n", "2:6", "source port 70000 is out of range"),
        ("+0 < encap psp 7 S 0:0(0) win 1\n", "2:16", "expected 'spi' in 'encap psp spi N'"),
    ],
)
def test_bad_packets(line: str, where: str, message: str):
    got = err(HEAD + line)
    assert got.startswith(f"g.pkt:{where}: ") and message in got, got


# --- system call expressions ------------------------------------------------------------


def test_null_numbers_strings():
    c = one(
        '+0 write(4, NULL, -12, 0x1F, 017, "a\\"b\\n\\x41\\101\\\\" "cd", "ef"..., '
        "192.168.0.1) = -1 EFAULT (Bad address)\n"
    )
    fd, null, neg, hexa, lead0, s, pre, ip = c.args
    assert fd.kind == "int" and fd.value == 4
    assert null.kind == "null" and null.value is None and null.text() == "NULL"
    assert (neg.value, hexa.value, lead0.value) == (-12, 0x1F, 17)  # no octal: packetdrill's atoll
    assert s.kind == "string" and s.value == 'a"b\nAA\\cd' and not s.prefix
    assert pre.value == "ef" and pre.prefix and pre.text() == '"ef"...'
    assert ip.kind == "string" and ip.value == "192.168.0.1"
    assert c.errno == "EFAULT" and c.note == "Bad address" and c.ret.value == -1
    assert reparsed(c).text() == c.text()


def test_msghdr_with_counts_iovecs_and_cmsgs():
    c = one("""\
+0 recvmsg(4, {msg_name(...)=...,
               msg_iov(2)=[{iov_base=..., iov_len=1000}, {..., 20}],
               msg_flags=MSG_ERRQUEUE,
               msg_control(48)=[{cmsg_level=SOL_SOCKET, cmsg_type=SCM_TIMESTAMPING,
                                 cmsg_data={scm_sec=0, scm_nsec=0}},
                                {cmsg_level=SOL_IP, cmsg_type=IP_RECVERR,
                                 cmsg_data={ee_errno=ENOMSG, ee_origin=SO_EE_ORIGIN_TIMESTAMPING,
                                            ee_type=0, ee_code=0, ee_info=SCM_TSTAMP_SND,
                                            ee_data=0}}]}, MSG_ERRQUEUE) = 0
""")
    msg = c.args[1]
    assert msg.kind == "struct" and list(msg.value) == [
        "msg_name",
        "msg_iov",
        "msg_flags",
        "msg_control",
    ]
    name, iov, flags, ctl = msg.value.values()
    assert name.kind == "ellipsis" and name.count_any and name.count is None
    assert iov.kind == "list" and iov.count == 2 and not iov.count_any
    first, second = iov.value
    assert first.value["iov_len"].value == 1000 and first.value["iov_base"].kind == "ellipsis"
    assert second.value["0"].kind == "ellipsis" and second.value["1"].value == 20
    assert flags.kind == "word" and flags.count is None
    assert ctl.count == 48 and len(ctl.value) == 2
    ts, ee = (x.value for x in ctl.value)
    assert ts["cmsg_type"].value == "SCM_TIMESTAMPING"
    assert ts["cmsg_data"].value["scm_nsec"].value == 0
    assert ee["cmsg_data"].value["ee_info"].value == "SCM_TSTAMP_SND"
    text = msg.text()
    assert text.startswith(
        "{msg_name(...)=..., msg_iov(2)=[{iov_base=..., iov_len=1000}, {..., 20}]"
    )
    assert "msg_control(48)=[{cmsg_level=SOL_SOCKET" in text
    assert reparsed(c).text() == c.text()


def test_epoll_poll_sockaddr_linger_and_calls():
    ctl, wait, poll, conn, linger, pipe, nothing = actions("""\
+0 epoll_ctl(5, EPOLL_CTL_ADD, 4, {events=EPOLLIN|EPOLLOUT|EPOLLET, fd=4}) = 0
+0 epoll_wait(5, {events=EPOLLOUT, u64=123}, 1, 0) = 1
+0 poll([{fd=4, events=POLLIN, revents=POLLIN|POLLRDNORM}], 1, 0) = 1
+0 connect(4, {sa_family=AF_INET6, sin_port=htons(8080), sin_addr=inet6_addr("fd::1")}, 28) = 0
+0 setsockopt(4, SOL_SOCKET, SO_LINGER, {onoff=1, linger=0}, 8) = 0
+0 pipe([5, 6]) = 0
+0 sched_yield() = 0
""")
    ev = ctl.args[3].value
    assert ev["events"].kind == "or" and [x.value for x in ev["events"].value] == [
        "EPOLLIN",
        "EPOLLOUT",
        "EPOLLET",
    ]
    assert ev["fd"].value == 4 and wait.args[1].value["u64"].value == 123
    pfd = poll.args[0].value[0].value
    assert pfd["revents"].text() == "POLLIN|POLLRDNORM"
    sa = conn.args[1].value
    assert sa["sin_port"].kind == "call" and sa["sin_port"].value[0] == "htons"
    assert sa["sin_addr"].value[1][0].value == "fd::1"
    assert linger.args[3].value["linger"].value == 0
    assert [x.value for x in pipe.args[0].value] == [5, 6]
    assert nothing.args == [] and nothing.text() == "sched_yield() = 0"


def test_assign_outside_braces_and_empty_things():
    c = one("+0 f(x=A|B, [], {}, g()) = ...\n")
    asg, lst, st, call = c.args
    assert asg.kind == "assign" and asg.value[0] == "x" and asg.value[1].kind == "or"
    assert asg.text() == "x=A|B"
    assert lst.value == [] and st.value == {} and call.value == ("g", [])
    assert c.ret.kind == "ellipsis"


def test_results_errnos_and_notes():
    a, b, c, d, e = actions("""\
+0 fcntl(3, F_GETFL) = 0x802 (flags O_RDWR|O_NONBLOCK)
+0 accept(3, ..., ...) = -1 EAGAIN (Resource temporarily unavailable)
+0 sendto(3, NULL, 1, 0, ..., ...) = -1
+0 read(3, ..., 5) = -1 ENOTCONN
+0 ioctl(3, SIOCINQ, [0]) = 0
""")
    assert a.ret.value == 0x802 and a.errno is None and a.note == "flags O_RDWR | O_NONBLOCK"
    assert b.errno == "EAGAIN" and b.note == "Resource temporarily unavailable"
    assert c.ret.value == -1 and c.errno is None
    assert d.errno == "ENOTCONN" and d.note is None
    assert e.args[2].value[0].value == 0


@pytest.mark.parametrize(
    ("line", "where", "message"),
    [
        ("+0 f(3, {a=1 b=2}) = 0\n", "2:14", "expected ',' or '}', found 'b'"),
        ("+0 f(3, [1, 2) = 0\n", "2:14", "expected ',' or ']', found ')'"),
        ("+0 f(3, 1.5) = 0\n", "2:9", "no fractions in system call values"),
        ("+0 f(3, -EINVAL) = 0\n", "2:9", "negative symbolic values are not supported"),
        ("+0 f({(label 1, tc 2, ttl 3)}) = 0\n", "2:7", "MPLS stack expressions"),
        ("+0 f({flags [none] sum 0 off 0 key 0 seq 0}) = 0\n", "2:7", "GRE header expressions"),
        ("+0 f(3) = 0 EAGAIN (x)\n", "2:13", "an errno (EAGAIN) goes with a result of -1"),
        ("+0 f(3) = -1 EAGAIN (Resource\n", "2:21", "unterminated '(' note"),
        ('+0 f("abc) = 0\n', "2:6", "unterminated string"),
    ],
)
def test_bad_expressions(line: str, where: str, message: str):
    got = err(HEAD + line)
    assert got.startswith(f"g.pkt:{where}: ") and message in got, got


@pytest.mark.parametrize(("open_", "close"), [("[", "]"), ("{", "}"), ("f(", ")")])
def test_deep_nesting_is_an_error_not_a_crash(open_: str, close: str):
    got = err(HEAD + "+0 f(" + open_ * 1000 + close * 1000 + ") = 0\n")
    assert got.startswith("g.pkt:2:") and "nested too deeply" in got, got
    ok = one("+0 f(" + open_ * 50 + close * 50 + ") = 0\n")  # deep but sane nesting is fine
    assert isinstance(ok, Syscall)


# --- script level -----------------------------------------------------------------------


def test_options_defines_commands_code_and_comments():
    sc = parse_text(
        """\
// Leading description.
--strict_segments
--tcp_ts_ecr_scaled // a bare option, then a comment
--local_ip=fd3d::1
--tolerance_usecs = 7000
--define=PORT=0x1f90
--define=CC="reno"
--define=CMD=`echo hi`
--define=FLAG=MSG_MORE
--define=KEY=00112233
--label="two words"
`cmd one \\
  continued
cmd two`
/* a C comment
   over lines */
0 socket(..., SOCK_STREAM, IPPROTO_TCP) = 3
+0 bind(3, {sa_family=AF_INET, sin_port=htons(PORT), sin_addr=inet_addr("1.2.3.4")}, 16) = 0
+0 setsockopt(3, SOL_TCP, TCP_CONGESTION, CC, 4) = 0
+0 send(3, ..., 10, FLAG) = 10
+0 CMD
+0 %{
if True:
    d = {'a': {'b': 1}}
    assert d['a']['b'] == 1
}%
* > S. 0:0(0) ack 1 <FO KEY>
0.1~0.2 > . 1:1(0) ack 1
+0~+0.5 > . 1:1(0) ack 1
+0...0.3 read(3, ..., 10) = 10
`cleanup`
""",
        "s.pkt",
    )
    assert sc.description == "Leading description."
    opts = [(o.name, o.value) for o in sc.options]
    assert opts == [
        ("strict_segments", ""),
        ("tcp_ts_ecr_scaled", ""),
        ("local_ip", "fd3d::1"),
        ("tolerance_usecs", "7000"),
        ("define", "PORT=0x1f90"),
        ("define", 'CC="reno"'),
        ("define", "CMD=`echo hi`"),
        ("define", "FLAG=MSG_MORE"),
        ("define", "KEY=00112233"),
        ("label", "two words"),
    ]
    (init,) = sc.init_commands
    assert init.action.text == "cmd one \\\n  continued\ncmd two"  # as written, for the shell
    ev = sc.events
    assert ev[1].action.args[1].value["sin_port"].value[1][0].value == 0x1F90
    assert ev[2].action.args[3].kind == "string" and ev[2].action.args[3].value == "reno"
    assert ev[3].action.args[3].value == "MSG_MORE"
    assert isinstance(ev[4].action, Command) and ev[4].action.text == "echo hi"
    assert isinstance(ev[5].action, Code) and "d['a']['b'] == 1" in ev[5].action.text
    assert ev[6].time.kind == "any" and ev[6].action.options[0].value == bytes.fromhex("00112233")
    assert [(e.time.kind, e.time.start, e.time.end) for e in ev[7:9]] == [
        ("range", 0.1, 0.2),
        ("rrange", 0.0, 0.5),
    ]
    assert ev[9].action.end == 0.3
    assert isinstance(ev[10].action, Command) and ev[10].action.text == "cleanup"
    assert ev[0].line == 17


def test_defines_from_the_command_line():
    p = one(
        "+0 < S 0:0(0) win 1 <mss MSS, FOEXP COOKIE>\n", defines={"MSS": "1000", "COOKIE": "aabb"}
    )
    assert p.options[0].value == 1000 and p.options[1].value == b"\xaa\xbb"
    sc = parse_text(
        "--define=MSS=1200\n" + HEAD + "+0 < S 0:0(0) win 1 <mss MSS>\n",
        "d.pkt",
        defines={"MSS": "1000"},
    )
    assert sc.events[1].action.options[0].value == 1200  # the script's own wins
    kw = one("+0 < S 0:0(0) win 1 <mss 1>\n", defines={"mss": "7"})  # keywords stay
    assert kw.options[0].kind == "mss"


@pytest.mark.parametrize(
    ("text", "where", "message"),
    [
        (HEAD + "/* never closed\n", "2:1", "unterminated /* comment"),
        (HEAD + "+0 `never closed\n", "2:4", "unterminated backquote"),
        (HEAD + "--late=1\n", "2:1", "option --late must come before the first event"),
        (HEAD + "+0 < S 0:0(0) win 1\n+1~+.5 > . 1:1(0) ack 1\n", "3:5", "time range ends"),
        (HEAD + "+0~0.5 > . 1:1(0) ack 1\n", "2:4", "both ends of a time range"),
        (HEAD + "+0 foo\n", "2:4", "a system call needs its arguments in parentheses"),
        ("// only a comment\n", "2:1", "the script has no events"),
    ],
)
def test_script_errors(text: str, where: str, message: str):
    got = err(text)
    assert got.startswith(f"g.pkt:{where}: ") and message in got, got


def test_expr_defaults_are_backwards_compatible():
    e = Expr("int", 3)
    assert (e.count, e.count_any, e.prefix) == (None, False, False)
    p = PacketSpec("<", 2, "S", 0, 0, 0)
    assert (p.proto, p.ip, p.icmp, p.urg, p.ace, p.src_port, p.psp_spi) == (
        "tcp",
        None,
        None,
        None,
        None,
        None,
        None,
    )
    assert p.text() == "< S 0:0(0)"


PACKETDRILL_TCP = Path("/work/shared/packetdrill/gtests/net/tcp")


@pytest.mark.skipif(not PACKETDRILL_TCP.is_dir(), reason="no packetdrill checkout")
def test_every_packetdrill_tcp_script_parses():
    paths = sorted(PACKETDRILL_TCP.rglob("*.pkt"))
    assert paths
    for p in paths:
        assert parse_file(p).events
