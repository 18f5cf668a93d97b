"""netemu.tcp: the sans-IO TCP endpoint (RFC 9293 and friends).

No sockets, no asyncio, no wall clock: time comes in as ``now`` arguments.

The names below are imported on first use (PEP 562): ``netemu.tcp.state`` and
``netemu.tcp.config`` (standard library only) are what the scenario format needs, and
importing them must not bring in the whole endpoint and the wire codec with it
(~15 ms of every ``netemu validate``).
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
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

# Each public name -> the module of netemu.tcp that defines it.
_WHERE = {
    "dropped_unread": "arrivals",
    "CongestionControl": "cc",
    "NewReno": "cc",
    "TcpConfig": "config",
    "Connection": "connection",
    "TcpUsageError": "connection",
    "reset_for": "connection",
    "Closed": "events",
    "CongestionChanged": "events",
    "Connected": "events",
    "ConnectionReset": "events",
    "DataReceived": "events",
    "Event": "events",
    "PeerClosed": "events",
    "StateChanged": "events",
    "TimedOut": "events",
    "IsnGenerator": "isn",
    "Listener": "listener",
    "State": "state",
    "Timer": "timers",
}

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


def __getattr__(name: str) -> Any:
    module = _WHERE.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(f"{__name__}.{module}"), name)
    globals()[name] = value  # the next look-up is a plain one
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *_WHERE})
