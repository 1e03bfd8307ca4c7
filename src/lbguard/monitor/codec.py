"""JSON encoding of the normalized model, so that history can store and rebuild snapshots.

Every dataclass is written as an object with a ``_type`` member naming its class, tuples
as arrays and enums as their values. Decoding reads the field type hints to rebuild enums
and tuples, so the JSON needs no other annotation.
"""

from __future__ import annotations

import dataclasses
import json
import types
import typing
from enum import Enum
from typing import Any

from lbguard import model
from lbguard.model import LoadBalancer

TYPE_KEY = "_type"

_MODEL_CLASSES: dict[str, type[Any]] = {
    name: value
    for name, value in vars(model).items()
    if isinstance(value, type) and dataclasses.is_dataclass(value)
}


_FIELD_NAMES: dict[type[Any], tuple[str, ...] | None] = {}


def field_names(cls: type[Any]) -> tuple[str, ...] | None:
    """Return the field names of a dataclass type, cached; None for any other type."""
    names = _FIELD_NAMES.get(cls, ())
    if names == ():
        names = None
        if dataclasses.is_dataclass(cls):
            names = tuple(item.name for item in dataclasses.fields(cls))
        _FIELD_NAMES[cls] = names
    return names


class CodecError(ValueError):
    """Stored JSON that does not describe a model of this lbguard version."""


PLAIN_TYPES = frozenset({str, int, float, bool, type(None)})
"""Types that JSON stores unchanged, checked first because most model values have one."""


def encode(value: object) -> Any:
    """Convert a model value into plain JSON types."""
    kind = type(value)
    if kind in PLAIN_TYPES:
        return value
    if kind is tuple or kind is list:
        return [encode(item) for item in value]  # type: ignore[attr-defined]
    names = field_names(kind)
    if names is not None:
        encoded: dict[str, Any] = {TYPE_KEY: kind.__name__}
        for name in names:
            item = getattr(value, name)
            encoded[name] = item if type(item) in PLAIN_TYPES else encode(item)
        return encoded
    if isinstance(value, Enum):
        return value.value
    if isinstance(value, tuple | list):
        return [encode(item) for item in value]
    return value


def decode(data: Any, hint: Any) -> Any:
    """Rebuild a model value of type ``hint`` from what `encode` produced."""
    if isinstance(data, dict):
        return _decode_dataclass(data)

    origin = typing.get_origin(hint)
    if origin in (typing.Union, types.UnionType):
        members = [arg for arg in typing.get_args(hint) if arg is not type(None)]
        if data is None:
            return None
        if len(members) == 1:
            return decode(data, members[0])
        return data

    if origin is tuple:
        if not isinstance(data, list):
            raise CodecError(f"expected an array for {hint}, found {type(data).__name__}")
        args = typing.get_args(hint)
        if len(args) == 2 and args[1] is Ellipsis:
            return tuple(decode(item, args[0]) for item in data)
        return tuple(decode(item, arg) for item, arg in zip(data, args, strict=True))

    if isinstance(hint, type) and issubclass(hint, Enum):
        return hint(data)
    return data


def _decode_dataclass(data: dict[str, Any]) -> Any:
    name = data.get(TYPE_KEY)
    cls = _MODEL_CLASSES.get(str(name))
    if cls is None:
        raise CodecError(f"unknown model type {name!r} in stored JSON")

    hints = _type_hints(cls)
    values = {
        key: decode(value, hints[key])
        for key, value in data.items()
        if key != TYPE_KEY and key in hints
    }
    return cls(**values)


def _type_hints(cls: type[Any]) -> dict[str, Any]:
    hints = _HINTS.get(cls.__name__)
    if hints is None:
        hints = typing.get_type_hints(cls, vars(model))
        _HINTS[cls.__name__] = hints
    return hints


_HINTS: dict[str, dict[str, Any]] = {}


def dumps_model(lb: LoadBalancer) -> str:
    """Serialize a load balancer to compact JSON, members in field order."""
    return json.dumps(encode(lb), separators=(",", ":"))


def loads_model(text: str) -> LoadBalancer:
    """Rebuild a load balancer from `dumps_model` output."""
    try:
        value = decode(json.loads(text), LoadBalancer)
    except (TypeError, ValueError, KeyError) as error:
        raise CodecError(f"stored model JSON is invalid: {error}") from error
    if not isinstance(value, LoadBalancer):
        raise CodecError("stored model JSON does not describe a load balancer")
    return value
