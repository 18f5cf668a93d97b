"""Hostile segments into every TCP state (issue 17): the rules the fuzz found
broken, one test each, named after the rule."""

from __future__ import annotations

from netemu.tcp import Closed, State
from netemu.testing import Driver
from netemu.testing.states import PEER_ISS, established
from netemu.wire.tcp import ACK, RST


# ------------------------------------------------------------------ what the fuzz found
def test_rfc9293_3_10_4_close_in_closed_state_reports_nothing() -> None:
    # RFC 9293 §3.10.4, CLOSE: "CLOSED STATE (i.e., TCB does not exist) ... return
    # "error: connection does not exist"". A connection reset (or never opened)
    # that is closed again sends nothing and reports no second Closed (it did).
    d = established()
    d.receive(d.seg(RST | ACK, PEER_ISS + 1, 1001))
    assert d.conn.state is State.CLOSED
    assert sum(isinstance(e, Closed) for e in d.take_events()) == 1
    for call in (d.conn.close, d.conn.shutdown, d.conn.abort):
        call()
        assert d.flush() == []
        assert d.take_events() == []
    fresh = Driver.client()
    fresh.conn.close()
    fresh.conn.shutdown()
    assert fresh.flush() == [] and fresh.take_events() == []
