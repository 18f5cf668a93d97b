"""The timers of one connection: which deadlines are armed, and the earliest.

As smoltcp's ``Timer``: each timer is armed and disarmed by name
(``arm``/``disarm``), the earliest deadline comes from one place
(``deadline``), and ``due`` lists what has expired in the order to run it. What
a timer does when it fires is the connection's: ``Connection`` maps each
``Timer`` member to its handler in one dispatch table.

Layer rule: imports nothing from the rest of netemu.tcp.
"""

from __future__ import annotations

import enum


class Timer(enum.StrEnum):
    """One deadline each; the connection reports the earliest via next_deadline().

    A StrEnum so that the table, touched on every segment, hashes in C (plain
    Enum members hash in Python)."""

    RETRANSMIT = "retransmit"  # RFC 6298 RTO (also SYN and SYN-ACK retries)
    LOSS_PROBE = "loss-probe"  # RFC 8985 §7 tail loss probe (with SACK)
    PERSIST = "persist"  # zero-window probes (RFC 9293 §3.8.6.1)
    DELAYED_ACK = "delayed-ack"  # RFC 1122 §4.2.3.2
    KEEPALIVE = "keepalive"  # RFC 1122 §4.2.3.6
    TIME_WAIT = "time-wait"  # 2·MSL (RFC 9293 §3.6.1)
    FIN_WAIT_2 = "fin-wait-2"  # Linux tcp_fin_timeout for orphaned connections


class TimerTable(dict[Timer, float]):
    """Armed timers and their deadlines (a timer not in the table is off).

    A dict underneath, so that reading a deadline (``table[t]``, ``t in table``)
    and ``arm`` cost no Python call on the per-segment path."""

    __slots__ = ()

    # Start (or restart) a timer to fire at the given time.
    arm = dict.__setitem__

    def disarm(self, timer: Timer) -> None:
        self.pop(timer, None)

    def deadline(self) -> float | None:
        """The earliest armed deadline, or None."""
        return min(self.values()) if self else None

    def due(self, now: float) -> list[tuple[Timer, float]]:
        """Timers expired at ``now``, by time; a loss probe due with the RTO goes
        first (RFC 8985 §7.2: it takes the RTO's place). The caller checks each is
        still armed for that time before running it: an earlier one may disarm it."""
        return [
            (t, when)
            for t, when in sorted(
                self.items(), key=lambda kv: (kv[1], kv[0] is not Timer.LOSS_PROBE)
            )
            if when <= now
        ]
