"""Capacity rules (LB4xx): whether the servers behind the traffic can carry it.

HAProxy facts are from HAProxy 2.6 doc/configuration.txt ("maxconn", "maxqueue",
"balance first") and src/backend.c (assign_server_and_queue).
"""

from __future__ import annotations

from collections.abc import Iterator

from lbguard.checks.interface import CheckContext, Example, Family, Finding, Option, Options, Rule
from lbguard.checks.pools import active_servers
from lbguard.checks.wording import join_names, percent, times
from lbguard.model import AdminState, Algorithm, Pool, Product, Server, Severity
from lbguard.predict.result import ShareMethod


def check_single_server_pools(context: CheckContext, options: Options) -> Iterator[Finding]:
    if not context.prediction.route_level_known:
        return
    min_share = float(options["min_share"])

    for pool_share in context.prediction.pools:
        pool = context.pools.get(pool_share.pool)
        share = pool_share.share_of_total
        if pool is None or share is None or share < min_share:
            continue
        active = [
            server
            for server in pool.servers
            if not server.backup and server.state is not AdminState.DISABLED
        ]
        if len(active) != 1:
            continue

        server = active[0]
        backups = [other.name for other in pool.servers if other.backup]
        reason = (
            f"{pool.name} has a single active server ({server.name}) and receives "
            f"{percent(share)} of all requests"
        )
        if backups:
            reason += (
                f"; when {server.name} fails, the backup {join_names(backups)} takes over "
                "without spare capacity."
            )
        else:
            reason += f"; when {server.name} fails or saturates, all of them fail."
        yield SINGLE_SERVER_POOL.finding(
            reason,
            [pool.location, server.location],
            subject=pool.name,
            severity=Severity.INFO if backups else None,
            metrics={"share_of_total": share},
        )


SINGLE_SERVER_POOL = Rule(
    id="LB401",
    name="capacity.single-server-pool",
    family=Family.CAPACITY,
    severity=Severity.WARNING,
    summary="A pool with one active server receives a large share of all traffic.",
    rationale="A single server is a single point of failure and cannot absorb a burst: "
    "when it fails or saturates, every request routed to its pool fails.",
    fix_hint="Add servers to the pool, or route less traffic to it.",
    check=check_single_server_pools,
    options=(
        Option(
            "min_share",
            0.20,
            "smallest fraction of all requests a single-server pool must receive to be reported",
            minimum=0.0,
            maximum=1.0,
        ),
    ),
    needs="traffic",
    examples=(
        Example(
            Product.HAPROXY,
            bad="backend be_api\n    server api1 10.0.0.1:80 check",
            good="backend be_api\n    server api1 10.0.0.1:80 check\n"
            "    server api2 10.0.0.2:80 check",
        ),
        Example(
            Product.NGINX,
            bad="upstream api {\n    server 10.0.0.1:80;\n}",
            good="upstream api {\n    server 10.0.0.1:80;\n    server 10.0.0.2:80;\n}",
        ),
    ),
)


# --------------------------------------------------------------------------------------
# LB402 capacity.hash-queue-on-server


def check_hash_queue_on_server(context: CheckContext, options: Options) -> Iterator[Finding]:
    if context.lb.product is not Product.HAPROXY:
        return
    factor = float(options["factor"])
    for pool_share in context.prediction.pools:
        pool = context.pools.get(pool_share.pool)
        if pool is None or not pool.balance.algorithm.is_hash:
            continue
        if pool_share.method not in (ShareMethod.EXACT, ShareMethod.EXPECTED):
            continue
        for share in pool_share.servers:
            server = pool.server(share.server)
            if server is None or server.maxconn is None or not share.eligible:
                continue
            if share.fair_share <= 0 or share.share_of_pool < factor * share.fair_share:
                continue
            ratio = share.share_of_pool / share.fair_share
            reason = (
                f"{server.name} receives {percent(share.share_of_pool)} of {pool.name}'s "
                f"requests, {times(ratio)} its weight share, and has maxconn "
                f"{server.maxconn}: HAProxy queues a hashed request on its server even "
                "while the other servers have free slots, so under load these requests "
                "wait and time out (timeout queue, 503) on this server alone"
            )
            if server.maxqueue is not None:
                reason += (
                    f", and past maxqueue {server.maxqueue} they go to the backend queue "
                    "and lose their affinity"
                )
            reason += "."
            yield HASH_QUEUE_ON_SERVER.finding(
                reason,
                [server.location, pool.balance.location],
                subject=share.key,
                metrics={"ratio": ratio, "maxconn": float(server.maxconn)},
            )


HASH_QUEUE_ON_SERVER = Rule(
    id="LB402",
    name="capacity.hash-queue-on-server",
    family=Family.CAPACITY,
    severity=Severity.WARNING,
    summary="A server of an HAProxy hash-balanced pool receives more than its share and has "
    "a maxconn, so its excess requests queue on it and time out.",
    rationale="Round robin and leastconn skip a full server, but hash algorithms keep the "
    "request on the server its key maps to and queue it there. A skew in the keys then "
    "turns into queueing delay and 503 errors on one server while its peers have free "
    "connection slots.",
    fix_hint="Spread the keys (hash on a key with more values, consistent hashing with "
    "hash-balance-factor), or raise this server's maxconn to match its share.",
    check=check_hash_queue_on_server,
    needs="sharpens",
    options=(
        Option(
            "factor",
            1.5,
            "multiple of the weight share above which a server with maxconn is reported",
            minimum=1.0,
        ),
    ),
    examples=(
        Example(
            Product.HAPROXY,
            bad="backend be_api\n    balance hdr(X-Tenant)\n"
            "    server api1 10.0.0.1:80 maxconn 20\n    server api2 10.0.0.2:80 maxconn 20",
            good="backend be_api\n    balance roundrobin\n"
            "    server api1 10.0.0.1:80 maxconn 20\n    server api2 10.0.0.2:80 maxconn 20",
        ),
    ),
)


# --------------------------------------------------------------------------------------
# LB403 capacity.shared-endpoint


def check_shared_endpoints(context: CheckContext, options: Options) -> Iterator[Finding]:
    if not context.prediction.route_level_known:
        return
    factor = float(options["factor"])
    endpoints = [e for e in context.prediction.endpoints if e.share_of_total is not None]
    if len(endpoints) < 2:
        return
    mean = sum(e.share_of_total or 0.0 for e in endpoints) / len(endpoints)
    for endpoint in endpoints:
        pools = sorted({member.rpartition("/")[0] for member in endpoint.members})
        share = endpoint.share_of_total or 0.0
        if len(pools) < 2 or mean <= 0 or share < factor * mean:
            continue

        parts = []
        locations = []
        for member in endpoint.members:
            server_share = context.prediction.server(member)
            if server_share is None:
                continue
            parts.append(f"{member} {percent(server_share.share_of_total or 0.0)}")
            locations.append(server_share.location)
        reason = (
            f"{endpoint.endpoint} is a server of {len(pools)} pools "
            f"({join_names(pools)}) and takes {percent(share)} of all requests through "
            f"them ({join_names(parts)}), {times(share / mean)} the mean per physical "
            f"server ({percent(mean)}): each pool balances as if the server were its alone."
        )
        yield SHARED_ENDPOINT.finding(
            reason,
            locations,
            subject=endpoint.endpoint,
            metrics={"share_of_total": share, "ratio": share / mean},
        )


SHARED_ENDPOINT = Rule(
    id="LB403",
    name="capacity.shared-endpoint",
    family=Family.CAPACITY,
    severity=Severity.WARNING,
    summary="One physical server (address and port) is listed in several pools and their "
    "combined share is the configured factor above the mean per physical server.",
    rationale="Pools balance independently. A server listed in the web, API and search "
    "pools takes its share of each, so it can carry several times the load of any other "
    "machine while every pool looks balanced on its own.",
    fix_hint="Give each pool its own servers, or lower the shared server's weight in the "
    "pools so that its combined share matches its capacity.",
    check=check_shared_endpoints,
    needs="traffic",
    options=(
        Option(
            "factor",
            2.0,
            "combined share over the mean share per physical server that is reported",
            minimum=1.0,
        ),
    ),
    examples=(
        Example(
            Product.HAPROXY,
            bad="backend be_web\n    server web1 10.0.0.1:80\n    server web2 10.0.0.2:80\n"
            "backend be_api\n    server api1 10.0.0.1:80",
            good="backend be_web\n    server web1 10.0.0.1:80\n    server web2 10.0.0.2:80\n"
            "backend be_api\n    server api1 10.0.0.3:80",
        ),
        Example(
            Product.NGINX,
            bad="upstream web {\n    server 10.0.0.1:80;\n    server 10.0.0.2:80;\n}\n"
            "upstream api {\n    server 10.0.0.1:80;\n}",
            good="upstream web {\n    server 10.0.0.1:80;\n    server 10.0.0.2:80;\n}\n"
            "upstream api {\n    server 10.0.0.3:80;\n}",
        ),
    ),
)


# --------------------------------------------------------------------------------------
# LB404 capacity.first-without-maxconn


def check_first_without_maxconn(context: CheckContext, options: Options) -> Iterator[Finding]:
    for pool in context.lb.pools:
        stop = _first_unlimited_server(pool)
        if stop is None:
            continue
        ordered = sorted(active_servers(pool), key=lambda server: server.id or 0)
        idle = ordered[ordered.index(stop) + 1 :]
        reason = (
            f"{pool.name} uses `balance first` and {stop.name} has no maxconn: HAProxy fills "
            "servers in id order up to their maxconn, so "
            f"{stop.name} takes every request that reaches it"
        )
        if idle:
            verb = "receives" if len(idle) == 1 else "receive"
            reason += f" and {join_names([server.name for server in idle])} never {verb} any"
        reason += "."
        yield FIRST_WITHOUT_MAXCONN.finding(
            reason,
            [stop.location, pool.balance.location],
            subject=f"{pool.name}/{stop.name}",
        )


def _first_unlimited_server(pool: Pool) -> Server | None:
    """Return the server of a `balance first` pool that takes every request: the first
    active server, by id, without a maxconn. None for other algorithms, for a pool with
    fewer than two active servers, or when every active server has a maxconn."""
    if pool.balance.algorithm is not Algorithm.FIRST:
        return None
    servers = active_servers(pool)
    if len(servers) < 2:
        return None
    # `balance first` fills servers by ascending id; the first one without a limit
    # never fills, so the servers after it receive nothing.
    ordered = sorted(servers, key=lambda server: server.id or 0)
    return next((server for server in ordered if server.maxconn is None), None)


FIRST_WITHOUT_MAXCONN = Rule(
    id="LB404",
    name="capacity.first-without-maxconn",
    family=Family.CAPACITY,
    severity=Severity.WARNING,
    summary="A `balance first` pool has a server without maxconn.",
    rationale="`balance first` sends each request to the first server, by id, that has a "
    "free connection slot, and ignores weights. A server without maxconn always has a "
    "slot, so it takes all the traffic and the servers after it stay idle however loaded "
    "it is.",
    fix_hint="Give every server of the pool a maxconn that matches its capacity.",
    check=check_first_without_maxconn,
    examples=(
        Example(
            Product.HAPROXY,
            bad="backend be_batch\n    balance first\n"
            "    server b1 10.0.0.1:80\n    server b2 10.0.0.2:80",
            good="backend be_batch\n    balance first\n"
            "    server b1 10.0.0.1:80 maxconn 50\n    server b2 10.0.0.2:80 maxconn 50",
        ),
    ),
)
