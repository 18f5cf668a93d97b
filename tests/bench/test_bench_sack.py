"""`netemu bench sack`: SACK's gain for Linux and for netemu on the wire, same impairment.

The gains themselves are the bench's business; this checks that each transfer
delivers every byte through the lossy relay or pipeline, SACK on and off, and
that the figures are put together as documented.
"""

from __future__ import annotations

import asyncio

import pytest

from netemu.bench import sack

MIB = 1 << 20


@pytest.mark.root
@pytest.mark.timeout(120)
@pytest.mark.parametrize(
    "transfer", [sack._kernel_transfer, sack._netemu_transfer], ids=["kernel", "netemu"]
)
@pytest.mark.parametrize("on", [True, False], ids=["sack", "nosack"])
def test_transfer_through_one_percent_loss_completes(transfer, on: bool) -> None:
    # The transfer raises unless the sink got every byte.
    assert asyncio.run(transfer(MIB, on, seed=1)) > 0


def test_gain_is_nosack_time_over_sack_time() -> None:
    times = {True: [1.0, 2.0], False: [3.0, 3.0]}

    async def fake(nbytes: int, on: bool, seed: int) -> float:
        return times[on][seed - 1]

    r = sack._gain("x", fake, MIB, rounds=2)
    assert r == {"x_sack_gain": 2.0, "x_sack_s": 3.0, "x_nosack_s": 6.0}


def test_render_mentions_every_figure() -> None:
    text = sack.render(
        {
            "bytes": 10 * MIB,
            "loss": 0.01,
            "delay_s": 0.001,
            "kernel_sack_gain": 1.7,
            "kernel_sack_s": 6.1,
            "kernel_nosack_s": 10.2,
            "kernel_lab_sack_gain": 6.4,
            "kernel_lab_sack_s": 0.4,
            "kernel_lab_nosack_s": 2.6,
            "wire_sack_gain": 1.5,
            "wire_sack_s": 4.8,
            "wire_nosack_s": 7.3,
            "sack_gain": 1.23,
            "sack_virtual_s": 3.5,
            "nosack_virtual_s": 4.3,
            "ratio_to_kernel": 0.72,
        }
    )
    for figure in ("1%", "1 ms", "1.7", "6.4", "1.5", "1.23", "0.72", "10 MiB"):
        assert figure in text, figure
