"""Segments against expectations: relative numbers, field-by-field matching,
and the one-line descriptions a failed expectation shows."""

from __future__ import annotations

from dataclasses import dataclass

from ..wire import ACK, TcpSegment, flags_str
from .segments import OptionsMatch, SegmentFields

MASK = 0xFFFFFFFF


@dataclass
class Isns:
    """The two initial sequence numbers of a connection, once known."""

    ours: int | None = None
    peers: int | None = None

    def rel(self, seg: TcpSegment, direction: str, relative: bool) -> tuple[int, int]:
        """(seq, ack) of ``seg`` as the scenario sees them."""
        if not relative:
            return seg.seq, seg.ack
        seq_base, ack_base = (
            (self.ours, self.peers) if direction == "out" else (self.peers, self.ours)
        )
        seq = (seg.seq - seq_base) & MASK if seq_base is not None else seg.seq
        ack = (seg.ack - ack_base) & MASK if ack_base is not None else seg.ack
        return seq, ack


def describe(seg: TcpSegment, direction: str, isns: Isns, relative: bool = True) -> str:
    seq, ack = isns.rel(seg, direction, relative)
    arrow = "→" if direction == "out" else "←"
    s = f"{arrow} [{flags_str(seg.flags)}] seq={seq}"
    if seg.flags & ACK:
        s += f" ack={ack}"
    s += f" win={seg.window} len={len(seg.payload)}"
    opts = _options_text(seg)
    return s + (f" <{opts}>" if opts else "")


def _options_text(seg: TcpSegment) -> str:
    parts = []
    if seg.mss is not None:
        parts.append(f"mss {seg.mss}")
    if seg.sack_permitted:
        parts.append("sackOK")
    ts = seg.timestamp
    if ts is not None:
        parts.append(f"TS val {ts.tsval} ecr {ts.tsecr}")
    if seg.wscale is not None:
        parts.append(f"wscale {seg.wscale}")
    if seg.sack_blocks:
        parts.append("sack " + " ".join(f"{a}:{b}" for a, b in seg.sack_blocks))
    return ",".join(parts)


def mismatch(
    fields: SegmentFields, seg: TcpSegment, direction: str, isns: Isns, relative: bool
) -> str | None:
    """None when ``seg`` matches every given field; else the first field that does not."""
    seq, ack = isns.rel(seg, direction, relative)
    if fields.flags is not None and not fields.flags.matches(seg.flags):
        return f"flags {flags_str(seg.flags)} (want {fields.flags})"
    for name, value in (
        ("seq", seq),
        ("ack", ack),
        ("win", seg.window),
        ("len", len(seg.payload)),
        ("urg", seg.urgent),
    ):
        want = getattr(fields, name)
        if want is not None and not want.matches(value):
            return f"{name} {value} (want {want})"
    if fields.data is not None and seg.payload != fields.data.encode():
        return f"data {seg.payload[:40]!r} (want {fields.data[:40]!r})"
    if fields.hex is not None and seg.payload != bytes.fromhex(fields.hex):
        return f"data {seg.payload[:20].hex()} (want {fields.hex[:40]})"
    if fields.options is not None:
        return _options_mismatch(fields.options, seg, isns, direction, relative)
    return None


def _present(want: object, have: object, name: str) -> str | None:
    """The common rule: None any, False absent, True present, else a value check."""
    if want is None:
        return None
    if want is False:
        return None if have is None else f"option {name} present (want absent)"
    if have is None:
        return f"option {name} absent (want present)"
    return None


def _options_mismatch(
    opts: OptionsMatch, seg: TcpSegment, isns: Isns, direction: str, relative: bool
) -> str | None:
    for name, have in (("mss", seg.mss), ("wscale", seg.wscale)):
        want = getattr(opts, name)
        why = _present(want, have, name)
        if why:
            return why
        if want not in (None, True, False) and have is not None and not want.matches(have):
            return f"option {name} {have} (want {want})"
    if opts.sackok is not None and opts.sackok != seg.sack_permitted:
        return f"option sackOK {'present' if seg.sack_permitted else 'absent'}"
    ts = seg.timestamp
    why = _present(opts.ts, ts, "TS")
    if why:
        return why
    if isinstance(opts.ts, tuple) and ts is not None:
        for label, want, have in (
            ("TS val", opts.ts[0], ts.tsval),
            ("TS ecr", opts.ts[1], ts.tsecr),
        ):
            if want is not None and not want.matches(have):
                return f"option {label} {have} (want {want})"
    blocks = seg.sack_blocks or None
    why = _present(opts.sack, blocks, "SACK")
    if why:
        return why
    if isinstance(opts.sack, tuple) and blocks is not None:
        base = isns.ours if direction == "in" else isns.peers
        have_rel = [
            ((a - base) & MASK, (b - base) & MASK) if relative and base is not None else (a, b)
            for a, b in blocks
        ]
        if len(have_rel) != len(opts.sack):
            return f"SACK blocks {have_rel} (want {len(opts.sack)} blocks)"
        for (a, b), (wa, wb) in zip(have_rel, opts.sack, strict=True):
            if (wa is not None and not wa.matches(a)) or (wb is not None and not wb.matches(b)):
                return f"SACK blocks {have_rel}"
    return None
