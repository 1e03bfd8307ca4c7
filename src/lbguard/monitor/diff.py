"""Semantic diff of two normalized load balancers, with the impact on predicted shares.

The diff compares models, not text: reformatting, comments and moved lines produce no
change, while a redefined ACL or a reordered rule does. Routing rules are compared in
`lbguard.monitor.diff_rules`.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from dataclasses import dataclass
from enum import Enum
from typing import Any

from lbguard.model import Frontend, LoadBalancer, Location, Pool
from lbguard.monitor.changes import (
    Change,
    ChangeKind,
    Element,
    known_location,
    signature,
)
from lbguard.monitor.diff_rules import condition_text, diff_rules
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

    changes.extend(diff_rules(new.name, old.rules, new.rules))
    return changes


def _bind_text(address: str, port: int | None) -> str:
    host = address or "*"
    return host if port is None else f"{host}:{port}"


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
            old_location=known_location(old.balance.location, old.location),
            new_location=known_location(new.balance.location, new.location),
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
        if signature(before) == signature(after):
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
