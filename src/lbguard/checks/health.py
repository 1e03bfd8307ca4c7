"""Health-check rules (LB3xx): whether a failed server stops receiving traffic.

HAProxy 2.6 considers a server without `check` always UP (doc/configuration.txt
"check"). Open-source nginx has passive checks only: a server is skipped for
`fail_timeout` after `max_fails` failures, and `max_fails=0` turns that off (nginx 1.22
ngx_http_upstream_module).
"""

from __future__ import annotations

from collections.abc import Iterator

from lbguard.checks.interface import CheckContext, Example, Family, Finding, Options, Rule
from lbguard.checks.pools import active_servers
from lbguard.checks.wording import join_names
from lbguard.model import Pool, Product, Server, Severity


def is_checked(server: Server, product: Product) -> bool:
    """Tell whether a failed server stops receiving load-balanced traffic."""
    if product is Product.NGINX:
        # nginx's default max_fails is 1, so only an explicit 0 turns the checks off.
        return server.max_fails != 0
    tracked = any(option.startswith(("track ", "agent-check")) for option in server.options)
    return server.check or tracked


def _checks(pool: Pool, product: Product) -> tuple[list[Server], list[Server]] | None:
    """Return the pool's checked and unchecked active servers; None for fewer than two."""
    servers = active_servers(pool)
    if len(servers) < 2:
        return None
    checked = [server for server in servers if is_checked(server, product)]
    unchecked = [server for server in servers if not is_checked(server, product)]
    return checked, unchecked


# --------------------------------------------------------------------------------------
# LB301 health.no-health-checks


def check_no_health_checks(context: CheckContext, options: Options) -> Iterator[Finding]:
    product = context.lb.product
    for pool in context.lb.pools:
        split = _checks(pool, product)
        if split is None or split[0]:
            continue
        unchecked = split[1]
        if product is Product.NGINX:
            how = "every server has max_fails=0, so nginx never marks one as failed"
        else:
            how = "no server has `check`, so HAProxy considers every server up"
        reason = (
            f"{pool.name} has {len(unchecked)} servers and {how}: a dead server keeps "
            "receiving its share of requests, and each of them fails or waits for a timeout."
        )
        yield NO_HEALTH_CHECKS.finding(
            reason, [pool.location, *(server.location for server in unchecked)], subject=pool.name
        )


NO_HEALTH_CHECKS = Rule(
    id="LB301",
    name="health.no-health-checks",
    family=Family.HEALTH,
    severity=Severity.WARNING,
    summary="No server of a multi-server pool is health-checked.",
    rationale="Without health checks the load balancer keeps sending a failed server its "
    "full share: with four servers a quarter of the pool's requests fail until someone "
    "removes it by hand.",
    fix_hint="Add `check` to the HAProxy servers (with `option httpchk` for HTTP), or leave "
    "nginx's max_fails at its default of 1 or more.",
    check=check_no_health_checks,
    examples=(
        Example(
            Product.HAPROXY,
            bad="backend be_web\n    server web1 10.0.0.1:80\n    server web2 10.0.0.2:80",
            good="backend be_web\n    option httpchk GET /healthz\n"
            "    server web1 10.0.0.1:80 check\n    server web2 10.0.0.2:80 check",
        ),
        Example(
            Product.NGINX,
            bad="upstream web {\n    server 10.0.0.1:80 max_fails=0;\n"
            "    server 10.0.0.2:80 max_fails=0;\n}",
            good="upstream web {\n    server 10.0.0.1:80 max_fails=3;\n"
            "    server 10.0.0.2:80 max_fails=3;\n}",
        ),
    ),
)


# --------------------------------------------------------------------------------------
# LB302 health.partial-health-checks


def check_partial_health_checks(context: CheckContext, options: Options) -> Iterator[Finding]:
    product = context.lb.product
    for pool in context.lb.pools:
        split = _checks(pool, product)
        if split is None or not split[0] or not split[1]:
            continue
        checked, unchecked = split
        names = join_names([server.name for server in unchecked])
        what = "max_fails=0" if product is Product.NGINX else "no `check`"
        reason = (
            f"In {pool.name}, {names} {'has' if len(unchecked) == 1 else 'have'} {what} while "
            f"{len(checked)} other server(s) are checked: when an unchecked server fails it "
            "keeps its share of the requests, and when a checked one fails the unchecked "
            "ones take its load without being watched."
        )
        yield PARTIAL_HEALTH_CHECKS.finding(
            reason, [server.location for server in unchecked], subject=pool.name
        )


PARTIAL_HEALTH_CHECKS = Rule(
    id="LB302",
    name="health.partial-health-checks",
    family=Family.HEALTH,
    severity=Severity.WARNING,
    summary="Some servers of a pool are health-checked and others are not.",
    rationale="A server added later without `check`, or with max_fails=0, is never taken "
    "out of rotation. Its share of requests fails during an outage while the pool "
    "looks monitored.",
    fix_hint="Give every server of the pool the same health-check settings.",
    product_fix_hints=(
        (
            Product.HAPROXY,
            "Give every server of the pool the same health-check settings, for example "
            "with `default-server check`.",
        ),
        (
            Product.NGINX,
            "Give every server of the pool the same health-check settings: remove "
            "`max_fails=0`, so that each server keeps max_fails at 1 or more.",
        ),
    ),
    check=check_partial_health_checks,
    examples=(
        Example(
            Product.HAPROXY,
            bad="backend be_web\n    server web1 10.0.0.1:80 check\n"
            "    server web2 10.0.0.2:80 check\n    server web3 10.0.0.3:80",
            good="backend be_web\n    default-server check\n    server web1 10.0.0.1:80\n"
            "    server web2 10.0.0.2:80\n    server web3 10.0.0.3:80",
        ),
        Example(
            Product.NGINX,
            bad="upstream web {\n    server 10.0.0.1:80;\n    server 10.0.0.2:80;\n"
            "    server 10.0.0.3:80 max_fails=0;\n}",
            good="upstream web {\n    server 10.0.0.1:80;\n    server 10.0.0.2:80;\n"
            "    server 10.0.0.3:80;\n}",
        ),
    ),
)
