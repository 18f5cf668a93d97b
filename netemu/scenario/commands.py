"""``netemu validate`` and ``netemu schema``: entry points for netemu/cli.py."""

from __future__ import annotations

import copy
import json
import os
import sys
import tokenize
from collections.abc import Iterable
from pathlib import Path
from typing import Any


def _config_comments() -> dict[str, str]:
    """TcpConfig's trailing comments (``mss: int = 1460  # our MSS``), by field name."""
    from netemu.tcp import config

    out: dict[str, str] = {}
    try:
        with tokenize.open(str(config.__file__)) as f:
            tokens = list(tokenize.generate_tokens(f.readline))
    except (OSError, SyntaxError, tokenize.TokenError):
        return out
    line_name: dict[int, str] = {}
    for i, tok in enumerate(tokens[:-1]):
        if tok.type == tokenize.NAME and tok.start[1] == 4 and tokens[i + 1].string == ":":
            line_name[tok.start[0]] = tok.string
    for tok in tokens:
        if tok.type == tokenize.COMMENT and tok.start[0] in line_name:
            out[line_name[tok.start[0]]] = tok.string.lstrip("# ").strip()
    return out


def _short_form(defn: dict[str, Any], field: str | None) -> dict[str, Any] | None:
    if field is None:
        return None
    for name, prop in defn.get("properties", {}).items():
        if name == field:
            prop = {k: v for k, v in prop.items() if k not in ("default", "title")}
            if "anyOf" in prop:  # drop the null of Optional
                prop["anyOf"] = [p for p in prop["anyOf"] if p != {"type": "null"}]
            return prop
    return None


def json_schema() -> dict[str, Any]:
    """The JSON Schema of a scenario file (draft 2020-12), for editors: pydantic's
    schema with each step written as the one-key mapping the YAML uses."""
    from .schema import STEP_TYPES, Scenario

    schema = copy.deepcopy(Scenario.model_json_schema(mode="validation"))
    defs = schema.setdefault("$defs", {})
    steps = []
    for action, cls in STEP_TYPES.items():
        ref = {"$ref": f"#/$defs/{cls.__name__}"}
        short = _short_form(defs.get(cls.__name__, {}), cls.SHORT)
        arg: dict[str, Any] = {"anyOf": [ref, short]} if short else ref
        if cls.ACTION == "peer":
            arg = {"anyOf": [ref, {"enum": ["close", "abort", "accept", "shutdown"]}]}
        if cls.BARE or not any(f.is_required() for f in cls.model_fields.values()):
            arg = {"anyOf": [*arg.get("anyOf", [arg]), {"type": "null"}]}
        steps.append({"type": "object", "additionalProperties": False, "required": [action],
                      "properties": {action: arg}, "description": (cls.__doc__ or "").strip()})
    bare = [a for a, c in STEP_TYPES.items() if c.BARE]
    steps.append({"enum": bare, "description": "a step without arguments"})
    props = schema["properties"]
    props["steps"] = {"type": "array", "minItems": 1, "items": {"oneOf": steps},
                      "description": "what happens, in order"}
    peer_kinds = defs["Peer"]["properties"]["kind"]
    props["peer"] = {"anyOf": [{"$ref": "#/$defs/Peer"}, peer_kinds],
                     "description": props["peer"].get("description", "")}
    props["peers"]["additionalProperties"] = {"anyOf": [{"$ref": "#/$defs/Peer"}, peer_kinds]}
    conns = props["connections"]
    props["connections"] = {
        "anyOf": [{"type": "object", "additionalProperties": {
            "anyOf": [{"$ref": "#/$defs/ConnectionSpec"}, {"type": "null"}]}},
            {"type": "array", "items": {"type": "string"}}],
        "description": conns.get("description", "named connections: {name: {raw: ...}} or "
                                 "[name, ...]")}
    comments = _config_comments()
    for name, prop in defs.get("Options", {}).get("properties", {}).items():
        if name in comments:
            prop["description"] = comments[name]
    return {"$schema": "https://json-schema.org/draft/2020-12/schema", **schema,
            "title": "netemu scenario"}


# --- code a file brings (issue 17, 8) ---------------------------------------------------
# A .pkt's shell commands and %{ }% snippets and a scenario's command: peers run as root
# in the lab's peer namespace (never the host's), with the host's filesystem: trusted
# code, as for packetdrill. `netemu validate` and `netemu run` say so in one line.

_WHERE = "as root in the lab's peer namespace (trusted code)"


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


def _pkt_code(sc: Any) -> tuple[int, int, int, list[str]]:
    if sc.dry_run:  # packetdrill's --dry_run: nothing runs
        return 0, 0, 0, []
    shell, python = sc.trusted_code()
    return shell, python, 0, []


def _yaml_code(path: str | Path) -> tuple[int, int, int, list[str]]:
    """The command peers of a valid scenario file (none if it is not valid)."""
    from ..source_error import SourceError

    try:
        with open(path, "rb") as f:
            text = f.read(4 << 20).decode(errors="replace")
    except OSError:
        return 0, 0, 0, []
    # Only a file that says "command" (or escapes a character) can have a command peer:
    # the others are not loaded a second time.
    if "command" not in text and "\\" not in text:
        return 0, 0, 0, []
    from .loader import load_scenario

    try:
        scenario = load_scenario(path)
    except (SourceError, OSError):
        return 0, 0, 0, []
    programs = [(p.command or ["?"])[0] for p in scenario.peers.values() if p.kind == "command"]
    return 0, 0, len(programs), programs


def _file_code(path: Path, pkt_argv: list[str] | None) -> tuple[int, int, int, list[str]]:
    if path.suffix != ".pkt":
        return _yaml_code(path)
    try:
        with open(path, "rb") as f:
            text = f.read(4 << 20).decode(errors="replace")
    except OSError:
        return 0, 0, 0, []
    # a shell command is in backquotes, a snippet in %{ }%, an init script an option
    # (the -D values go in too: a define may stand for either)
    seen = text + " ".join(pkt_argv or ())
    if "`" not in seen and "%{" not in seen and "init_scripts" not in seen:
        return 0, 0, 0, []
    from ..pkt import PktError, load_pkt

    try:
        return _pkt_code(load_pkt(path, pkt_argv))
    except (PktError, OSError):
        return 0, 0, 0, []


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
    from .session import collect

    out = []
    for arg in paths:
        files = collect([str(arg)])
        counts = [_file_code(f, pkt_argv) for f in files]
        if Path(arg).is_dir():
            some = [c for c in counts if any(c[:3])]
            if some:
                shell, python, peers = (sum(c[i] for c in some) for i in range(3))
                programs = [p for c in some for p in c[3]]
                verb = "runs" if len(some) == 1 else "run"
                out.append(f"notice: {arg}: {len(some)} of {_count(len(files), 'file')} {verb} "
                           f"{_phrase(shell, python, peers, programs)} {_WHERE}")
        else:
            line = code_notice(arg, *counts[0]) if counts else None
            if line:
                out.append(line)
    return out


def validate_main(paths: Iterable[str | Path], pkt_argv: list[str] | None = None, *,
                  notices: bool = False) -> int:
    """``netemu validate FILE...``: each problem to stderr as ``file:line:col: message``,
    or ``FILE: ok`` to stdout. 0 when every file is valid, 2 otherwise. With ``notices``
    (the command line's), a valid file that will run shell commands, Python snippets or
    command peers also gets one ``notice: ...`` line on stderr (``code_notice``)."""
    from .loader import validate_file

    paths = list(paths)
    if not paths:
        print("netemu validate: give one or more scenario files", file=sys.stderr)
        return 2
    status = 0
    for path in paths:
        code: tuple[int, int, int, list[str]] = (0, 0, 0, [])
        if str(path).endswith(".pkt"):  # a packetdrill script: its own language
            from ..pkt import PktError, load_pkt

            try:
                code = _pkt_code(load_pkt(path, pkt_argv))
                errors = []
            except PktError as e:
                errors = list(e.errors)
        else:
            errors = validate_file(path)
            if notices and not errors:
                code = _yaml_code(path)
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


def schema_main() -> int:
    """``netemu schema``: the scenario JSON Schema on stdout."""
    text = json.dumps(json_schema(), indent=2) + "\n"
    try:
        sys.stdout.write(text)
        sys.stdout.flush()
    except BrokenPipeError:  # `netemu schema | head`
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
    return 0
