"""Every combination of the options, through an impaired in-memory wire: byte-exact
both ways, then both ends CLOSED. (A randomized version of this found that an
oversized window shift closed the window for good.)"""

from __future__ import annotations

import itertools
import random

import pytest

from netemu.tcp import State, TcpConfig
from netemu.testing import MemLink, established_pair

COMBOS = list(itertools.product([True, False], [True, False], ["newreno", "cubic"], [True, False]))


@pytest.mark.parametrize(("sack", "timestamps", "cc", "delayed_ack"), COMBOS)
def test_lossy_transfer_with_option_combination(
    sack: bool, timestamps: bool, cc: str, delayed_ack: bool
) -> None:
    seed = COMBOS.index((sack, timestamps, cc, delayed_ack))
    cfg = TcpConfig(
        sack=sack,
        timestamps=timestamps,
        congestion_control=cc,  # type: ignore[arg-type]
        delayed_ack=delayed_ack,
        msl=1.0,
    )
    links = {
        name: MemLink(
            src_ip=src,
            dst_ip=dst,
            loss=0.05,
            duplicate=0.02,
            reorder=0.1,
            encode=seed % 3 == 0,
            rng=random.Random(seed * 2 + k),
        )
        for k, (name, src, dst) in enumerate(
            (("ab", "198.18.0.1", "198.18.0.2"), ("ba", "198.18.0.2", "198.18.0.1"))
        )
    }
    net = established_pair(cfg, TcpConfig(msl=1.0), **links)
    a, b = net.a, net.b
    assert (a.sack_ok, a.ts_ok) == (sack, timestamps)
    data_ab = random.Random(seed).randbytes(200_000)
    data_ba = random.Random(seed + 100).randbytes(60_000)
    sent = {a: 0, b: 0}
    got = {a: bytearray(), b: bytearray()}

    def app(_net: object) -> None:
        for conn, data in ((a, data_ab), (b, data_ba)):
            if sent[conn] < len(data):
                sent[conn] += conn.send(data[sent[conn] :])  # type: ignore[union-attr]
            got[conn] += conn.read()  # type: ignore[union-attr]

    assert net.run(
        lambda: len(got[b]) == len(data_ab) and len(got[a]) == len(data_ba), app=app, max_time=300
    )
    assert bytes(got[b]) == data_ab and bytes(got[a]) == data_ba
    a.close()
    b.close()  # type: ignore[union-attr]
    assert net.run(
        lambda: a.state is State.CLOSED and b.state is State.CLOSED,  # type: ignore[union-attr]
        max_time=300,
    )
