"""Loss recovery of a sender."""

from __future__ import annotations

import enum


class RecoveryMode(enum.Enum):
    """Which loss recovery is in progress (Connection.recovery; None: none)."""

    NEWRENO = "newreno"  # RFC 6582
    SACK = "sack"  # RFC 6675
