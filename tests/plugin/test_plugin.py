"""netemu's pytest plugin (netemu/pytest_plugin.py, docs/pytest.md): what it collects
and when, a failed item's report in netemu's words, a load error as a one-line
collection error, the skip off root and the failure under CI, and items under xdist."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest
from plugin_helpers import FAILING, PLUGIN, ROOT, netemu_files, not_root

# Imported once here: pytester's in-process runs drop the modules a run imported (about
# a second of loaders and run layer each time).
import netemu.pkt.session
import netemu.scenario.loader
import netemu.scenario.session


def _ids(result: pytest.RunResult) -> list[str]:
    return sorted(line for line in result.outlines if "::" in line)


# --- collection: only where asked ------------------------------------------------------------


def test_a_given_directory_collects_its_scenarios_and_scripts(run, pytester: pytest.Pytester):
    netemu_files(pytester.path / "net")
    result = run("--collect-only", "-q", "net")
    # one item per file, named by it; the CI config and the compose file are no scenarios
    assert _ids(result) == [
        "net/handshake.yaml::handshake.yaml",
        "net/passive_handshake.pkt::passive_handshake.pkt",
    ]
    assert run("--collect-only", "-q", "net/handshake.yaml").outlines[0] == (
        "net/handshake.yaml::handshake.yaml"
    )


def test_testpaths_collect_nothing_unless_under_netemu_paths(run, pytester: pytest.Pytester):
    netemu_files(pytester.path / "net")
    pytester.makepyfile(test_x="def test_x():\n    pass\n")
    pytester.makeini("[pytest]\ntestpaths = net test_x.py\n")
    assert _ids(run("--collect-only", "-q")) == ["test_x.py::test_x"]
    pytester.makeini("[pytest]\ntestpaths = net test_x.py\nnetemu_paths = net\n")
    assert _ids(run("--collect-only", "-q")) == [
        "net/handshake.yaml::handshake.yaml",
        "net/passive_handshake.pkt::passive_handshake.pkt",
        "test_x.py::test_x",
    ]


def test_ignored_files_are_not_collected(run, pytester: pytest.Pytester):
    netemu_files(pytester.path / "net")
    netemu_files(pytester.path / "net" / "sub")
    assert len(_ids(run("--collect-only", "-q", "net"))) == 4
    ids = _ids(run("--collect-only", "-q", "net", "--ignore=net/sub"))
    assert ids == [
        "net/handshake.yaml::handshake.yaml",
        "net/passive_handshake.pkt::passive_handshake.pkt",
    ]
    (pytester.path / "net" / "conftest.py").write_text('collect_ignore = ["handshake.yaml"]\n')
    assert "net/handshake.yaml::handshake.yaml" not in _ids(run("--collect-only", "-q", "net"))


def test_k_and_markers_select(run, pytester: pytest.Pytester):
    netemu_files(pytester.path / "net")
    assert _ids(run("--collect-only", "-q", "net", "-k", "pkt")) == [
        "net/passive_handshake.pkt::passive_handshake.pkt"
    ]
    assert len(_ids(run("--collect-only", "-q", "net", "-m", "netemu and root"))) == 2
    assert _ids(run("--collect-only", "-q", "net", "-m", "not root")) == []


def test_this_projects_fixtures_are_not_collected():
    # `pytest tests/` would otherwise run the malformed scenarios and scripts as items
    args = ["--collect-only", "-q", "tests/scenario", "tests/corpus"]
    out = subprocess.run(
        [sys.executable, "-m", "pytest", *PLUGIN, "-p", "no:cacheprovider", *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert out.returncode == 0, out.stdout[-2000:]
    assert not re.search(r"\.(ya?ml|pkt)::", out.stdout), out.stdout


def test_importing_the_plugin_imports_nothing_heavy():
    code = (
        "import sys, pytest; before = set(sys.modules); import netemu.pytest_plugin; "
        "print(' '.join(sorted(set(sys.modules) - before)))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True
    )
    new = out.stdout.split()
    assert [m for m in new if m.startswith("netemu")] == ["netemu", "netemu.pytest_plugin"]
    heavy = ("pydantic", "yaml", "scapy", "rich", "asyncio")
    assert not [m for m in new if m.split(".")[0] in heavy], new


# --- bad input, environment -----------------------------------------------------------------


def test_a_load_error_is_a_one_line_collection_error(run, pytester: pytest.Pytester):
    pytester.path.joinpath("broken.yaml").write_text("name: x\nsteps:\n  - conect: 80\n")
    result = run("broken.yaml")
    assert result.ret == pytest.ExitCode.INTERRUPTED
    result.stdout.fnmatch_lines(
        [
            "*ERROR collecting broken.yaml*",
            "broken.yaml:3:5: unknown step 'conect' (did you mean 'connect'?)",
        ]
    )
    assert "Traceback" not in result.stdout.str()
    pytester.path.joinpath("broken.pkt").write_text(
        "0 socket(..., SOCK_STREAM, IPPROTO_TCP) = 3\n+0 > Q 0:0(0) ack 1\n"
    )
    result = run("broken.pkt")
    result.stdout.fnmatch_lines(["broken.pkt:2:6: unknown TCP flag 'Q' in 'Q'*"])
    assert "Traceback" not in result.stdout.str()


def test_off_root_an_item_is_skipped_with_the_reason(run, pytester, monkeypatch):
    netemu_files(pytester.path / "net")
    not_root(monkeypatch)
    monkeypatch.delenv("CI", raising=False)
    result = run("-rs", "net")
    result.assert_outcomes(skipped=2)
    result.stdout.fnmatch_lines(["SKIPPED * needs root to create network namespaces*"])


def test_under_ci_an_environment_problem_fails(run, pytester, monkeypatch):
    netemu_files(pytester.path / "net")
    not_root(monkeypatch)
    monkeypatch.setenv("CI", "true")
    result = run("net/handshake.yaml")
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(["*needs root*CI is set, so this is a failure, not a skip*"])


def test_an_environment_problem_of_the_run_is_a_skip(run, pytester, monkeypatch):
    # what the run itself finds (Go missing, a lab the kernel refuses): as off root
    from netemu.run.result import EnvironmentProblem

    async def refused(*args, **kw):
        raise EnvironmentProblem("needs Go (golang-go)")

    monkeypatch.setattr(netemu.scenario.session, "run_scenario", refused)
    monkeypatch.delenv("CI", raising=False)
    netemu_files(pytester.path / "net")
    result = run("-rs", "net/handshake.yaml", "--netemu-output", "out")
    result.assert_outcomes(skipped=1)
    result.stdout.fnmatch_lines(["SKIPPED * handshake: needs Go (golang-go)"])
    assert list((pytester.path / "out").iterdir()) == []  # its empty run directory removed
    monkeypatch.setenv("CI", "1")
    run("net/handshake.yaml").assert_outcomes(failed=1)


# --- runs ---------------------------------------------------------------------------------


@pytest.mark.root
def test_a_failed_scenario_is_reported_in_netemus_words(run, pytester: pytest.Pytester):
    pytester.path.joinpath("no_rst.yaml").write_text(FAILING)
    result = run("no_rst.yaml")
    result.assert_outcomes(failed=1)
    text = result.stdout.str()
    # the failed step at file:line with its message, the ladder around it, the run dir
    assert re.search(r"^no_rst\.yaml:7: step 4 expect_segment: no segment matched", text, re.M)
    assert "ladder (ladder.txt, around the failure):" in text
    assert "✗ FAIL: step 4 failed" in text
    assert "step 3: expect_segment" in text  # lines before the failure too
    assert "Traceback" not in text
    found = re.search(r"^run directory: (.+)$", text, re.M)
    assert found
    run_dir = Path(found.group(1))
    assert (run_dir / "ladder.txt").exists() and (run_dir / "report.json").exists()
    result.stdout.fnmatch_lines(["FAILED no_rst.yaml::no_rst.yaml - no_rst.yaml:7: step 4*"])


@pytest.mark.root
@pytest.mark.timing  # held to packetdrill's tolerance: run alone, as tests/pkt's runs
def test_a_pkt_script_runs_with_its_own_options(run, pytester: pytest.Pytester):
    netemu_files(pytester.path / "net")
    result = run("-v", "net/passive_handshake.pkt")
    result.assert_outcomes(passed=1)


@pytest.mark.root
def test_items_run_under_xdist(run, pytester: pytest.Pytester):
    # two scenarios, each in its own lab, on two workers (scenarios: a .pkt is held to
    # packetdrill's 4 ms, which a loaded machine may miss)
    d = pytester.path / "two"
    d.mkdir()
    text = (ROOT / "scenarios" / "handshake.yaml").read_text()
    (d / "handshake.yaml").write_text(text)
    (d / "handshake2.yaml").write_text(text.replace("handshake", "handshake2"))
    result = run("-n", "2", "two", "--netemu-output", "out", "--junitxml", "j.xml")
    result.assert_outcomes(passed=2)
    result.stdout.fnmatch_lines(["*2 workers*"])
    assert len(list((pytester.path / "out").iterdir())) == 2  # a run directory each
    junit = (pytester.path / "j.xml").read_text()
    assert junit.count("<testcase ") == 2 and 'name="handshake2.yaml"' in junit
