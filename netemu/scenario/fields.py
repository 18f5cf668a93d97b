"""The scenario format's building blocks: typed fields (durations, percentages,
ports, names, flags and patterns), ``fail`` (a validation error with netemu's own
message), ``Strict`` (the base of every model) and ``exactly_one``.

Layer rule: pydantic, the standard library, ``scenario.units`` and netemu.tcp's State
only; the models of the format (``options``, ``peers``, ``steps``, ``segments``,
``schema``) build on these.
"""

# No `from __future__ import annotations` here: pydantic would evaluate every field's
# annotation from its string, compiling each (~6 ms of every `netemu run`).
import re
import typing
from typing import Annotated, Any, ClassVar, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    PlainSerializer,
    PlainValidator,
    WithJsonSchema,
)
from pydantic_core import PydanticCustomError

from netemu.tcp.state import State

from . import units
from .units import FlagsMatch, IntMatch, UnitError, did_you_mean, show

# --- helpers -----------------------------------------------------------------


def fail(message: str, *sub: str | int, key: bool = False) -> PydanticCustomError:
    """A validation error with our own message. ``sub``: a path below the failing
    value to point at; ``key``: point at that mapping key rather than its value."""
    return PydanticCustomError(
        "netemu", "{message}", {"message": message, "sub": tuple(sub), "key": key}
    )


def wrap(parse: typing.Callable[[Any], Any]) -> typing.Callable[[Any], Any]:
    def validate(value: Any) -> Any:
        try:
            return parse(value)
        except UnitError as e:
            raise fail(str(e)) from None

    validate.__name__ = getattr(parse, "__name__", "validate")
    return validate


def typed(
    parse: typing.Callable[[Any], Any],
    schema: dict[str, Any],
    ser: typing.Callable[[Any], Any] | None = None,
) -> tuple[Any, ...]:
    """The metadata of a field type parsed by ``parse`` (its UnitError a validation
    error), with JSON Schema ``schema``: ``Annotated[float, *typed(parse, schema)]``."""
    extra: tuple[Any, ...] = (PlainValidator(wrap(parse)), WithJsonSchema(schema))
    return extra if ser is None else (*extra, PlainSerializer(ser))


def int_in(label: str, lo: int | None = None, hi: int | None = None) -> typing.Callable[[Any], int]:
    def parse(value: Any) -> int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise UnitError(f"expected {label}, got {show(value)}")
        if (lo is not None and value < lo) or (hi is not None and value > hi):
            if hi is None:
                raise UnitError(f"must be at least {lo}, got {value}")
            raise UnitError(f"{value} is out of range ({lo}-{hi})")
        return value

    return parse


def _parse_port(value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise UnitError(f"expected a port number, got {show(value)}")
    if not 1 <= value <= 65535:
        raise UnitError(f"port {value} is out of range (1-65535)")
    return value


_NAME_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_.-]*$")


def parse_name(value: Any) -> str:
    if not isinstance(value, str):
        raise UnitError(f"expected a name, got {show(value)}")
    if not _NAME_RE.match(value):
        raise UnitError(
            f"bad name {show(value)} (letters, digits, '_', '-' and '.', starting with a letter)"
        )
    return value


def choice(label: str, literal: Any) -> tuple[Any, ...]:
    """The metadata of a ``Literal`` field type: its values, or one of them in another
    case; anything else is an error naming them."""
    values: tuple[str, ...] = typing.get_args(literal)

    def parse(value: Any) -> str:
        if isinstance(value, str) and value in values:
            return value
        if isinstance(value, str) and value.lower() in values:
            return value.lower()
        if not isinstance(value, str):
            raise UnitError(f"expected {label} ({' or '.join(values)}), got {show(value)}")
        hint = did_you_mean(value, values) or f" (one of: {', '.join(values)})"
        raise UnitError(f"unknown {label} {show(value)}{hint}")

    return typed(parse, {"enum": list(values)})


def _parse_state(value: Any) -> State:
    return State(units.normalise_state(value))


_DURATION_SCHEMA = {
    "anyOf": [
        {"type": "number", "minimum": 0},
        {"type": "string", "pattern": r"^\s*[0-9.]+\s*(ns|us|µs|ms|s|sec|m|min|h)?\s*$"},
    ],
    "description": "seconds, or a string such as 200ms, 2s, 1m",
}
_INT_MATCH_SCHEMA = {
    "anyOf": [{"type": "integer"}, {"type": "string"}],
    "description": "a number, '*' (any), '>0', '<=1000', '!=0' or '10..20'",
}

Duration = Annotated[float, *typed(units.parse_duration, _DURATION_SCHEMA)]
PositiveDuration = Annotated[float, *typed(units.parse_positive_duration, _DURATION_SCHEMA)]
Percent = Annotated[
    float,
    *typed(
        units.parse_percent,
        {
            "anyOf": [
                {"type": "number", "minimum": 0, "maximum": 1},
                {"type": "string", "pattern": r"^\s*[0-9.]+\s*%\s*$"},
            ],
            "description": "'5%' or a probability between 0 and 1",
        },
    ),
]
Rate = Annotated[
    int,
    *typed(
        units.parse_rate,
        {
            "anyOf": [{"type": "integer", "minimum": 1}, {"type": "string"}],
            "description": "bits per second, or '10mbit', '512kbit', '1gbit'",
        },
    ),
]
Size = Annotated[
    int,
    *typed(
        units.parse_size,
        {
            "anyOf": [{"type": "integer", "minimum": 0}, {"type": "string"}],
            "description": "bytes, or '64k', '64KiB', '1M' (binary units)",
        },
    ),
]
Hex = Annotated[
    str, *typed(units.parse_hex, {"type": "string", "description": "hex digits, spaces allowed"})
]
Port = Annotated[int, *typed(_parse_port, {"type": "integer", "minimum": 1, "maximum": 65535})]
Count = Annotated[int, *typed(int_in("a count", 1), {"type": "integer", "minimum": 1})]
NonNegInt = Annotated[int, *typed(int_in("a whole number", 0), {"type": "integer", "minimum": 0})]
AnyInt = Annotated[int, *typed(int_in("a whole number"), {"type": "integer"})]


def _parse_text(value: Any) -> str:
    """Words printed to the terminal and the ladder: no control characters (a YAML
    escape such as "\\e[31m" in a name drove the terminal), line ends aside."""
    if not isinstance(value, str):
        raise UnitError(f"expected a string, got {show(value)} (quote it to make it a string)")
    bad = next((ch for ch in value if not ch.isprintable() and ch not in "\n\t"), None)
    if bad is not None:
        raise UnitError(f"a control character ({bad!r}) in the text")
    return value


Text = Annotated[str, *typed(_parse_text, {"type": "string"})]
# A seed makes the ISN secret (16 bytes, signed): a 40-digit one passed validate and
# then failed the run (OverflowError). 64 bits are plenty.
Seed = Annotated[
    int,
    *typed(
        int_in("a seed (a whole number)", -(2**63), 2**63 - 1),
        {"type": "integer", "minimum": -(2**63), "maximum": 2**63 - 1},
    ),
]
Name = Annotated[str, *typed(parse_name, {"type": "string", "pattern": _NAME_RE.pattern})]
StateName = Annotated[
    State, *typed(_parse_state, {"enum": [s.value for s in State]}, ser=lambda s: s.value)
]
Flags = Annotated[
    int,
    *typed(
        units.parse_flags,
        {"type": "string", "description": "tcpdump letters S F R P . U E W, or names like SYN+ACK"},
        ser=units.flags_text,
    ),
]
FlagsPattern = Annotated[
    FlagsMatch | None,
    *typed(
        units.parse_flags_match,
        {
            "type": "string",
            "description": "'*', exact flags ('F.', 'SYN+ACK') or '+F' (at least these)",
        },
        ser=lambda m: "*" if m is None else str(m),
    ),
]
IntPattern = Annotated[
    IntMatch | None,
    *typed(
        units.parse_int_match,
        _INT_MATCH_SCHEMA,
        ser=lambda m: "*" if m is None else m.value if m.op == "==" else str(m),
    ),
]

_DirName = Literal["in", "out"]
_PeerKindName = Literal["kernel", "go-hello", "go-echo", "command"]
_ModeName = Literal["endpoint", "relay"]
_FamilyName = Literal["ipv4", "ipv6"]
_EventName = Literal["connected", "reset", "refused", "timeout", "eof", "closed"]
_ShutdownName = Literal["write", "read", "both"]
Dir = Annotated[_DirName, *choice("direction", _DirName)]
PeerKind = Annotated[_PeerKindName, *choice("peer kind", _PeerKindName)]
Mode = Annotated[_ModeName, *choice("mode", _ModeName)]
Family = Annotated[_FamilyName, *choice("family", _FamilyName)]
EventName = Annotated[_EventName, *choice("event", _EventName)]
ShutdownHow = Annotated[_ShutdownName, *choice("shutdown direction", _ShutdownName)]

STR = Annotated[str, Field(strict=True)]
BOOL = Annotated[bool, Field(strict=True)]


class Strict(BaseModel):
    """Base of every model: unknown keys are errors, types are not coerced.

    ``defer_build``: a model's validator is built when first used, not at import, so
    a run builds ``Scenario``'s (its nested models inline, its steps not: see schema's
    ``_ByAction``) and those of the steps it has; building all ~40 models eagerly
    cost most of the format's import time."""

    model_config = ConfigDict(
        extra="forbid",
        strict=True,
        validate_default=False,
        arbitrary_types_allowed=True,
        defer_build=True,
    )

    NOUN: ClassVar[str] = "mapping"  # "unknown key 'x' in <NOUN>"


def exactly_one(
    model: BaseModel, names: tuple[str, ...], what: str, optional: bool = False
) -> str | None:
    given = [n for n in names if getattr(model, n) is not None and getattr(model, n) is not False]
    if len(given) > 1:
        if len(names) > 4:
            raise fail(f"{what} takes one action; {_quoted(tuple(given), 'and')} given")
        raise fail(
            f"{what}: give only one of {_quoted(names)} ({_quoted(tuple(given), 'and')} given)"
        )
    if not given and not optional:
        raise fail(f"{what} needs one of {_quoted(names)}")
    return given[0] if given else None


def _quoted(names: tuple[str, ...], conj: str = "or") -> str:
    q = [f"'{n}'" for n in names]
    return q[0] if len(q) == 1 else ", ".join(q[:-1]) + f" {conj} " + q[-1]
