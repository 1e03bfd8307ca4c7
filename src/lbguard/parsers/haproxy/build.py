"""Turn the proxy states of a read configuration into the normalized model.

Rules of a frontend are placed in the order HAProxy 2.6 evaluates them, whatever their
position in the section: ``monitor-uri``, ``tcp-request`` rules, ``http-request`` rules
(those of the defaults section first), ``redirect`` rules, the statistics page, then the
``use_backend`` rules (``http_process_req_common()`` and ``process_switching_rules()`` in
``src/http_ana.c`` and ``src/stream.c``).
"""

from __future__ import annotations

from collections.abc import Iterable

from lbguard.model import (
    ActionKind,
    AllOf,
    Condition,
    Constant,
    Diagnostic,
    Frontend,
    LoadBalancer,
    Location,
    Matcher,
    MatchMethod,
    Mode,
    Not,
    Pool,
    Product,
    Rule,
    Server,
    Severity,
)
from lbguard.parsers.haproxy.acl import AclContext, AclLine, build_condition
from lbguard.parsers.haproxy.proxy import STATS_ACTION, PendingRule, ProxyState
from lbguard.parsers.haproxy.servers import build_servers


def build_rules(
    pending: Iterable[PendingRule], acls: dict[str, list[AclLine]], context: AclContext
) -> list[Rule]:
    """Resolve conditions; fold ``allow``/``accept`` rules into the rules after them.

    An ``allow`` rule ends the list for the requests it matches, so every later rule of the
    same list gets ``AND NOT <allow condition>``.
    """
    rules: list[Rule] = []
    allowed: list[Condition] = []
    for rule in pending:
        rule_context = AclContext(
            rule.location,
            context.config_dir,
            context.diagnostics,
            context.mode_is_http,
            context.reported,
        )
        condition = (
            build_condition(rule.condition, acls, rule_context)
            if rule.condition is not None
            else None
        )
        if rule.allow:
            allowed.append(condition if condition is not None else Constant(True))
            continue
        if allowed:
            terms = tuple(Not(term) for term in allowed)
            condition = AllOf(terms + ((condition,) if condition is not None else ()))
        rules.append(Rule(condition, rule.action, rule.location, rule.text))
    return rules


def _stats_rule(proxy: ProxyState) -> list[Rule]:
    """Return the rule that serves the statistics page, when ``stats`` is enabled."""
    if not proxy.stats_enabled:
        return []
    uri = proxy.stats_uri or "/haproxy?stats"
    location = proxy.stats_location or proxy.location
    matcher = Matcher(
        "url", None, MatchMethod.BEG, (uri,), location=location, text=f"url_beg {uri}"
    )
    return [Rule(matcher, STATS_ACTION, location, f"stats uri {uri}")]


def _context(proxy: ProxyState, diagnostics: list[Diagnostic]) -> AclContext:
    return AclContext(proxy.location, proxy.config_dir, diagnostics, proxy.mode is Mode.HTTP)


def build_frontend(proxy: ProxyState, diagnostics: list[Diagnostic]) -> Frontend:
    context = _context(proxy, diagnostics)
    rules = build_rules(proxy.monitor_rules, proxy.acls, context)
    rules += build_rules(proxy.tcp_rules, proxy.acls, context)
    rules += _fold_inherited(proxy, build_rules(proxy.http_rules, proxy.acls, context))
    rules += build_rules(proxy.redirect_rules, proxy.acls, context)
    rules += _stats_rule(proxy)
    rules += build_rules(proxy.switching_rules, proxy.acls, context)
    default_pool = proxy.default_backend
    default_location = proxy.default_location
    if default_pool is None and proxy.kind == "listen":
        default_pool, default_location = proxy.name, proxy.location
    return Frontend(
        name=proxy.name,
        mode=proxy.mode or Mode.TCP,
        binds=tuple(proxy.binds),
        rules=tuple(rules),
        default_pool=default_pool,
        location=proxy.location,
        default_location=default_location,
        accepts_http2=proxy.accepts_http2,
        captured_request_headers=tuple(proxy.captured_request_headers),
    )


def _fold_inherited(proxy: ProxyState, own: list[Rule]) -> list[Rule]:
    return list(proxy.inherited_rules) + own


def build_pool(proxy: ProxyState, diagnostics: list[Diagnostic]) -> Pool:
    context = _context(proxy, diagnostics)
    rules: list[Rule] = []
    if proxy.kind == "backend":
        rules += build_rules(proxy.tcp_rules, proxy.acls, context)
        rules += _fold_inherited(proxy, build_rules(proxy.http_rules, proxy.acls, context))
        rules += _stats_rule(proxy)
    balance = proxy.balance.to_model()
    return Pool(
        name=proxy.name,
        mode=proxy.mode or Mode.TCP,
        balance=balance,
        servers=tuple(build_servers(proxy.server_lines)),
        location=proxy.location,
        all_backups=proxy.all_backups,
        health_check_configured=proxy.health_check,
        options=tuple(proxy.options),
        rules=tuple(rules),
    )


def build_load_balancer(
    proxies: list[ProxyState],
    files: list[str],
    diagnostics: list[Diagnostic],
    settings: list[tuple[str, str]],
) -> LoadBalancer:
    """Build the model, then run the checks HAProxy makes once every file is read."""
    frontends = [build_frontend(proxy, diagnostics) for proxy in proxies if proxy.is_frontend]
    backends = [proxy for proxy in proxies if proxy.is_backend]
    pools = [build_pool(proxy, diagnostics) for proxy in backends]
    _check_duplicate_proxies(proxies, diagnostics)
    _check_backend_references(frontends, {pool.name for pool in pools}, diagnostics)
    for proxy, pool in zip(backends, pools, strict=True):
        _check_servers(proxy, pool, diagnostics)
    return LoadBalancer(
        product=Product.HAPROXY,
        frontends=tuple(frontends),
        pools=tuple(pools),
        files=tuple(files),
        diagnostics=tuple(diagnostics),
        settings=tuple(settings),
    )


def _check_duplicate_proxies(proxies: list[ProxyState], diagnostics: list[Diagnostic]) -> None:
    seen_frontends: dict[str, ProxyState] = {}
    seen_backends: dict[str, ProxyState] = {}
    for proxy in proxies:
        for applies, seen in (
            (proxy.is_frontend, seen_frontends),
            (proxy.is_backend, seen_backends),
        ):
            if not applies:
                continue
            earlier = seen.get(proxy.name)
            if earlier is None:
                seen[proxy.name] = proxy
                continue
            loc = proxy.location
            diagnostics.append(
                Diagnostic(
                    Severity.ERROR,
                    f"Parsing [{loc.file}:{loc.line}]: {proxy.kind} '{proxy.name}' has the same "
                    f"name as {earlier.kind} '{earlier.name}' declared at {earlier.location}.",
                    loc,
                    "rename one of the two sections",
                    "duplicate",
                )
            )
            break


def _check_backend_references(
    frontends: list[Frontend], backends: set[str], diagnostics: list[Diagnostic]
) -> None:
    for frontend in frontends:
        targets: list[tuple[str, str, Location]] = [
            ("use_backend", rule.action.pool, rule.location)
            for rule in frontend.rules
            if rule.action.kind is ActionKind.ROUTE and rule.action.pool is not None
        ]
        if frontend.default_pool is not None:
            targets.append(("default_backend", frontend.default_pool, frontend.default_location))
        for keyword, target, location in targets:
            if target in backends:
                continue
            diagnostics.append(
                Diagnostic(
                    Severity.ERROR,
                    f"Proxy '{frontend.name}': unable to find required {keyword}: '{target}'.",
                    location,
                    f"declare 'backend {target}' or point the rule at an existing backend",
                    "unknown-backend",
                )
            )


def _check_servers(proxy: ProxyState, pool: Pool, diagnostics: list[Diagnostic]) -> None:
    """Report duplicate names (among servers without ``id``) and reused ids."""
    explicit = {
        (line.location, line.names[0])
        for line in proxy.server_lines
        if line.settings.server_id is not None
    }
    first_by_name: dict[str, Server] = {}
    by_id: dict[int, Server] = {}
    for server in pool.servers:
        has_id = bool(explicit) and (server.location, server.name) in explicit
        loc = server.location
        earlier = first_by_name.get(server.name)
        if not has_id and earlier is not None:
            diagnostics.append(
                Diagnostic(
                    Severity.ERROR,
                    f"parsing [{loc.file}:{loc.line}] : backend '{pool.name}', another server "
                    f"named '{server.name}' was already defined at line {earlier.location.line}"
                    ", please use distinct names.",
                    loc,
                    "rename one of the servers",
                    "duplicate",
                )
            )
        if not has_id:
            first_by_name.setdefault(server.name, server)
        other = by_id.get(server.id) if server.id is not None else None
        if other is not None and has_id:
            diagnostics.append(
                Diagnostic(
                    Severity.ERROR,
                    f"[{loc.file}:{loc.line}] : 'server {pool.name}/{server.name}' : 'id' : "
                    f"custom id {server.id} already used at {other.location} "
                    f"('server {other.name}')",
                    loc,
                    "give each server a distinct id",
                    "duplicate",
                )
            )
        if server.id is not None:
            by_id.setdefault(server.id, server)
