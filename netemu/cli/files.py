"""Files by their type, for the commands that take both kinds: a YAML scenario
(netemu.scenario) or a packetdrill script (``.pkt``, netemu.pkt). ``collect`` finds
them, ``validate_main`` is ``netemu validate``, and ``run_notices`` the lines
``netemu run`` prints first for a file that brings code to run as root (issue 17,
8: a .pkt's shell commands and %{ }% snippets, a scenario's command: peers, which
run in the lab's peer namespace, never the host's, with the host's filesystem:
trusted code, as for packetdrill)."""

from __future__ import annotations

import sys
from collections.abc import Iterable
from pathlib import Path
from typing import Any

SUFFIXES = (".yaml", ".yml", ".pkt")
_WHERE = "as root in the lab's peer namespace (trusted code)"
# (shell commands, Python snippets, command peers, their programs)
Code = tuple[int, int, int, list[str]]
NONE: Code = (0, 0, 0, [])


def collect(paths: list[str]) -> list[Path]:
    """Scenario files from files and directories (*.yaml, *.yml, packetdrill's *.pkt),
    in order."""
    out: list[Path] = []
    for p in map(Path, paths):
        if p.is_dir():
            out.extend(sorted(q for q in p.rglob("*") if q.suffix in SUFFIXES))
        else:
            out.append(p)
    return out


def _count(n: int, what: str) -> str:
    return f"{n} {what}" if n == 1 else f"{n} {what}s"


def _phrase(shell: int, python: int, peers: int, programs: list[str]) -> str:
    parts = []
    if shell:
        parts.append(_count(shell, "shell command"))
    if python:
        parts.append(_count(python, "Python snippet"))
    if peers:
        shown = ", ".join(dict.fromkeys(programs))
        parts.append(_count(peers, "command peer") + (f" ({shown})" if shown else ""))
    return ", ".join(parts[:-1]) + " and " + parts[-1] if len(parts) > 1 else parts[0]


def _pkt_code(sc: Any) -> Code:
    if sc.dry_run:  # packetdrill's --dry_run: nothing runs
        return NONE
    shell, python = sc.trusted_code()
    return shell, python, 0, []


def _yaml_code(path: str | Path) -> Code:
    from ..scenario.commands import command_peers

    programs = command_peers(path)
    return 0, 0, len(programs), programs


def _file_code(path: Path, pkt_argv: list[str] | None) -> Code:
    if path.suffix != ".pkt":
        return _yaml_code(path)
    try:
        with open(path, "rb") as f:
            text = f.read(4 << 20).decode(errors="replace")
    except OSError:
        return NONE
    # a shell command is in backquotes, a snippet in %{ }%, an init script an option
    # (the -D values go in too: a define may stand for either)
    seen = text + " ".join(pkt_argv or ())
    if "`" not in seen and "%{" not in seen and "init_scripts" not in seen:
        return NONE
    from ..pkt import PktError, load_pkt

    try:
        return _pkt_code(load_pkt(path, pkt_argv))
    except (PktError, OSError):
        return NONE


def code_notice(name: str | Path, shell: int, python: int, peers: int = 0,
                programs: list[str] | None = None) -> str | None:
    """``notice: NAME runs 3 shell commands and 2 Python snippets as root in the lab's
    peer namespace (trusted code)``, or None when there is nothing to say."""
    if not (shell or python or peers):
        return None
    return f"notice: {name} runs {_phrase(shell, python, peers, programs or [])} {_WHERE}"


def run_notices(paths: Iterable[str | Path], pkt_argv: list[str] | None = None) -> list[str]:
    """``netemu run``'s notices: one line per FILE or DIR argument whose valid files will
    run shell commands, Python snippets or command peers (a directory's in one sum)."""
    out = []
    for arg in paths:
        files = collect([str(arg)])
        counts = [_file_code(f, pkt_argv) for f in files]
        if Path(arg).is_dir():
            some = [c for c in counts if c[0] or c[1] or c[2]]
            if some:
                shell, python, peers = (sum(c[0] for c in some), sum(c[1] for c in some),
                                        sum(c[2] for c in some))
                programs = [p for c in some for p in c[3]]
                verb = "runs" if len(some) == 1 else "run"
                out.append(f"notice: {arg}: {len(some)} of {_count(len(files), 'file')} {verb} "
                           f"{_phrase(shell, python, peers, programs)} {_WHERE}")
        else:
            line = code_notice(arg, *counts[0]) if counts else None
            if line:
                out.append(line)
    return out


def _check(path: str | Path, pkt_argv: list[str] | None, notices: bool) -> tuple[list[Any], Code]:
    """A file's errors, and (with ``notices``) the code it brings."""
    if str(path).endswith(".pkt"):  # a packetdrill script: its own language
        from ..pkt import PktError, load_pkt

        try:
            return [], _pkt_code(load_pkt(path, pkt_argv))
        except PktError as e:
            return list(e.errors), NONE
    from ..scenario.loader import validate_file

    errors = validate_file(path)
    return errors, (_yaml_code(path) if notices and not errors else NONE)


def validate_main(paths: Iterable[str | Path], pkt_argv: list[str] | None = None, *,
                  notices: bool = False) -> int:
    """``netemu validate FILE...``: each problem to stderr as ``file:line:col: message``,
    or ``FILE: ok`` to stdout. 0 when every file is valid, 2 otherwise. With ``notices``
    (the command line's), a valid file that will run shell commands, Python snippets or
    command peers also gets one ``notice: ...`` line on stderr (``code_notice``)."""
    paths = list(paths)
    if not paths:
        print("netemu validate: give one or more scenario files", file=sys.stderr)
        return 2
    status = 0
    for path in paths:
        errors, code = _check(path, pkt_argv, notices)
        if errors:
            status = 2
            for e in errors:
                print(e, file=sys.stderr)
        else:
            print(f"{path}: ok")
            notice = code_notice(path, *code) if notices else None
            if notice:
                sys.stdout.flush()  # after its file's "ok" on a shared terminal or pipe
                print(notice, file=sys.stderr)
    return status
