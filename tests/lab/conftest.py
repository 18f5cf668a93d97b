"""Fixtures for the lab tests: a fresh lab per test (they take ~10 ms), an agent in it."""

from __future__ import annotations

import fcntl
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


@pytest.fixture
def clean_serial(tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    """Tests that call ``registry.clean()`` (which reaps *every* dead run) or inspect a
    dead run before cleaning it take turns, across pytest-xdist workers."""
    path = tmp_path_factory.getbasetemp().parent / "netemu-lab-clean.lock"
    with open(path, "w") as f:
        fcntl.flock(f, fcntl.LOCK_EX)
        yield
