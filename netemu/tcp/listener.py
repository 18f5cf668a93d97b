"""A passive OPEN: the LISTEN state of RFC 9293 §3.10.7.2, creating connections."""

from __future__ import annotations

from ..wire.tcp import ACK, FIN, RST, SYN, TcpSegment
from .arrivals import dropped_unread
from .config import TcpConfig
from .connection import Connection, reset_for
from .isn import IsnGenerator


class Listener:
    """Answers segments for ``local_ip:local_port`` that match no connection."""

    def __init__(
        self,
        local_ip: str,
        local_port: int,
        config: TcpConfig | None = None,
        isn_generator: IsnGenerator | None = None,
    ) -> None:
        self.local_ip = local_ip
        self.local_port = local_port
        self.config = config or TcpConfig()
        self.isn_generator = isn_generator or IsnGenerator()

    def on_segment(
        self, seg: TcpSegment, remote_ip: str, now: float, config: TcpConfig | None = None
    ) -> Connection | TcpSegment | None:
        """A new connection in SYN-RECEIVED, a RST to send, or None (dropped).
        ``config``: the new connection's, instead of the listener's (a host's for the
        peer's address family: IPv6's MSS)."""
        # An option of bad length early enough in the option area: Linux >= 6.7 drops the
        # segment before its listener sees it (see dropped_unread); otherwise the
        # options before it count, as in tcp_parse_options.
        if dropped_unread(seg, self.config.auth_option_walk):
            return None
        # "First, check for a RST: An incoming RST should be ignored."
        if seg.flags & RST:
            return None
        # "Second, check for an ACK: Any acknowledgment is bad if it arrives on a
        # connection still in the LISTEN state. An acceptable reset segment should be
        # formed for any arriving ACK-bearing segment ... <SEQ=SEG.ACK><CTL=RST>"
        if seg.flags & ACK:
            return reset_for(seg, self.config.auth_option_walk)
        # "Third, check for a SYN". A SYN that also carries FIN opens nothing: RFC 9293
        # does not say, Linux drops it (tcp_rcv_state_process: "if (th->fin) goto
        # discard" in LISTEN), and so does netemu, as the peer it stands for would.
        if seg.flags & SYN and seg.flags & FIN:
            return None
        if seg.flags & SYN:
            conn = Connection(
                self.local_ip,
                self.local_port,
                remote_ip,
                seg.src_port,
                config or self.config,
                isn_generator=self.isn_generator,
            )
            conn.accept_syn(seg, now)
            return conn
        # "Fourth, other data or control: ... drop the segment and return."
        return None
