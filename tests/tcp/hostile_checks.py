"""The checks of test_hostile_segments.py after every step of an episode: RFC
9293 edges (netemu.tcp.state.TRANSITIONS), segment rules, invariants, bytes."""

from __future__ import annotations

import math

from hostile_episode import (
    ACK_EDGES,
    FIN_EDGES,
    LOCAL,
    MACS,
    REMOTE,
    SEG,
    TIMER,
    EpisodeBuild,
    S,
    window_ok,
)

from netemu.tcp import (
    Closed,
    Connected,
    Connection,
    ConnectionReset,
    DataReceived,
    PeerClosed,
    State,
    StateChanged,
    TimedOut,
)
from netemu.tcp.state import TRANSITIONS, Cause
from netemu.tcp.timestamps import PAWS_IDLE
from netemu.wire import IPv4Packet, build_tcp_frame, parse_frame
from netemu.wire.seq import MASK, seq_diff, seq_ge, seq_gt, seq_in_window, seq_le, seq_lt
from netemu.wire.tcp import (
    ACK,
    FIN,
    PSH,
    RST,
    SYN,
    MalformedOption,
    MssOption,
    RawOption,
    SackOption,
    SackPermittedOption,
    TcpSegment,
    TimestampOption,
    WindowScaleOption,
)


class EpisodeChecks(EpisodeBuild):
    """What must hold after every step (see test_hostile_segments.py)."""

    def snapshot(self, seg: TcpSegment) -> dict:
        c = self.conn
        assert c is not None
        return dict(
            state=c.state,
            rcv_nxt=c.rcv_nxt,
            rcv_adv=c.rcv_adv,
            rcv_wnd=c.rcv_wnd(),
            snd_una=c.snd_una,
            snd_max=c.snd_max,
            ts_recent=c.ts.recent,
            ts_valid=c.ts.recent_valid,
            ts_stamp=c.ts.recent_stamp,
            awaiting=c._awaiting_syn_ack(),
            irs=c.irs,
            read_closed=c.read_closed,
        )

    def check_segment_rules(self, seg: TcpSegment, b: dict) -> None:
        """What one arriving segment may not do, whatever it holds."""
        c = self.conn
        assert c is not None
        st = b["state"]
        flags = seg.flags
        if not st.synchronized or st is S.CLOSED:
            return
        unchanged = c.state is st and c.rcv_nxt == b["rcv_nxt"] and c.snd_una == b["snd_una"]
        # SND.UNA never moves back nor past what was sent, and moves only to a SEG.ACK.
        if not (seq_ge(c.snd_una, b["snd_una"]) and seq_le(c.snd_una, b["snd_max"])):
            self.fail(f"SND.UNA moved from {b['snd_una']} to {c.snd_una} (SND.MAX {b['snd_max']})")
        if c.snd_una != b["snd_una"] and (not flags & ACK or seg.ack != c.snd_una):
            self.fail(f"SND.UNA moved to {c.snd_una} on {seg.flag_names} ACK={seg.ack}")
        # Data only within the window we advertised (and a FIN just after it).
        if not seq_le(c.rcv_nxt, (b["rcv_adv"] + 1) & MASK) and c.state is not S.CLOSED:
            self.fail(f"RCV.NXT moved to {c.rcv_nxt}, past the advertised edge {b['rcv_adv']}")
        if b["awaiting"]:
            return  # our SYN-ACK is not acknowledged: the rules below assume both SYNs are
        # RFC 5961 §4.2: a SYN is answered with a challenge ACK, whatever its SEQ.
        if flags & SYN and not flags & RST and not unchanged:
            self.fail("a SYN in a synchronized state changed the connection")
        # RFC 9293 §3.10.7.4 "first, check sequence number": an unacceptable
        # segment is answered with an ACK and dropped (an ACK at RCV.NXT aside).
        seg_len = seg.seg_len
        nxt, wnd = b["rcv_nxt"], b["rcv_wnd"]
        if seg_len == 0:
            ok = seg.seq == nxt if wnd == 0 else seq_in_window(seg.seq, nxt, wnd)
        else:
            ok = wnd > 0 and (
                seq_in_window(seg.seq, nxt, wnd)
                or seq_in_window((seg.seq + seg_len - 1) & MASK, nxt, wnd)
            )
        if not ok and seg.seq != nxt and not unchanged:
            self.fail("an unacceptable segment changed the connection")
        # RFC 5961 §3.2: a RST resets only when its SEQ is exactly RCV.NXT.
        if flags & RST and c.state is S.CLOSED and seg.seq != nxt:
            self.fail(f"a RST at {seg.seq} closed the connection (RCV.NXT {nxt})")
        # RFC 7323 §5.3 (R1), PAWS: an old TSval (not on a RST) drops the segment.
        ts = seg.timestamp
        if (
            c.ts_ok
            and ts is not None
            and not flags & RST
            and b["ts_valid"]
            and seq_lt(ts.tsval, b["ts_recent"])
            and self.now - b["ts_stamp"] <= PAWS_IDLE
            and not unchanged
        ):
            self.fail(
                f"PAWS: TSval {ts.tsval} < TS.Recent {b['ts_recent']}, "
                "yet the segment changed the connection"
            )

    def check_events(
        self, cause: str, old: State, seg: TcpSegment | None, fin_pending: bool
    ) -> None:
        c = self.conn
        assert c is not None
        state = self.known_state if self.known_state is not None else old
        for ev in c.events():
            if isinstance(ev, StateChanged):
                if ev.old is not state:
                    self.fail(f"StateChanged from {ev.old}, but the state was {state}")
                edge = (ev.old, ev.new)
                if ev.new not in TRANSITIONS.get((ev.old, Cause(cause)), ()):
                    self.fail(
                        f"{ev.old} -> {ev.new} ({ev.cause!r}) on a {cause}: "
                        "not an RFC 9293 transition"
                    )
                if cause == SEG and seg is not None:
                    self.check_seg_edge(edge, ev, seg, fin_pending)
                self.note(f"  {ev.old} -> {ev.new} ({ev.cause})")
                state = ev.new
            elif isinstance(ev, DataReceived):
                self.data_events += ev.length
                if self.peer_closed:
                    self.fail("DataReceived after PeerClosed")
            elif isinstance(ev, PeerClosed):
                self.peer_closed += 1
                if self.peer_closed > 1 or (
                    cause == SEG and seg is not None and not seg.flags & FIN and not fin_pending
                ):
                    self.fail("PeerClosed twice, or without a FIN")
            elif isinstance(ev, ConnectionReset):
                if cause != SEG or seg is None or not seg.flags & RST:
                    self.fail(f"ConnectionReset on a {cause}, not a RST")
            elif isinstance(ev, TimedOut):
                if cause != TIMER:
                    self.fail(f"TimedOut on a {cause}")
            elif isinstance(ev, Connected):
                if state not in (S.ESTABLISHED, S.FIN_WAIT_1, S.CLOSE_WAIT) or cause != SEG:
                    self.fail(f"Connected in {state} on a {cause}")
            elif isinstance(ev, Closed):
                self.closed_events += 1
                if self.closed_events > 1:
                    self.fail("Closed reported twice")
        if state is not c.state:
            self.fail(f"the state is {c.state}, the events say {state}")
        self.known_state = state

    def check_seg_edge(
        self, edge: tuple[State, State], ev: StateChanged, seg: TcpSegment, fin_pending: bool
    ) -> None:
        flags = seg.flags
        if edge in FIN_EDGES and not flags & FIN and not fin_pending:
            self.fail(f"{edge[0]} -> {edge[1]} without a FIN")
        if edge in ACK_EDGES and not flags & ACK and not flags & RST:
            self.fail(f"{edge[0]} -> {edge[1]} without an ACK")
        if edge == (S.SYN_SENT, S.ESTABLISHED) and flags & (SYN | ACK) != SYN | ACK:
            self.fail("SYN-SENT -> ESTABLISHED without SYN,ACK")
        if edge == (S.SYN_SENT, S.SYN_RECEIVED) and flags & (SYN | ACK) != SYN:
            self.fail("SYN-SENT -> SYN-RECEIVED without a lone SYN")
        c = self.conn
        assert c is not None
        if edge == (S.SYN_SENT, S.CLOSED) and not (
            flags & ACK and seq_gt(seg.ack, c.iss) and seq_le(seg.ack, c.snd_max)
        ):
            # §3.10.7.3: a RST in SYN-SENT counts only with an acceptable ACK.
            self.fail(f"SYN-SENT reset by a RST whose ACK {seg.ack} is not acceptable")
        if edge == (S.ESTABLISHED, S.FIN_WAIT_1) and ev.cause != "shutdown() (queued)":
            self.fail("ESTABLISHED -> FIN-WAIT-1 on a segment, not the queued CLOSE")
        # Only a RST closes, or data for a closed reader (answered with RST).
        if (
            edge[1] is S.CLOSED
            and edge[0] is not S.LAST_ACK
            and not flags & RST
            and not (ev.cause == "abort()" and seg.payload)
        ):
            self.fail(f"{edge[0]} -> CLOSED on {seg.flag_names} ({ev.cause!r})")

    def check_reset(self, seg: TcpSegment, rst: TcpSegment, listener: bool) -> None:
        """RFC 9293 §3.10.7.1-2: the reset a closed port or a listener sends."""
        if seg.flags & RST:
            self.fail("a RST was answered with a RST")
        if not rst.flags & RST or rst.payload:
            self.fail(f"not a bare RST: {rst.summary()}")
        if seg.flags & ACK:
            if (rst.seq, rst.flags) != (seg.ack, RST):
                self.fail(f"RST to an ACK: {rst.summary()}, want <SEQ=SEG.ACK><CTL=RST>")
        elif listener:
            self.fail("a listener answered a segment without ACK with a RST")
        elif (rst.seq, rst.ack, rst.flags) != (0, (seg.seq + seg.seg_len) & MASK, RST | ACK):
            self.fail(f"RST to a non-ACK: {rst.summary()}")
        self.check_bytes(rst, seg.dst_port, seg.src_port)

    def check_wellformed(self, s: TcpSegment, c: Connection) -> None:
        if (s.src_port, s.dst_port) != (c.local_port, c.remote_port):
            self.fail(f"ports {s.src_port} > {s.dst_port}")
        if not (
            0 <= s.seq <= MASK and 0 <= s.ack <= MASK and window_ok(s) and 0 <= s.urgent <= 0xFFFF
        ):
            self.fail(f"a field out of range: {s!r}")
        f = s.flags
        if f & ~(SYN | FIN | RST | PSH | ACK):
            self.fail(f"flags we never send: {s.flag_names}")
        if f & SYN and f & (FIN | RST):
            self.fail(f"SYN with FIN or RST: {s.flag_names}")
        if not f & (ACK | RST) and f != SYN:
            self.fail(f"a segment without ACK: {s.flag_names}")
        if f & RST and s.payload:
            self.fail("a RST with data")
        if s.urgent:
            self.fail("an urgent pointer we never set")
        kinds = [type(o) for o in s.options]
        if not f & SYN and {MssOption, WindowScaleOption, SackPermittedOption} & set(kinds):
            # RFC 9293 §3.7.1, RFC 7323 §2.2, RFC 2018 §2: on SYNs only.
            self.fail(f"a SYN-only option on {s.flag_names}: {s.options}")
        if RawOption in kinds or MalformedOption in kinds:
            self.fail(f"an option we never send: {s.options}")
        if not f & SYN:
            if c.ts_ok and not f & RST and TimestampOption not in kinds:
                self.fail("RFC 7323 §3.2: TSopt missing from a non-RST segment")
            if not c.ts_ok and TimestampOption in kinds:
                self.fail("TSopt sent, not negotiated")
            if SackOption in kinds and not c.sack_ok:
                self.fail("SACK blocks sent, SACK not negotiated")
            if len(s.payload) > c.smss:
                self.fail(f"{len(s.payload)} bytes in a segment, SMSS {c.smss}")
        elif s.payload:
            self.fail("data on our SYN")
        for o in s.options:
            if isinstance(o, SackOption):
                for left, right in o.blocks:
                    if not seq_lt(left, right):
                        self.fail(f"an empty or inverted SACK block {o.blocks}")
        self.check_bytes(s, c.local_port, c.remote_port)

    def check_bytes(self, s: TcpSegment, sport: int, dport: int) -> None:
        """Emit the whole frame and parse it back through netemu.wire, checksums verified."""
        try:
            frame = build_tcp_frame(MACS[0], MACS[1], IPv4Packet(LOCAL[0], REMOTE[0], 6), s)
        except (ValueError, OverflowError) as e:  # struct.error is a ValueError
            self.fail(f"cannot emit {s!r}: {e}")
        p = parse_frame(frame).tcp
        if p is None:
            self.fail(f"not TCP once emitted: {s!r}")
        assert p is not None
        got = (
            p.src_port,
            p.dst_port,
            p.seq,
            p.ack,
            p.flags,
            p.window,
            p.payload,
            p.options,
            p.urgent,
        )
        want = (sport, dport, s.seq, s.ack, s.flags, s.window, s.payload, s.options, s.urgent)
        if got != want:
            self.fail(f"emitted and parsed back: {got[:6]} {got[7]}, not {want[:6]} {want[7]}")

    def check_invariants(self) -> None:
        c = self.conn
        assert c is not None
        st = c.state
        if not isinstance(st, State):
            self.fail(f"state {st!r}")
        if st is S.CLOSED and c.timers:
            self.fail(f"timers left in CLOSED: {c.timers}")
        if st is S.TIME_WAIT and set(c.timers) - {"time-wait"}:
            self.fail(f"timers other than 2MSL in TIME-WAIT: {c.timers}")
        if not (seq_le(c.snd_una, c.snd_nxt) and seq_le(c.snd_nxt, c.snd_max)):
            self.fail(f"not SND.UNA {c.snd_una} =< SND.NXT {c.snd_nxt} =< SND.MAX {c.snd_max}")
        if seq_diff(c.snd_max, c.snd_una) > c.snd_buffered + 2:
            self.fail(f"{seq_diff(c.snd_max, c.snd_una)} in flight, {c.snd_buffered} buffered")
        if c.snd_buffered > c.config.snd_buf:
            self.fail(f"{c.snd_buffered} bytes in a {c.config.snd_buf}-byte send buffer")
        if not 0 <= c.snd_wnd <= 0xFFFF << 14:
            self.fail(f"SND.WND {c.snd_wnd}")
        if st is not S.SYN_SENT and c.snd_wnd not in self.windows and st is not S.CLOSED:
            self.fail(f"SND.WND {c.snd_wnd} is no window the peer sent")
        if c.rcv_wnd() < 0:
            self.fail(f"RCV.WND {c.rcv_wnd()}")
        # A scaled window is rounded up to within one unit (2**S - 1 bytes) past the
        # buffer's end (docs/design.md, tcp): what arrives may overrun it by as much.
        slack = (1 << c.rcv_wscale) - 1
        if c.readable > c.config.rcv_buf + slack:
            self.fail(f"{c.readable} unread bytes in a {c.config.rcv_buf}-byte receive buffer")
        if c.rcvq.ooo_bytes > c.config.rcv_buf + slack:
            self.fail(f"{c.rcvq.ooo_bytes} bytes held out of order, buffer {c.config.rcv_buf}")
        if st is S.SYN_RECEIVED or st.synchronized:
            self.synced = True
        if self.synced:
            # RCV.NXT moved by the data reported and the FIN, nothing else.
            fin = c.fin_seq_received is not None and (c.fin_seq_received + 1) & MASK == c.rcv_nxt
            if seq_diff(c.rcv_nxt, (c.irs + 1) & MASK) != self.data_events + fin:
                self.fail(
                    f"RCV.NXT {c.rcv_nxt} is not IRS+1 + {self.data_events} bytes "
                    f"reported{' + FIN' if fin else ''}"
                )
        if self.data_events != self.read_total + c.readable:
            self.fail(
                f"DataReceived says {self.data_events} bytes, "
                f"{self.read_total} read + {c.readable} held"
            )
        # Once the handshake is over (a SYN's window is unscaled, at most 65535, and
        # may show less than a scaled ACK before it did). Less than one unit (2**S)
        # back is a rounding RFC 7323 Appendix F tells senders to accept.
        if st.synchronized and not c._awaiting_syn_ack():
            if (
                self.max_rcv_adv is not None
                and seq_diff(self.max_rcv_adv, c.rcv_adv) >= 1 << c.rcv_wscale
            ):
                self.fail(
                    f"the advertised right edge moved left: {self.max_rcv_adv} -> "
                    f"{c.rcv_adv} (RFC 9293 §3.8.6.2.2)"
                )
            if self.max_rcv_adv is None or seq_gt(c.rcv_adv, self.max_rcv_adv):
                self.max_rcv_adv = c.rcv_adv
        if c.cc.cwnd <= 0 or c.cc.ssthresh <= 0:
            self.fail(f"cwnd {c.cc.cwnd}, ssthresh {c.cc.ssthresh}")
        for t, w in c.timers.items():
            if not math.isfinite(w) or w < self.now - 1e-9:
                self.fail(f"timer {t} at {w}, now {self.now}")
