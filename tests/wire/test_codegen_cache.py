"""The compiled-code cache of the generated decoders (netemu.wire._codegen.CodeCache)."""

from __future__ import annotations

import importlib.util
import marshal
import sys
from pathlib import Path

import pytest

from netemu.wire._codegen import CodeCache

SRC = "def f(x):\n    return x + K\n"


@pytest.fixture
def owner(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    monkeypatch.setattr(sys, "dont_write_bytecode", False)
    monkeypatch.setattr(sys, "pycache_prefix", None)
    path = tmp_path / "mod.py"
    path.write_text("")
    return str(path)


def _run(cache: CodeCache) -> int:
    ns: dict = {"K": 2}
    cache.exec(SRC, ns)
    return ns["f"](1)


def test_second_process_loads_the_compiled_code(owner: str) -> None:
    first = CodeCache(owner)
    assert _run(first) == 3 and first.changed
    first.save()
    assert Path(first.path).is_file() and not first.changed  # type: ignore[arg-type]
    second = CodeCache(owner)
    assert SRC in second.codes
    assert _run(second) == 3 and not second.changed  # nothing compiled, nothing to save


def test_other_python_or_corrupt_file_compiles_afresh(owner: str) -> None:
    cache = CodeCache(owner)
    _run(cache)
    cache.save()
    path = Path(cache.path)  # type: ignore[arg-type]
    path.write_bytes(marshal.dumps((b"\0\0\r\n", {SRC: compile("K = 0", "x", "exec")})))
    assert CodeCache(owner).codes == {}
    path.write_bytes(b"not marshal data")
    fresh = CodeCache(owner)
    assert fresh.codes == {} and _run(fresh) == 3


def test_stale_sources_are_dropped(owner: str) -> None:
    old = CodeCache(owner)
    old.exec("A = 1\n", {})
    old.save()
    new = CodeCache(owner)
    _run(new)
    new.save()
    assert list(CodeCache(owner).codes) == [SRC]


def test_nothing_written_without_bytecode(owner: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(sys, "dont_write_bytecode", True)
    cache = CodeCache(owner)
    _run(cache)
    cache.save()
    assert not Path(importlib.util.cache_from_source(owner)).parent.exists()


def test_the_wire_decoders_come_from_the_cache() -> None:
    from netemu.wire import frame, tcp

    assert frame.CODE_CACHE is tcp.CODE_CACHE
    # Every generated decoder was compiled through it (2 frame tables + option layouts).
    assert len(tcp.CODE_CACHE.used) >= 2 * len(tcp.OPTION_LAYOUTS)
    assert tcp.CODE_CACHE.codes == tcp.CODE_CACHE.used
