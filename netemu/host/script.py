"""What a script wants of the host it runs on: the one interface ``Host`` and ``Relay``
consult for it (``host.script``; None: no script, the plain paths).

A script (a scenario's raw connections and ``drop`` steps, a packetdrill run) owns
some of netemu's ports, whose segments the host must leave to it (no RST for them),
and drops some segments on their way in or out. The run layer implements
``ScriptHooks`` (netemu.run.hooks); ``DropRule`` is one scripted drop, which any
program of the user's may also give (``from netemu.host import DropRule``).

Layer: netemu.host; imports the wire codec only.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal, Protocol

from ..wire import TcpSegment

Direction = Literal["out", "in"]  # out: from the host (the relay: client → server)


@dataclass
class DropRule:
    """Drop the next ``count`` frames in ``direction`` whose segment matches."""

    direction: Direction
    match: Callable[[TcpSegment], bool]
    count: int = 1
    dropped: int = 0
    description: str = ""

    def takes(self, direction: Direction, seg: TcpSegment) -> bool:
        """Whether this rule drops ``seg``, going ``direction``; it counts the drop."""
        if self.direction != direction or self.dropped >= self.count or not self.match(seg):
            return False
        self.dropped += 1
        return True


class ScriptHooks(Protocol):
    """What the host asks of the script that runs on it."""

    def owns_port(self, port: int) -> bool:
        """Whether segments to our ``port`` are the script's: no connection of the host's
        answers them, and no RST either (a scripted raw connection's)."""
        ...

    def drops(self, direction: Direction, seg: TcpSegment) -> DropRule | None:
        """The rule that drops ``seg`` going ``direction`` (counted), or None."""
        ...
