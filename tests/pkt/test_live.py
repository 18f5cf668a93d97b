"""Every system call and every inbound packet form of packetdrill's language, against
the real kernel (tests/pkt/scripts/live/): each script passes, and each one fails when
one of its expectations is made wrong (so a pass means the kernel agreed). Then the
run's rules: strict timing, -D defines, the command line over the script's options,
init scripts, shell commands in the peer namespace.

Tests marked xfail are netemu bugs, each with its reason: fix the bug, then drop the
mark (they are strict, so a fix shows up as XPASS)."""

from __future__ import annotations

import asyncio
import os
import re
import struct
from pathlib import Path

import pytest

from netemu.pkt import PktError, load_pkt, load_pkt_text

HERE = Path(__file__).resolve().parent
LIVE = HERE / "scripts" / "live"
SCRIPTS = sorted(LIVE.glob("*.pkt"))
pytestmark = [pytest.mark.root, pytest.mark.timing, pytest.mark.timeout(60)]

# The passive open most scripts here start with (a copy of their first lines).
HEAD = """\
`sysctl -q net.ipv4.tcp_timestamps=0 net.ipv4.tcp_rmem="4096 540000 15728640" net.ipv4.tcp_wmem="4096 262144 4194304"`
    0 socket(..., SOCK_STREAM, IPPROTO_TCP) = 3
   +0 bind(3, ..., ...) = 0
   +0 listen(3, 1) = 0
   +0 < S 0:0(0) win 32792 <mss 1000,nop,wscale 7>
   +0 > S. 0:0(0) ack 1 <mss 1460,nop,wscale 8>
  +.01 < . 1:1(0) ack 1 win 257
   +0 accept(3, ..., ...) = 4
"""


def argv_for(stem: str, tmp_path: Path) -> list[str]:
    """packetdrill's command line a script of scripts/live needs."""
    if stem == "sendfile":
        data = tmp_path / "zeros.bin"
        data.write_bytes(bytes(1000))
        return ["-D", f'DATA_FILE="{data}"']
    if stem == "define":
        return ["-D", "PAYLOAD_LEN=300"]
    return []


def run(sc, run_dir: Path | None = None, **kw):
    """One run in a fresh lab; the run directory is written when ``run_dir`` is given.

    A run that netemu itself started an event of late (``netemu_late``: on this 2-CPU
    machine another worker's lab set-up can hold the process off for 20 ms) has no
    verdict on the kernel (`netemu run` exits 3 for it): it is run again, twice at most.
    Any other failure is the run's verdict."""
    from netemu.pkt.session import run_pkt

    for _ in range(3):
        out = asyncio.run(
            run_pkt(sc, run_dir or Path("unused-run-dir"), write=run_dir is not None, **kw)
        )
        if not out.report.get("netemu_late"):
            return out
    return out


def load_live(stem: str, tmp_path: Path, argv: list[str] | None = None):
    return load_pkt(LIVE / f"{stem}.pkt", argv_for(stem, tmp_path) if argv is None else argv)


def error_of(out) -> str:
    assert not out.passed, "the run passed, it must fail"
    return out.report["error"] or ""


# --- each script passes -------------------------------------------------------------------


@pytest.mark.parametrize("path", SCRIPTS, ids=[p.stem for p in SCRIPTS])
def test_live_script_passes(path: Path, tmp_path: Path):
    sc = load_pkt(path, argv_for(path.stem, tmp_path))
    out = run(sc)
    assert out.passed, out.report["error"]
    steps = out.report["steps"]
    assert all(s["status"] == "pass" for s in steps), steps
    assert len([s for s in steps if s["index"] > 0]) == len(sc.script.events)
    assert out.report["netemu_late"] is None


# --- ... and fails when one expectation is wrong (false-pass guards) -----------------------

MUTATIONS = [
    # (script, text, replaced by, what the failure says)
    (
        "epoll",
        "+0 > S. 0:0(0) ack 1 <mss 1460,nop,wscale 8>",
        "+0 > S. 0:0(0) ack 1 <mss 1000,nop,wscale 8>",
        "bad value in outbound TCP option mss: expected mss 1000 vs actual mss 1460",
    ),
    (
        "epoll",
        "+0 > S. 0:0(0) ack 1 <mss 1460,nop,wscale 8>",
        "+0 > S. 0:0(0) ack 1 <mss 1460,sackOK,nop,nop,nop,wscale 8>",
        "bad outbound TCP options: expected <mss,sackOK,nop,nop,nop,wscale> vs actual "
        "<mss,nop,wscale>",
    ),
    (
        "epoll",
        "+0 > S. 0:0(0) ack 1 <mss 1460,nop,wscale 8>",
        "+0 > S. 0:0(0) ack 1",
        "bad outbound TCP options: expected <> vs actual <mss,nop,wscale>",
    ),
    (
        "epoll",
        "epoll_wait(5, {events=EPOLLIN, fd=4}, 1, 0) = 1",
        "epoll_wait(5, {events=EPOLLOUT, fd=4}, 1, 0) = 1",
        "epoll_wait(): expected events EPOLLOUT but got EPOLLIN",
    ),
    (
        "epoll",
        "epoll_wait(5, {events=EPOLLIN|EPOLLOUT, fd=4}, 1, 0) = 1",
        "epoll_wait(5, {events=EPOLLIN|EPOLLOUT, fd=7}, 1, 0) = 1",
        "epoll_wait(): expected data 7 but got 4",
    ),
    (
        "epoll",
        "epoll_wait(5, {events=0, ptr=0}, 1, 0) = 0\n  +.01",
        "epoll_wait(5, {events=EPOLLIN, fd=4}, 1, 0) = 1\n  +.01",
        "epoll_wait(): expected result 1 but got 0",
    ),
    (
        "poll",
        "revents=POLLOUT}], 1, 0) = 1",
        "revents=POLLIN|POLLOUT}], 1, 0) = 1",
        "poll(): expected revents of POLLIN|POLLOUT but got POLLOUT for fd 4",
    ),
    (
        "poll",
        "revents=POLLIN|POLLRDHUP}], 1, 0) = 1",
        "revents=POLLIN}], 1, 0) = 1",
        "poll(): expected revents of POLLIN but got POLLIN|POLLRDHUP for fd 4",
    ),
    (
        "blocking_wait",
        "+0...0.03 epoll_wait",
        "+0...0.06 epoll_wait",
        "timing: line 14: blocking system call return expected at",
    ),
    (
        "ioctl",
        "ioctl(4, SIOCOUTQ, [700])",
        "ioctl(4, SIOCOUTQ, [699])",
        "ioctl(): expected value 699 but got 700",
    ),
    (
        "ioctl",
        "ioctl(4, SIOCINQ, [100])",
        "ioctl(4, SIOCINQ, [0])",
        "ioctl(): expected value 0 but got 100",
    ),
    (
        "iovec",
        "readv(4, [{..., 100}, {..., 100}], 2) = 150",
        "readv(4, [{..., 100}, {..., 100}], 2) = 200",
        "readv(): expected result 200 but got 150",
    ),
    (
        "iovec",
        "+0 > P. 1:301(300) ack 1",
        "+0 > P. 1:201(200) ack 1",
        "payload length: expected: 200 vs actual: 300",
    ),
    (
        "msghdr",
        "msg_iov(2)=[{..., 400}, {..., 100}]",
        "msg_iov(2)=[{..., 300}, {..., 100}]",
        "sendmsg(): expected result 500 but got 400",
    ),
    (
        "msghdr",
        "msg_iov(2)=[{..., 150}, {..., 150}], msg_flags=0}, 0) = 200",
        "msg_iov(2)=[{..., 150}, {..., 150}], msg_flags=0}, 0) = 300",
        "recvmsg(): expected result 300 but got 200",
    ),
    (
        "udp",
        "msg_flags=MSG_TRUNC}, 0) = 40",
        "msg_flags=0}, 0) = 40",
        "recvmsg(): msg_flags: expected 0 but got MSG_TRUNC",
    ),
    (
        "udp",
        "recvfrom(3, ..., 1000, 0, ..., ...) = 100",
        "recvfrom(3, ..., 1000, 0, ..., ...) = 99",
        "recvfrom(): expected result 99 but got 100",
    ),
    (
        "zerocopy",
        "ee_code=SO_EE_CODE_ZEROCOPY_COPIED",
        "ee_code=0",
        "recvmsg(): sock_extended_err.ee_code: expected 0 but got 1",
    ),
    (
        "zerocopy",
        "ee_info=0, ee_data=0",
        "ee_info=0, ee_data=1",
        "recvmsg(): sock_extended_err.ee_data: expected 1 but got 0",
    ),
    (
        "zerocopy",
        "cmsg_type=IP_RECVERR",
        "cmsg_type=IP_TTL",
        "recvmsg(): control message: expected level 0 type 2 but got level 0 type 11",
    ),
    (
        "zerocopy",
        "msg_control=[]}, MSG_ERRQUEUE) = -1 EAGAIN",
        "msg_control=[]}, MSG_ERRQUEUE) = 0",
        "recvmsg(): expected result 0 but got -1 EAGAIN",
    ),
    (
        "sendfile",
        "sendfile(4, 5, [700], 1000) = 300",
        "sendfile(4, 5, [700], 1000) = 1000",
        "sendfile(): expected result 1000 but got 300",
    ),
    (
        "splice",
        "splice(4, NULL, 6, NULL, 100, 0) = 100",
        "splice(4, NULL, 6, NULL, 100, 0) = 99",
        "splice(): expected result 99 but got 100",
    ),
    (
        "fcntl",
        "fcntl(3, F_GETFL) = 0x802",
        "fcntl(3, F_GETFL) = 0x2",
        "fcntl(): expected result 2 but got 2050",
    ),
    (
        "fcntl",
        "read(4, ..., 100) = -1 EAGAIN",
        "read(4, ..., 100) = -1 EINTR",
        "read(): expected errno EINTR but got EAGAIN",
    ),
    (
        "sockopt",
        "SO_SNDBUF, [20000]",
        "SO_SNDBUF, [10000]",
        "getsockopt(): bad optval: expected 10000 but got 20000",
    ),
    (
        "sockopt",
        'TCP_CONGESTION, "cubic", [16]',
        'TCP_CONGESTION, "reno", [16]',
        "getsockopt(): bad optval: expected b'reno' but got b'cubic'",
    ),
    (
        "sockopt",
        "TCP_MAXSEG, [1000]",
        "TCP_MAXSEG, [1460]",
        "getsockopt(): bad optval: expected 1460 but got 1000",
    ),
    (
        "sockopt",
        '"nosuchcc", 8) = -1 ENOENT',
        '"nosuchcc", 8) = -1 EPERM',
        "setsockopt(): expected errno EPERM but got ENOENT",
    ),
    (
        "sockopt",
        "SO_LINGER, {onoff=1, linger=0}, [8]",
        "SO_LINGER, {onoff=1, linger=3}, [8]",
        "getsockopt(): bad linger: got onoff=1 linger=0",
    ),
    (
        "sockopt",
        'assert tcpi_ca_name == "cubic"',
        'assert tcpi_ca_name == "reno"',
        "assertion failed in %{",
    ),
    (
        "efault",
        "read(4, NULL, 100) = -1 EFAULT (Bad address)",
        "read(4, NULL, 100) = 100",
        "read(): expected result 100 but got -1 EFAULT",
    ),
    (
        "urgent",
        "read(4, ..., 1000) = 99",
        "read(4, ..., 1000) = 100",
        "read(): expected result 100 but got 99",
    ),
    (
        "gso_inbound",
        "+0 > . 1:1(0) ack 4001",
        "+0 > . 1:1(0) ack 1461",
        "live packet field tcp_ack_seq: expected: 1461 vs actual: 4001",
    ),
    (
        "ip_fields",
        "< [ce] P. 1:101(100)",
        "< [ect0] P. 1:101(100)",
        "live packet field tcp flags: expected: E. vs actual: .",
    ),
    (
        "icmp_frag_needed",
        "frag_needed mtu 1200",
        "frag_needed mtu 1400",
        "payload length: expected: 1160 vs actual: 1360",
    ),
    # A quote outside the kernel's unacknowledged data: the kernel ignores the ICMP, so
    # what comes next is its RTO retransmission of the whole 1460 bytes.
    (
        "icmp_frag_needed",
        "mtu 1200 [1:1461(1460)]",
        "mtu 1200 [5001:6461(1460)]",
        "line 17 expect: live packet field tcp flags: expected: . vs actual: P.",
    ),
    (
        "script_options",
        "--bind_port=9000",
        "--bind_port=9001",
        "bind(): expected result -1 EADDRINUSE but got 0",
    ),
    (
        "script_options",
        "--mtu=1400",
        "--mtu=1500",
        "bad value in outbound TCP option mss: expected mss 1360 vs actual mss 1460",
    ),
    (
        "script_options",
        "--remote_ip=10.0.0.9",
        "--remote_ip=10.0.0.8",
        "connect(): expected errno EINPROGRESS but got ENETUNREACH",
    ),
    (
        "fastopen_client",
        "wscale 8,FO 0102030405060708,nop,nop>",
        "wscale 8,FO 0102030405060709,nop,nop>",
        "bad value in outbound TCP option FO: expected FO 0102030405060709 vs actual FO "
        "0102030405060708",
    ),
    (
        "fastopen_client",
        "> S 0:0(0) <mss 1460,nop,nop,sackOK,nop,wscale 8,FO,nop,nop>",
        "> S 0:0(0) <mss 1460,nop,nop,sackOK,nop,wscale 8>",
        "bad outbound TCP options: expected <mss,nop,nop,sackOK,nop,wscale> vs actual "
        "<mss,nop,nop,sackOK,nop,wscale,FO,nop,nop>",
    ),
]


@pytest.mark.parametrize(
    ("stem", "old", "new", "message"),
    MUTATIONS,
    ids=[f"{m[0]}-{i}" for i, m in enumerate(MUTATIONS)],
)
def test_live_script_fails_when_an_expectation_is_wrong(
    stem: str, old: str, new: str, message: str, tmp_path: Path
):
    text = (LIVE / f"{stem}.pkt").read_text()
    assert text.count(old) == 1, f"{old!r} is not once in {stem}.pkt"
    sc = load_pkt_text(
        text.replace(old, new), str(LIVE / f"{stem}-wrong.pkt"), argv_for(stem, tmp_path)
    )
    err = error_of(run(sc))
    assert message in err, err


# --- what went on the wire ------------------------------------------------------------------


def _ipv4_frames(pcap: Path) -> list[bytes]:
    from netemu.trace.pcap import read_pcap

    return [d[14:] for _t, d in read_pcap(pcap) if d[12:14] == b"\x08\x00"]


def test_inbound_ip_fields_are_in_the_injected_frames(tmp_path: Path):
    out = run(load_live("ip_fields", tmp_path), tmp_path / "run")
    assert out.passed, out.report["error"]
    # (tos, ttl, tcp flags) of every TCP segment netemu injected (to the bound port)
    injected = [
        (ip[1], ip[8], ip[20 + 13])
        for ip in _ipv4_frames(tmp_path / "run" / "trace.pcap")
        if ip[9] == 6 and struct.unpack("!H", ip[22:24])[0] == 8080
    ]
    assert injected == [
        (0x00, 64, 0xC2),  # [noecn] SEW
        (0x02, 64, 0x10),  # [ect0] .
        (0x03, 64, 0x18),  # [ce] P.
        (0x10, 64, 0x18),  # (tos 0x10) P.
        (0x00, 17, 0x90),  # (ttl 17) W.
    ]


def test_inbound_gso_segment_is_one_frame_beyond_the_mtu(tmp_path: Path):
    out = run(load_live("gso_inbound", tmp_path), tmp_path / "run")
    assert out.passed, out.report["error"]
    sizes = [
        struct.unpack("!H", ip[2:4])[0]
        for ip in _ipv4_frames(tmp_path / "run" / "trace.pcap")
        if ip[9] == 6 and struct.unpack("!H", ip[22:24])[0] == 8080
    ]
    assert 20 + 20 + 4000 in sizes  # one IP packet of 4040 bytes on a 1500-byte link


def test_inbound_icmp_quotes_the_kernels_segment(tmp_path: Path):
    out = run(load_live("icmp_frag_needed", tmp_path), tmp_path / "run")
    assert out.passed, out.report["error"]
    icmp = [ip for ip in _ipv4_frames(tmp_path / "run" / "trace.pcap") if ip[9] == 1]
    assert len(icmp) == 1
    msg = icmp[0][20:]
    assert (msg[0], msg[1], struct.unpack("!H", msg[6:8])[0]) == (3, 4, 1200)
    quoted = msg[8:]
    assert quoted[9] == 6 and struct.unpack("!H", quoted[2:4])[0] == 20 + 20 + 1460
    assert struct.unpack("!H", quoted[20:22])[0] == 8080  # the kernel's port, as sent


# --- timing ---------------------------------------------------------------------------------

EARLY = (
    HEAD
    + """\
   +0 write(4, ..., 100) = 100
// The kernel sends at once, not 50 ms later.
 +.05 > P. 1:101(100) ack 1
  +.01 < . 1:1(0) ack 101 win 257
"""
)


def test_a_packet_50ms_early_fails_by_default_and_passes_lenient(tmp_path: Path):
    sc = load_pkt_text(EARLY, str(tmp_path / "early.pkt"))
    err = error_of(run(sc))
    assert err.startswith("line 11 expect: timing: line 11: outbound packet expected at "), err
    assert "(+.05) s, happened at " in err, err
    assert re.search(r"\(tolerance 6\.[23] ms\)", err), err  # 12.5 % of the 50 ms gap
    out = run(sc, strict_timing=False)
    assert out.passed, out.report["error"]
    miss = {t["line"]: t for t in out.report["timing"] if not t["ok"]}
    assert miss[11]["what"] == "outbound packet"
    assert miss[11]["actual"] < float(miss[11]["expected"].split()[0]) - 0.03
    # (a loaded machine may add netemu's own late starts, nothing else)
    assert all(t["what"].endswith(" start") for line, t in miss.items() if line != 11), miss
    assert any(
        n.startswith("timing: line 11: outbound packet expected at") for n in out.report["notes"]
    )


def test_the_command_line_overwrites_the_scripts_options(tmp_path: Path):
    path = tmp_path / "tolerant.pkt"
    path.write_text("--tolerance_usecs=100000\n" + EARLY)
    assert load_pkt(path).tolerance_usecs == 100_000
    out = run(load_pkt(path))  # 100 ms of tolerance: 50 ms early is in time
    assert out.passed, out.report["error"]
    sc = load_pkt(path, ["--tolerance_usecs=4000"])
    assert sc.tolerance_usecs == 4000
    err = error_of(run(sc))
    assert "timing: line 12: outbound packet expected at " in err, err


# --- defines, init scripts, shell commands --------------------------------------------------


def test_a_define_from_the_command_line_is_used(tmp_path: Path):
    with pytest.raises(PktError) as e:
        load_pkt(LIVE / "define.pkt")
    assert str(e.value).startswith(f"{LIVE / 'define.pkt'}:12:21: unknown symbol 'PAYLOAD_LEN'")
    # -D PAYLOAD_LEN=300 passes (test_live_script_passes); 200 is what the kernel sends
    err = error_of(run(load_live("define", tmp_path, ["-D", "PAYLOAD_LEN=200"])))
    # 200 bytes, then (netemu waits past the packet's time, as packetdrill's sniffer)
    # the next segment, which cannot continue a run of 300: the kernel sent 200.
    assert err.startswith("line 13 expect: a run of segments for one TSO packet was broken by: "), (
        err
    )
    assert "P. 1:201(200) ack 1" in err, err


def test_a_failing_init_script_fails_the_script(tmp_path: Path):
    bad = tmp_path / "init-fails.sh"
    bad.write_text("#!/bin/sh\necho init went wrong\nexit 3\n")
    bad.chmod(0o755)
    good = tmp_path / "init-ok.sh"
    good.write_text("#!/bin/sh\nsysctl -q net.ipv4.tcp_timestamps=0\n")
    good.chmod(0o755)
    out = run(load_live("poll", tmp_path, [f"--init_scripts={good},{bad}"]))
    err = error_of(out)
    assert err == f"line 0 command: `{bad}` exited with status 3: init went wrong", err
    steps = out.report["steps"]
    assert [s["status"] for s in steps if s["index"] == 0] == ["pass", "fail"]
    assert not [s for s in steps if s["status"] == "pass" and s["index"] > 0]  # nothing ran
    assert run(load_live("poll", tmp_path, [f"--init_scripts={good}"])).passed


def test_a_failing_init_command_fails_the_script(tmp_path: Path):
    sc = load_pkt_text("`exit 4`\n" + HEAD.split("\n", 1)[1], str(tmp_path / "init.pkt"))
    assert error_of(run(sc)) == "line 1 command: `exit 4` exited with status 4"


def test_commands_get_packetdrill_pid_and_run_in_the_peer(tmp_path: Path):
    sc = load_pkt_text(
        """\
    0 `echo "$PACKETDRILL_PID $PPID" > pid.txt`
   +0 `tc qdisc add dev tun0 root pfifo`
   +0 `tc qdisc show dev tun0 | grep -q pfifo`
   +0 `ip -o addr show dev tun0 > addr.txt && readlink /proc/self/ns/net > netns.txt`
""",
        str(tmp_path / "env.pkt"),
    )
    out = run(sc)
    assert out.passed, out.report["error"]
    pid, ppid = (tmp_path / "pid.txt").read_text().split()
    assert pid == str(os.getpid()) and ppid == pid  # packetdrill's: its pid, the $PPID
    assert " tun0 " in (tmp_path / "addr.txt").read_text()
    assert (tmp_path / "netns.txt").read_text().strip() != os.readlink("/proc/self/ns/net")


def test_every_kind_of_shell_command_runs_in_the_peer_from_the_scripts_folder(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
):
    # issue 17, 8: code a file brings runs where its author expects, as packetdrill runs
    # it (in its test namespace, where tun0 is) and no further: the init command, an
    # --init_scripts file, an event's command and the cleanup command all run in the
    # lab's peer namespace (never the host's), from the script's folder (never netemu's
    # working directory).
    import socket

    script_dir = tmp_path / "scripts"
    script_dir.mkdir()
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)

    def probe(tag: str) -> str:
        return (
            f"readlink /proc/self/ns/net > ns-{tag}.txt && ip -o link > link-{tag}.txt "
            f"&& pwd > pwd-{tag}.txt"
        )

    init = script_dir / "init.sh"
    init.write_text("#!/bin/sh\n" + probe("init_scripts") + "\n")
    init.chmod(0o755)
    sc = load_pkt_text(
        f"""\
`{probe("init")}`
    0 `{probe("event")}`
   +0 `true`
`{probe("cleanup")}`
""",
        str(script_dir / "where.pkt"),
        [f"--init_scripts={init}"],
    )
    assert sc.cleanup is not None
    out = run(sc)
    assert out.passed, out.report["error"]
    host_ns = os.readlink("/proc/self/ns/net")
    host_links = {name for _i, name in socket.if_nameindex()}
    # the devices every new namespace gets (the fallback tunnels of loaded modules)
    anywhere = {
        "lo",
        "sit0",
        "tunl0",
        "ip6tnl0",
        "gre0",
        "gretap0",
        "erspan0",
        "ip_vti0",
        "ip6_vti0",
        "ip6gre0",
    }
    kinds = ("init_scripts", "init", "event", "cleanup")
    namespaces = set()
    for tag in kinds:
        ns = (script_dir / f"ns-{tag}.txt").read_text().strip()
        assert ns.startswith("net:[") and ns != host_ns, (tag, ns, host_ns)
        namespaces.add(ns)
        links = {
            line.split(":")[1].strip().split("@")[0]
            for line in (script_dir / f"link-{tag}.txt").read_text().splitlines()
        }
        assert "tun0" in links, (tag, links)
        assert not (links & host_links) - anywhere, (tag, links, host_links)
        assert (script_dir / f"pwd-{tag}.txt").read_text().strip() == str(script_dir), tag
    assert len(namespaces) == 1, namespaces  # one lab, one peer namespace
    assert not list(elsewhere.iterdir())  # nothing landed in netemu's working directory


def test_non_fatal_packet_errors_are_warnings(tmp_path: Path):
    text = (
        HEAD
        + """\
   +0 write(4, ..., 100) = 100
   +0 > P. 1:101(100) ack 7
  +.01 < . 1:1(0) ack 101 win 257
   +0 ioctl(4, SIOCOUTQ, [0]) = 0
"""
    )
    err = error_of(run(load_pkt_text(text, str(tmp_path / "nonfatal.pkt"))))
    assert err.startswith(
        "line 10 expect: live packet field tcp_ack_seq: expected: 7 vs actual: 1"
    ), err
    out = run(load_pkt_text(text, str(tmp_path / "nonfatal.pkt"), ["--non_fatal=packet"]))
    assert out.passed, out.report["error"]
    assert out.report["steps"][-1]["status"] == "pass"  # the script went on
    assert any(
        n.startswith(
            "warning (--non_fatal=packet): line 10: live packet field "
            "tcp_ack_seq: expected: 7 vs actual: 1"
        )
        for n in out.report["notes"]
    )


@pytest.mark.parametrize(
    ("field", "message"),
    [
        ("(tos 0x10)", None),
        ("[noecn]", None),
        ("(ttl 64)", None),
        ("(tos 0x20)", "live packet field ip tos: expected: 0x20 vs actual: 0x10"),
        ("[ce]", "live packet field ip ecn: expected: ce vs actual: noecn"),
        ("[ect0]", "live packet field ip ecn: expected: ect0 vs actual: noecn"),
        ("(ttl 3)", "live packet field ip ttl: expected: 3 vs actual: 64"),
    ],
)
def test_outbound_ip_fields_are_checked(field: str, message: str | None, tmp_path: Path):
    sc = load_pkt_text(
        HEAD
        + f"""\
   +0 setsockopt(4, SOL_IP, IP_TOS, [0x10], 4) = 0
   +0 write(4, ..., 100) = 100
   +0 > {field} P. 1:101(100) ack 1
""",
        str(tmp_path / "out-ip.pkt"),
    )
    out = run(sc)  # the kernel sends tos 0x10 (not-ECT), ttl 64
    if message is None:
        assert out.passed, out.report["error"]
    else:
        assert error_of(out).startswith(f"line 11 expect: {message}"), out.report["error"]


# --- bugs found by these tests, fixed: each keeps its test ----------------------------------------------


def test_fcntl_getfd_of_a_new_socket_is_0(tmp_path: Path):
    sc = load_pkt_text(
        """\
    0 socket(..., SOCK_STREAM, IPPROTO_TCP) = 3
   +0 fcntl(3, F_GETFD) = 0
   +0 fcntl(3, F_SETFD, FD_CLOEXEC) = 0
   +0 fcntl(3, F_GETFD) = 1
   +0 pipe([5, 6]) = 0
   +0 fcntl(5, F_GETFD) = 0
""",
        str(tmp_path / "getfd.pkt"),
    )
    out = run(sc)
    assert out.passed, out.report["error"]


def test_strict_segments_matches_one_segment_only(tmp_path: Path):
    # TSO off: the kernel sends three segments of 1000 bytes, which one > packet of
    # 3000 matches as a run, unless --strict_segments.
    text = (
        "`ethtool -K tun0 tso off`\n"
        + HEAD
        + """\
   +0 write(4, ..., 3000) = 3000
   +0 > P. 1:3001(3000) ack 1
"""
    )
    out = run(load_pkt_text(text, str(tmp_path / "tso.pkt")))
    assert out.passed, out.report["error"]
    out = run(load_pkt_text(text, str(tmp_path / "tso.pkt"), ["--strict_segments"]))
    assert not out.passed


def test_outbound_packet_time_is_the_kernels(tmp_path: Path):
    # The kernel sends at 0.100 (write()); netemu is busy for 30 ms right then.
    sc = load_pkt_text(
        HEAD
        + """\
0.100 write(4, ..., 100) = 100
0.100 %{
import time
t = time.monotonic()
while time.monotonic() - t < 0.03:
    pass
}%
0.100 > P. 1:101(100) ack 1
""",
        str(tmp_path / "stamp.pkt"),
    )
    out = run(sc)
    assert out.passed, out.report["error"]


def test_a_call_with_too_few_arguments_says_so(tmp_path: Path):
    with pytest.raises(PktError) as e:
        load_pkt_text(
            """\
    0 socket(..., SOCK_STREAM, IPPROTO_TCP) = 3
   +0 splice(3, NULL) = 0
""",
            str(tmp_path / "args.pkt"),
        )
    assert str(e.value).endswith(":2:7: splice() takes 6 arguments, got 2"), str(e.value)


def test_outbound_udp_is_matched(tmp_path: Path):
    sc = load_pkt_text(
        """\
    0 socket(..., SOCK_DGRAM, IPPROTO_UDP) = 3
   +0 bind(3, ..., ...) = 0
   +0 connect(3, ..., ...) = 0
   +0 write(3, ..., 100) = 100
   +0 > udp (100)
""",
        str(tmp_path / "udp-out.pkt"),
    )
    out = run(sc)
    assert out.passed, out.report["error"]
