"""Bulk transfers through impaired in-memory links: byte-exact, both ways at once."""

from __future__ import annotations

import random

import pytest

from netemu.tcp import State, TcpConfig
from netemu.testing import MemLink, MemNetwork, established_pair

S = State
MiB = 1 << 20


def _payload(n: int, seed: int) -> bytes:
    return random.Random(seed).randbytes(n)


def _links(
    seed: int,
    *,
    loss: float = 0.1,
    duplicate: float = 0.05,
    reorder: float = 0.2,
    encode: bool = False,
    **kw: object,
) -> dict[str, MemLink]:
    return {
        "ab": MemLink(
            src_ip="198.18.0.1",
            dst_ip="198.18.0.2",
            loss=loss,
            duplicate=duplicate,
            reorder=reorder,
            encode=encode,
            rng=random.Random(seed),
            **kw,
        ),  # type: ignore[arg-type]
        "ba": MemLink(
            src_ip="198.18.0.2",
            dst_ip="198.18.0.1",
            loss=loss,
            duplicate=duplicate,
            reorder=reorder,
            encode=encode,
            rng=random.Random(seed + 10_000),
            **kw,
        ),  # type: ignore[arg-type]
    }


class Pump:
    """Application on both ends: write all of ``data_*`` as buffers allow, read
    what arrives (all of it, or ``chunk`` bytes every ``every`` seconds)."""

    def __init__(
        self,
        net: MemNetwork,
        data_ab: bytes,
        data_ba: bytes,
        *,
        chunk: int | None = None,
        every: float | None = None,
    ) -> None:
        self.net = net
        self.a, self.b = net.a, net.b
        self.data = {self.a: data_ab, self.b: data_ba}
        self.sent = {self.a: 0, self.b: 0}
        self.got = {self.a: bytearray(), self.b: bytearray()}
        self.chunk, self.every = chunk, every
        self.next_read = net.now
        self.saw_zero_window = False
        self.closed = False

    def __call__(self, net: MemNetwork) -> None:
        for conn in (self.a, self.b):
            data, off = self.data[conn], self.sent[conn]
            if off < len(data):
                self.sent[conn] += conn.send(data[off:])  # type: ignore[union-attr]
        if self.a.snd_wnd == 0:
            self.saw_zero_window = True
        if self.chunk is None:
            self.got[self.a] += self.a.read()
            self.got[self.b] += self.b.read()  # type: ignore[union-attr]
        elif net.now >= self.next_read:
            self.next_read = net.now + self.every  # type: ignore[operator]
            self.got[self.a] += self.a.read(self.chunk)
            self.got[self.b] += self.b.read(self.chunk)  # type: ignore[union-attr]

    def done(self) -> bool:
        return len(self.got[self.b]) == len(self.data[self.a]) and len(self.got[self.a]) == len(
            self.data[self.b]
        )

    def run(self, max_time: float) -> None:
        ok = self.net.run(self.done, app=self, app_every=self.every, max_time=max_time)
        assert ok, (
            f"stalled at t={self.net.now}: b got {len(self.got[self.b])}, "
            f"a got {len(self.got[self.a])}; a {self.a.state} b {self.b.state}"
        )
        assert bytes(self.got[self.b]) == self.data[self.a]
        assert bytes(self.got[self.a]) == self.data[self.b]

    def close_both(self) -> None:
        """Both close; both must end CLOSED (one via TIME-WAIT) on the same link."""
        a, b = self.a, self.b
        a.close()
        b.close()  # type: ignore[union-attr]
        ok = self.net.run(
            lambda: a.state is S.CLOSED and b.state is S.CLOSED,  # type: ignore[union-attr]
            max_time=600,
        )
        assert ok, f"close stalled: a {a.state} b {b.state}"  # type: ignore[union-attr]


@pytest.mark.parametrize("seed", [1, 2, 3, 4, 5, 6])
def test_transfer_1mib_each_way_loss_dup_reorder(seed: int) -> None:
    net = established_pair(TcpConfig(msl=1.0), TcpConfig(msl=1.0), **_links(seed))
    pump = Pump(net, _payload(MiB, seed), _payload(MiB, seed + 1))
    pump.run(max_time=900)
    assert net.ab.lost > 0 and net.a.total_retransmits > 0
    pump.close_both()


@pytest.mark.parametrize("seed", [7, 8])
def test_transfer_1mib_each_way_encoded_through_wire(seed: int) -> None:
    # Every segment emitted to bytes and parsed back (checksums verified) on its way.
    net = established_pair(TcpConfig(msl=1.0), TcpConfig(msl=1.0), **_links(seed, encode=True))
    pump = Pump(net, _payload(MiB, seed), _payload(MiB, seed + 100))
    pump.run(max_time=900)
    pump.close_both()


def test_transfer_slow_reader_window_hits_zero_and_recovers() -> None:
    # b reads 4 KiB every 50 ms of virtual time: a's window closes and reopens.
    cfg = TcpConfig(rcv_buf=32768, msl=1.0)
    net = established_pair(cfg, cfg, **_links(11, loss=0.0, duplicate=0.0, reorder=0.0))
    pump = Pump(net, _payload(512 * 1024, 11), b"", chunk=4096, every=0.05)
    pump.run(max_time=60)
    assert pump.saw_zero_window
    # 512 KiB at 4 KiB per 50 ms takes 6.4 s; the reader, not the sender, set the pace.
    assert 6.0 < net.now < 7.5
    pump.close_both()


def test_transfer_slow_reader_on_a_lossy_link() -> None:
    cfg = TcpConfig(rcv_buf=16384, msl=1.0)
    net = established_pair(cfg, cfg, **_links(13))
    pump = Pump(net, _payload(256 * 1024, 12), _payload(64 * 1024, 13), chunk=4096, every=0.05)
    pump.run(max_time=600)
    assert pump.saw_zero_window
    pump.close_both()


def test_transfer_with_jitter_and_window_scaling_off() -> None:
    cfg = TcpConfig(window_scale=None, msl=1.0)
    net = established_pair(cfg, cfg, **_links(21, loss=0.02, jitter=0.01))
    assert net.a.snd_wscale == 0 and net.a.rcv_wscale == 0
    pump = Pump(net, _payload(512 * 1024, 21), _payload(512 * 1024, 22))
    pump.run(max_time=600)
    pump.close_both()
