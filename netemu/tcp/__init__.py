"""netemu.tcp: the sans-IO TCP endpoint (RFC 9293 and friends).

No sockets, no asyncio, no wall clock: time comes in as ``now`` arguments.
"""

from .arrivals import dropped_unread
from .cc import CongestionControl, NewReno
from .config import TcpConfig
from .connection import Connection, TcpUsageError, reset_for
from .events import (
    Closed,
    CongestionChanged,
    Connected,
    ConnectionReset,
    DataReceived,
    Event,
    PeerClosed,
    StateChanged,
    TimedOut,
)
from .isn import IsnGenerator
from .listener import Listener
from .state import State
from .timers import Timer

__all__ = [
    "Closed",
    "CongestionChanged",
    "CongestionControl",
    "Connected",
    "Connection",
    "ConnectionReset",
    "DataReceived",
    "Event",
    "IsnGenerator",
    "Listener",
    "NewReno",
    "PeerClosed",
    "State",
    "StateChanged",
    "TcpConfig",
    "TcpUsageError",
    "TimedOut",
    "Timer",
    "dropped_unread",
    "reset_for",
]
