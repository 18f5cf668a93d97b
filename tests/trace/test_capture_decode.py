"""``netemu show`` on what Linux captures hold (issue 19): every link type, tag and
tunnel, IPv6, truncated and TSO frames, damaged files. Each capture is built here
(scapy or by hand) and ``netemu show --json``'s connections are compared with
tshark's: the ``tcp.stream`` numbers, the frames of each, and their SYN, FIN and
RST counts."""

from __future__ import annotations

import gzip
import json
import struct
import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from scapy.all import (
    GRE,
    IP,
    TCP,
    UDP,
    Ether,
    IPv6,
    IPv6ExtHdrDestOpt,
    IPv6ExtHdrFragment,
    IPv6ExtHdrHopByHop,
    IPv6ExtHdrRouting,
    Packet,
    Raw,
    fragment,
    fragment6,
)
from scapy.contrib.erspan import ERSPAN_II
from scapy.contrib.geneve import GENEVE
from scapy.contrib.mpls import MPLS
from scapy.layers.l2 import CookedLinux, CookedLinuxV2
from scapy.layers.ppp import PPP, PPPoE
from scapy.layers.vxlan import VXLAN

from netemu.cli import EXIT_PARTIAL, main
from netemu.trace.pcap import write_pcap_frames

C4, S4 = "10.0.0.1", "10.0.0.2"
C6, S6 = "2001:db8::1", "2001:db8::2"
T0 = 1_700_000_000.0


def flow(v6: bool = False, payload: bytes = b"hello") -> list[Packet]:
    """IP packets: a connection with data and both FINs; the same 4-tuple again with
    another ISN (a new tcp.stream), refused; another port, refused; one UDP datagram."""
    ip: Callable[..., Packet] = IPv6 if v6 else IP
    c, s = (C6, S6) if v6 else (C4, S4)

    def cs(**kw: Any) -> Packet:
        return ip(src=c, dst=s) / TCP(sport=40000, dport=80, **kw)

    def sc(**kw: Any) -> Packet:
        return ip(src=s, dst=c) / TCP(sport=80, dport=40000, **kw)

    n = len(payload)
    return [
        cs(flags="S", seq=1000),
        sc(flags="SA", seq=5000, ack=1001),
        cs(flags="A", seq=1001, ack=5001),
        cs(flags="PA", seq=1001, ack=5001) / Raw(payload),
        sc(flags="A", seq=5001, ack=1001 + n),
        ip(src=c, dst=s) / UDP(sport=5353, dport=5353) / Raw(b"mdns"),
        cs(flags="FA", seq=1001 + n, ack=5001),
        sc(flags="FA", seq=5001, ack=1002 + n),
        cs(flags="A", seq=1002 + n, ack=5002),
        cs(flags="S", seq=9000),
        sc(flags="RA", seq=0, ack=9001),
        ip(src=c, dst=s) / TCP(sport=40001, dport=80, flags="S", seq=300),
        ip(src=s, dst=c) / TCP(sport=80, dport=40001, flags="RA", ack=301),
    ]


def write(path: Path, frames: list[bytes], linktype: int = 1) -> Path:
    write_pcap_frames(path, [(T0 + i * 0.001, f) for i, f in enumerate(frames)], linktype)
    return path


MACS = {"src": "02:00:00:00:00:01", "dst": "02:00:00:00:00:02"}  # (else scapy asks ARP)


def eth(pkts: list[Packet], wrap: Callable[[Packet], Packet] = lambda p: p) -> list[bytes]:
    out = []
    for p in pkts:
        et = 0x86DD if p.haslayer(IPv6) else 0x0800
        out.append(bytes(wrap(Ether(**MACS, type=et) / p)))
    return out


def outer(inner: Packet, *, v6: bool = False) -> Packet:
    """An outer Ethernet + IP header for a tunnel's packet."""
    if v6:
        return Ether(**MACS) / IPv6(src="fd00::a", dst="fd00::b") / inner
    return Ether(**MACS) / IP(src="192.0.2.1", dst="192.0.2.2") / inner


def ng_block(btype: int, body: bytes) -> bytes:
    body += b"\0" * (-len(body) % 4)
    return struct.pack("<II", btype, len(body) + 12) + body + struct.pack("<I", len(body) + 12)


def pcapng(packets: list[tuple[int, bytes]], linktypes: list[int]) -> bytes:
    """A pcapng: one interface per link type, then (interface, frame) EPBs."""
    out = ng_block(0x0A0D0D0A, struct.pack("<IHHq", 0x1A2B3C4D, 1, 0, -1))
    for lt in linktypes:
        out += ng_block(1, struct.pack("<HHI", lt, 0, 262144))
    for i, (iface, data) in enumerate(packets):
        ticks = int((T0 + i * 0.001) * 1_000_000)
        body = struct.pack("<IIIII", iface, ticks >> 32, ticks & 0xFFFFFFFF, len(data), len(data))
        out += ng_block(6, body + data + b"\0" * (-len(data) % 4))
    return out


# --- the cases: name -> builder(tmp_path) -> (capture, tshark options, skipped) -------

Case = tuple[Path, list[str], dict[str, int]]
UDP_ONLY = {"not TCP (UDP)": 1}


def _vlan(tmp: Path) -> Case:
    return write(tmp / "f.pcap", eth(flow(), lambda p: _retag(p, [(0x8100, 5)]))), [], UDP_ONLY


def _retag(p: Packet, tags: list[tuple[int, int]]) -> Packet:
    """The Ethernet frame ``p`` with VLAN tags (TPID, VID) pushed after its MACs."""
    raw = bytes(p)
    tag = b"".join(struct.pack(">HH", tpid, vid) for tpid, vid in tags)
    return Raw(raw[:12] + tag + raw[12:])


def _qinq(tmp: Path) -> Case:
    frames = eth(flow(), lambda p: _retag(p, [(0x88A8, 10), (0x8100, 20)]))
    frames[3:6] = eth(flow()[3:6], lambda p: _retag(p, [(0x9100, 3), (0x8100, 4)]))
    return write(tmp / "f.pcap", frames), [], UDP_ONLY


def _sll(tmp: Path) -> Case:
    frames = [
        bytes(CookedLinux(pkttype=0, lladdrtype=1, lladdrlen=6, proto=0x0800) / p) for p in flow()
    ]
    frames.append(bytes(CookedLinux(proto=0x0806) / bytes(28)))
    return write(tmp / "f.pcap", frames, 113), [], {"not TCP (UDP)": 1, "ARP": 1}


def _sll2(tmp: Path) -> Case:
    frames = [bytes(CookedLinuxV2(proto=0x86DD) / p) for p in flow(v6=True)]
    return write(tmp / "f.pcap", frames, 276), [], UDP_ONLY


def _raw4(tmp: Path) -> Case:
    return write(tmp / "f.pcap", [bytes(p) for p in flow()], 101), [], UDP_ONLY


def _raw6(tmp: Path) -> Case:
    return write(tmp / "f.pcap", [bytes(p) for p in flow(v6=True)], 229), [], UDP_ONLY


def _null(tmp: Path) -> Case:
    # DLT_NULL in the writer's (little-endian) order; IPv6 as FreeBSD (28) and Darwin (30)
    v4 = [struct.pack("<I", 2) + bytes(p) for p in flow()]
    v6 = [struct.pack("<I", 28 if i % 2 else 30) + bytes(p) for i, p in enumerate(flow(v6=True))]
    return write(tmp / "f.pcap", v4 + v6, 0), [], {"not TCP (UDP)": 2}


def _loop(tmp: Path) -> Case:
    v4 = [struct.pack(">I", 2) + bytes(p) for p in flow()]
    v6 = [struct.pack(">I", 24) + bytes(p) for p in flow(v6=True)]
    return write(tmp / "f.pcap", v4 + v6, 108), [], {"not TCP (UDP)": 2}


def _two_interfaces(tmp: Path) -> Case:
    """pcapng, interface 0 Ethernet, interface 1 raw IP: one connection across both."""
    pkts = flow()
    frames = [
        (i % 2, bytes(Ether(**MACS) / p) if i % 2 == 0 else bytes(p)) for i, p in enumerate(pkts)
    ]
    path = tmp / "f.pcapng"
    path.write_bytes(pcapng(frames, [1, 101]))
    return path, [], UDP_ONLY


def _gzip_pcap(tmp: Path) -> Case:
    path = tmp / "f.pcap.gz"
    path.write_bytes(gzip.compress(write(tmp / "f.pcap", eth(flow(v6=True))).read_bytes()))
    return path, [], UDP_ONLY


def _gzip_pcapng(tmp: Path) -> Case:
    path = tmp / "f.pcapng.gz"
    path.write_bytes(gzip.compress(pcapng([(0, f) for f in eth(flow())], [1])))
    return path, [], UDP_ONLY


def _ipv6_ext(tmp: Path) -> Case:
    pkts = []
    for i, p in enumerate(flow(v6=True)):
        ip6, l4 = p[IPv6], p[IPv6].payload
        ext = [
            IPv6ExtHdrHopByHop(),
            IPv6ExtHdrHopByHop() / IPv6ExtHdrDestOpt(),
            IPv6ExtHdrRouting(addresses=[]) / IPv6ExtHdrDestOpt(),
        ][i % 3]
        pkts.append(IPv6(src=ip6.src, dst=ip6.dst) / ext / l4)
    return write(tmp / "f.pcap", eth(pkts)), [], UDP_ONLY


def _ipv6_frag(tmp: Path) -> Case:
    pkts = flow(v6=True, payload=b"x" * 600)
    data = pkts[3]
    frags = fragment6(IPv6(src=data.src, dst=data.dst) / IPv6ExtHdrFragment(id=9) / data[TCP], 300)
    pkts[3:4] = frags
    opts = ["-o", "ipv6.defragment:FALSE"]
    return (
        write(tmp / "f.pcap", eth(pkts)),
        opts,
        {**UDP_ONLY, "IPv6 fragment (not first)": len(frags) - 1},
    )


def _ipv4_frag(tmp: Path) -> Case:
    pkts = flow(payload=b"y" * 600)
    frags = fragment(pkts[3], 256)
    pkts[3:4] = frags
    opts = ["-o", "ip.defragment:FALSE"]
    return (
        write(tmp / "f.pcap", eth(pkts)),
        opts,
        {**UDP_ONLY, "IPv4 fragment (not first)": len(frags) - 1},
    )


def _gre(tmp: Path) -> Case:
    frames = []
    for i, p in enumerate(flow()):
        g = [
            GRE(proto=0x0800),
            GRE(key_present=1, key=7, seqnum_present=1, sequence_number=i, proto=0x0800),
            GRE(chksum_present=1, proto=0x0800),
        ][i % 3]
        frames.append(bytes(outer(g / p)))
    return write(tmp / "f.pcap", frames), [], UDP_ONLY


def _gre_eth(tmp: Path) -> Case:
    """GRE carrying Ethernet (gretap) and ERSPAN type II, over IPv4 and IPv6."""
    frames = []
    for i, p in enumerate(flow()):
        inner = Ether(**MACS) / p
        g = (
            GRE(proto=0x6558) / inner
            if i % 2
            else GRE(seqnum_present=1, proto=0x88BE) / ERSPAN_II() / inner
        )
        frames.append(bytes(outer(g, v6=i % 3 == 0)))
    return write(tmp / "f.pcap", frames), [], UDP_ONLY


def _vxlan(tmp: Path) -> Case:
    frames = [
        bytes(outer(UDP(sport=50000, dport=4789) / VXLAN(vni=42) / Ether(**MACS) / p))
        for p in flow(v6=True)
    ]
    return write(tmp / "f.pcap", frames), [], UDP_ONLY


def _geneve(tmp: Path) -> Case:
    frames = [
        bytes(outer(UDP(sport=50000, dport=6081) / GENEVE(vni=7, proto=0x6558) / Ether(**MACS) / p))
        for p in flow()
    ]
    return write(tmp / "f.pcap", frames), [], UDP_ONLY


def _mpls(tmp: Path) -> Case:
    frames = []
    for p in flow() + flow(v6=True)[:3]:
        frames.append(
            bytes(
                Ether(**MACS, type=0x8847)
                / MPLS(label=100, s=0, ttl=64)
                / MPLS(label=200, s=1, ttl=64)
                / p
            )
        )
    return write(tmp / "f.pcap", frames), [], UDP_ONLY


def _pppoe(tmp: Path) -> Case:
    frames = []
    for p in flow():
        frames.append(
            bytes(Ether(**MACS, type=0x8864) / PPPoE(sessionid=1) / PPP(proto=0x0021) / p)
        )
    frames.append(
        bytes(
            Ether(**MACS, type=0x8864)
            / PPPoE(sessionid=1)
            / PPP(proto=0xC021)
            / b"\x01\x01\x00\x04"
        )
    )
    return write(tmp / "f.pcap", frames), [], {**UDP_ONLY, "PPPoE: not IP (PPP protocol 0xc021)": 1}


def _snaplen(tmp: Path) -> Case:
    """Cut at 68 bytes, as ``tcpdump -s 68``: every TCP header is whole, the payload not."""
    frames = eth(flow(payload=b"z" * 1000))
    path = tmp / "f.pcap"
    with open(path, "wb") as f:
        f.write(struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, 68, 1))
        for i, fr in enumerate(frames):
            ticks = int((T0 + i * 0.001) * 1e6)
            f.write(
                struct.pack(
                    "<IIII", ticks // 1_000_000, ticks % 1_000_000, min(68, len(fr)), len(fr)
                )
            )
            f.write(fr[:68])
    return path, [], UDP_ONLY


def _snaplen_options(tmp: Path) -> Case:
    """Cut at 60 bytes (``tcpdump -s 60``) with timestamps on every segment: the cut
    falls inside the TCP options. The segments are still TCP, in their stream (as
    tshark has them); their options unknown, no mark shown."""
    ts = [("NOP", None), ("NOP", None), ("Timestamp", (1, 2))]
    frames = []
    for pkt in flow(payload=b"z" * 1000):
        if pkt.haslayer(TCP):
            pkt[TCP].options = ts
        frames.append(bytes(Ether(**MACS) / pkt))
    path = tmp / "f.pcap"
    with open(path, "wb") as f:
        f.write(struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, 60, 1))
        for i, fr in enumerate(frames):
            ticks = int((T0 + i * 0.001) * 1e6)
            f.write(
                struct.pack(
                    "<IIII", ticks // 1_000_000, ticks % 1_000_000, min(60, len(fr)), len(fr)
                )
            )
            f.write(fr[:60])
    return path, [], UDP_ONLY


def _tso(tmp: Path) -> Case:
    frames = eth(flow(payload=b"t" * 3000))
    big = bytearray(frames[3])
    big[16:18] = b"\x00\x00"  # IPv4 total length 0, as a capture before the NIC has it
    frames[3] = bytes(big)
    return write(tmp / "f.pcap", frames), [], UDP_ONLY


def _self_connection(tmp: Path) -> Case:
    def lo(**kw: Any) -> Packet:
        return IP(src="127.0.0.1", dst="127.0.0.1") / TCP(sport=80, dport=80, **kw)

    pkts = [
        lo(flags="S", seq=7),
        lo(flags="SA", seq=7, ack=8),
        lo(flags="A", seq=8, ack=8),
        lo(flags="R", seq=8),
    ]
    return write(tmp / "f.pcap", eth(pkts)), [], {}


def _reuse(tmp: Path) -> Case:
    """tcp.stream's rule: a SYN whose sequence number is not its side's base starts a
    new stream, whether the connection ended (after one FIN, after RST) or not; a
    resent SYN does not; nor a new SYN+ACK."""

    def cs(**kw: Any) -> Packet:
        return IP(src=C4, dst=S4) / TCP(sport=40000, dport=80, **kw)

    def sc(**kw: Any) -> Packet:
        return IP(src=S4, dst=C4) / TCP(sport=80, dport=40000, **kw)

    pkts = [
        cs(flags="S", seq=1),
        cs(flags="S", seq=1),  # resent
        sc(flags="SA", seq=50, ack=2),
        cs(flags="A", seq=2, ack=51),
        cs(flags="S", seq=777),  # on an open connection
        sc(flags="SA", seq=90, ack=778),
        cs(flags="FA", seq=778, ack=91),
        cs(flags="S", seq=5000),  # after one FIN
        sc(flags="RA", seq=0, ack=5001),
        cs(flags="S", seq=5000),  # after RST, the same ISN: the same stream
        sc(flags="RA", seq=0, ack=5001),
        sc(flags="S", seq=3000),  # the server's SYN
        cs(flags="SA", seq=70, ack=3001),
        cs(flags="R", seq=71),
        sc(flags="SA", seq=60, ack=71),
    ]
    return write(tmp / "f.pcap", eth(pkts)), [], {}


CASES: dict[str, Callable[[Path], Case]] = {
    "vlan": _vlan,
    "qinq": _qinq,
    "cooked-v1": _sll,
    "cooked-v2": _sll2,
    "raw-v4": _raw4,
    "raw-v6": _raw6,
    "null": _null,
    "loop": _loop,
    "pcapng-two-link-types": _two_interfaces,
    "gzip-pcap": _gzip_pcap,
    "gzip-pcapng": _gzip_pcapng,
    "ipv6-ext-headers": _ipv6_ext,
    "ipv6-fragments": _ipv6_frag,
    "ipv4-fragments": _ipv4_frag,
    "gre": _gre,
    "gre-eth-erspan": _gre_eth,
    "vxlan": _vxlan,
    "geneve": _geneve,
    "mpls": _mpls,
    "pppoe": _pppoe,
    "snaplen": _snaplen,
    "snaplen-options": _snaplen_options,
    "tso-length-0": _tso,
    "self-connection": _self_connection,
    "port-reuse": _reuse,
}


# --- running both ---------------------------------------------------------------------


def show_json(path: Path, capsys: pytest.CaptureFixture[str]) -> tuple[int, dict[str, Any], str]:
    rc = main(["show", "--json", str(path)])
    out, err = capsys.readouterr()
    return rc, (json.loads(out) if out else {}), err


Streams = dict[int, tuple[list[int], int, int, int]]  # stream -> frames, SYNs, FINs, RSTs


def ours(rep: dict[str, Any]) -> Streams:
    got: Streams = {}
    for s in rep["segments"]:
        frames, syn, fin, rst = got.get(s["conversation"], ([], 0, 0, 0))
        fl = s["flags"].split("+")
        frames.append(s["frame"])
        got[s["conversation"]] = (
            frames,
            syn + ("SYN" in fl),
            fin + ("FIN" in fl),
            rst + ("RST" in fl),
        )
    return got


def theirs(tshark: str, path: Path, opts: list[str]) -> Streams:
    proc = subprocess.run(
        [tshark, "-n", "-r", str(path), *opts, "-Y", "tcp", "-T", "fields", "-E", "separator=,"]
        + [
            a
            for f in (
                "frame.number",
                "tcp.stream",
                "tcp.flags.syn",
                "tcp.flags.fin",
                "tcp.flags.reset",
            )
            for a in ("-e", f)
        ],
        capture_output=True,
        text=True,
        timeout=60,
    )
    got: Streams = {}
    for line in proc.stdout.splitlines():
        frame, stream, syn, fin, rst = line.split(",")
        frames, a, b, c = got.get(int(stream), ([], 0, 0, 0))
        frames.append(int(frame))
        got[int(stream)] = (
            frames,
            a + (syn in ("1", "True")),
            b + (fin in ("1", "True")),
            c + (rst in ("1", "True")),
        )
    return got


@pytest.mark.parametrize("name", list(CASES))
def test_show_json_agrees_with_tshark(
    name: str, tmp_path: Path, tshark: str, capsys: pytest.CaptureFixture[str]
) -> None:
    path, opts, skipped = CASES[name](tmp_path)
    rc, rep, err = show_json(path, capsys)
    assert rc == 0 and err == "", err
    want = theirs(tshark, path, opts)
    assert want, "tshark found no TCP"
    assert ours(rep) == want
    assert len(rep["conversations"]) == len(want)
    assert rep["skipped"] == skipped
    assert rep["frames"] == len(rep["segments"]) + sum(skipped.values())


@pytest.mark.parametrize("name", list(CASES))
def test_show_draws_it(name: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """The text ladder (without tshark): every connection drawn, the footnote's count."""
    path, _, skipped = CASES[name](tmp_path)
    assert main(["show", str(path), "--html", str(tmp_path / "l.html")]) == 0
    out = capsys.readouterr().out
    assert "(no TCP segments)" not in out
    assert out.count("── TCP ") >= (1 if name == "self-connection" else 2)
    if skipped:
        assert f"{sum(skipped.values())} frame(s) that are not TCP segments" in out
        for why in skipped:
            assert why in out.replace("\n", " ")


# --- damaged files, other files ---------------------------------------------------------


def _epb_offsets(data: bytes) -> list[int]:
    """Byte offsets of a little-endian pcapng's Enhanced Packet Blocks."""
    out, i = [], 0
    while i + 8 <= len(data):
        btype, blen = struct.unpack_from("<II", data, i)
        if btype == 6:
            out.append(i)
        i += blen
    return out


def _record_offsets(data: bytes) -> list[int]:
    """Byte offsets of a classic pcap's records."""
    out, i = [], 24
    while i + 16 <= len(data):
        out.append(i)
        i += 16 + struct.unpack_from("<I", data, i + 8)[0]
    return out


def _damaged(tmp: Path, kind: str) -> tuple[Path, int, int]:
    """A damaged capture: (path, the frame number where it is, its byte offset)."""
    path = tmp / "bad.pcap"
    if kind == "block-length":
        data = bytearray(pcapng([(0, f) for f in eth(flow())], [1]))
        at = _epb_offsets(bytes(data))[5]
        data[at + 4 : at + 8] = struct.pack("<I", 7)
        path.write_bytes(data)
        return path, 6, at
    if kind == "block-trailer":
        data = bytearray(pcapng([(0, f) for f in eth(flow())], [1]))
        at = _epb_offsets(bytes(data))[2]
        data[at + 4 : at + 8] = struct.pack("<I", struct.unpack_from("<I", data, at + 4)[0] + 8)
        path.write_bytes(data)
        return path, 3, at
    if kind == "bad-section-magic":
        good = pcapng([(0, f) for f in eth(flow())], [1])
        second = bytearray(pcapng([(0, f) for f in eth(flow())], [1]))
        second[8:12] = b"\xde\xad\xbe\xef"
        path.write_bytes(good + second)
        return path, 14, len(good)
    data = write(path, eth(flow())).read_bytes()
    at = _record_offsets(data)[8]
    if kind == "cut-record":
        path.write_bytes(data[: at + 16 + 10])
    elif kind == "record-length":
        path.write_bytes(data[: at + 8] + struct.pack("<I", 0x7FFFFFF0) + data[at + 12 :])
    elif kind == "gzip-cut":
        path = tmp / "bad.pcap.gz"
        z = gzip.compress(data[:at] + b"\0" * 4000)  # the last frame is the cut one
        path.write_bytes(z[: len(z) - 40])
        return path, 0, 0
    return path, 9, at


DAMAGE = ["block-length", "block-trailer", "bad-section-magic", "cut-record", "record-length"]


@pytest.mark.parametrize("kind", [*DAMAGE, "gzip-cut"])
def test_damaged_file_is_drawn_up_to_the_damage(
    kind: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path, frame, offset = _damaged(tmp_path, kind)
    rc, rep, err = show_json(path, capsys)
    assert rc == EXIT_PARTIAL
    assert err.count("\n") == 1 and err.startswith("netemu show: warning: "), err
    assert rep["damage"] and rep["damage"] in err
    if frame:
        assert f"frame {frame} at byte offset {offset}:" in err
        assert rep["frames"] == frame - 1  # everything before it
    else:
        assert "gzip" in err
    assert rep["conversations"]
    # the text ladder too: drawn, the same warning
    assert main(["show", str(path)]) == EXIT_PARTIAL
    out, err2 = capsys.readouterr()
    assert "── TCP " in out and err2 == err
    # and the output itself says so (stdout may go where stderr's warning never does)
    assert out.startswith(f"DAMAGED capture: {rep['damage']}; drawn up to there.")
    html = tmp_path / "l.html"
    assert main(["show", str(path), "--html", str(html)]) == EXIT_PARTIAL
    capsys.readouterr()
    assert "DAMAGED, drawn up to the damage: " in html.read_text()


@pytest.mark.parametrize("kind", DAMAGE)
def test_damaged_file_agrees_with_tshark(
    kind: str, tmp_path: Path, tshark: str, capsys: pytest.CaptureFixture[str]
) -> None:
    """tshark reads the same frames before the damage (and reports an error too)."""
    path, _, _ = _damaged(tmp_path, kind)
    _, rep, _ = show_json(path, capsys)
    assert ours(rep) == theirs(tshark, path, [])
    proc = subprocess.run([tshark, "-r", str(path)], capture_output=True, text=True, timeout=60)
    assert proc.returncode != 0 or "cut short" in proc.stderr or "corrupt" in proc.stderr


@pytest.mark.parametrize(
    "content", [b"", b"hello, world\n", b"\x0a\x0d\x0d\x0a", b"\xd4\xc3\xb2\xa1" + bytes(10)]
)
def test_not_a_capture(content: bytes, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "x.pcap"
    path.write_bytes(content)
    assert main(["show", str(path)]) == 2
    out, err = capsys.readouterr()
    assert out == "" and err.count("\n") == 1 and err.startswith("netemu show: ")
    assert main(["show", str(tmp_path / "missing.pcap")]) == 2
    assert main(["show", str(tmp_path)]) == 2  # a directory
    out, err = capsys.readouterr()
    assert err.count("\n") == 2


def test_unsupported_link_type_is_counted(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A pcapng with an Ethernet interface and one of a link type netemu does not read
    (147, user-defined): the Ethernet frames drawn, the others counted."""
    frames = [(0, f) for f in eth(flow())] + [(1, b"anything"), (1, b"more")]
    path = tmp_path / "f.pcapng"
    path.write_bytes(pcapng(frames, [1, 147]))
    rc, rep, _ = show_json(path, capsys)
    assert rc == 0
    assert rep["skipped"] == {"unsupported link type 147": 2, **UDP_ONLY}
    assert len(rep["conversations"]) == 3
    assert main(["show", str(path)]) == 0
    assert "2 unsupported link type 147" in capsys.readouterr().out


def test_a_runs_pcap_keeps_its_marks(full_trace, tmp_path: Path, capsys) -> None:
    """netemu's own trace.pcap (pcapng, comments "netemu: dropped — …"): its marks and
    notes are the segments' in --json, and its ARP frame is counted as ARP."""
    from netemu.trace.pcap import write_pcap

    path = tmp_path / "trace.pcap"
    write_pcap(full_trace, path)
    rc, rep, _ = show_json(path, capsys)
    assert rc == 0 and rep["damage"] is None
    tcp_frames = [fr for fr in full_trace.frames if fr.data[12:14] == b"\x08\x00"]
    assert [s["mark"] for s in rep["segments"]] == [fr.mark for fr in tcp_frames]
    assert [s["note"] for s in rep["segments"]] == [fr.note for fr in tcp_frames]
    assert rep["skipped"] == {"ARP": 1}
    assert {s["mark"] for s in rep["segments"]} == {None, "dropped", "injected"}


def test_fuzzed_captures_never_raise(full_trace, tmp_path: Path, capsys) -> None:
    """Truncated and bit-flipped versions of valid captures (seeded): an exit code and at
    most one line on stderr, never a traceback."""
    import random

    from netemu.trace.pcap import write_pcap

    write_pcap(full_trace, tmp_path / "run.pcap")
    bases = [
        (tmp_path / "run.pcap").read_bytes(),
        pcapng(
            [
                (i % 2, bytes(Ether(**MACS) / p) if i % 2 == 0 else bytes(p))
                for i, p in enumerate(flow())
            ],
            [1, 101],
        ),
        CASES["gre-eth-erspan"](tmp_path)[0].read_bytes(),
        CASES["ipv6-ext-headers"](tmp_path)[0].read_bytes(),
        CASES["qinq"](tmp_path)[0].read_bytes(),
        CASES["gzip-pcapng"](tmp_path)[0].read_bytes(),
    ]
    rng = random.Random(19)
    path = tmp_path / "fuzz.pcap"
    codes: dict[int, int] = {}
    for n in range(360):
        data = bytearray(rng.choice(bases))
        how = n % 3
        if how == 0:
            del data[rng.randrange(len(data)) :]
        else:
            for _ in range(rng.randint(1, 6)):
                i = rng.randrange(len(data))
                if how == 1:
                    data[i] ^= 1 << rng.randrange(8)
                else:
                    data[i : i + 4] = rng.choice(
                        [b"\0\0\0\0", b"\xff\xff\xff\xff", rng.randbytes(4)]
                    )
        path.write_bytes(bytes(data))
        args = ["show", str(path)] if n % 2 else ["show", "--json", str(path)]
        rc = main(args)
        _, err = capsys.readouterr()
        assert rc in (0, 2, EXIT_PARTIAL), (n, rc, err)
        assert err.count("\n") <= 1 and "Traceback" not in err, (n, err)
        codes[rc] = codes.get(rc, 0) + 1
    assert len(codes) == 3  # each outcome was met


def test_skipped_counts_survive_pickling():
    # netemu run -j sends each run's report, which holds one, from child to parent
    import pickle

    from netemu.trace.conv import Skipped

    s = Skipped({"ARP": 3, "not TCP (UDP)": 1})
    t = pickle.loads(pickle.dumps(s, protocol=pickle.HIGHEST_PROTOCOL))
    assert t == 4 and t.reasons == {"ARP": 3, "not TCP (UDP)": 1} and type(t) is Skipped


@pytest.mark.parametrize("where", ["crc", "middle"])
def test_a_damaged_gzip_is_read_up_to_the_damage(
    where: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # One bad byte in a gzip capture: its CRC (every frame still there), or inside the
    # compressed data (the frames before it). It once drew nothing, exit 2, "0 bytes".
    plain = write(tmp_path / "f.pcap", eth(flow() * 40)).read_bytes()
    z = bytearray(gzip.compress(plain, compresslevel=1))
    at = len(z) - 6 if where == "crc" else len(z) // 2
    z[at] ^= 0xFF
    path = tmp_path / "f.pcap.gz"
    path.write_bytes(bytes(z))
    rc, rep, err = show_json(path, capsys)
    assert rc == EXIT_PARTIAL, err
    assert err.count("\n") == 1 and "gzip" in err and "0 bytes" not in err
    frames = len(eth(flow() * 40))
    if where == "crc":
        assert rep["frames"] == frames
    else:
        assert 0 < rep["frames"] < frames
