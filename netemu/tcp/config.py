"""Every knob of the endpoint in one object, with Linux-like defaults."""

from __future__ import annotations

from dataclasses import dataclass, fields, replace
from typing import Literal

# RFC 1122 §4.2.3.2: "the delay MUST be less than 0.5 seconds".
MAX_DELAYED_ACK = 0.5
DEFAULT_DELAYED_ACK = 0.04  # Linux's TCP_DELACK_MIN (40 ms)

CongestionAlgorithm = Literal["newreno", "cubic"]

# Linux >= 6.7 built with TCP-MD5 (CONFIG_TCP_MD5SIG, as the lab's kernel and the
# distributions' are) walks a segment's options for a signature before any socket sees
# it, while at least TCPOLEN_MD5SIG (18) option bytes are left; an option of bad length
# met on that walk drops the segment unread (tcp_inbound_hash: TCP_AUTH_HDR). Built with
# TCP-AO (CONFIG_TCP_AO) the walk goes on while 5 bytes are left.
AUTH_OPTION_WALK = 18


@dataclass(slots=True)
class TcpConfig:
    """Options of one connection. Defaults follow Linux (6.x) where Linux has one.

    Times are in seconds, sizes in bytes. Every mechanism can be turned off.
    """

    mss: int = 1460  # our MSS, sent on SYN (RFC 6691: excludes IP and TCP options)
    default_peer_mss: int = 536  # assumed when the peer's SYN has no MSS (RFC 9293 §3.7.1)
    rcv_buf: int = 131072  # receive buffer: the most we advertise (tcp_rmem default)
    snd_buf: int = 16384 * 64  # send buffer: what send() accepts before it says "full"
    window_scale: int | None = 7  # our shift, offered on SYN; None: do not offer (RFC 7323)
    timestamps: bool = True  # RFC 7323 TSopt offered on SYN (net.ipv4.tcp_timestamps)
    ts_offset: int | None = None  # added to our TS clock; None: a keyed hash of the 4-tuple
    sack: bool = True  # RFC 2018 SACK-permitted offered on SYN (net.ipv4.tcp_sack)
    tail_loss_probe: bool = True  # RFC 8985 §7 probe of a lost tail, with SACK only (as Linux)
    rto_initial: float = 1.0  # RFC 6298 §2.1
    rto_min: float = 0.2  # Linux TCP_RTO_MIN: the RTO is at least SRTT + rto_min, as in Linux
    rto_max: float = 120.0  # Linux TCP_RTO_MAX
    syn_retries: int = 6  # net.ipv4.tcp_syn_retries
    synack_retries: int = 5  # net.ipv4.tcp_synack_retries
    retries2: int = 15  # net.ipv4.tcp_retries2: data retransmissions before timing out
    msl: float = 30.0  # TIME-WAIT lasts 2·MSL (Linux: 60 s TIME-WAIT)
    fin_timeout: float = 60.0  # net.ipv4.tcp_fin_timeout: FIN-WAIT-2 after close()
    nagle: bool = True  # RFC 896; False is TCP_NODELAY
    # Delayed ACK, RFC 1122 §4.2.3.2: True is 40 ms as Linux; a time caps at 0.5 s.
    delayed_ack: bool | float = DEFAULT_DELAYED_ACK  # longest wait of an ACK; false: never wait
    quickack_segments: int = 16  # segments ACKed at once when data starts (Linux TCP_MAX_QUICKACKS)
    keepalive: bool = False  # RFC 1122 §4.2.3.6, off by default (SO_KEEPALIVE)
    keepalive_idle: float = 7200.0  # net.ipv4.tcp_keepalive_time
    keepalive_interval: float = 75.0  # net.ipv4.tcp_keepalive_intvl
    keepalive_count: int = 9  # net.ipv4.tcp_keepalive_probes
    congestion_control: CongestionAlgorithm = "cubic"  # RFC 9438 (Linux default) or RFC 5681/6582
    initial_cwnd_segments: int = 10  # RFC 6928 (Linux IW10)
    slow_start_after_idle: bool = True  # RFC 5681 §4.1 (net.ipv4.tcp_slow_start_after_idle)
    dupack_threshold: int = 3  # RFC 5681 §3.2, RFC 6675 DupThresh
    limited_transmit: bool = True  # RFC 3042: new data on the first duplicate ACKs
    challenge_ack_limit: int = 1000  # RFC 5961 §7 (net.ipv4.tcp_challenge_ack_limit)
    max_ooo_bytes: int | None = None  # out-of-order queue cap; None: the receive buffer
    # A segment whose option list stops at an option of bad length (wire.MalformedOption)
    # is processed with the options before it, as Linux's tcp_parse_options does, unless
    # that option starts at least this many bytes before the end of the option area:
    # Linux >= 6.7 drops such a segment unread (see AUTH_OPTION_WALK; 5 for a kernel with
    # TCP-AO). None: never dropped (Linux before 6.7, or built without TCP-MD5 and TCP-AO).
    auth_option_walk: int | None = AUTH_OPTION_WALK

    def with_changes(self, **changes: object) -> TcpConfig:
        names = {f.name for f in fields(self)}
        unknown = set(changes) - names
        if unknown:
            raise TypeError(f"unknown TCP option(s): {', '.join(sorted(unknown))}")
        return replace(self, **changes)  # type: ignore[arg-type]

    @property
    def delayed_ack_time(self) -> float:
        """The delayed-ACK timeout in seconds; 0 when delayed ACK is off."""
        d = self.delayed_ack
        if d is True:
            return DEFAULT_DELAYED_ACK
        if d is False or d <= 0:
            return 0.0
        return min(float(d), MAX_DELAYED_ACK)
