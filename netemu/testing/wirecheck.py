"""Checks every real-wire test makes on what the host recorded."""

from __future__ import annotations

from netemu.host import Host, TcpStream
from netemu.wire import RST, parse_frame


def assert_clean_wire(host: Host) -> None:
    """No frame with a bad checksum, and no RST from the emulator namespace's
    kernel (every frame we sent came from netemu; a kernel RST would show up as an
    *outgoing* frame we did not make, which AF_PACKET would not even show us, so
    we check the peer-bound RSTs netemu itself made: none unless asked)."""
    bad = [f for f in host.trace.frames if f.mark in ("bad-checksum", "malformed")]
    assert not bad, f"{len(bad)} frames with bad checksums or malformed: {bad[:2]}"
    for f in host.trace.frames:
        frame = parse_frame(f.data)  # verify=True: every recorded frame checks out
        if frame.tcp is not None and f.direction == "out":
            assert not frame.tcp.flags & RST, "netemu sent a RST nobody asked for"


def relative_segments(host: Host) -> list[tuple[str, str, int, int, int]]:
    """(direction, flags, rel seq, rel ack, len) of every TCP segment, like Wireshark."""
    from netemu.wire import ACK, SYN, flags_str

    isn: dict[str, int] = {}
    out: list[tuple[str, str, int, int, int]] = []
    for f in host.trace.frames:
        seg = parse_frame(f.data).tcp
        if seg is None:
            continue
        me, peer = ("out", "in") if f.direction == "out" else ("in", "out")
        if seg.flags & SYN:
            isn[me] = seg.seq
        base = isn.get(me, seg.seq)
        abase = isn.get(peer, seg.ack)
        out.append(
            (
                f.direction,
                flags_str(seg.flags),
                (seg.seq - base) & 0xFFFFFFFF,
                (seg.ack - abase) & 0xFFFFFFFF if seg.flags & ACK else 0,
                len(seg.payload),
            )
        )
    return out


async def echo_stream(stream: TcpStream) -> int:
    """Echo everything ``stream`` receives until EOF, then close; bytes echoed."""
    import anyio

    total = 0
    try:
        while True:
            chunk = await stream.receive()
            total += len(chunk)
            await stream.send(chunk)
    except anyio.EndOfStream:
        pass
    await stream.aclose()
    return total
