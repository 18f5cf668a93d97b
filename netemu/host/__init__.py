"""netemu.host: one emulated host on a link — the only asyncio code in netemu.

``TcpStream`` and ``TcpListener`` (stream.py, on anyio) are imported on first use
(PEP 562): a packetdrill run drives its connections itself and never opens a stream,
and importing anyio cost it ~4 ms.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from .host import ConnectionRefused, Host, HostError
from .script import DropRule

if TYPE_CHECKING:
    from .stream import TcpListener, TcpStream

__all__ = ["ConnectionRefused", "DropRule", "Host", "HostError", "TcpListener", "TcpStream"]


def __getattr__(name: str) -> Any:
    if name in ("TcpListener", "TcpStream"):
        from . import stream

        value = getattr(stream, name)
        globals()[name] = value
        return value
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
