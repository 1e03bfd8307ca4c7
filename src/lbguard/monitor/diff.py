"""Semantic diff of two normalized load balancers, with the impact on predicted shares.

The diff compares models, not text: reformatting, comments and moved lines produce no
change, while a redefined ACL or a reordered rule does. Rules are matched by their written
text first, then by condition, then by target, because the first matching rule wins and a
rule's identity is what it does.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from enum import Enum, StrEnum
from typing import Any

from lbguard.model import (
    NO_LOCATION,
    AllOf,
    AnyOf,
    Condition,
    Constant,
    Frontend,
    LoadBalancer,
    Location,
    Matcher,
    Named,
    Not,
    Pool,
    Rule,
    Unevaluated,
)
from lbguard.monitor.codec import TYPE_KEY, encode
from lbguard.monitor.shares import ShareDelta, ShareTable, share_deltas


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


@dataclass(frozen=True)
class ConfigDiff:
    """The model changes between two configurations and their impact on shares."""

    changes: tuple[Change, ...]
    impact: tuple[ShareDelta, ...]
    """Servers whose predicted share changed, largest change first."""

    traffic: str = ""
    """Description of the traffic profile both predictions used."""

    route_level_known: bool = False
    """True when shares of all traffic are known for both sides."""

    @property
    def changed(self) -> bool:
        return bool(self.changes or self.impact)


def diff_configs(
    old: LoadBalancer,
    new: LoadBalancer,
    old_shares: ShareTable,
    new_shares: ShareTable,
    traffic: str = "",
) -> ConfigDiff:
    """Compare two configurations and the shares predicted for each."""
    impact = share_deltas(old_shares, new_shares)
    route_level_known = all(
        row.share_of_total is not None
        for table in (old_shares, new_shares)
        for row in table.values()
    ) and bool(old_shares or new_shares)
    return ConfigDiff(diff_models(old, new), impact, traffic, route_level_known)


def diff_models(old: LoadBalancer, new: LoadBalancer) -> tuple[Change, ...]:
    """List the semantic changes from ``old`` to ``new``, frontends first, then pools."""
    changes: list[Change] = []
    if old.product != new.product:
        changes.append(
            Change(ChangeKind.CHANGED, Element.PRODUCT, "", "product", old.product, new.product)
        )

    old_frontends = {frontend.name: frontend for frontend in old.frontends}
    new_frontends = {frontend.name: frontend for frontend in new.frontends}
    for name, frontend in old_frontends.items():
        if name not in new_frontends:
            changes.append(
                Change(ChangeKind.REMOVED, Element.FRONTEND, name, old_location=frontend.location)
            )
    for name, frontend in new_frontends.items():
        previous = old_frontends.get(name)
        if previous is None:
            changes.append(
                Change(ChangeKind.ADDED, Element.FRONTEND, name, new_location=frontend.location)
            )
        else:
            changes.extend(_diff_frontend(previous, frontend))

    old_pools = {pool.name: pool for pool in old.pools}
    new_pools = {pool.name: pool for pool in new.pools}
    for name, pool in old_pools.items():
        if name not in new_pools:
            changes.append(
                Change(ChangeKind.REMOVED, Element.POOL, name, old_location=pool.location)
            )
    for name, pool in new_pools.items():
        previous_pool = old_pools.get(name)
        if previous_pool is None:
            summary = f"{pool.balance.algorithm}, {len(pool.servers)} servers"
            changes.append(
                Change(
                    ChangeKind.ADDED,
                    Element.POOL,
                    name,
                    after=summary,
                    new_location=pool.location,
                )
            )
        else:
            changes.extend(_diff_pool(previous_pool, pool))

    changes.extend(_diff_settings(old.settings, new.settings))
    return tuple(changes)


# --------------------------------------------------------------------------------------
# Frontends and rules


def _diff_frontend(old: Frontend, new: Frontend) -> list[Change]:
    changes = _diff_fields(
        old,
        new,
        Element.FRONTEND,
        new.name,
        skip={"name", "binds", "rules", "location", "default_location"},
        old_location=_known(old.default_location, old.location),
        new_location=_known(new.default_location, new.location),
    )

    old_binds = {_bind_text(bind.address, bind.port): bind for bind in old.binds}
    new_binds = {_bind_text(bind.address, bind.port): bind for bind in new.binds}
    for text, bind in old_binds.items():
        if text not in new_binds:
            changes.append(
                Change(
                    ChangeKind.REMOVED,
                    Element.BIND,
                    f"{old.name} {text}",
                    old_location=bind.location,
                )
            )
    for text, bind in new_binds.items():
        if text not in old_binds:
            changes.append(
                Change(
                    ChangeKind.ADDED,
                    Element.BIND,
                    f"{new.name} {text}",
                    new_location=bind.location,
                )
            )

    changes.extend(_diff_rules(new.name, old.rules, new.rules))
    return changes


def _bind_text(address: str, port: int | None) -> str:
    host = address or "*"
    return host if port is None else f"{host}:{port}"


def _diff_rules(frontend: str, old: Sequence[Rule], new: Sequence[Rule]) -> list[Change]:
    # Old rule index to new rule index, for rules present on both sides.
    pairs: dict[int, int] = {}
    _pair_by(pairs, old, new, _rule_key)
    text_pairs = dict(pairs)
    _pair_by(pairs, old, new, lambda rule: _signature(rule.condition))
    _pair_in_place(pairs, old, new)

    changes: list[Change] = []
    paired_new = set(pairs.values())
    for index, rule in enumerate(old):
        if index not in pairs:
            changes.append(
                Change(
                    ChangeKind.REMOVED,
                    Element.RULE,
                    f"{frontend} rule {index + 1}",
                    before=rule.text,
                    old_location=rule.location,
                )
            )
    for index, rule in enumerate(new):
        if index not in paired_new:
            changes.append(
                Change(
                    ChangeKind.ADDED,
                    Element.RULE,
                    f"{frontend} rule {index + 1}",
                    after=rule.text,
                    new_location=rule.location,
                )
            )

    seen_acls: set[str] = set()
    for old_index, new_index in sorted(pairs.items(), key=lambda pair: pair[1]):
        before, after = old[old_index], new[new_index]
        subject = f"{frontend} rule {new_index + 1}"
        if old_index not in text_pairs:
            changes.append(
                Change(
                    ChangeKind.CHANGED,
                    Element.RULE,
                    subject,
                    "rule",
                    before.text,
                    after.text,
                    before.location,
                    after.location,
                )
            )
        elif _signature(before.condition) != _signature(after.condition):
            changes.extend(_diff_named(frontend, before.condition, after.condition, seen_acls))
            if _shape(before.condition) != _shape(after.condition):
                changes.append(
                    Change(
                        ChangeKind.CHANGED,
                        Element.RULE,
                        subject,
                        "condition",
                        condition_text(before.condition),
                        condition_text(after.condition),
                        before.location,
                        after.location,
                    )
                )

    for old_index in _moved(pairs):
        new_index = pairs[old_index]
        changes.append(
            Change(
                ChangeKind.REORDERED,
                Element.RULE,
                f"{frontend} rule {new_index + 1}",
                before=f"position {old_index + 1}",
                after=f"position {new_index + 1}",
                old_location=old[old_index].location,
                new_location=new[new_index].location,
                detail=new[new_index].text,
            )
        )
    return changes


def _rule_key(rule: Rule) -> str:
    if rule.text:
        return " ".join(rule.text.split())
    return _signature(rule)


def _pair_by(
    pairs: dict[int, int],
    old: Sequence[Rule],
    new: Sequence[Rule],
    key: Any,
) -> None:
    """Pair still unpaired rules with equal keys, in order of appearance."""
    paired_new = set(pairs.values())
    waiting: dict[str, list[int]] = {}
    for index, rule in enumerate(new):
        if index not in paired_new:
            waiting.setdefault(key(rule), []).append(index)
    for index, rule in enumerate(old):
        if index in pairs:
            continue
        candidates = waiting.get(key(rule))
        if candidates:
            pairs[index] = candidates.pop(0)


def _pair_in_place(pairs: dict[int, int], old: Sequence[Rule], new: Sequence[Rule]) -> None:
    """Pair still unpaired rules at the same position with the same action: a rule whose
    condition was edited in place."""
    paired_new = set(pairs.values())
    for index in range(min(len(old), len(new))):
        if index in pairs or index in paired_new:
            continue
        if _signature(old[index].action) == _signature(new[index].action):
            pairs[index] = index


def _moved(pairs: Mapping[int, int]) -> list[int]:
    """Return the old indexes of paired rules outside the longest run kept in order."""
    ordered = sorted(pairs.items())
    targets = [new_index for _, new_index in ordered]

    # Longest increasing subsequence by patience sorting, keeping predecessors.
    tails: list[int] = []
    tail_positions: list[int] = []
    previous = [-1] * len(targets)
    for position, value in enumerate(targets):
        low, high = 0, len(tails)
        while low < high:
            middle = (low + high) // 2
            if tails[middle] < value:
                low = middle + 1
            else:
                high = middle
        if low > 0:
            previous[position] = tail_positions[low - 1]
        if low == len(tails):
            tails.append(value)
            tail_positions.append(position)
        else:
            tails[low] = value
            tail_positions[low] = position

    kept: set[int] = set()
    position = tail_positions[-1] if tail_positions else -1
    while position >= 0:
        kept.add(position)
        position = previous[position]
    return [ordered[position][0] for position in range(len(ordered)) if position not in kept]


def _diff_named(
    frontend: str,
    old: Condition | None,
    new: Condition | None,
    seen: set[str],
) -> list[Change]:
    """Report named conditions (ACLs) whose definition differs, once per frontend."""
    old_named = dict(_named_conditions(old))
    new_named = dict(_named_conditions(new))
    changes: list[Change] = []
    for name, after in new_named.items():
        before = old_named.get(name)
        if before is None or name in seen:
            continue
        seen.add(name)
        if _signature(before.condition) == _signature(after.condition):
            continue
        changes.append(
            Change(
                ChangeKind.CHANGED,
                Element.ACL,
                f"{frontend} acl {name}",
                "definition",
                condition_text(before.condition),
                condition_text(after.condition),
                before.locations[0] if before.locations else NO_LOCATION,
                after.locations[0] if after.locations else NO_LOCATION,
            )
        )
    return changes


def _named_conditions(condition: Condition | None) -> Iterable[tuple[str, Named]]:
    if isinstance(condition, Named):
        yield condition.name, condition
        yield from _named_conditions(condition.condition)
    elif isinstance(condition, AllOf | AnyOf):
        for term in condition.terms:
            yield from _named_conditions(term)
    elif isinstance(condition, Not):
        yield from _named_conditions(condition.term)


def condition_text(condition: Condition | None) -> str:
    """Render a condition tree as one line in HAProxy-like notation."""
    if condition is None:
        return "always"
    if isinstance(condition, Matcher):
        if condition.text:
            return condition.text
        fetch = f"{condition.fetch}({condition.arg})" if condition.arg else condition.fetch
        return f"{fetch} -m {condition.method} {' '.join(condition.patterns)}"
    if isinstance(condition, AllOf):
        return " ".join(_grouped(term) for term in condition.terms) or "TRUE"
    if isinstance(condition, AnyOf):
        return " || ".join(_grouped(term) for term in condition.terms) or "FALSE"
    if isinstance(condition, Not):
        return "!" + _grouped(condition.term)
    if isinstance(condition, Named):
        return condition.name
    if isinstance(condition, Constant):
        return "TRUE" if condition.value else "FALSE"
    assert isinstance(condition, Unevaluated)
    return condition.text


def _grouped(condition: Condition) -> str:
    text = condition_text(condition)
    if isinstance(condition, AllOf | AnyOf) and len(condition.terms) > 1:
        return "{ " + text + " }"
    return text


# --------------------------------------------------------------------------------------
# Pools and servers


def _diff_pool(old: Pool, new: Pool) -> list[Change]:
    changes = _diff_fields(
        old,
        new,
        Element.POOL,
        new.name,
        skip={"name", "balance", "servers", "location"},
        old_location=old.location,
        new_location=new.location,
    )
    changes.extend(
        _diff_fields(
            old.balance,
            new.balance,
            Element.BALANCE,
            new.name,
            skip={"location", "text"},
            old_location=_known(old.balance.location, old.location),
            new_location=_known(new.balance.location, new.location),
        )
    )

    old_servers = {server.name: server for server in old.servers}
    new_servers = {server.name: server for server in new.servers}
    old_positions = {server.name: index + 1 for index, server in enumerate(old.servers)}
    new_positions = {server.name: index + 1 for index, server in enumerate(new.servers)}
    for name, server in old_servers.items():
        if name not in new_servers:
            changes.append(
                Change(
                    ChangeKind.REMOVED,
                    Element.SERVER,
                    f"{old.name}/{name}",
                    before=server.endpoint,
                    old_location=server.location,
                )
            )
    for name, server in new_servers.items():
        previous = old_servers.get(name)
        subject = f"{new.name}/{name}"
        if previous is None:
            changes.append(
                Change(
                    ChangeKind.ADDED,
                    Element.SERVER,
                    subject,
                    after=f"{server.endpoint} weight {server.weight}",
                    new_location=server.location,
                )
            )
            continue
        skip = {"name", "location", "text"}
        if previous.id == old_positions[name] and server.id == new_positions[name]:
            # Ids that follow declaration order are HAProxy's implicit ones; the server
            # order change below reports their move.
            skip.add("id")
        changes.extend(
            _diff_fields(
                previous,
                server,
                Element.SERVER,
                subject,
                skip=skip,
                old_location=previous.location,
                new_location=server.location,
            )
        )

    # Order matters for map-based hashing and for round-robin start positions.
    old_order = [server.name for server in old.servers if server.name in new_servers]
    new_order = [server.name for server in new.servers if server.name in old_servers]
    if old_order != new_order:
        changes.append(
            Change(
                ChangeKind.REORDERED,
                Element.POOL,
                new.name,
                "server order",
                ", ".join(old_order),
                ", ".join(new_order),
                old.location,
                new.location,
            )
        )
    return changes


def _diff_settings(old: Sequence[tuple[str, str]], new: Sequence[tuple[str, str]]) -> list[Change]:
    def grouped(settings: Sequence[tuple[str, str]]) -> dict[str, str]:
        values: dict[str, list[str]] = {}
        for keyword, value in settings:
            values.setdefault(keyword, []).append(value)
        return {keyword: "; ".join(items) for keyword, items in values.items()}

    before, after = grouped(old), grouped(new)
    changes: list[Change] = []
    for keyword, value in before.items():
        if keyword not in after:
            changes.append(Change(ChangeKind.REMOVED, Element.SETTING, keyword, before=value))
        elif after[keyword] != value:
            changes.append(
                Change(
                    ChangeKind.CHANGED, Element.SETTING, keyword, "value", value, after[keyword]
                )
            )
    for keyword, value in after.items():
        if keyword not in before:
            changes.append(Change(ChangeKind.ADDED, Element.SETTING, keyword, after=value))
    return changes


def _diff_fields(
    old: Any,
    new: Any,
    element: Element,
    subject: str,
    *,
    skip: set[str],
    old_location: Location,
    new_location: Location,
) -> list[Change]:
    """Compare the plain fields of two dataclasses of one type."""
    changes: list[Change] = []
    for item in dataclasses.fields(old):
        if item.name in skip:
            continue
        before, after = getattr(old, item.name), getattr(new, item.name)
        if _signature(before) == _signature(after):
            continue
        changes.append(
            Change(
                ChangeKind.CHANGED,
                element,
                subject,
                item.name.replace("_", "-"),
                _value_text(before),
                _value_text(after),
                old_location,
                new_location,
            )
        )
    return changes


def _value_text(value: object) -> str:
    if value is None:
        return "none"
    if isinstance(value, bool):
        return "on" if value else "off"
    if isinstance(value, Enum):
        return str(value.value)
    if isinstance(value, tuple):
        return ", ".join(_value_text(item) for item in value) or "none"
    return str(value)


_LOCATION_KEYS = frozenset({"location", "locations", "default_location"})
_WRITTEN_TEXT_TYPES = frozenset({"Matcher", "Rule", "Server", "Balance", "Bind"})


def _signature(value: object) -> str:
    """Canonical JSON of a model value without source positions or written text."""
    return json.dumps(_strip(encode(value)), sort_keys=True)


def _shape(condition: Condition | None) -> str:
    """Signature of a condition with named conditions reduced to their names."""
    return json.dumps(_strip(encode(condition), named_as_name=True), sort_keys=True)


def _known(*locations: Location) -> Location:
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
