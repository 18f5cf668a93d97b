"""pydantic's validation errors in a scenario's words: which model sits at an error's
``loc`` (for its noun and a did-you-mean over its keys), and each error type a scenario
hits turned into the path to point at and our message.

Used by ``loader``, which finds the path's node in the YAML tree and makes the
``file:line:col: message``.
"""

from __future__ import annotations

import inspect
import re
import types
import typing
from collections.abc import Iterable
from typing import Any

from pydantic import BaseModel
from pydantic_core import ErrorDetails

from .fields import Strict
from .options import Options
from .schema import STEP_TYPES, Scenario, StepBase
from .units import did_you_mean, show

# --- which model sits at a loc (for nouns and did-you-mean) ----------------------


def _strip(t: Any) -> Any:
    while True:
        origin = typing.get_origin(t)
        if origin is typing.Annotated:
            t = typing.get_args(t)[0]
            continue
        if origin in (typing.Union, types.UnionType):
            args = [a for a in typing.get_args(t) if a is not type(None)]
            if len(args) == 1:
                t = args[0]
                continue
        return t


def _descend(t: Any, el: str | int) -> Any:
    t = _strip(t)
    if inspect.isclass(t) and issubclass(t, BaseModel):
        for name, f in t.model_fields.items():
            if el in (name, f.alias):
                return f.annotation
        return None
    origin = typing.get_origin(t)
    args = typing.get_args(t)
    if origin in (list, tuple) and args:
        return args[0]
    if origin is dict and len(args) == 2:
        return args[1]
    if isinstance(el, str) and el in STEP_TYPES:
        return STEP_TYPES[el]
    return None


def model_at(path: Iterable[str | int]) -> type[BaseModel] | None:
    t: Any = Scenario
    for el in path:
        t = _descend(t, el)
        if t is None:
            return None
    t = _strip(t)
    return t if inspect.isclass(t) and issubclass(t, BaseModel) else None


def _keys(model: type[BaseModel]) -> list[str]:
    return [f.alias or n for n, f in model.model_fields.items()]


def _unknown_key(model: type[BaseModel] | None, key: str) -> str:
    if model is None:
        return f"unknown key {show(key)}"
    names = _keys(model)
    hint = did_you_mean(key, names)
    if model is Scenario:
        return f"unknown top-level key {show(key)}{hint or ' (keys: ' + ', '.join(names) + ')'}"
    if model is Options:
        return (
            f"unknown option {show(key)}"
            f"{hint or ' (options are TcpConfig fields: ' + ', '.join(names) + ')'}"
        )
    if issubclass(model, StepBase):
        return (
            f"unknown argument {show(key)} for {model.ACTION}"
            f"{hint or ' (arguments: ' + ', '.join(names) + ')'}"
        )
    return f"unknown key {show(key)} in {_model_noun(model)}{hint}"


def _noun(model: type[BaseModel] | None) -> str:
    if model is None:
        return ""
    if model is Scenario:
        return " at the top level"
    if issubclass(model, StepBase):
        return f" in {model.ACTION}"
    return f" in {_model_noun(model)}"


def _model_noun(model: type[BaseModel]) -> str:
    """What a model's mapping is called in messages (``Strict.NOUN``)."""
    return model.NOUN if issubclass(model, Strict) else "mapping"


_KIND = {
    "int_type": "a whole number",
    "int_parsing": "a whole number",
    "int_from_float": "a whole number",
    "float_type": "a number",
    "float_parsing": "a number",
    "bool_type": "true or false",
    "bool_parsing": "true or false",
    "string_type": "a string",
    "dict_type": "a mapping",
    "model_type": "a mapping",
    "model_attributes_type": "a mapping",
    "list_type": "a list",
    "tuple_type": "a list",
    "set_type": "a list",
}
_BOUNDS = {
    "greater_than_equal": ("ge", "at least"),
    "greater_than": ("gt", "more than"),
    "less_than_equal": ("le", "at most"),
    "less_than": ("lt", "less than"),
}


def translate(err: ErrorDetails) -> tuple[tuple[str | int, ...], bool, str, bool]:
    """(path to point at, point at the key?, message, may prefix the field name?)"""
    loc: tuple[str | int, ...] = tuple(err["loc"])
    typ = err["type"]
    ctx = err.get("ctx") or {}
    value = err.get("input")
    key = False
    if loc and loc[-1] == "[key]":
        loc, key = loc[:-1], True
    if typ == "netemu":
        sub = tuple(ctx.get("sub") or ())
        key = bool(ctx.get("key"))
        return loc + sub, key, str(ctx.get("message")), not key
    if typ == "missing":
        return loc[:-1], False, f"missing '{loc[-1]}'{_noun(model_at(loc[:-1]))}", False
    if typ == "extra_forbidden":
        return loc, True, _unknown_key(model_at(loc[:-1]), str(loc[-1])), False
    if typ in _KIND:
        what = _KIND[typ]
        parent = model_at(loc)
        if (
            typ in ("model_type", "model_attributes_type", "dict_type")
            and parent is not None
            and issubclass(parent, StepBase)
        ):
            return (
                loc,
                key,
                (f"{parent.ACTION} takes a mapping of arguments, got {show(value)}"),
                False,
            )
        hint = (
            " (quote it to make it a string)"
            if typ == "string_type" and isinstance(value, int | float | bool)
            else ""
        )
        return loc, key, f"expected {what}, got {show(value)}{hint}", True
    if typ in _BOUNDS:
        name, words = _BOUNDS[typ]
        return loc, key, f"must be {words} {ctx.get(name)}, got {show(value)}", True
    if typ == "too_short":
        if ctx.get("min_length") == 1:
            return loc, key, "must not be empty", True
        return loc, key, f"needs at least {ctx.get('min_length')} items", True
    if typ in ("literal_error", "enum"):
        choices = re.findall(r"'([^']*)'", str(ctx.get("expected", "")))
        hint = did_you_mean(str(value), choices) if isinstance(value, str) else ""
        return loc, key, f"expected {ctx.get('expected')}, got {show(value)}{hint}", True
    msg = str(err.get("msg", typ))
    for prefix in ("Value error, ", "Assertion failed, "):
        msg = msg.removeprefix(prefix)
    return loc, key, msg.replace("Input should be", "should be"), True


def misspelt(missing: ErrorDetails, errs: list[ErrorDetails]) -> bool:
    """Whether a key unknown in the same mapping is the missing key misspelt (``stpes:``
    for ``steps:``): its error says "did you mean" the missing key."""
    parent, name = tuple(missing["loc"][:-1]), str(missing["loc"][-1])
    model = model_at(parent)
    keys = _keys(model) if model is not None else [name]
    return any(
        e["type"] == "extra_forbidden"
        and tuple(e["loc"][:-1]) == parent
        and did_you_mean(str(e["loc"][-1]), keys) == f" (did you mean '{name}'?)"
        for e in errs
    )
