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
which ``netemu schema`` publishes).

This module is the top of the format: ``Scenario``, the union of steps and the
table of actions (``STEP_TYPES``). Below it, by concern: ``fields`` (typed fields,
``Strict``, ``fail``), ``options`` (TcpConfig's fields as ``Options``), ``peers``
(peers, sysctls, socket options, network, connections), ``steps`` (connection and
peer steps), ``segments`` (wire-level steps and segment matches) and ``checks``
(cross-field rules). The runners use the step models through this module's names
(``__all__``). Layer rule: pydantic and the standard library only (plus netemu.tcp
for TcpConfig and State, and the leaf netemu.sockopts): no scapy, no lab.
"""

# No `from __future__ import annotations` here: pydantic would evaluate every field's
# annotation from its string, compiling each (~6 ms of every `netemu run`).
import typing
from typing import Annotated, Any, ClassVar, Self, Union

from pydantic import (
    BaseModel,
    BeforeValidator,
    Discriminator,
    Field,
    PrivateAttr,
    Tag,
    TypeAdapter,
    ValidationInfo,
    field_validator,
    model_validator,
)
from pydantic_core import core_schema

from netemu.tcp.config import TcpConfig

from .checks import Checker, RelayChecker
from .fields import BOOL, Family, Mode, PositiveDuration, Seed, Strict, Text, fail, parse_name
from .options import Options, options_to_config
from .peers import ConnectionSpec, Network, Peer, Sysctls
from .segments import Drop, ExpectNoSegment, ExpectSegment, Inject, TcpOptionSpec
from .steps import (
    Abort,
    Accept,
    Close,
    Connect,
    ExpectData,
    ExpectEvent,
    ExpectPeerState,
    ExpectState,
    Listen,
    PeerStep,
    Recv,
    Send,
    Shutdown,
    Sleep,
    StepBase,
    Tagged,
)
from .units import UnitError, did_you_mean, show

# `netemu run --ipv6`'s link: IPv6's header is 20 bytes longer than IPv4's, so a
# 1520-byte link gives both ends the MSS a 1500-byte one gives IPv4 (1460).
IPV6_OVERRIDE_MTU = 1520

# The step models, for the runners (``schema.Connect`` ...), and the top of the format.
__all__ = [
    "STEP_TYPES",
    "Abort",
    "Accept",
    "Close",
    "Connect",
    "Drop",
    "ExpectData",
    "ExpectEvent",
    "ExpectNoSegment",
    "ExpectPeerState",
    "ExpectSegment",
    "ExpectState",
    "Inject",
    "Listen",
    "PeerStep",
    "Recv",
    "Scenario",
    "Send",
    "Shutdown",
    "Sleep",
    "Step",
    "StepBase",
    "TcpOptionSpec",
]

STEP_TYPES: dict[str, type[StepBase]] = {
    cls.ACTION: cls
    for cls in (
        Connect,
        Listen,
        Accept,
        Send,
        Recv,
        Shutdown,
        Close,
        Abort,
        Sleep,
        PeerStep,
        Drop,
        Inject,
        ExpectState,
        ExpectPeerState,
        ExpectSegment,
        ExpectNoSegment,
        ExpectData,
        ExpectEvent,
    )
}


def _step_shape(value: Any) -> Any:
    if isinstance(value, str):
        if value in STEP_TYPES:
            return Tagged(value, None)
        raise fail(f"unknown step {show(value)}{_step_hint(value)}")
    if isinstance(value, Tagged):
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
            raise fail(
                f"'{extra}' looks like an argument of '{first}': indent it under '{first}'",
                extra,
                key=True,
            )
        raise fail(
            f"a step has exactly one action; this one also has {show(extra)} "
            "(start another step with '- ')",
            extra,
            key=True,
        )
    return Tagged(first, value[first])


def _step_hint(word: str) -> str:
    return did_you_mean(word, STEP_TYPES) or f" (steps: {', '.join(STEP_TYPES)})"


def _field_names(cls: type[BaseModel]) -> list[str]:
    return [f.alias or n for n, f in cls.model_fields.items()]


def _step_tag(value: Any) -> str | None:
    if isinstance(value, Tagged | StepBase):
        return value.action
    return None


if typing.TYPE_CHECKING:  # the union STEP_TYPES makes, as mypy reads it
    Step: typing.TypeAlias = (
        Connect
        | Listen
        | Accept
        | Send
        | Recv
        | Shutdown
        | Close
        | Abort
        | Sleep
        | PeerStep
        | Drop
        | Inject
        | ExpectState
        | ExpectPeerState
        | ExpectSegment
        | ExpectNoSegment
        | ExpectData
        | ExpectEvent
    )
else:
    Step = Annotated[
        Union[tuple(Annotated[cls, Tag(name)] for name, cls in STEP_TYPES.items())],  # noqa: UP007
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
            for name, cls in STEP_TYPES.items()
        }
        return core_schema.no_info_before_validator_function(
            _step_shape, core_schema.tagged_union_schema(choices, _step_tag)
        )

    def __get_pydantic_json_schema__(
        self, schema: core_schema.CoreSchema, handler: Any
    ) -> dict[str, Any]:
        json_schema: dict[str, Any] = handler(TypeAdapter(Step).core_schema)
        return json_schema


# --- the scenario ----------------------------------------------------------------


def _connections_short(value: Any) -> Any:
    """``connections: [c, d]`` is short for ``{c: {}, d: {}}``."""
    if not isinstance(value, list):
        return value
    out: dict[str, Any] = {}
    spec: Any
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
                parse_name(k)
            except UnitError as e:
                raise fail(str(e), str(k), key=True) from None
    return value


# Defaults of model type below are made with ``model_construct`` (what validating an
# empty mapping gives; Network's merge run by hand), so that loading builds only
# Scenario's validator, not also one for each default's own model.
class Scenario(Strict):
    """One scenario file."""

    NOUN: ClassVar[str] = "the scenario (top level)"

    name: Text = Field(description="short identifier, used for the run directory")
    description: Text = Field("", description="what this scenario shows or teaches")
    mode: Mode = Field(
        "endpoint",
        description="endpoint: netemu is one end of every "
        "connection; relay: netemu bridges two kernel peers (client, server) "
        "and impairs, drops and records their frames",
    )
    family: Family = Field(
        "ipv4",
        description="ipv4 (198.18.0.1 ⇄ 198.18.0.2; relay mode's peers 198.18.0.2 ⇄ "
        "198.18.0.3) or ipv6 (2001:2::1 ⇄ 2001:2::2; relay: 2001:2::2 ⇄ 2001:2::3): the "
        "addresses of every connection (a connection's own `family` wins); `netemu run "
        "--ipv6` runs a scenario over IPv6",
    )
    peer: Peer | None = Field(None, description="the peer, when there is one: `peer: kernel`")
    peers: Annotated[dict[str, Peer], BeforeValidator(_name_keys)] = Field(
        default_factory=dict, description="named peers (instead of `peer`)"
    )
    options: Options = Field(default_factory=lambda: Options.model_construct())
    sysctls: Sysctls = Field(
        default_factory=dict, description="net.* sysctls for every peer's namespace"
    )
    network: Network = Field(default_factory=lambda: Network.model_construct().merge_directions())
    connections: Annotated[
        dict[str, ConnectionSpec], BeforeValidator(_name_keys), BeforeValidator(_connections_short)
    ] = Field(default_factory=dict)
    relative: BOOL = Field(True, description="seq/ack relative to the ISNs (like Wireshark)")
    timeout: PositiveDuration = Field(3.0, description="default wait for each step")
    seed: Seed | None = Field(None, description="seed for ISNs and impairments")
    steps: Annotated[list[Annotated[Step, _ByAction()]], Field(min_length=1)]
    _link_mtu: int = PrivateAttr(1500)  # the lab's (as_ipv6: IPV6_OVERRIDE_MTU)

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
            step.place(*pos)
        problems = (RelayChecker if self.mode == "relay" else Checker)(self).run()
        if not problems:
            return self
        sink = ctx.get("problems")
        if isinstance(sink, list):
            sink.extend(problems)
            return self
        raise fail(
            "; ".join(f"{'.'.join(map(str, p.loc)) or 'scenario'}: {p.message}" for p in problems)
        )

    def family_of(self, conn: str | None) -> str:
        """The family of connection ``conn``'s addresses: its own, else the scenario's."""
        spec = self.connections.get(conn or self.default_conn())
        return spec.family if spec is not None and spec.family else self.family

    def as_ipv6(self) -> Self:
        """This scenario over IPv6 (``netemu run --ipv6``), on a link 20 bytes wider
        (``IPV6_OVERRIDE_MTU``) so that both ends' MSS stays IPv4's 1460: the segment
        sizes and sequence numbers the scenario counts with hold. A scenario with an
        IPv6 connection already is written for IPv6's own MSS: its link stays."""
        sc = self.model_copy(update={"family": "ipv6"})
        if not self.uses_ipv6():
            sc._link_mtu = IPV6_OVERRIDE_MTU
        return sc

    def uses_ipv6(self) -> bool:
        """Does any connection of the run go over IPv6 (its lab needs IPv6)?"""
        return self.family == "ipv6" or any(c.family == "ipv6" for c in self.connections.values())

    def default_conn(self) -> str:
        return next(iter(self.connections)) if len(self.connections) == 1 else "c"

    def config_for(self, conn: str | None = None, *layers: BaseModel | None) -> TcpConfig:
        """TcpConfig for a connection: scenario options, then the connection's, then
        any step's (e.g. ``Connect.options``)."""
        spec = self.connections.get(conn) if conn else None
        return options_to_config(self.options, spec.options if spec else None, *layers)
