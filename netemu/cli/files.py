"""Files by their type, for the commands that take both kinds: a YAML scenario
(netemu.scenario) or a packetdrill script (``.pkt``, netemu.pkt). ``collect`` finds
them, ``validate_main`` is ``netemu validate``, and ``run_notices`` the lines
``netemu run`` prints first for a file that brings code to run as root (issue 17,
8: a .pkt's shell commands and %{ }% snippets, a scenario's command: peers, which
run in the lab's peer namespace, never the host's, with the host's filesystem:
trusted code, as for packetdrill; and a scenario's scapy expressions, which netemu
evaluates in its own process)."""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any, NamedTuple

from .console import say

SUFFIXES = (".yaml", ".yml", ".pkt")
_PEER_NS = "as root in the lab's peer namespace"
_OWN = "as root in netemu's own process"


class Code(NamedTuple):
    """What a file runs as root beyond packets: shell commands, Python snippets (a
    .pkt's %{ }%) and command peers (their programs) in the lab's peer namespace, and
    Python snippets netemu runs in its own process (a scenario's scapy expressions)."""

    shell: int = 0
    python: int = 0
    peers: int = 0
    programs: tuple[str, ...] = ()
    own: int = 0

    def __bool__(self) -> bool:
        return bool(self.shell or self.python or self.peers or self.own)


NONE = Code()


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


def _phrase(code: Code) -> str:
    """``3 shell commands and 1 command peer (nc) as root in the lab's peer namespace
    and 1 Python snippet as root in netemu's own process (trusted code)``."""
    parts = []
    if code.shell:
        parts.append(_count(code.shell, "shell command"))
    if code.python:
        parts.append(_count(code.python, "Python snippet"))
    if code.peers:
        shown = ", ".join(dict.fromkeys(code.programs))
        parts.append(_count(code.peers, "command peer") + (f" ({shown})" if shown else ""))
    places = [f"{_and(parts)} {_PEER_NS}"] if parts else []
    if code.own:
        places.append(f"{_count(code.own, 'Python snippet')} {_OWN}")
    return f"{_and(places)} (trusted code)"


def _and(parts: list[str]) -> str:
    return ", ".join(parts[:-1]) + " and " + parts[-1] if len(parts) > 1 else parts[0]


def _pkt_code(sc: Any) -> Code:
    if sc.dry_run:  # packetdrill's --dry_run: nothing runs
        return NONE
    shell, python = sc.trusted_code()
    return Code(shell, python)


def _yaml_code(path: str | Path) -> Code:
    from ..scenario.commands import trusted_code

    programs, own = trusted_code(path)
    return Code(peers=len(programs), programs=tuple(programs), own=own)


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


def code_notice(name: str | Path, code: Code) -> str | None:
    """``notice: NAME runs 3 shell commands and 2 Python snippets as root in the lab's
    peer namespace (trusted code)``, or None when there is nothing to say."""
    return f"notice: {name} runs {_phrase(code)}" if code else None


def run_notices(paths: Iterable[str | Path], pkt_argv: list[str] | None = None) -> list[str]:
    """``netemu run``'s notices: one line per FILE or DIR argument whose valid files will
    run shell commands, Python snippets or command peers (a directory's in one sum)."""
    out = []
    for arg in paths:
        files = collect([str(arg)])
        counts = [_file_code(f, pkt_argv) for f in files]
        if Path(arg).is_dir():
            some = [c for c in counts if c]
            if some:
                total = Code(
                    sum(c.shell for c in some),
                    sum(c.python for c in some),
                    sum(c.peers for c in some),
                    tuple(p for c in some for p in c.programs),
                    sum(c.own for c in some),
                )
                verb = "runs" if len(some) == 1 else "run"
                out.append(
                    f"notice: {arg}: {len(some)} of {_count(len(files), 'file')} {verb} "
                    f"{_phrase(total)}"
                )
        else:
            line = code_notice(arg, counts[0]) if counts else None
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


def validate_main(
    paths: Iterable[str | Path],
    pkt_argv: list[str] | None = None,
    *,
    notices: bool = False,
    after_first: Callable[[], None] | None = None,
) -> int:
    """``netemu validate FILE|DIR...``: each problem to stderr as ``file:line:col: message``,
    or ``FILE: ok`` to stdout. 0 when every file is valid, 2 otherwise. With ``notices``
    (the command line's), a valid file that will run shell commands, Python snippets or
    command peers also gets one ``notice: ...`` line on stderr (``code_notice``).
    ``after_first`` is called once the first file is checked (the command line resumes
    the garbage collector there: netemu.cli.resume_gc)."""
    given = list(paths)
    if not given:
        print("netemu validate: give one or more scenario files", file=sys.stderr)
        return 2
    paths = collect([str(p) for p in given])  # a directory: its files, as netemu run takes them
    if not paths:
        print("netemu validate: no scenario files found", file=sys.stderr)
        return 2
    status = 0
    for i, path in enumerate(paths):
        errors, code = _check(path, pkt_argv, notices)
        if i == 0 and after_first is not None:
            after_first()
        if errors:
            status = 2
            for e in errors:
                print(e, file=sys.stderr)
        else:
            say(f"{path}: ok")  # (flushed: after it, its notice on a shared terminal)
            notice = code_notice(path, code) if notices else None
            if notice:
                print(notice, file=sys.stderr)
    return status
