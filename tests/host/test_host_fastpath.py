"""The host's fast paths give exactly what the general code gives."""

from __future__ import annotations

import random

from netemu.host import Host
from netemu.wire import ACK, FIN, PSH, SYN, IPv4Packet, TcpSegment, build_tcp_frame, parse_frame
from netemu.wire.tcp import MssOption, NopOption, SackPermittedOption, TimestampOption


class _NullLink:
    def fileno(self) -> int:
        return -1

    def send(self, frame: bytes) -> None:
        pass

    def send_batch(self, frames: list[bytes]) -> int:
        return len(frames)


def test_frame_template_is_build_tcp_frame_byte_for_byte() -> None:
    rng = random.Random(5)
    host = Host(_NullLink(), "198.18.0.1", "02:6e:00:00:00:01")
    peers = {"198.18.0.2": "02:6e:00:00:00:02", "198.19.255.254": "02:aa:bb:cc:dd:ee"}
    host.arp_cache.update(peers)
    options = [
        (),
        (TimestampOption(1, 2),),
        (NopOption(), NopOption(), TimestampOption(7, 0)),
        (MssOption(1460), SackPermittedOption()),
    ]
    ident = 0
    for i in range(3000):
        dst = rng.choice(sorted(peers))
        if i == 1500:  # the peer's MAC changes: the template follows the ARP cache
            peers[dst] = host.arp_cache[dst] = "02:11:22:33:44:55"
        seg = TcpSegment(
            rng.randrange(65536),
            rng.randrange(65536),
            rng.getrandbits(32),
            rng.getrandbits(32),
            rng.choice([ACK, ACK | PSH, SYN, FIN | ACK]),
            rng.randrange(65536),
            rng.randbytes(rng.choice([0, 1, 2, 537, 1448])),
            rng.choice(options),
        )
        if i % 700 == 0:  # the identification wraps
            host._ip_id = iter(range(65530 + i, 70000 + i))
            ident = 65530 + i
        else:
            ident += 1
        got = host._frame_for(seg, dst)
        want = build_tcp_frame(
            host.mac, peers[dst], IPv4Packet(host.ip, dst, 6, identification=ident & 0xFFFF), seg
        )
        assert got == want
        parse_frame(got, verify=True)
    assert host._frame_for(seg, "198.18.0.77") is None  # no ARP entry: no frame


class _FullLink(_NullLink):
    """A link whose send buffer takes only the first ``room`` frames."""

    def __init__(self, room: int) -> None:
        self.room = room

    def send_batch(self, frames: list[bytes]) -> int:
        return min(self.room, len(frames))


def test_frames_the_link_cannot_take_are_recorded_as_dropped() -> None:
    # A full send buffer drops (as a full qdisc would; TCP retransmits) and the
    # trace says so, rather than claiming the frames left or raising.
    host = Host(_FullLink(room=1), "198.18.0.1", "02:6e:00:00:00:01")
    frames = [bytes(60), bytes(61), bytes(62)]
    host._wire_out(frames)
    marks = [(len(r.data), r.mark) for r in host.trace.frames]
    assert marks == [(60, None), (61, "dropped"), (62, "dropped")]
    assert host.stats["tx"] == 1 and host.stats["tx_dropped"] == 2
