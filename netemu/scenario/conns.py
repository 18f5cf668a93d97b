"""What a scenario's steps know of its connections (``ConnCtx``: netemu's end, its
ports, both ISNs, the trace cursors of its wire steps), how a frame of the trace is
read (``segment_of``, ``checksums_good``), and how a step is written for the
terminal and the ladder (``step_text``). Layer: netemu.scenario."""

from __future__ import annotations

from dataclasses import dataclass, field

from ..host import TcpStream
from ..tcp import Connection, State
from ..trace.record import Trace
from ..wire import TcpSegment, parse_frame
from . import schema as S
from .match import Isns


@dataclass
class ConnCtx:
    name: str
    raw: bool = False
    conn: Connection | None = None
    stream: TcpStream | None = None
    local_port: int | None = None
    peer_port: int | None = None
    isns: Isns = field(default_factory=Isns)
    peer_sock: int | None = None  # the kernel agent's socket for the peer's end
    cursor: dict[str, int] = field(default_factory=lambda: {"in": 0, "out": 0})

    def owns(self, seg: TcpSegment, direction: str) -> bool:
        if self.local_port is None:
            return True
        if direction == "out":
            return seg.src_port == self.local_port and (
                self.peer_port is None or seg.dst_port == self.peer_port
            )
        return seg.dst_port == self.local_port and (
            self.peer_port is None or seg.src_port == self.peer_port
        )

    def learn_isns(self, trace: Trace) -> None:
        if self.conn is not None:
            self.isns.ours = self.conn.iss
            if self.conn.state not in (State.SYN_SENT, State.CLOSED) or self.conn.irs:
                self.isns.peers = self.conn.irs
        if self.isns.peers is None:  # raw, or not yet known: the peer's SYN tells
            for f in trace.frames:
                if f.direction != "in":
                    continue
                seg = segment_of(f.data)
                if seg is not None and seg.flags & 0x02 and self.owns(seg, "in"):
                    self.isns.peers = seg.seq
                    break


def segment_of(data: bytes) -> TcpSegment | None:
    try:
        return parse_frame(data, verify=False).tcp
    except ValueError:
        return None


def checksums_good(data: bytes) -> bool:
    try:
        parse_frame(data, verify=True)
    except ValueError:  # BadChecksum, MalformedPacket
        return False
    return True


def step_text(step: S.StepBase) -> str:
    """A short human description of a step, for the terminal and the ladder."""
    data = step.model_dump(
        exclude_none=True,
        exclude_defaults=True,
        by_alias=True,
        exclude={"note", "timeout", "peer", "relative", "conn"},
    )
    if getattr(step, "within", None) is not None and "within" not in step.model_fields_set:
        data.pop("within", None)  # filled in from the scenario's default, not written
    parts = []
    for k, v in data.items():
        if isinstance(v, dict):
            inner = ", ".join(
                f"{a}: {_label(b)}" for a, b in v.items() if b not in (None, {}, True)
            )
            parts.append(f"{k}" + (f" {{{inner}}}" if inner else ""))
        else:
            parts.append(f"{k}={_label(v)}")
    return f"{step.ACTION} {', '.join(parts)}".strip()


def _label(v: object) -> str:
    """A value as a step's label shows it: floats rounded (0.7, not
    0.7000000000000001), control characters escaped (a label is one line)."""
    if isinstance(v, float):
        text = f"{v:.9g}"
    else:
        text = str(v)
    return text.encode("unicode_escape").decode("ascii") if not text.isprintable() else text
