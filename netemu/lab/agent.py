"""The kernel agent: drives real kernel TCP sockets on command. Standard library only;
the lab runs it as ``python -I -S agent.py`` inside the peer namespace.

Protocol: one JSON object per line, some followed by raw bytes (below). Requests on
stdin, ``{"id": N, "op": "...", ...}``; replies on stdout, ``{"id": N, "ok": true,
...}`` or ``{"id": N, "ok": false, "error": "ECONNREFUSED" | "timeout" | "EOF" |
"badrequest" | ..., "message": "..."}``.
Each request runs on a worker thread of its own (threads are reused, never ended
while the agent lives), so a blocking ``accept`` or ``recv`` never holds up the
next request; replies may come back out of order (match them by id).
The agent exits when stdin closes.

Bytes travel raw, never inside the JSON: a line with ``"payload": N`` (either way) is
followed by exactly N bytes, the message's ``data``, then the next line. So
``send`` is ``{"id": 1, "op": "send", "sock": 3, "payload": 5}\\nhello`` and a
``recv`` reply ``{"id": 2, "ok": true, "eof": false, "len": 5, "payload": 5}\\nhello``.
A read of N bytes costs N bytes of pipe and of the agent's memory, and no parsing.

Sockets are named by small integers (``sock``). Options (``opts``) are a dict of
names from ``OPTIONS`` (``SO_RCVBUF``, ``TCP_NODELAY``, ``TCP_CONGESTION``, ...).
When ``NETEMU_TCP_CONGESTION`` is set (the lab sets it where the namespace refuses
the sysctl) every socket the agent creates gets that algorithm per socket.

Ops: ping; listen {port, host, backlog, opts}; accept {sock, timeout}; connect {host,
port, timeout, wait, bind, opts}; wait_connected {sock, timeout}; send {sock,
payload, timeout} -> {sent}; recv {sock, max, exact, timeout} -> {eof, len,
payload}; shutdown {sock, how}; close {sock}; abort {sock}; setsockopt {sock, opts};
getsockopt {sock, names}; info {sock}; echo {port, host, opts}; source {sock, bytes,
chunk, timeout, then}; sink {sock, timeout, max}; sockets; exit.
"""

from __future__ import annotations

import contextlib
import errno
import json
import os
import runpy
import select
import socket
import struct
import sys
import threading
import time

# No typing / base64 imports at run time: they cost ~15 ms of the agent's start-up (base64
# pulls re). The annotations are strings (``from __future__``), read by the type checker only.
TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable
    from typing import Any, BinaryIO

    # A decoded request or reply: JSON values, plus ``data`` (bytes) when it has a payload.
    Message = dict[str, Any]

# The option and state tables are netemu/sockopts.py's (a leaf the scenario format and
# lab/diag.py read too); the agent runs alone (python -I -S, no netemu on its path), so it
# runs that file by its path.
_SOCKOPTS = runpy.run_path(
    os.path.join(os.path.dirname(os.path.abspath(__file__)), os.pardir, "sockopts.py")
)
OPTIONS: dict[str, tuple[int, int, str]] = _SOCKOPTS["OPTIONS"]
_TCP_STATES: dict[int, str] = _SOCKOPTS["TCP_STATES"]
TCP_INFO = 11
_PATTERN = bytes(range(256)) * 256  # 64 KiB


class AgentError(Exception):
    def __init__(self, error: str, message: str = "") -> None:
        super().__init__(message or error)
        self.error = error
        self.message = message or error


def _opt_name(name: str) -> str:
    key = name.upper()
    if key not in OPTIONS:
        raise AgentError("badrequest", f"unknown socket option {name!r}")
    return key


def set_options(s: socket.socket, opts: Message | None) -> None:
    for name, value in (opts or {}).items():
        level, optname, kind = OPTIONS[_opt_name(name)]
        if kind == "str":
            s.setsockopt(level, optname, str(value).encode())
        elif kind == "linger":
            on, secs = (1, int(value)) if isinstance(value, int | float) else value
            s.setsockopt(level, optname, struct.pack("ii", int(on), int(secs)))
        else:
            s.setsockopt(level, optname, int(value))


def get_option(s: socket.socket, name: str) -> Any:
    level, optname, kind = OPTIONS[_opt_name(name)]
    if kind == "str":
        return s.getsockopt(level, optname, 16).rstrip(b"\0").decode()
    if kind == "linger":
        return list(struct.unpack("ii", s.getsockopt(level, optname, 8)))
    return s.getsockopt(level, optname)


class Agent:
    def __init__(self, out: BinaryIO) -> None:
        self.out = out
        self.out_lock = threading.Lock()
        self.socks: dict[int, socket.socket] = {}
        self.kinds: dict[int, str] = {}
        self.stops: dict[int, threading.Event] = {}
        self.next_sid = 1
        self.lock = threading.Lock()
        self.default_cc = os.environ.get("NETEMU_TCP_CONGESTION") or None

    # -- plumbing ---------------------------------------------------------------------
    def reply(self, msg: Message) -> None:
        """One reply; a ``data`` entry (bytes) goes raw after the line, as its payload."""
        data = msg.pop("data", None)
        if data is not None:
            msg["payload"] = len(data)
        line = (json.dumps(msg) + "\n").encode()
        with self.out_lock:  # the line and its payload together, never split by another
            self.out.write(line)
            if data:
                self.out.write(data)  # (larger than the buffer: written from data itself)
            self.out.flush()

    def handle(self, req: Message) -> None:
        rid = req.get("id")
        try:
            op = req.get("op")
            fn = getattr(self, f"op_{op}", None) if isinstance(op, str) else None
            if fn is None:
                raise AgentError("badrequest", f"unknown op {op!r}")
            result = fn(req) or {}
            self.reply({"id": rid, "ok": True, **result})
        except AgentError as e:
            self.reply({"id": rid, "ok": False, "error": e.error, "message": e.message})
        except TimeoutError as e:
            self.reply({"id": rid, "ok": False, "error": "timeout", "message": str(e) or "timeout"})
        except OSError as e:
            name = errno.errorcode.get(e.errno or 0, "OSError")
            self.reply({"id": rid, "ok": False, "error": name, "message": str(e)})
        except Exception as e:
            self.reply({"id": rid, "ok": False, "error": type(e).__name__, "message": str(e)})

    def add(self, s: socket.socket, kind: str) -> int:
        with self.lock:
            sid = self.next_sid
            self.next_sid += 1
            self.socks[sid] = s
            self.kinds[sid] = kind
        return sid

    def sock(self, req: Message) -> socket.socket:
        try:
            return self.socks[int(req["sock"])]
        except (KeyError, TypeError, ValueError):
            raise AgentError("EBADF", f"no socket {req.get('sock')!r}") from None

    def new_socket(self, opts: Message | None, host: str | None = None) -> socket.socket:
        """A TCP socket in ``host``'s family (an IPv6 address: AF_INET6)."""
        family = socket.AF_INET6 if host and ":" in host else socket.AF_INET
        s = socket.socket(family, socket.SOCK_STREAM)
        try:
            if self.default_cc and not any(k.upper() == "TCP_CONGESTION" for k in opts or {}):
                set_options(s, {"TCP_CONGESTION": self.default_cc})
            set_options(s, opts)
        except BaseException:
            s.close()
            raise
        return s

    @staticmethod
    def deadline(req: Message, default: float | None = 10.0) -> float | None:
        t = req.get("timeout", default)
        return None if t is None else time.monotonic() + float(t)

    @staticmethod
    def wait(s: socket.socket, deadline: float | None, write: bool = False) -> None:
        p = select.poll()
        p.register(s, select.POLLOUT if write else select.POLLIN)
        while True:
            left = None if deadline is None else deadline - time.monotonic()
            if left is not None and left <= 0:
                raise TimeoutError("timeout")
            if p.poll(None if left is None else max(1, int(left * 1000))):
                return

    @staticmethod
    def addr(a: Any) -> list[Any] | None:
        return [a[0], a[1]] if isinstance(a, tuple) and len(a) >= 2 else None

    # -- ops ----------------------------------------------------------------------------
    def op_ping(self, req: Message) -> Message:
        return {"pid": os.getpid(), "cc": self.default_cc}

    def op_listen(self, req: Message) -> Message:
        opts = {"SO_REUSEADDR": 1, **(req.get("opts") or {})}
        host = req.get("host", "0.0.0.0")
        s = self.new_socket(opts, host)
        try:
            s.bind((host, int(req.get("port", 0))))
            s.listen(int(req.get("backlog", 16)))
        except BaseException:
            s.close()
            raise
        sid = self.add(s, "listen")
        return {"sock": sid, "port": s.getsockname()[1], "local": self.addr(s.getsockname())}

    def op_accept(self, req: Message) -> Message:
        ls = self.sock(req)
        while True:
            self.wait(ls, self.deadline(req))
            try:
                c, peer = ls.accept()
                break
            except BlockingIOError:
                continue
        c.setblocking(True)
        if req.get("opts"):
            set_options(c, req["opts"])
        sid = self.add(c, "conn")
        return {"sock": sid, "peer": self.addr(peer), "local": self.addr(c.getsockname())}

    def op_connect(self, req: Message) -> Message:
        s = self.new_socket(req.get("opts"), req["host"])
        try:
            if req.get("bind"):
                host, port = req["bind"]
                s.bind((host, int(port)))
            s.setblocking(False)
            err = s.connect_ex((req["host"], int(req["port"])))
            if err not in (0, errno.EINPROGRESS):
                raise OSError(err, os.strerror(err))
        except BaseException:
            s.close()
            raise
        sid = self.add(s, "conn")
        out = {"sock": sid, "local": self.addr(s.getsockname())}
        if req.get("wait", True):
            out.update(self.op_wait_connected({"sock": sid, "timeout": req.get("timeout", 10.0)}))
        return out

    def op_wait_connected(self, req: Message) -> Message:
        s = self.sock(req)
        self.wait(s, self.deadline(req), write=True)
        err = s.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)
        if err:
            raise OSError(err, os.strerror(err))
        s.setblocking(True)
        return {"local": self.addr(s.getsockname()), "peer": self.addr(s.getpeername())}

    def op_send(self, req: Message) -> Message:
        s = self.sock(req)
        data = memoryview(req.get("data", b""))
        deadline = self.deadline(req)
        sent = 0
        while sent < len(data):
            try:
                sent += s.send(data[sent:], socket.MSG_DONTWAIT)
            except BlockingIOError:
                try:
                    self.wait(s, deadline, write=True)
                except TimeoutError:
                    raise AgentError("timeout", f"sent {sent} of {len(data)} bytes") from None
        return {"sent": sent}

    def op_recv(self, req: Message) -> Message:
        s = self.sock(req)
        deadline = self.deadline(req)
        exact = req.get("exact")
        limit = int(exact) if exact is not None else int(req.get("max", 65536))
        # ``exact`` is received in place, into one buffer of its size (recv(n) would
        # allocate the n bytes still missing at every call), handed to reply() as it is.
        buf = memoryview(bytearray(limit)) if exact is not None else None
        got = 0
        eof = False
        while True:
            try:
                if buf is None:  # ``max``: what one read returns
                    data = s.recv(limit, socket.MSG_DONTWAIT)
                    eof = not data
                    return {"data": data, "eof": eof, "len": len(data)}
                if got >= limit:
                    break
                n = s.recv_into(buf[got:], 0, socket.MSG_DONTWAIT)
            except BlockingIOError:
                try:
                    self.wait(s, deadline)
                except TimeoutError:
                    raise AgentError(
                        "timeout", f"received {got} bytes before the timeout"
                    ) from None
                continue
            if not n:
                eof = True
                break
            got += n
        return {"data": buf[:got], "eof": eof, "len": got}

    def op_shutdown(self, req: Message) -> None:
        how = {"rd": socket.SHUT_RD, "wr": socket.SHUT_WR, "rdwr": socket.SHUT_RDWR}.get(
            str(req.get("how", "wr")).lower()
        )
        if how is None:
            raise AgentError("badrequest", f"shutdown how={req.get('how')!r}")
        self.sock(req).shutdown(how)

    def _forget(self, req: Message) -> socket.socket:
        s = self.sock(req)
        sid = int(req["sock"])
        with self.lock:
            self.socks.pop(sid, None)
            self.kinds.pop(sid, None)
            stop = self.stops.pop(sid, None)
        if stop is not None:
            stop.set()
        return s

    def op_close(self, req: Message) -> None:
        s = self._forget(req)
        if self._is_listener(s):  # wakes a thread waiting in accept on it
            with contextlib.suppress(OSError):
                s.shutdown(socket.SHUT_RDWR)
        s.close()

    @staticmethod
    def _is_listener(s: socket.socket) -> bool:
        try:
            return bool(s.getsockopt(socket.SOL_SOCKET, socket.SO_ACCEPTCONN))
        except OSError:
            return False

    def op_abort(self, req: Message) -> None:
        s = self._forget(req)
        s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        s.close()

    def op_setsockopt(self, req: Message) -> None:
        set_options(self.sock(req), req.get("opts"))

    def op_getsockopt(self, req: Message) -> Message:
        s = self.sock(req)
        return {"opts": {n.upper(): get_option(s, n) for n in req.get("names", [])}}

    def op_info(self, req: Message) -> Message:
        s = self.sock(req)
        raw = s.getsockopt(socket.IPPROTO_TCP, TCP_INFO, 256)
        state = raw[0]
        wscale = raw[6]
        rtt, rttvar, ssthresh, cwnd = struct.unpack_from("IIII", raw, 68)
        try:
            peer = self.addr(s.getpeername())
        except OSError:
            peer = None
        return {
            "state": _TCP_STATES.get(state, str(state)),
            "local": self.addr(s.getsockname()),
            "peer": peer,
            "cc": get_option(s, "TCP_CONGESTION"),
            "snd_wscale": wscale & 0xF,
            "rcv_wscale": wscale >> 4,
            "rtt_us": rtt,
            "rttvar_us": rttvar,
            "snd_ssthresh": ssthresh,
            "snd_cwnd": cwnd,
            "rcvbuf": get_option(s, "SO_RCVBUF"),
            "sndbuf": get_option(s, "SO_SNDBUF"),
            "nodelay": get_option(s, "TCP_NODELAY"),
        }

    def op_sockets(self, req: Message) -> Message:
        with self.lock:
            return {"sockets": {str(k): self.kinds[k] for k in self.socks}}

    def op_echo(self, req: Message) -> Message:
        out = self.op_listen(req)
        ls = self.socks[out["sock"]]
        ls.setblocking(False)
        stop = threading.Event()
        self.stops[out["sock"]] = stop

        def serve(c: socket.socket) -> None:
            with c:
                try:
                    while True:
                        data = c.recv(65536)
                        if not data:
                            break
                        c.sendall(data)
                except OSError:
                    pass

        def accept_loop() -> None:
            p = select.poll()
            p.register(ls, select.POLLIN)
            while not stop.is_set():
                if not p.poll(100):
                    continue
                try:
                    c, _ = ls.accept()
                except (BlockingIOError, InterruptedError):
                    continue
                except OSError:
                    return
                c.setblocking(True)
                threading.Thread(target=serve, args=(c,), daemon=True).start()

        threading.Thread(target=accept_loop, daemon=True).start()
        return out

    def op_source(self, req: Message) -> Message:
        s = self.sock(req)
        total = int(req["bytes"])
        chunk = memoryview(_PATTERN[: max(1, min(int(req.get("chunk", 65536)), len(_PATTERN)))])
        deadline = self.deadline(req, 60.0)
        sent = 0
        t0 = time.monotonic()
        while sent < total:
            view = chunk[: min(len(chunk), total - sent)]
            try:
                sent += s.send(view, socket.MSG_DONTWAIT)
            except BlockingIOError:
                try:
                    self.wait(s, deadline, write=True)
                except TimeoutError:
                    raise AgentError("timeout", f"sent {sent} of {total} bytes") from None
        then = req.get("then")
        if then == "shutdown":
            s.shutdown(socket.SHUT_WR)
        elif then == "close":
            self.op_close(req)
        return {"sent": sent, "seconds": time.monotonic() - t0}

    def op_sink(self, req: Message) -> Message:
        s = self.sock(req)
        deadline = self.deadline(req, 60.0)
        limit = req.get("max")
        got = 0
        t0 = time.monotonic()
        eof = False
        while limit is None or got < int(limit):
            try:
                data = s.recv(262144, socket.MSG_DONTWAIT)
            except BlockingIOError:
                try:
                    self.wait(s, deadline)
                except TimeoutError:
                    raise AgentError("timeout", f"received {got} bytes, no EOF") from None
                continue
            if not data:
                eof = True
                break
            got += len(data)
        return {"bytes": got, "eof": eof, "seconds": time.monotonic() - t0}

    def op_exit(self, req: Message) -> None:
        threading.Timer(0.01, lambda: os._exit(0)).start()


class Workers:
    """Threads that live as long as the agent: a request goes to an idle one, or to a
    new one when all are busy (a blocking accept or recv holds its thread). Threads
    are not started per request because a thread that has ended can no longer be
    asked which namespace it was in, and that is how the run's kernel trace tells
    this agent's listen() and connect() from another lab's (lab/ktrace.py)."""

    def __init__(self, fn: Callable[[Message], None]) -> None:
        from _queue import SimpleQueue  # (the C queue: no import cost)

        self.fn = fn
        self.q: SimpleQueue[Message] = SimpleQueue()
        self.idle = 0
        self.lock = threading.Lock()

    def submit(self, req: Message) -> None:
        with self.lock:
            start = self.idle == 0
            if not start:
                self.idle -= 1
        self.q.put(req)
        if start:
            threading.Thread(target=self._run, daemon=True).start()

    def _run(self) -> None:
        while True:
            req = self.q.get()
            try:
                self.fn(req)
            finally:
                with self.lock:
                    self.idle += 1


def main() -> int:
    # Each request runs on a worker thread; Python's default 5 ms GIL switch interval
    # made every reply wait ~4 ms, which is packetdrill's whole timing tolerance.
    sys.setswitchinterval(1e-4)
    out = sys.stdout.buffer
    agent = Agent(out)
    workers = Workers(agent.handle)
    stdin = sys.stdin.buffer
    for line in stdin:
        line = line.strip()
        if not line:
            continue
        try:
            req = json.loads(line)
            if not isinstance(req, dict):
                raise ValueError("not an object")
        except ValueError as e:
            agent.reply({"id": None, "ok": False, "error": "badrequest", "message": str(e)})
            continue
        size = req.pop("payload", None)
        if isinstance(size, int) and size > 0:  # its bytes follow the line
            req["data"] = stdin.read(size)
            if len(req["data"]) < size:
                break  # stdin closed in the middle: netemu is gone
        workers.submit(req)
    return 0


if __name__ == "__main__":
    sys.exit(main())
