"""Capacity rules (LB4xx): whether the servers behind the traffic can carry it."""

from __future__ import annotations

from collections.abc import Iterator

from lbguard.checks.interface import CheckContext, Family, Finding, Option, Options, Rule
from lbguard.checks.wording import join_names, percent
from lbguard.model import AdminState, Severity


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
    bad_example="backend be_api\n    server api1 10.0.0.1:80 check",
    good_example="backend be_api\n    server api1 10.0.0.1:80 check\n"
    "    server api2 10.0.0.2:80 check",
)
