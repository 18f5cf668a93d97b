"""``netemu schema`` (the JSON Schema of scenario files) and what ``netemu validate``
and ``netemu run`` say of the code a scenario file runs as root (its command peers and
scapy expressions); entry points for netemu.cli. Layer: netemu.scenario, below the command line, beside the packetdrill
language (neither imports the other)."""

from __future__ import annotations

import copy
import json
import os
import sys
import tokenize
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
        steps.append(
            {
                "type": "object",
                "additionalProperties": False,
                "required": [action],
                "properties": {action: arg},
                "description": (cls.__doc__ or "").strip(),
            }
        )
    bare = [a for a, c in STEP_TYPES.items() if c.BARE]
    steps.append({"enum": bare, "description": "a step without arguments"})
    props = schema["properties"]
    props["steps"] = {
        "type": "array",
        "minItems": 1,
        "items": {"oneOf": steps},
        "description": "what happens, in order",
    }
    peer_kinds = defs["Peer"]["properties"]["kind"]
    props["peer"] = {
        "anyOf": [{"$ref": "#/$defs/Peer"}, peer_kinds],
        "description": props["peer"].get("description", ""),
    }
    props["peers"]["additionalProperties"] = {"anyOf": [{"$ref": "#/$defs/Peer"}, peer_kinds]}
    conns = props["connections"]
    props["connections"] = {
        "anyOf": [
            {
                "type": "object",
                "additionalProperties": {
                    "anyOf": [{"$ref": "#/$defs/ConnectionSpec"}, {"type": "null"}]
                },
            },
            {"type": "array", "items": {"type": "string"}},
        ],
        "description": conns.get(
            "description", "named connections: {name: {raw: ...}} or [name, ...]"
        ),
    }
    comments = _config_comments()
    for name, prop in defs.get("Options", {}).get("properties", {}).items():
        if name in comments:
            prop["description"] = comments[name]
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        **schema,
        "title": "netemu scenario",
    }


def trusted_code(path: str | Path) -> tuple[list[str], int]:
    """What a valid scenario file runs as root beyond packets (nothing if it is not
    valid): the programs of its command peers, in the lab's peer namespace, and how many
    scapy expressions its inject steps hold, Python that netemu runs in its own process
    (trusted code; issue 17, 8)."""
    from ..source_error import SourceError

    try:
        with open(path, "rb") as f:
            text = f.read(4 << 20).decode(errors="replace")
    except OSError:
        return [], 0
    # Only a file that says "command" or "scapy" (or escapes a character) can have
    # either: the others are not loaded a second time.
    if "command" not in text and "scapy" not in text and "\\" not in text:
        return [], 0
    from .loader import load_scenario
    from .segments import Inject

    try:
        scenario = load_scenario(path)
    except (SourceError, OSError):
        return [], 0
    programs = [(p.command or ["?"])[0] for p in scenario.peers.values() if p.kind == "command"]
    return programs, sum(isinstance(st, Inject) and st.scapy is not None for st in scenario.steps)


def schema_main() -> int:
    """``netemu schema``: the scenario JSON Schema on stdout."""
    text = json.dumps(json_schema(), indent=2) + "\n"
    try:
        sys.stdout.write(text)
        sys.stdout.flush()
    except BrokenPipeError:  # `netemu schema | head`
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
    return 0
