"""A small validation engine with pydantic's spelling, just what ``schema.py`` uses.

``schema.py`` declares the scenario format once, as annotated model classes
(``Field``, ``Annotated[..., PlainValidator(...)]``, ``model_validator`` ...). This
module turns those declarations into validators, ``model_dump`` and a JSON Schema.
It exists so that ``netemu run`` does not import pydantic: importing it and
building the scenario models cost ~130 ms of every run, more than the rest of a
trivial run together.

What it implements, as pydantic 2 does for these models (strict, ``extra='forbid'``):

- fields in reversed-MRO order; a missing required field is a ``missing`` error,
  an unknown key an ``extra_forbidden`` one; aliases (``populate_by_name``);
- ``model_validator(mode='before')`` (the subclass's first) and ``'after'`` (the
  base's first), ``field_validator(..., mode='before')``, ``ValidationInfo.context``;
- ``Annotated`` metadata applied in order (``PlainValidator`` replaces the type's
  validation, ``BeforeValidator`` runs before it), ``Field(strict=, min_length=)``;
- ``X | None``, ``list``, ``dict``, ``Literal``, enums (by value), ``str``, ``bool``,
  ``int``, ``float``, ``Any``, nested models, and a union with a callable
  ``Discriminator`` and ``Tag``-ged members (the location gets the tag);
- errors as pydantic's ``ValidationError.errors()`` dicts (``type``, ``loc``,
  ``msg``, ``input``, ``ctx``), which the loader turns into ``file:line:col`` messages;
- ``model_dump`` (``PlainSerializer``, ``exclude_none``/``exclude_defaults``,
  ``by_alias``, ``mode='json'``), ``model_construct``, ``model_copy``,
  ``model_fields``, ``model_fields_set``, ``model_json_schema``.

Validators are built per model on first use, not at import.
"""

from __future__ import annotations

import contextlib
import enum
import types
import typing
from collections.abc import Callable
from typing import Any, ClassVar, Literal, Union

__all__ = [
    "BaseModel",
    "BeforeValidator",
    "ConfigDict",
    "CustomError",
    "Discriminator",
    "Field",
    "FieldInfo",
    "PlainSerializer",
    "PlainValidator",
    "PrivateAttr",
    "Record",
    "Tag",
    "TypeAdapter",
    "ValidationError",
    "ValidationInfo",
    "WithJsonSchema",
    "create_model",
    "field_validator",
    "model_validator",
]



class Record:
    """A small immutable value: ``_names`` are its fields, in order (and its
    ``__slots__``), and
    ``_defaults`` gives the optional ones. Equality, hash and repr as a frozen,
    slotted dataclass has them, without what the dataclass decorator costs at import
    (~0.7 ms a class here: generated code compiled, then a second class for the
    slots), which a dozen such classes on the `netemu run` path made worth avoiding."""

    __slots__ = ()
    _names: ClassVar[tuple[str, ...]] = ()  # the fields, in order (the subclass's __slots__)
    _defaults: ClassVar[dict[str, Any]] = {}

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        names = self._names
        if len(args) > len(names):
            raise TypeError(f"{type(self).__name__}() takes {len(names)} arguments")
        for name, value in zip(names, args, strict=False):
            object.__setattr__(self, name, value)
        for name in names[len(args):]:
            if name in kwargs:
                value = kwargs.pop(name)
            elif name in self._defaults:
                value = self._defaults[name]
            else:
                raise TypeError(f"{type(self).__name__}() missing argument {name!r}")
            object.__setattr__(self, name, value)
        if kwargs:
            raise TypeError(f"{type(self).__name__}() got unexpected {', '.join(kwargs)}")

    def _values(self) -> tuple[Any, ...]:
        return tuple(getattr(self, n) for n in self._names)

    def __setattr__(self, name: str, value: Any) -> None:
        raise AttributeError(f"cannot assign to field {name!r}")

    def __delattr__(self, name: str) -> None:
        raise AttributeError(f"cannot delete field {name!r}")

    def __eq__(self, other: object) -> bool:
        if other.__class__ is not self.__class__:
            return NotImplemented
        return self._values() == other._values()  # type: ignore[attr-defined]

    def __hash__(self) -> int:
        return hash(self._values())

    def __repr__(self) -> str:
        return (f"{type(self).__qualname__}("
                + ", ".join(f"{n}={getattr(self, n)!r}" for n in self._names) + ")")

    def __reduce__(self) -> tuple[Any, ...]:
        return type(self), self._values()


Loc = tuple[Any, ...]
Validator = Callable[[Any, Loc, Any], Any]  # (value, location, context) -> value

_NONE = type(None)
_UNSET: Any = object()

# --- errors ------------------------------------------------------------------------


class CustomError(ValueError):
    """A validation error with its own type and message (pydantic's PydanticCustomError):
    ``message_template`` is formatted with ``context``."""

    def __init__(self, error_type: str, message_template: str,
                 context: dict[str, Any] | None = None) -> None:
        self.error_type = error_type
        self.message_template = message_template
        self.context = context
        super().__init__(self.message())

    def message(self) -> str:
        return self.message_template.format(**(self.context or {}))


class ValidationError(ValueError):
    """Every problem found while validating one model or type."""

    def __init__(self, errors: list[dict[str, Any]], title: str) -> None:
        self._errors = errors
        self.title = title
        super().__init__(str(self))

    def errors(self, include_url: bool = False) -> list[dict[str, Any]]:
        return [dict(e) for e in self._errors]

    def error_count(self) -> int:
        return len(self._errors)

    def __str__(self) -> str:
        n = len(self._errors)
        lines = [f"{n} validation error{'s' if n != 1 else ''} for {self.title}"]
        for e in self._errors:
            lines.append(".".join(map(str, e["loc"])) or self.title)
            lines.append(f"  {e['msg']} [type={e['type']}]")
        return "\n".join(lines)


class _Invalid(Exception):
    """Raised inside validation: the errors found so far, with absolute locations."""

    def __init__(self, errors: list[dict[str, Any]]) -> None:
        self.errors = errors


def _error(typ: str, loc: Loc, msg: str, value: Any, ctx: dict[str, Any] | None = None
           ) -> _Invalid:
    err: dict[str, Any] = {"type": typ, "loc": loc, "msg": msg, "input": value}
    if ctx is not None:
        err["ctx"] = ctx
    return _Invalid([err])


def _from_exception(e: Exception, loc: Loc, value: Any) -> _Invalid:
    """An exception raised by a validator function, as pydantic reports it."""
    if isinstance(e, _Invalid):
        return e
    if isinstance(e, CustomError):
        return _error(e.error_type, loc, e.message(), value, e.context)
    if isinstance(e, AssertionError):
        return _error("assertion_error", loc, f"Assertion failed, {e}", value,
                      {"error": str(e)})
    return _error("value_error", loc, f"Value error, {e}", value, {"error": str(e)})


# --- the declarations schema.py writes --------------------------------------------------


def ConfigDict(**kwargs: Any) -> dict[str, Any]:  # pydantic's spelling
    return dict(kwargs)


class PlainValidator(Record):
    """``Annotated`` metadata: ``func(value)`` is the whole validation."""

    _names = ("func",)
    __slots__ = _names
    func: Callable[[Any], Any]


class BeforeValidator(Record):
    """``Annotated`` metadata: ``func(value)`` runs before the type's validation."""

    _names = ("func",)
    __slots__ = _names
    func: Callable[[Any], Any]


class PlainSerializer(Record):
    """``Annotated`` metadata: ``func(value)`` is what ``model_dump`` gives."""

    _names = ("func",)
    __slots__ = _names
    func: Callable[[Any], Any]


class WithJsonSchema(Record):
    """The JSON Schema of a type; a callable is called when the schema is made."""

    _names = ("json_schema",)
    __slots__ = _names
    json_schema: dict[str, Any] | Callable[[], dict[str, Any]]
    __eq__ = object.__eq__  # hashable whatever it holds: typing hashes Annotated metadata
    __hash__ = object.__hash__

    def get(self) -> dict[str, Any]:
        s = self.json_schema
        return s() if callable(s) else _copy(s)  # type: ignore[no-any-return]


class Tag(Record):
    """Names a member of a discriminated union."""

    _names = ("tag",)
    __slots__ = _names
    tag: str


class Discriminator(Record):
    """``discriminator(value)``: the tag of the union member that validates ``value``."""

    _names = ("discriminator",)
    __slots__ = _names
    discriminator: Callable[[Any], str | None]


class FieldInfo:
    """One field: what ``Field(...)`` says, plus its annotation once the model is built."""

    __slots__ = ("alias", "annotation", "default", "default_factory", "description",
                 "min_length", "name", "strict")

    def __init__(self, default: Any = _UNSET, *, default_factory: Callable[[], Any] | None
                 = None, alias: str | None = None, description: str | None = None,
                 strict: bool | None = None, min_length: int | None = None) -> None:
        self.default = default
        self.default_factory = default_factory
        self.alias = alias
        self.description = description
        self.strict = strict
        self.min_length = min_length
        self.annotation: Any = None
        self.name = ""

    def is_required(self) -> bool:
        return self.default is _UNSET and self.default_factory is None

    def get_default(self) -> Any:
        if self.default_factory is not None:
            return self.default_factory()
        return self.default

    def __repr__(self) -> str:
        return f"FieldInfo({self.name!r}, required={self.is_required()})"


def Field(default: Any = _UNSET, **kwargs: Any) -> Any:
    return FieldInfo(default, **kwargs)


class PrivateAttr:
    def __init__(self, default: Any = None) -> None:
        self.default = default


class _Decorated(Record):
    """A validator method: ``kind`` is "before", "after" or "field"."""

    _names = ("kind", "func", "fields", "with_info")
    __slots__ = _names
    _defaults: ClassVar[dict[str, Any]] = {"fields": (), "with_info": False}
    kind: str
    func: Any
    fields: tuple[str, ...]
    with_info: bool

    def __get__(self, obj: Any, cls: Any = None) -> Any:  # still callable as a method
        return self.func.__get__(obj, cls)


def _argcount(func: Any) -> int:
    f = getattr(func, "__func__", func)
    return int(f.__code__.co_argcount)


def model_validator(*, mode: str) -> Callable[[Any], Any]:
    def deco(func: Any) -> _Decorated:
        n = _argcount(func)  # before: (cls, data[, info]); after: (self[, info])
        return _Decorated(mode, func, with_info=n >= (3 if mode == "before" else 2))

    return deco


def field_validator(*names: str, mode: str = "after") -> Callable[[Any], Any]:
    if mode != "before":
        raise NotImplementedError("field_validator: only mode='before' is supported")

    def deco(func: Any) -> _Decorated:
        return _Decorated("field", func, names, with_info=_argcount(func) >= 3)

    return deco


class ValidationInfo:
    _names = ("context",)
    __slots__ = _names

    def __init__(self, context: Any) -> None:
        self.context = context


# --- validators of types ----------------------------------------------------------------

_STRICT_TYPES = {str: ("string_type", "Input should be a valid string"),
                 bool: ("bool_type", "Input should be a valid boolean"),
                 int: ("int_type", "Input should be a valid integer"),
                 float: ("float_type", "Input should be a valid number")}


def _scalar(tp: type, strict: bool) -> Validator:
    typ, msg = _STRICT_TYPES[tp]

    if tp is str:
        def v_str(value: Any, loc: Loc, ctx: Any) -> Any:
            if isinstance(value, str):
                return value
            raise _error(typ, loc, msg, value)
        return v_str
    if tp is bool:
        def v_bool(value: Any, loc: Loc, ctx: Any) -> Any:
            if isinstance(value, bool):
                return value
            if not strict and value in (0, 1) and not isinstance(value, float):
                return bool(value)
            raise _error(typ, loc, msg, value)
        return v_bool
    if tp is int:
        def v_int(value: Any, loc: Loc, ctx: Any) -> Any:
            if isinstance(value, int) and not isinstance(value, bool):
                return value
            if not strict and isinstance(value, float) and value.is_integer():
                return int(value)
            raise _error(typ, loc, msg, value)
        return v_int

    def v_float(value: Any, loc: Loc, ctx: Any) -> Any:
        if isinstance(value, float):
            return value
        if isinstance(value, int) and not isinstance(value, bool):
            return float(value)
        if not strict and isinstance(value, str):
            try:
                return float(value)
            except ValueError:
                raise _error("float_parsing", loc, "Input should be a valid number, "
                             "unable to parse string as a number", value) from None
        raise _error(typ, loc, msg, value)
    return v_float


def _expected(values: list[Any]) -> str:
    r = [repr(v) for v in values]
    return r[0] if len(r) == 1 else ", ".join(r[:-1]) + " or " + r[-1]


def _literal(values: tuple[Any, ...]) -> Validator:
    expected = _expected(list(values))

    def v_literal(value: Any, loc: Loc, ctx: Any) -> Any:
        for choice in values:
            if value == choice and type(value) is type(choice):
                return choice
        raise _error("literal_error", loc, f"Input should be {expected}", value,
                     {"expected": expected})
    return v_literal


def _enum(cls: type[enum.Enum], strict: bool) -> Validator:
    expected = _expected([m.value for m in cls])

    def v_enum(value: Any, loc: Loc, ctx: Any) -> Any:
        if isinstance(value, cls):
            return value
        if not strict:
            try:
                return cls(value)
            except ValueError:
                pass
        raise _error("enum", loc, f"Input should be {expected}", value, {"expected": expected})
    return v_enum


def _nullable(inner: Validator) -> Validator:
    def v_nullable(value: Any, loc: Loc, ctx: Any) -> Any:
        return None if value is None else inner(value, loc, ctx)
    return v_nullable


def _list(item: Validator, min_length: int | None) -> Validator:
    def v_list(value: Any, loc: Loc, ctx: Any) -> Any:
        if not isinstance(value, list):
            raise _error("list_type", loc, "Input should be a valid list", value)
        out = []
        errors: list[dict[str, Any]] = []
        for i, x in enumerate(value):
            try:
                out.append(item(x, (*loc, i), ctx))
            except _Invalid as e:
                errors += e.errors
        if errors:
            raise _Invalid(errors)
        if min_length is not None and len(out) < min_length:
            raise _error("too_short", loc, f"List should have at least {min_length} item"
                         f"{'s' if min_length != 1 else ''} after validation, not {len(out)}",
                         value, {"field_type": "List", "min_length": min_length,
                                 "actual_length": len(out)})
        return out
    return v_list


def _dict(key: Validator, val: Validator) -> Validator:
    def v_dict(value: Any, loc: Loc, ctx: Any) -> Any:
        if not isinstance(value, dict):
            raise _error("dict_type", loc, "Input should be a valid dictionary", value)
        out = {}
        errors: list[dict[str, Any]] = []
        for k, x in value.items():
            try:
                k2 = key(k, (*loc, k, "[key]"), ctx)
            except _Invalid as e:
                errors += e.errors
                k2 = _UNSET
            try:
                x2 = val(x, (*loc, k), ctx)
            except _Invalid as e:
                errors += e.errors
                continue
            if k2 is not _UNSET:
                out[k2] = x2
        if errors:
            raise _Invalid(errors)
        return out
    return v_dict


def _any(value: Any, loc: Loc, ctx: Any) -> Any:
    return value


def _plain(func: Callable[[Any], Any]) -> Validator:
    def v_plain(value: Any, loc: Loc, ctx: Any) -> Any:
        try:
            return func(value)
        except (ValueError, AssertionError) as e:
            raise _from_exception(e, loc, value) from None
    return v_plain


def _before(func: Callable[[Any], Any], inner: Validator) -> Validator:
    def v_before(value: Any, loc: Loc, ctx: Any) -> Any:
        try:
            value = func(value)
        except (ValueError, AssertionError) as e:
            raise _from_exception(e, loc, value) from None
        return inner(value, loc, ctx)
    return v_before


def _model(cls: type[BaseModel]) -> Validator:
    def v_model(value: Any, loc: Loc, ctx: Any) -> Any:
        return cls._validate(value, loc, ctx)
    return v_model


def _tagged_union(members: tuple[Any, ...], disc: Discriminator) -> Validator:
    choices: dict[str, Any] = {}
    for m in members:
        tag = next((x.tag for x in _metadata(m) if isinstance(x, Tag)), None)
        if tag is None:
            raise TypeError("every member of a discriminated union needs a Tag")
        choices[tag] = m
    compiled: dict[str, Validator] = {}

    def v_union(value: Any, loc: Loc, ctx: Any) -> Any:
        tag = disc.discriminator(value)
        if tag is None:
            raise _error("union_tag_not_found", loc, "Unable to extract tag using "
                         "discriminator", value, {"discriminator": "tag"})
        if tag not in choices:
            expected = _expected(list(choices))
            raise _error("union_tag_invalid", loc, f"Input tag {tag!r} found using "
                         f"discriminator does not match any of the expected tags: {expected}",
                         value, {"discriminator": "tag", "tag": tag, "expected_tags": expected})
        v = compiled.get(tag)
        if v is None:
            v = compiled[tag] = compile_type(choices[tag])
        return v(value, (*loc, tag), ctx)
    return v_union


def _metadata(tp: Any) -> tuple[Any, ...]:
    return tuple(getattr(tp, "__metadata__", ())) if typing.get_origin(tp) is typing.Annotated \
        else ()


def _split(tp: Any) -> tuple[Any, tuple[Any, ...]]:
    """(the base type, its Annotated metadata), nested Annotated flattened."""
    meta: tuple[Any, ...] = ()
    while typing.get_origin(tp) is typing.Annotated:
        meta = tuple(tp.__metadata__) + meta
        tp = tp.__origin__
    return tp, meta


def compile_type(tp: Any, strict: bool = True) -> Validator:
    """The validator of one annotation."""
    base, meta = _split(tp)
    for m in meta:
        if isinstance(m, FieldInfo) and m.strict is not None:
            strict = m.strict
    min_length = next((m.min_length for m in meta if isinstance(m, FieldInfo)
                       and m.min_length is not None), None)
    disc = next((m for m in meta if isinstance(m, Discriminator)), None)
    v: Validator | None = None
    if not any(isinstance(m, PlainValidator) for m in meta):
        v = _compile_base(base, strict, min_length, disc)
    for m in meta:
        if isinstance(m, PlainValidator):
            v = _plain(m.func)
        elif isinstance(m, BeforeValidator):
            assert v is not None
            v = _before(m.func, v)
    assert v is not None
    return v


def _compile_base(tp: Any, strict: bool, min_length: int | None,
                  disc: Discriminator | None) -> Validator:
    origin = typing.get_origin(tp)
    args = typing.get_args(tp)
    if tp is Any:
        return _any
    if tp is None or tp is _NONE:
        def v_none(value: Any, loc: Loc, ctx: Any) -> Any:
            if value is None:
                return None
            raise _error("none_required", loc, "Input should be None", value)
        return v_none
    if origin in (Union, types.UnionType):
        if disc is not None:
            return _tagged_union(args, disc)
        rest = [a for a in args if a is not _NONE]
        if len(rest) == 1 and len(rest) < len(args):
            return _nullable(compile_type(rest[0], strict))
        raise TypeError(f"unsupported union {tp!r}: use a PlainValidator")
    if origin is Literal:
        return _literal(args)
    if origin is list:
        return _list(compile_type(args[0], strict) if args else _any, min_length)
    if origin is dict:
        return _dict(compile_type(args[0], strict), compile_type(args[1], strict))
    if tp in _STRICT_TYPES:
        return _scalar(tp, strict)
    if isinstance(tp, type) and issubclass(tp, BaseModel):
        return _model(tp)
    if isinstance(tp, type) and issubclass(tp, enum.Enum):
        return _enum(tp, strict)
    raise TypeError(f"unsupported type {tp!r}")


class TypeAdapter:
    """Validation of one annotation outside a model (pydantic's TypeAdapter)."""

    def __init__(self, tp: Any) -> None:
        self.type = tp
        self._v = compile_type(tp)

    def validate_python(self, value: Any, context: Any = None) -> Any:
        try:
            return self._v(value, (), context)
        except _Invalid as e:
            raise ValidationError(e.errors, str(self.type)) from None

    def json_schema(self) -> dict[str, Any]:
        defs: dict[str, Any] = {}
        out = _type_schema(self.type, defs)
        return {**out, "$defs": defs} if defs else out


# --- models -----------------------------------------------------------------------------


class _Built:
    """A model class's fields and validators, made on first use."""

    __slots__ = ("after", "before", "config", "field_before", "fields", "private",
                 "serializers", "validators")

    def __init__(self, cls: type[BaseModel]) -> None:
        self.config: dict[str, Any] = {}
        for klass in reversed(cls.__mro__):
            self.config.update(klass.__dict__.get("model_config") or {})
        hints = typing.get_type_hints(cls, include_extras=True)
        self.fields: dict[str, FieldInfo] = {}
        self.private: dict[str, Any] = {}
        by_name: dict[str, _Decorated] = {}  # a subclass's validator replaces its base's
        for klass in reversed(cls.__mro__):
            for name, value in klass.__dict__.items():
                if isinstance(value, _Decorated):
                    by_name[name] = value
        decorated = list(by_name.values())
        for name, hint in hints.items():
            if typing.get_origin(hint) is ClassVar or name.startswith("__"):
                continue
            raw = _class_default(cls, name)
            if name.startswith("_"):
                self.private[name] = raw.default if isinstance(raw, PrivateAttr) else raw
                continue
            if isinstance(raw, FieldInfo):
                info = FieldInfo(raw.default, default_factory=raw.default_factory,
                                 alias=raw.alias, description=raw.description,
                                 strict=raw.strict, min_length=raw.min_length)
            else:
                info = FieldInfo(raw)
            info.name = name
            info.annotation = hint
            self.fields[name] = info
        self.before = [d for d in decorated if d.kind == "before"][::-1]  # the last one first
        self.after = [d for d in decorated if d.kind == "after"]
        self.field_before = {n: [d for d in decorated if d.kind == "field" and n in d.fields]
                             for n in self.fields}
        strict = bool(self.config.get("strict", False))
        self.validators: dict[str, Validator] = {}
        self.serializers: dict[str, tuple[Callable[[Any], Any] | None, bool]] = {}
        for name, info in self.fields.items():
            tp = info.annotation
            if info.strict is not None or info.min_length is not None:
                tp = typing.Annotated[tp, FieldInfo(strict=info.strict,
                                                    min_length=info.min_length)]
            self.validators[name] = compile_type(tp, strict)
            self.serializers[name] = _serializer(info.annotation)


def _class_default(cls: type, name: str) -> Any:
    for klass in cls.__mro__:
        if name in klass.__dict__:
            return klass.__dict__[name]
    return _UNSET


def _serializer(tp: Any) -> tuple[Callable[[Any], Any] | None, bool]:
    """A field's PlainSerializer, and whether it also serializes None (it does unless
    it sits inside ``X | None``)."""
    base, meta = _split(tp)
    ser = [m.func for m in meta if isinstance(m, PlainSerializer)]
    if ser:
        return ser[-1], True
    if typing.get_origin(base) in (Union, types.UnionType):
        rest = [a for a in typing.get_args(base) if a is not _NONE]
        if len(rest) == 1:
            ser = [m.func for m in _split(rest[0])[1] if isinstance(m, PlainSerializer)]
            if ser:
                return ser[-1], False
    return None, False


class _ModelFields:
    def __get__(self, obj: Any, cls: type[BaseModel]) -> dict[str, FieldInfo]:
        return cls._built().fields


class BaseModel:
    """Base of every model: instances hold their fields as attributes."""

    model_config: ClassVar[dict[str, Any]] = {}
    model_fields: ClassVar[dict[str, FieldInfo]] = _ModelFields()  # type: ignore[assignment]
    __netemu_built__: ClassVar[_Built | None] = None

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        cls.__netemu_built__ = None

    @classmethod
    def _built(cls) -> _Built:
        b = cls.__dict__.get("__netemu_built__")
        if b is None:
            b = _Built(cls)
            cls.__netemu_built__ = b
        return b

    # -- validation

    @classmethod
    def model_validate(cls, obj: Any, *, context: Any = None) -> Any:
        try:
            return cls._validate(obj, (), context)
        except _Invalid as e:
            raise ValidationError(e.errors, cls.__name__) from None

    @classmethod
    def _validate(cls, data: Any, loc: Loc, ctx: Any) -> Any:
        b = cls._built()
        info = ValidationInfo(ctx)
        for d in b.before:
            try:
                data = (d.func.__func__(cls, data, info) if d.with_info
                        else d.func.__func__(cls, data))
            except (ValueError, AssertionError) as e:
                raise _from_exception(e, loc, data) from None
        if isinstance(data, cls):
            return data
        if not isinstance(data, dict):
            raise _error("model_type", loc, f"Input should be a valid dictionary or instance "
                         f"of {cls.__name__}", data, {"class_name": cls.__name__})
        values: dict[str, Any] = {}
        given: set[str] = set()
        errors: list[dict[str, Any]] = []
        used: set[Any] = set()
        for name, f in b.fields.items():
            key: Any = _UNSET
            if f.alias is not None and f.alias in data:
                key = f.alias
            elif name in data and (f.alias is None or b.config.get("populate_by_name")):
                key = name
            if key is _UNSET:
                if f.is_required():
                    errors.append({"type": "missing", "loc": (*loc, f.alias or name),
                                   "msg": "Field required", "input": data})
                else:
                    values[name] = f.get_default()
                continue
            used.add(key)
            value = data[key]
            at = (*loc, key)
            try:
                for d in b.field_before[name]:
                    try:
                        value = (d.func.__func__(cls, value, info) if d.with_info
                                 else d.func.__func__(cls, value))
                    except (ValueError, AssertionError) as e:
                        raise _from_exception(e, at, value) from None
                values[name] = b.validators[name](value, at, ctx)
                given.add(name)
            except _Invalid as e:
                errors += e.errors
        if b.config.get("extra") == "forbid":
            for key, value in data.items():
                if key not in used:
                    errors.append({"type": "extra_forbidden", "loc": (*loc, key),
                                   "msg": "Extra inputs are not permitted", "input": value})
        if errors:
            raise _Invalid(errors)
        obj = cls.__new__(cls)
        d = obj.__dict__
        d.update(values)
        d.update(b.private)
        d["__netemu_fields_set__"] = given
        for dec in b.after:
            try:
                obj = dec.func(obj, info) if dec.with_info else dec.func(obj)
            except (ValueError, AssertionError) as e:
                raise _from_exception(e, loc, data) from None
        return obj

    @classmethod
    def model_construct(cls, _fields_set: set[str] | None = None, **values: Any) -> Any:
        b = cls._built()
        obj = cls.__new__(cls)
        d = obj.__dict__
        for name, f in b.fields.items():
            if name in values:
                d[name] = values[name]
            elif f.alias is not None and f.alias in values:
                d[name] = values[f.alias]
            elif not f.is_required():
                d[name] = f.get_default()
        d.update(b.private)
        d["__netemu_fields_set__"] = (set(_fields_set) if _fields_set is not None
                                      else {n for n in b.fields if n in values})
        return obj

    def __init__(self, **data: Any) -> None:
        other = type(self).model_validate(data)
        self.__dict__.update(other.__dict__)

    # -- the instance

    def __setattr__(self, name: str, value: Any) -> None:
        # as pydantic: assigning a field counts it as set
        if name in type(self)._built().fields:
            self.model_fields_set.add(name)
        object.__setattr__(self, name, value)

    @property
    def model_fields_set(self) -> set[str]:
        return self.__dict__.setdefault("__netemu_fields_set__", set())  # type: ignore[no-any-return]

    def model_copy(self, *, update: dict[str, Any] | None = None) -> Any:
        out = type(self).__new__(type(self))
        out.__dict__.update(self.__dict__)
        out.__dict__["__netemu_fields_set__"] = set(self.model_fields_set)
        if update:
            out.__dict__.update(update)
            out.model_fields_set.update(update)
        return out

    def __eq__(self, other: object) -> bool:
        if type(other) is not type(self):
            return NotImplemented
        mine = {k: v for k, v in self.__dict__.items() if k != "__netemu_fields_set__"}
        theirs = {k: v for k, v in other.__dict__.items() if k != "__netemu_fields_set__"}
        return mine == theirs

    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        fields = ", ".join(f"{n}={getattr(self, n, None)!r}" for n in type(self).model_fields)
        return f"{type(self).__name__}({fields})"

    def model_dump(self, *, mode: str = "python", exclude: set[str] | None = None,
                   exclude_none: bool = False, exclude_defaults: bool = False,
                   by_alias: bool = False) -> dict[str, Any]:
        b = type(self)._built()
        out: dict[str, Any] = {}
        for name, f in b.fields.items():
            if exclude and name in exclude:
                continue
            value = self.__dict__.get(name)
            if exclude_none and value is None:
                continue
            if exclude_defaults and not f.is_required() and value == f.get_default():
                continue
            ser, with_none = b.serializers[name]
            if ser is not None and (value is not None or with_none):
                value = ser(value)
            out[(f.alias or name) if by_alias else name] = _dump(
                value, mode, exclude_none, exclude_defaults, by_alias)
        return out

    @classmethod
    def model_json_schema(cls, mode: str = "validation") -> dict[str, Any]:
        defs: dict[str, Any] = {}
        top = _model_schema(cls, defs)
        defs.pop(cls.__name__, None)
        return {**({"$defs": dict(sorted(defs.items()))} if defs else {}), **top}


def _dump(value: Any, mode: str, exclude_none: bool, exclude_defaults: bool,
          by_alias: bool) -> Any:
    if isinstance(value, BaseModel):
        return value.model_dump(mode=mode, exclude_none=exclude_none,
                                exclude_defaults=exclude_defaults, by_alias=by_alias)
    if isinstance(value, dict):
        return {k: _dump(v, mode, exclude_none, exclude_defaults, by_alias)
                for k, v in value.items()}
    if isinstance(value, list | tuple):
        items = [_dump(v, mode, exclude_none, exclude_defaults, by_alias) for v in value]
        return items if mode == "json" or isinstance(value, list) else tuple(items)
    if mode == "json":
        if isinstance(value, enum.Enum):
            return value.value
        if isinstance(value, bytes):
            return value.decode("utf-8", "replace")
        if value is not None and not isinstance(value, str | int | float | bool):
            return str(value)
    return value


def create_model(name: str, *, __base__: type[BaseModel], **spec: tuple[Any, Any]) -> Any:
    """A model class named ``name``: field -> (annotation, default)."""
    ns: dict[str, Any] = {"__annotations__": {k: t for k, (t, _) in spec.items()},
                          "__module__": __base__.__module__, "__qualname__": name}
    ns.update({k: d for k, (_, d) in spec.items()})
    return type(name, (__base__,), ns)


# --- JSON Schema -------------------------------------------------------------------------


def _copy(s: Any) -> Any:
    if isinstance(s, dict):
        return {k: _copy(v) for k, v in s.items()}
    if isinstance(s, list):
        return [_copy(v) for v in s]
    return s


def _title(name: str) -> str:
    return name.replace("_", " ").strip().title()


def _json_value(value: Any) -> Any:
    if isinstance(value, enum.Enum):
        return value.value
    if isinstance(value, tuple):
        return [_json_value(v) for v in value]
    if isinstance(value, list):
        return [_json_value(v) for v in value]
    if isinstance(value, dict):
        return {str(k): _json_value(v) for k, v in value.items()}
    if value is None or isinstance(value, str | int | float | bool):
        return value
    raise TypeError(value)


def _model_schema(cls: type[BaseModel], defs: dict[str, Any]) -> dict[str, Any]:
    import inspect

    b = cls._built()
    props: dict[str, Any] = {}
    required: list[str] = []
    for name, f in b.fields.items():
        key = f.alias or name
        s = _type_schema(f.annotation, defs)
        s = {**s, "title": _title(key)} if "$ref" not in s else dict(s)
        if f.description:
            s["description"] = f.description
        if f.is_required():
            required.append(key)
        elif f.default_factory is None:
            with contextlib.suppress(TypeError):  # not JSON: no default shown
                s["default"] = _json_value(f.default)
        props[key] = s
    out: dict[str, Any] = {}
    if b.config.get("extra") == "forbid":
        out["additionalProperties"] = False
    doc = cls.__dict__.get("__doc__")
    if doc:
        out["description"] = inspect.cleandoc(doc)
    out["properties"] = props
    if required:
        out["required"] = required
    out["title"] = cls.__name__
    out["type"] = "object"
    return out


def _type_schema(tp: Any, defs: dict[str, Any]) -> dict[str, Any]:
    base, meta = _split(tp)
    for m in reversed(meta):
        if isinstance(m, WithJsonSchema):
            return m.get()
    min_length = next((m.min_length for m in meta if isinstance(m, FieldInfo)
                       and m.min_length is not None), None)
    origin = typing.get_origin(base)
    args = typing.get_args(base)
    if base is Any:
        return {}
    if base is None or base is _NONE:
        return {"type": "null"}
    if origin in (Union, types.UnionType):
        members = [_type_schema(a, defs) for a in args]
        key = "oneOf" if any(isinstance(m, Discriminator) for m in meta) else "anyOf"
        return {key: members}
    if origin is Literal:
        out: dict[str, Any] = {"enum": list(args)}
        if all(isinstance(a, str) for a in args):
            out["type"] = "string"
        return out
    if origin is list:
        out = {"items": _type_schema(args[0], defs) if args else {}, "type": "array"}
        if min_length is not None:
            out["minItems"] = min_length
        return out
    if origin is tuple:
        return {"items": _type_schema(args[0], defs) if args else {}, "type": "array"}
    if origin is dict:
        return {"additionalProperties": _type_schema(args[1], defs), "type": "object"}
    if base in (str, bool, int, float):
        return {"type": {str: "string", bool: "boolean", int: "integer",
                         float: "number"}[base]}
    if isinstance(base, type) and issubclass(base, BaseModel):
        if base.__name__ not in defs:
            defs[base.__name__] = {}  # recursion guard
            defs[base.__name__] = _model_schema(base, defs)
        return {"$ref": f"#/$defs/{base.__name__}"}
    if isinstance(base, type) and issubclass(base, enum.Enum):
        return {"enum": [m.value for m in base], "title": base.__name__}
    return {}

