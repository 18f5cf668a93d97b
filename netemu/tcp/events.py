"""Events a connection reports to its user (drained with Connection.events()).

Plain (not frozen) dataclasses: one is made per arriving data segment, and a
frozen dataclass costs several times more to build.
"""

from __future__ import annotations

from dataclasses import dataclass

from ..wire.tcp import TcpSegment
from .state import State


@dataclass(slots=True)
class Event:
    pass


@dataclass(slots=True)
class Connected(Event):
    """The handshake completed (we entered ESTABLISHED from a SYN state)."""


@dataclass(slots=True)
class DataReceived(Event):
    """``length`` new in-order bytes are ready for read()."""

    length: int


@dataclass(slots=True)
class PeerClosed(Event):
    """The peer's FIN arrived in order: end of its stream (EOF)."""


@dataclass(slots=True)
class StateChanged(Event):
    old: State
    new: State
    cause: str  # e.g. "recv SYN+ACK", "close()", "timer time-wait"
    segment: TcpSegment | None = None  # the segment that caused it, if any


@dataclass(slots=True)
class ConnectionReset(Event):
    """The peer reset the connection (or refused it, in SYN-SENT)."""

    refused: bool = False


@dataclass(slots=True)
class TimedOut(Event):
    """Retransmissions (or SYN retries, or keepalive probes) ran out; the
    connection is closed."""

    what: str


@dataclass(slots=True)
class Closed(Event):
    """The connection reached CLOSED; nothing more will happen on it."""


@dataclass(slots=True)
class CongestionChanged(Event):
    """cwnd/ssthresh/phase when the phase changes or a congestion event happens
    (for the trace). Not raised per ACK: cwnd grows on every ACK in between."""

    cwnd: int
    ssthresh: int
    phase: str  # "slow-start", "congestion-avoidance", "fast-recovery", "loss"
    cause: str = ""  # e.g. "3 duplicate ACKs", "SACK: segment lost", "timeout", "idle restart"
