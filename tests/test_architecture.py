"""The layer rules of docs/design.md, checked on the source (issue 18).

Every import of netemu's own modules counts, including those made inside a function
(netemu imports lazily for start-up time, but a lazy import is a dependency all the
same). A package may import only the packages its row in LAYERS names; the rows form no
cycle; no module is over 700 lines and no function over 80, except those listed with
the reason they stay whole; netemu.wire opens no file when it is imported.
"""

from __future__ import annotations

import ast
import subprocess
import sys
import textwrap
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PKG = ROOT / "netemu"

# What each part of netemu may import (besides itself). Leaves first: every row names
# only rows above it, which is what makes the graph acyclic; test_layers_form_no_cycle
# checks that too, so a row cannot quietly name one below it.
LAYERS: dict[str, set[str]] = {
    # leaves: nothing of netemu's below them
    "netemu": set(),  # the package itself: __version__
    "netemu.source_error": set(),  # file:line:col errors, for both script formats
    "netemu.linux": set(),  # libc, setns, namespaces: what lab and link both need
    "netemu.sockopts": set(),  # the socket-option table: scenario format and kernel agent
    "netemu.wire": set(),  # the codec: bytes <-> records
    "netemu.impair": set(),  # netem-style impairments, sans-IO, on bytes
    # the endpoint and what records it
    "netemu.tcp": {"netemu.wire"},  # the sans-IO TCP endpoint
    "netemu.trace": {"netemu", "netemu.wire", "netemu.tcp"},  # records, pcap, ladder, report
    # putting it on a wire
    "netemu.link": {"netemu.linux"},  # AF_PACKET sockets
    "netemu.host": {"netemu.wire", "netemu.tcp", "netemu.impair", "netemu.trace"},  # asyncio
    "netemu.testing": {"netemu.wire", "netemu.tcp", "netemu.host"},  # in-memory nets, states
    "netemu.lab": {
        "netemu.linux",
        "netemu.sockopts",
        "netemu.link",
    },  # namespaces, veths, peers, tracepoints
    # runs: the layer every kind of run stands on, then the two script formats
    "netemu.run": {"netemu.wire", "netemu.impair", "netemu.trace", "netemu.host", "netemu.lab"},
    "netemu.scenario": {
        "netemu.source_error",
        "netemu.sockopts",
        "netemu.wire",
        "netemu.tcp",
        "netemu.trace",
        "netemu.host",
        "netemu.lab",
        "netemu.run",
    },
    "netemu.pkt": {
        "netemu.source_error",
        "netemu.linux",
        "netemu.wire",
        "netemu.trace",
        "netemu.host",
        "netemu.lab",
        "netemu.run",
    },
    # on top: measurements and the command line (dispatch by file type)
    "netemu.bench": {
        "netemu.wire",
        "netemu.tcp",
        "netemu.impair",
        "netemu.trace",
        "netemu.host",
        "netemu.testing",
        "netemu.lab",
        "netemu.pkt",
    },
    "netemu.cli": {
        "netemu",
        "netemu.source_error",
        "netemu.trace",
        "netemu.lab",
        "netemu.run",
        "netemu.scenario",
        "netemu.pkt",
        "netemu.bench",
    },
    "netemu.__main__": {"netemu.cli"},
    # the Python API (docs/python.md): endpoint scenarios a step at a time
    "netemu.api": {
        "netemu.source_error",
        "netemu.host",
        "netemu.lab",
        "netemu.run",
        "netemu.scenario",
        "netemu.trace",
    },
    # the pytest plugin: a top-level part beside the command line, running files as it does
    "netemu.pytest_plugin": {
        "netemu.source_error",
        "netemu.api",
        "netemu.lab",
        "netemu.run",
        "netemu.scenario",
        "netemu.pkt",
    },
}

MAX_MODULE_LINES = 700
MAX_FUNCTION_LINES = 80
# Functions allowed over MAX_FUNCTION_LINES, each with the reason it stays whole.
LONG_FUNCTIONS: dict[str, str] = {
    "netemu.wire.tcp:emit": "TcpSegment.emit, every segment sent: three branches sharing their "
    "locals (NOP-NOP-TS with and without a frame header, any other options); a helper would "
    "cost a call per segment, and its length is the formatter spreading one 18-field pack",
}
LONG_MODULES: dict[str, str] = {}


def _modules() -> dict[str, Path]:
    mods = {}
    for p in sorted(PKG.rglob("*.py")):
        parts = p.relative_to(ROOT).with_suffix("").parts
        if parts[-1] == "__init__":
            parts = parts[:-1]
        mods[".".join(parts)] = p
    return mods


def _part(module: str) -> str:
    """The LAYERS row a module belongs to: netemu.X for netemu/X.py or netemu/X/..."""
    parts = module.split(".")
    return ".".join(parts[:2])


def _imports(module: str, path: Path) -> set[tuple[str, int]]:
    """(imported module, line) of every import of netemu's own in ``path``."""
    tree = ast.parse(path.read_text(), str(path))
    package = module.split(".") if path.name == "__init__.py" else module.split(".")[:-1]
    found: set[tuple[str, int]] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.update((a.name, node.lineno) for a in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package[: len(package) - node.level + 1]
                target = ".".join(base + ([node.module] if node.module else []))
                if not node.module:  # from . import x: x may be a module
                    found.update((f"{target}.{a.name}", node.lineno) for a in node.names)
            else:
                target = node.module or ""
            found.add((target, node.lineno))
    return {(t, n) for t, n in found if t == "netemu" or t.startswith("netemu.")}


def _edges() -> dict[str, set[tuple[str, str]]]:
    """part -> {(imported part, where: path:line)}."""
    mods = _modules()
    edges: dict[str, set[tuple[str, str]]] = {}
    for name, path in mods.items():
        src = _part(name)
        for target, line in _imports(name, path):
            while target not in mods:  # `from . import name`: name is a module or not
                target = target.rpartition(".")[0]
            dst = _part(target)
            if dst != src:
                edges.setdefault(src, set()).add((dst, f"{path.relative_to(ROOT)}:{line}"))
    return edges


def test_every_part_has_a_layer_row():
    parts = {_part(m) for m in _modules()}
    assert parts <= LAYERS.keys(), f"parts with no row in LAYERS: {sorted(parts - LAYERS.keys())}"


def test_each_part_imports_only_what_its_layer_allows():
    wrong = [
        f"{by}: {src} imports {dst}, which its row in LAYERS does not allow "
        f"(it may import: {sorted(LAYERS.get(src, ())) or 'nothing of netemu'})"
        for src, targets in sorted(_edges().items())
        for dst, by in sorted(targets)
        if dst not in LAYERS.get(src, set())
    ]
    assert not wrong, "\n".join(wrong)


def test_layers_form_no_cycle():
    order = list(LAYERS)
    late = [
        f"{part} may import {dep}, listed after it"
        for i, part in enumerate(order)
        for dep in LAYERS[part]
        if dep not in order[:i]
    ]
    assert not late, "\n".join(late)


def test_the_named_rules_hold():
    """The rules issue 18 names, spelled out (LAYERS implies them; a row edited by
    mistake should not quietly undo one)."""
    edges = _edges()

    def where(src: str, dst: str) -> list[str]:
        return sorted(by for d, by in edges.get(src, set()) if d == dst)

    for src, dst in [
        ("netemu.scenario", "netemu.pkt"),
        ("netemu.pkt", "netemu.scenario"),
        ("netemu.link", "netemu.lab"),
        ("netemu.scenario", "netemu.cli"),
        ("netemu.pkt", "netemu.cli"),
    ]:
        assert not where(src, dst), f"{src} must not import {dst}: {where(src, dst)}"
    for src, allowed in [("netemu.wire", set()), ("netemu.tcp", {"netemu.wire"})]:
        extra = sorted(by for d, by in edges.get(src, set()) if d not in allowed)
        assert not extra, f"{src} may import only {sorted(allowed) or 'nothing'}: {extra}"


def test_no_module_is_over_the_limit():
    long = {
        str(p.relative_to(ROOT)): n
        for p in _modules().values()
        if (n := len(p.read_text().splitlines())) > MAX_MODULE_LINES
    }
    new = {m: n for m, n in long.items() if m not in LONG_MODULES}
    assert not new, (
        f"modules over {MAX_MODULE_LINES} lines: {new}: move a coherent part into a sibling "
        "module (docs/design.md), or list it in LONG_MODULES with the reason it stays whole"
    )


def _long_functions(source: str) -> dict[str, tuple[int, int]]:
    """Functions (methods and nested ones too) longer than MAX_FUNCTION_LINES, counted
    from `def` (decorators aside) to their last line: name -> (lines, line of `def`)."""
    long = {}
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
            n = (node.end_lineno or node.lineno) - node.lineno + 1
            if n > MAX_FUNCTION_LINES:
                long[node.name] = (n, node.lineno)
    return long


def test_no_function_is_over_the_limit():
    long = {
        f"{name}:{fn}": (n, f"{path.relative_to(ROOT)}:{line}")
        for name, path in _modules().items()
        for fn, (n, line) in _long_functions(path.read_text()).items()
    }
    new = [
        f"{where} {key} ({n} lines)"
        for key, (n, where) in long.items()
        if key not in LONG_FUNCTIONS
    ]
    assert not new, (
        f"functions over {MAX_FUNCTION_LINES} lines: {new}: split into named steps, or list "
        "one in LONG_FUNCTIONS with the reason it stays whole (a per-packet path, say)"
    )
    stale = LONG_FUNCTIONS.keys() - long.keys()
    assert not stale, f"LONG_FUNCTIONS lists functions no longer over the limit: {stale}"


def test_the_function_count_finds_a_long_method():
    body = "\n".join(f"        x{i} = {i}" for i in range(MAX_FUNCTION_LINES))
    src = f"class C:\n    def short(self):\n        pass\n\n    async def long(self):\n{body}\n"
    assert _long_functions(src) == {"long": (MAX_FUNCTION_LINES + 1, 5)}


def test_wire_opens_no_file_when_imported():
    """An audit hook sees every open(); the import system's own reads of netemu's
    modules (.py and their bytecode) are the only files allowed."""
    code = textwrap.dedent("""
        import sys
        opened = []
        def hook(event, args):
            if event == "open" and isinstance(args[0], (str, bytes)):
                opened.append(str(args[0]))
        sys.addaudithook(hook)
        import netemu.wire, netemu.wire.frame, netemu.wire.tcp
        frame = netemu.wire.frame
        for path in opened:
            if not path.endswith((".py", ".pyc")) and "/netemu/" in path:
                print(path)
    """)
    out = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True
    )
    assert out.stdout == "", f"netemu.wire opened files at import:\n{out.stdout}"
