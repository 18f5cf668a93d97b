""".pkt scripts over IPv6 and IPv4-mapped IPv6 (packetdrill's ``--ip_version``), against
the real kernel: the scripts of scripts/live pass over both (those that are
IPv4-only by their own text are named, with why), a wrong expectation still fails, and
the frames netemu writes are what the kernel and tshark take them for (ICMPv6 packet too
big, UDP with its required checksum, IPv6 addresses in the pcap)."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from netemu.pkt import PktError, load_pkt, load_pkt_text

from .test_live import LIVE, SCRIPTS, argv_for, error_of, run

pytestmark = [pytest.mark.root, pytest.mark.timing, pytest.mark.timeout(60)]

# run_all.py's arguments for each version (the addresses are packetdrill's; netemu maps
# them onto the lab's).
V6 = ["--ip_version=ipv6", "--mtu=1520", "--local_ip=fd3d:0a0b:17d6::1",
      "--gateway_ip=fd3d:0a0b:17d6:8888::1", "--remote_ip=fd3d:fa7b:d17d::1"]  # fmt: skip
MAPPED = ["--ip_version=ipv4-mapped-ipv6", "--local_ip=192.168.0.1", "--remote_ip=192.0.2.1"]

# IPv4-only by their own text, as they would be under packetdrill:
IPV4_ONLY = {
    "icmp_frag_needed": "ICMP 'unreachable frag_needed' has no ICMPv6 code of that name",
    "script_options": "its own --remote_ip is an IPv4 address",
    "zerocopy": "expects its error queue's cmsg at SOL_IP/IP_RECVERR",
}
V6_SCRIPTS = [p for p in SCRIPTS if p.stem not in IPV4_ONLY]
# Over IPv4-mapped IPv6 the wire is IPv4: what differs is the sockets' family and
# addresses, which these exercise (accept, connect, sendto/recvfrom, msghdr names).
MAPPED_SCRIPTS = [LIVE / f"{s}.pkt" for s in ("blocking_wait", "fastopen_client", "msghdr", "udp")]


@pytest.mark.parametrize("path", V6_SCRIPTS, ids=[p.stem for p in V6_SCRIPTS])
def test_live_script_passes_over_ipv6(path: Path, tmp_path: Path):
    sc = load_pkt(path, argv_for(path.stem, tmp_path) + V6)
    assert sc.six
    out = run(sc)
    assert out.passed, out.report["error"]
    assert all(s["status"] == "pass" for s in out.report["steps"])


@pytest.mark.parametrize("path", MAPPED_SCRIPTS, ids=[p.stem for p in MAPPED_SCRIPTS])
def test_live_script_passes_over_ipv4_mapped_ipv6(path: Path, tmp_path: Path):
    sc = load_pkt(path, argv_for(path.stem, tmp_path) + MAPPED)
    assert sc.ip_version == "ipv4-mapped-ipv6" and not sc.six
    out = run(sc)
    assert out.passed, out.report["error"]


def test_the_ipv4_only_scripts_fail_over_ipv6_for_their_reason(tmp_path: Path):
    """As packetdrill's parser: IPv4's frag_needed is no ICMPv6 code, refused when the
    script loads (netemu run --dry_run and validate say so, no lab)."""
    with pytest.raises(PktError) as e:
        load_pkt(LIVE / "icmp_frag_needed.pkt", V6)
    assert str(e.value).endswith(
        ":16:3: bad ICMPv6 code frag_needed for unreachable (an IPv4 code: over IPv6, "
        "'packet_too_big mtu N' says the path MTU) (packetdrill: semantic error)"
    ), str(e.value)
    with pytest.raises(PktError, match="bad ICMP type packet_too_big"):
        load_pkt_text(PACKET_TOO_BIG, "t.pkt")  # an ICMPv6 type, over IPv4


def test_a_flow_label_is_checked_over_ipv6_only(tmp_path: Path):
    """packetdrill checks an outbound flow label on IPv6 packets; an IPv4 header has
    none, and a script's (flowlabel 0x1) is not checked there (both tools pass it)."""
    text = HEAD.replace("+0 > S. 0:0(0)", "+0 > (flowlabel 0x1) S. 0:0(0)")
    assert run(load_pkt_text(text, str(tmp_path / "f4.pkt"), MAPPED)).passed
    out = run(load_pkt_text(text, str(tmp_path / "f6.pkt"), V6))
    assert out.passed, out.report["error"]  # the kernel labels its SYN-ACK (auto flow labels)


HEAD = """\
`sysctl -q net.ipv4.tcp_timestamps=0; ethtool -K tun0 tso off`
    0 socket(..., SOCK_STREAM, IPPROTO_TCP) = 3
   +0 bind(3, ..., ...) = 0
   +0 listen(3, 1) = 0
   +0 < S 0:0(0) win 32792 <mss 1460,nop,wscale 7>
   +0 > S. 0:0(0) ack 1 <mss 1460,nop,wscale 8>
  +.01 < . 1:1(0) ack 1 win 257
   +0 accept(3, ..., ...) = 4
"""
# ICMPv6 packet too big (RFC 4443 §3.2) quoting the kernel's segment: the kernel takes
# the path MTU (IPV6_MTU), cuts its MSS to 1280 - 40 - 20 and retransmits at once.
PACKET_TOO_BIG = (
    HEAD
    + """\
   +0 write(4, ..., 1460) = 1460
   +0 > P. 1:1461(1460) ack 1
 +.01 < icmp packet_too_big mtu 1280 [1:1461(1460)]
   +0 > . 1:1221(1220) ack 1
   +0 > P. 1221:1461(240) ack 1
   +0 getsockopt(4, SOL_IPV6, IPV6_MTU, [1280], [4]) = 0
   +0 getsockopt(4, SOL_TCP, TCP_MAXSEG, [1220], [4]) = 0
 +.01 < . 1:1(0) ack 1461 win 257
"""
)


def test_icmpv6_packet_too_big_is_taken_by_the_kernel(tmp_path: Path):
    out = run(load_pkt_text(PACKET_TOO_BIG, str(tmp_path / "ptb.pkt"), V6), tmp_path / "run")
    assert out.passed, out.report["error"]
    from scapy.layers.inet6 import ICMPv6PacketTooBig, IPerror6, TCPerror
    from scapy.utils import rdpcap

    ptb = [p for p in rdpcap(str(tmp_path / "run" / "trace.pcap")) if ICMPv6PacketTooBig in p]
    assert len(ptb) == 1
    msg = ptb[0][ICMPv6PacketTooBig]
    want = msg.cksum
    del msg.cksum  # scapy recomputes it over the IPv6 pseudo-header
    assert ptb[0].__class__(bytes(ptb[0]))[ICMPv6PacketTooBig].cksum == want
    assert msg.mtu == 1280
    quoted = msg[IPerror6]
    assert (quoted.src, quoted.dst, quoted.plen) == ("2001:2::2", "2001:2::1", 20 + 1460)
    assert msg[TCPerror].sport == 8080  # the kernel's port, as it sent it


def test_a_wrong_expectation_fails_over_ipv6(tmp_path: Path):
    wrong = PACKET_TOO_BIG.replace("> . 1:1221(1220)", "> . 1:1241(1240)")
    out = run(load_pkt_text(wrong, str(tmp_path / "w.pkt"), V6))
    why = error_of(out)
    assert "line 12 expect: live packet field" in why and "actual packet: " in why, why
    wrong = PACKET_TOO_BIG.replace("IPV6_MTU, [1280]", "IPV6_MTU, [1500]")
    assert "bad optval: expected 1500 but got 1280" in error_of(
        run(load_pkt_text(wrong, str(tmp_path / "w2.pkt"), V6))
    )


def test_udp_over_ipv6_has_its_checksum_and_the_pcap_reads_clean(tmp_path: Path, tshark: str):
    out = run(load_pkt(LIVE / "udp.pkt", V6), tmp_path / "run")
    assert out.passed, out.report["error"]  # the kernel drops a zero UDP checksum
    res = subprocess.run(
        [tshark, "-r", str(tmp_path / "run" / "trace.pcap"), "-o", "udp.check_checksum:TRUE",
         "-Y", "udp", "-T", "fields", "-e", "ipv6.src", "-e", "udp.checksum.status"],
        capture_output=True, text=True, check=True,
    )  # fmt: skip
    rows = [ln.split("\t") for ln in res.stdout.splitlines()]
    assert rows == [["2001:2::1", "1"]] * 3, res.stdout  # 1: good (0 bad, 2 unverified)
    assert "warn" not in res.stderr.lower()


def test_mapped_sockets_see_ipv4_mapped_addresses(tmp_path: Path):
    text = HEAD.replace("ethtool -K tun0 tso off", "true") + (
        "   +0 getsockopt(4, SOL_IPV6, IPV6_V6ONLY, [0], [4]) = 0\n"
        "   +0 close(4) = 0\n"
        "   +0 > F. 1:1(0) ack 1\n"
    )
    out = run(load_pkt_text(text, str(tmp_path / "m.pkt"), MAPPED))
    assert out.passed, out.report["error"]
    v6only = text.replace("IPV6_V6ONLY, [0]", "IPV6_V6ONLY, [1]")
    assert "bad optval: expected 1 but got 0" in error_of(
        run(load_pkt_text(v6only, str(tmp_path / "m2.pkt"), MAPPED))
    )
