"""Semantic diff of two normalized load balancers, with the impact on predicted shares.

The diff compares models, not text: reformatting, comments and moved lines produce no
change, while a redefined ACL or a reordered rule does. Routing rules are compared in
`lbguard.monitor.diff_rules`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from enum import Enum
from typing import Any

from lbguard.model import Balance, Frontend, LoadBalancer, Location, Pool, Product, Server
from lbguard.monitor.changes import (
    Change,
    ChangeKind,
    Element,
    ModelComparer,
    compared_fields,
    known_location,
)
from lbguard.monitor.diff_rules import condition_text, diff_rules
from lbguard.monitor.locate import keyword_line
from lbguard.monitor.shares import ShareDelta, ShareTable, share_deltas

__all__ = [
    "Change",
    "ChangeKind",
    "ConfigDiff",
    "Element",
    "condition_text",
    "diff_configs",
    "diff_models",
]

_HASH_TYPE_FIELDS = ("hash_method", "hash_function", "avalanche")
"""Balance fields that HAProxy's ``hash-type`` line sets, reported as one change."""


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
    comparer = ModelComparer((*old.files, *new.files))
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
            changes.extend(_diff_frontend(comparer, previous, frontend))

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
            count = len(pool.servers)
            summary = f"{pool.balance.algorithm}, {count} server{'' if count == 1 else 's'}"
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
            changes.extend(_diff_pool(comparer, previous_pool, pool, new.product))

    changes.extend(_diff_settings(old.settings, new.settings))
    return tuple(changes)


# --------------------------------------------------------------------------------------
# Frontends and rules


def _diff_frontend(comparer: ModelComparer, old: Frontend, new: Frontend) -> list[Change]:
    changes = _diff_fields(
        comparer,
        old,
        new,
        Element.FRONTEND,
        new.name,
        skip={"name", "binds", "rules", "location", "default_location"},
        old_location=known_location(old.default_location, old.location),
        new_location=known_location(new.default_location, new.location),
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

    changes.extend(diff_rules(comparer, new.name, old.rules, new.rules))
    return changes


def _bind_text(address: str, port: int | None) -> str:
    host = address or "*"
    return host if port is None else f"{host}:{port}"


# --------------------------------------------------------------------------------------
# Pools and servers


def _diff_pool(comparer: ModelComparer, old: Pool, new: Pool, product: Product) -> list[Change]:
    changes = _diff_fields(
        comparer,
        old,
        new,
        Element.POOL,
        new.name,
        skip={"name", "balance", "servers", "location"},
        old_location=old.location,
        new_location=new.location,
    )
    changes.extend(_diff_balance(comparer, old, new, product))

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
                    after=_server_summary(server),
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
                comparer,
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


def _diff_balance(comparer: ModelComparer, old: Pool, new: Pool, product: Product) -> list[Change]:
    old_location = known_location(old.balance.location, old.location)
    new_location = known_location(new.balance.location, new.location)
    changes = _diff_fields(
        comparer,
        old.balance,
        new.balance,
        Element.BALANCE,
        new.name,
        skip={"location", "text", *_HASH_TYPE_FIELDS},
        old_location=old_location,
        new_location=new_location,
    )
    before, after = _hash_type(old.balance), _hash_type(new.balance)
    if before == after:
        return changes

    attribute = "hash-method"
    if product is Product.HAPROXY:
        # The model keeps the line of `balance` only. The `hash-type` line sits in the
        # backend section (or in defaults, then the backend line is shown).
        attribute = "hash-type"
        old_method, new_method = old.balance.hash_method, new.balance.hash_method
        old_location = keyword_line(old.location, "hash-type", old_method) or old.location
        new_location = keyword_line(new.location, "hash-type", new_method) or new.location
    changes.append(
        Change(
            ChangeKind.CHANGED,
            Element.BALANCE,
            new.name,
            attribute,
            before,
            after,
            old_location,
            new_location,
        )
    )
    return changes


def _hash_type(balance: Balance) -> str:
    text = f"{balance.hash_method} {balance.hash_function}"
    return text + " avalanche" if balance.avalanche else text


def _server_summary(server: Server) -> str:
    """Describe a new server with what decides its share: weight, backup and state."""
    text = f"{server.endpoint} weight {server.weight}"
    if server.backup:
        text += " backup"
    if server.state != "enabled":
        text += f" {server.state}"
    return text


def _diff_fields(
    comparer: ModelComparer,
    old: Any,
    new: Any,
    element: Element,
    subject: str,
    *,
    skip: set[str],
    old_location: Location,
    new_location: Location,
) -> list[Change]:
    """Compare the fields of two dataclasses of one type, locations and ``skip`` left out."""
    changes: list[Change] = []
    if old == new:
        return changes
    for name in compared_fields(type(old)) or ():
        if name in skip:
            continue
        before, after = getattr(old, name), getattr(new, name)
        if comparer.same(before, after):
            continue
        changes.append(
            Change(
                ChangeKind.CHANGED,
                element,
                subject,
                name.replace("_", "-"),
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
