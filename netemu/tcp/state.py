"""TCP connection states (RFC 9293 §3.3.2) and the timers of a connection."""

from __future__ import annotations

import enum


class State(enum.Enum):
    """The eleven states of RFC 9293 §3.3.2, valued by their RFC names."""

    LISTEN = "LISTEN"
    SYN_SENT = "SYN-SENT"
    SYN_RECEIVED = "SYN-RECEIVED"
    ESTABLISHED = "ESTABLISHED"
    FIN_WAIT_1 = "FIN-WAIT-1"
    FIN_WAIT_2 = "FIN-WAIT-2"
    CLOSE_WAIT = "CLOSE-WAIT"
    CLOSING = "CLOSING"
    LAST_ACK = "LAST-ACK"
    TIME_WAIT = "TIME-WAIT"
    CLOSED = "CLOSED"

    # States after the handshake has exchanged SYNs (RFC 9293 §3.5.2). A plain
    # attribute of each member, set below: a property took ~0.3 µs a look, and
    # the receive path looks on every other segment.
    synchronized: bool

    def __str__(self) -> str:
        return self.value


for _state in State:
    _state.synchronized = _state not in (State.LISTEN, State.SYN_SENT, State.SYN_RECEIVED,
                                         State.CLOSED)
del _state


# States in which we may still send new data.
SENDING_STATES = frozenset({State.ESTABLISHED, State.CLOSE_WAIT})
# States in which the peer may still send us data (no FIN received yet).
RECEIVING_STATES = frozenset({State.ESTABLISHED, State.FIN_WAIT_1, State.FIN_WAIT_2})
# States in which our FIN has been queued.
FIN_QUEUED_STATES = frozenset({State.FIN_WAIT_1, State.FIN_WAIT_2, State.CLOSING,
                               State.LAST_ACK, State.TIME_WAIT})


class Timer(enum.StrEnum):
    """One deadline each; the connection reports the earliest via next_deadline().

    A StrEnum so that the timers dict, touched on every segment, hashes in C
    (plain Enum members hash in Python)."""

    RETRANSMIT = "retransmit"  # RFC 6298 RTO (also SYN and SYN-ACK retries)
    LOSS_PROBE = "loss-probe"  # RFC 8985 §7 tail loss probe (with SACK)
    PERSIST = "persist"  # zero-window probes (RFC 9293 §3.8.6.1)
    DELAYED_ACK = "delayed-ack"  # RFC 1122 §4.2.3.2
    KEEPALIVE = "keepalive"  # RFC 1122 §4.2.3.6
    TIME_WAIT = "time-wait"  # 2·MSL (RFC 9293 §3.6.1)
    FIN_WAIT_2 = "fin-wait-2"  # Linux tcp_fin_timeout for orphaned connections
