"""Balancing rules (LB201, LB202, LB208, LB212): how a pool spreads its requests over its
servers. The hash rules are in `lbguard.checks.hashing`, the backup rules in
`lbguard.checks.backups`."""

from __future__ import annotations

import statistics
from collections.abc import Iterator, Sequence

from lbguard.checks.interface import CheckContext, Example, Family, Finding, Option, Options, Rule
from lbguard.checks.pools import active_servers
from lbguard.checks.wording import join_names, percent, times
from lbguard.model import Algorithm, Pool, Product, Server, Severity
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
    capacity = context.pool_capacity(pool.pool)

    if capacity is not None:
        total = sum(capacity.get(other.server, 1.0) for other in eligible)
        fair = capacity.get(server.server, 1.0) / total
        ratio = server.share_of_pool / fair
        if ratio <= factor:
            return None
        reason = (
            f"{server.server} receives {percent(server.share_of_pool)} of {pool.pool}'s "
            f"requests, {times(ratio)} its capacity share ({percent(fair)}) from the "
            "capacity hints."
        )
    elif pool.method in _SHARE_IS_MEASURED and over_weight > factor:
        reason = (
            f"{server.server} receives {percent(server.share_of_pool)} of {pool.pool}'s "
            f"requests, {times(over_weight)} its weight share ({percent(server.fair_share)}): "
            f"the {pool.method} {_algorithm(context, pool.pool)} placement concentrates the "
            "traffic profile's keys on it."
        )
        ratio = over_weight
        fair = server.fair_share
    elif over_equal > factor:
        reason = _weight_reason(pool, server, eligible, over_equal, equal)
        ratio = over_equal
        fair = server.fair_share
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
            "fair_share": fair,
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
    "its pool: its capacity share from the capacity hints, else its weight share or an "
    "equal split of the pool.",
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
    needs="traffic",
    examples=(
        Example(
            Product.HAPROXY,
            bad="backend be_web\n    server web1 10.0.0.1:80 weight 10\n"
            "    server web2 10.0.0.2:80 weight 10\n    server web3 10.0.0.3:80 weight 100",
            good="backend be_web\n    server web1 10.0.0.1:80 weight 10\n"
            "    server web2 10.0.0.2:80 weight 10\n    server web3 10.0.0.3:80 weight 10",
        ),
        Example(
            Product.NGINX,
            bad="upstream web {\n    server 10.0.0.1:80 weight=10;\n"
            "    server 10.0.0.2:80 weight=10;\n    server 10.0.0.3:80 weight=100;\n}",
            good="upstream web {\n    server 10.0.0.1:80 weight=10;\n"
            "    server 10.0.0.2:80 weight=10;\n    server 10.0.0.3:80 weight=10;\n}",
        ),
    ),
)


# --------------------------------------------------------------------------------------
# LB202 balancing.weight-outlier


def check_weight_outliers(context: CheckContext, options: Options) -> Iterator[Finding]:
    factor = float(options["factor"])
    for pool in context.lb.pools:
        servers = active_servers(pool)
        if len(servers) < 2:
            continue
        capacity = context.pool_capacity(pool.name)
        per_unit = {
            server.name: server.weight / (capacity or {}).get(server.name, 1.0)
            for server in servers
        }
        # The lower median of all servers: with two servers it is the smaller weight, and
        # one outlier cannot shift it.
        typical = statistics.median_low(per_unit.values())
        for server in servers:
            ratio = per_unit[server.name] / typical
            if 1 / factor < ratio < factor:
                continue
            yield _outlier(pool, server, servers, ratio, capacity is not None)


def _outlier(
    pool: Pool, server: Server, servers: Sequence[Server], ratio: float, hinted: bool
) -> Finding:
    others = sorted({other.weight for other in servers if other is not server})
    peers = join_names([str(weight) for weight in others], limit=4)
    if ratio >= 1:
        effect = f"{times(ratio)} the pool's median"
    else:
        effect = f"1/{times(1 / ratio)} of the pool's median"
    basis = " per unit of capacity from the capacity hints" if hinted else ""
    share = server.weight / sum(other.weight for other in servers)
    reason = (
        f"{server.name}'s weight ({server.weight}) in {pool.name} is {effect}{basis} "
        f"(the other weights: {peers}), so weight-following algorithms give it "
        f"{percent(share)} of the pool. A factor like this is usually a typo."
    )
    return WEIGHT_OUTLIER.finding(
        reason,
        [server.location, pool.location],
        subject=f"{pool.name}/{server.name}",
        metrics={"ratio": ratio, "weight_share": share},
    )


WEIGHT_OUTLIER = Rule(
    id="LB202",
    name="balancing.weight-outlier",
    family=Family.BALANCING,
    severity=Severity.WARNING,
    summary="A server's weight differs from the median weight of its pool by the configured "
    "factor or more.",
    rationale="Weights set the share of every weight-following algorithm. One weight ten "
    "times its peers' (100 for 10) sends most of the pool to one server; one a tenth of "
    "its peers' leaves a server idle. Real capacity rarely differs that much inside a pool.",
    fix_hint="Correct the weight, or record the real capacity difference in the "
    "[capacity] table of lbguard.toml.",
    check=check_weight_outliers,
    options=(
        Option(
            "factor",
            5.0,
            "ratio to the pool's median weight that is reported, above or below",
            minimum=1.0,
        ),
    ),
    examples=(
        Example(
            Product.HAPROXY,
            bad="backend be_web\n    server web1 10.0.0.1:80 weight 10\n"
            "    server web2 10.0.0.2:80 weight 10\n    server web3 10.0.0.3:80 weight 100",
            good="backend be_web\n    server web1 10.0.0.1:80 weight 10\n"
            "    server web2 10.0.0.2:80 weight 10\n    server web3 10.0.0.3:80 weight 20",
        ),
        Example(
            Product.NGINX,
            bad="upstream web {\n    server 10.0.0.1:80 weight=10;\n"
            "    server 10.0.0.2:80 weight=10;\n    server 10.0.0.3:80 weight=100;\n}",
            good="upstream web {\n    server 10.0.0.1:80 weight=10;\n"
            "    server 10.0.0.2:80 weight=10;\n    server 10.0.0.3:80 weight=20;\n}",
        ),
    ),
)


# --------------------------------------------------------------------------------------
# LB208 balancing.leastconn-uneven-weights


def check_leastconn_weights(context: CheckContext, options: Options) -> Iterator[Finding]:
    factor = float(options["factor"])
    nginx = context.lb.product is Product.NGINX
    for pool in context.lb.pools:
        if pool.balance.algorithm is not Algorithm.LEAST_CONN:
            continue
        servers = active_servers(pool)
        if len(servers) < 2:
            continue
        heaviest = max(servers, key=lambda server: server.weight)
        lightest = min(servers, key=lambda server: server.weight)
        ratio = heaviest.weight / lightest.weight
        if ratio < factor:
            continue

        if nginx:
            behaviour = (
                "nginx least_conn picks the lowest active connections per weight, counted "
                "per worker process unless the upstream has a zone"
            )
        else:
            behaviour = (
                "HAProxy 2.6 leastconn rotates over idle servers regardless of weight and "
                "weighs only the in-flight requests of busy ones"
            )
        reason = (
            f"{pool.name} balances by least connections over weights from "
            f"{lightest.weight} ({lightest.name}) to {heaviest.weight} ({heaviest.name}), "
            f"{times(ratio)} apart: {behaviour}, so the request shares follow latency and "
            "concurrency, not the weights, and the light servers take more than their "
            "weight suggests at low load."
        )
        yield LEASTCONN_WEIGHTS.finding(
            reason,
            [pool.balance.location, lightest.location, heaviest.location],
            subject=pool.name,
            metrics={"weight_ratio": ratio},
        )


LEASTCONN_WEIGHTS = Rule(
    id="LB208",
    name="balancing.leastconn-uneven-weights",
    family=Family.BALANCING,
    severity=Severity.WARNING,
    summary="A least-connections pool has servers whose weights differ by the configured "
    "factor or more, so its shares depend on load rather than weights.",
    rationale="Least connections balances concurrency over weight, not request counts. "
    "At low load idle servers are chosen in turn whatever their weight, and at high load "
    "a slow server holds connections longer. Shares then differ from the weights in a way "
    "no configuration review can predict.",
    fix_hint="Use round robin when the weights express capacity, or keep the servers of a "
    "least-connections pool of similar size.",
    check=check_leastconn_weights,
    options=(
        Option(
            "factor",
            3.0,
            "ratio between the largest and smallest weight that is reported",
            minimum=1.0,
        ),
    ),
    examples=(
        Example(
            Product.HAPROXY,
            bad="backend be_app\n    balance leastconn\n"
            "    server app1 10.0.0.1:80 weight 10\n    server app2 10.0.0.2:80 weight 100",
            good="backend be_app\n    balance roundrobin\n"
            "    server app1 10.0.0.1:80 weight 10\n    server app2 10.0.0.2:80 weight 100",
        ),
        Example(
            Product.NGINX,
            bad="upstream app {\n    least_conn;\n    server 10.0.0.1:80 weight=1;\n"
            "    server 10.0.0.2:80 weight=10;\n}",
            good="upstream app {\n    server 10.0.0.1:80 weight=1;\n"
            "    server 10.0.0.2:80 weight=10;\n}",
        ),
    ),
)


# --------------------------------------------------------------------------------------
# LB212 balancing.upstream-without-zone

_PER_WORKER_ALGORITHMS = (Algorithm.ROUND_ROBIN, Algorithm.LEAST_CONN, Algorithm.RANDOM)
"""nginx methods whose state (position, connection counts) each worker keeps alone
without a zone; hash and ip_hash place keys the same way in every worker."""


def check_upstream_without_zone(context: CheckContext, options: Options) -> Iterator[Finding]:
    if context.lb.product is not Product.NGINX:
        return
    workers = _worker_processes(context)
    if workers is None:
        return
    for pool in context.lb.pools:
        algorithm = pool.balance.algorithm
        if pool.shared_state or algorithm not in _PER_WORKER_ALGORITHMS:
            continue
        if len(active_servers(pool)) < 2:
            continue
        limited = [server for server in pool.servers if server.maxconn is not None]
        reason = (
            f"{pool.name} has no zone and nginx runs {workers} worker processes: each worker "
            "keeps its own balancing state, so each starts its round robin at the first "
            "server with the highest weight"
        )
        if algorithm is Algorithm.LEAST_CONN:
            reason += ", and least_conn compares only the worker's own connections"
        if limited:
            reason += ", and max_conns limits each worker, not the server"
        reason += "; at low request rates the first server takes more than its share."
        severity = (
            Severity.WARNING if algorithm is Algorithm.LEAST_CONN or limited else Severity.INFO
        )
        yield UPSTREAM_WITHOUT_ZONE.finding(
            reason, [pool.location], subject=pool.name, severity=severity
        )


def _worker_processes(context: CheckContext) -> str | None:
    """Return the worker count as written when it may exceed one, else None (nginx's
    default is one worker)."""
    values = [value for name, value in context.lb.settings if name == "worker_processes"]
    if not values:
        return None
    value = values[-1].strip()
    if value == "auto":
        return "auto (one per CPU)"
    return value if value.isdigit() and int(value) > 1 else None


UPSTREAM_WITHOUT_ZONE = Rule(
    id="LB212",
    name="balancing.upstream-without-zone",
    family=Family.BALANCING,
    severity=Severity.WARNING,
    summary="An nginx upstream without a zone is balanced by several worker processes, "
    "each with its own state.",
    rationale="Without `zone`, every worker keeps its own round-robin position, "
    "least_conn counts, failure counts and max_conns. Each worker sends its first request "
    "to the same server, connection limits multiply by the number of workers, and one "
    "worker's failed server still receives the other workers' requests.",
    fix_hint="Add `zone NAME 64k;` to the upstream block.",
    check=check_upstream_without_zone,
    examples=(
        Example(
            Product.NGINX,
            bad="worker_processes 4;\nupstream app {\n    least_conn;\n"
            "    server 10.0.0.1:80;\n    server 10.0.0.2:80;\n}",
            good="worker_processes 4;\nupstream app {\n    zone app 64k;\n    least_conn;\n"
            "    server 10.0.0.1:80;\n    server 10.0.0.2:80;\n}",
        ),
    ),
)
