"""The one list of audit rules lbguard runs, in report order.

A rule exists only when it is listed here; importing a rule module registers nothing.
"""

from __future__ import annotations

from collections.abc import Iterable

from lbguard.checks import balancing, capacity, config, routing
from lbguard.checks.interface import Rule

RULES: tuple[Rule, ...] = (
    config.PARSE_ERROR,
    routing.UNREACHABLE_RULE,
    routing.UNROUTED_POOL,
    routing.CONCENTRATING_RULE,
    balancing.OVER_FAIR_SHARE,
    capacity.SINGLE_SERVER_POOL,
)


def index_rules(rules: Iterable[Rule]) -> dict[str, Rule]:
    """Map every id and name to its rule; raise ValueError on a duplicate id or name."""
    index: dict[str, Rule] = {}
    for rule in rules:
        for key in (rule.id, rule.name):
            if key in index:
                raise ValueError(f"rule {key} is registered twice")
            index[key] = rule
    return index


_INDEX = index_rules(RULES)


def find_rule(key: str) -> Rule | None:
    """Return the rule with this id (``LB101``) or name (``routing.unreachable-rule``)."""
    return _INDEX.get(key) or _INDEX.get(key.upper())
