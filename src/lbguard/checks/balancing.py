"""Balancing rules (LB201, LB202, LB208, LB212): how a pool spreads its requests over its
servers. The hash rules are in `lbguard.checks.hashing`, the backup rules in
`lbguard.checks.backups`."""

from __future__ import annotations

import statistics
from collections.abc import Iterator, Mapping, Sequence

from lbguard.checks.interface import CheckContext, Example, Family, Finding, Option, Options, Rule
from lbguard.checks.pools import active_servers, method_text
from lbguard.checks.wording import percent, times
from lbguard.model import Algorithm, Pool, Product, Server, Severity
from lbguard.predict.result import PoolShare, ServerShare, ShareMethod


def check_over_fair_share(context: CheckContext, options: Options) -> Iterator[Finding]:
    factor = float(options["factor"])
    for pool in context.prediction.pools:
        if pool.method is ShareMethod.UNKNOWN or pool.share_of_total == 0.0:
            continue
        model = context.pools.get(pool.pool)
        if model is not None and model.balance.algorithm is Algorithm.FIRST:
            # `balance first` ignores weights by design: it fills the first server up to
            # its maxconn, and LB404 reports a server without one.
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
    """Compare the server's share with its fair share: its capacity share when the pool
    has capacity hints, else its weight share. Weight typos are LB202's to report."""
    shares = context.capacity_shares(pool)
    if shares is not None:
        fair = shares[server.server]
        basis = f"capacity share ({percent(fair)}) from the capacity hints"
    else:
        fair = server.fair_share
        basis = f"weight share ({percent(fair)})"
    if fair <= 0:
        return None
    ratio = server.share_of_pool / fair
    if ratio <= factor:
        return None

    reason = (
        f"{server.server} receives {percent(server.share_of_pool)} of {pool.pool}'s "
        f"requests, {times(ratio)} its {basis}: {_cause(context, pool)}."
    )
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
            "equal_share": 1.0 / len(eligible),
            "ratio": ratio,
        },
    )


def _cause(context: CheckContext, pool: PoolShare) -> str:
    """Say what puts more than the fair share on a server of ``pool``."""
    model = context.pools.get(pool.pool)
    if model is None:
        return f"the {pool.method} prediction places more requests on it"
    balance = method_text(model)
    if model.balance.algorithm.is_hash:
        keys = "the traffic profile's keys" if context.profile is not None else "uniform keys"
        return f"{balance} maps {keys} onto the servers unevenly and most of them onto it"
    if context.pool_capacity(pool.pool) is not None:
        return f"{balance} follows the weights, which do not match the capacity hints"
    return f"{balance} places more requests on it than its weight ({pool.method} prediction)"


OVER_FAIR_SHARE = Rule(
    id="LB201",
    name="balancing.server-over-fair-share",
    family=Family.BALANCING,
    severity=Severity.WARNING,
    summary="A server receives more than the configured factor times its fair share of "
    "its pool: its capacity share from the capacity hints, else its weight share.",
    rationale="A server that takes a multiple of the share its weight or capacity calls "
    "for saturates first, while the pool as a whole looks healthy. A hash key with few "
    "distinct values (one busy client, one hot URL) is the usual cause. Deliberate "
    "weights are fair by definition; a weight typo is reported as LB202.",
    fix_hint="For hashed pools, hash on a key with more distinct values or use consistent "
    "hashing with a bounded load. With capacity hints, set the weights in proportion to "
    "the capacity.",
    product_fix_hints=(
        (
            Product.HAPROXY,
            "For hashed pools, hash on a key with more distinct values or bound the load "
            "with `hash-balance-factor`. With capacity hints, set the weights in proportion "
            "to the capacity.",
        ),
        (
            Product.NGINX,
            "For hashed pools, hash on a key with more distinct values (`hash $request_uri "
            "consistent;`). With capacity hints, set the weights in proportion to the capacity.",
        ),
    ),
    check=check_over_fair_share,
    options=(
        Option(
            "factor",
            1.5,
            "multiple of the fair share above which a server is reported",
            minimum=1.0,
        ),
    ),
    needs="sharpens",
    examples=(
        Example(
            Product.HAPROXY,
            bad="backend be_api\n    balance hdr(X-Tenant)\n"
            "    server api1 10.0.0.1:80\n    server api2 10.0.0.2:80\n"
            "    server api3 10.0.0.3:80",
            good="backend be_api\n    balance roundrobin\n"
            "    server api1 10.0.0.1:80\n    server api2 10.0.0.2:80\n"
            "    server api3 10.0.0.3:80",
        ),
        Example(
            Product.NGINX,
            bad="upstream api {\n    hash $http_x_tenant;\n    server 10.0.0.1:80;\n"
            "    server 10.0.0.2:80;\n    server 10.0.0.3:80;\n}",
            good="upstream api {\n    server 10.0.0.1:80;\n    server 10.0.0.2:80;\n"
            "    server 10.0.0.3:80;\n}",
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
            yield _outlier(context, pool, server, per_unit, typical)


def _outlier(
    context: CheckContext,
    pool: Pool,
    server: Server,
    per_unit: Mapping[str, float],
    typical: float,
) -> Finding:
    hinted = context.pool_capacity(pool.name) is not None
    ratio = per_unit[server.name] / typical
    effect = times(ratio) if ratio >= 1 else f"1/{times(1 / ratio)} of"
    others = {value for name, value in per_unit.items() if name != server.name}
    if len(others) == 1 and typical in others:
        peers = f"the other servers' ({typical:g})"
    else:
        peers = f"the pool's median ({typical:g})"
    if hinted:
        subject = (
            f"{server.name}'s weight per unit of capacity ({per_unit[server.name]:g}, from "
            "the capacity hints)"
        )
    else:
        subject = f"{server.name}'s weight ({server.weight})"

    reason = (
        f"{subject} is {effect} {peers} in {pool.name}; {_received(context, pool, server)} "
        "A factor like this is usually a typo."
    )
    weight_share = server.weight / sum(other.weight for other in active_servers(pool))
    return WEIGHT_OUTLIER.finding(
        reason,
        [server.location, pool.location],
        subject=f"{pool.name}/{server.name}",
        metrics={"ratio": ratio, "weight_share": weight_share},
    )


def _received(context: CheckContext, pool: Pool, server: Server) -> str:
    """Say what share of the pool the server receives in the prediction, or by weight
    when the prediction has no share for it."""
    pool_share = context.prediction.pool(pool.name)
    share = context.prediction.server(f"{pool.name}/{server.name}")
    if pool_share is None or share is None or pool_share.method is ShareMethod.UNKNOWN:
        total = sum(other.weight for other in active_servers(pool))
        return f"weight-following algorithms give it {percent(server.weight / total)} of the pool."
    equal = 1.0 / max(1, sum(1 for other in pool_share.servers if other.eligible))
    text = (
        f"it receives {percent(share.share_of_pool)} of {pool.name}'s requests, "
        f"{times(share.share_of_pool / equal)} an equal share ({percent(equal)})."
    )
    if share.share_of_total is not None:
        text += f" That is {percent(share.share_of_total)} of all requests."
    return text


WEIGHT_OUTLIER = Rule(
    id="LB202",
    name="balancing.weight-outlier",
    family=Family.BALANCING,
    severity=Severity.WARNING,
    summary="A server's weight differs from the median weight of its pool by the configured "
    "factor or more.",
    rationale="Weights set the share of every weight-following algorithm. One weight ten "
    "times its peers' (100 for 10, an extra zero) sends most of the pool to one server; "
    "one a tenth of its peers' leaves a server idle. Deliberate differences, such as 5:1:1, "
    "stay below the default factor of 10.",
    fix_hint="Correct the weight, or record the real capacity difference in the "
    "[capacity] table of lbguard.toml.",
    check=check_weight_outliers,
    options=(
        Option(
            "factor",
            10.0,
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
            good="upstream web {\n    server 10.0.0.1:80 weight=5;\n"
            "    server 10.0.0.2:80 weight=1;\n    server 10.0.0.3:80 weight=1;\n}",
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
