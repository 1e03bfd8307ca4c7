"""Routing rules (LB1xx): which frontend rule sends traffic where."""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence

from lbguard.checks.conditions import ShadowIndex
from lbguard.checks.interface import CheckContext, Example, Family, Finding, Option, Options, Rule
from lbguard.checks.wording import join_names, percent, times
from lbguard.model import (
    ActionKind,
    AllOf,
    AnyOf,
    Condition,
    Constant,
    Frontend,
    Location,
    Mode,
    Named,
    Not,
    Product,
    Server,
    Severity,
)
from lbguard.model import Rule as RoutingRule
from lbguard.predict.result import RuleShare, ServerShare
from lbguard.predict.routing import ConditionEvaluator

ZERO_SHARE = 1e-12
"""Shares at or below this count as no traffic (rounding noise of the prediction)."""


def condition_locations(condition: Condition | None) -> list[Location]:
    """Return the lines that define the named conditions (ACLs) used by ``condition``."""
    if condition is None:
        return []
    if isinstance(condition, Named):
        return [*condition.locations, *condition_locations(condition.condition)]
    if isinstance(condition, AllOf | AnyOf):
        return [loc for term in condition.terms for loc in condition_locations(term)]
    if isinstance(condition, Not):
        return condition_locations(condition.term)
    return []


def _quote(rule: RoutingRule) -> str:
    return f"`{rule.text}`" if rule.text else f"the rule at line {rule.location.line}"


def _target(rule: RoutingRule) -> str:
    if rule.action.kind is ActionKind.ROUTE and rule.action.pool:
        return rule.action.pool
    return str(rule.action.kind)


def _rule_shares(context: CheckContext) -> dict[tuple[str, int], RuleShare]:
    return {(share.frontend, share.index): share for share in context.prediction.rules}


# --------------------------------------------------------------------------------------
# LB101 routing.unreachable-rule


def check_unreachable_rules(context: CheckContext, options: Options) -> Iterator[Finding]:
    shares = _rule_shares(context)
    evaluator = ConditionEvaluator(context.profile) if context.profile is not None else None
    for frontend in context.lb.frontends:
        index = ShadowIndex(http=frontend.mode is Mode.HTTP)
        for position, rule in enumerate(frontend.rules):
            # Rules the parser adds model product behaviour, such as nginx serving static
            # files when no location matches, so their order is no mistake.
            if rule.implicit:
                continue
            covering = index.covering_rules(rule.condition) if position else None
            index.add(position, rule.condition)

            share = shares.get((frontend.name, position))
            if covering:
                earlier = [frontend.rules[i] for i in covering]
                yield _static_shadow(frontend, position, earlier, share)
            elif share is not None and _shadowed_on_profile(share):
                yield _profile_shadow(evaluator, frontend, position, share)


def _shadowed_on_profile(share: RuleShare) -> bool:
    if share.share is None or share.could_match is None:
        return False
    return share.share <= ZERO_SHARE < share.could_match


def _static_shadow(
    frontend: Frontend,
    position: int,
    earlier: Sequence[RoutingRule],
    share: RuleShare | None,
) -> Finding:
    rule = frontend.rules[position]
    if len(earlier) == 1:
        cover = f"the earlier rule {_quote(earlier[0])} (line {earlier[0].location.line}) matches"
    else:
        lines = join_names([str(other.location.line) for other in earlier], limit=10)
        cover = f"the earlier rules at lines {lines} together match"
    reason = (
        f"{_quote(rule)} in {frontend.name} can never match: {cover} every request it could match"
    )

    target = _target(rule)
    same_target = all(_target(other) == target for other in earlier)
    if same_target:
        reason += f", and they send it to the same place ({target}), so the rule is redundant."
    else:
        reason += f", so {target} receives nothing through this rule."
    if share is not None and share.could_match:
        reason += (
            f" In the traffic profile it would match {percent(share.could_match)} of "
            f"{frontend.name}'s requests."
        )

    locations = [rule.location, *(other.location for other in earlier)]
    locations += condition_locations(rule.condition)
    for other in earlier:
        locations += condition_locations(other.condition)
    return UNREACHABLE_RULE.finding(
        reason,
        locations,
        subject=f"{frontend.name}#{position}",
        severity=Severity.INFO if same_target else None,
        metrics={"could_match": share.could_match or 0.0} if share is not None else {},
    )


def _profile_shadow(
    evaluator: ConditionEvaluator | None, frontend: Frontend, position: int, share: RuleShare
) -> Finding:
    rule = frontend.rules[position]
    earlier = _rules_taking_traffic(evaluator, frontend, position) if evaluator else []
    could_match = share.could_match or 0.0
    if earlier:
        lines = join_names([str(other.location.line) for other in earlier], limit=10)
        takers = f"the earlier rule(s) at line(s) {lines} take every one"
    else:
        takers = "earlier rules take every one"
    reason = (
        f"{_quote(rule)} in {frontend.name} matches {percent(could_match)} of "
        f"{frontend.name}'s requests in the traffic profile but is the first match for none "
        f"of them: {takers}, so {_target(rule)} receives nothing through this rule."
    )

    locations = [rule.location, *(other.location for other in earlier)]
    locations += condition_locations(rule.condition)
    return UNREACHABLE_RULE.finding(
        reason,
        locations,
        subject=f"{frontend.name}#{position}",
        metrics={"could_match": could_match, "share": 0.0},
    )


def _rules_taking_traffic(
    evaluator: ConditionEvaluator, frontend: Frontend, position: int
) -> list[RoutingRule]:
    """Return the earlier rules that match some profile request the rule at ``position``
    matches. The evaluator caches each matcher, so repeated calls stay cheap."""
    present = evaluator.profile.weight > 0
    rows = evaluator.evaluate(_condition(frontend.rules[position])).true & present

    takers: list[RoutingRule] = []
    for rule in frontend.rules[:position]:
        if (evaluator.evaluate(_condition(rule)).true & rows).any():
            takers.append(rule)
    return takers


def _condition(rule: RoutingRule) -> Condition:
    return rule.condition if rule.condition is not None else Constant(True)


UNREACHABLE_RULE = Rule(
    id="LB101",
    name="routing.unreachable-rule",
    family=Family.ROUTING,
    severity=Severity.WARNING,
    summary="A routing rule can never be the first match because earlier rules match "
    "every request it matches.",
    rationale="Rules are evaluated in order and the first match wins, so a broad rule placed "
    "before a specific one takes the specific rule's traffic. Its pool sits idle while the "
    "broad rule's pool takes the extra load.",
    fix_hint="Move the specific rule above the broad one, or narrow the broad rule's condition.",
    check=check_unreachable_rules,
    needs="sharpens",
    examples=(
        Example(
            Product.HAPROXY,
            bad="acl is_any path_beg /\nacl is_api path_beg /api\n"
            "use_backend be_web if is_any\nuse_backend be_api if is_api",
            good="acl is_any path_beg /\nacl is_api path_beg /api\n"
            "use_backend be_api if is_api\nuse_backend be_web if is_any",
        ),
        Example(
            Product.NGINX,
            bad="location ~ ^/api/ { proxy_pass http://api; }\n"
            "location ~ ^/api/v2/ { proxy_pass http://api_v2; }",
            good="location ~ ^/api/v2/ { proxy_pass http://api_v2; }\n"
            "location ~ ^/api/ { proxy_pass http://api; }",
        ),
    ),
)


# --------------------------------------------------------------------------------------
# LB102 routing.unrouted-pool


def check_unrouted_pools(context: CheckContext, options: Options) -> Iterator[Finding]:
    routed: set[str] = set()
    dynamic: list[RoutingRule] = []
    for frontend in context.lb.frontends:
        routed.add(frontend.name)
        if frontend.default_pool:
            routed.add(frontend.default_pool)
        for rule in frontend.rules:
            if rule.implicit:
                continue
            if rule.action.kind is ActionKind.ROUTE and rule.action.pool:
                routed.add(rule.action.pool)
            elif rule.action.kind is ActionKind.DYNAMIC:
                dynamic.append(rule)

    for pool in context.lb.pools:
        if pool.name in routed:
            continue
        reason = (
            f"No frontend routes to {pool.name}: no routing rule and no default names it, "
            f"so its {len(pool.servers)} server(s) receive no load-balanced traffic"
        )
        if dynamic:
            reason += (
                f", unless the dynamic rule {_quote(dynamic[0])} computes its name at run time."
            )
        else:
            reason += "."
        yield UNROUTED_POOL.finding(
            reason,
            [pool.location, *(rule.location for rule in dynamic)],
            subject=pool.name,
            severity=Severity.INFO if dynamic else None,
        )


UNROUTED_POOL = Rule(
    id="LB102",
    name="routing.unrouted-pool",
    family=Family.ROUTING,
    severity=Severity.WARNING,
    summary="A pool that no routing rule and no default names.",
    rationale="A pool nobody routes to is often the target a rule was meant to name: the "
    "traffic meant for it lands elsewhere. Otherwise it is dead configuration that hides "
    "real changes in reviews.",
    fix_hint="Route to the pool from the intended rule, or delete it.",
    check=check_unrouted_pools,
    examples=(
        Example(
            Product.HAPROXY,
            bad="frontend fe\n    default_backend be_web\nbackend be_web_v2\n"
            "    server w1 10.0.0.1:80",
            good="frontend fe\n    default_backend be_web_v2\nbackend be_web_v2\n"
            "    server w1 10.0.0.1:80",
        ),
        Example(
            Product.NGINX,
            bad="upstream web_v2 { server 10.0.0.1:80; }\n"
            "server { listen 80; location / { proxy_pass http://web; } }",
            good="upstream web_v2 { server 10.0.0.1:80; }\n"
            "server { listen 80; location / { proxy_pass http://web_v2; } }",
        ),
    ),
)


# --------------------------------------------------------------------------------------
# LB103 routing.concentrating-rule

SMALL_POOL_RATIO = 2
"""A pool counts as small when the largest pool that routes reach has at least this many
times its eligible servers."""


def check_concentrating_rules(context: CheckContext, options: Options) -> Iterator[Finding]:
    prediction = context.prediction
    if not prediction.route_level_known:
        return
    min_share = float(options["min_share"])
    factor = float(options["factor"])

    # Capacity counts every server a route names, idle ones included: the servers a
    # broad rule starves are exactly the ones that should share the load.
    targets = {share.target for share in prediction.rules}
    reachable = [
        pool
        for pool in prediction.pools
        if pool.pool in targets and pool.share_of_total is not None
    ]
    eligible = {
        pool.pool: [server for server in pool.servers if server.eligible] for pool in reachable
    }
    server_count = sum(len(servers) for servers in eligible.values())
    if server_count == 0:
        return
    capacity = _capacities(context, eligible)
    hinted = any(context.pool_capacity(pool) is not None for pool in eligible)
    routed = sum(pool.share_of_total or 0.0 for pool in reachable)
    # With capacity hints this is the mean per unit of capacity.
    mean = routed / sum(capacity.values())
    largest = max(len(servers) for servers in eligible.values())

    rules_by_pool: dict[str, list[RuleShare]] = {}
    for share in prediction.rules:
        if share.rule is not None and share.rule.implicit:
            continue
        if share.share is not None and share.share >= min_share:
            rules_by_pool.setdefault(share.target, []).append(share)

    for pool_share in reachable:
        servers = eligible[pool_share.pool]
        if not servers or len(servers) * SMALL_POOL_RATIO > largest:
            continue
        overloaded = [
            server
            for server in servers
            if server.share_of_total is not None
            and server.share_of_total >= factor * mean * capacity[server.key]
        ]
        if not overloaded:
            continue
        for rule_share in rules_by_pool.get(pool_share.pool, []):
            yield _concentration(
                context,
                rule_share,
                servers=servers,
                overloaded=overloaded,
                capacity=capacity,
                mean=mean,
                hinted=hinted,
                server_count=server_count,
                factor=factor,
            )


def _capacities(context: CheckContext, eligible: dict[str, list[ServerShare]]) -> dict[str, float]:
    """Return each eligible server's capacity by ``pool/server``: 1 unless hinted."""
    capacity: dict[str, float] = {}
    for pool, servers in eligible.items():
        hints = context.pool_capacity(pool) or {}
        for server in servers:
            capacity[server.key] = hints.get(server.server, 1.0)
    return capacity


def _concentration(
    context: CheckContext,
    rule_share: RuleShare,
    *,
    servers: Sequence[ServerShare],
    overloaded: Sequence[ServerShare],
    capacity: Mapping[str, float],
    mean: float,
    hinted: bool,
    server_count: int,
    factor: float,
) -> Finding:
    """Build the finding for one rule. *mean* is the share of all requests per unit of
    *capacity*, which is the mean per server when no capacity hint applies."""
    pool_name = rule_share.target
    rule = rule_share.rule
    label = _quote(rule) if rule is not None else f"the default route of {rule_share.frontend}"
    top = max(server.share_of_total or 0.0 for server in overloaded)
    ratio = max(
        (server.share_of_total or 0.0) / (mean * capacity[server.key]) for server in overloaded
    )

    names = [server.server for server in overloaded]
    if len(overloaded) == 1:
        load = f"{names[0]} takes {percent(top)} of all requests"
    elif len(overloaded) == len(servers):
        load = f"its servers {join_names(names)} each take up to {percent(top)} of all requests"
    else:
        load = f"{join_names(names)} each take up to {percent(top)} of all requests"
    if not hinted:
        compared = f"{times(ratio)} the mean per server ({percent(mean)})"
    elif len(overloaded) == 1:
        compared = (
            f"{times(ratio)} the share its capacity calls for at the mean per unit of "
            f"capacity ({percent(mean)}, from the capacity hints)"
        )
    else:
        compared = (
            f"up to {times(ratio)} the share their capacity calls for at the mean per unit "
            f"of capacity ({percent(mean)}, from the capacity hints)"
        )

    reason = (
        f"{label} ({rule_share.frontend}) sends {percent(rule_share.share or 0.0)} of all "
        f"requests to {pool_name}, which has {len(servers)} of the {server_count} servers "
        f"that routes reach: {load}, {compared}."
    )
    limits = sorted({server.maxconn for server in _servers(context, overloaded) if server.maxconn})
    if limits:
        reason += f" Their maxconn ({join_names([str(limit) for limit in limits])}) queues "
        reason += "the excess, so latency and errors rise first on these servers."

    pool = context.pools.get(pool_name)
    locations = [rule_share.location]
    if rule is not None:
        locations += condition_locations(rule.condition)
    if pool is not None:
        locations.append(pool.location)
    locations += [server.location for server in overloaded]
    return CONCENTRATING_RULE.finding(
        reason,
        locations,
        subject=f"{rule_share.frontend}#{rule_share.index}",
        severity=Severity.ERROR if ratio >= 2 * factor else None,
        metrics={
            "rule_share": rule_share.share or 0.0,
            "max_server_share": top,
            "mean_server_share": mean,
            "ratio": ratio,
        },
    )


def _servers(context: CheckContext, shares: Sequence[ServerShare]) -> Iterator[Server]:
    for share in shares:
        pool = context.pools.get(share.pool)
        server = pool.server(share.server) if pool is not None else None
        if server is not None:
            yield server


CONCENTRATING_RULE = Rule(
    id="LB103",
    name="routing.concentrating-rule",
    family=Family.ROUTING,
    severity=Severity.WARNING,
    summary="A routing rule sends a large share of all traffic to a pool with few servers "
    "while another pool has at least twice as many.",
    rationale="The load per server, not per pool, decides overload. A rule that routes a "
    "large slice of traffic to a small pool overloads its few servers while larger pools "
    "idle: errors and latency rise for every request the rule matches. A too-broad ACL "
    "(an unanchored regex, a short prefix, a host suffix) is the usual cause.",
    fix_hint="Narrow the rule's condition to the requests the small pool is meant for, or "
    "add servers to that pool.",
    check=check_concentrating_rules,
    options=(
        Option(
            "min_share",
            0.10,
            "smallest fraction of all requests a rule must send to be reported",
            minimum=0.0,
            maximum=1.0,
        ),
        Option(
            "factor",
            2.0,
            "load per server, over the mean load per server, that counts as overloaded",
            minimum=1.0,
        ),
    ),
    needs="traffic",
    examples=(
        Example(
            Product.HAPROXY,
            bad="acl is_search path_reg search\nuse_backend be_search if is_search",
            good="acl is_search path_beg /search/\nuse_backend be_search if is_search",
        ),
        Example(
            Product.NGINX,
            bad="location ~ search { proxy_pass http://search; }",
            good="location ^~ /search/ { proxy_pass http://search; }",
        ),
    ),
)
