"""Marshmallow schemas generated from frozen dataclasses, so a documented shape cannot drift from the type.

The decision (service/engine/answer.py) is defined once, as dataclasses; the OpenAPI document describes
it through schemas built here from `dataclasses.fields` and their type hints. A field's `metadata` may
carry `description`, `one_of` (allowed values), `required` (documented as required although the attribute
may be None before it is stamped) and further JSON Schema keywords (e.g. `format`). A field that may be
None is optional in the schema: the JSON serialiser leaves None out, it never writes null.
"""

from __future__ import annotations

import dataclasses
import types
import typing
from collections.abc import Mapping
from enum import Enum
from typing import Any

from marshmallow import RAISE, Schema, fields, validate

__all__ = ["schema_for"]


class _Strict(Schema):
    class Meta:
        unknown = RAISE


_SCALARS: dict[Any, type[fields.Field]] = {str: fields.String, int: fields.Integer, bool: fields.Boolean}


def _optional(hint: Any) -> tuple[Any, bool]:
    """(the type without None, whether None was allowed)."""
    if typing.get_origin(hint) in (typing.Union, types.UnionType):
        args = [a for a in typing.get_args(hint) if a is not type(None)]
        if len(args) == 1 and len(typing.get_args(hint)) == 2:
            return args[0], True
    return hint, False


def _field(hint: Any, cache: dict[type, type[Schema]], **kw: Any) -> fields.Field:
    """A marshmallow field for one type hint."""
    if hint is Any:
        return fields.Raw(**kw)
    if hint in _SCALARS:
        return _SCALARS[hint](**kw)
    if isinstance(hint, type) and issubclass(hint, Enum):
        kw.setdefault("validate", validate.OneOf([m.value for m in hint]))
        return fields.String(**kw)
    if isinstance(hint, type) and dataclasses.is_dataclass(hint):
        return fields.Nested(_schema(hint, cache), **kw)
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if origin is tuple and len(args) == 2 and args[1] is Ellipsis:
        return fields.List(_field(args[0], cache), **kw)
    if origin in (Mapping, dict) and args:
        if args[1] is Any:
            return fields.Dict(keys=_field(args[0], cache), **kw)
        return fields.Dict(keys=_field(args[0], cache), values=_field(args[1], cache), **kw)
    raise TypeError(f"no schema field for the type {hint!r}")


def _schema(cls: type, cache: dict[type, type[Schema]]) -> type[Schema]:
    found = cache.get(cls)
    if found is not None:
        return found
    hints = typing.get_type_hints(cls)
    attrs: dict[str, Any] = {}
    for f in dataclasses.fields(cls):
        meta = dict(f.metadata)
        hint, nullable = _optional(hints[f.name])
        has_default = f.default is not dataclasses.MISSING or f.default_factory is not dataclasses.MISSING
        kw: dict[str, Any] = {"required": bool(meta.pop("required", False)) or not (nullable or has_default)}
        one_of = meta.pop("one_of", None)
        if one_of:
            kw["validate"] = validate.OneOf(list(one_of))
        if meta:
            kw["metadata"] = meta
        name = f.name
        if hasattr(Schema, name):  # e.g. `fields`: the schema's own attribute; the JSON key stays the same
            name, kw["data_key"] = f"{name}_", f.name
        attrs[name] = _field(hint, cache, **kw)
    if cls.__doc__ and not cls.__doc__.startswith(f"{cls.__name__}("):  # the dataclass's generated signature
        attrs["__doc__"] = cls.__doc__
    schema = cache[cls] = type(f"{cls.__name__}Schema", (_Strict,), attrs)
    return schema


_CACHE: dict[type, type[Schema]] = {}


def schema_for(cls: type) -> type[Schema]:
    """The marshmallow schema of a dataclass (one class per dataclass, named `<Name>Schema`)."""
    return _schema(cls, _CACHE)
