"""docs/python.md's example test, run as a user runs it (its code block, unchanged, in a
pytest of its own), and what the plugin's ``netemu_lab`` fixture and ``--netemu-shard``
do around Python tests: the report of a failed step, the skip off root, the failure
under CI, and shards that split a suite without overlap."""

from __future__ import annotations

import re

import pytest
from plugin_helpers import ROOT, not_root

DOC = ROOT / "docs" / "python.md"


def doc_example() -> str:
    """The first ```python block of docs/python.md."""
    found = re.search(r"^```python\n(.*?)^```", DOC.read_text(), re.S | re.M)
    assert found, "docs/python.md has no ```python block"
    return found.group(1)


def test_the_example_is_about_twenty_lines_and_a_test():
    code = doc_example()
    assert 15 <= len(code.splitlines()) <= 30
    assert "async def test_" in code and "netemu_lab" in code


@pytest.mark.root
def test_the_docs_example_passes(run, pytester: pytest.Pytester):
    pytester.makepyfile(test_doc=doc_example())
    result = run("-v", "test_doc.py", "--netemu-output", "out")
    result.assert_outcomes(passed=1)
    (run_dir,) = (pytester.path / "out").iterdir()
    assert {p.name for p in run_dir.iterdir()} >= {"trace.pcap", "ladder.txt", "report.json"}


@pytest.mark.root
def test_a_failed_step_is_reported_with_the_tests_line_and_the_ladder(run, pytester):
    code = doc_example().replace("expect_peer_state: CLOSE-WAIT", "expect_peer_state: LAST-ACK")
    assert "LAST-ACK" in code
    pytester.makepyfile(test_doc=code)
    result = run("test_doc.py", "--netemu-output", "out")
    result.assert_outcomes(failed=1)
    text = result.stdout.str()
    line = next(i for i, s in enumerate(code.splitlines(), 1) if "LAST-ACK" in s)
    # the step, at the test's own line, in netemu's words; then the lab's section
    assert re.search(
        rf"test_doc\.py:{line}: step 6 \(expect_peer_state .*LAST-ACK.*\) failed", text
    )
    assert "netemu lab" in text and "✗ FAIL: step 6 failed" in text
    assert re.search(r"^run directory: out/", text, re.M)


def test_off_root_the_fixture_skips_and_under_ci_fails(run, pytester, monkeypatch):
    pytester.makepyfile(test_doc=doc_example())
    not_root(monkeypatch)
    monkeypatch.delenv("CI", raising=False)
    result = run("-rs", "test_doc.py")
    result.assert_outcomes(skipped=1)
    result.stdout.fnmatch_lines(["SKIPPED * needs root to create network namespaces*"])
    monkeypatch.setenv("CI", "true")
    result = run("test_doc.py")
    result.assert_outcomes(errors=1)
    result.stdout.fnmatch_lines(["*needs root*CI is set, so this is a failure, not a skip*"])


def test_shards_split_a_suite_without_overlap(run, pytester: pytest.Pytester):
    pytester.makepyfile(test_many="\n".join(f"def test_{i}():\n    pass\n" for i in range(10)))
    seen: list[str] = []
    for i in (1, 2, 3):
        result = run("-v", "test_many.py", "--netemu-shard", f"{i}/3")
        ran = re.findall(r"::(test_\d+) PASSED", result.stdout.str())
        assert len(ran) in (3, 4), ran
        seen += ran
    assert sorted(seen) == sorted(f"test_{i}" for i in range(10))  # each once


@pytest.mark.parametrize("bad", ["0/3", "4/3", "2", "a/b"])
def test_a_bad_shard_is_a_usage_error(run, pytester: pytest.Pytester, bad: str):
    result = run("--netemu-shard", bad)
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["*--netemu-shard*expected I/N with 1 <= I <= N*"])
