"""The steps of a scenario that act on connections and peers (``Connect``, ``Send``,
``PeerStep``, ``ExpectState`` ...), their base ``StepBase`` and the field mixins they
share. The wire-level steps (``Drop``, ``Inject``, ``ExpectSegment``,
``ExpectNoSegment``) are in ``scenario.segments``.

Layer rule: builds on ``scenario.fields``, ``scenario.options`` and ``scenario.peers``.
"""

# No `from __future__ import annotations` here: pydantic would evaluate every field's
# annotation from its string, compiling each (~6 ms of every `netemu run`).
import builtins
from typing import Any, ClassVar, Self

from pydantic import BaseModel, ConfigDict, Field, PrivateAttr, model_validator

from . import units
from .fields import (
    BOOL,
    STR,
    Count,
    Duration,
    EventName,
    Hex,
    Name,
    Port,
    PositiveDuration,
    ShutdownHow,
    Size,
    StateName,
    Strict,
    exactly_one,
    fail,
)
from .options import Options
from .peers import SockOpts
from .units import did_you_mean, show

# --- steps ---------------------------------------------------------------------


class Tagged:
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
        if isinstance(data, Tagged):
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

    def place(self, line: int, col: int) -> None:
        """Where the step starts in the file (the loader knows)."""
        self._line, self._col = line, col

    def where(self) -> str:
        return f"line {self._line}" if self._line else self.ACTION


class Fields(BaseModel):
    """Base of the field mixins below: built only as part of the models using them."""

    model_config = ConfigDict(defer_build=True)


class ConnMixin(Fields):
    conn: Name | None = Field(
        None, description="connection name (default: the only declared connection, else 'c')"
    )


class TimeoutMixin(Fields):
    timeout: PositiveDuration | None = Field(
        None, description="how long to wait (default: the scenario's timeout)"
    )


class WithinMixin(Fields):
    within: Duration | None = Field(
        None, description="deadline from the start of the step (default: the scenario's timeout)"
    )


class PayloadMixin(Fields):
    data: STR | None = Field(None, description="text, sent as UTF-8 (YAML escapes apply)")
    hex: Hex | None = Field(None, description="bytes as hex digits")
    bytes: Size | None = Field(None, description="N bytes of the pattern 00 01 .. ff 00 ..")

    def payload(self) -> "builtins.bytes | None":
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
        exactly_one(self, ("data", "hex", "bytes"), "a payload")
        return self


class Connect(StepBase, ConnMixin, TimeoutMixin):
    """Active open to the peer. ``connect: 8080`` is short for ``connect: {port: 8080}``."""

    ACTION: ClassVar[str] = "connect"
    SHORT: ClassVar[str | None] = "port"

    port: Port | None = Field(
        None,
        description="the peer's port (default: the connection's port, or a server peer's port)",
    )
    peer: Name | None = None
    local_port: Port | None = None
    wait: BOOL = Field(True, description="wait for ESTABLISHED (false: go on once the SYN is sent)")
    options: Options | None = None


class Listen(StepBase):
    """Passive open on netemu's side: the peer connects to ``port``."""

    ACTION: ClassVar[str] = "listen"
    SHORT: ClassVar[str | None] = "port"

    port: Port
    backlog: Count = 16
    options: Options | None = None


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
        exactly_one(self, ("data", "hex", "bytes"), "send")
        return self


class Recv(StepBase, ConnMixin, PayloadMixin, TimeoutMixin):
    """Read from the connection: exactly ``data``/``hex`` (compared), ``bytes`` N
    (not compared), or everything ``until_eof``."""

    ACTION: ClassVar[str] = "recv"
    SHORT: ClassVar[str | None] = "data"

    until_eof: BOOL = False

    @model_validator(mode="after")
    def _one(self) -> Self:
        exactly_one(self, ("data", "hex", "bytes", "until_eof"), "recv")
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


PEER_ACTIONS = (
    "send",
    "read",
    "expect",
    "shutdown",
    "close",
    "abort",
    "accept",
    "connect",
    "listen",
    "setsockopt",
)


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
            raise fail(
                f"unknown peer action {show(args)}{did_you_mean(args, PEER_ACTIONS)}"
                " (bare forms: close, abort, accept, shutdown)"
            )
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
        exactly_one(self, PEER_ACTIONS, "a peer step")
        return self

    @property
    def command(self) -> str:
        """Which of PEER_ACTIONS this step is."""
        return next(n for n in PEER_ACTIONS if getattr(self, n) not in (None, False))


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
        exactly_one(self, ("data", "hex", "bytes"), "expect_data")
        return self


class ExpectEvent(StepBase, ConnMixin, WithinMixin):
    """The connection reports ``event``: connected, reset, refused, timeout, eof, closed."""

    ACTION: ClassVar[str] = "expect_event"
    SHORT: ClassVar[str | None] = "event"

    event: EventName
