"""netemu.host: one emulated host on a link — the only asyncio code in netemu."""

from .host import ConnectionRefused, Host, HostError
from .script import DropRule
from .stream import TcpListener, TcpStream

__all__ = ["ConnectionRefused", "DropRule", "Host", "HostError", "TcpListener", "TcpStream"]
