"""What each command imports before it needs it (issue 21, fast start; the figures are
``netemu bench run``'s). Each check runs a fresh interpreter and names the modules
that leaked in."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def _fresh(code: str) -> set[str]:
    """The modules in sys.modules once ``code`` ran in a fresh interpreter."""
    script = textwrap.dedent(code) + "\nimport sys\nprint(' '.join(sys.modules))\n"
    out = subprocess.run(
        [sys.executable, "-c", script], cwd=ROOT, capture_output=True, text=True, timeout=60
    )
    assert out.returncode == 0, out.stderr
    return set(out.stdout.split())


def _leaked(modules: set[str], banned: tuple[str, ...]) -> list[str]:
    return sorted(m for m in modules if any(m == b or m.startswith(b + ".") for b in banned))


def test_tcp_names_are_all_there_and_lazy() -> None:
    import netemu.tcp

    assert set(netemu.tcp.__all__) == set(netemu.tcp._WHERE)
    for name in netemu.tcp.__all__:
        assert getattr(netemu.tcp, name).__name__ == name
    try:
        netemu.tcp.NoSuchName  # noqa: B018
    except AttributeError as e:
        assert "NoSuchName" in str(e)
    else:
        raise AssertionError("netemu.tcp.NoSuchName did not raise AttributeError")


def test_the_scenario_format_does_not_import_the_endpoint() -> None:
    """The format needs TcpConfig and State (standard library only), not the endpoint
    and the wire codec behind netemu.tcp's other names."""
    mods = _fresh("import netemu.scenario.schema, netemu.scenario.loader")
    leaked = _leaked(mods, ("netemu.wire", "netemu.tcp.connection", "netemu.tcp.listener"))
    assert not leaked, f"the scenario format imported: {leaked}"
    assert "netemu.tcp.config" in mods and "netemu.tcp.state" in mods
