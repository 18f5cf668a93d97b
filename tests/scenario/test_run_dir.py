"""Run directories: each run its own, made when chosen (issue 17, 6)."""

from __future__ import annotations

from pathlib import Path

from netemu.run.rundir import default_run_dir


def test_two_runs_in_one_second_get_two_directories(tmp_path: Path):
    a = default_run_dir("same", tmp_path)
    b = default_run_dir("same", tmp_path)
    assert a != b and a.is_dir() and b.is_dir()  # made at once, not at the run's end
    if b.name.startswith(a.name):  # (the same second: the second one is numbered)
        assert b.name == a.name + "-2"
