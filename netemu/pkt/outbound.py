"""A script's ``>`` packet: wait for the kernel's next segment on the connection under
test, compare it (``match``), check its time (``clock``).

The kernel's packets are the frames netemu's host read from the lab's link (its trace);
a cursor per connection walks them. Their time is the kernel's own receive timestamp
where the link has one ("packetdrill takes it with SIOCGSTAMP": a frame netemu read
late still left the kernel on time). A scripted packet is waited for past its time
(its end plus tolerance plus a grace), so a late packet fails as "happened at" (a
timing failure) rather than "no packet", as packetdrill's sniffer waits for it too.
One larger (TSO) packet in the script gathers a contiguous run of the kernel's
segments. ``> udp (N)`` and ``> icmp ...`` packets take the next such frame from the
kernel. With ``--non_fatal=packet`` a mismatch is a warning and the script goes on.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import time
from collections.abc import Callable
from typing import Protocol, TypeVar

from ..trace.record import FrameRecord, NoteRecord, Trace
from ..wire import TcpSegment, parse_frame
from ..wire.tcp import SYN
from .clock import ScriptClock, when_text
from .fields import icmp_code, icmp_type
from .match import IpFields, Matcher, continues, flowlabel_mismatch, ip_mismatch, learn_ts
from .model import Event, PacketSpec
from .state import Conn, ConnTable, EventFailed

T = TypeVar("T")
Got = tuple[TcpSegment, float]  # a segment and its script time


class Stamped(Protocol):
    """A step's result: ``t`` is the script time its packet came at."""

    t: float | None


class Outbound:
    """The kernel's packets as the script expects them, read from ``trace``."""

    def __init__(
        self,
        trace: Trace,
        peer_ip: str,
        conns: ConnTable,
        clock: ScriptClock,
        matcher: Matcher,
        *,
        grace: float,
        strict_segments: bool,
        non_fatal: bool,
    ) -> None:
        self.trace = trace
        self.peer_ip = peer_ip
        self.six = ":" in peer_ip  # IPv6 on the wire: ICMPv6, flow labels
        self.conns = conns
        self.clock = clock
        self.matcher = matcher
        self.grace = grace  # how long past its time a packet is waited for
        self.strict_segments = strict_segments  # one script packet, one segment
        self.non_fatal = non_fatal  # --non_fatal=packet: a mismatch is a warning
        self.stamps: dict[int, float] | None = None  # the link's kernel receive times
        self._ip_of: dict[int, IpFields] = {}  # id(segment) -> (tos, ttl, flow label)
        self._other_cursor = 0  # next trace frame for a > udp / > icmp packet
        self._frame_evt = asyncio.Event()

    def on_frame(self, direction: str, data: bytes, seg: TcpSegment | None) -> None:
        """The host's hook for each frame: an inbound one may be the one awaited."""
        if direction == "in":
            self._frame_evt.set()

    # ------------------------------------------------------------------ reading
    def _frame_time(self, f: FrameRecord) -> float:
        """Script time of a frame read from the peer: the kernel's own receive time, as
        packetdrill takes it (SIOCGSTAMP), when the link has it (a frame netemu read
        late still left the kernel on time), else the time netemu read it."""
        t_live = self.stamps.pop(id(f.data), None) if self.stamps is not None else None
        return (t_live if t_live is not None else f.t) - self.clock.t0

    def _take(self, conn: Conn) -> Got | None:
        frames = self.trace.frames
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
            if seg is None:
                continue
            ip, ip6 = fr.ip, fr.ip6
            if ip is not None:
                if ip.src != self.peer_ip:
                    continue
                fields = (ip.tos, ip.ttl, 0)
            elif ip6 is not None and ip6.src == self.peer_ip:
                fields = (ip6.traffic_class, ip6.hop_limit, ip6.flow_label)
            else:
                continue
            if seg.dst_port != conn.emu_port:
                continue
            if conn.kernel_port is None and any(
                c.kernel_port == seg.src_port and c.emu_port == seg.dst_port
                for c in self.conns.all
                if c is not conn
            ):
                continue  # an earlier connection's segment: not the socket under test's
            if conn.kernel_port is not None and seg.src_port != conn.kernel_port:
                continue
            if conn.kernel_port is None:
                conn.kernel_port = seg.src_port
            conn.cursor = i
            self._ip_of[id(seg)] = fields
            return seg, self._frame_time(f)
        conn.cursor = i
        return None

    def _take_other(self, proto: int) -> tuple[bytes, float] | None:
        """The kernel's next frame of ``proto`` (17 UDP, 1 ICMP; over IPv6, 58 ICMPv6):
        its IP payload and its script time."""
        frames = self.trace.frames
        i = self._other_cursor
        while i < len(frames):
            f = frames[i]
            i += 1
            if f.direction != "in":
                continue
            body = _ip_payload(f.data, proto, self.peer_ip)
            if body is None:
                continue
            self._other_cursor = i
            return body, self._frame_time(f)
        self._other_cursor = i
        return None

    async def _wait(self, take: Callable[[], T | None], deadline: float) -> T | None:
        """``take()``'s first answer, waiting for new frames until script time
        ``deadline``; None when there was none by then."""
        while True:
            self._frame_evt.clear()
            got = take()
            if got is not None:
                return got
            left = self.clock.t0 + deadline - time.monotonic()
            if left <= 0:
                return None
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._frame_evt.wait(), left)

    def _deadline(self, end: float, tol: float, checked: bool, grace: float) -> float:
        if checked:
            return end + tol + grace
        return self.clock.now() + max(self.grace, 5.0)

    # ------------------------------------------------------------------ expecting
    async def expect(
        self,
        ev: Event,
        pkt: PacketSpec,
        start: float,
        end: float,
        tol: float,
        checked: bool,
        res: Stamped,
    ) -> None:
        """Wait for and check the kernel's packet for ``ev``; ``res.t`` its time."""
        if pkt.proto != "tcp":
            await self._expect_other(ev, pkt, start, end, tol, checked, res)
            return
        conn = self.conns.for_outbound()
        # Waited for past its time, so a late packet reads "happened at" (a timing
        # failure), not "no packet": packetdrill's sniffer waits for it too.
        deadline = self._deadline(end, tol, checked, self.grace)
        got = await self._wait(lambda: self._take(conn), deadline)
        when = when_text(start, end, checked)
        if got is None:
            by = f"by {deadline:.3f} s" if checked else "in time"
            if checked and self.clock.strict:
                by += (
                    f" (strict timing: expected at {when_text(start, end, True)} s "
                    f"± {tol * 1000:.1f} ms)"
                )
            raise EventFailed(
                f"no packet from the kernel {by}\n  script packet: {when} {pkt.text()[2:]}"
            )
        seg, t = got
        res.t = t
        self.clock.packet_end = t
        if conn.kernel_off is None:
            # packetdrill's local ISN: a SYN maps script to live by the two ISNs, every
            # later segment counts from the live ISN (so a SYN scripted at 5 is rare
            # but exact).
            conn.kernel_off = seg.seq if seg.flags & SYN else 0
            conn.kernel_syn = pkt.start if seg.flags & SYN else 0
        segs, why = await self._gather(pkt, conn, seg, deadline)
        if why is None and pkt.ip is not None:
            got_ip = self._ip_of.get(id(seg))
            why = ip_mismatch(pkt, got_ip)
            if why is None and self.six:  # (an IPv4 header has no flow label)
                why = flowlabel_mismatch(pkt, got_ip, conn)
        learn_ts(pkt, seg, conn)
        for s in segs:
            ts = s.timestamp
            if ts is not None:
                conn.last_live_ts = ts.tsval
        if why is None and checked:
            why = self.clock.check(ev.line, "outbound packet", t, start, end, tol, ev.time.text)
        if why is not None:
            actual = self.matcher.actual_text(seg, t, conn, segs, self._ip_of.get(id(seg)))
            self._failure(
                ev, f"{why}\n  script packet: {when} {pkt.text()[2:]}\n  actual packet: {actual}"
            )

    async def _gather(
        self, pkt: PacketSpec, conn: Conn, seg: TcpSegment, deadline: float
    ) -> tuple[list[TcpSegment], str | None]:
        """The segment, or the run of segments one TSO packet in the script stands
        for, and why it does not match (None: it does)."""
        segs = [seg]
        why = self.matcher.mismatch(pkt, conn, segs)
        if why == "short" and self.strict_segments:
            why = (
                f"live packet payload: expected {pkt.length} bytes vs actual "
                f"{len(seg.payload)} bytes (--strict_segments: one segment)"
            )
        # One TSO segment in the script, several MSS-sized ones on the wire: gather a run.
        while why == "short" and pkt.length:
            more = await self._wait(lambda: self._take(conn), max(deadline, self.clock.now() + 0.2))
            if more is None:
                why = (
                    f"payload length: expected {pkt.length} in one run, the kernel sent "
                    f"{sum(len(s.payload) for s in segs)} and then nothing"
                )
                break
            nxt = more[0]
            if not continues(segs[-1], nxt):
                segs.append(nxt)
                why = (
                    "a run of segments for one TSO packet was broken by: "
                    + self.matcher.actual_text(nxt, more[1], conn, ip=self._ip_of.get(id(nxt)))
                )
                break
            segs.append(nxt)
            self.clock.packet_end = more[1]
            why = self.matcher.mismatch(pkt, conn, segs)
        return segs, why

    async def _expect_other(
        self,
        ev: Event,
        pkt: PacketSpec,
        start: float,
        end: float,
        tol: float,
        checked: bool,
        res: Stamped,
    ) -> None:
        """A ``> udp (N)`` or ``> icmp ...`` packet: the next such frame from the kernel
        (its payload length, its ICMP type and code), at its time."""
        deadline = self._deadline(end, tol, checked, 0.05 if self.clock.strict else self.grace)
        six = self.six
        proto = 17 if pkt.proto == "udp" else 58 if six else 1
        got = await self._wait(lambda: self._take_other(proto), deadline)
        if got is None:
            raise EventFailed(
                f"no {pkt.proto} packet from the kernel by {deadline:.3f} s\n"
                f"  script packet: {when_text(start, end, checked)} "
                f"{pkt.text()[2:]}"
            )
        body, t = got
        res.t = t
        why = None
        if pkt.proto == "udp":
            n = len(body) - 8
            if n != pkt.length:
                why = (
                    f"live packet payload: expected {pkt.length} bytes vs actual {n} "
                    f"bytes\n  script packet: {pkt.text()[2:]}"
                )
        else:
            ic = pkt.icmp
            want_type = icmp_type(ic.type, six) if ic else None
            want_code = (
                icmp_code(ic.code, ic.type, six) if ic is not None and ic.code is not None else None
            )
            if (want_type is not None and body[0] != want_type) or (
                want_code is not None and body[1] != want_code
            ):
                why = (
                    f"live packet field icmp type/code: expected {want_type}/{want_code} "
                    f"vs actual {body[0]}/{body[1]}"
                )
        if why is None and checked:
            why = self.clock.check(ev.line, "outbound packet", t, start, end, tol, ev.time.text)
        if why is not None:
            self._failure(ev, why)

    def _failure(self, ev: Event, text: str) -> None:
        """A sniffed packet that does not match: the step fails, or with packetdrill's
        ``--non_fatal=packet`` it is a warning and the script goes on."""
        if self.non_fatal:
            msg = f"warning (--non_fatal=packet): line {ev.line}: {text}"
            self.clock.notes.append(msg)
            self.trace.notes.append(NoteRecord(time.monotonic(), msg.splitlines()[0], "note"))
            return
        raise EventFailed(text)


def _ip_payload(data: bytes, proto: int, src: str) -> bytes | None:
    """The IP payload of an Ethernet frame from ``src`` carrying ``proto`` (IPv4, or
    IPv6 with no extension headers: what the kernel sends here), else None."""
    if len(data) >= 34 and data[12:14] == b"\x08\x00":
        ihl = (data[14] & 0xF) * 4
        if data[23] == proto and socket.inet_ntoa(data[26:30]) == src:
            return data[14 + ihl :]
    elif (
        len(data) >= 54
        and data[12:14] == b"\x86\xdd"
        and data[20] == proto
        and socket.inet_ntop(socket.AF_INET6, data[22:38]) == src
    ):
        return data[54:]
    return None
