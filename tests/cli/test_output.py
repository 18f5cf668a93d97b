"""Standard output a command cannot write to: its reader gone (`| head`), a full
device, closed. The command goes on to its own exit status, with no traceback; a
failure other than a reader gone is one line on stderr. (A docs-only trial found
`netemu validate DIR | head -1` ending in a BrokenPipeError traceback and exit 1.)"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
# (buffered, as a user's shell has it: PYTHONUNBUFFERED would hide a failing flush)
ENV = {k: v for k, v in os.environ.items() if k != "PYTHONUNBUFFERED"} | {"PYTHONPATH": str(ROOT)}


def test_validate_into_head_keeps_its_status_and_prints_no_traceback(tmp_path: Path) -> None:
    for i in range(40):
        (tmp_path / f"s{i:02d}.yaml").write_text(
            f"name: s{i}\npeer: kernel\nsteps:\n  - peer: {{listen: 8080}}\n  - connect: 8080\n"
        )
    # `true` reads nothing and is gone before the first line is written
    cmd = f"{sys.executable} -m netemu validate {tmp_path} | true; exit ${{PIPESTATUS[0]}}"
    out = subprocess.run(["bash", "-c", cmd], capture_output=True, text=True, env=ENV, timeout=60)
    assert out.returncode == 0, out.stderr
    assert "Traceback" not in out.stderr and "BrokenPipe" not in out.stderr, out.stderr
    assert out.stderr == ""  # a reader gone is normal: nothing to say
    (tmp_path / "s39.yaml").write_text("name: [\n")  # a bad file: still 2 through the pipe
    out = subprocess.run(["bash", "-c", cmd], capture_output=True, text=True, env=ENV, timeout=60)
    assert out.returncode == 2 and "Traceback" not in out.stderr, out.stderr


def test_a_full_or_closed_stdout_is_one_line_not_a_traceback(tmp_path: Path) -> None:
    good = tmp_path / "s.yaml"
    good.write_text("name: s\npeer: kernel\nsteps:\n  - peer: {listen: 8080}\n  - connect: 8080\n")
    for redirect in ("> /dev/full", ">&-"):
        cmd = f"{sys.executable} -m netemu validate {good} {redirect}"
        out = subprocess.run(
            ["bash", "-c", cmd], capture_output=True, text=True, env=ENV, timeout=60
        )
        assert out.returncode == 0, out.stderr
        lines = out.stderr.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith(
            "netemu: cannot write to standard output: "
        ), out.stderr
