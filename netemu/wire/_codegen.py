"""Helpers for the generated fast-path decoders (tcp.py's option layouts and
frame.py's frame decoders). Like all of netemu.wire, it does no I/O: the code is
generated, and compiled in memory when a layout is first met (``lazy``).

A record is built as ``object.__new__`` plus one attribute store per dataclass
field, in field order: exactly what the dataclass ``__init__`` does, minus the
cost of ``type.__call__`` and of an ``__init__`` frame per record (about a
quarter of a whole frame's parse on CPython 3.11). A class whose ``__init__`` is
not the one ``dataclasses`` wrote, or that has a ``__post_init__``, is built by
calling it, so the shortcut never skips logic of its own.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from types import CodeType
from typing import Any, Protocol, TypeVar, cast

K = TypeVar("K", contravariant=True)
D = TypeVar("D", bound=Callable[..., object])


class _Table(Protocol[K]):
    """Where decoders are looked up: a list by data offset, a dict by option length."""

    def __setitem__(self, key: K, value: Any, /) -> None: ...


def plain_dataclass(cls: type) -> bool:
    """True when ``cls(*values)`` only stores each value in its field, in order
    (a frozen class's instances take no stores after ``__init__``)."""
    init = cls.__dict__.get("__init__")
    return (
        dataclasses.is_dataclass(cls)
        and not hasattr(cls, "__post_init__")
        and not cls.__dataclass_params__.frozen  # type: ignore[attr-defined]
        and getattr(getattr(init, "__code__", None), "co_filename", "") == "<string>"
    )


def record(var: str, cls: type, args: list[str] | tuple[str, ...]) -> list[str]:
    """Source lines binding ``var`` to the equivalent of ``cls(*args)``; the code
    needs ``_new`` (``object.__new__``) and ``cls`` under its own name."""
    fields = [f.name for f in dataclasses.fields(cls)]
    if len(args) != len(fields):
        raise TypeError(f"{cls.__name__} has {len(fields)} fields, got {len(args)} values")
    if not plain_dataclass(cls):
        return [f"{var} = {cls.__name__}({', '.join(args)})"]
    return [
        f"{var} = _new({cls.__name__})",
        *(f"{var}.{field} = {arg}" for field, arg in zip(fields, args, strict=True)),
    ]


# Compiled code of generated sources, by source: what a caller above netemu.wire gave
# (``CODE``, filled from a cache of its own: netemu.run.codecache) and what ``define``
# compiled since (``COMPILED``, for that caller to keep). netemu.wire itself opens no
# file (it once kept the decoders' code beside its bytecode).
CODE: dict[str, CodeType] = {}
COMPILED: dict[str, CodeType] = {}


def define(src: str, namespace: dict[str, object], name: str) -> object:
    """Run the generated ``src`` in ``namespace``; return what it binds to ``name``.
    Compiled in memory when first needed (see ``lazy``), unless ``CODE`` has it."""
    code = CODE.get(src)
    if code is None:
        code = COMPILED[src] = compile(src, "<netemu generated>", "exec")
    exec(code, namespace)
    return namespace[name]


def lazy(table: _Table[K], key: K, build: Callable[[], tuple[D, ...]]) -> tuple[D, ...]:
    """A placeholder for ``table[key]``, a tuple of decoders tried in order (each
    returns None for what is not its layout): on its first call it builds the real
    tuple, puts it in its place, and decodes with it. Compiling all 64 decoders took
    ~6 ms of every start-up (more than the rest of netemu.wire's import), while a run
    meets a handful of layouts; after the first frame of a layout it costs nothing."""

    def first(*args: Any) -> Any:
        table[key] = decoders = build()
        for decode in decoders:
            got = decode(*args)
            if got is not None:
                return got
        return None

    return (cast(D, first),)
