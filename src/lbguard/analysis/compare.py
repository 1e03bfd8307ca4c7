"""Predicted versus observed shares, and the rules that carry the observed traffic.

`observe_and_compare` builds a traffic profile from the logged requests, routes it through
the configuration with `lbguard.predict.predict`, and compares the predicted shares with
the shares the log shows. A server or pool is flagged only when the difference is
significant (binomial z-test, Bonferroni-corrected over every test) and also large enough
to matter (the effect-size floor in `CompareOptions`): with millions of requests, tiny
differences are significant but harmless.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import scipy.stats  # type: ignore[import-untyped]

from lbguard.analysis.aggregates import POOL_KEY, SERVER_KEY
from lbguard.analysis.result import NO_SERVER
from lbguard.errors import LogError
from lbguard.model import LoadBalancer, Location, Product
from lbguard.predict import predict
from lbguard.predict.result import Prediction, RuleShare
from lbguard.traffic import TrafficProfile, from_columns


@dataclass(frozen=True)
class CompareOptions:
    """Thresholds for flagging a difference between prediction and observation."""

    alpha: float = 0.001
    """Family-wise significance level; each test uses alpha over the number of tests."""

    min_points: float = 0.05
    """A difference of at least this fraction (5 points) is large enough on its own..."""

    min_ratio: float = 1.25
    """... and so is a ratio of at least this between the larger and smaller share, when
    the difference is at least ``ratio_min_points``."""

    ratio_min_points: float = 0.01


@dataclass(frozen=True)
class ShareComparison:
    """One server's or pool's predicted and observed share."""

    key: str
    """``pool/server`` for a server, the pool name for a pool."""

    observed: int
    """Requests in the log."""

    trials: int
    """Requests the share is taken of: the pool's server-bound requests for a server, all
    pool-bound requests for a pool."""

    observed_share: float
    predicted_share: float | None
    """None when the prediction has no value (unknown route level, server missing from
    the configuration)."""

    z: float | None
    p_value: float | None
    flagged: bool
    reason: str
    """Explanation of the verdict, with the numbers."""


@dataclass(frozen=True)
class RuleAttribution:
    """A routing rule that sends observed traffic to a pool."""

    frontend: str
    index: int
    """Position of the rule in its frontend; -1 for the default-pool line."""

    text: str
    location: Location
    pool: str
    share: float
    """Fraction of the observed requests the rule receives when they are re-routed
    through the configuration."""


@dataclass(frozen=True)
class Comparison:
    """Prediction against observation for one configuration and one log."""

    prediction: Prediction
    servers: tuple[ShareComparison, ...]
    pools: tuple[ShareComparison, ...]
    attributions: Mapping[str, tuple[RuleAttribution, ...]] = field(default_factory=dict)
    """Pool name to the rules that route observed traffic to it, largest share first."""

    unmatched: tuple[str, ...] = ()
    """Observed ``pool/server`` keys that the configuration does not have."""

    notes: tuple[str, ...] = ()
    """Information about what the comparison left out, such as requests the log gives
    no pool for."""

    @property
    def flagged(self) -> tuple[ShareComparison, ...]:
        return tuple(c for c in (*self.pools, *self.servers) if c.flagged)


def profile_from_requests(
    con: Any,
    table: str = "requests",
    *,
    captured_headers: Sequence[str] = (),
    where: str | None = None,
) -> TrafficProfile:
    """Build a traffic profile with one row per distinct request shape in the log.

    ``captured_headers`` names the HAProxy ``capture request header`` entries in order
    (``host``, ``x-forwarded-for``...); a captured ``host`` fills the host column when the
    log has none. Columns with no value in the whole log are not marked known, so rules
    that need them are reported as unevaluated instead of guessed.
    """
    names = [name.lower() for name in captured_headers]
    host = "host"
    if "host" in names:
        host = f"coalesce(host, captured_request_headers[{names.index('host') + 1}])"
    headers = {name: f"captured_request_headers[{i + 1}]" for i, name in enumerate(names) if name}
    header_select = "".join(
        f", {expression} AS h{i}" for i, expression in enumerate(headers.values())
    )
    rows = con.execute(
        f"""
        SELECT count(*) AS weight, frontend, method, {host} AS host, path, query,
            client_ip {header_select}
        FROM {table} {f"WHERE {where}" if where else ""}
        GROUP BY ALL
        """
    ).fetchall()

    columns = list(zip(*rows, strict=True)) if rows else [()] * (7 + len(headers))
    named = ("frontend", "method", "host", "path", "query", "client_ip")
    known = {name for name, values in zip(named, columns[1:7], strict=True) if any(values)}
    header_columns = {
        name: [value or "" for value in columns[7 + i]] for i, name in enumerate(headers)
    }
    known |= {f"header:{name}" for name, values in header_columns.items() if any(values)}
    text = {
        name: [value or "" for value in values]
        for name, values in zip(named, columns[1:7], strict=True)
    }
    return from_columns(
        [float(w) for w in columns[0]],
        **text,
        headers=header_columns,
        known=known,
        description=f"observed requests from the log ({len(rows):,} request shapes)",
    )


def observed_counts(
    con: Any, table: str = "requests", *, where: str | None = None
) -> dict[str, int]:
    """Return requests per ``pool/server`` key (NO_SERVER for no server reached)."""
    rows = con.execute(
        f"SELECT {POOL_KEY} || '/' || {SERVER_KEY}, count(*) FROM {table} "
        f"{f'WHERE {where}' if where else ''} GROUP BY ALL"
    ).fetchall()
    return {key: int(count) for key, count in rows}


def compare(
    prediction: Prediction,
    observed: Mapping[str, int],
    options: CompareOptions | None = None,
) -> Comparison:
    """Compare predicted shares with observed ``pool/server`` counts."""
    options = options or CompareOptions()
    predicted_pools = {pool.pool: pool for pool in prediction.pools}

    by_pool: dict[str, dict[str, int]] = {}
    poolless = 0
    for key, count in observed.items():
        pool, _, server = key.rpartition("/")
        if pool == NO_SERVER:
            poolless += count
            continue
        by_pool.setdefault(pool, {})[server] = count
    notes = []
    if poolless:
        notes.append(
            f"{poolless:,} logged {_plural(poolless, 'request')} name no pool, so they are "
            "left out of the comparison; log the pool (HAProxy's backend name) to compare "
            "them"
        )

    pool_trials = sum(
        count
        for pool, servers in by_pool.items()
        if pool in predicted_pools
        for count in servers.values()
    )
    tests = len(predicted_pools) + sum(len(p.servers) for p in prediction.pools)
    level = options.alpha / max(tests, 1)

    pools: list[ShareComparison] = []
    servers: list[ShareComparison] = []
    unmatched: list[str] = []
    for name in sorted(by_pool.keys() | predicted_pools.keys()):
        counts = by_pool.get(name, {})
        predicted = predicted_pools.get(name)
        if predicted is None:
            unmatched.extend(f"{name}/{server}" for server in counts)
            continue

        total = sum(counts.values())
        pools.append(
            _test(
                name,
                total,
                pool_trials,
                predicted=predicted.share_of_total,
                level=level,
                options=options,
            )
        )
        bound = total - counts.get(NO_SERVER, 0)
        known = {share.server: share for share in predicted.servers}
        for server, count in sorted(counts.items()):
            if server == NO_SERVER:
                continue
            share = known.get(server)
            if share is None:
                unmatched.append(f"{name}/{server}")
                continue
            servers.append(
                _test(
                    f"{name}/{server}",
                    count,
                    bound,
                    predicted=share.share_of_pool,
                    level=level,
                    options=options,
                )
            )
        for server, share in known.items():
            if server not in counts and bound:
                servers.append(
                    _test(
                        f"{name}/{server}",
                        0,
                        bound,
                        predicted=share.share_of_pool,
                        level=level,
                        options=options,
                    )
                )

    return Comparison(
        prediction=prediction,
        servers=tuple(servers),
        pools=tuple(pools),
        attributions=attribute(prediction.rules),
        unmatched=tuple(unmatched),
        notes=tuple(notes),
    )


def _evidence(z: float, p_value: float) -> str:
    """Describe the test statistic in words a reader can use: no ``inf`` and no ``p = 0``."""
    if math.isinf(z):
        return "a predicted share of 0 % or 100 % leaves no room for chance"
    # Below about 1e-300 the float p-value underflows to 0.
    p_text = "p < 1e-300" if p_value < 1e-300 else f"p = {p_value:.2g}"
    return f"z = {z:.1f}, {p_text}"


def _plural(count: int, word: str) -> str:
    return word if count == 1 else word + "s"


# Product that writes each value of the ``lb`` column; formats missing here (generic
# JSON) can come from any product.
_LOG_PRODUCTS = {
    "haproxy-http": Product.HAPROXY,
    "haproxy-tcp": Product.HAPROXY,
    "nginx": Product.NGINX,
    "ingress-nginx": Product.NGINX,
    "aws-alb": Product.AWS_ALB,
    "envoy": Product.ENVOY,
    "traefik": Product.TRAEFIK,
    "caddy": Product.CADDY,
}


def check_log_product(lb: LoadBalancer, con: Any, table: str = "requests") -> None:
    """Raise `LogError` when the log was written by another product than ``lb``'s.

    A Gateway API configuration runs on several products, so any log is accepted.
    """
    if lb.product == Product.GATEWAY_API:
        return
    values = [row[0] for row in con.execute(f"SELECT DISTINCT lb FROM {table}").fetchall()]
    products = {_LOG_PRODUCTS[value] for value in values if value in _LOG_PRODUCTS}
    if products and lb.product not in products:
        found = ", ".join(sorted(str(value) for value in values if value in _LOG_PRODUCTS))
        raise LogError(
            f"the log is in the {found} format, but the configuration is for "
            f"{lb.product.value}: their pools and servers cannot be compared",
            hint=f"give the {lb.product.value} access log of this configuration",
        )


def _test(
    key: str,
    count: int,
    trials: int,
    *,
    predicted: float | None,
    level: float,
    options: CompareOptions,
) -> ShareComparison:
    """Binomial z-test of ``count`` successes in ``trials`` against share ``predicted``."""
    observed = count / trials if trials else 0.0
    if predicted is None or trials == 0:
        return ShareComparison(
            key, count, trials, observed, predicted, None, None, False,
            "no predicted share to compare with",
        )  # fmt: skip

    variance = trials * predicted * (1.0 - predicted)
    difference = count - trials * predicted
    if variance > 0:
        z = difference / math.sqrt(variance)
        p_value = float(2.0 * scipy.stats.norm.sf(abs(z)))
    else:
        # A predicted share of exactly 0 or 1 leaves no room for chance.
        z = math.copysign(math.inf, difference) if difference else 0.0
        p_value = 0.0 if difference else 1.0

    points = abs(observed - predicted)
    high, low = max(observed, predicted), min(observed, predicted)
    ratio = high / low if low > 0 else math.inf
    large = points >= options.min_points or (
        ratio >= options.min_ratio and points >= options.ratio_min_points
    )
    significant = p_value < level
    flagged = large and significant
    reason = (
        f"observed {observed:.1%} of {trials:,} requests against {predicted:.1%} predicted "
        f"({observed - predicted:+.1%} points, {_evidence(z, p_value)})"
    )
    if not flagged:
        reason += "; within " + ("chance" if not significant else "the effect-size floor")
    return ShareComparison(key, count, trials, observed, predicted, z, p_value, flagged, reason)


def attribute(rules: Sequence[RuleShare]) -> dict[str, tuple[RuleAttribution, ...]]:
    """Group the rules that route traffic to a pool by pool, largest share first."""
    result: dict[str, list[RuleAttribution]] = {}
    for rule in rules:
        if not rule.share:
            continue
        result.setdefault(rule.target, []).append(
            RuleAttribution(
                frontend=rule.frontend,
                index=rule.index,
                text=rule.rule.text if rule.rule is not None else "(default pool)",
                location=rule.location,
                pool=rule.target,
                share=rule.share,
            )
        )
    return {pool: tuple(sorted(items, key=lambda a: -a.share)) for pool, items in result.items()}


def observe_and_compare(
    lb: LoadBalancer,
    con: Any,
    table: str = "requests",
    *,
    health: Mapping[str, bool] | None = None,
    captured_headers: Sequence[str] = (),
    since: datetime | None = None,
    until: datetime | None = None,
    options: CompareOptions | None = None,
) -> Comparison:
    """Re-route the logged requests through ``lb`` and compare with what the log shows.

    ``con`` and ``table`` are those of a `lbguard.logs.LogLoad`. ``since`` and ``until``
    keep the requests of one time span, such as the span a configuration was live.
    """
    conditions = []
    if since is not None:
        conditions.append(f"ts >= TIMESTAMPTZ '{since.isoformat()}'")
    if until is not None:
        conditions.append(f"ts < TIMESTAMPTZ '{until.isoformat()}'")
    where = " AND ".join(conditions) or None

    check_log_product(lb, con, table)
    profile = profile_from_requests(con, table, captured_headers=captured_headers, where=where)
    prediction = predict(lb, profile, health)
    return compare(prediction, observed_counts(con, table, where=where), options)
