"""Shared test policy: tests that need root or Go skip on a laptop, never in CI.

Mark them ``@pytest.mark.root`` / ``@pytest.mark.go`` / ``@pytest.mark.browser``. When ``CI`` is set, a
missing prerequisite is a failure, not a skip.
"""

from __future__ import annotations

import os
import shutil

import pytest

# pytester, for tests/plugin (netemu's pytest plugin run inside pytest): pytest takes
# pytest_plugins from the top-level conftest only.
pytest_plugins = ["pytester"]

IN_CI = os.environ.get("CI", "").lower() not in ("", "0", "false", "no")

# The test suite's fixtures, never netemu items of the pytest plugin (netemu/pytest_plugin.py
# collects the .yaml and .pkt files of a directory given on the command line, so
# `pytest tests/` would run them): malformed scenarios and scripts made to fail loading,
# and valid ones the format's tests read. tests/pkt/scripts is collected (its own
# conftest.py leaves out the two scripts that need a command line).
collect_ignore = [
    "corpus/pkt",
    "corpus/scenario",
    "corpus/valid",
    "scenario/malformed",
    "scenario/valid",
]

# pytest imports readline before any conftest (_pytest/capture.py), and GNU readline
# exports COLUMNS=80 and LINES=24 to every process started after it: the xdist
# workers, and each `netemu run` a test starts. The text ladder is as wide as COLUMNS
# (netemu/trace/ladder.py): the tests would see 80 columns where a run whose output is
# no terminal has 100. A test that means a width sets COLUMNS itself.
for _name in ("COLUMNS", "LINES"):
    os.environ.pop(_name, None)
    os.unsetenv(_name)


def _missing(item: pytest.Item) -> str | None:
    if item.get_closest_marker("root") and os.geteuid() != 0:
        return "needs root (network namespaces)"
    if item.get_closest_marker("go") and shutil.which("go") is None:
        return "needs Go (Debian's golang-go)"
    if item.get_closest_marker("browser") and not any(
        shutil.which(b) for b in ("chromium", "chromium-browser", "google-chrome")
    ):
        return "needs a headless browser (Debian's chromium)"
    return None


def pytest_runtest_setup(item: pytest.Item) -> None:
    why = _missing(item)
    if why is None:
        return
    if IN_CI:
        pytest.fail(f"{why}: CI=true, so this is a failure, not a skip", pytrace=False)
    pytest.skip(why)


@pytest.fixture
def tshark() -> str:
    """tshark's path (the pcap tests of tests/trace and tests/relay read with it)."""
    path = shutil.which("tshark")
    if path is None:
        if IN_CI:
            pytest.fail(
                "tshark is missing: CI=true, so this is a failure, not a skip", pytrace=False
            )
        pytest.skip("needs tshark (Debian's tshark)")
    return path
