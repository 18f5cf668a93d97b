"""Shared test policy: tests that need root or Go skip on a laptop, never in CI.

Mark them ``@pytest.mark.root`` / ``@pytest.mark.go``. When ``CI`` is set, a
missing prerequisite is a failure, not a skip.
"""

from __future__ import annotations

import os
import shutil

import pytest

IN_CI = os.environ.get("CI", "").lower() not in ("", "0", "false", "no")


def _missing(item: pytest.Item) -> str | None:
    if item.get_closest_marker("root") and os.geteuid() != 0:
        return "needs root (network namespaces)"
    if item.get_closest_marker("go") and shutil.which("go") is None:
        return "needs Go (Debian's golang-go)"
    return None


def pytest_runtest_setup(item: pytest.Item) -> None:
    why = _missing(item)
    if why is None:
        return
    if IN_CI:
        pytest.fail(f"{why}: CI=true, so this is a failure, not a skip", pytrace=False)
    pytest.skip(why)
