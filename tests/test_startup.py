"""What each command imports before it needs it (issue 21, fast start; the figures are
``netemu bench run``'s). Each check runs a fresh interpreter and names the modules
that leaked in."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from netemu.bench.run import PKT

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


# Runs `netemu ARGS` as the command line does (stdout not a terminal), then prints
# sys.modules whatever the exit status.
_CLI = """
import sys
from netemu.cli import main
status = main({argv!r})
print("MODULES", " ".join(sys.modules))
"""


def _cli_modules(*argv: str, env: dict[str, str] | None = None) -> set[str]:
    out = subprocess.run(
        [sys.executable, "-c", _CLI.format(argv=list(argv))],
        cwd=ROOT,
        env=None if env is None else {**os.environ, **env},
        capture_output=True,
        text=True,
        timeout=120,
    )
    line = next((ln for ln in out.stdout.splitlines() if ln.startswith("MODULES ")), None)
    assert line is not None, out.stdout + out.stderr
    return set(line.split()[1:])


# Never needed before a command uses them: the terminal renderer (rich: only on a
# terminal), scapy (only for an inject step's expression), pyroute2 (tests only), and the
# package-metadata scan pydantic's plugin loader makes (YAML only).
_NEVER = ("rich", "scapy", "pyroute2")
_YAML = ("pydantic", "pydantic_core", "yaml", "netemu.scenario", "importlib.metadata")
_RUNNING = ("asyncio", "anyio", "netemu.lab", "netemu.host", "netemu.link", "netemu.impair")
_ENDPOINT = ("netemu.wire", "netemu.tcp.connection", "netemu.trace")


def test_validate_yaml_imports_only_the_format() -> None:
    mods = _cli_modules("validate", "scenarios/close_wait.yaml")
    leaked = _leaked(mods, _NEVER + _RUNNING + _ENDPOINT + ("netemu.pkt",))
    assert not leaked, f"netemu validate FILE.yaml imported: {leaked}"
    assert {"pydantic", "yaml", "netemu.scenario.schema"} <= mods


def test_validate_pkt_imports_no_yaml_format(tmp_path: Path) -> None:
    script = tmp_path / "trivial.pkt"
    script.write_text(PKT)
    mods = _cli_modules("validate", str(script))
    leaked = _leaked(mods, _NEVER + _YAML + _RUNNING)
    assert not leaked, f"netemu validate FILE.pkt imported: {leaked}"
    assert "netemu.pkt" in mods


@pytest.mark.root
def test_a_pkt_run_imports_no_yaml_format_rich_or_anyio(tmp_path: Path) -> None:
    """A trivial .pkt through `netemu run` (its fixed cost is bench run's pkt_run_ms):
    no pydantic, PyYAML or scenario format, no rich in a pipe, no anyio (no stream is
    opened), no impairment code. The same run as on a terminal (FORCE_COLOR, as rich
    decides) imports rich: the check sees what a run imports. Nor platform (the link's
    ring check reads os.uname()), hashlib (ISNs, Go builds: on first use), html (the
    ladder escapes its text itself) or the kernel trace reader: ~1 ms each."""
    script = tmp_path / "trivial.pkt"
    script.write_text(PKT)
    mods = _cli_modules("run", "-q", str(script), "-o", str(tmp_path / "run"))
    assert json.loads((tmp_path / "run" / "report.json").read_text())["result"] == "pass"
    unused = ("anyio", "netemu.impair", "platform", "hashlib", "html", "netemu.lab.ktrace")
    leaked = _leaked(mods, _NEVER + _YAML + unused)
    assert not leaked, f"netemu run FILE.pkt imported: {leaked}"
    assert {"asyncio", "netemu.pkt.session", "netemu.lab.core"} <= mods
    on_a_terminal = _cli_modules(
        "run", "-q", str(script), "-o", str(tmp_path / "run-tty"), env={"FORCE_COLOR": "1"}
    )
    assert "rich" in on_a_terminal


# The command line as a program, ended by console_main: a late exit handler (registered
# while main() runs) still runs, main()'s status is the process's, the output is whole,
# and the interpreter's teardown is skipped (an object's __del__ at module teardown
# says whether it ran).
_PROGRAM = """
import atexit, sys
from netemu import cli
class Teardown:
    def __del__(self):
        print("teardown ran", flush=True)
cli._witness = Teardown()
real = cli.main
def main(argv=None):
    atexit.register(lambda: print("late handler ran"))
    return real(argv)
cli.main = main
sys.argv = ["netemu", "validate", *{files!r}]
sys.exit(cli.console_main())
"""


def test_the_program_ends_without_the_interpreter_teardown(tmp_path: Path) -> None:
    """console_main: ``os._exit`` with main()'s status once every other exit handler ran
    (bench run's pkt_run_ms: ~6 ms of a trivial run), only when its own exit handler is
    the first one registered: nothing netemu.cli imports may register one first."""
    first = subprocess.run(
        [sys.executable, "-c", "import atexit, netemu.cli; print(atexit._ncallbacks())"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert first.stdout.strip() == "0", first.stdout + first.stderr
    good, bad = tmp_path / "good.pkt", tmp_path / "bad.pkt"
    good.write_text(PKT)
    bad.write_text("x\n")
    for files, status in (([good], 0), ([good, bad], 2)):
        out = subprocess.run(
            [sys.executable, "-c", _PROGRAM.format(files=[str(f) for f in files])],
            cwd=ROOT,
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert out.returncode == status, out.stderr
        assert out.stdout.splitlines() == [f"{good}: ok", "late handler ran"]
        assert ("bad.pkt:1:1:" in out.stderr) == (status == 2)
