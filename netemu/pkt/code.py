"""``%{ }%`` snippets, run as packetdrill runs its code file: after the script, as one
program, by a Python of their own in the peer namespace (``python -m netemu.pkt.code``
reads the blocks and their values as JSON on stdin and writes each block's verdict as
JSON on stdout). A snippet is the script author's code: it runs where packetdrill would
run it (the test's network namespace, the script's folder), never in netemu's process
or the host's network namespace. Standard library only besides this module: the child
starts in ~30 ms."""

from __future__ import annotations

import json
import re
import sys
from typing import Any


def run_snippet(text: str, values: dict[str, Any], env: dict[str, Any] | None = None) -> str | None:
    """Run a %{ }% snippet as packetdrill does: its text with spaces and tabs stripped
    from both ends (newlines kept, so a trailing backslash continues onto a blank
    line), ordinary Python with every builtin (packetdrill runs python3 on it), the
    ``tcpi_*`` values and packetdrill's constants as globals. ``env``: the globals
    of the script's earlier snippets (packetdrill writes them all into one program,
    so a name one block sets is there in the next). None when it passes, else why."""
    code = text.strip(" \t") + "\n\n"
    try:
        compiled = compile(code, "<%{ }%>", "exec")
    except SyntaxError as e:
        return f"Python syntax error in %{{ }}%: {e.msg} (snippet line {e.lineno})"
    if env is None:
        env = {}
    env.setdefault("__name__", "__pktcode__")
    env.update(values)
    try:
        exec(compiled, env)  # the script's own code, as packetdrill runs it
    except AssertionError as e:
        used = sorted(set(re.findall(r"\btcpi_\w+", code)))
        shown = ", ".join(f"{n}={values.get(n, '?')}" for n in used)
        detail = f": {e}" if str(e) else ""
        return f"assertion failed in %{{ {code.strip()} }}%{detail}" + (
            f" (with {shown})" if shown else ""
        )
    except NameError as e:
        names = sorted(k for k in values if k.startswith("tcpi_"))
        return f"%{{ }}%: {e} (TCP_INFO's fields: {', '.join(names)[:300]})"
    except Exception as e:
        return f"%{{ }}% raised {type(e).__name__}: {e}"
    return None


def run_blocks(blocks: list[tuple[str, dict[str, Any]]]) -> list[str | None]:
    """Every block in order with one shared namespace; after the first failure the
    rest do not run (their verdict: "skipped")."""
    env: dict[str, Any] = {}
    out: list[str | None] = []
    for text, values in blocks:
        if out and out[-1] not in (None, "skipped"):
            out.append("skipped")
            continue
        out.append(run_snippet(text, values, env))
    return out


def main() -> int:
    blocks = json.load(sys.stdin)
    real_stdout = sys.stdout
    sys.stdout = sys.stderr  # a snippet's print() must not garble the verdicts
    verdicts = run_blocks([(b["text"], b["values"]) for b in blocks])
    sys.stdout = real_stdout
    json.dump(verdicts, real_stdout)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
