"""Load a scenario file: YAML with positions -> pydantic models -> one clear
``file:line:col: message`` per problem.

How errors are made:

1. YAML is composed into a node tree (every node knows its line and column), then
   constructed with the safe loader. Syntax errors keep the position YAML reports;
   a tab gets a plainer message; duplicate mapping keys are errors here (YAML
   itself would silently keep the last one).
2. The data is validated by ``Scenario.model_validate`` (pydantic). Each error has a
   ``loc`` (e.g. ``('steps', 3, 'connect', 'port')``) which mirrors the YAML path,
   because steps are tagged by their action name (each validated by its action's
   model, whose errors join the scenario's there); the loader walks the node tree
   along it. Our own validators raise errors whose context may carry a sub-path
   and "point at the key" (``schema.fail``).
3. Cross-field rules (unknown connection, raw misuse, ...) run in the Scenario's
   after-validator; the loader collects them through the validation context.

pydantic's own wording is replaced by ours for the error types a scenario hits
(``messages``).
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError
from yaml.error import Mark
from yaml.events import AliasEvent, Event, MappingStartEvent, SequenceStartEvent
from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode

from ..source_error import SourceError, long_number
from .checks import Problem
from .messages import misspelt, model_at, translate
from .schema import Scenario
from .units import show

__all__ = ["ScenarioError", "load_scenario", "load_scenario_text", "validate_file", "validate_text"]


class ScenarioError(SourceError):
    """One problem in a scenario file, at 1-based ``line`` and ``col`` (0: unknown).

    ``load_scenario`` raises the first one; ``errors`` then holds them all."""

    def __repr__(self) -> str:
        return f"ScenarioError({str(self)!r})"


# --- YAML with positions -------------------------------------------------------------


class _Yaml:
    def __init__(
        self, root: Node | None, data: Any, aliases: dict[tuple[int, object], Mark] | None = None
    ) -> None:
        self.root = root
        self.data = data
        self.aliases = aliases or {}


class _Refused(Exception):
    """Composing stopped at ``mark``: what the models must never see."""

    def __init__(self, mark: Mark, message: str) -> None:
        super().__init__(message)
        self.mark = mark
        self.message = message


def _slot(parent: Node, index: Any) -> object:
    """Where a child sits in its parent: a sequence's index, a mapping value's key node."""
    return index if isinstance(parent, SequenceNode) else id(index)


class _Loader(yaml.SafeLoader):
    """The safe loader, keeping where each alias is written (YAML hands back the
    anchor's own node, whose position is the anchor's: an error in an aliased step was
    reported at the step it copies), and refusing at its place an alias inside its own
    anchor (a value that contains itself: recursion without end in the models) and
    nesting deeper than ``MAX_DEPTH``, block style included (the screen counts brackets
    only; the composer recursed out of Python's stack at ~300 levels)."""

    def __init__(self, text: str) -> None:
        super().__init__(text)
        self.aliases: dict[tuple[int, object], Mark] = {}  # (id(parent), slot) -> where
        self._open: set[str] = set()  # anchors whose node is being composed
        self._depth = 0
        self._nodes = 0

    def compose_node(self, parent: Node | None, index: Any) -> Node | None:
        event = self.peek_event()
        if isinstance(event, AliasEvent):
            if event.anchor in self._open:
                raise _Refused(
                    _start(event),
                    f"the alias *{event.anchor} is inside its "
                    f"own anchor &{event.anchor}: a value cannot contain itself",
                )
            node = super().compose_node(parent, index)
            if parent is not None and index is not None:
                self.aliases[(id(parent), _slot(parent, index))] = _start(event)
            return node
        self._nodes += 1
        if self._nodes > MAX_NODES:  # 131,000 values in 256 KiB took 2.4 s to compose
            raise _Refused(
                _start(event), f"more than {MAX_NODES} values in the file: this is one too many"
            )
        if not isinstance(event, MappingStartEvent | SequenceStartEvent):
            return super().compose_node(parent, index)
        self._depth += 1
        if self._depth > MAX_DEPTH:
            raise _Refused(_start(event), f"nesting deeper than {MAX_DEPTH} levels")
        anchor = event.anchor
        if anchor is not None:
            self._open.add(anchor)
        try:
            return super().compose_node(parent, index)
        finally:
            self._depth -= 1
            self._open.discard(anchor)


def _start(event: Event) -> Mark:
    """Where an event starts (the pure-Python loader's events all know)."""
    mark = event.start_mark
    assert isinstance(mark, Mark)
    return mark


def _children(node: Node) -> Iterable[tuple[object, Node]]:
    if isinstance(node, MappingNode):
        for k, v in node.value:
            yield None, k
            yield id(k), v
    elif isinstance(node, SequenceNode):
        yield from enumerate(node.value)


def _pos(node: Node | Mark) -> tuple[int, int]:
    mark = node if isinstance(node, Mark) else node.start_mark
    return mark.line + 1, mark.column + 1


def _yaml_error(file: str, e: yaml.YAMLError) -> ScenarioError:
    mark = getattr(e, "problem_mark", None) or getattr(e, "context_mark", None)
    problem = getattr(e, "problem", None) or str(e)
    context = getattr(e, "context", None)
    if "'\\t'" in problem or "\t" in problem:
        problem = "tab character: indent YAML with spaces, not tabs"
        context = None
    if (
        context
        and "alias" in context
        and mark is not None
        and mark.buffer is not None
        and mark.pointer > 0
        and mark.buffer[mark.pointer - 1] == "*"
    ):
        problem = 'a bare * starts a YAML alias: quote the wildcard, "*"'
        mark = type(mark)(
            mark.name, mark.index - 1, mark.line, mark.column - 1, mark.buffer, mark.pointer - 1
        )
        context = None
    message = f"YAML: {problem}"
    ctx_mark = getattr(e, "context_mark", None)
    if context and ctx_mark is not None and mark is not None and ctx_mark.line != mark.line:
        message += f" ({context} at line {ctx_mark.line + 1})"
    if mark is None:
        return ScenarioError(file, 0, 0, message)
    return ScenarioError(file, mark.line + 1, mark.column + 1, message)


def _duplicates(file: str, root: Node | None) -> list[ScenarioError]:
    out: list[ScenarioError] = []
    stack = [root] if root is not None else []
    seen_nodes: set[int] = set()
    while stack:
        node = stack.pop()
        if id(node) in seen_nodes:
            continue
        seen_nodes.add(id(node))
        if isinstance(node, MappingNode):
            first: dict[str, Node] = {}
            for k, v in node.value:
                if isinstance(k, ScalarNode) and k.value != "<<":
                    if k.value in first:
                        out.append(
                            ScenarioError(
                                file,
                                *_pos(k),
                                f"duplicate key {show(k.value)} (first at line "
                                f"{_pos(first[k.value])[0]})",
                            )
                        )
                    else:
                        first[k.value] = k
                stack.append(v)
        elif isinstance(node, SequenceNode):
            stack.extend(node.value)
    return out


MAX_NODES = 50_000  # a scenario's values once YAML's aliases are expanded
MAX_CHARS = 256 * 1024  # a scenario file (the bundled ones are under 3 KiB)
MAX_STEPS = 2_000


def _expanded(node: Node, memo: dict[int, int]) -> int:
    """How many nodes ``node`` stands for once aliases are expanded; an alias is the
    same Node object, so each is counted once per use, computed once."""
    got = memo.get(id(node))
    if got is not None:
        return got
    memo[id(node)] = 1  # a cycle counts once
    n = 1
    if isinstance(node, MappingNode):
        for k, v in node.value:
            n += _expanded(k, memo) + _expanded(v, memo)
            if n > MAX_NODES:
                break
    elif isinstance(node, SequenceNode):
        for v in node.value:
            n += _expanded(v, memo)
            if n > MAX_NODES:
                break
    memo[id(node)] = n
    return n


def _too_big_at(
    root: Node, memo: dict[int, int], aliases: dict[tuple[int, object], Mark]
) -> tuple[int, int]:
    """Where the values pass ``MAX_NODES``: the deepest value that alone stands for more
    (where it is written: an alias's own place), else the root."""
    node, where = root, _pos(root)
    while True:
        for slot, child in _children(node):
            if memo.get(id(child), 0) > MAX_NODES:
                alias = aliases.get((id(node), slot)) if slot is not None else None
                where = _pos(alias or child)
                node = child
                break
        else:
            return where


def _parse_yaml(text: str, file: str) -> tuple[_Yaml | None, list[ScenarioError]]:
    try:
        loader = _Loader(text)
    except yaml.YAMLError as e:  # the reader's: a character YAML refuses
        return None, [_yaml_error(file, e)]
    try:
        root = loader.get_single_node()
        # Before anything walks the values: a "billion laughs" of aliases expands to
        # exponentially many (it hung validate past 540 MB).
        memo: dict[int, int] = {}
        if root is not None and _expanded(root, memo) > MAX_NODES:
            line, col = _too_big_at(root, memo, loader.aliases)
            return None, [
                ScenarioError(
                    file,
                    line,
                    col,
                    f"this stands for more than {MAX_NODES} values (YAML's aliases expanded)",
                )
            ]
        steps, _ = _find(root, ["steps"])
        if isinstance(steps, SequenceNode) and len(steps.value) > MAX_STEPS:
            line, col = _pos(steps.value[MAX_STEPS])
            return None, [
                ScenarioError(
                    file,
                    line,
                    col,
                    f"more than {MAX_STEPS} steps "
                    f"({len(steps.value)}): this is step "
                    f"{MAX_STEPS + 1}",
                )
            ]
        dups = _duplicates(file, root)
        data = loader.construct_document(root) if root is not None else None
    except yaml.YAMLError as e:
        return None, [_yaml_error(file, e)]
    except _Refused as e:
        return None, [ScenarioError(file, *_pos(e.mark), e.message)]
    finally:
        loader.dispose()
    return _Yaml(root, data, loader.aliases), dups


def _find(
    root: Node | None, path: Iterable[str | int], key: bool = False
) -> tuple[Node | None, bool]:
    """The node at ``path`` (or the key node of its last element), and whether the
    whole path was found (False: the deepest node found, e.g. a short-form scalar)."""
    node, whole, _ = _walk(root, path, key, {})
    return node, whole


def _walk(
    root: Node | None, path: Iterable[str | int], key: bool, aliases: dict[tuple[int, object], Mark]
) -> tuple[Node | None, bool, Mark | None]:
    """``_find``, and the first alias the path goes through (None: none): the node
    found is the anchor's, written elsewhere; the path is written at the alias."""
    node = root
    via: Mark | None = None
    path = list(path)
    for i, el in enumerate(path):
        last = i == len(path) - 1
        if isinstance(node, MappingNode):
            for k, v in reversed(node.value):  # the last duplicate wins, as in YAML
                if isinstance(k, ScalarNode) and k.value == str(el):
                    if key and last:
                        return k, True, via
                    via = via or aliases.get((id(node), id(k)))
                    node = v
                    break
            else:
                return node, False, via
        elif isinstance(node, SequenceNode) and isinstance(el, int) and 0 <= el < len(node.value):
            via = via or aliases.get((id(node), el))
            node = node.value[el]
        else:
            return node, False, via
    return node, True, via


def _where(
    doc: _Yaml, path: Iterable[str | int], key: bool = False
) -> tuple[Node | None, bool, tuple[int, int]]:
    """The node at ``path``, whether the whole path was found, and its line and column
    as written: an alias's when the path goes through one."""
    node, whole, via = _walk(doc.root, path, key, doc.aliases)
    if via is not None:
        return node, whole, _pos(via)
    return node, whole, (_pos(node) if node is not None else (0, 0))


def _errors_from_validation(file: str, doc: _Yaml, exc: ValidationError) -> list[ScenarioError]:
    out = []
    errs = exc.errors(include_url=False)
    for err in errs:
        if err["type"] == "missing" and misspelt(err, errs):
            continue  # the misspelling's own error says it: the first line is the typo's
        path, key, message, prefix = translate(err)
        _, whole, (line, col) = _where(doc, path, key)
        if prefix and whole and path and isinstance(path[-1], str) and model_at(path) is None:
            message = f"{path[-1]}: {message}"  # a field's value (not a whole mapping)
        out.append(ScenarioError(file, line, col, message))
    return out


def _errors_from_problems(file: str, doc: _Yaml, problems: list[Problem]) -> list[ScenarioError]:
    out = []
    for p in problems:
        _, _, (line, col) = _where(doc, p.loc, p.key)
        out.append(ScenarioError(file, line, col, p.message))
    return out


def _step_positions(doc: _Yaml) -> list[tuple[int, int]]:
    node, whole, _ = _where(doc, ["steps"])
    if not whole or not isinstance(node, SequenceNode):
        return []
    return [_where(doc, ["steps", i])[2] for i in range(len(node.value))]


# C0 and C1 controls but tab and line ends, and what YAML reads as a line break or refuses
# though Python and editors do not: NEL, U+2028/9 (their lines would be counted apart
# from the file's, every position after them off), U+FFFE/F (a ReaderError before any
# position: a traceback).
_CONTROL = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f\u2028\u2029\ufffe\uffff]")
# A YAML escape for a lone surrogate ("\ud800"): text no file or terminal can hold (the
# run failed writing it out). Control characters from escapes are each field's concern.
_ESCAPE = re.compile(r"(?<!\\)\\u[dD][89a-fA-F][0-9a-fA-F]{2}")
MAX_DEPTH = 100  # nesting of [ and { (YAML's flow style); deeper recursed out of the parser


def _at(text: str, i: int) -> tuple[int, int]:
    """The line and column of ``text[i]``."""
    return text.count("\n", 0, i) + 1, i - (text.rfind("\n", 0, i) + 1) + 1


def _screen(text: str, file: str) -> ScenarioError | None:
    """What the YAML parser and the models must never see: more text than a scenario
    needs (reading takes ~50 µs a value: 3 MB took 20 s and 440 MB to refuse), control
    characters (a NUL byte made a traceback), and nesting so deep their recursion
    fails."""
    if len(text) > MAX_CHARS:
        cut = text.rfind("\n", 0, MAX_CHARS) + 1
        return ScenarioError(
            file,
            *_at(text, cut),
            f"the file is {len(text)} characters, "
            f"more than a scenario may be ({MAX_CHARS}): it goes on past "
            "here",
        )
    long = long_number(text)
    if long is not None:
        return ScenarioError(file, *_at(text, long[0]), long[1])
    m = _ESCAPE.search(text)
    if m:
        return ScenarioError(
            file,
            *_at(text, m.start()),
            f"an escape ({m.group()}) for a lone surrogate: not a character a file can hold",
        )
    m = _CONTROL.search(text)
    if m:
        line = text.count("\n", 0, m.start()) + 1
        col = m.start() - (text.rfind("\n", 0, m.start()) + 1) + 1
        return ScenarioError(
            file, line, col, f"a control character ({m.group()!r}) in the file: scenarios are text"
        )
    depth = 0
    quote = ""
    for i, ch in enumerate(text):
        if quote:
            if ch == quote:
                quote = ""
        elif ch in "\"'":
            quote = ch
        elif ch in "[{":
            depth += 1
            if depth > MAX_DEPTH:
                line = text.count("\n", 0, i) + 1
                col = i - (text.rfind("\n", 0, i) + 1) + 1
                return ScenarioError(file, line, col, f"nesting deeper than {MAX_DEPTH} levels")
        elif ch in "]}":
            depth = max(depth - 1, 0)
        elif ch == "\n":
            quote = ""
    return None


def _check(text: str, file: str) -> tuple[Scenario | None, list[ScenarioError]]:
    bad = _screen(text, file)
    if bad is not None:
        return None, [bad]
    try:
        return _check_screened(text, file)
    except RecursionError:  # nesting by indentation the screen cannot count
        return None, [ScenarioError(file, 1, 1, "nesting too deep to read")]


def _check_screened(text: str, file: str) -> tuple[Scenario | None, list[ScenarioError]]:
    doc, errors = _parse_yaml(text, file)
    if doc is None:
        return None, errors
    if doc.root is None or doc.data is None:
        return None, [*errors, ScenarioError(file, 1, 1, "empty scenario file")]
    if not isinstance(doc.data, dict):
        line, col = _pos(doc.root)
        return None, [
            *errors,
            ScenarioError(
                file,
                line,
                col,
                f"a scenario is a mapping (name:, peer:, steps: ...), got {show(doc.data)}",
            ),
        ]
    problems: list[Problem] = []
    try:
        scenario = Scenario.model_validate(
            doc.data, context={"problems": problems, "step_positions": _step_positions(doc)}
        )
    except ValidationError as e:
        errors += _errors_from_validation(file, doc, e)
        scenario = None
    errors += _errors_from_problems(file, doc, problems)
    unique: dict[str, ScenarioError] = {}
    for error in sorted(errors, key=lambda err: (err.line, err.col)):
        unique.setdefault(str(error), error)
    return (scenario if not unique else None), list(unique.values())


# --- public API ---------------------------------------------------------------------


def validate_text(text: str, file: str = "<string>") -> list[ScenarioError]:
    """Every problem in a scenario given as text, in file order ([] if valid)."""
    return _check(text, file)[1]


def _read(path: str | Path) -> str:
    """The file's text; ``ScenarioError`` when it cannot be read, is not UTF-8 (at the
    first bad byte's line and column, in characters), or is too big. Only as much is read
    as can hold ``MAX_CHARS`` characters and one more: a 300 MB file is refused without
    300 MB of memory."""
    file = str(path)
    cap = 4 * MAX_CHARS + 4  # UTF-8 takes at most 4 bytes a character
    try:
        with open(path, "rb") as f:
            raw = f.read(cap + 1)
            size = os.fstat(f.fileno()).st_size
    except OSError as e:
        raise ScenarioError(file, 0, 0, f"cannot read: {e.strerror or e}") from None
    if len(raw) > cap:  # more than MAX_CHARS characters, whatever they are
        text = raw[:cap].decode("utf-8", "replace")
        cut = text.rfind("\n", 0, MAX_CHARS) + 1
        amount = f"{size} bytes" if size >= len(raw) else f"over {cap} bytes"  # a pipe
        raise ScenarioError(
            file,
            *_at(text, cut),
            f"the file is {amount}, more than a "
            f"scenario may be ({MAX_CHARS} characters): it goes on past here",
        )
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as e:
        start = raw.rfind(b"\n", 0, e.start) + 1
        line = raw.count(b"\n", 0, e.start) + 1
        col = len(raw[start : e.start].decode("utf-8")) + 1  # valid up to the bad byte
        raise ScenarioError(
            file, line, col, f"not UTF-8 text: byte {raw[e.start]:#04x} ({e.reason})"
        ) from None


def validate_file(path: str | Path) -> list[ScenarioError]:
    """Every problem in a scenario file, in file order ([] if valid)."""
    try:
        text = _read(path)
    except ScenarioError as e:
        return [e]
    return validate_text(text, str(path))


def load_scenario_text(text: str, file: str = "<string>") -> Scenario:
    scenario, errors = _check(text, file)
    if errors:
        first = errors[0]
        first.errors = [*errors]
        raise first
    assert scenario is not None
    return scenario


def load_scenario(path: str | Path) -> Scenario:
    """Parse and validate a scenario file; raises ``ScenarioError`` (the first problem,
    with ``.errors`` holding all of them)."""
    return load_scenario_text(_read(path), str(path))
