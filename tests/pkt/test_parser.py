"""The .pkt parser, the checks that run before any lab, the YAML converter and the
snippet runner: no root needed."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from netemu.pkt import PktError, load_pkt, load_pkt_text
from netemu.pkt.convert import to_yaml
from netemu.pkt.load import shell_sysctls
from netemu.pkt.model import Code, Command, PacketSpec, Syscall
from netemu.pkt.parser import FLAG_BITS, parse_text
from netemu.pkt.runner import run_snippet

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]
SCRIPTS = sorted((HERE / "scripts").glob("*.pkt"))

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
    sc = parse_text(HEAD + """\
  +.1 < S 0:0(0) win 100
 0.25 > S. 0:0(0) ack 1 <...>
+0~+.02 < . 1:1(0) ack 1 win 100
0.3~0.4 > . 1:1(0) ack 1
    * > F. 1:1(0) ack 1
 +0...0.5 read(4, ..., 10) = 10
+.1...+.3 read(4, ..., 10) = 10
""")
    t = [(e.time.kind, e.time.start, e.time.end) for e in sc.events[3:]]
    assert t == [("rel", 0.1, None), ("abs", 0.25, None), ("rrange", 0.0, 0.02),
                 ("range", 0.3, 0.4), ("any", 0.0, None), ("rel", 0.0, None), ("rel", 0.1, None)]
    r1, r2 = sc.events[-2].action, sc.events[-1].action
    assert isinstance(r1, Syscall) and r1.end == 0.5 and r1.end_text == "0.5"
    assert isinstance(r2, Syscall) and r2.end == 0.3 and r2.end_text == "+.3"


def test_packets_flags_and_options():
    sc = parse_text(HEAD + """\
+0 < S 0:0(0) win 32792 <mss 1000,sackOK,TS val 100 ecr 0,nop,wscale 7>
+0 > S. 0:0(0) ack 1 <...>
+0 < P. 1:1001(1000) ack 1 win 257 <sack 1:2 3:4,nop,nop,eol>
+0 > FP. 1:1(0) ack 1001 win 257
+0 < - 1:1(0) win 0
+0 < EW 1:1(0) win 0
""")
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
    sc = parse_text("""\
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
""", "x.pkt")
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


def test_calls_are_normalised():
    sc = load_pkt_text("""\
0 socket(..., SOCK_STREAM, IPPROTO_TCP) = 3
+0 setsockopt(3, IPPROTO_TCP, TCP_CONGESTION, "reno", 4) = 0
+0 setsockopt(3, SOL_SOCKET, SO_LINGER, {onoff=1, linger=0}, 8) = 0
+0 bind(3, {sa_family=AF_INET, sin_port=htons(9000), sin_addr=inet_addr("192.168.0.1")}, 16) = 0
+0 listen(3, 5) = 0
+0 accept(3, ..., ...) = -1 EAGAIN (Resource temporarily unavailable)
+0 sendto(3, ..., 100, MSG_DONTWAIT, ..., ...) = 100
+0 shutdown(3, SHUT_RDWR) = 0
""")
    calls = [sc.calls[id(e.action)] for e in sc.script.events]
    assert calls[1].option == "TCP_CONGESTION" and calls[1].value == "reno"
    assert calls[2].value == [1, 0]
    assert (calls[3].port, calls[3].host) == (9000, "192.168.0.1")
    assert calls[4].backlog == 5
    assert calls[5].ret == -1 and calls[5].errno == "EAGAIN"
    assert calls[6].nbytes == 100 and calls[6].flags == 0x40
    assert calls[7].how == "rdwr"
    assert sc.tolerance_usecs == 4000 and sc.scheduled_seconds() == 0


def test_scheduled_seconds():
    sc = load_pkt_text(HEAD + """\
  +.1 < S 0:0(0) win 100
   +0 > S. 0:0(0) ack 1 <...>
 +.05 < . 1:1(0) ack 1 win 100
   +0...0.5 accept(3, ..., ...) = 4
  0.4 < . 1:1(0) ack 1 win 100
""")
    assert sc.scheduled_seconds() == pytest.approx(0.65)


@pytest.mark.parametrize(("text", "where", "message"), [
    (HEAD + "+0 < Q 0:0(0) win 1\n", "4:6", "unknown TCP flag 'Q' in 'Q'"),
    (HEAD + "+0 < S 0:1(0) win 1\n", "4:6", "inconsistent sequence range 0:1(0)"),
    (HEAD + "+0 < S 0:0(0) win 1 <mss 1000,md5 12>\n", "4:31",
     "TCP option 'md5' is not supported"),
    (HEAD + "+0 < S 0:0(0) win 1 <mss 1000,bogus>\n", "4:31", "unknown TCP option 'bogus'"),
    (HEAD + "+0 < . 1:1(0) win 1\n", "4:6", "an inbound packet with the ACK flag needs 'ack N'"),
    (HEAD + "+0 < S 0:0(0) win 1 <...>\n", "4:22", "'<...>' (any options) only makes sense"),
    (HEAD + "+0 close(3)\n", "5:1", "expected '= <result>' after close(...)"),
    (HEAD + "+0 %{ assert 1\n", "4:4", "unterminated %{ code block"),
    (HEAD + "+0 read(3, ..., 10) = 10 EAGAIN\n", "4:26", "an errno (EAGAIN) goes with a result of -1"),
    (HEAD + "+0...0.1 < S 0:0(0) win 1\n", "4:10", "only a system call may have an end time"),
    (HEAD + "+0 < S 0:0(0) win 1\n+1~+.5 < . 1:1(0) ack 1 win 1\n", "5:5",
     "time range ends (0.5) before it starts (1)"),
    ("+.1 socket(..., SOCK_STREAM, IPPROTO_TCP) = 3\n", "1:1",
     "the first event must be at time 0, not '+.1'"),
    (HEAD + "+0 epoll_create(1) = 4\n", "4:4", "system call 'epoll_create' is not supported"),
    (HEAD + "+0 setsockopt(3, SOL_SOCKET, SO_ZEROCOPY, [1], 4) = 0\n", "4:30",
     "socket option SO_ZEROCOPY is not supported at SOL_SOCKET"),
    (HEAD + "+0 setsockopt(3, SOL_IPV6, IPV6_V6ONLY, [1], 4) = 0\n", "4:18",
     "socket option level 'SOL_IPV6' is not supported"),
    ("0 socket(..., SOCK_DGRAM, IPPROTO_UDP) = 3\n", "1:15",
     "socket type 'SOCK_DGRAM' is not supported"),
    (HEAD + "+0 send(3, ..., 10, MSG_ZEROCOPY) = 10\n", "4:21", "unsupported symbol 'MSG_ZEROCOPY'"),
    (HEAD + "+0 < udp (100)\n", "4:6", "udp packets are not supported"),
    ("--wire_client=1\n" + HEAD, "1:1", "option --wire_client is not supported"),
    (HEAD + "+0 fcntl(3, F_GETFD) = 0\n", "4:13", "fcntl command 'F_GETFD' is not supported"),
])
def test_errors_point_at_file_line_col(text: str, where: str, message: str):
    got = err(text)
    assert got.startswith(f"t.pkt:{where}: "), got
    assert message in got, got


def test_all_errors_are_collected():
    with pytest.raises(PktError) as e:
        load_pkt_text(HEAD + "+0 epoll_create(1) = 4\n+0 splice(1, 2) = 0\n", "t.pkt")
    assert [str(x).split(": ", 1)[0] for x in e.value.errors] == ["t.pkt:4:4", "t.pkt:5:4"]


def test_shell_sysctls():
    text = """\
# comment
sysctl -q net.ipv4.tcp_rmem="4096 540000 $((15*1024*1024))"
sysctl -q net.ipv4.tcp_sack=1 net.ipv4.tcp_dsack=0 > /dev/null 2>&1
ip tcp_metrics flush all > /dev/null 2>&1
echo 0 > /proc/sys/net/ipv4/tcp_timestamps
sysctl -w kernel.foo=1
"""
    assert shell_sysctls(text) == {"net.ipv4.tcp_rmem": "4096 540000 15728640",
                                   "net.ipv4.tcp_sack": "1", "net.ipv4.tcp_dsack": "0",
                                   "net.ipv4.tcp_timestamps": "0"}


def test_snippets():
    assert run_snippet("assert tcpi_snd_cwnd == 10", {"tcpi_snd_cwnd": 10}) is None
    why = run_snippet(" assert tcpi_snd_cwnd == 10, 'cwnd' ", {"tcpi_snd_cwnd": 7})
    assert why is not None and "cwnd" in why and "tcpi_snd_cwnd=7" in why
    why = run_snippet("import os", {"tcpi_state": 1})
    assert why is not None and ("ImportError" in why or "__import__" in why)
    assert "tcpi_nope" in run_snippet("assert tcpi_nope", {"tcpi_state": 1})
    assert "syntax error" in run_snippet("assert (", {})


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
    return subprocess.run([sys.executable, "-m", "netemu", *args], capture_output=True,
                          text=True, cwd=cwd or ROOT, timeout=60)


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
    bad.write_text(HEAD + "+0 setsockopt(3, IPPROTO_TCP, TCP_FASTOPEN, [5], 4) = 0\n"
                   "+0 epoll_create(1) = 4\n")
    for cmd in (("convert", str(bad)), ("run", str(bad))):
        out = netemu(*cmd, cwd=tmp_path)
        assert out.returncode == 2, out.stdout + out.stderr
        lines = out.stderr.strip().splitlines()
        assert lines[0].startswith(f"{bad}:4:31: socket option TCP_FASTOPEN is not supported")
        assert lines[1].startswith(f"{bad}:5:4: system call 'epoll_create' is not supported")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["bad.pkt"]  # no runs/
