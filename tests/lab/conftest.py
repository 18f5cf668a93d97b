"""Fixtures for the lab tests: a fresh lab per test (they take ~10 ms), an agent in it."""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator

import pytest

sys.path.insert(0, os.path.dirname(__file__))  # lab_helpers


@pytest.fixture
def lab() -> Iterator[object]:
    from netemu.lab import Lab

    with Lab() as lab:
        yield lab


@pytest.fixture
def agent(lab: object) -> object:
    return lab.start_agent()  # type: ignore[attr-defined]
