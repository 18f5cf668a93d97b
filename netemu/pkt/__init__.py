"""netemu.pkt: packetdrill scripts (``.pkt``) on netemu's lab.

``load_pkt(path)`` parses and checks a script (``PktError`` with ``file:line:col``
for every problem, unsupported calls and options included); ``run_pkt`` (in
``netemu.pkt.session``) runs it against the lab's kernel; ``to_yaml`` (in
``netemu.pkt.convert``) writes the equivalent YAML scenario. See docs/packetdrill.md.
"""

from .load import PktScript, load_pkt, load_pkt_text
from .parser import PktError

__all__ = ["PktError", "PktScript", "load_pkt", "load_pkt_text"]
