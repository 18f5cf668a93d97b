"""Peers, sysctls, socket options, network impairments and named connections: the
parts of a scenario around its steps.

Layer rule: builds on ``scenario.fields`` and ``scenario.options``; socket option
names come from the leaf ``netemu.sockopts`` (not from the lab).
"""

# No `from __future__ import annotations` here: pydantic would evaluate every field's
# annotation from its string, compiling each (~6 ms of every `netemu run`).
import re
from typing import Annotated, Any, ClassVar, Self

from pydantic import BeforeValidator, ConfigDict, Field, WithJsonSchema, model_validator

from netemu.sockopts import OPTIONS as SOCKET_OPTIONS

from .fields import (
    BOOL,
    STR,
    Duration,
    Family,
    Name,
    PeerKind,
    Percent,
    Port,
    Rate,
    Seed,
    Strict,
    fail,
)
from .options import Options
from .units import did_you_mean, show

# --- peers, sysctls, network --------------------------------------------------

_SYSCTL_RE = re.compile(r"^[a-z0-9_-]+(\.[a-zA-Z0-9_-]+)+$")


def _normalise_sysctls(value: Any) -> Any:
    if not isinstance(value, dict):
        return value
    out: dict[str, str] = {}
    for k, v in value.items():
        if not isinstance(k, str):
            raise fail(
                f"expected a sysctl name such as net.ipv4.tcp_sack, got {show(k)}", str(k), key=True
            )
        name = k.strip().replace("/", ".")
        if name.startswith("proc.sys."):
            name = name[len("proc.sys.") :]
        if not _SYSCTL_RE.match(name):
            raise fail(f"bad sysctl name {show(k)} (e.g. net.ipv4.tcp_sack)", k, key=True)
        if not name.startswith("net."):
            raise fail(
                f"sysctl {show(k)} is not per network namespace: only net.* sysctls "
                "can be set in a lab",
                k,
                key=True,
            )
        if isinstance(v, bool):
            text = "1" if v else "0"
        elif isinstance(v, int | str):
            text = str(v)
        elif (
            isinstance(v, list)
            and v
            and all(isinstance(x, int) and not isinstance(x, bool) for x in v)
        ):
            text = " ".join(str(x) for x in v)
        else:
            raise fail(f"expected a number, a string or a list of numbers, got {show(v)}", k)
        out[name] = text
    return out


Sysctls = Annotated[
    dict[str, str],
    BeforeValidator(_normalise_sysctls),
    WithJsonSchema(
        {
            "type": "object",
            "additionalProperties": {
                "anyOf": [
                    {"type": "integer"},
                    {"type": "string"},
                    {"type": "boolean"},
                    {"type": "array", "items": {"type": "integer"}},
                ]
            },
            "description": "net.* sysctls for the peer's namespace",
        }
    ),
]


def _normalise_sockopts(value: Any) -> Any:
    if not isinstance(value, dict):
        return value
    known = list(SOCKET_OPTIONS)
    out: dict[str, Any] = {}
    for k, v in value.items():
        name = str(k).upper()
        if name not in known:
            hint = did_you_mean(name, known) or f" (known: {', '.join(known)})"
            raise fail(f"unknown socket option {show(k)}{hint}", k, key=True)
        if not isinstance(v, int | str | bool) and not (
            isinstance(v, list) and all(isinstance(x, int) for x in v)
        ):
            raise fail(f"expected a number, a string or true/false, got {show(v)}", k)
        out[name] = int(v) if isinstance(v, bool) else v
    return out


SockOpts = Annotated[
    dict[str, Any],
    BeforeValidator(_normalise_sockopts),
    WithJsonSchema(
        {
            "type": "object",
            "description": "socket options: SO_RCVBUF, TCP_NODELAY, TCP_CONGESTION, ...",
        }
    ),
]


DEFAULT_PORTS = {"go-hello": 8080, "go-echo": 8081}  # where the built-in Go servers listen


class Peer(Strict):
    """A real peer in its own namespace. Short form: ``peer: kernel``."""

    NOUN: ClassVar[str] = "peer"

    kind: PeerKind = Field(
        description="kernel: the kernel agent (takes `peer:` steps); "
        "go-hello / go-echo: the built-in Go servers; command: any program"
    )
    command: list[STR] | None = Field(
        None, description="argv for kind: command (a string is split like a shell would)"
    )
    port: Port | None = Field(
        None, description="where a server peer listens (default: 8080 go-hello, 8081 go-echo)"
    )
    sysctls: Sysctls = Field(default_factory=dict)
    congestion_control: STR | None = Field(
        None,
        description="the peer's algorithm (set per socket where the namespace refuses the sysctl)",
    )
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
            raise fail(
                f"'command' is only for kind: command (this peer is {self.kind})",
                "command",
                key=True,
            )
        if self.kind != "command" and self.env:
            raise fail(
                f"'env' is only for kind: command (this peer is {self.kind}, whose "
                "environment netemu does not set)",
                "env",
                key=True,
            )
        if self.congestion_control is not None and not re.fullmatch(
            r"[a-z0-9_]+", self.congestion_control
        ):
            raise fail(
                f"bad congestion control name {show(self.congestion_control)}", "congestion_control"
            )
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
        return self.merge_directions()

    def merge_directions(self) -> Self:
        """``out`` and ``in_`` made the effective settings: the keys at this level, then
        each direction's own."""
        both = Impairment.model_construct(
            **{k: getattr(self, k) for k in self.model_fields_set if k in Impairment.model_fields}
        )
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
    family: Family | None = Field(None, description="ipv4 or ipv6 (default: the scenario's)")
    options: Options | None = None

    @model_validator(mode="before")
    @classmethod
    def _none(cls, data: Any) -> Any:
        return {} if data is None else data
