"""Vocabulary of the semantic diff: what changed, where, and how model values compare."""

from __future__ import annotations

import json
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from lbguard.model import NO_LOCATION, Condition, Location
from lbguard.monitor.codec import TYPE_KEY, encode


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
        name = f"{self.element} {self.subject}"
        if self.kind is ChangeKind.ADDED:
            return f"{name} added" + (f": {self.after}" if self.after else "")
        if self.kind is ChangeKind.REMOVED:
            return f"{name} removed" + (f": {self.before}" if self.before else "")
        if self.kind is ChangeKind.REORDERED:
            written = f" `{self.detail}`" if self.detail else ""
            return f"{name}{written} moved from {self.before} to {self.after}"
        return f"{name}: {self.attribute} {self.before} → {self.after}"


_LOCATION_KEYS = frozenset({"location", "locations", "default_location"})
_WRITTEN_TEXT_TYPES = frozenset({"Matcher", "Rule", "Server", "Balance", "Bind"})


def signature(value: object) -> str:
    """Canonical JSON of a model value without source positions or written text."""
    return json.dumps(_strip(encode(value)), sort_keys=True)


def condition_shape(condition: Condition | None) -> str:
    """Signature of a condition with named conditions reduced to their names."""
    return json.dumps(_strip(encode(condition), named_as_name=True), sort_keys=True)


def known_location(*locations: Location) -> Location:
    """Return the first location that names a file."""
    for location in locations:
        if location.file:
            return location
    return NO_LOCATION


def _strip(data: Any, *, named_as_name: bool = False) -> Any:
    if isinstance(data, list):
        return [_strip(item, named_as_name=named_as_name) for item in data]
    if not isinstance(data, dict):
        return data
    if named_as_name and data.get(TYPE_KEY) == "Named":
        return {TYPE_KEY: "Named", "name": data["name"]}
    drop = set(_LOCATION_KEYS)
    if data.get(TYPE_KEY) in _WRITTEN_TEXT_TYPES:
        drop.add("text")
    return {
        key: _strip(value, named_as_name=named_as_name)
        for key, value in data.items()
        if key not in drop
    }
