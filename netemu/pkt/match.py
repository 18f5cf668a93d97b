"""Does the kernel's segment match the script's ``>`` packet? And if not, the message.

packetdrill's ``verify_outbound_live_packet``, field by field in script space: the
kernel's sequence numbers relative to its ISN (a SYN's to the script's own SYN number),
acks relative to netemu's ISN (``remote_seq_live_to_script_offset``), then

- "the same flags, sequence, ack (0 unless the script gives ``ack N``), urgent pointer
  (0 unless ``urg N``) and payload length; the window only when the script gives
  ``win``"; a payload is the script's zeros;
- options (unless ``<...>``): "the same kinds in the same order; every option but NOP,
  EOL and TS byte for byte", SACK blocks and Fast Open cookies in script space, TS val
  only with ``--tcp_ts_tick_usecs``;
- IP fields the script names: the ECN codepoint (``[ect01]``: either ECT), TOS, TTL;
- one larger (TSO/GSO) packet in the script matches a contiguous run of smaller
  segments taken as one (packetdrill's ``aggregate_packets``): ``mismatch`` answers
  "short" while a longer run could still match.

Every message text here is what users and tests read. The kernel's packet itself is
printed in script space by ``actual_text``. Pure: no I/O, no clock of its own.
"""

from __future__ import annotations

from dataclasses import dataclass

from ..wire import TcpSegment
from ..wire.tcp import (
    ACK,
    CWR,
    FIN,
    PSH,
    SYN,
    MssOption,
    SackOption,
    TimestampOption,
    WindowScaleOption,
)
from .clock import ScriptClock
from .fields import ECN_BITS, option_bytes, option_name, option_text, sack_text, script_option
from .model import PacketSpec
from .packet_parser import FLAG_BITS
from .state import MASK, Conn
from .tfo import CookieMap

# (TOS or traffic class, TTL or hop limit, IPv6 flow label or 0) of the IP header a
# segment came in
IpFields = tuple[int, int, int]
_ECN_NAMES = {0: "noecn", 1: "ect1", 2: "ect0", 3: "ce"}


def flags_text(flags: int) -> str:
    """Flags as packetdrill prints them: S F R P U E W, then ``.`` for ACK; ``-`` for
    none (tcpdump's order is scenario/units.py's, for YAML)."""
    s = "".join(ch for ch in "SFRPUEW" if flags & FLAG_BITS[ch])
    if flags & ACK:
        s += "."
    return s or "-"


def merged(segs: list[TcpSegment]) -> tuple[int, int]:
    """(flags, payload length) of a run of segments taken as one, as packetdrill's
    ``aggregate_packets``: the last segment's flags (so its PSH and FIN), the first
    one's sequence number and CWR."""
    first, last = segs[0], segs[-1]
    flags = (last.flags & ~CWR) | (first.flags & CWR)
    return flags, sum(len(s.payload) for s in segs)


def ack_off(seg: TcpSegment, conn: Conn) -> int:
    """packetdrill's ``remote_seq_live_to_script_offset``: a SYN's ack is written
    against the script's own SYN numbers, any other ack from the remote ISN."""
    if seg.flags & SYN and conn.syn_off is not None:
        return conn.syn_off
    return conn.our_off


def script_seq(seg: TcpSegment, conn: Conn) -> int:
    """The kernel's sequence number in script space."""
    return (seg.seq - (conn.kernel_off or 0) + (conn.kernel_syn if seg.flags & SYN else 0)) & MASK


def is_zeros(segs: list[TcpSegment]) -> bool:
    return all(s.payload.count(0) == len(s.payload) for s in segs)


def continues(prev: TcpSegment, nxt: TcpSegment) -> bool:
    """Whether ``nxt`` carries on ``prev``'s run: next in sequence, the same ack, the
    same flags but PSH and FIN."""
    return (
        nxt.seq == (prev.seq + len(prev.payload)) & MASK
        and nxt.ack == prev.ack
        and (nxt.flags | PSH | FIN) == (prev.flags | PSH | FIN)
    )


def ip_mismatch(pkt: PacketSpec, got: IpFields | None) -> str | None:
    """IP fields a ``>`` packet names: the ECN codepoint (``[ect01]``: either ECT),
    the whole TOS byte, the TTL."""
    ip = pkt.ip
    if got is None or ip is None:
        return None
    tos, ttl, _flow = got
    if ip.ecn is not None:
        have = tos & 3
        ok = have in (1, 2) if ip.ecn == "ect01" else have == ECN_BITS[ip.ecn]
        if not ok:
            return f"live packet field ip ecn: expected: {ip.ecn} vs actual: {_ECN_NAMES[have]}"
    if ip.tos is not None and (tos if ip.ecn is None else tos & ~3) != (
        ip.tos if ip.ecn is None else ip.tos & ~3
    ):
        return f"live packet field ip tos: expected: {ip.tos:#x} vs actual: {tos:#x}"
    if ip.ttl is not None and ttl != ip.ttl:
        return f"live packet field ip ttl: expected: {ip.ttl} vs actual: {ttl}"
    return None


def flowlabel_mismatch(pkt: PacketSpec, got: IpFields | None, conn: Conn) -> str | None:
    """packetdrill's flow label check (run_packet.c, verify_outbound_live_ipv6_flowlabel):
    the kernel picks its labels, so a script's label names one: the same label in the
    script, the same live one; a new label in the script, a new live one."""
    want = pkt.ip.flowlabel if pkt.ip is not None else None
    if not want or got is None:
        return None
    live = got[2]
    if not live:
        return "flowlabel unmarked in the live packet"
    if conn.flowlabels is None:
        conn.flowlabels = (want, live)
        return None
    script0, live0 = conn.flowlabels
    if want != script0:
        if live == live0:
            return "expected a different flowlabel but got the same"
        conn.flowlabels = (want, live)
        return None
    if live != live0:
        return f"inconsistent flowlabels for this packet: expected: {live0:#x} vs actual: {live:#x}"
    return None


def learn_ts(pkt: PacketSpec, seg: TcpSegment, conn: Conn) -> None:
    """The script's TS val for the kernel's: later inbound ``ecr``s map back by it."""
    ts = seg.timestamp
    if ts is None or not pkt.options:
        return
    for o in pkt.options:
        if o.kind == "TS":
            conn.ts_map[o.value[0]] = ts.tsval
            if conn.first_ts is None:
                conn.first_ts = (o.value[0], ts.tsval)


@dataclass
class Matcher:
    """Compares the kernel's segments with the script's packets: Fast Open cookies
    through ``cookies``, TS values (with a ``ts_tick_usecs``) against ``clock``'s
    tolerance since the script's start."""

    cookies: CookieMap
    clock: ScriptClock
    ts_tick_usecs: int = 0

    def mismatch(self, pkt: PacketSpec, conn: Conn, segs: list[TcpSegment]) -> str | None:
        """None when the (run of) segment(s) matches; "short" when a longer run could."""
        seg = segs[0]
        flags, length = merged(segs)
        seq = script_seq(seg, conn)
        if seq != pkt.start & MASK:
            return f"live packet field tcp_seq: expected: {pkt.start} vs actual: {seq}"
        if (
            length < pkt.length
            and (flags & ~(PSH | FIN)) == (pkt.flags & ~(PSH | FIN))
            and is_zeros(segs)
        ):
            return "short"
        if flags != pkt.flags:
            return (
                f"live packet field tcp flags: expected: {pkt.flags_text} vs actual: "
                f"{flags_text(flags)}"
            )
        # packetdrill compares the ack field always (a script without `ack N` says 0),
        # in script space when the ACK flag is set, and the urgent pointer (0 unless
        # `urg N`).
        want_ack = (pkt.ack or 0) & MASK
        ack = (seg.ack - ack_off(seg, conn)) & MASK if seg.flags & ACK else seg.ack
        if ack != want_ack:
            return f"live packet field tcp_ack_seq: expected: {want_ack} vs actual: {ack}"
        if seg.urgent != (pkt.urg or 0):
            return (
                f"live packet field tcp_urg_ptr: expected: {pkt.urg or 0} vs actual: {seg.urgent}"
            )
        if length != pkt.length:
            return f"live packet payload length: expected: {pkt.length} vs actual: {length}"
        if pkt.win is not None and seg.window != pkt.win:
            return f"live packet field tcp_window: expected: {pkt.win} vs actual: {seg.window}"
        if not is_zeros(segs):
            return "incorrect outbound data payload (the script's data is zeros)"
        if pkt.options_any:
            return None
        return self.options_mismatch(pkt, seg, conn)

    def options_mismatch(self, pkt: PacketSpec, seg: TcpSegment, conn: Conn) -> str | None:
        """packetdrill's ``verify_outbound_live_tcp_options``: the same kinds in the same
        order; every option but NOP, EOL and TS byte for byte (SACK blocks and Fast
        Open cookies in script space); TS val only with ``--tcp_ts_tick_usecs``."""
        specs = pkt.options or []
        want = [script_option(o, conn, self.cookies, inbound=False) for o in specs]
        have = [option_bytes(o) for o in seg.options]
        if [k for k, _d in want] != [k for k, _d in have]:
            return (
                f"bad outbound TCP options: expected <{','.join(o.kind for o in specs)}> "
                f"vs actual <{','.join(option_name(o) for o in seg.options)}>"
            )
        for spec, (kind, wdata), (_k, hdata) in zip(specs, want, have, strict=True):
            if kind == 8:
                late = self._ts_mismatch(spec.value[0], hdata, conn)
                if late:
                    return late
                continue
            if wdata is None:
                continue
            if len(wdata) != len(hdata):
                return (
                    f"bad length in outbound TCP option {spec.kind}: expected "
                    f"{len(wdata) + 2} vs actual {len(hdata) + 2}"
                )
            if wdata != hdata:
                return (
                    f"bad value in outbound TCP option {spec.kind}: expected "
                    f"{spec.text()} vs actual {option_text(kind, hdata, conn, self.cookies)}"
                )
        return None

    def _ts_mismatch(self, want_val: int, hdata: bytes, conn: Conn) -> str | None:
        tick = self.ts_tick_usecs
        if not tick or conn.first_ts is None:
            return None
        val = int.from_bytes(hdata[:4], "big")
        script_val = (val - conn.first_ts[1] + conn.first_ts[0]) & MASK
        # packetdrill's tolerance here grows with the time since the script's start, not
        # since the previous event.
        tol_us = self.clock.span_tolerance(max(self.clock.now(), 0.0)) * 1e6
        if abs(((script_val - want_val + 2**31) & MASK) - 2**31) * tick > tol_us:
            return (
                f"bad outbound TCP timestamp value: expected {want_val} "
                f"vs actual {script_val} (tick {tick} us)"
            )
        return None

    def actual_text(
        self,
        seg: TcpSegment,
        t: float,
        conn: Conn,
        segs: list[TcpSegment] | None = None,
        ip: IpFields | None = None,
    ) -> str:
        """The kernel's (run of) segment(s) in script space, as a script line."""
        segs = segs or [seg]
        flags, length = merged(segs)
        seq = script_seq(seg, conn)
        ecn = {1: "[ect1] ", 2: "[ect0] ", 3: "[ce] "}.get(ip[0] & 3, "") if ip else ""
        s = f"{t:.6f} {ecn}{flags_text(flags)} {seq}:{(seq + length) & MASK}({length})"
        if flags & ACK:
            s += f" ack {(seg.ack - ack_off(seg, conn)) & MASK}"
        if seg.urgent:
            s += f" urg {seg.urgent}"
        s += f" win {seg.window}"
        opts = []
        for o in seg.options:
            if isinstance(o, MssOption):
                opts.append(f"mss {o.mss}")
            elif isinstance(o, WindowScaleOption):
                opts.append(f"wscale {o.shift}")
            elif isinstance(o, SackOption):
                opts.append(sack_text(o.blocks, conn))
            elif isinstance(o, TimestampOption):
                val = o.tsval
                if conn.first_ts is not None:
                    val = (conn.first_ts[0] + o.tsval - conn.first_ts[1]) & MASK
                opts.append(f"TS val {val} ecr {o.tsecr}")
            else:
                kind, data = option_bytes(o)
                opts.append(option_text(kind, data, conn, self.cookies) if data else option_name(o))
        if opts:
            s += " <" + ",".join(opts) + ">"
        if len(segs) > 1:
            s += f" (a run of {len(segs)} segments)"
        return s
