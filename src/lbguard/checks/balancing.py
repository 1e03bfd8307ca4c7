"""Balancing rules (LB2xx): how a pool spreads its requests over its servers."""

from __future__ import annotations

import statistics
from collections.abc import Iterator, Sequence

from lbguard.checks.interface import CheckContext, Family, Finding, Option, Options, Rule
from lbguard.checks.wording import percent, times
from lbguard.model import Severity
from lbguard.predict.result import PoolShare, ServerShare, ShareMethod

_SHARE_IS_MEASURED = (ShareMethod.EXACT, ShareMethod.EXPECTED)
"""Methods whose shares reflect the algorithm itself; load-dependent shares are weight
shares by assumption, so a skew against weights cannot show there."""


def check_over_fair_share(context: CheckContext, options: Options) -> Iterator[Finding]:
    factor = float(options["factor"])
    for pool in context.prediction.pools:
        if pool.method is ShareMethod.UNKNOWN or pool.share_of_total == 0.0:
            continue
        eligible = [server for server in pool.servers if server.eligible]
        if len(eligible) < 2:
            continue
        for server in eligible:
            finding = _server_finding(context, pool, server, eligible, factor)
            if finding is not None:
                yield finding


def _server_finding(
    context: CheckContext,
    pool: PoolShare,
    server: ServerShare,
    eligible: Sequence[ServerShare],
    factor: float,
) -> Finding | None:
    equal = 1.0 / len(eligible)
    over_weight = server.share_of_pool / server.fair_share if server.fair_share > 0 else 0.0
    over_equal = server.share_of_pool / equal

    if pool.method in _SHARE_IS_MEASURED and over_weight > factor:
        reason = (
            f"{server.server} receives {percent(server.share_of_pool)} of {pool.pool}'s "
            f"requests, {times(over_weight)} its weight share ({percent(server.fair_share)}): "
            f"the {pool.method} {_algorithm(context, pool.pool)} placement concentrates the "
            "traffic profile's keys on it."
        )
        ratio = over_weight
    elif over_equal > factor:
        reason = _weight_reason(pool, server, eligible, over_equal, equal)
        ratio = over_equal
    else:
        return None

    if server.share_of_total is not None:
        reason += f" That is {percent(server.share_of_total)} of all requests."
    pool_location = context.pools[pool.pool].location if pool.pool in context.pools else None
    return OVER_FAIR_SHARE.finding(
        reason,
        [server.location, *([pool_location] if pool_location else [])],
        subject=server.key,
        metrics={
            "share_of_pool": server.share_of_pool,
            "fair_share": server.fair_share,
            "equal_share": equal,
            "ratio": ratio,
        },
    )


def _weight_reason(
    pool: PoolShare,
    server: ServerShare,
    eligible: Sequence[ServerShare],
    over_equal: float,
    equal: float,
) -> str:
    others = [other.weight for other in eligible if other is not server]
    received = (
        f"it receives {percent(server.share_of_pool)} of {pool.pool}'s requests, "
        f"{times(over_equal)} an equal share ({percent(equal)})."
    )
    typical = statistics.median(others)
    if typical <= 0 or server.weight <= typical:
        return f"{server.server} is not weighted above its peers, yet {received}"

    if len(set(others)) == 1:
        peers = f"the other servers' ({others[0]})"
    else:
        peers = f"the median of the other servers' weights ({typical:g})"
    return (
        f"{server.server}'s weight ({server.weight}) is {times(server.weight / typical)} "
        f"{peers} in {pool.pool}; {received}"
    )


def _algorithm(context: CheckContext, pool_name: str) -> str:
    pool = context.pools.get(pool_name)
    return str(pool.balance.algorithm) if pool is not None else "balancing"


OVER_FAIR_SHARE = Rule(
    id="LB201",
    name="balancing.server-over-fair-share",
    family=Family.BALANCING,
    severity=Severity.WARNING,
    summary="A server receives more than the configured factor times its fair share of "
    "its pool: its weight share, or an equal split of the pool.",
    rationale="A server that takes a multiple of its peers' load saturates first, while "
    "the pool as a whole looks healthy. A weight typo (100 for 10) or a hash key with few "
    "distinct values (one busy client, one hot URL) are the usual causes.",
    fix_hint="Check the server's weight against its peers; for hashed pools, hash on a key "
    "with more distinct values or use consistent hashing with a bounded load "
    "(hash-balance-factor).",
    check=check_over_fair_share,
    options=(
        Option(
            "factor",
            1.5,
            "multiple of the fair share above which a server is reported",
            minimum=1.0,
        ),
    ),
    bad_example="backend be_web\n    server web1 10.0.0.1:80 weight 10\n"
    "    server web2 10.0.0.2:80 weight 10\n    server web3 10.0.0.3:80 weight 100",
    good_example="backend be_web\n    server web1 10.0.0.1:80 weight 10\n"
    "    server web2 10.0.0.2:80 weight 10\n    server web3 10.0.0.3:80 weight 10",
)
