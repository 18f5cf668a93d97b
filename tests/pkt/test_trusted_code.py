"""Code a file brings (issue 17, 8): a .pkt's shell commands and %{ }% snippets and a
scenario's command: peers run as root in the lab's peer namespace. `netemu validate`
and `netemu run` say so in one line on stderr before anything runs; the exit codes are
what they were (a notice, not an error). Where the code runs is tested in test_live.py
(shell commands) and test_conformance.py (snippets)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from netemu.cli.files import run_notices, validate_main

ROOT = Path(__file__).resolve().parents[2]
WHERE = "as root in the lab's peer namespace (trusted code)"

# three shell commands (init, event, cleanup) and two snippets, and it passes
CODE_PKT = """\
`true`
    0 socket(..., SOCK_STREAM, IPPROTO_TCP) = 3
   +0 `echo hi > /dev/null`
   +0 %{ assert 1 + 1 == 2 }%
   +0 %{ x = 1 }%
   +0 close(3) = 0
`true`
"""
PLAIN_PKT = """\
    0 socket(..., SOCK_STREAM, IPPROTO_TCP) = 3
   +0 close(3) = 0
"""
CMD_YAML = """\
name: cmdpeer
peers:
  p: {kind: command, command: [sleep, "5"]}
steps:
  - sleep: 10ms
"""
PLAIN_YAML = """\
name: plain
peer: kernel
steps:
  - sleep: 10ms
"""


def netemu(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "netemu", *args], capture_output=True, text=True, cwd=cwd, timeout=60
    )


def files(tmp_path: Path) -> dict[str, Path]:
    out = {}
    for name, text in (
        ("code.pkt", CODE_PKT),
        ("plain.pkt", PLAIN_PKT),
        ("cmd.yaml", CMD_YAML),
        ("plain.yaml", PLAIN_YAML),
    ):
        out[name] = tmp_path / name
        out[name].write_text(text)
    return out


def test_validate_notes_a_pkt_that_runs_shell_and_python(tmp_path: Path):
    files(tmp_path)
    out = netemu("validate", "code.pkt", "plain.pkt", cwd=tmp_path)
    assert out.returncode == 0, out.stdout + out.stderr
    assert out.stdout.splitlines() == ["code.pkt: ok", "plain.pkt: ok"]
    assert out.stderr.splitlines() == [
        f"notice: code.pkt runs 3 shell commands and 2 Python snippets {WHERE}"
    ]


def test_validate_notes_a_scenarios_command_peers(tmp_path: Path):
    files(tmp_path)
    out = netemu("validate", "cmd.yaml", "plain.yaml", cwd=tmp_path)
    assert out.returncode == 0, out.stdout + out.stderr
    assert out.stdout.splitlines() == ["cmd.yaml: ok", "plain.yaml: ok"]
    assert out.stderr.splitlines() == [f"notice: cmd.yaml runs 1 command peer (sleep) {WHERE}"]


def test_an_invalid_file_gets_its_errors_and_no_notice(tmp_path: Path):
    (tmp_path / "bad.pkt").write_text(CODE_PKT.replace("close(3) = 0", "close(3) = zero"))
    (tmp_path / "bad.yaml").write_text(CMD_YAML.replace("sleep: 10ms", "sleep: soon"))
    out = netemu("validate", "bad.pkt", "bad.yaml", cwd=tmp_path)
    assert out.returncode == 2, out.stdout + out.stderr
    assert out.stderr.startswith("bad.pkt:6:"), out.stderr
    assert "notice" not in out.stderr, out.stderr


def test_the_notice_counts_init_scripts_and_cleanup_and_a_define(tmp_path: Path):
    # --init_scripts (from the command line or the script's own line) and the cleanup
    # command run too; a -D value may hold a command, and the notice still finds it
    (tmp_path / "i.pkt").write_text("--init_scripts=a.sh,b.sh\n" + CODE_PKT)
    assert run_notices([tmp_path / "i.pkt"]) == [
        f"notice: {tmp_path / 'i.pkt'} runs 5 shell commands and 2 Python snippets {WHERE}"
    ]
    assert run_notices([tmp_path / "i.pkt"], ["--init_scripts=c.sh"]) == [
        f"notice: {tmp_path / 'i.pkt'} runs 4 shell commands and 2 Python snippets {WHERE}"
    ]
    (tmp_path / "d.pkt").write_text("CMD\n" + PLAIN_PKT)
    assert run_notices([tmp_path / "d.pkt"], ["-D", "CMD=`true`"]) == [
        f"notice: {tmp_path / 'd.pkt'} runs 1 shell command {WHERE}"
    ]
    # --dry_run: nothing runs, nothing to say
    assert run_notices([tmp_path / "i.pkt"], ["--dry_run"]) == []


def test_a_directory_gets_one_line(tmp_path: Path):
    files(tmp_path)
    (tmp_path / "more.pkt").write_text(CODE_PKT)
    assert run_notices([tmp_path]) == [
        f"notice: {tmp_path}: 3 of 5 files run 6 shell commands, 4 Python snippets and "
        f"1 command peer (sleep) {WHERE}"
    ]


def test_validate_main_prints_notices_only_when_asked(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
):
    # the library call keeps its contract (stderr: errors only); the command line asks
    f = files(tmp_path)
    assert validate_main([f["code.pkt"], f["cmd.yaml"]]) == 0
    assert capsys.readouterr().err == ""
    assert validate_main([f["code.pkt"], f["cmd.yaml"]], notices=True) == 0
    assert capsys.readouterr().err.count("notice: ") == 2


def test_run_dry_run_says_nothing(tmp_path: Path):
    files(tmp_path)
    out = netemu("run", "--dry_run", "code.pkt", cwd=tmp_path)
    assert out.returncode == 0, out.stdout + out.stderr
    assert out.stderr == "", out.stderr


@pytest.mark.root
@pytest.mark.timeout(120)
def test_run_notes_a_pkt_and_keeps_its_exit_code(tmp_path: Path):
    files(tmp_path)
    notice = f"notice: code.pkt runs 3 shell commands and 2 Python snippets {WHERE}"
    out = netemu("run", "-q", "-o", "r1", "code.pkt", cwd=tmp_path)
    assert out.returncode == 0, out.stdout + out.stderr
    assert out.stderr.splitlines()[0] == notice, out.stderr
    assert out.stderr.count("notice: ") == 1
    # a failing script: still 1, the notice first
    (tmp_path / "code.pkt").write_text(CODE_PKT.replace("`echo hi > /dev/null`", "`false`"))
    out = netemu("run", "-q", "-o", "r2", "code.pkt", cwd=tmp_path)
    assert out.returncode == 1, out.stdout + out.stderr
    assert out.stderr.splitlines()[0] == notice, out.stderr
    # a script with no code: no notice
    out = netemu("run", "-q", "-o", "r3", "plain.pkt", cwd=tmp_path)
    assert out.returncode == 0, out.stdout + out.stderr
    assert "notice" not in out.stderr, out.stderr


@pytest.mark.root
@pytest.mark.timeout(120)
def test_run_notes_a_scenarios_command_peer(tmp_path: Path):
    files(tmp_path)
    out = netemu("run", "-q", "-o", "r", "cmd.yaml", cwd=tmp_path)
    assert out.returncode == 0, out.stdout + out.stderr
    assert out.stderr.splitlines()[0] == f"notice: cmd.yaml runs 1 command peer (sleep) {WHERE}"
    out = netemu("run", "-q", "-o", "r2", "plain.yaml", cwd=tmp_path)
    assert out.returncode == 0, out.stdout + out.stderr
    assert "notice" not in out.stderr, out.stderr


def test_validate_takes_a_directory_as_run_does(tmp_path: Path, capsys: pytest.CaptureFixture[str]):
    f = files(tmp_path)
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "bad.yaml").write_text("name: bad\nsteps:\n  - conect: 80\n")
    assert validate_main([tmp_path]) == 2
    out = capsys.readouterr()
    assert f"{f['code.pkt']}: ok" in out.out and f"{f['cmd.yaml']}: ok" in out.out
    assert f"{tmp_path / 'sub' / 'bad.yaml'}:3:5: unknown step 'conect'" in out.err
    (tmp_path / "empty").mkdir()
    assert validate_main([tmp_path / "empty"]) == 2
    assert "no scenario files found" in capsys.readouterr().err
