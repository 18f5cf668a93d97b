"""The scenario format: pydantic models of a scenario YAML file.

A scenario is a mapping (see docs/scenarios.md)::

    name: close_wait
    peer: kernel
    options: {rto_min: 200ms}
    steps:
      - connect: 8080
      - send: "hello"
      - expect_segment: {dir: in, flags: ".", ack: 6}

Each step is a one-key mapping (action -> arguments) or a bare action name; it
validates to one typed model (``Connect``, ``Send``, ``ExpectSegment`` ...), each
with ``.action`` and ``.line``/``.col`` (where the step starts in the file, set by
the loader). After validation defaults are resolved: every ``conn``/``peer`` is a
name (wire-level and peer steps keep None when there is no default connection), every ``within``/``timeout`` a
number of seconds, every ``relative`` a bool, ``Scenario.peers`` holds the peer(s)
whichever form the file used, and ``Scenario.network.out``/``.in_`` are the
effective impairments per direction.

pydantic validates a file (the loader turns its errors into ``file:line:col:
message``) and makes the JSON Schema of ``netemu schema``. Validators are built on
first use (``defer_build``), and ``Scenario.steps`` validates each step with the
model of its own action (``_ByAction``), so a run builds ``Scenario``'s validator and
those of the actions it uses, not the whole union of eighteen step models (``Step``,
which ``netemu schema`` publishes). Names here depend on pydantic and the standard
library only (plus netemu.tcp for TcpConfig and State): no scapy, no lab.
"""

# No `from __future__ import annotations` here: pydantic would evaluate every field's
# annotation from its string, compiling each (~6 ms of every `netemu run`).
import enum
import re
import types
import typing
from dataclasses import MISSING, dataclass
from dataclasses import fields as dc_fields
from typing import Annotated, Any, ClassVar, Literal, Self, Union

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Discriminator,
    Field,
    PlainSerializer,
    PlainValidator,
    PrivateAttr,
    Tag,
    TypeAdapter,
    ValidationError,
    ValidationInfo,
    WithJsonSchema,
    create_model,
    field_validator,
    model_validator,
)
from pydantic_core import PydanticCustomError, core_schema

from netemu.tcp.config import TcpConfig
from netemu.tcp.state import State

from . import units
from .units import (
    FlagsMatch,
    IntMatch,
    UnitError,
    did_you_mean,
    show,
)

# --- helpers -----------------------------------------------------------------


def fail(message: str, *sub: str | int, key: bool = False) -> PydanticCustomError:
    """A validation error with our own message. ``sub``: a path below the failing
    value to point at; ``key``: point at that mapping key rather than its value."""
    return PydanticCustomError("netemu", "{message}",
                               {"message": message, "sub": tuple(sub), "key": key})


def _wrap(parse: typing.Callable[[Any], Any]) -> typing.Callable[[Any], Any]:
    def validate(value: Any) -> Any:
        try:
            return parse(value)
        except UnitError as e:
            raise fail(str(e)) from None

    validate.__name__ = getattr(parse, "__name__", "validate")
    return validate


def _typed(py: Any, parse: typing.Callable[[Any], Any], schema: dict[str, Any],
           ser: typing.Callable[[Any], Any] | None = None) -> Any:
    extra: list[Any] = [PlainValidator(_wrap(parse)), WithJsonSchema(schema)]
    if ser is not None:
        extra.append(PlainSerializer(ser))
    return Annotated[(py, *extra)]


def _int_in(label: str, lo: int | None = None, hi: int | None = None
            ) -> typing.Callable[[Any], int]:
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


def _parse_name(value: Any) -> str:
    if not isinstance(value, str):
        raise UnitError(f"expected a name, got {show(value)}")
    if not _NAME_RE.match(value):
        raise UnitError(f"bad name {show(value)} (letters, digits, '_', '-' and '.', "
                        "starting with a letter)")
    return value


def _choice(label: str, values: tuple[str, ...]) -> Any:
    def parse(value: Any) -> str:
        if isinstance(value, str) and value in values:
            return value
        if isinstance(value, str) and value.lower() in values:
            return value.lower()
        if not isinstance(value, str):
            raise UnitError(f"expected {label} ({' or '.join(values)}), got {show(value)}")
        hint = did_you_mean(value, values) or f" (one of: {', '.join(values)})"
        raise UnitError(f"unknown {label} {show(value)}{hint}")

    return _typed(Literal[values], parse, {"enum": list(values)})


def _parse_state(value: Any) -> State:
    return State(units.normalise_state(value))


_DURATION_SCHEMA = {"anyOf": [{"type": "number", "minimum": 0},
                              {"type": "string", "pattern": r"^\s*[0-9.]+\s*(ns|us|µs|ms|s|sec|m|min|h)?\s*$"}],
                    "description": "seconds, or a string such as 200ms, 2s, 1m"}
_INT_MATCH_SCHEMA = {"anyOf": [{"type": "integer"}, {"type": "string"}],
                     "description": "a number, '*' (any), '>0', '<=1000', '!=0' or '10..20'"}

Duration = _typed(float, units.parse_duration, _DURATION_SCHEMA)
PositiveDuration = _typed(float, units.parse_positive_duration, _DURATION_SCHEMA)
Percent = _typed(float, units.parse_percent, {
    "anyOf": [{"type": "number", "minimum": 0, "maximum": 1},
              {"type": "string", "pattern": r"^\s*[0-9.]+\s*%\s*$"}],
    "description": "'5%' or a probability between 0 and 1"})
Rate = _typed(int, units.parse_rate, {
    "anyOf": [{"type": "integer", "minimum": 1}, {"type": "string"}],
    "description": "bits per second, or '10mbit', '512kbit', '1gbit'"})
Size = _typed(int, units.parse_size, {
    "anyOf": [{"type": "integer", "minimum": 0}, {"type": "string"}],
    "description": "bytes, or '64k', '64KiB', '1M' (binary units)"})
Hex = _typed(str, units.parse_hex, {"type": "string", "description": "hex digits, spaces allowed"})
Port = _typed(int, _parse_port, {"type": "integer", "minimum": 1, "maximum": 65535})
Count = _typed(int, _int_in("a count", 1), {"type": "integer", "minimum": 1})
NonNegInt = _typed(int, _int_in("a whole number", 0), {"type": "integer", "minimum": 0})
AnyInt = _typed(int, _int_in("a whole number"), {"type": "integer"})


def _parse_text(value: Any) -> str:
    """Words printed to the terminal and the ladder: no control characters (a YAML
    escape such as "\\e[31m" in a name drove the terminal), line ends aside."""
    if not isinstance(value, str):
        raise UnitError(f"expected a string, got {show(value)} (quote it to make it a string)")
    bad = next((ch for ch in value if not ch.isprintable() and ch not in "\n\t"), None)
    if bad is not None:
        raise UnitError(f"a control character ({bad!r}) in the text")
    return value


Text = _typed(str, _parse_text, {"type": "string"})
# A seed makes the ISN secret (16 bytes, signed): a 40-digit one passed validate and
# then failed the run (OverflowError). 64 bits are plenty.
Seed = _typed(int, _int_in("a seed (a whole number)", -(2**63), 2**63 - 1),
              {"type": "integer", "minimum": -(2**63), "maximum": 2**63 - 1})
Name = _typed(str, _parse_name, {"type": "string", "pattern": _NAME_RE.pattern})
StateName = _typed(State, _parse_state, {"enum": [s.value for s in State]},
                   ser=lambda s: s.value)
Flags = _typed(int, units.parse_flags, {
    "type": "string", "description": "tcpdump letters S F R P . U E W, or names like SYN+ACK"},
    ser=units.flags_text)
FlagsPattern = _typed(FlagsMatch | None, units.parse_flags_match, {
    "type": "string",
    "description": "'*', exact flags ('F.', 'SYN+ACK') or '+F' (at least these)"},
    ser=lambda m: "*" if m is None else str(m))
IntPattern = _typed(IntMatch | None, units.parse_int_match, _INT_MATCH_SCHEMA,
                    ser=lambda m: "*" if m is None else m.value if m.op == "==" else str(m))

Dir = _choice("direction", ("in", "out"))
PeerKind = _choice("peer kind", ("kernel", "go-hello", "go-echo", "command"))
Mode = _choice("mode", ("endpoint", "relay"))
EventName = _choice("event", ("connected", "reset", "refused", "timeout", "eof", "closed"))
ShutdownHow = _choice("shutdown direction", ("write", "read", "both"))

STR = Annotated[str, Field(strict=True)]
BOOL = Annotated[bool, Field(strict=True)]


class Strict(BaseModel):
    """Base of every model: unknown keys are errors, types are not coerced.

    ``defer_build``: a model's validator is built when first used, not at import, so
    a run builds ``Scenario``'s (its nested models inline, its steps not: see
    ``_ByAction``) and those of the steps it has; building all ~40 models eagerly
    cost most of this module's import time."""

    model_config = ConfigDict(extra="forbid", strict=True, validate_default=False,
                              arbitrary_types_allowed=True, defer_build=True)

    NOUN: ClassVar[str] = "mapping"  # "unknown key 'x' in <NOUN>"


def _exactly_one(model: BaseModel, names: tuple[str, ...], what: str, optional: bool = False
                 ) -> str | None:
    given = [n for n in names if getattr(model, n) is not None and getattr(model, n) is not False]
    if len(given) > 1:
        if len(names) > 4:
            raise fail(f"{what} takes one action; {_quoted(tuple(given), 'and')} given")
        raise fail(f"{what}: give only one of {_quoted(names)} "
                   f"({_quoted(tuple(given), 'and')} given)")
    if not given and not optional:
        raise fail(f"{what} needs one of {_quoted(names)}")
    return given[0] if given else None


def _quoted(names: tuple[str, ...], conj: str = "or") -> str:
    q = [f"'{n}'" for n in names]
    return q[0] if len(q) == 1 else ", ".join(q[:-1]) + f" {conj} " + q[-1]


# --- endpoint options: TcpConfig's fields, discovered at import --------------

_SIZE_NAMES = re.compile(r"(^|_)(buf|bytes|mss|size)$")  # byte counts: accept "64k"


_PLAIN = {"bool_type": "expected true or false", "int_type": "expected a whole number",
          "string_type": "expected a string", "float_type": "expected a number",
          "literal_error": "not one of the choices", "enum": "not one of the choices"}


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

    return Annotated[Union[tuple(members)], PlainValidator(_wrap(parse)),  # noqa: UP007
                     _AnyOfJsonSchema(tuple(members))]


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
    "mss": (1, 65495), "default_peer_mss": (1, 65495), "window_scale": (0, 14),
    "rcv_buf": (1, 1 << 30), "snd_buf": (1, 1 << 30)}


def _bounded(name: str, t: Any) -> Any:
    lo, hi = _OPTION_BOUNDS[name]

    def check(value: Any) -> Any:
        if isinstance(value, int) and not isinstance(value, bool) and not lo <= value <= hi:
            raise UnitError(f"{name} must be from {lo} to {hi}, got {value}")
        return value

    return Annotated[t, AfterValidator(_wrap(check))]


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
    model = create_model("Options", __base__=Strict, **spec)  # type: ignore[call-overload]
    model.NOUN = "options"
    model.__doc__ = ("Endpoint options: TcpConfig's fields (netemu/tcp/config.py). Durations "
                     "in seconds or '200ms'; sizes in bytes or '64k'.")
    return model  # type: ignore[no-any-return]


Options = _build_options()


def options_to_config(*layers: BaseModel | None, base: TcpConfig | None = None) -> TcpConfig:
    """TcpConfig from the options set in each layer, later layers winning."""
    cfg = base or TcpConfig()
    changes: dict[str, Any] = {}
    for layer in layers:
        if layer is not None:
            changes.update({k: getattr(layer, k) for k in layer.model_fields_set})
    return cfg.with_changes(**changes) if changes else cfg


# --- peers, sysctls, network --------------------------------------------------

_SYSCTL_RE = re.compile(r"^[a-z0-9_-]+(\.[a-zA-Z0-9_-]+)+$")


def _normalise_sysctls(value: Any) -> Any:
    if not isinstance(value, dict):
        return value
    out: dict[str, str] = {}
    for k, v in value.items():
        if not isinstance(k, str):
            raise fail(f"expected a sysctl name such as net.ipv4.tcp_sack, got {show(k)}",
                       str(k), key=True)
        name = k.strip().replace("/", ".")
        if name.startswith("proc.sys."):
            name = name[len("proc.sys."):]
        if not _SYSCTL_RE.match(name):
            raise fail(f"bad sysctl name {show(k)} (e.g. net.ipv4.tcp_sack)", k, key=True)
        if not name.startswith("net."):
            raise fail(f"sysctl {show(k)} is not per network namespace: only net.* sysctls "
                       "can be set in a lab", k, key=True)
        if isinstance(v, bool):
            text = "1" if v else "0"
        elif isinstance(v, int | str):
            text = str(v)
        elif isinstance(v, list) and v and all(isinstance(x, int) and not isinstance(x, bool)
                                              for x in v):
            text = " ".join(str(x) for x in v)
        else:
            raise fail(f"expected a number, a string or a list of numbers, got {show(v)}", k)
        out[name] = text
    return out


Sysctls = Annotated[dict[str, str], BeforeValidator(_normalise_sysctls),
                    WithJsonSchema({"type": "object", "additionalProperties": {
                        "anyOf": [{"type": "integer"}, {"type": "string"}, {"type": "boolean"},
                                  {"type": "array", "items": {"type": "integer"}}]},
                        "description": "net.* sysctls for the peer's namespace"})]

_SOCKOPT_RE = re.compile(r"^(SO|TCP|IP|IPV6)_[A-Z0-9_]+$")


def _sockopt_names() -> list[str] | None:
    try:
        from netemu.lab.agent import OPTIONS
    except Exception:  # the agent moved or is absent: fall back to the name pattern
        return None
    return list(OPTIONS)


def _normalise_sockopts(value: Any) -> Any:
    if not isinstance(value, dict):
        return value
    known = _sockopt_names()
    out: dict[str, Any] = {}
    for k, v in value.items():
        name = str(k).upper()
        if known is not None and name not in known:
            hint = did_you_mean(name, known) or f" (known: {', '.join(known)})"
            raise fail(f"unknown socket option {show(k)}{hint}", k, key=True)
        if known is None and not _SOCKOPT_RE.match(name):
            raise fail(f"bad socket option name {show(k)} (e.g. TCP_NODELAY)", k, key=True)
        if not isinstance(v, int | str | bool) and not (
                isinstance(v, list) and all(isinstance(x, int) for x in v)):
            raise fail(f"expected a number, a string or true/false, got {show(v)}", k)
        out[name] = int(v) if isinstance(v, bool) else v
    return out


SockOpts = Annotated[dict[str, Any], BeforeValidator(_normalise_sockopts),
                     WithJsonSchema({"type": "object", "description":
                                     "socket options: SO_RCVBUF, TCP_NODELAY, TCP_CONGESTION, ..."})]


DEFAULT_PORTS = {"go-hello": 8080, "go-echo": 8081}  # where the built-in Go servers listen


class Peer(Strict):
    """A real peer in its own namespace. Short form: ``peer: kernel``."""

    NOUN: ClassVar[str] = "peer"

    kind: PeerKind = Field(description="kernel: the kernel agent (takes `peer:` steps); "
                           "go-hello / go-echo: the built-in Go servers; command: any program")
    command: list[STR] | None = Field(None, description="argv for kind: command (a string is "
                                      "split like a shell would)")
    port: Port | None = Field(None, description="where a server peer listens (default: "
                              "8080 go-hello, 8081 go-echo)")
    sysctls: Sysctls = Field(default_factory=dict)
    congestion_control: STR | None = Field(None, description="the peer's algorithm (set per "
                                           "socket where the namespace refuses the sysctl)")
    env: dict[STR, STR] = Field(default_factory=dict, description="extra environment (command)")

    @model_validator(mode="before")
    @classmethod
    def _short(cls, data: Any) -> Any:
        if isinstance(data, str):
            return {"kind": data}
        if isinstance(data, dict) and isinstance(data.get("command"), str):
            import shlex  # for this short form only

            try:
                return {**data, "command": shlex.split(data["command"])}
            except ValueError as e:
                raise fail(f"cannot split the command: {e}", "command") from None
        return data

    @model_validator(mode="after")
    def _check(self) -> Self:
        if self.kind == "command" and not self.command:
            raise fail("a command peer needs 'command: [program, args...]'")
        if self.kind != "command" and self.command is not None:
            raise fail(f"'command' is only for kind: command (this peer is {self.kind})",
                       "command", key=True)
        if self.kind != "command" and self.env:
            raise fail(f"'env' is only for kind: command (this peer is {self.kind}, whose "
                       "environment netemu does not set)", "env", key=True)
        if self.congestion_control is not None and not re.fullmatch(r"[a-z0-9_]+",
                                                                     self.congestion_control):
            raise fail(f"bad congestion control name {show(self.congestion_control)}",
                       "congestion_control")
        return self


class Impairment(Strict):
    """netem-style impairments for one direction."""

    NOUN: ClassVar[str] = "network"

    loss: Percent | None = None
    delay: Duration | None = None
    jitter: Duration | None = None
    reorder: Percent | None = None
    duplicate: Percent | None = None
    corrupt: Percent | None = None
    rate: Rate | None = None

    def merged(self, other: "Impairment | None") -> "Impairment":
        """These settings overridden by those set in ``other``."""
        if other is None:
            return self.model_copy()
        data = {k: getattr(self, k) for k in self.model_fields_set}
        data.update({k: getattr(other, k) for k in other.model_fields_set})
        out = Impairment.model_construct(**data)
        return out

    def is_clean(self) -> bool:
        return all(getattr(self, k) in (None, 0) for k in Impairment.model_fields)


class Network(Impairment):
    """Impairments: keys at this level apply to both directions; ``out:`` (netemu -> peer)
    and ``in:`` (peer -> netemu) add to or override them. After loading, ``out`` and
    ``in_`` are the effective settings per direction."""

    out: Impairment | None = None
    in_: Impairment | None = Field(None, alias="in")
    seed: Seed | None = Field(None, description="seed for the impairment pipeline")

    model_config = ConfigDict(populate_by_name=True)

    @model_validator(mode="after")
    def _merge(self) -> Self:
        both = Impairment.model_construct(**{k: getattr(self, k) for k in self.model_fields_set
                                             if k in Impairment.model_fields})
        self.out = both.merged(self.out)
        self.in_ = both.merged(self.in_)
        return self

    def direction(self, d: str) -> "Impairment":
        """The effective impairments for ``"in"`` or ``"out"``."""
        imp = self.in_ if d == "in" else self.out
        assert imp is not None
        return imp


class ConnectionSpec(Strict):
    """A named connection. ``raw: true``: netemu's endpoint sends nothing on it by
    itself; the script injects and expects every segment."""

    NOUN: ClassVar[str] = "connection"

    raw: BOOL = False
    peer: Name | None = Field(None, description="which peer (default: the only one)")
    port: Port | None = Field(None, description="the peer's port (raw connections)")
    local_port: Port | None = Field(None, description="netemu's port (default: ephemeral)")
    options: Options | None = None  # type: ignore[valid-type]

    @model_validator(mode="before")
    @classmethod
    def _none(cls, data: Any) -> Any:
        return {} if data is None else data


# --- steps ---------------------------------------------------------------------


class _Tagged:
    """A step on its way from ``{action: args}`` to its model. (A plain class, as are
    ``_AnyOfJsonSchema`` and ``Problem``: making a dataclass costs ~0.3 ms of every run.)"""

    __slots__ = ("action", "args")

    def __init__(self, action: str, args: Any) -> None:
        self.action = action
        self.args = args


class StepBase(Strict):
    """Every step: ``action`` is the YAML key, ``line``/``col`` where the step starts."""

    ACTION: ClassVar[str] = ""
    SHORT: ClassVar[str | None] = None  # the field a scalar argument fills: `connect: 8080`
    BARE: ClassVar[bool] = False  # may be written as a bare name: `- close`

    note: STR | None = Field(None, description="a remark shown in the ladder diagram")

    _line: int = PrivateAttr(0)
    _col: int = PrivateAttr(0)

    @property
    def action(self) -> str:
        return self.ACTION

    @property
    def line(self) -> int:
        return self._line

    @property
    def col(self) -> int:
        return self._col

    @model_validator(mode="before")
    @classmethod
    def _unwrap(cls, data: Any) -> Any:
        if isinstance(data, _Tagged):
            return cls._expand(data.args)
        return data

    @classmethod
    def _expand(cls, args: Any) -> Any:
        if args is None:
            return {}
        if isinstance(args, dict):
            return args
        if cls.SHORT is not None:
            return {cls.SHORT: args}
        return args

    def where(self) -> str:
        return f"line {self._line}" if self._line else self.ACTION


class _Fields(BaseModel):
    """Base of the field mixins below: built only as part of the models using them."""

    model_config = ConfigDict(defer_build=True)


class ConnMixin(_Fields):
    conn: Name | None = Field(None, description="connection name (default: the only "
                              "declared connection, else 'c')")


class TimeoutMixin(_Fields):
    timeout: PositiveDuration | None = Field(None, description="how long to wait (default: "
                                             "the scenario's timeout)")


class WithinMixin(_Fields):
    within: Duration | None = Field(None, description="deadline from the start of the step "
                                    "(default: the scenario's timeout)")


class PayloadMixin(_Fields):
    data: STR | None = Field(None, description="text, sent as UTF-8 (YAML escapes apply)")
    hex: Hex | None = Field(None, description="bytes as hex digits")
    bytes: Size | None = Field(None, description="N bytes of the pattern 00 01 .. ff 00 ..")

    def payload(self) -> "bytes | None":
        """The bytes of data/hex/bytes, or None when none is given."""
        if self.data is not None:
            return self.data.encode()
        if self.hex is not None:
            return bytes.fromhex(self.hex)
        if self.bytes is not None:
            return units.pattern_bytes(self.bytes)
        return None


class Payload(Strict, PayloadMixin):
    """``"text"``, or one of ``{data: ...}``, ``{hex: ...}``, ``{bytes: N}``."""

    NOUN: ClassVar[str] = "payload"

    @model_validator(mode="before")
    @classmethod
    def _short(cls, data: Any) -> Any:
        return {"data": data} if isinstance(data, str) else data

    @model_validator(mode="after")
    def _one(self) -> Self:
        _exactly_one(self, ("data", "hex", "bytes"), "a payload")
        return self


class Connect(StepBase, ConnMixin, TimeoutMixin):
    """Active open to the peer. ``connect: 8080`` is short for ``connect: {port: 8080}``."""

    ACTION: ClassVar[str] = "connect"
    SHORT: ClassVar[str | None] = "port"

    port: Port | None = Field(None, description="the peer's port (default: the "
                              "connection's port, or a server peer's port)")
    peer: Name | None = None
    local_port: Port | None = None
    wait: BOOL = Field(True, description="wait for ESTABLISHED (false: go on once the SYN "
                       "is sent)")
    options: Options | None = None  # type: ignore[valid-type]


class Listen(StepBase):
    """Passive open on netemu's side: the peer connects to ``port``."""

    ACTION: ClassVar[str] = "listen"
    SHORT: ClassVar[str | None] = "port"

    port: Port
    backlog: Count = 16
    options: Options | None = None  # type: ignore[valid-type]


class Accept(StepBase, ConnMixin, TimeoutMixin):
    """Take the next connection from a listener and name it."""

    ACTION: ClassVar[str] = "accept"
    SHORT: ClassVar[str | None] = "conn"
    BARE: ClassVar[bool] = True

    port: Port | None = Field(None, description="which listener (default: the only one)")


class Send(StepBase, ConnMixin, PayloadMixin, TimeoutMixin):
    """Queue bytes on the connection. ``send: "hi"`` is short for ``{data: "hi"}``."""

    ACTION: ClassVar[str] = "send"
    SHORT: ClassVar[str | None] = "data"

    @model_validator(mode="after")
    def _one(self) -> Self:
        _exactly_one(self, ("data", "hex", "bytes"), "send")
        return self


class Recv(StepBase, ConnMixin, PayloadMixin, TimeoutMixin):
    """Read from the connection: exactly ``data``/``hex`` (compared), ``bytes`` N
    (not compared), or everything ``until_eof``."""

    ACTION: ClassVar[str] = "recv"
    SHORT: ClassVar[str | None] = "data"

    until_eof: BOOL = False

    @model_validator(mode="after")
    def _one(self) -> Self:
        _exactly_one(self, ("data", "hex", "bytes", "until_eof"), "recv")
        return self


class Shutdown(StepBase, ConnMixin):
    """Half-close: send FIN, keep reading."""

    ACTION: ClassVar[str] = "shutdown"
    SHORT: ClassVar[str | None] = "conn"
    BARE: ClassVar[bool] = True


class Close(StepBase, ConnMixin):
    """close(): FIN (or RST if unread data remains, like Linux)."""

    ACTION: ClassVar[str] = "close"
    SHORT: ClassVar[str | None] = "conn"
    BARE: ClassVar[bool] = True


class Abort(StepBase, ConnMixin):
    """Abort: send RST, forget the connection."""

    ACTION: ClassVar[str] = "abort"
    SHORT: ClassVar[str | None] = "conn"
    BARE: ClassVar[bool] = True


class Sleep(StepBase):
    """Let time pass: ``sleep: 100ms``."""

    ACTION: ClassVar[str] = "sleep"
    SHORT: ClassVar[str | None] = "duration"

    duration: Duration


class PeerConnect(Strict):
    NOUN: ClassVar[str] = "peer connect"

    port: Port = Field(description="netemu's listening port")
    local_port: Port | None = None
    wait: BOOL = True
    setsockopt: SockOpts | None = Field(None, description="set before the SYN")

    @model_validator(mode="before")
    @classmethod
    def _short(cls, data: Any) -> Any:
        return {"port": data} if isinstance(data, int) and not isinstance(data, bool) else data


class PeerListen(Strict):
    NOUN: ClassVar[str] = "peer listen"

    port: Port
    backlog: Count = 16
    setsockopt: SockOpts | None = None

    @model_validator(mode="before")
    @classmethod
    def _short(cls, data: Any) -> Any:
        return {"port": data} if isinstance(data, int) and not isinstance(data, bool) else data


class PeerAccept(Strict):
    NOUN: ClassVar[str] = "peer accept"

    port: Port | None = Field(None, description="which listener (default: the only one)")

    @model_validator(mode="before")
    @classmethod
    def _short(cls, data: Any) -> Any:
        if data is True:
            return {}
        if data is False:
            raise fail("'accept: false' does nothing; remove it")
        return data


PEER_ACTIONS = ("send", "read", "expect", "shutdown", "close", "abort", "accept", "connect",
                "listen", "setsockopt")


class PeerStep(StepBase, TimeoutMixin):
    """One command to a kernel peer (the kernel agent), on the peer's end of ``conn``."""

    ACTION: ClassVar[str] = "peer"
    NOUN: ClassVar[str] = "peer step"

    peer: Name | None = Field(None, description="which peer (default: the only one)")
    conn: Name | None = Field(None, description="the netemu connection whose peer end to use")
    send: Payload | None = None
    read: Size | None = Field(None, description="read exactly N bytes (not compared)")
    expect: Payload | None = Field(None, description="read these bytes and compare")
    shutdown: ShutdownHow | None = None
    close: BOOL | None = None
    abort: BOOL | None = None
    accept: PeerAccept | None = None
    connect: PeerConnect | None = None
    listen: PeerListen | None = None
    setsockopt: SockOpts | None = None

    @classmethod
    def _expand(cls, args: Any) -> Any:
        if isinstance(args, str):
            if args in ("close", "abort", "accept"):
                return {args: True}
            if args == "shutdown":
                return {"shutdown": "write"}
            raise fail(f"unknown peer action {show(args)}{did_you_mean(args, PEER_ACTIONS)}"
                       " (bare forms: close, abort, accept, shutdown)")
        return super()._expand(args)

    @model_validator(mode="before")
    @classmethod
    def _shutdown_true(cls, data: Any) -> Any:
        if isinstance(data, dict) and data.get("shutdown") is True:
            return {**data, "shutdown": "write"}
        return data

    @model_validator(mode="after")
    def _one(self) -> Self:
        for flag in ("close", "abort"):
            if getattr(self, flag) is False:
                raise fail(f"'{flag}: false' does nothing; remove it", flag)
        _exactly_one(self, PEER_ACTIONS, "a peer step")
        return self

    @property
    def command(self) -> str:
        """Which of PEER_ACTIONS this step is."""
        return next(n for n in PEER_ACTIONS if getattr(self, n) not in (None, False))


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
        raise UnitError(f"a TCP option is a name (nop, eol, sackok) or a one-key mapping "
                        f"such as {{mss: 1460}}, got {show(item)}")
    if name not in _OPT_NAMES:
        raise UnitError(f"unknown TCP option {show(name)}{did_you_mean(str(name), _OPT_NAMES)}"
                        f" (known: {', '.join(_OPT_NAMES)})")
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
        if not blocks or len(blocks) > 4 or not all(isinstance(b, list) and len(b) == 2
                                                    for b in blocks):
            raise UnitError(f"sack: expected 1 to 4 [left, right] blocks, got {show(value)}")
        return TcpOptionSpec(name, tuple(tuple(_int_arg("sack", v, -(2**32), 2**32 - 1)
                                               for v in b) for b in blocks))
    # raw: {kind: N, hex: "..."}
    if not isinstance(value, dict) or set(value) - {"kind", "hex"} or "kind" not in value:
        raise UnitError(f"raw: expected {{kind: N, hex: '...'}}, got {show(value)}")
    return TcpOptionSpec(name, (_int_arg("raw kind", value["kind"], 0, 255),
                                bytes.fromhex(units.parse_hex(value.get("hex", "")))))


def _parse_options_list(value: Any) -> tuple[TcpOptionSpec, ...]:
    if isinstance(value, dict):  # {mss: 1460, sackok: true}: in the order written
        value = [k if v is True and k in ("nop", "eol", "sackok") else {k: v}
                 for k, v in value.items()]
    if not isinstance(value, list):
        raise UnitError(f"expected a list of TCP options such as [{{mss: 1460}}, sackok], "
                        f"got {show(value)}")
    out = []
    size = 0
    for i, item in enumerate(value):
        try:
            opt = _parse_option(item)
        except UnitError as e:
            raise fail(str(e), i) from None
        size += _option_size(opt)
        if size > _MAX_OPTION_BYTES:  # the run failed building the segment
            raise fail(f"the TCP options take {size} bytes up to this one, more than "
                       f"{_MAX_OPTION_BYTES} (a TCP header holds 40 bytes of options)", i)
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


InjectOptions = _typed(tuple[TcpOptionSpec, ...], _parse_options_list, {
    "anyOf": [{"type": "array"}, {"type": "object"}],
    "description": "TCP options in order: [{mss: 1460}, sackok, {ts: [1, 0]}, nop, "
                   "{wscale: 7}, {sack: [[1, 100]]}, eol, {raw: {kind: 30, hex: '..'}}]"},
    ser=lambda opts: [o.kind if o.value is None else {o.kind: o.value} for o in opts])


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
        raise UnitError(f"expected '*', false or a list of [left, right] blocks, "
                        f"got {show(value)}")
    return tuple(_pair(b, "a [left, right] block") for b in value)


def _opt_ser(value: Any) -> Any:
    if isinstance(value, IntMatch):
        return value.value if value.op == "==" else str(value)
    if isinstance(value, tuple):
        return [_opt_ser(v) for v in value]
    return "*" if value is None else value


_OPT_MATCH_SCHEMA = {"anyOf": [{"type": "boolean"}, {"type": "integer"}, {"type": "string"},
                               {"type": "array"}]}


class OptionsMatch(Strict):
    """TCP options a segment must carry. Each: absent from the mapping = don't care;
    ``false`` = must be absent; ``true`` or ``'*'`` = present, any value; a value or
    pattern = present with that value."""

    NOUN: ClassVar[str] = "segment options"

    mss: _typed(bool | IntMatch, _parse_opt_int, _OPT_MATCH_SCHEMA, _opt_ser) | None = None  # type: ignore[valid-type]
    wscale: _typed(bool | IntMatch, _parse_opt_int, _OPT_MATCH_SCHEMA, _opt_ser) | None = None  # type: ignore[valid-type]
    sackok: _typed(bool, _parse_opt_flag, _OPT_MATCH_SCHEMA, _opt_ser) | None = None  # type: ignore[valid-type]
    ts: _typed(Any, _parse_opt_ts, _OPT_MATCH_SCHEMA, _opt_ser) | None = None  # type: ignore[valid-type]
    sack: _typed(Any, _parse_opt_sack, _OPT_MATCH_SCHEMA, _opt_ser) | None = None  # type: ignore[valid-type]


class SegmentFields(_Fields):
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

    def match_fields(self) -> dict[str, Any]:
        """The fields that constrain something (not None)."""
        return {k: getattr(self, k) for k in SegmentFields.model_fields
                if getattr(self, k) is not None}

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


class Inject(StepBase, ConnMixin, PayloadMixin):
    """Craft one segment on the connection's 4-tuple: ``dir: out`` sends it to the peer,
    ``dir: in`` hands it to netemu's endpoint as if the peer had sent it. seq/ack
    default to the connection's current values (snd.nxt / rcv.nxt of the sender)."""

    ACTION: ClassVar[str] = "inject"

    dir: Dir = "out"
    flags: Flags
    seq: AnyInt | None = None
    ack: AnyInt | None = None
    win: _typed(int, _int_in("a window", 0, 65535), {"type": "integer", "minimum": 0,  # type: ignore[valid-type]
                                                       "maximum": 65535}) | None = None
    urg: _typed(int, _int_in("an urgent pointer", 0, 65535), {"type": "integer"}) | None = None  # type: ignore[valid-type]
    options: InjectOptions = ()  # type: ignore[valid-type]
    relative: BOOL | None = Field(None, description="default: the scenario's 'relative'")
    bad_checksum: BOOL = False

    @model_validator(mode="after")
    def _payload(self) -> Self:
        _exactly_one(self, ("data", "hex", "bytes"), "inject", optional=True)
        # One frame on the lab's wire: 1500 bytes of IP, less 20 of IP and 20 of TCP
        # header and the options (more failed the run: 'Message too long').
        room = 1460 - sum(_option_size(o) for o in self.options)
        size = self.bytes if self.bytes is not None else (
            len(self.data.encode()) if self.data is not None else
            len(self.hex.replace(" ", "")) // 2 if self.hex is not None else 0)
        if size > room:
            which = next(f for f in ("data", "hex", "bytes") if getattr(self, f) is not None)
            raise fail(f"{size} bytes of payload do not fit one frame on the lab's wire: "
                       f"{room} at most with these options (MTU 1500)", which)
        return self


class ExpectSegment(StepBase, ConnMixin, SegmentFields, WithinMixin):
    """The next segment going ``dir`` (within ``within``) must match."""

    ACTION: ClassVar[str] = "expect_segment"

    dir: Dir
    after: Duration | None = Field(None, description="not earlier than this (timing window)")
    relative: BOOL | None = None
    dropped: BOOL = Field(False, description="match only a frame a drop rule or an "
                          "impairment removed (default: such frames never match)")

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


class ExpectState(StepBase, ConnMixin, WithinMixin):
    """netemu's connection reaches ``state`` (within ``within``)."""

    ACTION: ClassVar[str] = "expect_state"
    SHORT: ClassVar[str | None] = "state"

    state: StateName


class ExpectPeerState(StepBase, ConnMixin, WithinMixin):
    """The peer's socket (the peer end of ``conn``, or its listener on ``port``) is in
    ``state`` (within ``within``), as the peer kernel reports it: its tracepoints, or
    sock_diag where they cannot be read. With ``seen: true``, it passes when the socket
    has been in ``state`` at any time since the run began, however briefly (a LAST-ACK
    of microseconds): the kernel's tracepoints record every change."""

    ACTION: ClassVar[str] = "expect_peer_state"
    SHORT: ClassVar[str | None] = "state"

    state: StateName
    peer: Name | None = None
    port: Port | None = Field(None, description="the peer's local port (e.g. a LISTEN socket)")
    seen: bool = Field(False, description="passed through the state at any time, not only now")


class ExpectData(StepBase, ConnMixin, PayloadMixin, WithinMixin):
    """These bytes arrive on the connection next."""

    ACTION: ClassVar[str] = "expect_data"
    SHORT: ClassVar[str | None] = "data"

    @model_validator(mode="after")
    def _one(self) -> Self:
        _exactly_one(self, ("data", "hex", "bytes"), "expect_data")
        return self


class ExpectEvent(StepBase, ConnMixin, WithinMixin):
    """The connection reports ``event``: connected, reset, refused, timeout, eof, closed."""

    ACTION: ClassVar[str] = "expect_event"
    SHORT: ClassVar[str | None] = "event"

    event: EventName


STEP_TYPES: dict[str, type[StepBase]] = {
    cls.ACTION: cls for cls in (
        Connect, Listen, Accept, Send, Recv, Shutdown, Close, Abort, Sleep, PeerStep, Drop,
        Inject, ExpectState, ExpectPeerState, ExpectSegment, ExpectNoSegment, ExpectData,
        ExpectEvent)
}


def _step_shape(value: Any) -> Any:
    if isinstance(value, str):
        if value in STEP_TYPES:
            return _Tagged(value, None)
        raise fail(f"unknown step {show(value)}{_step_hint(value)}")
    if isinstance(value, _Tagged):
        return value
    if not isinstance(value, dict):
        raise fail(f"a step is a one-key mapping such as '- connect: 8080', got {show(value)}")
    if not value:
        raise fail("empty step")
    keys = list(value)
    first = keys[0]
    if not isinstance(first, str) or first not in STEP_TYPES:
        raise fail(f"unknown step {show(first)}{_step_hint(str(first))}", first, key=True)
    if len(keys) > 1:
        extra = keys[1]
        cls = STEP_TYPES[first]
        if value[first] is None and extra in _field_names(cls):
            raise fail(f"'{extra}' looks like an argument of '{first}': indent it under "
                       f"'{first}'", extra, key=True)
        raise fail(f"a step has exactly one action; this one also has {show(extra)} "
                   "(start another step with '- ')", extra, key=True)
    return _Tagged(first, value[first])


def _step_hint(word: str) -> str:
    return did_you_mean(word, STEP_TYPES) or f" (steps: {', '.join(STEP_TYPES)})"


def _field_names(cls: type[BaseModel]) -> list[str]:
    return [f.alias or n for n, f in cls.model_fields.items()]


def _step_tag(value: Any) -> str | None:
    if isinstance(value, _Tagged | StepBase):
        return value.action
    return None


Step = Annotated[
    Union[tuple(Annotated[cls, Tag(name)] for name, cls in STEP_TYPES.items())],  # type: ignore[misc]  # noqa: UP007
    Discriminator(_step_tag),
    BeforeValidator(_step_shape),
]



def _validate_as(model: type[StepBase]) -> typing.Callable[[Any, ValidationInfo], StepBase]:
    def validate(value: Any, info: ValidationInfo) -> StepBase:
        # Its errors join the scenario's, below this step's loc (pydantic-core takes a
        # ValidationError raised in a validator as its line errors).
        return model.model_validate(value, context=info.context)

    validate.__name__ = f"validate_{model.ACTION}"
    return validate


class _ByAction:
    """``Step`` as ``Scenario.steps`` validates it: the same union, tagged by action, but
    each step validated by its own model, whose validator is built on first use
    (``defer_build``). A run then builds the models of the actions it uses, not all
    eighteen (~10 ms of every run). Errors and results are those of ``Step``; so is the
    JSON Schema, made from ``Step`` when asked (``netemu schema``)."""

    def __get_pydantic_core_schema__(self, source: Any, handler: Any) -> core_schema.CoreSchema:
        choices: dict[Any, core_schema.CoreSchema] = {
            name: core_schema.with_info_plain_validator_function(_validate_as(cls))
            for name, cls in STEP_TYPES.items()}
        return core_schema.no_info_before_validator_function(
            _step_shape, core_schema.tagged_union_schema(choices, _step_tag))

    def __get_pydantic_json_schema__(self, schema: core_schema.CoreSchema, handler: Any
                                     ) -> dict[str, Any]:
        return handler(TypeAdapter(Step).core_schema)  # type: ignore[no-any-return]


CONN_STEPS = (Connect, Accept, Send, Recv, Shutdown, Close, Abort, ExpectData, ExpectEvent)
WIRE_STEPS = (Inject, Drop, ExpectSegment, ExpectNoSegment)


# --- the scenario ----------------------------------------------------------------


def _connections_short(value: Any) -> Any:
    """``connections: [c, d]`` is short for ``{c: {}, d: {}}``."""
    if not isinstance(value, list):
        return value
    out: dict[str, Any] = {}
    for i, item in enumerate(value):
        if isinstance(item, str):
            name, spec = item, {}
        elif isinstance(item, dict) and len(item) == 1:
            name, spec = next(iter(item.items()))
        else:
            raise fail(f"expected a connection name, got {show(item)}", i)
        if name in out:
            raise fail(f"duplicate connection name {show(name)}", i)
        out[name] = spec
    return out


def _name_keys(value: Any) -> Any:
    if isinstance(value, dict):
        for k in value:
            try:
                _parse_name(k)
            except UnitError as e:
                raise fail(str(e), str(k), key=True) from None
    return value


class Problem:
    """A cross-field problem: ``loc`` as in pydantic errors, ``key``: point at the key."""

    __slots__ = ("key", "loc", "message")

    def __init__(self, loc: tuple[str | int, ...], message: str, key: bool = False) -> None:
        self.loc = loc
        self.message = message
        self.key = key


# Defaults of model type below are made with ``model_construct`` (what validating an
# empty mapping gives; Network's merge run by hand), so that loading builds only
# Scenario's validator, not also one for each default's own model.
class Scenario(Strict):
    """One scenario file."""

    NOUN: ClassVar[str] = "the scenario (top level)"

    name: Text = Field(description="short identifier, used for the run directory")
    description: Text = Field("", description="what this scenario shows or teaches")
    mode: Mode = Field("endpoint", description="endpoint: netemu is one end of every "
                       "connection; relay: netemu bridges two kernel peers (client, server) "
                       "and impairs, drops and records their frames")
    peer: Peer | None = Field(None, description="the peer, when there is one: `peer: kernel`")
    peers: Annotated[dict[str, Peer], BeforeValidator(_name_keys)] = Field(
        default_factory=dict, description="named peers (instead of `peer`)")
    options: Options = Field(default_factory=lambda: Options.model_construct())  # type: ignore[valid-type]
    sysctls: Sysctls = Field(default_factory=dict,
                             description="net.* sysctls for every peer's namespace")
    network: Network = Field(default_factory=lambda: Network.model_construct()._merge())
    connections: Annotated[dict[str, ConnectionSpec], BeforeValidator(_name_keys),
                           BeforeValidator(_connections_short)] = Field(default_factory=dict)
    relative: BOOL = Field(True, description="seq/ack relative to the ISNs (like Wireshark)")
    timeout: PositiveDuration = Field(3.0, description="default wait for each step")
    seed: Seed | None = Field(None, description="seed for ISNs and impairments")
    steps: Annotated[list[Annotated[Step, _ByAction()]], Field(min_length=1)]

    @field_validator("steps", mode="before")
    @classmethod
    def _steps_list(cls, value: Any) -> Any:
        if isinstance(value, list) and not value:
            raise fail("a scenario needs at least one step")
        if not isinstance(value, list):
            raise fail(f"expected a list of steps ('- connect: 8080' ...), got {show(value)}")
        return value

    @model_validator(mode="after")
    def _cross_check(self, info: ValidationInfo) -> Self:
        ctx = info.context if isinstance(info.context, dict) else {}
        for step, pos in zip(self.steps, ctx.get("step_positions") or (), strict=False):
            step._line, step._col = pos
        problems = (_RelayChecker if self.mode == "relay" else _Checker)(self).run()
        if not problems:
            return self
        sink = ctx.get("problems")
        if isinstance(sink, list):
            sink.extend(problems)
            return self
        raise fail("; ".join(f"{'.'.join(map(str, p.loc)) or 'scenario'}: {p.message}"
                             for p in problems))

    def default_conn(self) -> str:
        return next(iter(self.connections)) if len(self.connections) == 1 else "c"

    def config_for(self, conn: str | None = None, *layers: BaseModel | None) -> TcpConfig:
        """TcpConfig for a connection: scenario options, then the connection's, then
        any step's (e.g. ``Connect.options``)."""
        spec = self.connections.get(conn) if conn else None
        return options_to_config(self.options, spec.options if spec else None, *layers)


class _Checker:
    """Cross-field rules; resolves defaults on the way (conn, peer, within, relative)."""

    def __init__(self, s: Scenario) -> None:
        self.s = s
        self.problems: list[Problem] = []

    def err(self, loc: tuple[str | int, ...], message: str, key: bool = False) -> None:
        self.problems.append(Problem(loc, message, key))

    def run(self) -> list[Problem]:
        self.peers()
        self.one_namespace()
        self.connections()
        self.steps()
        self.network()
        return self.problems

    def peers(self) -> None:
        s = self.s
        if s.peer is not None and s.peers:
            self.err(("peers",), "give either 'peer' or 'peers', not both", key=True)
        elif s.peer is None and not s.peers:
            self.err((), "missing 'peer' (e.g. peer: kernel, or peers: {name: {kind: ...}})")
        elif s.peer is not None:
            s.peers = {"peer": s.peer}
        self.own_sysctls = {name: set(p.sysctls) for name, p in s.peers.items()}
        for p in s.peers.values():
            p.sysctls = {**s.sysctls, **p.sysctls}
            if p.port is None:
                p.port = DEFAULT_PORTS.get(p.kind)

    def one_namespace(self) -> None:
        """In endpoint mode every peer runs in the lab's one peer namespace: two peers
        that want one sysctl (or congestion control) set two ways would get one of
        them, silently."""
        first: dict[str, tuple[str, str]] = {}  # setting -> (peer, value)
        for name, p in self.s.peers.items():
            settings = [(k, v, ("sysctls", k), k in self.own_sysctls.get(name, ()))
                        for k, v in p.sysctls.items()]
            if p.congestion_control is not None:
                settings.append(("congestion_control", p.congestion_control,
                                 ("congestion_control",), True))
            for key, value, sub, own in settings:
                other = first.setdefault(key, (name, value))
                if other[1] != value:
                    loc = ("peers", name, *sub) if own else ("peers", other[0], *sub)
                    self.err(loc, f"peers {show(other[0])} and {show(name)} share one "
                             f"namespace: {key} is {other[1]} for {show(other[0])} and "
                             f"{value} for {show(name)}, and only one can hold (set it "
                             "once)", key=key != "congestion_control")

    def network(self) -> None:
        """netem's reorder lets a frame skip the delay the others wait: with none, nothing
        is held back and nothing overtakes."""
        net = self.s.network
        for d in ("out", "in"):
            imp = net.direction(d)
            if imp.reorder and not (imp.delay or imp.jitter):
                loc = (("network", "reorder") if "reorder" in net.model_fields_set
                       else ("network", d, "reorder"))
                self.err(loc, f"reorder needs a delay or jitter (in {show(d)}): without one "
                         "nothing is held back for a frame to overtake")

    def peer_listen_conn(self, st: "StepBase", args: tuple[str | int, ...]) -> None:
        if isinstance(st, PeerStep) and st.listen is not None and st.conn is not None:
            self.err((*args, "conn"), "a peer listen is on no connection: 'conn' does "
                     "nothing (a peer accept names the connection)", key=True)

    def peer_ref(self, at: tuple[str | int, ...], args: tuple[str | int, ...],
                 name: str | None) -> str | None:
        """Resolve a peer name: ``at`` locates the whole thing, ``args`` its mapping."""
        peers = self.s.peers
        if not peers:
            return name
        if name is None:
            if len(peers) == 1:
                return next(iter(peers))
            self.err(at, f"several peers ({', '.join(peers)}): say which with 'peer:'")
            return None
        if name not in peers:
            hint = did_you_mean(name, peers) or f" (peers: {', '.join(peers)})"
            self.err((*args, "peer"), f"unknown peer {show(name)}{hint}")
        return name

    def connections(self) -> None:
        for name, spec in self.s.connections.items():
            loc = ("connections", name)
            spec.peer = self.peer_ref(loc, loc, spec.peer)
            if spec.raw and spec.port is None and spec.local_port is None:
                self.err(loc, f"raw connection {show(name)} needs 'port' (the peer's) or "
                         "'local_port' (netemu's, when the peer connects)")
            if spec.raw and spec.options is not None and spec.options.model_fields_set:
                self.err((*loc, "options"), f"connection {show(name)} is raw: netemu's "
                         "endpoint sends nothing on it, so 'options' do nothing", key=True)

    def steps(self) -> None:
        s = self.s
        declared = s.connections
        default = s.default_conn()
        raw = {n for n, c in declared.items() if c.raw}
        created_at: dict[str, int] = {}  # connections opened by connect/accept: step index
        for i, st in enumerate(s.steps):
            if isinstance(st, Connect | Accept) and (st.conn or default) not in raw:
                created_at.setdefault(st.conn or default, i)
        known = set(declared) | set(created_at)
        for name, i in created_at.items():  # netemu's listener makes what accept takes
            spec, opener = declared.get(name), s.steps[i]
            if spec is None or not isinstance(opener, Accept):
                continue
            loc = ("connections", name)
            if spec.options is not None and spec.options.model_fields_set:
                self.err((*loc, "options"), f"connection {show(name)} is opened by accept "
                         f"({opener.where()}): it has the listener's options (put them on "
                         "the listen step)", key=True)
            if spec.port is not None:
                self.err((*loc, "port"), f"connection {show(name)} is opened by accept "
                         f"({opener.where()}): the peer chooses its port (a peer connect's "
                         "local_port sets it)", key=True)
        opened: dict[str, StepBase] = {}
        listens: list[int] = []
        for i, st in enumerate(s.steps):
            at: tuple[str | int, ...] = ("steps", i)  # the step as a whole
            args: tuple[str | int, ...] = (*at, st.ACTION)  # its arguments
            conn = getattr(st, "conn", None)
            conn_at = (*args, "conn") if conn is not None else at
            if isinstance(st, Connect) and not st.wait and "timeout" in st.model_fields_set:
                self.err((*args, "timeout"), "'timeout' does nothing with 'wait: false' "
                         "(the connect goes on once the SYN is sent)", key=True)
            self.peer_listen_conn(st, args)
            self.defaults(st)
            if isinstance(st, ExpectPeerState) and st.port is not None and st.conn is None \
                    and st.peer is not None and len(s.peers) > 1:
                # All peers share the peer namespace: a listener there is the namespace's,
                # whichever peer made it (asking it of one peer passed on another's).
                self.err((*args, "peer"), f"'peer' with 'port' alone: the peers "
                         f"({', '.join(sorted(s.peers))}) share one namespace, and its "
                         f"listener on {st.port} is answered whichever of them listens; "
                         "drop 'peer', or name the connection ('conn')")
            if isinstance(st, Connect | PeerStep | ExpectPeerState):
                self.conn_peer(args, st, declared, default)
                st.peer = self.peer_ref(at, args, st.peer)
            if isinstance(st, Connect):
                self.connect_port(at, st, declared.get(conn or default))
            if isinstance(st, PeerStep) and st.peer in s.peers and s.peers[st.peer].kind != "kernel":
                self.err(at, f"peer {show(st.peer)} is a {s.peers[st.peer].kind} peer: only a "
                         "kernel peer takes commands")
            if isinstance(st, Listen):
                listens.append(st.port)
            if isinstance(st, Accept):
                self.accept_port(at, args, st, listens, declared.get(conn or default))

            if isinstance(st, CONN_STEPS):
                name = conn or default
                st.conn = name  # type: ignore[attr-defined]
                if name in raw:
                    self.err(conn_at, f"connection {show(name)} is raw: netemu's endpoint sends "
                             "nothing on it; use inject, expect_segment, drop and peer steps")
                elif name not in known:
                    self.unknown_conn(at, args, name, conn is not None, known)
                elif isinstance(st, Connect | Accept):
                    if name in opened:
                        self.err(at, f"connection {show(name)} is already opened by the "
                                 f"{opened[name].ACTION} at {opened[name].where()}")
                    opened.setdefault(name, st)
                elif name not in opened:
                    where = created_at.get(name)
                    later = (f" (it is opened later, at {s.steps[where].where()})"
                             if where is not None else "")
                    self.err(at, f"connection {show(name)} is used before connect or accept "
                             f"opens it{later}")
            elif isinstance(st, ExpectState):
                name = conn or default
                st.conn = name
                if name in raw:
                    self.err(conn_at, f"connection {show(name)} is raw: it has no state of its "
                             "own; use expect_peer_state")
                elif name not in known:
                    self.unknown_conn(at, args, name, conn is not None, known)
            elif isinstance(st, (*WIRE_STEPS, PeerStep, ExpectPeerState)):
                if conn is not None and conn not in known:
                    self.unknown_conn(at, args, conn, True, known)
                elif conn is None and default in known and not (
                        isinstance(st, ExpectPeerState) and st.port is not None) and not (
                        isinstance(st, PeerStep) and st.listen is not None):
                    st.conn = default  # type: ignore[attr-defined]
            if isinstance(st, Inject) and not st.relative:
                for f in ("seq", "ack"):
                    v = getattr(st, f)
                    if v is not None and not 0 <= v < 2**32:
                        self.err((*args, f), f"{f} {v} is out of range for an absolute "
                                 "sequence number (0 to 4294967295)")

    def defaults(self, st: StepBase) -> None:
        s = self.s
        if getattr(st, "within", False) is None:
            st.within = s.timeout  # type: ignore[attr-defined]
        if getattr(st, "timeout", False) is None:
            st.timeout = s.timeout  # type: ignore[attr-defined]
        if getattr(st, "relative", False) is None:
            st.relative = s.relative  # type: ignore[attr-defined]

    def unknown_conn(self, at: tuple[str | int, ...], args: tuple[str | int, ...], name: str,
                     explicit: bool, known: set[str]) -> None:
        if explicit:
            hint = did_you_mean(name, sorted(known)) or (
                f" (connections: {', '.join(sorted(known))})" if known else
                " (declare it under 'connections:' or open it with connect or accept)")
            self.err((*args, "conn"), f"unknown connection {show(name)}{hint}")
        else:
            self.err(at, f"no connection {show(name)}: open one with connect or accept, or "
                     "name one with 'conn:'")

    def connect_port(self, at: tuple[str | int, ...], st: Connect,
                     spec: ConnectionSpec | None) -> None:
        if st.port is not None:
            return
        peer = self.s.peers.get(st.peer or "")
        st.port = (spec.port if spec else None) or (peer.port if peer else None)
        if st.port is None and peer is not None:
            self.err(at, f"connect needs 'port': a {peer.kind} peer has no default port")

    def conn_peer(self, args: tuple[str | int, ...], st: "Connect | PeerStep | ExpectPeerState",
                  declared: dict[str, ConnectionSpec], default: str) -> None:
        """A declared connection's ``peer`` is its steps' peer: the default, and a step
        that names another is an error (the step's won, silently)."""
        if isinstance(st, PeerStep) and st.listen is not None:
            return  # on no connection
        if isinstance(st, ExpectPeerState) and st.port is not None and st.conn is None:
            return  # a socket named by its port
        name = st.conn or default
        spec = declared.get(name)
        if spec is None or spec.peer is None:
            return
        if st.peer is None:
            st.peer = spec.peer
        elif st.peer != spec.peer:
            self.err((*args, "peer"), f"connection {show(name)} is peer {show(spec.peer)}'s "
                     f"(connections:), not {show(st.peer)}'s")

    def accept_port(self, at: tuple[str | int, ...], args: tuple[str | int, ...], st: Accept,
                    listens: list[int], spec: ConnectionSpec | None = None) -> None:
        own = spec.local_port if spec is not None and not spec.raw else None
        if listens and own is not None:  # the connection's local_port: which listener
            if st.port is None and own not in listens:
                self.err(at, f"no earlier listen on port {own}, connection "
                         f"{show(st.conn)}'s local_port (listening on "
                         f"{', '.join(map(str, listens))})")
                return
            if st.port is not None and st.port != own:
                self.err((*args, "port"), f"accept on port {st.port}, but connection "
                         f"{show(st.conn)}'s local_port is {own}")
                return
            st.port = own
        if not listens:
            self.err(at, "accept needs an earlier 'listen' step")
        elif st.port is None:
            if len(set(listens)) > 1:
                self.err(at, f"several listeners ({', '.join(map(str, listens))}): say which "
                         "with 'port:'")
            else:
                st.port = listens[0]
        elif st.port not in listens:
            self.err((*args, "port"), f"no earlier listen on port {st.port} (listening on "
                     f"{', '.join(map(str, listens))})")


# --- relay mode ------------------------------------------------------------------

RELAY_PEERS = ("client", "server")
# Steps that act on netemu's own endpoint: relay mode has none.
ENDPOINT_STEPS = (Connect, Listen, Accept, Send, Recv, Shutdown, Close, Abort, Inject,
                  ExpectState, ExpectData, ExpectEvent)


_RELAY_HINT = "use peer steps (peer: {peer: client, …}), drop, expect_segment or expect_peer_state"
_RELAY_HINTS = {
    **{a: f"use a peer step, e.g. peer: {{peer: client, {a}: …}}"
       for a in ("connect", "listen", "send", "shutdown", "close", "abort")},
    "accept": "use a peer step, e.g. peer: {peer: server, accept: true}",
    "recv": "use a peer step, e.g. peer: {peer: server, read: N} or {expect: …}",
    "expect_data": "use a peer step, e.g. peer: {peer: server, expect: …}",
    "expect_state": "use expect_peer_state: {peer: client, state: …}",
    "inject": "script faults with drop, check segments with expect_segment",
}


class _RelayChecker(_Checker):
    """``mode: relay``: two kernel peers, ``client`` (lab A) and ``server`` (lab B), that
    netemu bridges; only peer, wire (drop, expect_segment, expect_no_segment), sleep and
    expect_peer_state steps. ``conn`` names a kernel-to-kernel connection, opened by a
    peer ``connect`` or ``accept`` (default ``c``)."""

    def run(self) -> list[Problem]:
        s = self.s
        if s.peer is not None:
            self.err(("peer",), "relay mode needs two kernel peers: peers: {client: {kind: "
                     "kernel}, server: {kind: kernel}}", key=True)
        self.peers()
        if s.peer is None and s.peers:
            if set(s.peers) != set(RELAY_PEERS):
                self.err(("peers",), "relay mode needs exactly two peers named client and "
                         f"server (got {', '.join(s.peers)})", key=True)
            for name, p in s.peers.items():
                if p.kind != "kernel":
                    self.err(("peers", name, "kind"), f"relay mode bridges kernel peers: "
                             f"{show(name)} is a {p.kind} peer")
        if s.connections:
            self.err(("connections",), "relay mode has no netemu connections: the peers "
                     "connect to each other (peer: {peer: client, connect: …})", key=True)
        if s.options.model_fields_set:
            self.err(("options",), "relay mode has no endpoint of netemu's: 'options' do "
                     "nothing (the peers' kernels take sysctls)", key=True)
        for name, p in s.peers.items():
            if p.port is not None:
                self.err(("peers", name, "port"), "a relay peer has no default port: 'port' "
                         "does nothing (a peer connect or listen names its port)", key=True)
        self.relay_steps()
        self.network()
        return self.problems

    def relay_steps(self) -> None:
        s = self.s
        opened = {st.conn or "c" for st in s.steps if isinstance(st, PeerStep)
                  and st.command in ("connect", "accept")}
        listens: dict[str | None, list[int]] = {}
        for i, st in enumerate(s.steps):
            at: tuple[str | int, ...] = ("steps", i)
            args: tuple[str | int, ...] = (*at, st.ACTION)
            self.peer_listen_conn(st, args)
            self.defaults(st)
            if isinstance(st, ENDPOINT_STEPS):
                self.err(at, f"'{st.ACTION}' acts on netemu's own endpoint, which relay mode "
                         f"does not have: {_RELAY_HINTS.get(st.ACTION, _RELAY_HINT)}")
                continue
            if isinstance(st, PeerStep | ExpectPeerState):
                st.peer = self.peer_ref(at, args, st.peer)
            if isinstance(st, PeerStep) and st.command == "listen":
                listens.setdefault(st.peer, []).append(st.listen.port)  # type: ignore[union-attr]
                continue
            if isinstance(st, PeerStep) and st.command == "accept":
                have = listens.get(st.peer, [])
                if not have:
                    self.err(at, f"peer {show(st.peer)} accepts without an earlier peer listen")
                elif st.accept.port is None and len(set(have)) == 1:  # type: ignore[union-attr]
                    st.accept.port = have[0]  # type: ignore[union-attr]
            if not isinstance(st, (*WIRE_STEPS, PeerStep, ExpectPeerState)):
                continue
            conn = getattr(st, "conn", None)
            if isinstance(st, ExpectPeerState) and st.port is not None and conn is None:
                continue
            if conn is not None and conn not in opened:
                hint = did_you_mean(conn, sorted(opened)) or (
                    f" (connections: {', '.join(sorted(opened))})" if opened else
                    " (a peer connect or accept opens one)")
                self.err((*args, "conn"), f"unknown connection {show(conn)}{hint}")
            st.conn = conn or "c"  # type: ignore[union-attr]
