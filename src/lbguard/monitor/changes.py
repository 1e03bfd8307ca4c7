"""Vocabulary of the semantic diff: what changed, where, and how model values compare.

Source positions never decide whether two model values are the same: a comment added at
the top of a file moves every line, and parsers quote positions inside written text
(``server at a.conf:7: no location matches``). `ModelComparer` leaves out location
fields and written text, and replaces ``file:line`` references inside strings before it
compares them. Locations stay in `Change` only to point at lines.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Iterable
from dataclasses import dataclass
from enum import Enum, StrEnum
from typing import Any

from lbguard.model import NO_LOCATION, Condition, Location, Named
from lbguard.monitor.codec import field_names


class ChangeKind(StrEnum):
    """Kind of change to an element between the old and the new configuration."""

    ADDED = "added"
    REMOVED = "removed"
    CHANGED = "changed"
    REORDERED = "reordered"


class Element(StrEnum):
    """Kind of model element a change concerns."""

    PRODUCT = "product"
    FRONTEND = "frontend"
    BIND = "bind"
    RULE = "rule"
    ACL = "acl"
    POOL = "pool"
    BALANCE = "balance"
    SERVER = "server"
    SETTING = "setting"


_NAMED_IN_SUBJECT = frozenset({Element.RULE, Element.ACL})
"""Elements whose subject already names the element (``fe_main rule 2``)."""


@dataclass(frozen=True)
class Change:
    """One semantic change between two configurations."""

    kind: ChangeKind
    element: Element
    subject: str
    """The element's name: ``be_web/web3``, ``fe_main rule 2``, ``fe_main acl is_api``."""

    attribute: str = ""
    """The changed attribute for CHANGED (``weight``, ``algorithm``, ``action``)."""

    before: str | None = None
    after: str | None = None
    old_location: Location = NO_LOCATION
    new_location: Location = NO_LOCATION
    detail: str = ""
    """The element as written, when the subject alone does not identify it (moved rules)."""

    @property
    def location(self) -> Location:
        """Where to look: the new line, or the old one for a removal."""
        if self.new_location.file:
            return self.new_location
        return self.old_location

    def describe(self) -> str:
        """Return the change as one sentence without its location."""
        if self.element in _NAMED_IN_SUBJECT:
            name = self.subject
        else:
            name = f"{self.element} {self.subject}"
        if self.kind is ChangeKind.ADDED:
            return f"{name} added" + (f": {self.after}" if self.after else "")
        if self.kind is ChangeKind.REMOVED:
            return f"{name} removed" + (f": {self.before}" if self.before else "")
        if self.kind is ChangeKind.REORDERED:
            written = f" `{self.detail}`" if self.detail else ""
            return f"{name}{written} moved from {self.before} to {self.after}"
        return f"{name}: {self.attribute} {self.before} → {self.after}"


_LOCATION_FIELDS = frozenset({"location", "locations", "default_location"})
_WRITTEN_TEXT_TYPES = frozenset({"Matcher", "Rule", "Server", "Balance", "Bind"})
"""Model types whose ``text`` field repeats, as written, what their other fields hold."""

_SCALARS = (str, int, float, bool, type(None))


_COMPARED: dict[type[Any], tuple[str, ...] | None] = {}


def compared_fields(cls: type[Any]) -> tuple[str, ...] | None:
    """Return the fields of a model dataclass that the diff compares; None for other types."""
    if cls in _COMPARED:
        return _COMPARED[cls]
    names = field_names(cls)
    if names is not None:
        skip = set(_LOCATION_FIELDS)
        if cls.__name__ in _WRITTEN_TEXT_TYPES:
            skip.add("text")
        names = tuple(name for name in names if name not in skip)
    _COMPARED[cls] = names
    return names


class ModelComparer:
    """Compares model values of two configurations without their source positions.

    ``files`` are the configuration files of both sides. A string compares equal to
    another when they differ only in ``file:line`` references to one of those files, in
    any directory: parsers write paths as given, absolute, or relative to the main file.
    """

    def __init__(self, files: Iterable[str] = ()) -> None:
        names = sorted({os.path.basename(name) for name in files if name}, key=len, reverse=True)
        self._pattern: re.Pattern[str] | None = None
        if names:
            alternatives = "|".join(re.escape(name) for name in names)
            self._pattern = re.compile(
                rf"(?<![\w.-])(?:[^\s:'\"(){{}};,]*/)?(?:{alternatives}):\d+\b"
            )
        self._signatures: dict[int, tuple[object, str]] = {}

    def text(self, value: str) -> str:
        """Return ``value`` with every ``file:line`` reference replaced by ``<location>``."""
        if self._pattern is None:
            return value
        return self._pattern.sub("<location>", value)

    def same(self, old: object, new: object) -> bool:
        """True when two model values are equal apart from source positions."""
        if old is new:
            return True
        kind = type(old)
        if kind is not type(new):
            return False
        if kind is str:
            assert isinstance(old, str) and isinstance(new, str)
            return old == new or self.text(old) == self.text(new)
        if kind is tuple or kind is list:
            assert isinstance(old, tuple | list) and isinstance(new, tuple | list)
            return len(old) == len(new) and all(
                self.same(left, right) for left, right in zip(old, new, strict=True)
            )
        names = compared_fields(kind)
        if names is None:
            return old == new
        # Equal dataclasses, locations included, are the common case and compare in one
        # generated __eq__ call; only the rest is walked field by field.
        if old == new:
            return True
        return all(self.same(getattr(old, name), getattr(new, name)) for name in names)

    def signature(self, value: object) -> str:
        """Canonical JSON of a model value without source positions or written text."""
        cached = self._signatures.get(id(value))
        if cached is not None and cached[0] is value:
            return cached[1]
        text = json.dumps(self._plain(value), sort_keys=True)
        # The value is kept with its signature, so that its id cannot be reused meanwhile.
        self._signatures[id(value)] = (value, text)
        return text

    def condition_shape(self, condition: Condition | None) -> str:
        """Signature of a condition with named conditions reduced to their names."""
        return json.dumps(self._plain(condition, named_as_name=True), sort_keys=True)

    def _plain(self, value: object, *, named_as_name: bool = False) -> Any:
        if isinstance(value, str):
            return self.text(value)
        if isinstance(value, Enum):
            return value.value
        if isinstance(value, _SCALARS):
            return value
        if isinstance(value, tuple | list):
            return [self._plain(item, named_as_name=named_as_name) for item in value]
        if named_as_name and isinstance(value, Named):
            return {"_type": "Named", "name": value.name}
        names = compared_fields(type(value))
        if names is None:
            return repr(value)
        plain = {"_type": type(value).__name__}
        for name in names:
            plain[name] = self._plain(getattr(value, name), named_as_name=named_as_name)
        return plain


def known_location(*locations: Location) -> Location:
    """Return the first location that names a file."""
    for location in locations:
        if location.file:
            return location
    return NO_LOCATION
