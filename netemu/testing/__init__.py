"""Virtual time and an in-memory network for sans-IO connections.

Used by the tests and by ``netemu bench core``: two ``Connection``s joined by an
impairable link (seeded loss, duplication, reordering, delay), pumped on a
virtual clock, optionally with every segment encoded to bytes and parsed back
through ``netemu.wire`` on its way. ``Driver`` drives a single connection with
hand-made segments (the test plays the peer).

Layer rule: a consumer of ``netemu.tcp``, ``netemu.wire`` and ``netemu.host``; nothing
in netemu's run path imports it (only the tests and ``netemu.bench``).
"""

from .driver import Driver, brief
from .memnet import MemLink, MemNetwork, VirtualClock, established_pair

__all__ = ["Driver", "MemLink", "MemNetwork", "VirtualClock", "brief", "established_pair"]
