"""netemu.link: the emulator's wire (AF_PACKET inside the lab's emulator namespace)."""

from .raw import TP_STATUS_CSUMNOTREADY, RawLink, bpf_program

__all__ = ["TP_STATUS_CSUMNOTREADY", "RawLink", "bpf_program"]
