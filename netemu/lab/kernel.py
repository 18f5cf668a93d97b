"""Client side of the kernel agent (``agent.py``): ``KernelAgent`` (blocking calls) and
its ``.aio`` twin ``AsyncKernelAgent`` (the same methods, awaitable, for code running
on the event loop that also runs the emulated host: a blocking ``accept`` there would
stall the very host it waits for).

Both share one pipe; requests carry ids, so several async calls may be in flight
(the agent serves each on its own thread). Sockets are named by the ints the agent
hands out.
"""

from __future__ import annotations

import contextlib
import fcntl
import itertools
import json
import os
import select
import time
from collections.abc import Callable, Coroutine
from typing import TYPE_CHECKING, Any, Generic, NamedTuple, ParamSpec, TypeVar, overload

if TYPE_CHECKING:
    from .process import LabProcess

AGENT_PATH = os.path.join(os.path.dirname(os.path.abspath(__file__)), "agent.py")
_MARGIN = 5.0  # client-side grace over the agent's own timeout
P = ParamSpec("P")
T = TypeVar("T")


class AgentError(Exception):
    """The agent refused or failed a request; ``error`` is an errno name (``ECONNREFUSED``,
    ``ECONNRESET``...), ``timeout``, ``EOF`` (the agent is gone) or ``badrequest``."""

    def __init__(self, op: str, error: str, message: str = "") -> None:
        super().__init__(
            f"{op}: {error}: {message}" if message and message != error else f"{op}: {error}"
        )
        self.op = op
        self.error = error
        self.message = message


class AgentTimeout(AgentError, TimeoutError):
    pass


class Listening(NamedTuple):
    sock: int
    port: int


class Accepted(NamedTuple):
    sock: int
    peer: tuple[str, int]
    local: tuple[str, int]


class Connected(NamedTuple):
    sock: int
    local: tuple[str, int]
    peer: tuple[str, int] | None  # None until connected (``wait=False``)


def _addr(a: Any) -> tuple[str, int] | None:
    return (a[0], int(a[1])) if a else None


def _listening(r: dict[str, Any]) -> Listening:
    return Listening(r["sock"], r["port"])


def _accepted(r: dict[str, Any]) -> Accepted:
    return Accepted(r["sock"], _addr(r["peer"]), _addr(r["local"]))  # type: ignore[arg-type]


def _connected(r: dict[str, Any]) -> Connected:
    return Connected(r["sock"], _addr(r["local"]), _addr(r.get("peer")))  # type: ignore[arg-type]


def _data(r: dict[str, Any]) -> bytes:
    return r["data"]


def _none(r: dict[str, Any]) -> None:
    return None


def _same(r: dict[str, Any]) -> dict[str, Any]:
    return r


class _Channel:
    """The pipe pair and the replies read so far (shared by the sync and async faces).

    Bytes travel raw: a message whose JSON line has ``"payload": N`` is followed on the
    pipe by exactly N bytes, its ``data`` (agent.py's docstring has the protocol). A
    reply's payload is read straight into a buffer of its size, so a read of N bytes
    costs netemu N bytes of pipe and, for a moment, twice N of memory (the buffer, then
    the bytes handed out); the lines in between are small."""

    def __init__(self, proc: LabProcess) -> None:
        assert proc.popen.stdin is not None and proc.popen.stdout is not None
        self.proc = proc
        self.wfd = proc.popen.stdin.fileno()
        self.rfd = proc.popen.stdout.fileno()
        os.set_blocking(self.rfd, False)
        for fd in (self.rfd, self.wfd):  # 1 MiB pipes: 16 times fewer wake-ups than 64 KiB
            with contextlib.suppress(OSError):
                fcntl.fcntl(fd, fcntl.F_SETPIPE_SZ, 1 << 20)
        self.buf = bytearray()  # the start of a line whose end has not come yet
        self.body: tuple[dict[str, Any], bytearray, int] | None = None  # payload coming
        self.replies: dict[int, dict[str, Any]] = {}
        self.ids = itertools.count(1)
        self.eof = False
        self.alock: Any = None  # anyio.Lock, made on first async use

    def send(self, op: str, args: dict[str, Any]) -> int:
        if self.eof:
            raise AgentError(op, "EOF", "the agent has exited")
        rid = next(self.ids)
        req = {"id": rid, "op": op, **{k: v for k, v in args.items() if v is not None}}
        payload = req.pop("data", None)
        if payload is not None:
            payload = memoryview(payload).cast("B")
            req["payload"] = len(payload)
        line = (json.dumps(req) + "\n").encode()
        try:
            for view in (memoryview(line), payload):
                while view:
                    view = view[os.write(self.wfd, view) :]
        except (BrokenPipeError, OSError) as e:
            self.eof = True
            raise AgentError(op, "EOF", f"the agent has exited ({e})") from None
        return rid

    def read_some(self) -> bool:
        """Read what is there; False when nothing was (EAGAIN)."""
        try:
            if self.body is not None:  # straight into the payload's buffer
                msg, body, got = self.body
                n = os.readv(self.rfd, [memoryview(body)[got:]])
                if n:
                    self._body_bytes(msg, body, got + n)
                else:
                    self.eof = True
                return True
            chunk = os.read(self.rfd, 1 << 20)
        except BlockingIOError:
            return False
        if not chunk:
            self.eof = True
            return True
        view = memoryview(chunk)
        pos, end = 0, len(chunk)
        while pos < end:
            if self.body is not None:
                msg, body, got = self.body
                take = min(end - pos, len(body) - got)
                body[got : got + take] = view[pos : pos + take]
                pos += take
                self._body_bytes(msg, body, got + take)
                continue
            # Only the new bytes are searched for a line's end (re-splitting everything
            # read so far at each chunk made a 100 MiB reply take 223 s).
            nl = chunk.find(b"\n", pos)
            if nl < 0:
                self.buf += view[pos:]
                break
            line = bytes(self.buf + view[pos:nl]) if self.buf else chunk[pos:nl]
            self.buf.clear()
            pos = nl + 1
            if line.strip():
                self._message(json.loads(line))
        return True

    def _message(self, msg: dict[str, Any]) -> None:
        size = msg.pop("payload", None)
        if isinstance(size, int) and size > 0:
            self.body = (msg, bytearray(size), 0)
            return
        if size is not None:
            msg["data"] = b""
        if isinstance(msg.get("id"), int):
            self.replies[msg["id"]] = msg

    def _body_bytes(self, msg: dict[str, Any], body: bytearray, got: int) -> None:
        if got < len(body):
            self.body = (msg, body, got)
            return
        self.body = None
        msg["data"] = bytes(body)
        if isinstance(msg.get("id"), int):
            self.replies[msg["id"]] = msg

    def take(self, op: str, rid: int) -> dict[str, Any] | None:
        msg = self.replies.pop(rid, None)
        if msg is None:
            if self.eof:
                raise AgentError(op, "EOF", "the agent exited before replying")
            return None
        if not msg.get("ok"):
            err = msg.get("error", "error")
            cls = AgentTimeout if err == "timeout" else AgentError
            raise cls(op, err, msg.get("message", ""))
        msg.pop("id", None)
        msg.pop("ok", None)
        return msg


def _client_deadline(args: dict[str, Any]) -> float | None:
    t = args.get("timeout", 10.0)
    return None if t is None else time.monotonic() + float(t) + _MARGIN


_Request = tuple[str, dict[str, Any]]  # an op's name and its arguments


def _sent(r: dict[str, Any]) -> int:
    return int(r["sent"])


def _opts(r: dict[str, Any]) -> dict[str, Any]:
    return dict(r["opts"])


def _sockets(r: dict[str, Any]) -> dict[int, str]:
    return {int(k): v for k, v in r["sockets"].items()}


class _Op(Generic[P, T]):
    """One agent operation, written once: ``request`` turns the caller's arguments into
    the op and its arguments, ``conv`` the reply into the result. On a ``KernelAgent`` it
    is a blocking method; on an ``AsyncKernelAgent`` a coroutine method."""

    def __init__(self, request: Callable[P, _Request], conv: Callable[[dict[str, Any]], T]) -> None:
        self.request = request
        self.conv = conv
        self.__doc__ = request.__doc__

    @overload
    def __get__(self, agent: None, owner: type) -> _Op[P, T]: ...
    @overload
    def __get__(self, agent: KernelAgent, owner: type) -> Callable[P, T]: ...
    @overload
    def __get__(
        self, agent: AsyncKernelAgent, owner: type
    ) -> Callable[P, Coroutine[Any, Any, T]]: ...

    def __get__(self, agent: KernelAgent | AsyncKernelAgent | None, owner: type) -> Any:
        if agent is None:
            return self
        request, conv = self.request, self.conv

        def call(*args: P.args, **kwargs: P.kwargs) -> Any:
            op, req = request(*args, **kwargs)
            return agent._do(op, req, conv)

        return call


# The requests, one per op: the arguments each op takes, and what it sends.


def _ping() -> _Request:
    return "ping", {"timeout": 5.0}


def _listen(
    port: int = 0, *, host: str = "0.0.0.0", backlog: int = 16, opts: dict[str, Any] | None = None
) -> _Request:
    return "listen", {"port": port, "host": host, "backlog": backlog, "opts": opts, "timeout": 5.0}


def _accept(
    sock: int, *, timeout: float | None = 10.0, opts: dict[str, Any] | None = None
) -> _Request:
    return "accept", {"sock": sock, "timeout": timeout, "opts": opts}


def _connect(
    host: str,
    port: int,
    *,
    timeout: float | None = 10.0,
    wait: bool = True,
    bind: tuple[str, int] | None = None,
    opts: dict[str, Any] | None = None,
) -> _Request:
    """Connect; ``wait=False`` returns once the SYN is on its way (then
    ``wait_connected``). ``opts`` are set before the SYN (window, MSS, CC...)."""
    return "connect", {
        "host": host,
        "port": port,
        "timeout": timeout,
        "wait": wait,
        "bind": bind,
        "opts": opts,
    }


def _wait_connected(sock: int, *, timeout: float | None = 10.0) -> _Request:
    return "wait_connected", {"sock": sock, "timeout": timeout}


def _send(sock: int, data: bytes, *, timeout: float | None = 10.0) -> _Request:
    return "send", {"sock": sock, "data": data, "timeout": timeout}


def _recv(
    sock: int, max: int = 65536, *, exact: int | None = None, timeout: float | None = 10.0
) -> _Request:
    """Up to ``max`` bytes (whatever one read returns), or with ``exact`` that many
    unless EOF comes first. ``b""``: EOF. A timeout raises ``AgentTimeout``."""
    return "recv", {"sock": sock, "max": max, "exact": exact, "timeout": timeout}


def _shutdown(sock: int, how: str = "wr") -> _Request:
    return "shutdown", {"sock": sock, "how": how, "timeout": 5.0}


def _close(sock: int) -> _Request:
    return "close", {"sock": sock, "timeout": 5.0}


def _abort(sock: int) -> _Request:
    """Close with SO_LINGER 0: the kernel sends RST."""
    return "abort", {"sock": sock, "timeout": 5.0}


def _setsockopt(sock: int, opts: dict[str, Any]) -> _Request:
    return "setsockopt", {"sock": sock, "opts": opts, "timeout": 5.0}


def _getsockopt(sock: int, *names: str) -> _Request:
    return "getsockopt", {"sock": sock, "names": list(names), "timeout": 5.0}


def _info(sock: int) -> _Request:
    """TCP_INFO highlights (state, cc, wscale, rtt, cwnd) and buffer sizes."""
    return "info", {"sock": sock, "timeout": 5.0}


def _list_sockets() -> _Request:
    return "sockets", {"timeout": 5.0}


def _echo(port: int = 0, *, host: str = "0.0.0.0", opts: dict[str, Any] | None = None) -> _Request:
    """Serve an echo server on ``port`` (every connection echoes until EOF). Stop it
    with ``close(sock)``."""
    return "echo", {"port": port, "host": host, "opts": opts, "timeout": 5.0}


def _source(
    sock: int,
    nbytes: int,
    *,
    chunk: int = 65536,
    timeout: float | None = 60.0,
    then: str | None = None,
) -> _Request:
    """Send ``nbytes`` of a fixed pattern; ``then`` = ``"shutdown"`` or ``"close"``.
    Returns ``{"sent", "seconds"}``."""
    return "source", {
        "sock": sock,
        "bytes": nbytes,
        "chunk": chunk,
        "timeout": timeout,
        "then": then,
    }


def _sink(sock: int, *, timeout: float | None = 60.0, max: int | None = None) -> _Request:
    """Read and discard until EOF (or ``max`` bytes). Returns ``{"bytes", "eof",
    "seconds"}``."""
    return "sink", {"sock": sock, "timeout": timeout, "max": max}


class _Ops:
    """Every agent operation; ``_do`` makes it blocking or awaitable."""

    ping = _Op(_ping, _same)
    listen = _Op(_listen, _listening)
    accept = _Op(_accept, _accepted)
    connect = _Op(_connect, _connected)
    wait_connected = _Op(_wait_connected, _same)
    send = _Op(_send, _sent)
    recv = _Op(_recv, _data)
    shutdown = _Op(_shutdown, _none)
    close = _Op(_close, _none)
    abort = _Op(_abort, _none)
    setsockopt = _Op(_setsockopt, _none)
    getsockopt = _Op(_getsockopt, _opts)
    info = _Op(_info, _same)
    sockets = _Op(_list_sockets, _sockets)
    echo = _Op(_echo, _listening)
    source = _Op(_source, _same)
    sink = _Op(_sink, _same)


class KernelAgent(_Ops):
    """Blocking client of a kernel agent the lab started (``Lab.start_agent``)."""

    def __init__(self, proc: LabProcess) -> None:
        self.proc = proc
        self.pid = proc.pid
        self._ch = _Channel(proc)
        self.aio = AsyncKernelAgent(self._ch)

    def __repr__(self) -> str:
        return f"<KernelAgent pid={self.pid}>"

    # generic request API: start several, collect later
    def submit(self, op: str, **args: Any) -> int:
        return self._ch.send(op, args)

    def result(self, op: str, rid: int, *, deadline: float | None = None) -> dict[str, Any]:
        ch = self._ch
        while True:
            msg = ch.take(op, rid)
            if msg is not None:
                return msg
            if ch.read_some():
                continue
            left = None if deadline is None else deadline - time.monotonic()
            if left is not None and left <= 0:
                raise AgentTimeout(op, "timeout", "no reply from the agent")
            select.select([ch.rfd], [], [], left)

    def call(self, op: str, **args: Any) -> dict[str, Any]:
        return self.result(op, self.submit(op, **args), deadline=_client_deadline(args))

    def _do(self, op: str, args: dict[str, Any], conv: Callable[[dict[str, Any]], T]) -> T:
        return conv(self.call(op, **args))

    def stop(self) -> int:
        return self.proc.stop()


class AsyncKernelAgent(_Ops):
    """The same operations as ``KernelAgent``, as coroutines (anyio: asyncio or trio)."""

    def __init__(self, ch: _Channel) -> None:
        self._ch = ch

    async def call(self, op: str, **args: Any) -> dict[str, Any]:
        import anyio

        ch = self._ch
        if ch.alock is None:
            ch.alock = anyio.Lock()
        rid = ch.send(op, args)
        deadline = _client_deadline(args)
        while True:
            msg = ch.take(op, rid)
            if msg is not None:
                return msg
            async with ch.alock:  # one reader at a time; it files replies for the others
                if rid in ch.replies or ch.eof:
                    continue
                if ch.read_some():
                    continue
                left = None if deadline is None else deadline - time.monotonic()
                if left is not None and left <= 0:
                    raise AgentTimeout(op, "timeout", "no reply from the agent")
                with anyio.move_on_after(left):
                    await anyio.wait_readable(ch.rfd)

    async def _do(self, op: str, args: dict[str, Any], conv: Callable[[dict[str, Any]], T]) -> T:
        return conv(await self.call(op, **args))
