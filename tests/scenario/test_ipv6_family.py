"""`family: ipv4|ipv6` in the scenario format (top level and per connection, relay mode
too), its JSON Schema, and `netemu run --ipv6`'s refusals (IPv4-only .pkt scripts),
which come before any lab: no root needed. Relay runs over IPv6: tests/relay."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from netemu.scenario import ScenarioError
from netemu.scenario.commands import json_schema
from netemu.scenario.loader import load_scenario, load_scenario_text
from netemu.scenario.schema import IPV6_OVERRIDE_MTU

ROOT = Path(__file__).resolve().parents[2]

BASE = """
name: fam
peer: kernel
{extra}
steps:
  - connect: 8080
"""


def test_family_defaults_to_ipv4_and_a_connection_may_name_its_own() -> None:
    sc = load_scenario_text(BASE.format(extra=""))
    assert sc.family == "ipv4" and not sc.uses_ipv6() and sc.family_of(None) == "ipv4"
    sc = load_scenario_text(BASE.format(extra="family: ipv6"))
    assert sc.family == "ipv6" and sc.uses_ipv6() and sc.family_of("c") == "ipv6"
    sc = load_scenario_text(BASE.format(extra="connections: {c: {}, d: {family: ipv6}}"))
    assert sc.family == "ipv4" and sc.uses_ipv6()
    assert (sc.family_of("c"), sc.family_of("d")) == ("ipv4", "ipv6")
    sc = load_scenario_text(BASE.format(extra="family: ipv6\nconnections: {c: {family: ipv4}}"))
    assert sc.family_of("c") == "ipv4"


def test_a_bad_family_is_one_clear_error() -> None:
    with pytest.raises(ScenarioError) as info:
        load_scenario_text(BASE.format(extra="family: ipv5"))
    assert str(info.value) == "<string>:4:9: family: unknown family 'ipv5' (did you mean 'ipv6'?)"


def test_relay_mode_over_ipv6_loads() -> None:
    text = (ROOT / "scenarios" / "relay_lost_fin.yaml").read_text()
    sc = load_scenario_text(text.replace("mode: relay", "mode: relay\nfamily: ipv6"))
    assert (sc.mode, sc.family, sc.uses_ipv6(), sc._link_mtu) == ("relay", "ipv6", True, 1500)


def test_as_ipv6_widens_the_link_of_an_ipv4_scenario_only() -> None:
    v4 = load_scenario(ROOT / "scenarios" / "handshake.yaml")
    six = v4.as_ipv6()
    assert (six.family, six._link_mtu) == ("ipv6", IPV6_OVERRIDE_MTU)
    assert (v4.family, v4._link_mtu) == ("ipv4", 1500)  # the original is untouched
    native = load_scenario(ROOT / "scenarios" / "ipv6_handshake.yaml").as_ipv6()
    assert (native.family, native._link_mtu) == ("ipv6", 1500)  # written for MSS 1440
    # relay mode: both labs' links (the bridge joins them), so both kernels' MSS is 1460
    relay = load_scenario(ROOT / "scenarios" / "relay_lost_fin.yaml").as_ipv6()
    assert (relay.mode, relay.family, relay._link_mtu) == ("relay", "ipv6", IPV6_OVERRIDE_MTU)


def test_the_json_schema_has_family() -> None:
    schema = json_schema()
    assert schema["properties"]["family"]["enum"] == ["ipv4", "ipv6"]
    assert schema["properties"]["family"]["default"] == "ipv4"


def _run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "netemu", "run", *args],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=60,
    )


def test_run_ipv6_on_a_pkt_script_is_ip_version_ipv6(tmp_path: Path) -> None:
    """--ipv6 on a .pkt script is packetdrill's --ip_version=ipv6 with run_all.py's
    --mtu=1520 (checked by --dry_run, no lab); an IPv4-only name (``*v4.pkt``) and a
    --ip_version that says otherwise are refused in one line."""
    from netemu.cli import build_parser
    from netemu.cli.run import _pkt_ipv6_argv

    args = build_parser().parse_args(["run", "--ipv6", "x.pkt"])
    assert _pkt_ipv6_argv(Path("x.pkt"), args) == ["--ip_version=ipv6", "--mtu=1520"]
    args = build_parser().parse_args(["run", "--ipv6", "--mtu=1400", "x.pkt"])
    assert _pkt_ipv6_argv(Path("x.pkt"), args) == ["--ip_version=ipv6"]
    pkt = next((ROOT / "tests" / "pkt" / "scripts").glob("*.pkt"))
    run = _run("--ipv6", "--dry_run", "-o", str(tmp_path / "r"), str(pkt))
    assert run.returncode == 0 and "ok (--dry_run" in run.stdout, run.stdout + run.stderr
    v4 = tmp_path / "basic-v4.pkt"
    v4.write_text(pkt.read_text())
    run = _run("--ipv6", "-o", str(tmp_path / "r"), str(v4))
    assert run.returncode == 2, run.stdout + run.stderr
    assert "an IPv4-only script (its name ends in v4.pkt)" in run.stderr
    run = _run("--ipv6", "--ip_version=ipv4", "-o", str(tmp_path / "r"), str(pkt))
    assert run.returncode == 2 and "--ipv6 and --ip_version=ipv4 disagree" in run.stderr
    assert not (tmp_path / "r").exists()


def test_run_ipv6_on_a_directory_leaves_its_ipv4_only_scripts_out(tmp_path: Path) -> None:
    # `netemu run --ipv6 scenarios/` runs the scenarios there (relay ones too), each
    # *v4.pkt script left out with a note (named on its own, it is refused: above)
    d = tmp_path / "d"
    d.mkdir()
    (d / "x-v4.pkt").write_text("0 socket(..., SOCK_STREAM, IPPROTO_TCP) = 3\n")
    run = _run("--ipv6", "-o", str(tmp_path / "r"), str(d))
    assert "left out: " in run.stderr and "x-v4.pkt: --ipv6: an IPv4-only script" in run.stderr
    # every file left out: no pass from nothing
    assert run.returncode == 2, run.stdout + run.stderr
    assert "nothing to run: every file was left out" in run.stderr


def test_a_scapy_inject_on_an_ipv6_connection_loads(tmp_path: Path) -> None:
    # scapy's expression builds IPv6 too (IPv6(...)/TCP(...)): no load error; the layer
    # the expression builds is checked when the step runs (tests/scenario/test_scapy_inject.py)
    from netemu.scenario.loader import load_scenario_text

    text = (
        "name: s\nfamily: ipv6\npeer: kernel\nsteps:\n  - peer: {listen: 8080}\n"
        "  - connect: 8080\n  - inject: {scapy: \"IPv6(dst=peer_ip)/TCP(flags='R')\"}\n"
    )
    assert load_scenario_text(text, "s.yaml").family == "ipv6"
