"""Prediction engine: route the profile to pools, balance each pool, combine the shares.

``BALANCERS`` is the one table from product to balancing model; a product without an
entry gets weight-proportional shares marked unknown.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import cast

import numpy as np

from lbguard.errors import LbguardError
from lbguard.model import LoadBalancer, Pool, Product
from lbguard.predict import haproxy, nginx
from lbguard.predict.balancer import Balancer, Health, PoolOutcome, PoolRequests
from lbguard.predict.result import (
    EndpointShare,
    PoolShare,
    Prediction,
    RuleShare,
    ServerShare,
    ShareMethod,
    UnevaluatedItem,
)
from lbguard.predict.routing import RoutingResult, route
from lbguard.traffic import TrafficProfile, default_profile

BALANCERS: dict[Product, Balancer] = {
    Product.HAPROXY: haproxy.balance,
    Product.NGINX: nginx.balance,
}
"""Balancing model of each product."""


def _weights_only(pool: Pool, requests: PoolRequests | None, health: Health) -> PoolOutcome:
    """Fallback for a product without a balancing model: shares follow the weights."""
    up = [s for s in pool.servers if health.get(s.name, True) and not s.backup and s.weight]
    total = sum(s.weight for s in up)
    shares = {s.name: (s.weight / total if total and s in up else 0.0) for s in pool.servers}
    return PoolOutcome(
        shares=shares,
        method=ShareMethod.UNKNOWN,
        eligible=frozenset(s.name for s in up),
        fair=dict(shares),
        notes=("no balancing model for this product; shares follow the weights",),
    )


def pool_health(lb: LoadBalancer, health: Mapping[str, bool] | None) -> dict[str, Health]:
    """Split health overrides (``pool/server`` or bare ``server``) by pool.

    A plain name also matches its duplicates: the nginx parser names a second identical
    ``server`` line ``NAME#2``, and ``NAME#2`` alone matches only that one. Raises
    `LbguardError` for a name that matches no server.
    """
    result: dict[str, dict[str, bool]] = {pool.name: {} for pool in lb.pools}
    for key, up in (health or {}).items():
        pool_name, slash, server_name = key.rpartition("/")
        matched = False
        for pool in lb.pools:
            if slash and pool.name != pool_name:
                continue
            for server in pool.servers:
                if _same_server(server.name, server_name):
                    result[pool.name][server.name] = up
                    matched = True
        if not matched:
            known = ", ".join(f"{p.name}/{s.name}" for p in lb.pools for s in p.servers)
            raise LbguardError(
                f"health override {key!r} names no server of the configuration",
                hint=f"use pool/server or a server name; servers: {known}",
            )
    return dict(result)


def _same_server(name: str, key: str) -> bool:
    """Tell whether server ``name`` is ``key`` or a duplicate of it (``key#2``, ...)."""
    if name == key:
        return True
    base, mark, number = name.rpartition("#")
    return bool(mark) and base == key and number.isdigit()


Imbalance = tuple[float | None, float | None]
"""Maximum over mean, and standard deviation over mean, of a pool's eligible shares."""


def imbalances(groups: Sequence[Sequence[float]]) -> list[Imbalance]:
    """Return the `Imbalance` of each group of shares; (None, None) when empty or all zero.

    Groups of one size are stacked into one array and reduced along its rows. numpy sums
    each contiguous row with the same pairwise summation as a one-dimensional array, so each
    group gets the floats that ``mean``, ``max`` and ``std`` give on its own array.
    """
    result: list[Imbalance] = [(None, None)] * len(groups)
    by_size: dict[int, list[int]] = {}
    for position, shares in enumerate(groups):
        if shares:
            by_size.setdefault(len(shares), []).append(position)

    for positions in by_size.values():
        values = np.array([groups[position] for position in positions], dtype=np.float64)
        means = values.mean(axis=1).tolist()
        maxima = values.max(axis=1).tolist()
        deviations = values.std(axis=1).tolist()
        for row, position in enumerate(positions):
            mean = means[row]
            if mean != 0:
                result[position] = (maxima[row] / mean, deviations[row] / mean)
    return result


def _server_shares(
    pool: Pool, outcome: PoolOutcome, share_of_total: float | None
) -> list[ServerShare]:
    servers = []
    for server in pool.servers:
        share = outcome.shares.get(server.name, 0.0)
        servers.append(
            ServerShare(
                pool=pool.name,
                server=server.name,
                endpoint=server.endpoint,
                share_of_pool=share,
                share_of_total=None if share_of_total is None else share * share_of_total,
                fair_share=outcome.fair.get(server.name, 0.0),
                weight=server.weight,
                backup=server.backup,
                eligible=server.name in outcome.eligible,
                location=server.location,
            )
        )
    return servers


def _pool_shares(outcomes: list[tuple[Pool, PoolOutcome, float | None]]) -> list[PoolShare]:
    servers = [_server_shares(pool, outcome, share) for pool, outcome, share in outcomes]
    spreads = imbalances([[s.share_of_pool for s in group if s.eligible] for group in servers])
    return [
        PoolShare(
            pool=pool.name,
            share_of_total=share_of_total,
            method=outcome.method,
            servers=tuple(group),
            notes=outcome.notes,
            max_over_mean=max_over_mean,
            coefficient_of_variation=variation,
            location=pool.location,
        )
        for (pool, outcome, share_of_total), group, (max_over_mean, variation) in zip(
            outcomes, servers, spreads, strict=True
        )
    ]


def _endpoints(pools: list[PoolShare]) -> tuple[EndpointShare, ...]:
    grouped: dict[str, list[ServerShare]] = {}
    for pool in pools:
        for server in pool.servers:
            members = grouped.get(server.endpoint)
            if members is None:
                grouped[server.endpoint] = [server]
            else:
                members.append(server)

    result = []
    for endpoint, members in grouped.items():
        totals = [member.share_of_total for member in members]
        known = None if None in totals else math.fsum(cast("list[float]", totals))
        keys = tuple(f"{member.pool}/{member.server}" for member in members)
        result.append(EndpointShare(endpoint, known, keys))
    return tuple(result)


def predict(
    lb: LoadBalancer,
    profile: TrafficProfile | None = None,
    health: Mapping[str, bool] | None = None,
) -> Prediction:
    """Predict rule, pool, server and endpoint shares of *lb* for *profile*.

    Without a profile (or with `default_profile`) the share of each rule and pool is
    unknown and each pool's servers are compared over uniformly spread keys. *health*
    maps ``pool/server`` or a bare server name to True (up) or False (down).
    """
    traffic = profile if profile is not None else default_profile()
    route_known = not traffic.is_default and len(traffic) > 0 and traffic.total > 0
    healths = pool_health(lb, health)
    balancer = BALANCERS.get(lb.product, _weights_only)

    serving_pools = frozenset(pool.name for pool in lb.pools if pool.servers)
    routing = route(lb.frontends, traffic, serving_pools) if route_known else RoutingResult()
    assumptions = list(routing.assumptions)
    unevaluated = list(routing.unevaluated)
    if not route_known:
        assumptions.append(
            "no traffic profile: route and pool shares are unknown; each "
            "pool's servers are compared over uniformly spread keys"
        )
    if lb.product not in BALANCERS:
        assumptions.append(f"no balancing model for {lb.product}; shares follow weights")

    outcomes: list[tuple[Pool, PoolOutcome, float | None]] = []
    total = traffic.total
    for pool in lb.pools:
        weights = routing.pool_weights.get(pool.name)
        requests = None
        share_of_total: float | None = None
        if route_known:
            if weights is None:
                weights = np.zeros(len(traffic), dtype=np.float64)
            pool_total = weights.sum()
            share_of_total = float(pool_total) / total
            if pool_total > 0:
                requests = PoolRequests(traffic, weights)
        outcome = balancer(pool, requests, healths[pool.name])
        outcomes.append((pool, outcome, share_of_total))
        if outcome.method is ShareMethod.UNKNOWN:
            unevaluated.append(
                UnevaluatedItem(
                    text=pool.balance.text or f"balance {pool.balance.algorithm}",
                    reason="; ".join(outcome.notes),
                    location=pool.balance.location,
                    share=share_of_total,
                )
            )

    pools = _pool_shares(outcomes)
    unevaluated.extend(_missing_pools(lb, routing))
    rules: tuple[RuleShare, ...] = tuple(routing.rules) if route_known else _unknown_rules(lb)
    return Prediction(
        rules=rules,
        pools=tuple(pools),
        endpoints=_endpoints(pools),
        unevaluated=tuple(unevaluated),
        assumptions=tuple(assumptions),
        traffic=traffic.description,
        route_level_known=route_known,
    )


def _missing_pools(lb: LoadBalancer, routing: RoutingResult) -> list[UnevaluatedItem]:
    defined = {pool.name for pool in lb.pools}
    total = routing.pool_weights.any_traffic()
    items = []
    for rule in routing.rules:
        if rule.target in defined or rule.target not in routing.pool_weights:
            continue
        items.append(
            UnevaluatedItem(
                text=rule.rule.text if rule.rule else f"default_backend {rule.target}",
                reason=f"pool {rule.target!r} is not defined",
                location=rule.location,
                share=rule.share if total else None,
            )
        )
    return items


def _unknown_rules(lb: LoadBalancer) -> tuple[RuleShare, ...]:
    """List every rule with unknown shares, for a prediction without traffic."""
    from lbguard.predict.routing import NO_DEFAULT_TARGET, local_target, reaches_default

    rules = []
    for frontend in lb.frontends:
        for index, rule in enumerate(frontend.rules):
            rules.append(
                RuleShare(
                    frontend.name, index, rule, local_target(rule), None, None, rule.location
                )
            )
        if not reaches_default(frontend):
            continue
        target = frontend.default_pool or NO_DEFAULT_TARGET
        rules.append(
            RuleShare(frontend.name, -1, None, target, None, None, frontend.default_location)
        )
    return tuple(rules)
