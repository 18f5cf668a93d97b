"""The wire-level steps: ``Drop``, ``Inject`` (with the TCP options of a crafted
segment, ``TcpOptionSpec``), ``ExpectSegment`` and ``ExpectNoSegment``, and the
field-by-field segment match they share (``SegmentFields``, ``OptionsMatch``).

Layer rule: builds on ``scenario.fields`` and ``scenario.steps``.
"""

# No `from __future__ import annotations` here: pydantic would evaluate every field's
# annotation from its string, compiling each (~6 ms of every `netemu run`).
from dataclasses import dataclass
from typing import Annotated, Any, ClassVar, Self

from pydantic import ConfigDict, Field, model_validator

from . import units
from .fields import (
    BOOL,
    STR,
    AnyInt,
    Count,
    Dir,
    Duration,
    Flags,
    FlagsPattern,
    Hex,
    IntPattern,
    PositiveDuration,
    Strict,
    exactly_one,
    fail,
    int_in,
    typed,
)
from .steps import ConnMixin, Fields, PayloadMixin, StepBase, WithinMixin
from .units import IntMatch, UnitError, did_you_mean, show

# TCP options: in crafted segments (a list, in order) and in expectations.

_OPT_NAMES = ("mss", "wscale", "sackok", "ts", "sack", "nop", "eol", "raw")
_U32 = (0, 2**32 - 1)


@dataclass(frozen=True, slots=True)
class TcpOptionSpec:
    """One TCP option to put in a crafted segment. ``value``: mss/wscale an int; ts
    (tsval, tsecr); sack ((left, right), ...) (relative when the step is); raw
    (kind, bytes); None for sackok, nop, eol."""

    kind: str
    value: Any = None


def _int_arg(name: str, v: Any, lo: int, hi: int) -> int:
    if isinstance(v, bool) or not isinstance(v, int):
        raise UnitError(f"{name}: expected a number, got {show(v)}")
    if not lo <= v <= hi:
        raise UnitError(f"{name}: {v} is out of range ({lo}-{hi})")
    return v


def _parse_option(item: Any) -> TcpOptionSpec:
    if isinstance(item, str):
        name, value = item, None
    elif isinstance(item, dict) and len(item) == 1:
        name, value = next(iter(item.items()))
    else:
        raise UnitError(
            f"a TCP option is a name (nop, eol, sackok) or a one-key mapping "
            f"such as {{mss: 1460}}, got {show(item)}"
        )
    if name not in _OPT_NAMES:
        raise UnitError(
            f"unknown TCP option {show(name)}{did_you_mean(str(name), _OPT_NAMES)}"
            f" (known: {', '.join(_OPT_NAMES)})"
        )
    if name in ("nop", "eol", "sackok"):
        if value not in (None, True):
            raise UnitError(f"{name} takes no value, got {show(value)}")
        return TcpOptionSpec(name)
    if value is None:
        raise UnitError(f"{name} needs a value, e.g. {{{name}: ...}}")
    if name == "mss":
        return TcpOptionSpec(name, _int_arg(name, value, 0, 65535))
    if name == "wscale":
        return TcpOptionSpec(name, _int_arg(name, value, 0, 255))
    if name == "ts":
        if not isinstance(value, list) or len(value) != 2:
            raise UnitError(f"ts: expected [tsval, tsecr], got {show(value)}")
        return TcpOptionSpec(name, tuple(_int_arg("ts", v, *_U32) for v in value))
    if name == "sack":
        blocks = value if isinstance(value, list) else None
        if (
            not blocks
            or len(blocks) > 4
            or not all(isinstance(b, list) and len(b) == 2 for b in blocks)
        ):
            raise UnitError(f"sack: expected 1 to 4 [left, right] blocks, got {show(value)}")
        return TcpOptionSpec(
            name, tuple(tuple(_int_arg("sack", v, -(2**32), 2**32 - 1) for v in b) for b in blocks)
        )
    # raw: {kind: N, hex: "..."}
    if not isinstance(value, dict) or set(value) - {"kind", "hex"} or "kind" not in value:
        raise UnitError(f"raw: expected {{kind: N, hex: '...'}}, got {show(value)}")
    return TcpOptionSpec(
        name,
        (
            _int_arg("raw kind", value["kind"], 0, 255),
            bytes.fromhex(units.parse_hex(value.get("hex", ""))),
        ),
    )


def _parse_options_list(value: Any) -> tuple[TcpOptionSpec, ...]:
    if isinstance(value, dict):  # {mss: 1460, sackok: true}: in the order written
        value = [
            k if v is True and k in ("nop", "eol", "sackok") else {k: v} for k, v in value.items()
        ]
    if not isinstance(value, list):
        raise UnitError(
            f"expected a list of TCP options such as [{{mss: 1460}}, sackok], got {show(value)}"
        )
    out = []
    size = 0
    for i, item in enumerate(value):
        try:
            opt = _parse_option(item)
        except UnitError as e:
            raise fail(str(e), i) from None
        size += _option_size(opt)
        if size > _MAX_OPTION_BYTES:  # the run failed building the segment
            raise fail(
                f"the TCP options take {size} bytes up to this one, more than "
                f"{_MAX_OPTION_BYTES} (a TCP header holds 40 bytes of options)",
                i,
            )
        out.append(opt)
    return tuple(out)


_MAX_OPTION_BYTES = 40  # netemu.wire.tcp.MAX_OPTIONS_LEN: 60 bytes of header less 20
_FIXED_SIZE = {"mss": 4, "wscale": 3, "sackok": 2, "ts": 10, "nop": 1, "eol": 1}


def _option_size(opt: TcpOptionSpec) -> int:
    if opt.kind in _FIXED_SIZE:
        return _FIXED_SIZE[opt.kind]
    if opt.kind == "sack":
        return 2 + 8 * len(opt.value)
    return 2 + len(opt.value[1])  # raw: kind, length, data


InjectOptions = Annotated[
    tuple[TcpOptionSpec, ...],
    *typed(
        _parse_options_list,
        {
            "anyOf": [{"type": "array"}, {"type": "object"}],
            "description": "TCP options in order: [{mss: 1460}, sackok, {ts: [1, 0]}, nop, "
            "{wscale: 7}, {sack: [[1, 100]]}, eol, {raw: {kind: 30, hex: '..'}}]",
        },
        ser=lambda opts: [o.kind if o.value is None else {o.kind: o.value} for o in opts],
    ),
]


def _parse_opt_int(value: Any) -> bool | IntMatch:
    if isinstance(value, bool):
        return value
    m = units.parse_int_match(value)
    return True if m is None else m


def _parse_opt_flag(value: Any) -> bool:
    if value == "*":
        return True
    if isinstance(value, bool):
        return value
    raise UnitError(f"expected true (present), false (absent) or '*', got {show(value)}")


def _pair(value: Any, what: str) -> tuple[IntMatch | None, IntMatch | None]:
    if not isinstance(value, list) or len(value) != 2:
        raise UnitError(f"expected {what}, got {show(value)}")
    return (units.parse_int_match(value[0]), units.parse_int_match(value[1]))


def _parse_opt_ts(value: Any) -> Any:
    if isinstance(value, bool) or value == "*":
        return value is not False
    return _pair(value, "[tsval, tsecr]")


def _parse_opt_sack(value: Any) -> Any:
    if isinstance(value, bool) or value == "*":
        return value is not False
    if not isinstance(value, list) or not value:
        raise UnitError(f"expected '*', false or a list of [left, right] blocks, got {show(value)}")
    return tuple(_pair(b, "a [left, right] block") for b in value)


def _opt_ser(value: Any) -> Any:
    if isinstance(value, IntMatch):
        return value.value if value.op == "==" else str(value)
    if isinstance(value, tuple):
        return [_opt_ser(v) for v in value]
    return "*" if value is None else value


_OPT_MATCH_SCHEMA = {
    "anyOf": [{"type": "boolean"}, {"type": "integer"}, {"type": "string"}, {"type": "array"}]
}


_OptInt = Annotated[bool | IntMatch, *typed(_parse_opt_int, _OPT_MATCH_SCHEMA, _opt_ser)]
_OptFlag = Annotated[bool, *typed(_parse_opt_flag, _OPT_MATCH_SCHEMA, _opt_ser)]
_OptTs = Annotated[Any, *typed(_parse_opt_ts, _OPT_MATCH_SCHEMA, _opt_ser)]
_OptSack = Annotated[Any, *typed(_parse_opt_sack, _OPT_MATCH_SCHEMA, _opt_ser)]


class OptionsMatch(Strict):
    """TCP options a segment must carry. Each: absent from the mapping = don't care;
    ``false`` = must be absent; ``true`` or ``'*'`` = present, any value; a value or
    pattern = present with that value."""

    NOUN: ClassVar[str] = "segment options"

    mss: _OptInt | None = None
    wscale: _OptInt | None = None
    sackok: _OptFlag | None = None
    ts: _OptTs | None = None
    sack: _OptSack | None = None


class SegmentFields(Fields):
    """Field-by-field match of one segment; a field left out, or ``'*'``, matches
    anything. seq/ack are relative to each side's ISN unless ``relative: false``."""

    flags: FlagsPattern = None
    seq: IntPattern = None
    ack: IntPattern = None
    win: IntPattern = Field(None, description="the raw 16-bit window field")
    len: IntPattern = Field(None, description="payload length")
    urg: IntPattern = None
    data: STR | None = Field(None, description="exact payload, as UTF-8 text")
    hex: Hex | None = Field(None, description="exact payload, as hex")
    options: OptionsMatch | None = None

    def _check_payload(self) -> None:
        if self.data is not None and self.hex is not None:
            raise fail("give only one of 'data' or 'hex'")


class SegmentMatch(Strict, SegmentFields):
    NOUN: ClassVar[str] = "match"

    @model_validator(mode="after")
    def _payload(self) -> Self:
        self._check_payload()
        return self


class Drop(StepBase, ConnMixin):
    """Drop the next ``count`` segments going ``dir`` that match ``match``."""

    ACTION: ClassVar[str] = "drop"

    dir: Dir
    match: SegmentMatch = Field(default_factory=lambda: SegmentMatch.model_construct())
    count: Count = 1


_Window = Annotated[
    int, *typed(int_in("a window", 0, 65535), {"type": "integer", "minimum": 0, "maximum": 65535})
]
_UrgentPointer = Annotated[int, *typed(int_in("an urgent pointer", 0, 65535), {"type": "integer"})]


def _parse_scapy(value: Any) -> str:
    """A scapy expression: Python's expression syntax, checked here; scapy itself is
    imported only when the step runs (``scenario.scapy_inject``)."""
    import ast

    if not isinstance(value, str) or not value.strip():
        raise UnitError(
            f'expected a scapy expression such as "IP(dst=peer_ip)/TCP('
            f"sport=emu_port, dport=peer_port, flags='R', seq=seq)\", got "
            f"{show(value)}"
        )
    try:
        ast.parse(value, "<scapy>", mode="eval")
    except SyntaxError as e:
        # Python gives no column (0) for an expression that stops short: "IP() +"
        where = f"column {e.offset}" if e.offset else "the end"
        if value.count("\n") and e.lineno and e.offset:
            where = f"line {e.lineno}, {where}"
        raise UnitError(
            f"not a Python expression: {e.msg} (at {where} of the expression)"
        ) from None
    return value


_ScapyExpr = Annotated[
    str,
    *typed(
        _parse_scapy,
        {
            "type": "string",
            "description": "a Python expression in scapy's language building the IP packet (or "
            "Ether frame) to inject, with emu_ip, peer_ip, emu_port, peer_port, seq "
            "and ack: trusted code, run by netemu as root",
        },
    ),
]
# What crafts the segment field by field; 'scapy' takes the place of all of them.
_SEGMENT_FIELDS = (
    "flags",
    "seq",
    "ack",
    "win",
    "urg",
    "options",
    "data",
    "hex",
    "bytes",
    "bad_checksum",
    "relative",
)


class Inject(StepBase, ConnMixin, PayloadMixin):
    """Craft one segment on the connection's 4-tuple (or, with ``scapy``, any IP packet):
    ``dir: out`` sends it to the peer, ``dir: in`` hands it to netemu's endpoint as if
    the peer had sent it. seq/ack default to the connection's current values (snd.nxt /
    rcv.nxt of the sender)."""

    ACTION: ClassVar[str] = "inject"

    dir: Dir = "out"
    scapy: _ScapyExpr | None = None
    flags: Flags | None = None
    seq: AnyInt | None = None
    ack: AnyInt | None = None
    win: _Window | None = None
    urg: _UrgentPointer | None = None
    options: InjectOptions = ()
    relative: BOOL | None = Field(None, description="default: the scenario's 'relative'")
    bad_checksum: BOOL = False

    # for editors: 'flags' is required unless 'scapy' builds the packet
    model_config = ConfigDict(
        json_schema_extra={"anyOf": [{"required": ["flags"]}, {"required": ["scapy"]}]}
    )

    @model_validator(mode="after")
    def _payload(self) -> Self:
        if self.scapy is not None:
            for name in _SEGMENT_FIELDS:
                if name in self.model_fields_set:
                    raise fail(
                        f"give either 'scapy' or the segment's fields: 'scapy' "
                        f"builds the whole packet, '{name}' cannot go with it",
                        name,
                        key=True,
                    )
            return self
        if self.flags is None:
            raise fail("missing 'flags' in inject")
        exactly_one(self, ("data", "hex", "bytes"), "inject", optional=True)
        # One frame on the lab's wire: 1500 bytes of IP, less 20 of IP and 20 of TCP
        # header and the options (more failed the run: 'Message too long').
        room = 1460 - sum(_option_size(o) for o in self.options)
        size = (
            self.bytes
            if self.bytes is not None
            else (
                len(self.data.encode())
                if self.data is not None
                else len(self.hex.replace(" ", "")) // 2
                if self.hex is not None
                else 0
            )
        )
        if size > room:
            which = next(f for f in ("data", "hex", "bytes") if getattr(self, f) is not None)
            raise fail(
                f"{size} bytes of payload do not fit one frame on the lab's wire: "
                f"{room} at most with these options (MTU 1500)",
                which,
            )
        return self


class ExpectSegment(StepBase, ConnMixin, SegmentFields, WithinMixin):
    """The next segment going ``dir`` (within ``within``) must match."""

    ACTION: ClassVar[str] = "expect_segment"

    dir: Dir
    after: Duration | None = Field(None, description="not earlier than this (timing window)")
    relative: BOOL | None = None
    dropped: BOOL = Field(
        False,
        description="match only a frame a drop rule or an "
        "impairment removed (default: such frames never match)",
    )

    @model_validator(mode="after")
    def _window(self) -> Self:
        self._check_payload()
        if self.after is not None and self.within is not None and self.after > self.within:
            raise fail("'after' is later than 'within'", "after")
        return self


class ExpectNoSegment(StepBase, ConnMixin, SegmentFields):
    """No segment (matching the fields given, if any) goes ``dir`` (default: either way)
    for ``for``."""

    ACTION: ClassVar[str] = "expect_no_segment"
    SHORT: ClassVar[str | None] = "for"

    dir: Dir | None = None
    for_: PositiveDuration = Field(alias="for")
    relative: BOOL | None = None

    model_config = ConfigDict(populate_by_name=True)

    @model_validator(mode="after")
    def _payload(self) -> Self:
        self._check_payload()
        return self
