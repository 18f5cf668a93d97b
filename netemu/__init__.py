"""netemu: an asyncio network emulator for Linux.

A sans-IO TCP endpoint (``netemu.tcp``) on a real wire (``netemu.link``) inside
lab namespaces (``netemu.lab``), scripted by YAML scenarios against real peers.
"""

__version__ = "0.1.0"
