"""The one list of audit rules lbguard runs, in report order.

A rule exists only when it is listed here; importing a rule module registers nothing.
"""

from __future__ import annotations

from collections.abc import Iterable

from lbguard.checks import (
    backups,
    balancing,
    capacity,
    config,
    hashing,
    health,
    locations,
    observed,
    rings,
    routing,
)
from lbguard.checks.interface import Rule

RULES: tuple[Rule, ...] = (
    config.PARSE_ERROR,
    config.UNUSED_SUPPRESSION,
    config.INVALID_SUPPRESSION,
    routing.UNREACHABLE_RULE,
    routing.UNROUTED_POOL,
    routing.CONCENTRATING_RULE,
    locations.REGEX_CAPTURES_PREFIX,
    balancing.OVER_FAIR_SHARE,
    balancing.WEIGHT_OUTLIER,
    backups.BACKUP_WEIGHT_IGNORED,
    backups.BACKUP_ONLY_POOL,
    hashing.HASH_FEW_KEYS,
    hashing.CLIENT_ADDRESS_HASH,
    hashing.HASH_NOT_CONSISTENT,
    balancing.LEASTCONN_WEIGHTS,
    rings.COARSE_HASH_RING,
    rings.MAP_HASH_MODULUS,
    rings.SRV_WEIGHT_ROUNDING,
    balancing.UPSTREAM_WITHOUT_ZONE,
    rings.URI_HASH_HTTP2,
    backups.BACKUP_IN_HASH_POOL,
    health.NO_HEALTH_CHECKS,
    health.PARTIAL_HEALTH_CHECKS,
    capacity.SINGLE_SERVER_POOL,
    capacity.HASH_QUEUE_ON_SERVER,
    capacity.SHARED_ENDPOINT,
    capacity.FIRST_WITHOUT_MAXCONN,
    observed.OBSERVED_DEPARTURE,
    observed.UNKNOWN_SERVER,
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
