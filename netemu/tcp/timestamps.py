"""TCP timestamps of one connection (RFC 7323): our TSval clock, TS.Recent and
its one update rule, PAWS, and the RTT sample an echoed TSval gives.

Both the header-prediction fast path and the general arrival path of the
connection call the same methods here, so each rule exists once.

Layer rule: imports only netemu.wire and rtt (the estimator it feeds).
"""

from __future__ import annotations

from ..wire.seq import MASK
from ..wire.tcp import NOP, NopOption, TimestampOption
from .rtt import RttEstimator

# RFC 7323 §5.4: a timestamp clock of 1 ms per tick (as Linux).
TS_HZ = 1000
TS_OPTION_LEN = 12  # NOP, NOP, kind 8 length 10: the room timestamps take in a segment
# RFC 7323 §5.5: "If a connection remains idle for more than 2**31 ticks ... the
# TS.Recent value is invalid"; with 1 ms ticks, 24 days.
PAWS_IDLE = 24 * 24 * 3600.0

TsOptions = tuple[NopOption, NopOption, TimestampOption]


class Timestamps:
    """RFC 7323 §3-5 state: whether we offer TSopt, TS.Recent, our clock's offset.
    (Whether both sides agreed is the connection's ``ts_ok``, with its other
    negotiated options.)"""

    __slots__ = (
        "cached",
        "cached_at",
        "offered",
        "offset",
        "recent",
        "recent_stamp",
        "recent_valid",
    )

    def __init__(self, offered: bool) -> None:
        self.offered = offered  # we put TSopt on our SYN
        self.recent = 0  # TS.Recent
        self.recent_valid = False
        self.recent_stamp = 0.0  # when TS.Recent was last set (RFC 7323 §5.5)
        self.offset = 0  # added to our clock (RFC 7323 §5.4, random per connection)
        # The latest options() and the `now` it was made for: while both that and
        # TS.Recent are unchanged, a data segment reuses it without a call.
        self.cached: TsOptions = (NOP, NOP, TimestampOption(-1, -1))
        self.cached_at = -1.0

    def tsval(self, now: float) -> int:
        """Our timestamp clock (RFC 7323 §5.4): milliseconds of ``now`` plus the
        connection's offset."""
        return (int(now * TS_HZ + 1e-6) + self.offset) & MASK

    def options(self, now: float) -> TsOptions:
        """NOP, NOP, TSopt <TSval = our clock, TSecr = TS.Recent> (RFC 7323 §3.2,
        laid out as Linux does, 12 bytes); the same tuple while neither changes."""
        cache = self.cached
        self.cached_at = now
        ts = cache[2]
        tsval = (int(now * TS_HZ + 1e-6) + self.offset) & MASK
        if ts.tsval != tsval or ts.tsecr != self.recent:
            cache = self.cached = (NOP, NOP, TimestampOption(tsval, self.recent))
        return cache

    def syn_option(self, now: float, ack: bool) -> TimestampOption:
        """RFC 7323 §3.2: on a <SYN>, TSecr is zero; on a <SYN,ACK>, it echoes the
        TSval of the SYN."""
        return TimestampOption(self.tsval(now), self.recent if ack else 0)

    def negotiate(self, ts: TimestampOption | None, now: float) -> bool:
        """The peer's SYN (or SYN,ACK) arrived. RFC 7323 §3.2: timestamps are on
        when both SYNs carry TSopt; "A TCP MAY send the TSopt in a <SYN,ACK>
        segment only if it received a TSopt in the initial <SYN> segment".
        TS.Recent starts at the peer's TSval. Returns whether they are on."""
        if ts is not None and self.offered:
            self.recent = ts.tsval
            self.recent_stamp = now
            self.recent_valid = True
            return True
        self.offered = False
        return False

    def is_old(self, tsval: int) -> bool:
        """SEG.TSval < TS.Recent while TS.Recent is valid (PAWS, RFC 7323 §5.3 R1)."""
        return self.recent_valid and (tsval - self.recent) & MASK >= 0x80000000

    def paws_rejects(self, tsval: int, now: float) -> bool:
        """RFC 7323 §5.3, PAWS: "R1) If there is a Timestamps option in the
        arriving segment, SEG.TSval < TS.Recent, TS.Recent is valid (see later
        discussion), and the RST bit is not set, then treat the arriving segment
        as not acceptable". (The caller checks the RST bit.)"""
        if not self.is_old(tsval):
            return False
        if now - self.recent_stamp > PAWS_IDLE:
            # §5.5: after 24 days of idleness TS.Recent is invalid.
            self.recent_valid = False
            return False
        return True

    def on_arrival(
        self, tsval: int, seq: int, seg_len: int, last_ack_sent: int, now: float
    ) -> bool:
        """An acceptable segment of ``seg_len`` from ``seq``, with this TSval
        (SEG.LEN counts SYN and FIN). Returns False, and
        changes nothing, if the TSval is old (for the fast path: the general one
        applies PAWS, paws_rejects, before it calls this). RFC 7323
        §4.3: "(2) If: SEG.TSval >= TS.Recent and SEG.SEQ <= Last.ACK.sent then
        SEG.TSval is copied to TS.Recent; otherwise, it is ignored." (PAWS has
        checked the first condition.) Linux checks sequence numbers from RCV.WUP
        (Last.ACK.sent), not RCV.NXT (tcp_sequence), so the rule holds for any
        segment reaching Last.ACK.sent (every acceptable one that starts at or
        below it), a retransmission of what our lost ACK covered too: the ACK we
        send back echoes it, and the sender's RTT sample is one round trip, not
        the time since the original went out."""
        recent_valid = self.recent_valid
        if recent_valid and (tsval - self.recent) & MASK >= 0x80000000:  # is_old, inlined
            return False
        # seq_le(seq, last_ack_sent) and seq_ge(seq + seg_len, last_ack_sent), inlined
        if seq == last_ack_sent or (
            (last_ack_sent - seq) & MASK <= 0x80000000
            and (seq + seg_len - last_ack_sent) & MASK <= 0x80000000
        ):
            self.recent = tsval
            self.recent_stamp = now
            if not recent_valid:
                self.recent_valid = True
        return True

    def rtt_sample(self, tsecr: int, now: float, flight: int, smss: int, rtt: RttEstimator) -> None:
        """RFC 7323 §4.1 (RTTM): "RTT = current time - SEG.TSecr", for an ACK of
        new data; RFC 6298 then takes the sample (Appendix G weights it)."""
        elapsed = (self.tsval(now) - tsecr) & MASK
        if elapsed >= 0x7FFFFFFF:
            return  # an echo from the future: not ours
        expected = -(-flight // (2 * smss)) if flight > 2 * smss else 1
        rtt.sample(elapsed / TS_HZ, expected)
