"""Backup-server rules (LB203, LB204, LB214): servers that wait for failover.

Facts are from HAProxy 2.6 (doc/configuration.txt "backup", "option allbackups") and
nginx 1.22 (ngx_http_upstream_module "backup"; `nginx -t` output of 1.22.1).
"""

from __future__ import annotations

import statistics
from collections.abc import Iterator, Sequence

from lbguard.checks.interface import CheckContext, Example, Family, Finding, Options, Rule
from lbguard.checks.pools import active_servers, method_text
from lbguard.checks.wording import join_names
from lbguard.model import Algorithm, Product, Server, Severity

# --------------------------------------------------------------------------------------
# LB203 balancing.backup-weight-ignored


def check_backup_weights(context: CheckContext, options: Options) -> Iterator[Finding]:
    haproxy = context.lb.product is Product.HAPROXY
    for pool in context.lb.pools:
        backups = [server for server in pool.servers if server.backup]
        active = active_servers(pool)
        if not backups or not active:
            continue
        typical = statistics.median(server.weight for server in active)
        weighted = [server for server in backups if server.weight > 1 and server.weight >= typical]
        unused = backups[1:] if haproxy and not pool.all_backups else []
        if not weighted and not unused:
            continue

        parts = []
        if weighted:
            names = join_names([f"{server.name} (weight {server.weight})" for server in weighted])
            one = len(weighted) == 1
            parts.append(
                f"In {pool.name}, {names} {'is' if one else 'are'} weighted like the active "
                f"servers (median weight {typical:g}) but, as backup, "
                f"{'receives' if one else 'receive'} nothing while any active server is up."
            )
        if unused:
            names = join_names([server.name for server in unused])
            parts.append(
                f"Without `option allbackups`, HAProxy sends {pool.name}'s whole failover "
                f"traffic to the first backup, {backups[0].name}, and never to {names}."
            )
        servers = weighted + [server for server in unused if server not in weighted]
        yield BACKUP_WEIGHT_IGNORED.finding(
            " ".join(parts),
            [*(server.location for server in servers), pool.location],
            subject=pool.name,
            severity=None if weighted else Severity.INFO,
        )


BACKUP_WEIGHT_IGNORED = Rule(
    id="LB203",
    name="balancing.backup-weight-ignored",
    family=Family.BALANCING,
    severity=Severity.WARNING,
    summary="A backup server carries a weight that does not act as the configuration "
    "suggests: it is weighted like an active server, or HAProxy uses only the first backup.",
    rationale="Backup servers receive no traffic while an active server is up, whatever "
    "their weight, and HAProxy without `option allbackups` fails over to the first backup "
    "only. A large machine marked backup sits idle, and at failover one backup takes the "
    "load of the whole pool. A finding about the first backup alone, with no backup "
    "weighted like the active servers, has severity info: the pool still fails over, "
    "only to one server.",
    fix_hint="Remove `backup` from servers meant to share the load; with several HAProxy "
    "backups, add `option allbackups`.",
    check=check_backup_weights,
    examples=(
        Example(
            Product.HAPROXY,
            bad="backend be_web\n    server web1 10.0.0.1:80 weight 10\n"
            "    server web2 10.0.0.2:80 weight 10\n"
            "    server spare1 10.0.0.8:80 backup\n    server spare2 10.0.0.9:80 backup",
            good="backend be_web\n    option allbackups\n    server web1 10.0.0.1:80 weight 10\n"
            "    server web2 10.0.0.2:80 weight 10\n"
            "    server spare1 10.0.0.8:80 backup\n    server spare2 10.0.0.9:80 backup",
        ),
        Example(
            Product.NGINX,
            bad="upstream web {\n    server 10.0.0.1:80 weight=10;\n"
            "    server 10.0.0.2:80 weight=10;\n    server 10.0.0.9:80 weight=10 backup;\n}",
            good="upstream web {\n    server 10.0.0.1:80 weight=10;\n"
            "    server 10.0.0.2:80 weight=10;\n    server 10.0.0.9:80 weight=10;\n}",
        ),
    ),
)


# --------------------------------------------------------------------------------------
# LB204 balancing.backup-only-pool


def check_backup_only_pools(context: CheckContext, options: Options) -> Iterator[Finding]:
    nginx = context.lb.product is Product.NGINX
    for pool in context.lb.pools:
        if not pool.servers or not all(server.backup for server in pool.servers):
            continue
        if nginx:
            reason = (
                f"Every server of {pool.name} is a backup: nginx refuses to start with "
                f'"no servers in upstream", because backups only stand in for primary servers.'
            )
            severity = Severity.ERROR
        elif pool.all_backups or len(pool.servers) == 1:
            reason = (
                f"Every server of {pool.name} is a backup, so HAProxy uses them as if they "
                "were active; the backup flags only mislead readers."
            )
            severity = Severity.INFO
        else:
            idle = [server.name for server in pool.servers[1:]]
            reason = (
                f"Every server of {pool.name} is a backup and `option allbackups` is not set: "
                f"HAProxy sends all of {pool.name}'s requests to the first one, "
                f"{pool.servers[0].name}, while {join_names(idle)} "
                f"{'stays' if len(idle) == 1 else 'stay'} idle."
            )
            severity = None
        yield BACKUP_ONLY_POOL.finding(
            reason,
            [pool.location, *(server.location for server in pool.servers)],
            subject=pool.name,
            severity=severity,
        )


BACKUP_ONLY_POOL = Rule(
    id="LB204",
    name="balancing.backup-only-pool",
    family=Family.BALANCING,
    severity=Severity.WARNING,
    summary="Every server of a pool is marked backup.",
    rationale="A pool of backups has no active server to stand in for. HAProxy then uses "
    "only the first backup unless `option allbackups` is set, so one server takes the "
    "whole pool's traffic; nginx rejects such an upstream.",
    fix_hint="Remove `backup` from the servers that should carry the traffic.",
    check=check_backup_only_pools,
    examples=(
        Example(
            Product.HAPROXY,
            bad="backend be_web\n    server web1 10.0.0.1:80 backup\n"
            "    server web2 10.0.0.2:80 backup",
            good="backend be_web\n    server web1 10.0.0.1:80\n    server web2 10.0.0.2:80",
        ),
        Example(
            Product.NGINX,
            bad="upstream web {\n    server 10.0.0.1:80 backup;\n"
            "    server 10.0.0.2:80 backup;\n}",
            good="upstream web {\n    server 10.0.0.1:80;\n    server 10.0.0.2:80 backup;\n}",
        ),
    ),
)


# --------------------------------------------------------------------------------------
# LB214 balancing.backup-in-hash-pool

_NO_BACKUP_ALGORITHMS = (Algorithm.HASH, Algorithm.IP_HASH, Algorithm.RANDOM)
"""nginx methods whose modules do not take the backup parameter (nginx 1.22: the
upstream flags of the hash, ip_hash and random modules lack NGX_HTTP_UPSTREAM_BACKUP)."""


def check_backup_in_hash_pool(context: CheckContext, options: Options) -> Iterator[Finding]:
    if context.lb.product is not Product.NGINX:
        return
    for pool in context.lb.pools:
        if pool.balance.algorithm not in _NO_BACKUP_ALGORITHMS:
            continue
        backups: Sequence[Server] = [server for server in pool.servers if server.backup]
        if not backups:
            continue
        names = join_names([server.name for server in backups])
        reason = (
            f"{pool.name} balances with {method_text(pool)} and marks {names} as backup: nginx "
            f"rejects the backup parameter with {pool.balance.algorithm} when the method "
            "line comes first, and otherwise uses backups only in the round-robin fallback "
            "after 20 failed tries, so they add no failover capacity."
        )
        yield BACKUP_IN_HASH_POOL.finding(
            reason,
            [*(server.location for server in backups), pool.balance.location],
            subject=pool.name,
        )


BACKUP_IN_HASH_POOL = Rule(
    id="LB214",
    name="balancing.backup-in-hash-pool",
    family=Family.BALANCING,
    severity=Severity.WARNING,
    summary="An nginx upstream balanced by hash, ip_hash or random has backup servers.",
    rationale="These methods do not support backup servers. Written after the method line, "
    "backup makes nginx refuse to start; written before it, the backups only serve the "
    "round-robin fallback, so the failover capacity the configuration shows is not there.",
    fix_hint="Remove `backup`, or balance the upstream by round robin or least_conn.",
    check=check_backup_in_hash_pool,
    examples=(
        Example(
            Product.NGINX,
            bad="upstream app {\n    server 10.0.0.1:80;\n    server 10.0.0.2:80;\n"
            "    server 10.0.0.9:80 backup;\n    hash $request_uri consistent;\n}",
            good="upstream app {\n    server 10.0.0.1:80;\n    server 10.0.0.2:80;\n"
            "    server 10.0.0.9:80;\n    hash $request_uri consistent;\n}",
        ),
    ),
)
