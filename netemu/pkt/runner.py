"""Execute a packetdrill script on a live lab, as packetdrill does on a tun device.

The kernel under test is the lab's peer. System calls are real syscalls made in this
process on sockets created inside the peer's namespace (:class:`~.live.LiveKernel`):
non-blocking calls run inline under a watchdog, blocking ones on a worker thread, as
packetdrill's syscall thread does. ``<`` packets are injected by netemu's host on a
*raw* connection (netemu's endpoint sends nothing by itself); ``>`` packets are the
next segments the kernel sends on the connection under test, compared field by field
in script space:

- sequence numbers: the kernel's are made relative to its ISN (learnt from its SYN or
  SYN-ACK) and netemu's to a random ISN of our own, so scripts say ``0:0(0)``, ``ack 1``;
  SACK blocks move with the acknowledged side; an inbound ``TS ecr`` is mapped back to
  the kernel's real TS value it names (packetdrill's TS val map); TFO cookies are
  mapped between the script's key and the lab's (:mod:`.tfo`);
- flags, sequence, ack, payload length (zeros, as packetdrill writes), window when the
  script gives ``win``, options in order (``<...>``: any; values of mss, wscale and sack
  checked; TS values not, as packetdrill by default);
- one larger (TSO/GSO) segment in the script matches what the peer's tun-like device
  hands over (tx offload stays on, as on packetdrill's tun), or a contiguous run of
  smaller segments;
- times: packetdrill's rules (relative to the previous event; consecutive inbound
  packets anchored to each other; ``...T`` end of blocking calls) and tolerance
  (``--tolerance_usecs``, default 4 ms, or 12.5 % of the gap), against the kernel's
  own receive timestamps where the link has them. With ``strict_timing`` (the
  default of ``netemu run``) a late event fails its step; otherwise it is a note.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
import re
import socket
import struct
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..run.result import StepFailed, StepResult
from ..run.steps import StepLoop
from ..trace.record import NoteRecord, Trace
from ..wire import TcpSegment, parse_frame
from ..wire.tcp import (
    ACK,
    CWR,
    EOL,
    FIN,
    NOP,
    PSH,
    SACK_PERMITTED,
    SYN,
    EolOption,
    MssOption,
    NopOption,
    RawOption,
    SackOption,
    SackPermittedOption,
    TimestampOption,
    WindowScaleOption,
)
from .model import Code, Command, Event, PacketSpec, Syscall
from .parser import FLAG_BITS

MASK = 0xFFFFFFFF
_FLAG_ORDER = "FSRP.UEW"


def flags_text(flags: int) -> str:
    """Flags as packetdrill prints them: S F R P U E W, then ``.`` for ACK; ``-`` for
    none (tcpdump's order is scenario/units.py's, for YAML)."""
    s = "".join(ch for ch in "SFRPUEW" if flags & FLAG_BITS[ch])
    if flags & ACK:
        s += "."
    return s or "-"


@dataclass
class Conn:
    """The raw connection under test: netemu's end is ``emu_port``."""

    emu_port: int
    kernel_port: int | None
    our_off: int  # netemu's live seq = script seq + our_off
    cursor: int  # next trace frame to look at
    kernel_off: int | None = None  # the kernel's live seq = script seq + kernel_off
    kernel_syn: int = 0  # the script's sequence number of the kernel's SYN
    ts_map: dict[int, int] = field(default_factory=dict)  # script TS val -> live TS val
    first_ts: tuple[int, int] | None = None  # (script, live) of the first mapped TS val
    last_live_ts: int | None = None
    syn_off: int | None = None  # our_off for SYNs: live = script seq + syn_off
    passive: bool = False  # opened by netemu's SYN (the kernel listened)


@dataclass
class Sock:
    """One script file descriptor."""

    fd: int
    kind: str = "socket"  # socket, listener, conn
    port: int | None = None  # bind port
    conn: Conn | None = None
    disconnected: bool = False  # connect(fd, AF_UNSPEC, ...) since its last connection


@dataclass
class Pending:
    """A blocking system call in flight (``...`` end time)."""

    task: asyncio.Future
    event: Event
    call: Syscall
    result: StepResult
    end: float
    t0: float
    start: float = 0.0  # the call's scheduled start (script time)


@dataclass
class Timing:
    line: int
    what: str
    expected: str
    actual: float
    tolerance: float
    ok: bool

    def text(self) -> str:
        return (f"line {self.line}: {self.what} expected at {self.expected} s, happened at "
                f"{self.actual:.6f} s (tolerance {self.tolerance * 1000:.1f} ms)")

    def as_dict(self) -> dict[str, Any]:
        return {"line": self.line, "what": self.what, "expected": self.expected,
                "actual": round(self.actual, 6), "tolerance": round(self.tolerance, 6),
                "ok": self.ok}


class PktRunner(StepLoop[Event]):
    def __init__(self, loaded: Any, *, lab: Any, host: Any, kernel: Any = None,
                 strict_timing: bool = False, tolerance_usecs: int | None = None,
                 grace: float = 2.0, on_step: Any = None, seed: int | None = None) -> None:
        self.loaded = loaded
        self.script = loaded.script
        self.lab = lab
        self.host = host
        self.trace: Trace = host.trace
        self.kernel = kernel  # LiveKernel: the script's real system calls
        self.bind_port = getattr(loaded, "bind_port", 8080)
        self.connect_port = getattr(loaded, "connect_port", 8080)
        self.call_end: float | None = None
        self.netemu_late: str | None = None  # netemu's own lateness failed the run
        self.workers = Workers()
        self._alarm_old: Any = None  # SIGALRM's handler before the run's inline calls
        self._alarm_set = False
        self.all_conns: list[Conn] = []
        self._ip_of: dict[int, tuple[int, int]] = {}  # id(segment) -> (tos, ttl)
        self.lateness: list[float] = []  # how late each timed event left (seconds)
        self._stamps: dict[int, float] | None = None  # the link's kernel receive times
        self._other_cursor = 0  # next trace frame for a > udp / > icmp packet
        self._code_queue: list[tuple[str, dict[str, Any], StepResult]] = []
        self.packet_end: float | None = None  # the last matched packet's time (script)
        self._gso_sock: socket.socket | None = None
        self.on_step = on_step
        self._reports: list[StepResult] = []
        self.strict = strict_timing
        self.tol = (tolerance_usecs if tolerance_usecs is not None
                    else loaded.tolerance_usecs) / 1e6
        self.tol_pct = loaded.tolerance_percent
        self.grace = grace
        self.rng = random.Random(seed)
        self.results: list[StepResult] = []
        self.timing: list[Timing] = []
        self.notes: list[str] = []
        self.socks: dict[int, Sock] = {}
        self.sut: Sock | Conn | None = None  # packetdrill's socket under test
        self.pending: Pending | None = None
        self.t0 = 0.0
        self.last_sched: float | None = None
        self.last_event: Event | None = None
        self.anchor: float | None = None  # dispatch time of the last system call
        self._frame_evt = asyncio.Event()
        self._failed = False
        host.on_frame.append(self._on_frame)

    # ------------------------------------------------------------------ plumbing
    def _on_frame(self, direction: str, data: bytes, seg: Any) -> None:
        if direction == "in":
            self._frame_evt.set()

    def now(self) -> float:
        """Script time: seconds since the script's time 0."""
        return time.monotonic() - self.t0

    async def start(self) -> None:
        link = getattr(self.host, "link", None)
        if link is not None and hasattr(link, "enable_rx_timestamps"):
            with contextlib.suppress(ValueError, OSError):
                link.enable_rx_timestamps()
                self._stamps = link.rx_stamps
        if any(o.kind in ("FO", "FOEXP") for ev in self.script.events
               if isinstance(ev.action, PacketSpec) for o in ev.action.options or ()):
            self._tfo_key()  # read before time 0, not at the first cookie
            for ev in self.script.events:  # and every cookie mapped (SipHash: ~1 ms)
                if isinstance(ev.action, PacketSpec) and ev.action.direction == "<":
                    for o in ev.action.options or ():
                        if o.kind in ("FO", "FOEXP") and isinstance(o.value, bytes):
                            self._tfo_map(o.value, to_lab=True)
        # No sock_diag polling of the peer while a script runs: a dump with TCP_INFO
        # takes each socket's lock, and the kernel under test then answered a FIN ~5 ms
        # late (close-remote-fin-then-close failed its +0 ACK; passes without polling).
        # The peer's states are inferred from the packets (see session.py).

    async def stop(self) -> None:
        if self.kernel is not None:
            self.kernel.close_all()
        if self._alarm_set:
            import signal

            signal.signal(signal.SIGALRM, self._alarm_old if self._alarm_old is not None
                          else signal.SIG_DFL)
            self._alarm_set = False
        self.workers.stop()
        if self._gso_sock is not None:
            self._gso_sock.close()
        if self.pending is not None:
            with contextlib.suppress(BaseException):
                await asyncio.wait_for(asyncio.shield(self.pending.task), 1.0)
        with contextlib.suppress(ValueError):
            self.host.on_frame.remove(self._on_frame)

    # ------------------------------------------------------------------ the run
    async def run(self) -> bool:
        events = self.script.events
        self.t0 = time.monotonic()
        if self.kernel is not None:
            self.kernel.t0_realtime = time.time() - (time.monotonic() - self.t0)
            self.kernel.tolerance_us = int(self.tol * 1e6)
        ok = await self.run_steps(events)
        if ok:
            ok = await self._finish_pending()
        if ok and not self._failed:
            ok = await self._run_code()
        for _text, _values, res in self._code_queue:  # the script failed before its end
            res.status = "skipped"
            res.message = "not run: the script failed first (packetdrill runs %{ }% at its end)"
            self._report(res)
        self._code_queue.clear()
        if not ok:
            self.skip_rest(events)
        self.results.sort(key=lambda r: r.index)
        return ok and not self._failed

    # The step loop's (netemu.run.steps): an event's result, its run, its notes.
    def new_result(self, index: int, step: Event, status: str = "pending") -> StepResult:
        return StepResult(index, step.line, step.kind, step.source, status)

    async def act(self, step: Event, res: StepResult) -> bool:
        return await self._event(step, res)

    def halted(self) -> bool:
        return self._failed  # a blocking call finished badly while we went on

    def _report(self, res: StepResult) -> None:
        """Step results reach ``on_step`` (the console) in the script's idle gaps, never
        between two events: printing a line costs up to ~3 ms, and relative times
        anchor on the moment the previous event ended, as in packetdrill."""
        if self.on_step is not None:
            self._reports.append(res)

    def punctuality(self) -> dict[str, Any]:
        """How late netemu's own events (packets it sent, calls, commands) left after
        their scheduled times: packetdrill's are microseconds late."""
        late = sorted(self.lateness)
        if not late:
            return {"events": 0}
        return {"events": len(late), "median_ms": round(late[len(late) // 2] * 1000, 3),
                "p90_ms": round(late[int(len(late) * 0.9)] * 1000, 3),
                "max_ms": round(late[-1] * 1000, 3)}

    def flush_reports(self) -> None:
        reports, self._reports = self._reports, []
        if self.on_step is not None:
            for res in reports:
                self.on_step(res)

    def fail_text(self, res: StepResult) -> str:
        return f"line {res.line} failed: {res.message.splitlines()[0]}"

    def skip_rest(self, steps: Sequence[Event]) -> None:
        super().skip_rest(steps)
        if self.pending is not None:
            p = self.pending
            if p.result.status == "pending":  # not the failure: the script ended first
                p.result.status = "skipped"
                p.result.message = "still blocked when the script failed"
                self._report(p.result)

    async def _finish_pending(self) -> bool:
        if self.pending is None:
            return True
        await self._await_pending()
        return not self._failed

    # ------------------------------------------------------------------ timing
    def _schedule(self, ev: Event) -> tuple[float, float, bool]:
        """(start, end, checked) in script time for ``ev``; anchors relative times as
        packetdrill does."""
        t = ev.time
        if t.kind == "any":
            now = self.now()
            return now, float("inf"), False
        if t.kind in ("abs", "range"):
            return t.start, t.end if t.end is not None else t.start, True
        last = self.last_event
        if (last is not None and self.last_sched is not None and ev.kind == "inject"
                and last.kind == "inject"):
            base = self.last_sched
        elif self.anchor is not None and ev.kind == "expect":
            # A packet the kernel sends because of a system call: from the moment the
            # call returned, as packetdrill's clock reads right after it.
            base = self.anchor
        elif last is not None and last.kind == "expect" and self.packet_end is not None:
            # After a sniffed packet packetdrill's clock reads microseconds after the
            # packet arrived; netemu may have read it later (its time is the kernel's
            # receive timestamp): count from the packet, so no read delay adds up.
            base = self.packet_end
        else:
            base = self.now()
        end = base + (t.end if t.end is not None else t.start)
        return base + t.start, end, True

    def _tolerance(self, start: float) -> float:
        tol = self.tol
        if self.last_sched is not None:
            tol = max(tol, self.tol_pct / 100.0 * (start - self.last_sched))
        return tol

    def _check_time(self, line: int, what: str, actual: float, start: float, end: float,
                    tol: float, text: str) -> str | None:
        if end == float("inf"):
            return None
        ok = start - tol <= actual <= end + tol
        if ok and what.endswith(" start"):
            return None  # netemu's own punctuality: recorded only when it slipped
        expected = f"{start:.6f}" if end == start else f"{start:.6f}~{end:.6f}"
        rec = Timing(line, what, expected + (f" ({text})" if text else ""), actual, tol, ok)
        self.timing.append(rec)
        if ok:
            return None
        if what.endswith(" start"):  # netemu itself left late: not the kernel's miss
            msg = (f"netemu was late by {(actual - end) * 1000:.1f} ms at line {line} "
                   f"({what[:-6]} scheduled at {expected}, tolerance {tol * 1000:.1f} ms)")
            self.trace.notes.append(NoteRecord(time.monotonic(), msg, "fail"))
            if self.strict:
                self.netemu_late = msg
                return msg
            self.notes.append(msg)
            return None
        msg = "timing: " + rec.text()
        self.trace.notes.append(NoteRecord(time.monotonic(), msg, "note"))
        if self.strict:
            return msg
        self.notes.append(msg)
        return None

    async def _sleep_until(self, t: float) -> None:
        """Wake at script time ``t`` to within ~0.1 ms: the event loop's timers wake up
        to 1 ms late (epoll's millisecond timeout), so the last 1.5 ms are spun."""
        deadline = self.t0 + t
        delay = deadline - time.monotonic()
        if delay > 0.020 and self._reports:
            self.flush_reports()
            delay = deadline - time.monotonic()
        if delay > 0.0015:
            await asyncio.sleep(delay - 0.0015)
        while time.monotonic() < deadline:
            await asyncio.sleep(0)  # frames that arrive meanwhile are still read

    # ------------------------------------------------------------------ events
    async def _event(self, ev: Event, res: StepResult) -> bool:
        """Run one event; True when its result comes later (a blocking call)."""
        start, end, checked = self._schedule(ev)
        behind = ev.time.kind in ("abs", "range") and start < self.now()
        tol = self._tolerance(start)
        a = ev.action
        kind = ev.kind
        deferred = False
        if kind == "expect":
            assert isinstance(a, PacketSpec)
            self._step_note(ev)
            await self._expect(ev, a, start, end, tol, checked, res)
        else:
            if kind == "syscall" and self.pending is not None:
                await self._await_pending()
                if self._failed:
                    raise StepFailed("a blocking call before this one failed")
            built = None
            if kind == "inject":  # built before its time, sent at its time
                assert isinstance(a, PacketSpec)
                built = self._build_inbound(a)
            await self._sleep_until(start)
            res.t = self.now()
            self._step_note(ev)
            if built is not None:
                self._send_inbound(built)
            if checked and not behind:
                self.lateness.append(max(res.t - start, 0.0))
            # An absolute time the script has already passed (packetdrill runs the event
            # at once, unchecked): not netemu's lateness.
            if checked and not behind:
                late = self._check_time(ev.line, f"{kind} start", res.t, start, end, tol,
                                        ev.time.text)
                if late:
                    raise StepFailed(late)
            if kind == "inject":
                pass
            elif kind == "syscall":
                assert isinstance(a, Syscall)
                deferred = await self._syscall(ev, a, start, res)
            elif kind == "command":
                assert isinstance(a, Command)
                await self._command(a.text)
            else:
                assert isinstance(a, Code)
                self._code(ev, a.text, res)
                deferred = True
        self.last_event = ev
        self.last_sched = start if ev.time.kind != "any" else self.now()
        self.anchor = self.call_end if kind == "syscall" and not deferred else None
        self.call_end = None
        return deferred

    def _step_note(self, ev: Event) -> None:
        self.trace.notes.append(NoteRecord(time.monotonic(), f"line {ev.line}: {ev.source}",
                                           "step"))

    # ------------------------------------------------------------------ connections
    def _new_conn(self, kernel_port: int | None, emu_port: int | None = None) -> Conn:
        lab = self.lab
        if emu_port is None:
            emu_port = self.host.ephemeral_port(lab.peer_ip, kernel_port or 0)
        self.host.raw_ports.add(emu_port)
        conn = Conn(emu_port, kernel_port, self.rng.getrandbits(32), len(self.trace.frames))
        self.all_conns.append(conn)
        return conn

    def _conn_for_inbound(self, pkt: PacketSpec) -> Conn:
        sut = self.sut
        if isinstance(sut, Conn):
            return sut
        port = self.bind_port
        if isinstance(sut, Sock):
            port = sut.port or self.bind_port
        conn = self._new_conn(port)
        conn.passive = True
        self.sut = conn
        return conn

    # ------------------------------------------------------------------ inbound
    def _send_inbound(self, built: tuple[bytes, int | None]) -> None:
        frame, gso_hdr = built
        if gso_hdr is not None:
            self._send_gso(frame, gso_hdr)
        else:
            self.host.inject_frame(frame)

    def _build_inbound(self, pkt: PacketSpec) -> tuple[bytes, int | None]:
        """The script's inbound packet in the lab's address space, ready to go: TCP
        with any option, IP fields, ICMP quoting the connection's segment, UDP; one
        larger than the link's MTU goes as a GSO frame (second item: its header
        length), as packetdrill's tun takes it (``--mss`` its segment size)."""
        lab = self.lab
        if pkt.proto == "icmp":
            frame = self._icmp_frame(pkt)
        elif pkt.proto == "udp":
            conn = self._conn_for_inbound(pkt)
            udp = struct.pack("!HHHH", pkt.src_port or conn.emu_port,
                              pkt.dst_port or self.bind_port, 8 + pkt.length, 0)
            frame = self._ip_frame(pkt, 17, udp + bytes(pkt.length))
        else:
            conn = self._conn_for_inbound(pkt)
            if pkt.flags & SYN:
                # packetdrill's remote ISN is the script's SYN sequence number: later
                # sequence numbers (and the kernel's acks) count from it, as tcpdump's.
                if conn.syn_off is None:
                    conn.syn_off = conn.our_off
                    conn.our_off = (conn.our_off + pkt.start) & MASK
                seq = (pkt.start + conn.syn_off) & MASK
            else:
                seq = (pkt.start + conn.our_off) & MASK
            k_off = conn.kernel_off or 0
            ack = (pkt.ack + k_off) & MASK if pkt.ack is not None else 0
            opts = tuple(self._inbound_option(o, conn, pkt) for o in pkt.options or ())
            seg = TcpSegment(pkt.src_port or conn.emu_port,
                             pkt.dst_port or conn.kernel_port or self.bind_port, seq, ack,
                             pkt.flags, 65535 if pkt.win is None else pkt.win,
                             bytes(pkt.length), opts, urgent=pkt.urg or 0)
            tcp = seg.emit(lab.emu_ip, lab.peer_ip)
            frame = self._ip_frame(pkt, 6, tcp)
            if len(frame) - 14 > lab.mtu:
                return frame, 14 + 20 + (len(tcp) - len(seg.payload))
        if len(frame) - 14 > lab.mtu:
            raise StepFailed(f"a {len(frame) - 14}-byte {pkt.proto} packet is larger than "
                             f"the link's MTU ({lab.mtu}); only TCP goes as GSO")
        return frame, None

    def _ip_frame(self, pkt: PacketSpec, proto: int, payload: bytes) -> bytes:
        from ..wire.ethernet import ETHERTYPE_IPV4, eth_header
        from ..wire.ipv4 import IPv4Packet

        tos, ttl = 0, 64
        ip = pkt.ip
        if ip is not None:
            if ip.tos is not None:
                tos = ip.tos
            if ip.ecn is not None:
                tos = (tos & ~3) | _ECN_BITS[ip.ecn]
            if ip.ttl is not None:
                ttl = ip.ttl
        hdr = IPv4Packet(self.lab.emu_ip, self.lab.peer_ip, proto, tos=tos, ttl=ttl,
                         identification=self.rng.getrandbits(16)).header(len(payload))
        return eth_header(self.lab.peer_mac, self.host.mac, ETHERTYPE_IPV4) + hdr + payload

    def _icmp_frame(self, pkt: PacketSpec) -> bytes:
        """packetdrill's ICMP: the message quotes an IPv4 header and the first 8 bytes
        of the TCP header of a segment the kernel sent on the connection under test
        (ports, and the sequence number the script gives, in the kernel's space)."""
        from ..wire.ipv4 import IPv4Packet

        ic = pkt.icmp
        assert ic is not None
        itype = _ICMP_TYPES.get(ic.type, _numbered(ic.type, "type"))
        if itype is None:
            raise StepFailed(f"unknown ICMP type {ic.type!r}")
        code = 0
        if ic.code is not None:
            code = _ICMP_UNREACH_CODES.get(ic.code, _numbered(ic.code, "code"))  # type: ignore[assignment]
            if code is None:
                raise StepFailed(f"unknown ICMP code {ic.code!r} (a -D {ic.code}=... define "
                                 "is missing?)")
        rest = struct.pack("!HH", 0, ic.mtu or 0) if ic.mtu is not None else bytes(4)
        quoted = b""
        if ic.echoed in ("tcp", None):  # nothing bracketed: packetdrill quotes [0:0(0)]
            conn = self._conn_for_inbound(pkt)
            seq = ((ic.start or 0) + (conn.kernel_off or 0)) & MASK
            inner = IPv4Packet(self.lab.peer_ip, self.lab.emu_ip, 6, ttl=0, flags=0)
            quoted = inner.header(20 + (ic.length or 0)) + struct.pack(
                "!HHI", conn.kernel_port or self.bind_port, conn.emu_port, seq)
        elif ic.echoed == "udp":
            inner = IPv4Packet(self.lab.peer_ip, self.lab.emu_ip, 17, ttl=0, flags=0)
            quoted = inner.header(8 + (ic.length or 0)) + bytes(8)
        body = bytes((itype, code)) + b"\0\0" + rest + quoted
        if ic.echoed == "raw":  # packetdrill: no quote, the message padded to N bytes
            body = body.ljust(ic.length or 0, b"\0")
        from ..wire.checksum import internet_checksum

        csum = internet_checksum(body)
        body = body[:2] + struct.pack("!H", csum) + body[4:]
        return self._ip_frame(pkt, 1, body)

    def _send_gso(self, frame: bytes, hdr_len: int) -> None:
        """One TCP frame longer than the MTU, as a GSO frame (``PACKET_VNET_HDR``): the
        peer's kernel takes it as one large segment, as from packetdrill's tun."""
        if self._gso_sock is None:
            self._gso_sock = self.lab.run_in_emu(_open_gso_socket, self.lab.emu_ifindex)
        mss = getattr(self.loaded, "mss", None) or (self.lab.mtu - 40)
        # virtio_net_hdr: flags NEEDS_CSUM, gso_type TCPV4, hdr_len, gso_size,
        # csum_start (the TCP header), csum_offset (its checksum field).
        vnet = struct.pack("=BBHHHH", 1, 1, hdr_len, mss, 14 + 20, 16)
        # NEEDS_CSUM: the checksum field holds the pseudo-header's sum, not inverted.
        tcp_len = len(frame) - 34
        from ..wire.checksum import mod_ffff, pseudo_header_sum

        partial = mod_ffff(pseudo_header_sum(self.lab.emu_ip, self.lab.peer_ip, 6, tcp_len))
        frame = frame[:34 + 16] + struct.pack("!H", partial) + frame[34 + 18:]
        self._gso_sock.send(vnet + frame)
        self.trace.frame("out", frame, "injected", t=self.host.now())

    def _inbound_option(self, o: Any, conn: Conn, pkt: PacketSpec) -> Any:
        if o.kind == "nop":
            return NOP
        if o.kind == "eol":
            return EOL
        if o.kind == "mss":
            return MssOption(o.value)
        if o.kind == "wscale":
            return WindowScaleOption(o.value)
        if o.kind == "sackOK":
            return SACK_PERMITTED
        if o.kind == "sack":
            k_off = conn.kernel_off or 0
            return SackOption(tuple(((a + k_off) & MASK, (b + k_off) & MASK) for a, b in o.value))
        if o.kind == "TS":
            val, ecr = o.value
            if pkt.flags & ACK:
                ecr = self._live_ecr(conn, ecr)
            return TimestampOption(val, ecr)
        kind, data = self._script_option(o, conn, inbound=True)
        return RawOption(kind, data or b"")

    @staticmethod
    def _live_ecr(conn: Conn, script_ecr: int) -> int:
        """packetdrill's mapping of an inbound TS ecr to the kernel's real TS value."""
        if script_ecr in conn.ts_map:
            return conn.ts_map[script_ecr]
        if conn.first_ts is not None:
            s, live = conn.first_ts
            return (script_ecr - s + live) & MASK
        if conn.last_live_ts is not None:
            return conn.last_live_ts
        return script_ecr

    # ------------------------------------------------------------------ outbound
    def _conn_for_outbound(self) -> Conn:
        sut = self.sut
        if isinstance(sut, Conn):
            return sut
        raise StepFailed("no connection to expect a packet on: inject the first packet "
                         "('<') or call connect() first")

    def _frame_time(self, f: Any) -> float:
        """Script time of a frame read from the peer: the kernel's own receive time, as
        packetdrill takes it (SIOCGSTAMP), when the link has it (a frame netemu read
        late still left the kernel on time), else the time netemu read it."""
        t_live = self._stamps.pop(id(f.data), None) if self._stamps is not None else None
        return (t_live if t_live is not None else f.t) - self.t0

    def _take(self, conn: Conn) -> tuple[TcpSegment, float] | None:
        frames = self.trace.frames
        peer = self.lab.peer_ip
        i = conn.cursor
        n = len(frames)
        while i < n:
            f = frames[i]
            i += 1
            if f.direction != "in" or f.mark in ("bad-checksum", "malformed", "dropped"):
                continue
            try:
                fr = parse_frame(f.data, verify=False)
            except ValueError:
                continue
            seg = fr.tcp
            if seg is None or fr.ip is None or fr.ip.src != peer:
                continue
            if seg.dst_port != conn.emu_port:
                continue
            if conn.kernel_port is None and any(
                    c.kernel_port == seg.src_port and c.emu_port == seg.dst_port
                    for c in self.all_conns if c is not conn):
                continue  # an earlier connection's segment: not the socket under test's
            if conn.kernel_port is not None and seg.src_port != conn.kernel_port:
                continue
            if conn.kernel_port is None:
                conn.kernel_port = seg.src_port
            conn.cursor = i
            self._ip_of[id(seg)] = (fr.ip.tos, fr.ip.ttl)
            return seg, self._frame_time(f)
        conn.cursor = i
        return None

    async def _next_segment(self, conn: Conn, deadline: float) -> tuple[TcpSegment, float] | None:
        while True:
            self._frame_evt.clear()
            got = self._take(conn)
            if got is not None:
                return got
            left = self.t0 + deadline - time.monotonic()
            if left <= 0:
                return None
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._frame_evt.wait(), left)

    async def _expect(self, ev: Event, pkt: PacketSpec, start: float, end: float, tol: float,
                      checked: bool, res: StepResult) -> None:
        if pkt.proto != "tcp":
            await self._expect_other(ev, pkt, start, end, tol, checked, res)
            return
        conn = self._conn_for_outbound()
        if checked:
            # Waited for past its time, so a late packet reads "happened at" (a timing
            # failure), not "no packet": packetdrill's sniffer waits for it too.
            deadline = end + tol + self.grace
        else:
            deadline = self.now() + max(self.grace, 5.0)
        got = await self._next_segment(conn, deadline)
        if got is None:
            when = f"by {deadline:.3f} s" if checked else "in time"
            if checked and self.strict:
                when += (f" (strict timing: expected at {self._when(start, end, True)} s "
                         f"± {tol * 1000:.1f} ms)")
            raise StepFailed(f"no packet from the kernel {when}\n"
                             f"  script packet: {self._when(start, end, checked)} "
                             f"{pkt.text()[2:]}")
        seg, t = got
        res.t = t
        self.packet_end = t
        if conn.kernel_off is None:
            # packetdrill's local ISN: a SYN maps script to live by the two ISNs, every
            # later segment counts from the live ISN (so a SYN scripted at 5 is rare
            # but exact).
            conn.kernel_off = seg.seq if seg.flags & SYN else 0
            conn.kernel_syn = pkt.start if seg.flags & SYN else 0
        segs = [seg]
        why = self._mismatch(pkt, seg, conn, segs)
        if why == "short" and getattr(self.loaded, "strict_segments", False):
            why = (f"live packet payload: expected {pkt.length} bytes vs actual "
                   f"{len(seg.payload)} bytes (--strict_segments: one segment)")
        # One TSO segment in the script, several MSS-sized ones on the wire: gather a run.
        while why == "short" and pkt.length:
            more = await self._next_segment(conn, max(deadline, self.now() + 0.2))
            if more is None:
                why = (f"payload length: expected {pkt.length} in one run, the kernel sent "
                       f"{sum(len(s.payload) for s in segs)} and then nothing")
                break
            nxt = more[0]
            prev = segs[-1]
            if nxt.seq != (prev.seq + len(prev.payload)) & MASK or nxt.ack != prev.ack \
                    or (nxt.flags | PSH | FIN) != (prev.flags | PSH | FIN):
                segs.append(nxt)
                why = ("a run of segments for one TSO packet was broken by: "
                       + self._actual_text(nxt, more[1], conn))
                break
            segs.append(nxt)
            self.packet_end = more[1]
            why = self._mismatch(pkt, segs[0], conn, segs)
        if why is None and pkt.ip is not None:
            why = self._ip_mismatch(pkt, seg)
        self._learn_ts(pkt, seg, conn)
        for s in segs:
            ts = s.timestamp
            if ts is not None:
                conn.last_live_ts = ts.tsval
        if why is not None:
            actual = self._actual_text(seg, t, conn, segs)
            self._packet_failure(ev, f"{why}\n  script packet: "
                                 f"{self._when(start, end, checked)} {pkt.text()[2:]}\n"
                                 f"  actual packet: {actual}")
            return
        late = self._check_time(ev.line, "outbound packet", t, start, end, tol,
                                ev.time.text) if checked else None
        if late:
            self._packet_failure(ev, late + f"\n  script packet: "
                                 f"{self._when(start, end, checked)} {pkt.text()[2:]}\n"
                                 f"  actual packet: {self._actual_text(seg, t, conn, segs)}")

    async def _expect_other(self, ev: Event, pkt: PacketSpec, start: float, end: float,
                            tol: float, checked: bool, res: StepResult) -> None:
        """A ``> udp (N)`` or ``> icmp ...`` packet: the next such frame from the kernel
        (its payload length, its ICMP type and code), at its time."""
        deadline = (end + tol + (0.05 if self.strict else self.grace)) if checked else \
            self.now() + max(self.grace, 5.0)
        proto = 17 if pkt.proto == "udp" else 1
        while True:
            self._frame_evt.clear()
            got = self._take_other(proto)
            if got is not None:
                break
            left = self.t0 + deadline - time.monotonic()
            if left <= 0:
                raise StepFailed(f"no {pkt.proto} packet from the kernel by {deadline:.3f} s\n"
                                 f"  script packet: {self._when(start, end, checked)} "
                                 f"{pkt.text()[2:]}")
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._frame_evt.wait(), left)
        body, t = got
        res.t = t
        if pkt.proto == "udp":
            n = len(body) - 8
            if n != pkt.length:
                self._packet_failure(ev, f"live packet payload: expected {pkt.length} bytes "
                                     f"vs actual {n} bytes\n  script packet: "
                                     f"{pkt.text()[2:]}")
                return
        else:
            ic = pkt.icmp
            want_type = _ICMP_TYPES.get(ic.type, _numbered(ic.type, "type")) if ic else None
            want_code = (_ICMP_UNREACH_CODES.get(ic.code, _numbered(ic.code, "code"))
                         if ic is not None and ic.code is not None else None)
            if (want_type is not None and body[0] != want_type) or \
                    (want_code is not None and body[1] != want_code):
                self._packet_failure(ev, f"live packet field icmp type/code: expected "
                                     f"{want_type}/{want_code} vs actual {body[0]}/{body[1]}")
                return
        late = self._check_time(ev.line, "outbound packet", t, start, end, tol,
                                ev.time.text) if checked else None
        if late:
            self._packet_failure(ev, late)

    def _take_other(self, proto: int) -> tuple[bytes, float] | None:
        frames = self.trace.frames
        i = self._other_cursor
        while i < len(frames):
            f = frames[i]
            i += 1
            if f.direction != "in" or len(f.data) < 34 or f.data[12:14] != b"\x08\x00":
                continue
            ihl = (f.data[14] & 0xF) * 4
            if f.data[23] != proto or socket.inet_ntoa(f.data[26:30]) != self.lab.peer_ip:
                continue
            self._other_cursor = i
            return f.data[14 + ihl:], self._frame_time(f)
        self._other_cursor = i
        return None

    def _ip_mismatch(self, pkt: PacketSpec, seg: TcpSegment) -> str | None:
        """IP fields a ``>`` packet names: the ECN codepoint (``[ect01]``: either ECT),
        the whole TOS byte, the TTL."""
        got = self._ip_of.get(id(seg))
        ip = pkt.ip
        if got is None or ip is None:
            return None
        tos, ttl = got
        if ip.ecn is not None:
            have = tos & 3
            ok = have in (1, 2) if ip.ecn == "ect01" else have == _ECN_BITS[ip.ecn]
            if not ok:
                names = {0: "noecn", 1: "ect1", 2: "ect0", 3: "ce"}
                return (f"live packet field ip ecn: expected: {ip.ecn} vs actual: "
                        f"{names[have]}")
        if ip.tos is not None and (tos if ip.ecn is None else tos & ~3) != (
                ip.tos if ip.ecn is None else ip.tos & ~3):
            return f"live packet field ip tos: expected: {ip.tos:#x} vs actual: {tos:#x}"
        if ip.ttl is not None and ttl != ip.ttl:
            return f"live packet field ip ttl: expected: {ip.ttl} vs actual: {ttl}"
        return None

    def _packet_failure(self, ev: Event, text: str) -> None:
        """A sniffed packet that does not match: the step fails, or with packetdrill's
        ``--non_fatal=packet`` it is a warning and the script goes on."""
        if "packet" in getattr(self.loaded, "non_fatal", ()):
            msg = f"warning (--non_fatal=packet): line {ev.line}: {text}"
            self.notes.append(msg)
            self.trace.notes.append(NoteRecord(time.monotonic(), msg.splitlines()[0], "note"))
            return
        raise StepFailed(text)

    @staticmethod
    def _ack_off(seg: TcpSegment, conn: Conn) -> int:
        """packetdrill's ``remote_seq_live_to_script_offset``: a SYN's ack is written
        against the script's own SYN numbers, any other ack from the remote ISN."""
        if seg.flags & SYN and conn.syn_off is not None:
            return conn.syn_off
        return conn.our_off

    @staticmethod
    def _when(start: float, end: float, checked: bool) -> str:
        if not checked:
            return "*"
        return f"{start:.6f}" if end == start else f"{start:.6f}~{end:.6f}"

    def _merged(self, segs: list[TcpSegment]) -> tuple[int, int]:
        """(flags, payload length) of a run of segments taken as one, as packetdrill's
        ``aggregate_packets``: the last segment's flags (so its PSH and FIN), the first
        one's sequence number and CWR."""
        first, last = segs[0], segs[-1]
        flags = (last.flags & ~CWR) | (first.flags & CWR)
        return flags, sum(len(s.payload) for s in segs)

    def _mismatch(self, pkt: PacketSpec, seg: TcpSegment, conn: Conn,
                  segs: list[TcpSegment]) -> str | None:
        """None when the (run of) segment(s) matches; "short" when a longer run could."""
        flags, length = self._merged(segs)
        seq = (seg.seq - (conn.kernel_off or 0)
               + (conn.kernel_syn if seg.flags & SYN else 0)) & MASK
        if seq != pkt.start & MASK:
            return f"live packet field tcp_seq: expected: {pkt.start} vs actual: {seq}"
        if length < pkt.length and (flags & ~(PSH | FIN)) == (pkt.flags & ~(PSH | FIN)) \
                and all(s.payload.count(0) == len(s.payload) for s in segs):
            return "short"
        if flags != pkt.flags:
            return (f"live packet field tcp flags: expected: {pkt.flags_text} vs actual: "
                    f"{flags_text(flags)}")
        # packetdrill compares the ack field always (a script without `ack N` says 0),
        # in script space when the ACK flag is set, and the urgent pointer (0 unless
        # `urg N`).
        want_ack = (pkt.ack or 0) & MASK
        ack = (seg.ack - self._ack_off(seg, conn)) & MASK if seg.flags & ACK else seg.ack
        if ack != want_ack:
            return f"live packet field tcp_ack_seq: expected: {want_ack} vs actual: {ack}"
        if seg.urgent != (pkt.urg or 0):
            return (f"live packet field tcp_urg_ptr: expected: {pkt.urg or 0} vs actual: "
                    f"{seg.urgent}")
        if length != pkt.length:
            return f"live packet payload length: expected: {pkt.length} vs actual: {length}"
        if pkt.win is not None and seg.window != pkt.win:
            return f"live packet field tcp_window: expected: {pkt.win} vs actual: {seg.window}"
        if any(s.payload.count(0) != len(s.payload) for s in segs):
            return "incorrect outbound data payload (the script's data is zeros)"
        if pkt.options_any:
            return None
        return self._options_mismatch(pkt, seg, conn)

    def _options_mismatch(self, pkt: PacketSpec, seg: TcpSegment, conn: Conn) -> str | None:
        """packetdrill's ``verify_outbound_live_tcp_options``: the same kinds in the same
        order; every option but NOP, EOL and TS byte for byte (SACK blocks and Fast
        Open cookies in script space); TS val only with ``--tcp_ts_tick_usecs``."""
        want = [self._script_option(o, conn, inbound=False) for o in pkt.options or []]
        have = [_option_bytes(o) for o in seg.options]
        if [k for k, _d in want] != [k for k, _d in have]:
            return (f"bad outbound TCP options: expected <{','.join(o.kind for o in pkt.options or [])}> "
                    f"vs actual <{','.join(self._opt_name(o) for o in seg.options)}>")
        for i, ((kind, wdata), (_k, hdata)) in enumerate(zip(want, have, strict=True)):
            spec = (pkt.options or [])[i]
            if kind == 8:
                tick = getattr(self.loaded, "tcp_ts_tick_usecs", 0)
                if tick and conn.first_ts is not None:
                    val = int.from_bytes(hdata[:4], "big")
                    script_val = (val - conn.first_ts[1] + conn.first_ts[0]) & MASK
                    # packetdrill's tolerance here grows with the time since the
                    # script's start, not since the previous event.
                    tol_us = max(self.tol, self.tol_pct / 100 * max(self.now(), 0.0)) * 1e6
                    if abs(((script_val - spec.value[0] + 2**31) & MASK) - 2**31) * tick \
                            > tol_us:
                        return (f"bad outbound TCP timestamp value: expected {spec.value[0]} "
                                f"vs actual {script_val} (tick {tick} us)")
                continue
            if wdata is None:
                continue
            if len(wdata) != len(hdata):
                return (f"bad length in outbound TCP option {spec.kind}: expected "
                        f"{len(wdata) + 2} vs actual {len(hdata) + 2}")
            if wdata != hdata:
                return (f"bad value in outbound TCP option {spec.kind}: expected "
                        f"{spec.text()} vs actual {self._option_text(kind, hdata, conn)}")
        return None

    def _script_option(self, o: Any, conn: Conn, *, inbound: bool) -> tuple[int, bytes | None]:
        """(kind, data) of a script option on the wire; data None: not compared."""
        k, v = o.kind, o.value
        if k == "nop":
            return 1, None
        if k == "eol":
            return 0, None
        if k == "mss":
            return 2, struct.pack("!H", v)
        if k == "wscale":
            return 3, bytes((v,))
        if k == "sackOK":
            return 4, b""
        if k == "sack":
            off = (conn.kernel_off or 0) if inbound else conn.our_off
            return 5, b"".join(struct.pack("!II", (a + off) & MASK, (b + off) & MASK)
                               for a, b in v)
        if k == "TS":
            val, ecr = v
            return 8, struct.pack("!II", val & MASK, ecr & MASK)
        if k in ("FO", "FOEXP"):
            cookie = self._cookie(v, o, inbound=inbound)
            data = cookie if k == "FO" else b"\xf9\x89" + cookie
            return (34 if k == "FO" else 254), data
        if k == "md5":
            if not isinstance(v, bytes):
                raise StepFailed(f"md5 option value {o.text_value!r} is not hex")
            return 19, v
        if k == "ECN":
            kind = 174 if v and v[0][0] == "e1b" else 172
            return kind, b"".join(int(n & 0xFFFFFF).to_bytes(3, "big") for _name, n in v)
        raise StepFailed(f"TCP option {k!r} is not supported by netemu yet")

    def _cookie(self, v: Any, o: Any, *, inbound: bool) -> bytes:
        """A Fast Open cookie as the script writes it, in the lab's address space: a
        cookie the kernel would make for the script's addresses is the one it makes
        for the lab's (``pkt.tfo``), as addresses are mapped."""
        if v is None:
            return b""
        if not isinstance(v, bytes):
            raise StepFailed(f"Fast Open cookie {o.text_value or v!r} is not hex (a "
                             f"-D {v}=... define is missing?)")
        return self._tfo_map(v, to_lab=True)

    def _tfo_map(self, cookie: bytes, *, to_lab: bool) -> bytes:
        key = self._listener_tfo_key() or self._tfo_key()
        memo = self.__dict__.setdefault("_tfo_memo", {})
        got = memo.get((cookie, to_lab, key))
        if got is None:
            got = memo[(cookie, to_lab, key)] = self._tfo_translate(cookie, key,
                                                                     to_lab=to_lab)
        return got

    def _listener_tfo_key(self) -> bytes | None:
        """The key of the newest open listener, when the script gave it one by
        ``setsockopt(TCP_FASTOPEN_KEY)``: a listener's own key makes its cookies."""
        k = self.kernel
        if k is None:
            return None
        listeners = [f for f in k.fds.values() if f.kind == "socket" and f.listening]
        return listeners[-1].tfo_key if listeners else None

    def _tfo_translate(self, cookie: bytes, key: str | bytes | None, *,
                       to_lab: bool) -> bytes:
        if key is None or len(cookie) != 8:
            return cookie
        try:
            from . import tfo
        except ImportError:
            return cookie
        script = (self.loaded.remote_ip, self.loaded.local_ip)
        lab = (self.lab.emu_ip, self.lab.peer_ip)
        got = tfo.translate(cookie, key, script, lab) if to_lab else \
            tfo.translate(cookie, key, lab, script)
        return got if got is not None else cookie

    def _tfo_key(self) -> str | None:
        if not hasattr(self, "_tfo_key_text"):
            key = None
            with contextlib.suppress(Exception):
                from ..lab.netns import read_sysctl

                key = self.lab.run_in_peer(read_sysctl, "net.ipv4.tcp_fastopen_key")
            self._tfo_key_text = key
        return self._tfo_key_text

    def _option_text(self, kind: int, data: bytes, conn: Conn) -> str:
        if kind == 34:
            return f"FO {self._tfo_map(data, to_lab=False).hex()}".strip()
        if kind == 254 and data[:2] == b"\xf9\x89":
            return f"FOEXP {self._tfo_map(data[2:], to_lab=False).hex()}".strip()
        if kind == 5:
            blocks = [struct.unpack("!II", data[i:i + 8]) for i in range(0, len(data) - 7, 8)]
            return "sack " + _sack_text(tuple(((a - conn.our_off) & MASK,
                                               (b - conn.our_off) & MASK) for a, b in blocks))
        if kind == 2 and len(data) == 2:
            return f"mss {int.from_bytes(data, 'big')}"
        if kind == 3 and len(data) == 1:
            return f"wscale {data[0]}"
        return f"opt{kind} {data.hex()}".strip()

    @staticmethod
    def _opt_name(o: Any) -> str:
        name = {NopOption: "nop", EolOption: "eol", MssOption: "mss",
                WindowScaleOption: "wscale", SackPermittedOption: "sackOK",
                SackOption: "sack", TimestampOption: "TS"}.get(type(o))
        if name is not None:
            return name
        kind = getattr(o, "kind", None)
        data = getattr(o, "data", b"")
        if kind == 34:
            return "FO"
        if kind == 254 and data[:2] == b"\xf9\x89":
            return "FOEXP"
        return {19: "md5", 172: "ECN", 174: "ECN"}.get(kind, f"opt{kind}")  # type: ignore[arg-type]

    def _learn_ts(self, pkt: PacketSpec, seg: TcpSegment, conn: Conn) -> None:
        ts = seg.timestamp
        if ts is None or not pkt.options:
            return
        for o in pkt.options:
            if o.kind == "TS":
                conn.ts_map[o.value[0]] = ts.tsval
                if conn.first_ts is None:
                    conn.first_ts = (o.value[0], ts.tsval)

    def _actual_text(self, seg: TcpSegment, t: float, conn: Conn,
                     segs: list[TcpSegment] | None = None) -> str:
        segs = segs or [seg]
        flags, length = self._merged(segs)
        seq = (seg.seq - (conn.kernel_off or 0)
               + (conn.kernel_syn if seg.flags & SYN else 0)) & MASK
        ip = self._ip_of.get(id(seg))
        ecn = {1: "[ect1] ", 2: "[ect0] ", 3: "[ce] "}.get(ip[0] & 3, "") if ip else ""
        s = f"{t:.6f} {ecn}{flags_text(flags)} {seq}:{(seq + length) & MASK}({length})"
        if flags & ACK:
            s += f" ack {(seg.ack - self._ack_off(seg, conn)) & MASK}"
        if seg.urgent:
            s += f" urg {seg.urgent}"
        s += f" win {seg.window}"
        opts = []
        for o in seg.options:
            name = self._opt_name(o)
            if isinstance(o, MssOption):
                opts.append(f"mss {o.mss}")
            elif isinstance(o, WindowScaleOption):
                opts.append(f"wscale {o.shift}")
            elif isinstance(o, SackOption):
                opts.append("sack " + _sack_text(tuple(((a - conn.our_off) & MASK,
                                                        (b - conn.our_off) & MASK)
                                                       for a, b in o.blocks)))
            elif isinstance(o, TimestampOption):
                val = o.tsval
                if conn.first_ts is not None:
                    val = (conn.first_ts[0] + o.tsval - conn.first_ts[1]) & MASK
                opts.append(f"TS val {val} ecr {o.tsecr}")
            else:
                kind, data = _option_bytes(o)
                opts.append(self._option_text(kind, data, conn) if data else name)
        if opts:
            s += " <" + ",".join(opts) + ">"
        if len(segs) > 1:
            s += f" (a run of {len(segs)} segments)"
        return s

    # ------------------------------------------------------------------ shell and code
    async def _command(self, text: str) -> None:
        out = await run_command(self.lab, text, Path(self.script.path).parent,
                                addresses=(self.loaded, self.lab))
        if out.output.strip():
            for line in out.output.strip().splitlines()[-5:]:
                self.notes.append(f"`{text}`: {line}")
        if out.returncode != 0:
            raise StepFailed(f"`{text}` exited with status {out.returncode}"
                             + (f": {out.output.strip().splitlines()[-1]}"
                                if out.output.strip() else ""))

    def tcp_info_now(self) -> dict[str, Any]:
        """The ``tcpi_*`` values of the socket under test, from a real
        ``getsockopt(TCP_INFO)`` at this moment (packetdrill's way), plus ``tcpi_ca_name``
        (``TCP_CONGESTION``) and packetdrill's constants (``TCP_CA_Open``...)."""
        from ..lab.diag import decode_tcp_info

        s = self._sut_socket()
        out: dict[str, Any] = dict(_code_constants())
        if s is None:
            return out
        try:
            raw = s.getsockopt(socket.IPPROTO_TCP, 11, 512)
            out.update({f"tcpi_{k}": v for k, v in decode_tcp_info(raw).items()})
            ca = s.getsockopt(socket.IPPROTO_TCP, 13, 16).rstrip(b"\0").decode()
            out["tcpi_ca_name"] = ca
        except OSError:
            return out
        # packetdrill's other two: SO_MEMINFO and TCP_CC_INFO (the algorithm's own)
        with contextlib.suppress(OSError, struct.error):
            mem = struct.unpack("9I", s.getsockopt(socket.SOL_SOCKET, 55, 36)[:36])
            out.update(zip(("SK_MEMINFO_RMEM_ALLOC", "SK_MEMINFO_RCVBUF",
                            "SK_MEMINFO_WMEM_ALLOC", "SK_MEMINFO_SNDBUF",
                            "SK_MEMINFO_FWD_ALLOC", "SK_MEMINFO_WMEM_QUEUED",
                            "SK_MEMINFO_OPTMEM", "SK_MEMINFO_BACKLOG", "SK_MEMINFO_DROPS"),
                           mem, strict=True))
        with contextlib.suppress(OSError, struct.error):
            cc = s.getsockopt(socket.IPPROTO_TCP, 26, 20)
            if ca == "bbr" and len(cc) >= 20:
                lo, hi, min_rtt, pg, cg = struct.unpack("5I", cc[:20])
                out.update(bbr_bw_lo=lo, bbr_bw_hi=hi, bbr_bw=hi << 32 | lo,
                           bbr_min_rtt=min_rtt, bbr_pacing_gain=pg, bbr_cwnd_gain=cg)
            elif ca == "dctcp" and len(cc) >= 16:
                en, st, alpha, ab_ecn, ab_tot = struct.unpack("HHIII", cc[:16])
                out.update(dctcp_enabled=en, dctcp_ce_state=st, dctcp_alpha=alpha,
                           dctcp_ab_ecn=ab_ecn, dctcp_ab_tot=ab_tot)
            elif ca == "vegas" and len(cc) >= 16:
                en, cnt, rtt, minrtt = struct.unpack("4I", cc[:16])
                out.update(tcpv_enabled=en, tcpv_rttcnt=cnt, tcp_rtt=rtt, tcp_minrtt=minrtt)
        return out

    def _sut_socket(self) -> Any:
        """The live socket of packetdrill's socket under test: the accepted or connected
        socket of the connection under test, else the last socket the script made."""
        k = self.kernel
        if k is None:
            return None
        sut = self.sut
        cands: list[int] = []
        if isinstance(sut, Conn):
            cands += [fd for fd, s in self.socks.items() if s.conn is sut]
        elif isinstance(sut, Sock):
            cands.append(sut.fd)
        cands += sorted(self.socks, reverse=True)
        for fd in cands:
            f = k.fds.get(fd)
            if f is not None and f.kind == "socket":
                return f.obj
        return None

    def _code(self, ev: Event, text: str, res: StepResult) -> None:
        """packetdrill's code event: the socket's TCP_INFO (and SO_MEMINFO, TCP_CC_INFO)
        taken now; the Python itself runs after the script's last event, as packetdrill
        runs its code file then (a snippet costs milliseconds that the events after it
        must not pay)."""
        values = self.tcp_info_now()
        if not any(k.startswith("tcpi_") for k in values):
            raise StepFailed("no TCP_INFO: the socket under test is not open in the kernel")
        self._code_queue.append((text, values, res))

    async def _run_code(self) -> bool:
        """The script's snippets, in order, once its events are over, by a Python of
        their own in the peer namespace (``netemu.pkt.code``); the first that fails
        fails the script (packetdrill: its code file's python3 exit status)."""
        if not self._code_queue:
            return True
        verdicts = await run_code_blocks(self.lab, [(t, v) for t, v, _r in self._code_queue],
                                         Path(self.script.path).resolve().parent)
        ok = True
        for (_text, _values, res), why in zip(self._code_queue, verdicts, strict=True):
            if why == "skipped":
                res.status, res.message = "skipped", "an earlier %{ }% failed"
            elif why is None:
                res.status, res.message = "pass", ""
            else:
                res.status, res.message = "fail", why
                ok = False
                self._fail_note(res)
            self._report(res)
        self._code_queue.clear()
        return ok

    # ------------------------------------------------------------------ system calls
    def _start_call(self, sc: Syscall) -> asyncio.Future:
        """Run ``sc`` for real on a worker thread (as packetdrill's syscall thread): a
        call that blocks blocks that thread, never the event loop."""
        loop = asyncio.get_running_loop()
        fut: asyncio.Future = loop.create_future()
        kernel = self.kernel
        assert kernel is not None

        def done(ok: bool, val: Any) -> None:
            if fut.done():
                return
            if ok:
                fut.set_result(val)
            else:
                fut.set_exception(val)

        def work() -> None:
            try:
                r = kernel.call(sc)
            except BaseException as e:  # handed to the event loop
                loop.call_soon_threadsafe(done, False, e)
                return
            loop.call_soon_threadsafe(done, True, r)

        self.workers.submit(work)
        return fut

    def _blocked_text(self, sc: Syscall) -> str:
        return (f"{sc.name}() blocked for more than {self.grace + 1.0:g} s; if it is meant "
                "to block, give its end time: '+0...0.5 call(...)'")

    def _inline_call(self, sc: Syscall) -> Any:
        """A call the script does not mark as blocking runs right here, as packetdrill's
        main thread makes it: it returns in microseconds, and the next relative time
        counts from then. Should it block after all, SIGALRM ends it after the grace
        time (EINTR) and the step fails saying so."""
        import signal

        assert self.kernel is not None
        if not self._alarm_set:  # the handler once a run (stop() puts back the old)
            self._alarm_old = signal.signal(signal.SIGALRM, _expired)
            self._alarm_set = True
        signal.setitimer(signal.ITIMER_REAL, self.grace + 1.0)
        try:
            return self.kernel.call(sc)
        except _CallBlocked:
            raise StepFailed(self._blocked_text(sc)) from None
        finally:
            signal.setitimer(signal.ITIMER_REAL, 0)

    def _before_call(self, sc: Syscall) -> None:
        """Connection bookkeeping a call needs before it reaches the kernel: an active
        open's SYN leaves during the call."""
        from .live import SYMBOLS, value

        fast = False
        if sc.name in ("sendto", "sendmsg"):
            with contextlib.suppress(Exception):
                flags = value(sc.args[3] if sc.name == "sendto" else sc.args[2])
                fast = isinstance(flags, int) and bool(flags & SYMBOLS["MSG_FASTOPEN"])
        if sc.name != "connect" and not fast:
            return
        fd = sc.args[0].value if sc.args and sc.args[0].kind == "int" else None
        s = self.socks.get(fd) if fd is not None else None
        if s is None:
            return
        addr: Any = ...
        with contextlib.suppress(Exception):
            addr = value(sc.args[1] if sc.name == "connect" else sc.args[4])
        if isinstance(addr, int):  # connect(fd, AF_UNSPEC, ...): a disconnect
            s.disconnected = True
            return
        # A connect on a socket that has a connection opens a new one only after a
        # disconnect, or from an accepted socket (its connection was the passive one);
        # otherwise it is a second connect (EALREADY, EISCONN) and sends nothing.
        if s.conn is not None and not (s.disconnected or s.conn.passive):
            return
        s.disconnected = False
        port = self.connect_port
        if isinstance(addr, dict) and isinstance(addr.get("sin_port"), int):
            port = addr["sin_port"]
        conn = self._new_conn(None, emu_port=port)
        conn.cursor = len(self.trace.frames)
        s.conn = conn
        s.kind = "conn"
        self.sut = conn

    def _after_call(self, sc: Syscall, r: Any) -> None:
        for sfd, _live in r.new_fds:
            if sc.name == "accept":
                new = Sock(sfd, "conn", port=r.local[1] if r.local else None)
                for conn in self._conns():
                    if r.peer and conn.emu_port == r.peer[1]:
                        new.conn = conn
                self.socks[sfd] = new
            elif sc.name == "socket":
                s = Sock(sfd)
                self.socks[sfd] = s
                self.sut = s
            else:
                self.socks[sfd] = Sock(sfd, "other")
        fd = sc.args[0].value if sc.args and sc.args[0].kind == "int" else None
        s = self.socks.get(fd) if fd is not None else None
        if s is None:
            return
        if sc.name == "close" and r.ret == 0:
            del self.socks[fd]
        elif sc.name == "bind" and r.ret == 0:
            f = self.kernel.fds.get(fd) if self.kernel else None
            s.port = f.port if f is not None else s.port
        elif sc.name == "listen" and r.ret == 0:
            f = self.kernel.fds.get(fd) if self.kernel else None
            s.kind = "listener"
            s.port = f.port if f is not None else s.port
            self.sut = s
        elif s.conn is not None and r.local and r.local[1] and s.conn.kernel_port is None:
            s.conn.kernel_port = r.local[1]

    def _conns(self) -> list[Conn]:
        out = [s.conn for s in self.socks.values() if s.conn is not None]
        if isinstance(self.sut, Conn) and self.sut not in out:
            out.append(self.sut)
        return out

    async def _syscall(self, ev: Event, sc: Syscall, start: float, res: StepResult) -> bool:
        end = None
        if sc.end is not None:
            base = start - ev.time.start if ev.time.relative else 0.0
            end = base + sc.end
        self._before_call(sc)
        if end is None and _can_inline():
            r = self._inline_call(sc)
        elif end is not None:
            fut = self._start_call(sc)
            self.pending = Pending(fut, ev, sc, res, end, self.now(), start)  # type: ignore[arg-type]
            await asyncio.sleep(0)
            if not fut.done():
                return True
            self.pending = None
            r = await fut
        else:
            fut = self._start_call(sc)
            try:
                r = await asyncio.wait_for(asyncio.shield(fut), self.grace + 1.0)
            except TimeoutError:
                raise StepFailed(self._blocked_text(sc)) from None
        self.call_end = r.ended - self.t0
        self._after_call(sc, r)
        self._check_result(sc, r)
        if end is not None:
            # packetdrill: a blocking call's return tolerance grows with the call's own
            # span (from its start), not with the gap since the previous event.
            tol = max(self.tol, self.tol_pct / 100.0 * (end - start))
            late = self._check_time(ev.line, "system call return", r.ended - self.t0, end, end,
                                    tol, sc.end_text)
            if late:
                raise StepFailed(late)
        return False

    async def _await_pending(self) -> None:
        p = self.pending
        if p is None:
            return
        self.pending = None
        res = p.result
        sc = p.event.action
        assert isinstance(sc, Syscall)
        try:
            left = max(p.end - self.now(), 0) + self._tolerance(p.end) + self.grace
            try:
                r = await asyncio.wait_for(asyncio.shield(p.task), left)
            except TimeoutError:
                raise StepFailed(f"{sc.name}() had not returned {left:.3f} s after its "
                                 f"scheduled end ({p.end:.6f} s)") from None
            self._after_call(sc, r)
            self._check_result(sc, r)
            late = self._check_time(p.event.line, "blocking system call return",
                                    r.ended - self.t0, p.end, p.end,
                                    max(self.tol, self.tol_pct / 100.0 * (p.end - p.start)),
                                    sc.end_text)
            if late:
                raise StepFailed(late)
            res.status = "pass"
        except StepFailed as e:
            res.status, res.message = "fail", str(e)
        except Exception as e:
            res.status, res.message = "fail", f"{type(e).__name__}: {e}"
        res.seconds = time.monotonic() - self.t0 - p.t0
        if res.status == "fail":
            self._failed = True
            self._fail_note(res)
        self._report(res)

    def _check_result(self, sc: Syscall, r: Any) -> None:
        """packetdrill's ``end_syscall``: the result (any non-negative fd where the
        script names one), then the errno, then the output arguments."""
        from .live import FD_CALLS, errno_name, value

        if sc.ret.kind == "ellipsis":
            want = None
        else:
            want = value(sc.ret)
        got = r.text()
        if isinstance(want, int):
            if sc.name in FD_CALLS and want >= 0:
                if r.ret < 0:
                    raise StepFailed(f"{sc.name}(): expected non-negative result but got "
                                     f"{got}")
            elif r.ret != want:
                raise StepFailed(f"{sc.name}(): expected result {want}"
                                 + (f" {sc.errno}" if sc.errno else "")
                                 + f" but got {got}")
            if sc.errno is not None:
                from .live import SYMBOLS

                want_errno = SYMBOLS.get(sc.errno)
                if want_errno is not None and r.errno != want_errno:
                    raise StepFailed(f"{sc.name}(): expected errno {sc.errno} but got "
                                     f"{errno_name(r.errno) if r.errno else 'none'} ({got})")
        if r.mismatch:
            raise StepFailed(r.mismatch)


_CODE_CONSTANTS: dict[str, int] | None = None


def _code_constants() -> dict[str, int]:
    """packetdrill's constants in a snippet's globals (TCP_CA_*, TCPI_OPT_*, TCP_<state>)."""
    global _CODE_CONSTANTS
    if _CODE_CONSTANTS is None:
        from .live import SYMBOLS

        _CODE_CONSTANTS = {k: v for k, v in SYMBOLS.items()
                           if k.startswith(("TCP_CA_", "TCPI_OPT_", "TCP_"))
                           and not k.startswith(("TCP_NO", "TCP_MAX"))}
    return _CODE_CONSTANTS


class _CallBlocked(Exception):
    pass


def _expired(signum: int, frame: Any) -> None:
    raise _CallBlocked


def _can_inline() -> bool:
    """Inline calls need SIGALRM as their watchdog: only the main thread gets signals."""
    return threading.current_thread() is threading.main_thread()


class Workers:
    """Daemon threads that run system calls, kept warm: starting a thread costs ~2 ms
    here (the new thread and the GIL), a queued call ~0.05 ms. A call goes to an idle
    worker, or to a new one while the others are blocked."""

    def __init__(self) -> None:
        import queue

        self._q: queue.SimpleQueue = queue.SimpleQueue()
        self._idle = 0
        self._n = 0
        self._lock = threading.Lock()
        self.submit(lambda: None)  # one warm worker before the script's time 0

    def submit(self, fn: Any) -> None:
        with self._lock:
            if self._idle == 0:
                self._n += 1
                self._idle += 1
                threading.Thread(target=self._loop, name=f"pkt-call-{self._n}",
                                 daemon=True).start()
            self._idle -= 1
        self._q.put(fn)

    def _loop(self) -> None:
        while True:
            fn = self._q.get()
            if fn is None:
                return
            fn()
            with self._lock:
                self._idle += 1

    def stop(self) -> None:
        for _ in range(self._n):
            self._q.put(None)


_ECN_BITS = {"noecn": 0, "ect1": 1, "ect0": 2, "ce": 3, "ect01": 2}
_ICMP_TYPES = {"echo_reply": 0, "unreachable": 3, "source_quench": 4, "redirect": 5,
               "echo_request": 8, "time_exceeded": 11, "parameter_problem": 12,
               "timestamp_request": 13, "timestamp_reply": 14, "information_request": 15,
               "information_reply": 16, "address_mask_request": 17,
               "address_mask_reply": 18}
_ICMP_UNREACH_CODES = {
    "net_unreachable": 0, "host_unreachable": 1, "protocol_unreachable": 2,
    "port_unreachable": 3, "frag_needed": 4, "source_route_failed": 5, "net_unknown": 6,
    "host_unknown": 7, "source_host_isolated": 8, "net_prohibited": 9,
    "host_prohibited": 10, "net_unreachable_for_tos": 11, "host_unreachable_for_tos": 12,
    "packet_filtered": 13, "precedence_violation": 14, "precedence_cutoff": 15}


def _numbered(word: str, what: str) -> int | None:
    """``type_3`` / ``code_4`` / a plain number: packetdrill's numeric spellings."""
    w = word[len(what) + 1:] if word.startswith(what + "_") else word
    return int(w) if w.isdigit() else None


def _open_gso_socket(ifindex: int) -> socket.socket:
    """An AF_PACKET socket that sends frames with a ``virtio_net_hdr`` in front (protocol
    0: it receives nothing)."""
    s = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, 0)
    s.setsockopt(263, 15, 1)
    s.bind((socket.if_indextoname(ifindex), 0))
    return s


def _option_bytes(o: Any) -> tuple[int, bytes]:
    """(kind, data) of a parsed option as it was on the wire."""
    raw = o.emit()
    if raw[0] in (0, 1):
        return raw[0], b""
    return raw[0], raw[2:]


def _sack_text(blocks: tuple[tuple[int, int], ...]) -> str:
    return " ".join(f"{a}:{b}" for a, b in blocks)


# ---------------------------------------------------------------------- shell commands


@dataclass
class CommandResult:
    returncode: int
    output: str


async def run_command(lab: Any, text: str, cwd: Path, timeout: float = 30.0,
                      addresses: Any = None) -> CommandResult:
    """Run a backquoted command with /bin/sh in the peer namespace (cwd: the script's
    directory), whose interface is packetdrill's ``tun0``. Never on the host's network:
    the lab spawns it inside the peer's netns. ``addresses``: the script's, mapped onto
    the lab's in the command's text (``map_addresses``)."""
    import os
    import subprocess

    if addresses is not None:
        text = map_addresses(text, *addresses)
    # packetdrill's environment: PACKETDRILL_PID is its own pid, which is also the
    # command's $PPID (set_sysctls.py and `/tmp/sysctl_restore_${PPID}.sh` rely on it).
    proc = lab.spawn(["/bin/sh", "-c", text], name="pkt-command", cwd=str(cwd),
                     env={"PACKETDRILL_PID": str(os.getpid())},
                     stdout=subprocess.PIPE, stderr=subprocess.STDOUT, stop_timeout=0.2)
    try:
        out, _ = await asyncio.to_thread(proc.popen.communicate, None, timeout)
    except subprocess.TimeoutExpired:
        proc.stop(timeout=0)
        return CommandResult(124, f"timed out after {timeout:g} s")
    return CommandResult(proc.popen.returncode, (out or b"").decode(errors="replace"))


_IPV4 = re.compile(r"(?<![\w.])(\d{1,3}(?:\.\d{1,3}){3})(?![\w.])")


def map_addresses(text: str, sc: Any, lab: Any) -> str:
    """packetdrill's addresses in a shell command, as the lab has them: the script's
    local address is the peer's, its remote address and any other address of the
    local subnet (a gateway: packetdrill routes the remote address through one) are
    netemu's, the lab's only neighbour. ``ip route change 192.0.2.1 via 192.168.0.2 dev
    tun0 advmss 600`` thus changes the lab's route to netemu (a host route the lab adds
    for .pkt runs, as packetdrill adds one for its remote address)."""
    import ipaddress

    local, remote = getattr(sc, "local_ip", None), getattr(sc, "remote_ip", None)
    try:
        net = ipaddress.ip_network(f"{local}/{getattr(sc, 'netmask_ip', '255.255.0.0')}",
                                   strict=False)
    except ValueError:
        net = None

    def one(m: re.Match[str]) -> str:
        a = m.group(1)
        if a == local:
            return str(lab.peer_ip)
        if a == remote:
            return str(lab.emu_ip)
        try:
            if net is not None and ipaddress.ip_address(a) in net:
                return str(lab.emu_ip)
        except ValueError:
            pass
        return a

    return _IPV4.sub(one, text)


async def run_code_blocks(lab: Any, blocks: list[tuple[str, dict[str, Any]]],
                          cwd: Path, timeout: float = 60.0) -> list[str | None]:
    """Each block's verdict (None: it passed) from ``python -m netemu.pkt.code`` in the
    peer namespace, from the script's folder."""
    import json
    import subprocess
    import sys

    proc = lab.spawn([sys.executable, "-m", "netemu.pkt.code"], name="pkt-code",
                     cwd=str(cwd), stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                     stderr=subprocess.PIPE, stop_timeout=0.2)
    data = json.dumps([{"text": t, "values": v} for t, v in blocks]).encode()
    try:
        out, err = await asyncio.to_thread(proc.popen.communicate, data, timeout)
    except subprocess.TimeoutExpired:
        proc.stop(timeout=0)
        return [f"%{{ }}% did not finish within {timeout:g} s"] + ["skipped"] * (len(blocks) - 1)
    try:
        verdicts = json.loads(out or b"null")
    except ValueError:
        verdicts = None
    if not isinstance(verdicts, list) or len(verdicts) != len(blocks):
        last = (err or b"").decode(errors="replace").strip().splitlines()[-1:] or ["no output"]
        return [f"%{{ }}%: the snippets' Python exited with status {proc.popen.returncode}: "
                f"{last[0]}"] + ["skipped"] * (len(blocks) - 1)
    return verdicts
