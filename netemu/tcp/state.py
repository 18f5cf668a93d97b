"""Everything that decides which state a connection may enter (RFC 9293 §3.3.2).

Like h11's ``_state.py``: the states, and the one table of legal changes. Each
edge is keyed by the state it leaves and the kind of event that takes it (a
segment arriving, a timer firing, a user call); ``Connection._set_state`` checks
every change against it, and the hostile-segment tests read the same table.

Layer rule: imports nothing from the rest of netemu.tcp.
"""

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

    _value_: str
    # States after the handshake has exchanged SYNs (RFC 9293 §3.5.2). A plain
    # attribute of each member, set below: a property took ~0.3 µs a look, and
    # the receive path looks on every other segment.
    synchronized: bool

    def __str__(self) -> str:
        return self._value_


for _state in State:
    _state.synchronized = _state not in (
        State.LISTEN,
        State.SYN_SENT,
        State.SYN_RECEIVED,
        State.CLOSED,
    )
del _state


# States in which the peer may still send us data (no FIN received yet).
RECEIVING_STATES = frozenset({State.ESTABLISHED, State.FIN_WAIT_1, State.FIN_WAIT_2})


class Cause(enum.Enum):
    """What kind of event changes a state."""

    SEGMENT = "segment"  # SEGMENT ARRIVES (RFC 9293 §3.10.7)
    TIMER = "timer"  # USER TIMEOUT, RETRANSMISSION TIMEOUT, TIME-WAIT TIMEOUT (§3.10.8)
    API = "api"  # OPEN, SEND, CLOSE, ABORT (§3.10.1-5)


class TransitionError(RuntimeError):
    """An internal error: a state change that is no edge of TRANSITIONS."""


_S = State
_SEG, _TIMER, _API = Cause.SEGMENT, Cause.TIMER, Cause.API
_ANY = (_SEG, _TIMER, _API)

# The edges of RFC 9293 Figure 5, as (state left, kind of cause) -> states entered.
# CLOSED stands for "delete the TCB" too, and for a passive SYN-RECEIVED's "return
# to LISTEN" (the listener forgets it). Edges beyond the figure: §3.10.7.3
# (SYN-SENT: a RST with an acceptable ACK), §3.10.7.4 (a RST in any synchronized
# state, FIN-WAIT-1's FIN with the ACK of ours to TIME-WAIT at once, SYN-RECEIVED's
# FIN to CLOSE-WAIT, a CLOSE queued in SYN-RECEIVED done on ESTABLISHED), §3.10.4-5
# (CLOSE and ABORT), §3.8.3 and RFC 1122 §4.2.3.5-6 (retransmissions and
# keepalives running out), Linux's fin_timeout, and RFC 2525 §2.17 / Linux: data
# for a closed reader is answered with RST (an abort, on a segment).
_EDGES: tuple[tuple[State, State, tuple[Cause, ...]], ...] = (
    (_S.CLOSED, _S.SYN_SENT, (_API,)),
    (_S.LISTEN, _S.SYN_RECEIVED, (_SEG,)),
    (_S.SYN_SENT, _S.SYN_RECEIVED, (_SEG,)),
    (_S.SYN_SENT, _S.ESTABLISHED, (_SEG,)),
    (_S.SYN_SENT, _S.CLOSED, _ANY),
    (_S.SYN_RECEIVED, _S.ESTABLISHED, (_SEG,)),
    (_S.SYN_RECEIVED, _S.FIN_WAIT_1, (_API,)),
    (_S.SYN_RECEIVED, _S.CLOSE_WAIT, (_SEG,)),
    (_S.SYN_RECEIVED, _S.CLOSED, _ANY),
    (_S.ESTABLISHED, _S.FIN_WAIT_1, (_API, _SEG)),  # SEG: the CLOSE queued in SYN-RECEIVED
    (_S.ESTABLISHED, _S.CLOSE_WAIT, (_SEG,)),
    (_S.ESTABLISHED, _S.CLOSED, _ANY),
    (_S.FIN_WAIT_1, _S.FIN_WAIT_2, (_SEG,)),
    (_S.FIN_WAIT_1, _S.CLOSING, (_SEG,)),
    (_S.FIN_WAIT_1, _S.TIME_WAIT, (_SEG,)),
    (_S.FIN_WAIT_1, _S.CLOSED, _ANY),
    (_S.FIN_WAIT_2, _S.TIME_WAIT, (_SEG,)),
    (_S.FIN_WAIT_2, _S.CLOSED, _ANY),
    (_S.CLOSE_WAIT, _S.LAST_ACK, (_API,)),
    (_S.CLOSE_WAIT, _S.CLOSED, _ANY),
    (_S.CLOSING, _S.TIME_WAIT, (_SEG,)),
    (_S.CLOSING, _S.CLOSED, _ANY),
    (_S.LAST_ACK, _S.CLOSED, _ANY),
    (_S.TIME_WAIT, _S.CLOSED, _ANY),
)


def _table() -> dict[tuple[State, Cause], frozenset[State]]:
    table: dict[tuple[State, Cause], set[State]] = {}
    for old, new, causes in _EDGES:
        for cause in causes:
            table.setdefault((old, cause), set()).add(new)
    return {key: frozenset(news) for key, news in table.items()}


TRANSITIONS: dict[tuple[State, Cause], frozenset[State]] = _table()


def check_transition(old: State, new: State, cause: Cause) -> None:
    """Raise TransitionError unless ``old`` -> ``new`` is an edge for ``cause``."""
    if new not in TRANSITIONS.get((old, cause), ()):
        raise TransitionError(f"{old} -> {new} on a {cause.value}: no RFC 9293 edge")
