"""The .pkt parser, the checks that run before any lab, the YAML converter and the
snippet runner: no root needed."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from netemu.pkt import PktError, load_pkt, load_pkt_text
from netemu.pkt.code import run_snippet
from netemu.pkt.convert import to_yaml
from netemu.pkt.load import shell_sysctls
from netemu.pkt.model import Code, Command, PacketSpec, Syscall
from netemu.pkt.parser import FLAG_BITS, parse_text

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]
SCRIPTS = sorted((HERE / "scripts").glob("*.pkt"))
LIVE_DIR = HERE / "scripts" / "live"
LIVE = sorted(LIVE_DIR.glob("*.pkt"))  # test_live.py runs them

HEAD = """\
    0 socket(..., SOCK_STREAM, IPPROTO_TCP) = 3
   +0 bind(3, ..., ...) = 0
   +0 listen(3, 1) = 0
"""


def err(text: str, file: str = "t.pkt") -> str:
    with pytest.raises(PktError) as e:
        load_pkt_text(text, file)
    return str(e.value)


@pytest.mark.parametrize("path", SCRIPTS, ids=[p.stem for p in SCRIPTS])
def test_bundled_scripts_load(path: Path):
    sc = load_pkt(path)
    assert sc.script.events
    assert sc.description
    assert sc.congestion == "cubic"  # found statically in common/set_sysctls.sh
    assert sc.sysctls["net.ipv4.tcp_rmem"] == "4096 131072 6291456"  # $((6*1024*1024))


def test_times():
    sc = parse_text(
        HEAD
        + """\
  +.1 < S 0:0(0) win 100
 0.25 > S. 0:0(0) ack 1 <...>
+0~+.02 < . 1:1(0) ack 1 win 100
0.3~0.4 > . 1:1(0) ack 1
    * > F. 1:1(0) ack 1
 +0...0.5 read(4, ..., 10) = 10
+.1...+.3 read(4, ..., 10) = 10
"""
    )
    t = [(e.time.kind, e.time.start, e.time.end) for e in sc.events[3:]]
    assert t == [
        ("rel", 0.1, None),
        ("abs", 0.25, None),
        ("rrange", 0.0, 0.02),
        ("range", 0.3, 0.4),
        ("any", 0.0, None),
        ("rel", 0.0, None),
        ("rel", 0.1, None),
    ]
    r1, r2 = sc.events[-2].action, sc.events[-1].action
    assert isinstance(r1, Syscall) and r1.end == 0.5 and r1.end_text == "0.5"
    assert isinstance(r2, Syscall) and r2.end == 0.3 and r2.end_text == "+.3"


def test_packets_flags_and_options():
    sc = parse_text(
        HEAD
        + """\
+0 < S 0:0(0) win 32792 <mss 1000,sackOK,TS val 100 ecr 0,nop,wscale 7>
+0 > S. 0:0(0) ack 1 <...>
+0 < P. 1:1001(1000) ack 1 win 257 <sack 1:2 3:4,nop,nop,eol>
+0 > FP. 1:1(0) ack 1001 win 257
+0 < - 1:1(0) win 0
+0 < EW 1:1(0) win 0
"""
    )
    syn, synack, data, fin, none, ecn = (e.action for e in sc.events[3:])
    assert isinstance(syn, PacketSpec) and syn.direction == "<" and syn.flags == FLAG_BITS["S"]
    assert [o.kind for o in syn.options] == ["mss", "sackOK", "TS", "nop", "wscale"]
    assert syn.options[2].value == (100, 0) and syn.win == 32792
    assert synack.options_any and synack.options is None and synack.ack == 1
    assert data.length == 1000 and data.end == 1001
    assert data.options[0].value == ((1, 2), (3, 4)) and data.options[-1].kind == "eol"
    assert fin.flags == FLAG_BITS["F"] | FLAG_BITS["P"] | FLAG_BITS["."]
    assert none.flags == 0 and ecn.flags == FLAG_BITS["E"] | FLAG_BITS["W"]
    assert data.text() == "< P. 1:1001(1000) ack 1 win 257 <sack 1:2 3:4,nop,nop,eol>"


def test_syscalls_comments_commands_and_code():
    sc = parse_text(
        """\
// A description line.
// Another.
--tolerance_usecs=10000
`./init.sh`
/* a C comment
   over lines */
0 socket(..., SOCK_STREAM, IPPROTO_TCP) = 3  // trailing comment
+0 fcntl(3, F_SETFL, O_RDWR|O_NONBLOCK) = 0
+0 connect(3, {sa_family=AF_INET, sin_port=htons(8080), sin_addr=inet_addr("192.0.2.1")}, 16) = -1 EINPROGRESS (Operation now in progress)
+0 fcntl(3, F_GETFL) = 0x802 (flags O_RDWR|O_NONBLOCK)
+0 setsockopt(3, SOL_SOCKET, SO_LINGER, {onoff=1, linger=0}, 8) = 0
+0 poll([{fd=3, events=POLLIN|POLLOUT, revents=POLLOUT}], 1, 0) = 1
+0 `sysctl -q net.ipv4.tcp_sack=0`
+0 %{
assert tcpi_snd_cwnd == 10
}%
""",
        "x.pkt",
    )
    assert sc.description == "A description line. Another."
    assert sc.options[0].name == "tolerance_usecs" and sc.options[0].value == "10000"
    assert isinstance(sc.init_commands[0].action, Command)
    kinds = [e.kind for e in sc.events]
    assert kinds == ["syscall"] * 6 + ["command", "code"]
    conn = sc.events[2].action
    assert conn.errno == "EINPROGRESS" and conn.note == "Operation now in progress"
    assert conn.args[1].value["sin_port"].text() == "htons(8080)"
    assert sc.events[3].action.ret.value == 0x802
    assert isinstance(sc.events[-1].action, Code) and "tcpi_snd_cwnd" in sc.events[-1].action.text
    assert sc.events[0].line == 7 and sc.events[-1].line == 14


def test_calls_are_normalised_by_the_converter():
    import yaml

    sc = load_pkt_text("""\
0 socket(..., SOCK_STREAM, IPPROTO_TCP) = 3
+0 setsockopt(3, IPPROTO_TCP, TCP_CONGESTION, "reno", 4) = 0
+0 setsockopt(3, SOL_SOCKET, SO_LINGER, {onoff=1, linger=0}, 8) = 0
+0 bind(3, {sa_family=AF_INET, sin_port=htons(9000), sin_addr=inet_addr("192.168.0.1")}, 16) = 0
+0 listen(3, 5) = 0
+0 accept(3, ..., ...) = -1 EAGAIN (Resource temporarily unavailable)
+0 sendto(3, ..., 100, MSG_DONTWAIT, ..., ...) = 100
+0 shutdown(3, SHUT_RDWR) = 0
+0 epoll_create(1) = 5
""")
    assert not hasattr(sc, "calls")  # the runner makes the calls as written
    assert sc.tolerance_usecs == 4000 and sc.scheduled_seconds() == 0
    text = to_yaml(sc)
    doc = yaml.safe_load(text)
    assert doc["connections"]["c"]["port"] == 9000
    peer = [st["peer"] for st in doc["steps"] if "peer" in st]
    assert peer[0] == {
        "listen": {
            "port": 9000,
            "backlog": 5,
            "setsockopt": {"TCP_CONGESTION": "reno", "SO_LINGER": [1, 0]},
        }
    }
    assert {"send": {"bytes": 100}} in peer and {"shutdown": "both"} in peer
    # what YAML cannot say stays a comment at its place
    assert "# line 6: +0 accept(3, ..., ...) = -1 EAGAIN" in text
    assert "# line 9: +0 epoll_create(1) = 5" in text
    assert len(peer) == 3


def test_scheduled_seconds():
    sc = load_pkt_text(
        HEAD
        + """\
  +.1 < S 0:0(0) win 100
   +0 > S. 0:0(0) ack 1 <...>
 +.05 < . 1:1(0) ack 1 win 100
   +0...0.5 accept(3, ..., ...) = 4
  0.4 < . 1:1(0) ack 1 win 100
"""
    )
    assert sc.scheduled_seconds() == pytest.approx(0.65)


@pytest.mark.parametrize(
    ("text", "where", "message"),
    [
        (HEAD + "+0 < Q 0:0(0) win 1\n", "4:6", "unknown TCP flag 'Q' in 'Q'"),
        (HEAD + "+0 < S 0:1(0) win 1\n", "4:6", "inconsistent sequence range 0:1(0)"),
        (HEAD + "+0 < S 0:0(0) win 1 <mss 1000,bogus>\n", "4:31", "unknown TCP option 'bogus'"),
        (HEAD + "+0 < S 0:0(0) win 1 <...>\n", "4:22", "'<...>' (any options) only makes sense"),
        (HEAD + "+0 close(3)\n", "5:1", "expected '= <result>' after close(...)"),
        (HEAD + "+0 %{ assert 1\n", "4:4", "unterminated %{ code block"),
        (
            HEAD + "+0 read(3, ..., 10) = 10 EAGAIN\n",
            "4:26",
            "an errno (EAGAIN) goes with a result of -1",
        ),
        (HEAD + "+0...0.1 < S 0:0(0) win 1\n", "4:10", "only a system call may have an end time"),
        (
            HEAD + "+0 < S 0:0(0) win 1\n+1~+.5 < . 1:1(0) ack 1 win 1\n",
            "5:5",
            "time range ends (0.5) before it starts (1)",
        ),
        (
            "+.1 socket(..., SOCK_STREAM, IPPROTO_TCP) = 3\n",
            "1:1",
            "the first event must be at time 0, not '+.1'",
        ),
        # unknown calls and symbols, wherever they are
        (
            HEAD + "+0 accept4(3, ..., ..., 0) = 4\n",
            "4:4",
            "system call 'accept4' is not supported",
        ),
        (HEAD + "+0 sched_yield() = 0\n", "4:4", "system call 'sched_yield' is not supported"),
        (
            HEAD + "+0 setsockopt(3, SOL_SOCKET, SO_NOPE, [1], 4) = 0\n",
            "4:30",
            "unknown symbol 'SO_NOPE'",
        ),
        (HEAD + "+0 send(3, ..., 10, MSG_NOPE) = 10\n", "4:21", "unknown symbol 'MSG_NOPE'"),
        (
            HEAD + "+0 poll([{fd=3, events=POLLIN|POLLNOPE, revents=0}], 1, 0) = 0\n",
            "4:31",
            "unknown symbol 'POLLNOPE'",
        ),
        (
            HEAD + "+0 recvmsg(3, {msg_iov(1)=[{..., 10}], msg_flags=MSG_NOPE}, 0) = 0\n",
            "4:50",
            "unknown symbol 'MSG_NOPE'",
        ),
        (HEAD + "+0 read(3, ..., 10) = -1 ENOPE (No such errno)\n", "4:4", "unknown errno 'ENOPE'"),
        # options
        ("--wire_client=1\n" + HEAD, "1:1", "option --wire_client is not supported"),
        ("--frobnicate=1\n" + HEAD, "1:1", "unknown option --frobnicate (packetdrill's options: "),
        ("--tolerance_usecs=0\n" + HEAD, "1:1", "bad --tolerance_usecs: 0"),
        ("--tolerance_usecs=abc\n" + HEAD, "1:1", "--tolerance_usecs: bad value 'abc'"),
        ("--ip_version=ipv5\n" + HEAD, "1:1", "--ip_version=ipv5: unknown (packetdrill's are"),
        (
            "--local_ip=fd00::1\n" + HEAD,
            "1:1",
            "--local_ip=fd00::1: not an IPv4 address (--ip_version=ipv4)",
        ),
        (
            "--ip_version=ipv6\n--remote_ip=192.0.2.1\n" + HEAD,
            "2:1",
            "--remote_ip=192.0.2.1: not an IPv6 address (--ip_version=ipv6)",
        ),
        (
            "--ip_version=ipv4-mapped-ipv6\n--local_ip=fd00::1\n" + HEAD,
            "2:1",
            "--local_ip=fd00::1: not an IPv4 address (--ip_version=ipv4-mapped-ipv6)",
        ),
        ("--ip_version=ipv6\n--mtu=1200\n" + HEAD, "2:1", "--mtu=1200: IPv6 needs at least 1280"),
        ("--gateway_ip=nope\n" + HEAD, "1:1", "--gateway_ip=nope: not an IP address"),
    ],
)
def test_errors_point_at_file_line_col(text: str, where: str, message: str):
    got = err(text)
    assert got.startswith(f"t.pkt:{where}: "), got
    assert message in got, got


def test_all_errors_are_collected():
    with pytest.raises(PktError) as e:
        load_pkt_text(
            "--ip_version=ipv7\n" + HEAD + "+0 accept4(3, ..., ..., 0) = 4\n"
            "+0 setsockopt(3, SOL_SOCKET, SO_NOPE, [1], 4) = 0\n",
            "t.pkt",
        )
    assert [str(x).split(": ", 1)[0] for x in e.value.errors] == [
        "t.pkt:1:1",
        "t.pkt:5:4",
        "t.pkt:6:30",
    ]


# What netemu refused before its system calls were the real ones: every one loads now.
@pytest.mark.parametrize(
    "text",
    [
        HEAD + "+0 epoll_create(1) = 4\n"
        "+0 epoll_ctl(4, EPOLL_CTL_ADD, 3, {events=EPOLLIN|EPOLLET, fd=3}) = 0\n"
        "+0 epoll_wait(4, {events=EPOLLIN, fd=3}, 1, 0) = 1\n",
        HEAD + "+0 setsockopt(3, SOL_SOCKET, SO_ZEROCOPY, [1], 4) = 0\n"
        "+0 send(3, ..., 10, MSG_ZEROCOPY) = 10\n",
        HEAD + "+0 setsockopt(3, SOL_IPV6, IPV6_V6ONLY, [1], 4) = 0\n",
        HEAD + "+0 setsockopt(3, IPPROTO_TCP, TCP_FASTOPEN, [5], 4) = 0\n",
        HEAD + "+0 fcntl(3, F_GETFD) = 0\n+0 fcntl(3, F_SETFD, FD_CLOEXEC) = 0\n",
        HEAD + "+0 ioctl(3, SIOCINQ, [0]) = 0\n+0 ioctl(3, SIOCOUTQ, [0]) = 0\n",
        HEAD + "+0 writev(3, [{..., 10}, {..., 20}], 2) = 30\n+0 readv(3, [{..., 30}], 1) = 30\n",
        HEAD + "+0 pipe([5, 6]) = 0\n+0 splice(3, NULL, 6, NULL, 10, SPLICE_F_NONBLOCK) = 10\n",
        HEAD + '+0 open("/tmp/x", O_RDONLY) = 5\n+0 sendfile(3, 5, [0], 5) = 5\n',
        "0 socket(..., SOCK_DGRAM, IPPROTO_UDP) = 3\n+0 < udp (100)\n",
        HEAD + "+0 < S 0:0(0) win 1 <mss 1000,md5 000102030405060708090a0b0c0d0e0f,nop,nop>\n",
        HEAD + "+0 < [ect0] SEW 0:0(0) win 1 <mss 1000,FO,nop,nop>\n",
        HEAD + "+0 < (tos 0x10) U. 1:101(100) ack 1 win 1 urg 100\n",
        HEAD + "+0 < icmp unreachable frag_needed mtu 1200 [1:1461(1460)]\n",
    ],
)
def test_formerly_refused_inputs_load(text: str):
    sc = load_pkt_text(text, "t.pkt")
    assert len(sc.script.events) == len(text.splitlines())


def test_an_inbound_ack_without_ack_n_loads_and_sends_ack_0():
    sc = load_pkt_text(HEAD + "+0 < . 1:1(0) win 1\n", "t.pkt")
    pkt = sc.script.events[-1].action
    assert isinstance(pkt, PacketSpec) and pkt.flags == FLAG_BITS["."] and pkt.ack is None


@pytest.mark.parametrize("path", LIVE, ids=[p.stem for p in LIVE])
def test_live_scripts_load(path: Path):
    argv = {"sendfile": ["-D", 'DATA_FILE="/tmp/zeros"'], "define": ["-D", "PAYLOAD_LEN=300"]}.get(
        path.stem, []
    )
    sc = load_pkt(path, argv)
    assert sc.description and sc.script.events


def test_command_line_options_overwrite_the_scripts():
    text = "--tolerance_usecs=100000\n--bind_port=9000\n--mtu=1400\n" + HEAD
    sc = load_pkt_text(text, "t.pkt")
    assert (sc.tolerance_usecs, sc.bind_port, sc.mtu) == (100_000, 9000, 1400)
    sc = load_pkt_text(
        text, "t.pkt", ["--tolerance_usecs=4000", "--bind_port", "8081", "--mss=1000", "-v"]
    )
    assert (sc.tolerance_usecs, sc.bind_port, sc.mtu, sc.mss) == (4000, 8081, 1400, 1000)
    with pytest.raises(PktError) as e:
        load_pkt_text(HEAD, "t.pkt", ["--ip_version=ipv6", "--local_ip=10.0.0.1"])
    assert str(e.value).startswith("<command line>: --local_ip=10.0.0.1: not an IPv6 address")


def test_ip_versions_and_packetdrills_ipv6_defaults():
    """--ip_version as packetdrill's config.c: IPv6 with its defaults (remote
    2001:DB8::1, local and gateway in fd3d:fa7b:d17d::/48) unless given; the script's own
    option overwritten by the command line's."""
    sc = load_pkt_text("--ip_version=ipv6\n" + HEAD, "t.pkt")
    assert (sc.ip_version, sc.six, sc.remote_ip, sc.gateway_ip) == (
        "ipv6",
        True,
        "2001:db8::1",
        "fd3d:fa7b:d17d:8888::",
    )
    assert str(sc.local_net) == "fd3d:fa7b:d17d::/48"
    sc = load_pkt_text(
        "--ip_version=ipv6\n" + HEAD, "t.pkt", ["--remote_ip=FD3D:FA7B:D17D::1", "--mtu=1520"]
    )
    assert (sc.remote_ip, sc.local_ip, sc.mtu) == ("fd3d:fa7b:d17d::1", "fd3d:fa7b:d17d::1", 1520)
    sc = load_pkt_text(HEAD, "t.pkt", ["--ip_version=ipv4-mapped-ipv6"])
    assert (sc.six, sc.local_ip, sc.remote_ip) == (False, "192.168.0.1", "192.0.2.1")
    assert str(sc.local_net) == "192.168.0.0/16"
    assert load_pkt_text("--ip_version=ipv6\n" + HEAD, "t.pkt", ["--ip_version=ipv4"]).six is False


def test_defines_from_the_command_line():
    text = HEAD + "+0 write(3, ..., LEN) = LEN\n"
    with pytest.raises(PktError) as e:
        load_pkt_text(text, "t.pkt")
    assert str(e.value).startswith("t.pkt:4:18: unknown symbol 'LEN'")
    for argv in (["-D", "LEN=10"], ["-DLEN=10"], ["--define=LEN=10"]):
        call = load_pkt_text(text, "t.pkt", argv).script.events[-1].action
        assert isinstance(call, Syscall)
        assert call.args[2].value == 10 and call.ret.value == 10, argv


def test_shell_sysctls():
    text = """\
# comment
sysctl -q net.ipv4.tcp_rmem="4096 540000 $((15*1024*1024))"
sysctl -q net.ipv4.tcp_sack=1 net.ipv4.tcp_dsack=0 > /dev/null 2>&1
ip tcp_metrics flush all > /dev/null 2>&1
echo 0 > /proc/sys/net/ipv4/tcp_timestamps
sysctl -w kernel.foo=1
"""
    assert shell_sysctls(text) == {
        "net.ipv4.tcp_rmem": "4096 540000 15728640",
        "net.ipv4.tcp_sack": "1",
        "net.ipv4.tcp_dsack": "0",
        "net.ipv4.tcp_timestamps": "0",
    }


def test_snippets():
    assert run_snippet("assert tcpi_snd_cwnd == 10", {"tcpi_snd_cwnd": 10}) is None
    why = run_snippet(" assert tcpi_snd_cwnd == 10, 'cwnd' ", {"tcpi_snd_cwnd": 7})
    assert why is not None and "cwnd" in why and "tcpi_snd_cwnd=7" in why
    assert "tcpi_nope" in run_snippet("assert tcpi_nope", {"tcpi_state": 1})
    assert "syntax error" in run_snippet("assert (", {})
    # ordinary Python, as packetdrill runs it: imports, every builtin, several lines
    assert run_snippet("import math\nassert math.isqrt(tcpi_rtt) == 10", {"tcpi_rtt": 100}) is None
    assert (
        run_snippet(
            "assert sorted({3, 1}) == [1, 3] and isinstance(tcpi_state, int)", {"tcpi_state": 1}
        )
        is None
    )
    assert "ZeroDivisionError" in run_snippet("x = 1 / 0", {})
    # spaces and tabs stripped from both ends, newlines kept: a trailing backslash
    # continues onto the blank line after it
    assert run_snippet(" \t\nassert tcpi_state == 1 \\\n\t ", {"tcpi_state": 1}) is None


@pytest.mark.parametrize("path", SCRIPTS, ids=[p.stem for p in SCRIPTS])
def test_converted_yaml_validates(path: Path):
    from netemu.scenario import load_scenario_text

    text = to_yaml(load_pkt(path))
    sc = load_scenario_text(text, f"{path.stem}.yaml")
    assert sc.name == path.stem
    assert sc.connections["c"].raw
    assert sc.peers["peer"].congestion_control == "cubic"
    assert sc.peers["peer"].sysctls["net.ipv4.tcp_sack"] == "1"


def test_convert_splits_a_tso_packet_and_keeps_comments():
    text = to_yaml(load_pkt(HERE / "scripts" / "sack.pkt"))
    assert "# line 17: +0 > P. 1:4001(4000) ack 1" in text
    assert text.count("len: 1000") == 5  # four pieces of the TSO packet, one retransmission
    assert "{seq: 3001" not in text and "seq: 3001" in text
    assert "only `netemu run` on the .pkt checks it" in text


def netemu(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "netemu", *args],
        capture_output=True,
        text=True,
        cwd=cwd or ROOT,
        timeout=60,
    )


def test_cli_convert(tmp_path: Path):
    src = HERE / "scripts" / "passive_handshake.pkt"
    out = netemu("convert", str(src))
    assert out.returncode == 0, out.stderr
    assert out.stdout.startswith("# Converted from")
    dest = tmp_path / "hs.yaml"
    out = netemu("convert", str(src), "-o", str(dest))
    assert out.returncode == 0 and out.stdout == ""
    val = netemu("validate", str(dest))
    assert val.returncode == 0, val.stdout + val.stderr


def test_cli_unsupported_exits_2_before_any_lab(tmp_path: Path):
    bad = tmp_path / "bad.pkt"
    bad.write_text(
        HEAD + "+0 setsockopt(3, IPPROTO_TCP, TCP_NOPE, [5], 4) = 0\n"
        "+0 accept4(3, ..., ..., 0) = 4\n"
    )
    for cmd in (("convert", str(bad)), ("run", str(bad))):
        out = netemu(*cmd, cwd=tmp_path)
        assert out.returncode == 2, out.stdout + out.stderr
        lines = out.stderr.strip().splitlines()
        assert lines[0].startswith(f"{bad}:4:31: unknown symbol 'TCP_NOPE'")
        assert lines[1].startswith(f"{bad}:5:4: system call 'accept4' is not supported")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["bad.pkt"]  # no runs/


def test_cli_address_of_another_family_exits_2_before_any_lab(tmp_path: Path):
    src = HERE / "scripts" / "passive_handshake.pkt"
    for opts in (["--local_ip=fd00::1"], ["--ip_version=ipv6", "--remote_ip=192.0.2.1"]):
        out = netemu("run", *opts, str(src), cwd=tmp_path)
        assert out.returncode == 2, out.stdout + out.stderr
        assert "not an IPv" in out.stderr and opts[-1] in out.stderr
    assert list(tmp_path.iterdir()) == []


def test_cli_dry_run_checks_without_a_lab(tmp_path: Path):
    src = HERE / "scripts" / "passive_handshake.pkt"
    out = netemu("run", "--dry_run", str(src), str(LIVE_DIR / "epoll.pkt"), cwd=tmp_path)
    assert out.returncode == 0, out.stdout + out.stderr
    assert list(tmp_path.iterdir()) == []  # no runs/
    bad = tmp_path / "bad.pkt"
    bad.write_text(HEAD + "+0 read(3, ..., NOPE) = 0\n")
    out = netemu("run", "--dry_run", str(bad), cwd=tmp_path)
    assert out.returncode == 2 and f"{bad}:4:17: unknown symbol 'NOPE'" in out.stderr


@pytest.mark.parametrize(
    ("arg", "message"),
    [
        ("--mtu=100000", "--mtu=100000: out of range (68-65535)"),
        ("--mtu=0", "--mtu=0: out of range (68-65535)"),
        ("--bind_port=70000", "--bind_port=70000: out of range (1-65535)"),
        ("--tolerance_percent=inf", "--tolerance_percent=inf: out of range (0-100)"),
    ],
)
def test_option_values_the_lab_cannot_carry_out_are_refused(arg: str, message: str) -> None:
    """--mtu 100000 failed the lab's set-up with a traceback; --bind_port 70000 the run
    (a new user, issue 17)."""
    from netemu.pkt.load import load_pkt_text
    from netemu.pkt.parser import PktError

    with pytest.raises(PktError, match=message.replace("(", r"\(").replace(")", r"\)")):
        load_pkt_text("0 socket(..., SOCK_STREAM, IPPROTO_TCP) = 3\n", "x.pkt", [arg])


def test_a_call_without_its_time_says_so():
    """A trial's script: a line without a time read as the previous call's errno ("an
    errno (bind) goes with a result of -1"). packetdrill: a syntax error there."""
    text = "0 socket(..., SOCK_STREAM, IPPROTO_TCP) = 3\nbind(3, ..., ...) = 0\n"
    with pytest.raises(PktError) as e:
        load_pkt_text(text, "t.pkt")
    assert str(e.value).startswith("t.pkt:2:1: expected a time ('0', '+.1'")
    assert "a system call needs its time ('+0 bind(...)')" in str(e.value)
    # an errno on the call's own line is still an errno
    load_pkt_text("0 socket(..., SOCK_STREAM, IPPROTO_TCP) = -1 EAGAIN (x)\n", "t.pkt")
