"""Ready-made connection states for the TCP endpoint tests.

Two kinds:

* single connections driven by hand live in ``netemu.testing.states``
  (``established()``, ``fin_wait_1()``, ``in_state(State.X)``…): the test plays
  the peer with ``netemu.testing.Driver`` and checks every emitted segment. Our
  ISS is 1000, the peer's 5000: after the handshake SND.NXT = 1001, RCV.NXT = 5001.
* pairs of connections on the in-memory network (``netemu.testing.MemNetwork``),
  a = client 198.18.0.1:40000, b = server 198.18.0.2:80, ISS 1000 and 5000.

Every builder drains the events of the way there, so a test sees only its own.
"""

from __future__ import annotations

import os
import sys

import pytest

from netemu.tcp import State
from netemu.testing import Driver, MemNetwork, established_pair
from netemu.testing.states import SHORT_MSL, established

sys.path.insert(0, os.path.dirname(__file__))  # hostile_episode, hostile_checks


@pytest.fixture
def est() -> Driver:
    return established()


# ------------------------------------------------------------------ pairs on the memnet
def _drain(net: MemNetwork) -> None:
    net.a.events()
    net.b.events()  # type: ignore[union-attr]


@pytest.fixture
def pair() -> MemNetwork:
    """a and b ESTABLISHED (a real three-way handshake on the in-memory wire)."""
    return established_pair(SHORT_MSL, SHORT_MSL)


def pair_fin_wait_1() -> MemNetwork:
    """a called shutdown(): a FIN-WAIT-1, its FIN on the wire; b ESTABLISHED."""
    net = established_pair(SHORT_MSL, SHORT_MSL)
    net.a.shutdown()
    net.settle()
    assert (net.a.state, net.b.state) == (State.FIN_WAIT_1, State.ESTABLISHED)
    _drain(net)
    return net


def pair_fin_wait_2() -> MemNetwork:
    """a FIN-WAIT-2, b CLOSE-WAIT."""
    net = pair_fin_wait_1()
    assert net.run(lambda: net.a.state is State.FIN_WAIT_2, max_time=1)
    net.settle()
    assert net.b.state is State.CLOSE_WAIT
    _drain(net)
    return net


def pair_last_ack() -> MemNetwork:
    """b called close() in CLOSE-WAIT: b LAST-ACK, its FIN on the wire; a FIN-WAIT-2."""
    net = pair_fin_wait_2()
    net.b.close()  # type: ignore[union-attr]
    net.settle()
    assert (net.a.state, net.b.state) == (State.FIN_WAIT_2, State.LAST_ACK)
    _drain(net)
    return net


def pair_time_wait() -> MemNetwork:
    """a TIME-WAIT (2·MSL = 2 s running), b CLOSED."""
    net = pair_last_ack()
    assert net.run(lambda: net.b.state is State.CLOSED, max_time=1)
    assert net.a.state is State.TIME_WAIT
    _drain(net)
    return net


def pair_closing() -> MemNetwork:
    """Both called shutdown() at once; the FINs crossed: a and b CLOSING, the
    ACKs of the FINs on the wire."""
    net = established_pair(SHORT_MSL, SHORT_MSL)
    net.a.shutdown()
    net.b.shutdown()  # type: ignore[union-attr]
    net.settle()
    net.advance(net.ab.delay)
    assert (net.a.state, net.b.state) == (State.CLOSING, State.CLOSING)
    _drain(net)
    return net


@pytest.fixture(name="pair_fin_wait_1")
def _pair_fin_wait_1() -> MemNetwork:
    return pair_fin_wait_1()


@pytest.fixture(name="pair_fin_wait_2")
def _pair_fin_wait_2() -> MemNetwork:
    return pair_fin_wait_2()


@pytest.fixture(name="pair_close_wait")
def _pair_close_wait() -> MemNetwork:
    """The same pair as pair_fin_wait_2, seen from b: b CLOSE-WAIT."""
    return pair_fin_wait_2()


@pytest.fixture(name="pair_last_ack")
def _pair_last_ack() -> MemNetwork:
    return pair_last_ack()


@pytest.fixture(name="pair_time_wait")
def _pair_time_wait() -> MemNetwork:
    return pair_time_wait()


@pytest.fixture(name="pair_closing")
def _pair_closing() -> MemNetwork:
    return pair_closing()
