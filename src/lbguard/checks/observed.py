"""Observation rules (LB6xx): where the access logs depart from the prediction.

They run only when logs are given (`lbguard check CONFIG --logs LOG`). The comparison in
`lbguard.analysis.compare` re-routes the logged requests through the configuration and
flags a share only when the difference is both significant and large.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from typing import TYPE_CHECKING

from lbguard.checks.interface import CheckContext, Example, Family, Finding, Options, Rule
from lbguard.checks.wording import join_names, percent
from lbguard.model import Location, Product, Severity

if TYPE_CHECKING:
    # Imported for types only: scipy, which the comparison needs, is slow to import.
    from lbguard.analysis.compare import Comparison, ShareComparison


def check_observed_departures(context: CheckContext, options: Options) -> Iterator[Finding]:
    observation = context.observation
    if observation is None:
        return
    for comparison in observation.flagged:
        pool_name, slash, server_name = comparison.key.partition("/")
        pool = context.pools.get(pool_name)
        locations: list[Location] = []
        if pool is not None:
            server = pool.server(server_name) if slash else None
            locations.append(server.location if server is not None else pool.location)
        what = f"server {comparison.key}" if slash else f"pool {comparison.key}"
        of = f"{pool_name}'s requests" if slash else "all pool-bound requests"
        test = _test_text(comparison)
        reason = (
            f"The logs show {what} with {percent(comparison.observed_share)} of {of} "
            f"({comparison.observed:,} of {comparison.trials:,}) where the configuration "
            f"predicts {percent(comparison.predicted_share or 0.0)}{test}."
        )
        reason += _attribution(observation, pool_name, locations)
        yield OBSERVED_DEPARTURE.finding(
            reason,
            locations,
            subject=comparison.key,
            metrics=_metrics(comparison),
        )


def _test_text(comparison: ShareComparison) -> str:
    """Describe the significance test in words a reader can use, or return ''."""
    if comparison.z is None or comparison.p_value is None:
        return ""
    if not math.isfinite(comparison.z):
        return " (a predicted share of 0 % or 100 % leaves no room for chance)"
    p_value = "p < 1e-300" if comparison.p_value < 1e-300 else f"p = {comparison.p_value:.2g}"
    return f" (z = {comparison.z:.1f}, {p_value})"


def _attribution(observation: Comparison, pool: str, locations: list[Location]) -> str:
    rules = observation.attributions.get(pool, ())
    if not rules:
        return ""
    parts = [
        f"`{rule.text}` ({rule.frontend}, line {rule.location.line}) {percent(rule.share)}"
        for rule in rules[:3]
    ]
    locations.extend(rule.location for rule in rules[:3])
    return f" Rules that route the logged requests to {pool}: {join_names(parts)}."


def _metrics(comparison: ShareComparison) -> dict[str, float]:
    metrics = {"observed_share": comparison.observed_share, "requests": float(comparison.observed)}
    if comparison.predicted_share is not None:
        metrics["predicted_share"] = comparison.predicted_share
    if comparison.z is not None:
        metrics["z"] = comparison.z
    return metrics


OBSERVED_DEPARTURE = Rule(
    id="LB601",
    name="observed.share-departs-from-prediction",
    family=Family.OBSERVED,
    severity=Severity.WARNING,
    summary="A pool or server receives a share of the logged requests that differs "
    "significantly and substantially from what the configuration predicts for them.",
    rationale="The prediction routes the logged requests themselves through the "
    "configuration, so a departure means the running load balancer is not the one "
    "configured (a stale reload, runtime weight changes, servers marked down) or that "
    "persistence, retries or health changes move traffic.",
    fix_hint="Compare the running configuration and the runtime server states (HAProxy "
    "`show servers state`, nginx upstream status) with the file, and check the health "
    "checks of the servers named.",
    check=check_observed_departures,
    needs="logs",
    examples=(
        Example(
            Product.HAPROXY,
            bad="backend be_web\n    server web1 10.0.0.1:80\n    server web2 10.0.0.2:80\n"
            "# log: web1 served 900 of 1,000 requests",
            good="backend be_web\n    server web1 10.0.0.1:80\n    server web2 10.0.0.2:80\n"
            "# log: web1 served 503 of 1,000 requests",
        ),
    ),
)


def check_unknown_servers(context: CheckContext, options: Options) -> Iterator[Finding]:
    observation = context.observation
    if observation is None:
        return
    for note in observation.notes:
        yield UNKNOWN_SERVER.finding(note, [], severity=Severity.INFO)
    if not observation.unmatched:
        return
    by_pool: dict[str, list[str]] = {}
    for key in observation.unmatched:
        pool_name, _, server_name = key.rpartition("/")
        by_pool.setdefault(pool_name, []).append(server_name)
    for pool_name, servers in sorted(by_pool.items()):
        pool = context.pools.get(pool_name)
        if pool is None:
            reason = (
                f"The logs name pool {pool_name} ({join_names(servers)}), which the "
                "configuration does not define: the logs come from another configuration."
            )
            locations: list[Location] = []
        else:
            reason = (
                f"The logs name {join_names(servers)} in {pool_name}, which the configuration "
                "does not list: servers were added at run time or the logs come from "
                "another configuration, so the prediction misses part of the pool."
            )
            locations = [pool.location]
        yield UNKNOWN_SERVER.finding(reason, locations, subject=pool_name)


UNKNOWN_SERVER = Rule(
    id="LB602",
    name="observed.unknown-server",
    family=Family.OBSERVED,
    severity=Severity.WARNING,
    summary="The logs name a pool or server that the configuration does not have.",
    rationale="Requests served by servers the configuration does not know cannot be "
    "predicted or audited: the file reviewed is not what runs.",
    fix_hint="Audit the configuration that produced the logs, or add the servers created "
    "at run time (API, DNS) to the file.",
    check=check_unknown_servers,
    needs="logs",
    examples=(
        Example(
            Product.HAPROXY,
            bad="backend be_web\n    server web1 10.0.0.1:80\n# log: be_web/web9 served requests",
            good="backend be_web\n    server web1 10.0.0.1:80\n    server web9 10.0.0.9:80",
        ),
    ),
)
