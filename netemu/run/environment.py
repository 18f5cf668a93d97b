"""Whether a lab can be made here at all: the check every kind of run makes before
its first lab (``netemu run`` exits 3 on it; the pytest plugin skips, or fails under
CI). Standard library only, so a caller that has not run anything pays nothing."""

from __future__ import annotations

import os
import shutil

TOOLS = ("ip", "ethtool")  # iproute2 and ethtool: the lab's set-up


def lab_problem() -> str | None:
    """Why no lab can be made here (not root, a tool missing), or None."""
    if os.geteuid() != 0:
        return "needs root to create network namespaces"
    missing = [t for t in TOOLS if shutil.which(t) is None]
    if missing:
        return f"missing tools: {', '.join(missing)}"
    return None
