"""netemu.trace: what happened in a run — the record, pcap, ladder, reports."""

from .record import FrameRecord, NoteRecord, PeerStateRecord, StateRecord, Trace

__all__ = ["FrameRecord", "NoteRecord", "PeerStateRecord", "StateRecord", "Trace"]
