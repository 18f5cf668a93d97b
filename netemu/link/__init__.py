"""netemu.link: the emulator's wire (AF_PACKET inside the lab's emulator namespace).

Layer rule: imports only the leaf ``netemu.linux`` (libc, namespace switching); never
``netemu.lab``, which opens links through it.
"""

from .raw import TP_STATUS_CSUMNOTREADY, RawLink, bpf_program

__all__ = ["TP_STATUS_CSUMNOTREADY", "RawLink", "bpf_program"]
