"""HAProxy hash-placement rules (LB209-LB211, LB213): rings, maps and URI keys.

Facts are from HAProxy 2.6: doc/configuration.txt ("balance", "hash-type"), src/lb_map.c,
src/lb_chash.c and src/resolvers.c.
"""

from __future__ import annotations

import math
from collections.abc import Iterator

from lbguard.checks.interface import CheckContext, Example, Family, Finding, Option, Options, Rule
from lbguard.checks.pools import active_servers, frontend_targets
from lbguard.checks.wording import join_names
from lbguard.model import Algorithm, HashFunction, HashMethod, Product, Server, Severity

HAPROXY_RING_NODES_PER_WEIGHT = 16
"""Ring nodes per unit of weight in HAProxy 2.6 consistent hashing (lb_chash.c places
``weight * BE_WEIGHT_SCALE`` nodes per server, with BE_WEIGHT_SCALE 16)."""

MODULUS_TRAPS = {HashFunction.SDBM: 64, HashFunction.DJB2: 33}
"""Map sizes that defeat a hash function: sdbm multiplies by 65599, which is -1 modulo
64, and djb2 by 33 (HAProxy 2.6 doc/configuration.txt "hash-type")."""


# --------------------------------------------------------------------------------------
# LB209 balancing.coarse-hash-ring


def check_coarse_hash_ring(context: CheckContext, options: Options) -> Iterator[Finding]:
    if context.lb.product is not Product.HAPROXY:
        return
    min_nodes = int(options["min_nodes"])
    for pool in context.lb.pools:
        balance = pool.balance
        if not balance.algorithm.is_hash or balance.hash_method is not HashMethod.CONSISTENT:
            continue
        servers = active_servers(pool)
        if len(servers) < 2:
            continue
        lightest = min(servers, key=lambda server: server.weight)
        nodes = lightest.weight * HAPROXY_RING_NODES_PER_WEIGHT
        if nodes >= min_nodes:
            continue

        reason = (
            f"{pool.name} uses consistent hashing and {lightest.name} has weight "
            f"{lightest.weight}, so it owns only {nodes} points on the ring "
            f"({HAPROXY_RING_NODES_PER_WEIGHT} per unit of weight): with so few points the "
            "arcs between servers differ widely, and so do their shares of evenly spread keys"
        )
        share = context.pool_shares.get(pool.name)
        if share is not None and share.max_over_mean is not None and share.max_over_mean > 1:
            reason += f" (predicted maximum over mean: {share.max_over_mean:.2f})."
        else:
            reason += "."
        scale = math.ceil(min_nodes / nodes)
        yield COARSE_HASH_RING.finding(
            reason,
            [balance.location, pool.location, lightest.location],
            subject=pool.name,
            metrics={"ring_nodes": float(nodes), "weight_scale_needed": float(scale)},
        )


COARSE_HASH_RING = Rule(
    id="LB209",
    name="balancing.coarse-hash-ring",
    family=Family.BALANCING,
    severity=Severity.WARNING,
    summary="An HAProxy consistent-hash pool gives its servers so few ring points that "
    "evenly spread keys still split unevenly.",
    rationale="HAProxy 2.6 places 16 ring points per unit of weight, so with the default "
    "weight 1 each server owns 16 points and, with four servers, one can take about 1.5 "
    "times the share of another before the keys themselves are uneven.",
    fix_hint="Multiply every server's weight by the same factor (10 or more), which keeps "
    "the ratios and makes the ring fine-grained.",
    check=check_coarse_hash_ring,
    options=(
        Option(
            "min_nodes",
            160,
            "fewest ring points per server (16 per unit of weight) that are not reported",
            minimum=16,
        ),
    ),
    examples=(
        Example(
            Product.HAPROXY,
            bad="backend be_cache\n    balance uri\n    hash-type consistent\n"
            "    server c1 10.0.0.1:80\n    server c2 10.0.0.2:80",
            good="backend be_cache\n    balance uri\n    hash-type consistent\n"
            "    server c1 10.0.0.1:80 weight 10\n    server c2 10.0.0.2:80 weight 10",
        ),
    ),
)


# --------------------------------------------------------------------------------------
# LB210 balancing.map-hash-modulus


def check_map_hash_modulus(context: CheckContext, options: Options) -> Iterator[Finding]:
    if context.lb.product is not Product.HAPROXY:
        return
    for pool in context.lb.pools:
        balance = pool.balance
        # `balance source` hashes no string: the address itself is the key.
        if (
            not balance.algorithm.is_hash
            or balance.algorithm is Algorithm.SOURCE
            or balance.hash_method is not HashMethod.MAP_BASED
            or balance.avalanche
        ):
            continue
        modulus = MODULUS_TRAPS.get(balance.hash_function)
        servers = active_servers(pool)
        if modulus is None or len(servers) < 2:
            continue
        divisor = math.gcd(*(server.weight for server in servers))
        size = sum(server.weight // divisor for server in servers)
        if size % modulus:
            continue

        reason = (
            f"{pool.name} hashes with {balance.hash_function} into a map of {size} slots "
            f"(the weights divided by their greatest common divisor {divisor}), a multiple of "
            f"{modulus}: "
        )
        if balance.hash_function is HashFunction.DJB2:
            reason += "the slot then depends only on the key's last byte."
        else:
            reason += "keys that differ in a few bytes fall into the same slots."
        yield MAP_HASH_MODULUS.finding(
            reason,
            [balance.location, pool.location],
            subject=pool.name,
            metrics={"map_size": float(size)},
        )


MAP_HASH_MODULUS = Rule(
    id="LB210",
    name="balancing.map-hash-modulus",
    family=Family.BALANCING,
    severity=Severity.WARNING,
    summary="An HAProxy map-based hash pool has a total weight that is a multiple of 64 "
    "with sdbm or of 33 with djb2, which the hash function cannot spread over.",
    rationale="Map-based hashing picks slot hash modulo the total weight. sdbm's multiplier "
    "is -1 modulo 64 and djb2's is 0 modulo 33, so with such totals whole groups of keys "
    "share a slot and some servers get few keys.",
    fix_hint="Add the avalanche modifier (`hash-type map-based sdbm avalanche`), use "
    "consistent hashing, or change one weight so that the total avoids the multiple.",
    check=check_map_hash_modulus,
    examples=(
        Example(
            Product.HAPROXY,
            bad="backend be_cache\n    balance uri\n    hash-type map-based djb2\n"
            "    server c1 10.0.0.1:80 weight 1\n    server c2 10.0.0.2:80 weight 32",
            good="backend be_cache\n    balance uri\n    hash-type map-based djb2 avalanche\n"
            "    server c1 10.0.0.1:80 weight 1\n    server c2 10.0.0.2:80 weight 32",
        ),
    ),
)


# --------------------------------------------------------------------------------------
# LB211 balancing.srv-weight-rounding


def check_srv_weight_rounding(context: CheckContext, options: Options) -> Iterator[Finding]:
    if context.lb.product is not Product.HAPROXY:
        return
    for pool in context.lb.pools:
        lines: dict[int, list[Server]] = {}
        for server in pool.servers:
            if _srv_template(server):
                lines.setdefault(server.location.line, []).append(server)
        for servers in lines.values():
            first = servers[0]
            reason = (
                f"{pool.name}'s server-template fills {len(servers)} slots from the SRV "
                f"records of {first.address}: HAProxy 2.6 turns an SRV weight w into "
                "(w + 255) / 256, so SRV weights 1 to 256 all become 1 and the weights "
                "the DNS publishes are lost."
            )
            yield SRV_WEIGHT_ROUNDING.finding(reason, [first.location], subject=pool.name)


def _srv_template(server: Server) -> bool:
    if not server.text.startswith("server-template") or not server.address.startswith("_"):
        return False
    options = " ".join(server.options)
    return "resolvers" in options and "ignore-weight" not in options


SRV_WEIGHT_ROUNDING = Rule(
    id="LB211",
    name="balancing.srv-weight-rounding",
    family=Family.BALANCING,
    severity=Severity.INFO,
    summary="An HAProxy server-template takes its weights from DNS SRV records, which "
    "HAProxy divides by 256 and rounds up.",
    rationale="HAProxy 2.6 maps an SRV weight w to (w + 255) / 256 in integer arithmetic, "
    "so SRV weights 10 and 250 both become 1 and 257 becomes 2. Capacity published in DNS "
    "is flattened or exaggerated.",
    fix_hint="Publish SRV weights as multiples of 256, or add `resolve-opts ignore-weight` "
    "and set weights in the configuration.",
    check=check_srv_weight_rounding,
    examples=(
        Example(
            Product.HAPROXY,
            bad="backend be_app\n"
            "    server-template app 3 _http._tcp.app.internal resolvers dns check",
            good="backend be_app\n    server-template app 3 _http._tcp.app.internal "
            "resolvers dns resolve-opts ignore-weight check",
        ),
    ),
)


# --------------------------------------------------------------------------------------
# LB213 balancing.uri-hash-http2


def check_uri_hash_http2(context: CheckContext, options: Options) -> Iterator[Finding]:
    if context.lb.product is not Product.HAPROXY:
        return
    for pool in context.lb.pools:
        balance = pool.balance
        if balance.algorithm is not Algorithm.URI or balance.uri_path_only:
            continue
        frontends = [
            frontend
            for frontend in context.lb.frontends
            if frontend.accepts_http2 and pool.name in frontend_targets(frontend)
        ]
        if not frontends:
            continue
        names = join_names([frontend.name for frontend in frontends])
        reason = (
            f"{pool.name} hashes the URI without path-only and receives requests from "
            f"{names}, which accepts HTTP/2: HAProxy hashes an HTTP/2 request's absolute "
            "URI (scheme and authority included) but an HTTP/1.1 request's path, so one "
            "URL maps to two servers and each caches it."
        )
        binds = [
            bind.location
            for frontend in frontends
            for bind in frontend.binds
            if any("h2" in option for option in bind.options)
        ]
        yield URI_HASH_HTTP2.finding(
            reason, [balance.location, pool.location, *binds], subject=pool.name
        )


URI_HASH_HTTP2 = Rule(
    id="LB213",
    name="balancing.uri-hash-http2",
    family=Family.BALANCING,
    severity=Severity.WARNING,
    summary="An HAProxy pool balances by URI without path-only behind a frontend that "
    "accepts HTTP/2.",
    rationale="HTTP/2 requests reach HAProxy with an absolute URI, HTTP/1.1 requests with "
    "a path only, so `balance uri` hashes the same URL two ways and splits its cache "
    "between two servers. The path-only option (HAProxy 2.3 and later) hashes the path "
    "in both cases.",
    fix_hint="Write `balance uri path-only`.",
    check=check_uri_hash_http2,
    examples=(
        Example(
            Product.HAPROXY,
            bad="frontend fe\n    bind :443 ssl crt site.pem alpn h2,http/1.1\n"
            "    default_backend be_cache\nbackend be_cache\n    balance uri",
            good="frontend fe\n    bind :443 ssl crt site.pem alpn h2,http/1.1\n"
            "    default_backend be_cache\nbackend be_cache\n    balance uri path-only",
        ),
    ),
)
