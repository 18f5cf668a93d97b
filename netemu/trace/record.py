"""The record of a run, made by the host as things happen and read by the
pcap writer, the ladder and the reports. Times are seconds on the host's clock
(time.monotonic()); ``Trace.start_wall`` maps them to wall-clock time for pcap.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Literal

Direction = Literal["out", "in"]  # out: emulator → wire; in: wire → emulator


@dataclass(slots=True)
class FrameRecord:
    """One frame on the wire, exact bytes, as seen by the emulator."""

    t: float
    direction: Direction
    data: bytes
    # "dropped": an impairment or scripted drop kept it off the wire (or from us);
    # "injected": a scenario crafted it; "bad-checksum", "malformed": why we ignored it.
    mark: str | None = None
    note: str | None = None


@dataclass(slots=True)
class StateRecord:
    """A state change of one of our connections (from its StateChanged event)."""

    t: float
    conn: str  # connection name ("c1", or the scenario's name for it)
    local: tuple[str, int]
    remote: tuple[str, int]
    old: str
    new: str
    cause: str
    # Guessed rather than seen (``netemu show``): a capture that starts mid-connection,
    # roles taken from the ports, a FIN taken as received from the ACK that acks it.
    inferred: bool = False


@dataclass(slots=True)
class CongestionRecord:
    """cwnd, ssthresh and the congestion phase of one of our connections, from its
    CongestionChanged event: the connection reports a phase change or a congestion
    event (never one per ACK). ``ssthresh`` is 0x7FFFFFFF until the first
    congestion event ("arbitrarily high", RFC 5681 §3.1)."""

    t: float
    conn: str
    local: tuple[str, int]
    remote: tuple[str, int]
    cwnd: int
    ssthresh: int
    phase: str  # "slow-start", "congestion-avoidance", "fast-recovery", "loss"
    cause: str  # "3 duplicate ACKs", "recovered", "ssthresh reached", "timeout", …


@dataclass(slots=True)
class PeerStateRecord:
    """A state change of a peer kernel's socket. ``source``: "kernel" (its
    inet_sock_set_state tracepoint, timed when it happened), "poll" (a sock_diag dump
    that found it changed: late, and a short state can be missed) or "inferred" (from
    the packets alone, for .pkt runs)."""

    t: float
    local: tuple[str, int]  # the peer's address
    remote: tuple[str, int]
    state: str
    info: dict = field(default_factory=dict)
    old: str = ""
    source: str = "poll"


@dataclass(slots=True)
class PeerCongestionRecord:
    """A peer kernel socket's congestion figures, when cwnd, ssthresh or its congestion
    state changed (tcp_probe: per segment it receives; tcp_cong_state_set). ``srtt_us``
    is the smoothed RTT in microseconds; ``ca_state``: open, disorder, cwr, recovery,
    loss (the kernel's TCP_CA_* states)."""

    t: float
    role: str
    local: tuple[str, int]
    remote: tuple[str, int]
    cwnd: int
    ssthresh: int
    srtt_us: int
    ca_state: str
    cause: str
    info: dict = field(default_factory=dict)


@dataclass(slots=True)
class PeerEventRecord:
    """Something a peer kernel did to a socket, from its tracepoints: "retransmit"
    (tcp_retransmit_skb), "send_reset" (tcp_send_reset, with the kernel's reason),
    "receive_reset" (tcp_receive_reset)."""

    t: float
    role: str
    local: tuple[str, int]
    remote: tuple[str, int]
    kind: str
    detail: str = ""


@dataclass(slots=True)
class NoteRecord:
    """Anything else worth a line in the ladder: step started, expectation failed…"""

    t: float
    text: str
    kind: str = "note"  # "step", "pass", "fail", "note"
    # The connection it is about (its two endpoints), when it is about one: it goes
    # under that connection's heading only (conv.NotePlacement).
    endpoints: tuple[tuple[str, int], tuple[str, int]] | None = None


@dataclass
class Trace:
    start: float = field(default_factory=time.monotonic)
    start_wall: float = field(default_factory=time.time)
    emulator_ip: str = ""
    peer_ip: str = ""
    states: list[StateRecord] = field(default_factory=list)
    congestion: list[CongestionRecord] = field(default_factory=list)
    peer_states: list[PeerStateRecord] = field(default_factory=list)
    peer_congestion: list[PeerCongestionRecord] = field(default_factory=list)
    peer_events: list[PeerEventRecord] = field(default_factory=list)
    # Where peer_states came from: "kernel", "poll", "inferred" or "" (no peer); the
    # note says why when it is not "kernel".
    peer_source: str = ""
    peer_source_note: str = ""
    peer_trace_instance: str = ""  # the tracefs instance read ("kernel")
    notes: list[NoteRecord] = field(default_factory=list)
    # Frames a capture reader found no TCP segment in (``netemu show``: another link
    # type, a tunnel's other traffic, a later fragment), by index into ``frames``, and
    # why; their ``data`` is as captured on Ethernet, else empty. A run's frames are
    # all Ethernet: none here.
    skipped: dict[int, str] = field(default_factory=dict)
    # Frames as recorded: FrameRecord's five fields in a row in one flat list, for
    # ``frames`` to make records of when read. A FrameRecord per frame cost every
    # collection a scan of it (~140k of them after a 64 MiB transfer each way: ~5 %
    # of the receive path), and even a tuple per frame is a young object the
    # collector must see once; floats, strings and bytes in a list it never scans.
    _recorded: list = field(default_factory=list, init=False, repr=False)
    _frames: list[FrameRecord] = field(default_factory=list, init=False, repr=False)

    @property
    def frames(self) -> list[FrameRecord]:
        """Every frame so far, in order. The list does not grow by itself as frames
        are recorded: read the property again to see the later ones."""
        recorded = self._recorded
        if recorded:
            self._frames += [FrameRecord(*recorded[i : i + 5]) for i in range(0, len(recorded), 5)]
            recorded.clear()
        return self._frames

    @frames.setter
    def frames(self, records: list[FrameRecord]) -> None:
        self._recorded.clear()
        self._frames = records

    def wall(self, t: float) -> float:
        return self.start_wall + (t - self.start)

    def frame(
        self,
        direction: Direction,
        data: bytes,
        mark: str | None = None,
        note: str | None = None,
        t: float | None = None,
    ) -> None:
        self._recorded += (time.monotonic() if t is None else t, direction, bytes(data), mark, note)

    def frame_batch(
        self,
        direction: Direction,
        frames: list[bytes],
        mark: str | None = None,
        note: str | None = None,
        t: float | None = None,
    ) -> None:
        """``frame`` for each of ``frames``, all at the time ``t``."""
        t = time.monotonic() if t is None else t
        recorded = self._recorded
        for data in frames:
            recorded += (t, direction, bytes(data), mark, note)

    def record_count(self) -> int:
        """A position in the record (for ``retime_in``)."""
        return len(self._recorded) // 5 + len(self._frames)

    def retime_in(self, since: int, times: list[float | None]) -> None:
        """Give the "in" frames recorded since ``record_count()`` was ``since`` these
        times, in order (None: keep it): when the kernel took each in, read later."""
        recorded = self._recorded
        it = iter(times)
        for f in self._frames[since:]:  # (had ``frames`` made records of them meanwhile)
            if f.direction == "in":
                t = next(it, None)
                if t is not None:
                    f.t = t
        start = 5 * max(0, since - len(self._frames))
        for i in range(start, len(recorded), 5):
            if recorded[i + 1] == "in":
                t = next(it, None)
                if t is not None:
                    recorded[i] = t

    def frames_from_another_thread(self) -> list[tuple[float, str, bytes, str | None]]:
        """(t, direction, data, mark) of every frame so far, read without changing the
        record (``frames`` converts it): the flat records are copied before the frames
        made from them, so one moved between the two copies is seen twice, never lost."""
        recorded = list(self._recorded)
        made = list(self._frames)
        out: list[tuple[float, str, bytes, str | None]] = [
            (f.t, f.direction, f.data, f.mark) for f in made
        ]
        out += [
            (recorded[i], recorded[i + 1], recorded[i + 2], recorded[i + 3])
            for i in range(0, len(recorded) - 4, 5)
        ]
        return out

    def note(self, text: str, kind: str = "note") -> None:
        self.notes.append(NoteRecord(time.monotonic(), text, kind))
