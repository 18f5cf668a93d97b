"""What the plugin's tests share: how to turn the plugin on as a user has it, and small
files to run (tests/plugin/conftest.py puts this folder on sys.path)."""

from __future__ import annotations

import shutil
from importlib.metadata import entry_points
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]

# Installed (make install): the pytest11 entry point loads it in every run, and `-p`
# with its module name would register it twice. A tree not installed since the plugin
# came (PYTHONPATH=$PWD): `-p netemu.pytest_plugin`.
INSTALLED = any(ep.value == "netemu.pytest_plugin" for ep in entry_points(group="pytest11"))
PLUGIN = [] if INSTALLED else ["-p", "netemu.pytest_plugin"]

# A scenario that fails at its 4th step (line 7): the kernel answers the SYN, no RST.
FAILING = """\
name: no_rst
peer: kernel
steps:
  - peer: {listen: 8080}
  - connect: 8080
  - expect_segment: {dir: out, flags: S, seq: 0, len: 0}
  - expect_segment: {dir: in, flags: RST, within: 200ms}
"""


def netemu_files(d: Path) -> None:
    """``d``: a scenario (handshake.yaml), a packetdrill script with its include
    (passive_handshake.pkt), and two YAML files that are no scenarios."""
    d.mkdir(parents=True, exist_ok=True)
    shutil.copy(ROOT / "scenarios" / "handshake.yaml", d / "handshake.yaml")
    scripts = ROOT / "tests" / "pkt" / "scripts"
    shutil.copy(scripts / "passive_handshake.pkt", d / "passive_handshake.pkt")
    (d / "common").mkdir(exist_ok=True)
    shutil.copy(scripts / "common" / "set_sysctls.sh", d / "common" / "set_sysctls.sh")
    (d / "docker-compose.yml").write_text("services:\n  web:\n    image: nginx\n")
    (d / "ci.yaml").write_text("on: push\njobs:\n  test:\n    runs-on: ubuntu-latest\n")


def not_root(monkeypatch) -> None:
    """As if pytest ran without root (netemu's environment check reads geteuid)."""
    import os

    monkeypatch.setattr(os, "geteuid", lambda: 1000)
