"""Hash-key rules (LB205-LB207): the keys a hashed pool receives and how they move.

Product facts are from HAProxy 2.6 (doc/configuration.txt "balance", "hash-type") and
nginx 1.22 (ngx_http_upstream_hash and ip_hash modules).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator

from lbguard.checks.interface import CheckContext, Example, Family, Finding, Option, Options, Rule
from lbguard.checks.keys import hashes_client_address, ip_hash_unit, key_spread
from lbguard.checks.pools import active_servers, method_text
from lbguard.checks.wording import join_names, percent, times
from lbguard.model import Algorithm, HashMethod, Pool, Product, Server, Severity
from lbguard.predict.nginx import with_real_ip

# --------------------------------------------------------------------------------------
# LB205 balancing.hash-few-keys


def check_hash_few_keys(context: CheckContext, options: Options) -> Iterator[Finding]:
    min_keys = int(options["min_keys_per_server"])
    factor = float(options["factor"])
    for pool in context.lb.pools:
        if not pool.balance.algorithm.is_hash or hashes_client_address(pool, context.lb.product):
            continue
        servers = active_servers(pool)
        if len(servers) < 2:
            continue
        spread = key_spread(context, pool)
        if spread is None or spread.distinct == 0:
            continue

        top = spread.top_share * spread.keyed_share
        fair = 1.0 / len(servers)
        few = spread.distinct < min_keys * len(servers) and spread.keyed_share >= 0.5
        heavy = top >= factor * fair
        if not (few or heavy):
            continue

        reason = (
            f"{pool.name} hashes with {method_text(pool)}, and its requests in the traffic "
            f"profile carry {spread.distinct} distinct key(s) for {len(servers)} servers"
        )
        if heavy:
            reason += (
                f"; the most frequent key alone is {percent(top)} of {pool.name}'s requests, "
                f"{times(top / fair)} an equal share ({percent(fair)}), and all of it "
                "lands on one server."
            )
        else:
            reason += ": a few keys cannot spread evenly over the servers."
        yield HASH_FEW_KEYS.finding(
            reason,
            [pool.balance.location, pool.location],
            subject=pool.name,
            metrics={
                "distinct_keys": float(spread.distinct),
                "top_key_share": top,
                "keyed_share": spread.keyed_share,
            },
        )


HASH_FEW_KEYS = Rule(
    id="LB205",
    name="balancing.hash-few-keys",
    family=Family.BALANCING,
    severity=Severity.WARNING,
    summary="A hash-balanced pool's requests carry few distinct keys, or one key carries a "
    "large part of them.",
    rationale="Hashing sends every request with the same key to the same server. With few "
    "distinct keys (a handful of URLs, one tenant header) or one dominant key, some servers "
    "take a multiple of their share whatever their weights.",
    fix_hint="Hash on a key with many distinct values (a user or session id), add "
    "hash-balance-factor in HAProxy, or balance this pool by round robin.",
    check=check_hash_few_keys,
    needs="traffic",
    options=(
        Option(
            "min_keys_per_server",
            3,
            "fewest distinct keys per server that the pool's requests must carry",
            minimum=1,
        ),
        Option(
            "factor",
            1.5,
            "share of the most frequent key, over an equal share per server, that is reported",
            minimum=1.0,
        ),
    ),
    examples=(
        Example(
            Product.HAPROXY,
            bad="backend be_api\n    balance hdr(X-Tenant)\n"
            "    server api1 10.0.0.1:80\n    server api2 10.0.0.2:80",
            good="backend be_api\n    balance hdr(X-Session)\n"
            "    server api1 10.0.0.1:80\n    server api2 10.0.0.2:80",
        ),
        Example(
            Product.NGINX,
            bad="upstream api {\n    hash $http_x_tenant consistent;\n"
            "    server 10.0.0.1:80;\n    server 10.0.0.2:80;\n}",
            good="upstream api {\n    hash $cookie_session consistent;\n"
            "    server 10.0.0.1:80;\n    server 10.0.0.2:80;\n}",
        ),
    ),
)


# --------------------------------------------------------------------------------------
# LB206 balancing.client-address-hash


def check_client_address_hash(context: CheckContext, options: Options) -> Iterator[Finding]:
    max_share = float(options["max_share"])
    product = context.lb.product
    realip = any(name == "set_real_ip_from" for name, _ in context.lb.settings)
    for pool in context.lb.pools:
        if not hashes_client_address(pool, product):
            continue
        servers = active_servers(pool)
        if len(servers) < 2:
            continue
        per_subnet = pool.balance.algorithm is Algorithm.IP_HASH
        unit = "/24 network" if per_subnet else "client address"

        clients = _client_weights(context, pool, per_subnet)
        if clients is None:
            if product is Product.NGINX and not realip:
                yield CLIENT_ADDRESS_HASH.finding(
                    f"{pool.name} balances with {method_text(pool)}: behind a proxy, a NAT or "
                    f"another load balancer every request shares one {unit} and lands on "
                    "one server, and no set_real_ip_from tells nginx the real client.",
                    [pool.balance.location, pool.location],
                    subject=pool.name,
                    severity=Severity.INFO,
                )
            continue

        total = sum(clients.values())
        top, top_weight = clients.most_common(1)[0]
        share = top_weight / total
        if share <= max_share and len(clients) >= len(servers):
            continue
        reason = (
            f"{pool.name} balances with {method_text(pool)} and {percent(share)} of its requests "
            f"in the traffic profile come from {top} ({len(clients)} distinct {unit} keys "
            f"for {len(servers)} servers): those requests all land on one server."
        )
        yield CLIENT_ADDRESS_HASH.finding(
            reason,
            [pool.balance.location, pool.location],
            subject=pool.name,
            metrics={"top_client_share": share, "distinct_clients": float(len(clients))},
        )


def _client_weights(context: CheckContext, pool: Pool, per_subnet: bool) -> Counter[str] | None:
    """Return requests per client unit among the pool's profile requests (all profile
    requests when the route level is unknown); None without client addresses."""
    profile = context.profile
    if profile is None or "client_ip" not in profile.known or profile.total == 0:
        return None
    weights = context.pool_weights(pool.name)
    row_weights = weights if weights is not None and weights.sum() > 0 else profile.weight
    if context.lb.product is Product.NGINX:
        profile = with_real_ip(pool, profile)
    clients: Counter[str] = Counter()
    for address, weight in zip(profile.client_ip.tolist(), row_weights.tolist(), strict=True):
        if weight > 0:
            clients[ip_hash_unit(str(address)) if per_subnet else str(address)] += weight
    return clients or None


CLIENT_ADDRESS_HASH = Rule(
    id="LB206",
    name="balancing.client-address-hash",
    family=Family.BALANCING,
    severity=Severity.WARNING,
    summary="A pool hashes the client address (balance source, ip_hash, hash "
    "$remote_addr) while few addresses or /24 networks send most of its requests.",
    rationale="Behind a CDN, a corporate NAT or another load balancer, many users share one "
    "address, and nginx ip_hash uses only the first three octets of an IPv4 address. All "
    "their requests land on one server, which overloads while its peers idle.",
    fix_hint="Make the product see the real client (nginx realip with set_real_ip_from, "
    "HAProxy `http-request set-src hdr(x-forwarded-for)`), or hash a per-user key such as "
    "a session cookie.",
    check=check_client_address_hash,
    needs="sharpens",
    options=(
        Option(
            "max_share",
            0.5,
            "largest fraction of a pool's requests one client address or /24 may send",
            minimum=0.0,
            maximum=1.0,
        ),
    ),
    examples=(
        Example(
            Product.HAPROXY,
            bad="backend be_app\n    balance source\n"
            "    server app1 10.0.0.1:80\n    server app2 10.0.0.2:80\n"
            "# traffic: every request from the CDN at 203.0.113.10",
            good="backend be_app\n    balance hdr(X-Session)\n"
            "    server app1 10.0.0.1:80\n    server app2 10.0.0.2:80",
        ),
        Example(
            Product.NGINX,
            bad="upstream app {\n    ip_hash;\n"
            "    server 10.0.0.1:80;\n    server 10.0.0.2:80;\n}",
            good="set_real_ip_from 203.0.113.0/24;\nreal_ip_header X-Forwarded-For;\n"
            "upstream app {\n    ip_hash;\n    server 10.0.0.1:80;\n    server 10.0.0.2:80;\n}",
        ),
    ),
)


# --------------------------------------------------------------------------------------
# LB207 balancing.hash-not-consistent


def check_hash_not_consistent(context: CheckContext, options: Options) -> Iterator[Finding]:
    product = context.lb.product
    for pool in context.lb.pools:
        balance = pool.balance
        if product is Product.NGINX:
            relevant = balance.algorithm is Algorithm.HASH
        else:
            relevant = balance.algorithm.is_hash
        if not relevant or balance.hash_method is not HashMethod.MAP_BASED:
            continue
        if len(active_servers(pool)) < 2:
            continue

        changing = [server for server in pool.servers if _comes_and_goes(server)]
        if product is Product.NGINX:
            reason = (
                f"{pool.name} uses {method_text(pool)} without `consistent`: adding or removing "
                "one server changes the modulus, so most keys move to another server "
                "and their caches and sessions start cold."
            )
            severity = Severity.INFO
        else:
            reason = (
                f"{pool.name} uses {method_text(pool)} with map-based hashing (the default "
                "hash-type): HAProxy rebuilds the map whenever a server goes down or comes "
                "back, so most keys move to another server."
            )
            if changing:
                reason += (
                    f" {join_names([server.name for server in changing])} have health "
                    "checks or DNS-filled slots, so the pool's membership changes at run time."
                )
            severity = Severity.WARNING if changing else Severity.INFO
        yield HASH_NOT_CONSISTENT.finding(
            reason,
            [balance.location, pool.location],
            subject=pool.name,
            severity=severity,
        )


def _comes_and_goes(server: Server) -> bool:
    return server.check or any(option.startswith("resolvers") for option in server.options)


HASH_NOT_CONSISTENT = Rule(
    id="LB207",
    name="balancing.hash-not-consistent",
    family=Family.BALANCING,
    severity=Severity.WARNING,
    summary="A pool hashes keys onto servers with a modulus instead of a consistent-hash "
    "ring, so a server going down or coming back moves most keys.",
    rationale="Map-based hashing places a key at hash modulo the total weight. When a server "
    "fails its health check or is added, the total changes and most keys move, so caches "
    "go cold and sessions break on every server at once, exactly when capacity is short.",
    fix_hint="Use `hash-type consistent` in HAProxy or `hash $key consistent;` in nginx.",
    check=check_hash_not_consistent,
    examples=(
        Example(
            Product.HAPROXY,
            bad="backend be_cache\n    balance uri\n"
            "    server c1 10.0.0.1:80 check\n    server c2 10.0.0.2:80 check",
            good="backend be_cache\n    balance uri\n    hash-type consistent\n"
            "    server c1 10.0.0.1:80 check\n    server c2 10.0.0.2:80 check",
        ),
        Example(
            Product.NGINX,
            bad="upstream cache {\n    hash $request_uri;\n"
            "    server 10.0.0.1:80;\n    server 10.0.0.2:80;\n}",
            good="upstream cache {\n    hash $request_uri consistent;\n"
            "    server 10.0.0.1:80;\n    server 10.0.0.2:80;\n}",
        ),
    ),
)
