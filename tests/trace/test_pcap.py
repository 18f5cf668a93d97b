"""pcap out (checked by tshark), pcap/pcapng in (checked against scapy's writers)."""

from __future__ import annotations

import os
import struct
import subprocess

import pytest

from netemu.trace import Trace
from netemu.trace.pcap import (
    LINKTYPE_LINUX_SLL,
    LINKTYPE_RAW,
    CaptureError,
    read_capture,
    read_pcap,
    write_pcap,
    write_pcap_frames,
)
from netemu.trace.report import summarize_segments


def test_roundtrip_exact_bytes_and_times(full_trace: Trace, tmp_path) -> None:
    path = tmp_path / "trace.pcap"
    n = write_pcap(full_trace, path)
    assert n == len(full_trace.frames)
    got = read_pcap(path)
    assert [d for _, d in got] == [fr.data for fr in full_trace.frames]  # dropped ones too
    for (ts, _), fr in zip(got, full_trace.frames, strict=True):
        assert ts == pytest.approx(full_trace.wall(fr.t), abs=1e-6)
    # pcapng, little-endian, µs (no if_tsresol), LINKTYPE_ETHERNET
    raw = path.read_bytes()
    btype, blen, bom, major = struct.unpack_from("<IIIH", raw)
    assert (btype, bom, major) == (0x0A0D0D0A, 0x1A2B3C4D, 1)
    assert struct.unpack_from("<IIH", raw, blen)[::2] == (1, 1)  # the IDB: Ethernet


def test_marks_travel_in_packet_comments(full_trace: Trace, tmp_path) -> None:
    """A frame the run marked (dropped, injected) says so in the file itself, so a
    reader of trace.pcap alone (netemu show, Wireshark's frame.comment) knows which
    frames never crossed the wire; the others carry no comment."""
    from netemu.trace.pcap import parse_comment, read_packets

    path = tmp_path / "trace.pcap"
    write_pcap(full_trace, path)
    got = [parse_comment(p.comment) for p in read_packets(path)]
    want = [(fr.mark, fr.note) for fr in full_trace.frames]
    assert got == want
    assert any(m == "dropped" for m, _ in got)
    assert any(m == "injected" for m, _ in got)


def test_write_is_atomic(full_trace: Trace, tmp_path) -> None:
    path = tmp_path / "trace.pcap"
    path.write_bytes(b"previous")

    def frames():
        yield (1.0, b"\x00" * 60)
        raise RuntimeError("boom")

    with pytest.raises(RuntimeError):
        write_pcap_frames(path, frames())
    assert path.read_bytes() == b"previous"
    assert os.listdir(tmp_path) == ["trace.pcap"]  # no temp file left behind
    write_pcap(full_trace, path)
    assert os.listdir(tmp_path) == ["trace.pcap"]


def test_tshark_reads_it_and_agrees(full_trace: Trace, tmp_path, tshark: str) -> None:
    path = tmp_path / "trace.pcap"
    write_pcap(full_trace, path)
    proc = subprocess.run(
        [
            tshark,
            "-n",
            "-r",
            str(path),
            "-Y",
            "tcp",
            "-T",
            "fields",
            "-E",
            "separator=,",
            "-e",
            "frame.number",
            "-e",
            "frame.time_epoch",
            "-e",
            "tcp.flags",
            "-e",
            "tcp.seq",
            "-e",
            "tcp.ack",
            "-e",
            "tcp.len",
            "-e",
            "tcp.window_size_value",
            "-e",
            "tcp.window_size",
        ],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 0, proc.stderr
    for bad in ("damaged", "corrupt", "cut short", "isn't", "error"):
        assert bad not in proc.stderr.lower(), proc.stderr
    rows = [line.split(",") for line in proc.stdout.splitlines()]
    ours = summarize_segments(full_trace)
    assert len(rows) == len(ours) == 14
    for row, seg in zip(rows, ours, strict=True):
        frame, epoch, flags, seq, ack, length, win_raw, win = row
        assert int(frame) == seg["frame"]
        assert float(epoch) == pytest.approx(full_trace.start_wall + seg["t"], abs=2e-6)
        assert int(flags, 16) & 0xFFF == _flag_bits(seg["flags"])
        assert int(seq) == seg["seq"]
        if seg["ack"] is not None:
            assert int(ack) == seg["ack"]
        assert int(length) == seg["len"]
        assert int(win_raw) == seg["win_raw"]
        assert int(win) == seg["win"]  # scaled by the handshake's Window Scale
    # tshark's own pcapng of it reads back the same
    ng = tmp_path / "trace.pcapng"
    subprocess.run(
        [tshark, "-r", str(path), "-F", "pcapng", "-w", str(ng)],
        check=True,
        capture_output=True,
        timeout=60,
    )
    assert read_pcap(ng) == read_pcap(path)
    # the numbers the tutorials show: handshake 0/0/1, data at 1, FINs at 6 and 7
    assert [(s["flags"], s["seq"], s["ack"], s["win"]) for s in ours[:3]] == [
        ("SYN", 0, None, 64240),
        ("SYN+ACK", 0, 1, 65160),
        ("ACK", 1, 1, 502 << 7),
    ]


def _flag_bits(names: str) -> int:
    bits = {"FIN": 1, "SYN": 2, "RST": 4, "PSH": 8, "ACK": 16, "URG": 32}
    return sum(bits[n] for n in names.split("+"))


def test_reads_scapy_pcap_and_pcapng(tmp_path) -> None:
    from scapy.all import IP, TCP, Ether, wrpcap, wrpcapng

    pkts = [
        Ether() / IP(src="10.0.0.1", dst="10.0.0.2") / TCP(flags="S", seq=7),
        Ether() / IP(src="10.0.0.2", dst="10.0.0.1") / TCP(flags="SA", seq=9, ack=8),
    ]
    pkts[0].time, pkts[1].time = 1_700_000_000.25, 1_700_000_000.5
    for name, writer in (("a.pcap", wrpcap), ("a.pcapng", wrpcapng)):
        writer(str(tmp_path / name), pkts)
        got = read_pcap(tmp_path / name)
        assert [d for _, d in got] == [bytes(p) for p in pkts], name
        assert [ts for ts, _ in got] == pytest.approx([1_700_000_000.25, 1_700_000_000.5], abs=1e-6)


def test_other_link_types_become_ethernet(tmp_path) -> None:
    ip = bytes.fromhex("450000280001000040060000c0a80001c0a80002") + bytes(20)
    sll = b"\x00\x00\x00\x01\x00\x06" + b"\x02\x00\x00\x00\x00\x09\x00\x00" + b"\x08\x00" + ip
    write_pcap_frames(tmp_path / "sll.pcap", [(1.0, sll)], linktype=LINKTYPE_LINUX_SLL)
    write_pcap_frames(tmp_path / "raw.pcap", [(1.0, ip)], linktype=LINKTYPE_RAW)
    ((_, eth1),) = read_pcap(tmp_path / "sll.pcap")
    ((_, eth2),) = read_pcap(tmp_path / "raw.pcap")
    assert eth1 == bytes(6) + bytes.fromhex("020000000009") + b"\x08\x00" + ip
    assert eth2 == bytes(12) + b"\x08\x00" + ip
    assert read_pcap(tmp_path / "sll.pcap", ethernet=False) == [(1.0, sll)]
    write_pcap_frames(tmp_path / "odd.pcap", [(1.0, b"x" * 20)], linktype=147)
    with pytest.raises(CaptureError, match="link type 147"):
        read_pcap(tmp_path / "odd.pcap")


def test_truncated_capture_keeps_whole_packets(full_trace: Trace, tmp_path) -> None:
    path = tmp_path / "cut.pcap"
    write_pcap(full_trace, path)
    data = path.read_bytes()
    path.write_bytes(data[:-10])  # a capture killed mid-write
    assert len(read_capture(path)) == len(full_trace.frames) - 1
    (tmp_path / "junk").write_bytes(b"not a capture")
    with pytest.raises(CaptureError):
        read_pcap(tmp_path / "junk")


def test_retime_in_gives_the_arrivals_their_times() -> None:
    """The "in" frames recorded since a point take the kernel's receive times, in order,
    whether or not ``frames`` has made records of them meanwhile; "out" ones keep theirs."""
    from netemu.trace.record import Trace

    for read_between in (False, True):
        t = Trace()
        since = t.record_count()
        t.frame("in", b"a", t=5.0)
        t.frame("out", b"b", t=5.0)
        if read_between:
            assert len(t.frames) == 2
        t.frame("in", b"c", t=5.0)
        t.retime_in(since, [1.0, None])
        assert [(f.direction, f.t) for f in t.frames] == [("in", 1.0), ("out", 5.0), ("in", 5.0)]
