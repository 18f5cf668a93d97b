"""A script's hooks on the host it runs on (``netemu.host.script.ScriptHooks``): the
raw ports it owns and the drop rules it gave, for a scenario (its raw connections and
``drop`` steps, on netemu's endpoint or the relay) and a packetdrill run (its raw
connections). The host consults them through ``host.script``; ``attach`` sets it.

Layer: netemu.run, on netemu.host.
"""

from __future__ import annotations

from typing import Any, Protocol

from ..host.script import Direction, DropRule, ScriptHooks
from ..wire import TcpSegment


class Scripted(Protocol):
    """A host or relay a script runs on."""

    script: ScriptHooks | None


class Hooks:
    """The raw ports (``claim``) and drop rules (``rules``) of one run."""

    def __init__(self) -> None:
        self.raw_ports: set[int] = set()
        self.rules: list[DropRule] = []

    def attach(self, host: Scripted) -> Hooks:
        """Make ``host`` consult these hooks; returns them."""
        host.script = self
        return self

    def claim(self, port: int) -> None:
        """Our ``port`` is a raw connection's: the script sends and expects its segments."""
        self.raw_ports.add(port)

    def owns_port(self, port: int) -> bool:
        return port in self.raw_ports

    def drops(self, direction: Direction, seg: TcpSegment) -> DropRule | None:
        for rule in self.rules:
            if rule.takes(direction, seg):
                return rule
        return None

    def describe(self) -> list[dict[str, Any]]:
        """The rules as a report says them: direction, count, how many they dropped."""
        return [
            {"dir": r.direction, "count": r.count, "dropped": r.dropped, "rule": r.description}
            for r in self.rules
        ]
