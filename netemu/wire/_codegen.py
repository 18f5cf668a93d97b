"""A helper for the generated fast-path decoders (tcp.py's option layouts and
frame.py's frame decoders).

A record is built as ``object.__new__`` plus one attribute store per dataclass
field, in field order: exactly what the dataclass ``__init__`` does, minus the
cost of ``type.__call__`` and of an ``__init__`` frame per record (about a
quarter of a whole frame's parse on CPython 3.11). A class whose ``__init__`` is
not the one ``dataclasses`` wrote, or that has a ``__post_init__``, is built by
calling it, so the shortcut never skips logic of its own.
"""

from __future__ import annotations

import contextlib
import dataclasses
import importlib.util
import marshal
import os
import sys
import types


def plain_dataclass(cls: type) -> bool:
    """True when ``cls(*values)`` only stores each value in its field, in order
    (a frozen class's instances take no stores after ``__init__``)."""
    init = cls.__dict__.get("__init__")
    return (dataclasses.is_dataclass(cls) and not hasattr(cls, "__post_init__")
            and not cls.__dataclass_params__.frozen  # type: ignore[attr-defined]
            and getattr(getattr(init, "__code__", None), "co_filename", "") == "<string>")


def record(var: str, cls: type, args: list[str] | tuple[str, ...]) -> list[str]:
    """Source lines binding ``var`` to the equivalent of ``cls(*args)``; the code
    needs ``_new`` (``object.__new__``) and ``cls`` under its own name."""
    fields = [f.name for f in dataclasses.fields(cls)]
    if len(args) != len(fields):
        raise TypeError(f"{cls.__name__} has {len(fields)} fields, got {len(args)} values")
    if not plain_dataclass(cls):
        return [f"{var} = {cls.__name__}({', '.join(args)})"]
    return [f"{var} = _new({cls.__name__})",
            *(f"{var}.{field} = {arg}" for field, arg in zip(fields, args, strict=True))]


class CodeCache:
    """The compiled code of a module's generated sources, kept from run to run
    beside the module's own bytecode (``__pycache__``, or ``sys.pycache_prefix``):
    compiling the decoders took ~8 ms of every process that imports netemu.wire,
    loading them from here takes a fraction of one. Keyed by the source text, and
    stamped with the interpreter's bytecode magic, so a changed generator or
    Python simply compiles afresh; unreadable or unwritable caches are ignored, and nothing is
    written when Python writes no bytecode (``PYTHONDONTWRITEBYTECODE``)."""

    def __init__(self, owner_file: str) -> None:
        try:
            self.path: str | None = importlib.util.cache_from_source(owner_file)[:-4] + ".gen"
        except (NotImplementedError, ValueError):
            self.path = None
        self.codes: dict[str, types.CodeType] = {}  # source -> its code, as loaded
        self.used: dict[str, types.CodeType] = {}  # ... as this process executed them
        if self.path is not None:
            try:
                with open(self.path, "rb") as f:
                    magic, codes = marshal.load(f)
                if magic == importlib.util.MAGIC_NUMBER and isinstance(codes, dict):
                    self.codes = codes
            except (OSError, EOFError, ValueError, TypeError):
                pass

    def exec(self, src: str, namespace: dict) -> None:
        """``exec(src, namespace)``, compiled once."""
        code = self.codes.get(src)
        if code is None:
            code = compile(src, "<netemu generated>", "exec")
        self.used[src] = code
        exec(code, namespace)

    @property
    def changed(self) -> bool:
        """A source was compiled, or one loaded was not used (stale)."""
        return self.used.keys() != self.codes.keys()

    def save(self) -> None:
        """Write the sources used by this process if they are not what was loaded
        (atomically: concurrent runs race)."""
        if not self.changed:
            return
        self.codes = self.used.copy()
        if self.path is None or sys.dont_write_bytecode:
            return
        tmp = f"{self.path}.{os.getpid()}.tmp"
        try:
            os.makedirs(os.path.dirname(self.path), exist_ok=True)
            with open(tmp, "wb") as f:
                marshal.dump((importlib.util.MAGIC_NUMBER, self.codes), f)
            os.replace(tmp, self.path)
        except OSError:
            with contextlib.suppress(OSError):
                os.unlink(tmp)
