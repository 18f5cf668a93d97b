"""Events a connection reports to its user (drained with Connection.events())."""

from __future__ import annotations

from dataclasses import dataclass

from ..wire.tcp import TcpSegment
from .state import State


@dataclass(slots=True, frozen=True)
class Event:
    pass


@dataclass(slots=True, frozen=True)
class Connected(Event):
    """The handshake completed (we entered ESTABLISHED from a SYN state)."""


@dataclass(slots=True, frozen=True)
class DataReceived(Event):
    """``length`` new in-order bytes are ready for read()."""

    length: int


@dataclass(slots=True, frozen=True)
class PeerClosed(Event):
    """The peer's FIN arrived in order: end of its stream (EOF)."""


@dataclass(slots=True, frozen=True)
class StateChanged(Event):
    old: State
    new: State
    cause: str  # e.g. "recv SYN+ACK", "close()", "timer time-wait"
    segment: TcpSegment | None = None  # the segment that caused it, if any


@dataclass(slots=True, frozen=True)
class ConnectionReset(Event):
    """The peer reset the connection (or refused it, in SYN-SENT)."""

    refused: bool = False


@dataclass(slots=True, frozen=True)
class TimedOut(Event):
    """Retransmissions (or SYN retries) ran out; the connection is closed."""

    what: str


@dataclass(slots=True, frozen=True)
class Closed(Event):
    """The connection reached CLOSED; nothing more will happen on it."""


@dataclass(slots=True, frozen=True)
class CongestionChanged(Event):
    """cwnd/ssthresh/phase after a congestion event (for the trace)."""

    cwnd: int
    ssthresh: int
    phase: str  # "slow-start", "congestion-avoidance", "fast-recovery", "loss"
