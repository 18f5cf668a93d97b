"""The plugin's tests run pytest inside pytest (pytester, enabled in tests/conftest.py:
pytest takes pytest_plugins from the top-level conftest only), with netemu's plugin on
as a user has it."""

from __future__ import annotations

import os
import sys

import pytest

sys.path.insert(0, os.path.dirname(__file__))  # plugin_helpers

from plugin_helpers import PLUGIN


@pytest.fixture
def run(pytester: pytest.Pytester):
    """pytest in pytester's directory, the plugin on (no cache, no pytest-asyncio: the
    items need neither)."""

    def go(*args: str) -> pytest.RunResult:
        return pytester.runpytest(*PLUGIN, "-p", "no:cacheprovider", "-p", "no:asyncio", *args)

    return go
