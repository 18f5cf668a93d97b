"""Endpoint options: the ``Options`` model, made at import from TcpConfig's fields
(netemu/tcp/config.py), and ``options_to_config`` (layers of options -> TcpConfig).

Layer rule: builds on ``scenario.fields``; netemu.tcp's TcpConfig is the one thing
it reads of the stack.
"""

# No `from __future__ import annotations` here: pydantic would evaluate every field's
# annotation from its string, compiling each (~6 ms of every `netemu run`).
import enum
import re
import types
import typing
from dataclasses import MISSING
from dataclasses import fields as dc_fields
from typing import Annotated, Any, Literal, Union

from pydantic import (
    AfterValidator,
    BaseModel,
    Field,
    PlainValidator,
    TypeAdapter,
    ValidationError,
    WithJsonSchema,
    create_model,
)

from netemu.tcp.config import TcpConfig

from .fields import BOOL, STR, Duration, NonNegInt, Size, Strict, wrap
from .units import UnitError

# --- endpoint options: TcpConfig's fields, discovered at import --------------

_SIZE_NAMES = re.compile(r"(^|_)(buf|bytes|mss|size)$")  # byte counts: accept "64k"


_PLAIN = {
    "bool_type": "expected true or false",
    "int_type": "expected a whole number",
    "string_type": "expected a string",
    "float_type": "expected a number",
    "literal_error": "not one of the choices",
    "enum": "not one of the choices",
}


def _any_of(members: list[Any]) -> Any:
    """One of several types, tried in order, with one error message if none fits.

    The members' validators (and JSON Schemas) are built on first use, not at import:
    each is a TypeAdapter, a few ms apiece, which most runs never need."""
    adapters: list[TypeAdapter[Any]] = []

    def parse(value: Any) -> Any:
        if not adapters:
            adapters.extend(TypeAdapter(m) for m in members)
        problems = []
        for adapter in adapters:
            try:
                return adapter.validate_python(value)
            except ValidationError as e:
                err = e.errors(include_url=False)[0]
                message = (err.get("ctx") or {}).get("message") or _PLAIN.get(err["type"])
                problems.append(str(message or err["msg"]))
        raise UnitError(" / ".join(dict.fromkeys(problems)))

    return Annotated[
        Union[tuple(members)],  # noqa: UP007
        PlainValidator(wrap(parse)),
        _AnyOfJsonSchema(tuple(members)),
    ]


class _AnyOfJsonSchema:
    """``WithJsonSchema({"anyOf": [...]})`` with the members' schemas made when asked."""

    __slots__ = ("members",)

    def __init__(self, members: tuple[Any, ...]) -> None:
        self.members = members

    def __get_pydantic_json_schema__(self, core_schema: Any, handler: Any) -> dict[str, Any]:
        return {"anyOf": [TypeAdapter(m).json_schema() for m in self.members]}


def _option_type(name: str, hint: Any, metadata: Any) -> Any:
    """The pydantic type of one TcpConfig field. Floats are durations (seconds, or
    "200ms") unless the field's metadata says ``unit`` is something else; ints named
    like byte counts (``*_buf``, ``*_bytes``, ``mss``) take sizes ("64k")."""
    origin = typing.get_origin(hint)
    if origin in (Union, types.UnionType):
        args = typing.get_args(hint)
        members = [_option_type(name, a, metadata) for a in args if a is not type(None)]
        t: Any = members[0] if len(members) == 1 else _any_of(members)
        return t | None if type(None) in args else t
    if hint is bool:
        return BOOL
    if hint is int:
        return Size if _SIZE_NAMES.search(name) else NonNegInt
    if hint is float:
        unit = metadata.get("unit", "s") if metadata else "s"
        return Duration if unit == "s" else Annotated[float, Field(strict=False)]
    if hint is str:
        return STR
    if origin is Literal:
        return hint
    if isinstance(hint, type) and issubclass(hint, enum.Enum):
        return Annotated[hint, Field(strict=False)]  # by value: "cubic"
    return Annotated[Any, WithJsonSchema({})]


# What the wire and the kernel can carry, so `netemu validate` refuses what a run would
# trip on (mss 70000 validated and then failed at connect with a struct error): the
# MSS field is 16 bits less 40 bytes of headers, RFC 7323 §2.3 caps the shift at 14, and
# with it the window at 2^30.
_OPTION_BOUNDS: dict[str, tuple[int, int]] = {
    "mss": (1, 65495),
    "default_peer_mss": (1, 65495),
    "window_scale": (0, 14),
    "rcv_buf": (1, 1 << 30),
    "snd_buf": (1, 1 << 30),
}


def _bounded(name: str, t: Any) -> Any:
    lo, hi = _OPTION_BOUNDS[name]

    def check(value: Any) -> Any:
        if isinstance(value, int) and not isinstance(value, bool) and not lo <= value <= hi:
            raise UnitError(f"{name} must be from {lo} to {hi}, got {value}")
        return value

    return Annotated[t, AfterValidator(wrap(check))]


def _build_options() -> type[Strict]:
    hints = typing.get_type_hints(TcpConfig)
    spec: dict[str, Any] = {}
    for f in dc_fields(TcpConfig):
        if f.default is not MISSING:
            default = f.default
        elif f.default_factory is not MISSING:
            default = f.default_factory()
        else:
            default = None
        t = _option_type(f.name, hints.get(f.name, Any), f.metadata)
        if f.name in _OPTION_BOUNDS:
            t = _bounded(f.name, t)
        spec[f.name] = (t, default)
    model = create_model("Options", __base__=Strict, **spec)
    model.NOUN = "options"
    model.__doc__ = (
        "Endpoint options: TcpConfig's fields (netemu/tcp/config.py). Durations "
        "in seconds or '200ms'; sizes in bytes or '64k'."
    )
    return model


if typing.TYPE_CHECKING:

    class Options(Strict):
        """Endpoint options (their fields are TcpConfig's, made at import)."""
else:
    Options = _build_options()


def options_to_config(*layers: BaseModel | None, base: TcpConfig | None = None) -> TcpConfig:
    """TcpConfig from the options set in each layer, later layers winning."""
    cfg = base or TcpConfig()
    changes: dict[str, Any] = {}
    for layer in layers:
        if layer is not None:
            changes.update({k: getattr(layer, k) for k in layer.model_fields_set})
    return cfg.with_changes(**changes) if changes else cfg
