"""Hand-built traces for the trace layer's tests (no root, no lab)."""

from __future__ import annotations

import pytest

from netemu.trace import FrameRecord, NoteRecord, PeerStateRecord, StateRecord, Trace
from netemu.wire import ArpPacket, IPv4Packet, TcpSegment, build_tcp_frame
from netemu.wire.ethernet import ETHERTYPE_ARP, EthernetFrame
from netemu.wire.tcp import MssOption, NopOption, SackPermittedOption, WindowScaleOption

EMU = ("198.18.0.1", 40000)
PEER = ("198.18.0.2", 8080)
EMU_MAC = "02:00:00:00:00:01"
PEER_MAC = "02:00:00:00:00:02"
ISN_EMU = 1000
ISN_PEER = 5000
SYN_OPTS = (MssOption(1460), NopOption(), WindowScaleOption(7), SackPermittedOption())


class Builder:
    """Appends frames to a trace: ``b.out(t, "S", seq, ack)`` for emulator → peer."""

    def __init__(self, emu: tuple[str, int] = EMU, peer: tuple[str, int] = PEER) -> None:
        self.trace = Trace(
            start=100.0, start_wall=1_700_000_000.0, emulator_ip=emu[0], peer_ip=peer[0]
        )
        self.emu, self.peer = emu, peer

    def seg(
        self,
        src: tuple[str, int],
        dst: tuple[str, int],
        flags: str,
        seq: int,
        ack: int = 0,
        payload: bytes = b"",
        win: int | None = None,
        options: tuple = (),
    ) -> bytes:
        bits = {"S": 0x02, "F": 0x01, "R": 0x04, "P": 0x08, "A": 0x10}
        fl = 0
        for c in flags:
            fl |= bits[c]
        if win is None:  # Linux-like: 64240 in a SYN, then 502 << 7 (wscale 7)
            win = 64240 if "S" in flags else 502
        smac, dmac = (EMU_MAC, PEER_MAC) if src == self.emu else (PEER_MAC, EMU_MAC)
        return build_tcp_frame(
            smac,
            dmac,
            IPv4Packet(src[0], dst[0], 6),
            TcpSegment(src[1], dst[1], seq, ack, fl, win, payload, options),
        )

    def out(
        self,
        t: float,
        flags: str,
        seq: int,
        ack: int = 0,
        payload: bytes = b"",
        mark: str | None = None,
        note: str | None = None,
        **kw,
    ) -> None:
        data = self.seg(self.emu, self.peer, flags, seq, ack, payload, **kw)
        self.trace.frames.append(FrameRecord(100.0 + t, "out", data, mark, note))

    def inn(
        self,
        t: float,
        flags: str,
        seq: int,
        ack: int = 0,
        payload: bytes = b"",
        mark: str | None = None,
        note: str | None = None,
        **kw,
    ) -> None:
        data = self.seg(self.peer, self.emu, flags, seq, ack, payload, **kw)
        self.trace.frames.append(FrameRecord(100.0 + t, "in", data, mark, note))

    def state(self, t: float, old: str, new: str, cause: str) -> None:
        self.trace.states.append(StateRecord(100.0 + t, "c1", self.emu, self.peer, old, new, cause))

    def peer_state(self, t: float, state: str, remote: tuple[str, int] | None = None) -> None:
        self.trace.peer_states.append(
            PeerStateRecord(100.0 + t, self.peer, remote or self.emu, state)
        )

    def note(self, t: float, text: str, kind: str = "step") -> None:
        self.trace.notes.append(NoteRecord(100.0 + t, text, kind))

    def arp(self, t: float) -> None:
        arp = ArpPacket(1, PEER_MAC, self.peer[0], "00:00:00:00:00:00", self.emu[0])
        data = EthernetFrame("ff:ff:ff:ff:ff:ff", PEER_MAC, ETHERTYPE_ARP, arp.emit()).emit()
        self.trace.frames.append(FrameRecord(100.0 + t, "in", data + b"\0" * 18))


def full_conversation() -> Builder:
    """Handshake, data (one segment dropped, then retransmitted), an injected
    out-of-window ACK and the peer's answer, our active close to TIME-WAIT."""
    b = Builder()
    e, p = ISN_EMU, ISN_PEER
    b.peer_state(0.0, "LISTEN", ("0.0.0.0", 0))
    b.note(0.0, "connect")
    b.state(0.0005, "CLOSED", "SYN-SENT", "connect()")
    b.arp(0.0007)
    b.out(0.001, "S", e, options=SYN_OPTS)
    b.inn(0.003, "SA", p, e + 1, win=65160, options=SYN_OPTS)
    b.state(0.0031, "SYN-SENT", "ESTABLISHED", "recv SYN+ACK")
    b.out(0.004, "A", e + 1, p + 1)
    b.peer_state(0.005, "ESTABLISHED")
    b.note(0.010, 'send "hello"')
    b.out(0.011, "PA", e + 1, p + 1, b"hello", mark="dropped")
    b.out(0.211, "PA", e + 1, p + 1, b"hello", note="retransmission")
    b.inn(0.212, "A", p + 1, e + 6, win=509)
    b.inn(0.220, "PA", p + 1, e + 6, b"world!", win=509)
    b.out(0.221, "A", e + 6, p + 7)
    b.note(0.300, "inject an out-of-window ACK")
    b.out(0.301, "A", e + 100006, p + 7, mark="injected")
    b.inn(0.302, "A", p + 7, e + 6, win=509, note="challenge ACK")
    b.note(0.400, "close")
    b.state(0.4005, "ESTABLISHED", "FIN-WAIT-1", "close()")
    b.out(0.401, "FA", e + 6, p + 7)
    b.inn(0.402, "A", p + 7, e + 7, win=509)
    b.state(0.4021, "FIN-WAIT-1", "FIN-WAIT-2", "recv ACK")
    b.peer_state(0.405, "CLOSE_WAIT")
    b.peer_state(0.406, "CLOSE_WAIT")  # the poller saw it twice
    b.peer_state(0.499, "LAST_ACK")
    b.inn(0.500, "FA", p + 7, e + 7, win=509)
    b.state(0.5001, "FIN-WAIT-2", "TIME-WAIT", "recv FIN+ACK")
    b.out(0.501, "A", e + 7, p + 8)
    b.peer_state(0.510, "CLOSE")
    b.note(0.600, "expect peer CLOSED", "pass")
    b.state(1.501, "TIME-WAIT", "CLOSED", "timer time-wait")
    return b


@pytest.fixture
def builder() -> type[Builder]:
    return Builder


@pytest.fixture
def full_trace() -> Trace:
    return full_conversation().trace
