"""The fidelity matrix: every HAProxy and NGINX balancing setup that the lab replays.

A `Row` describes one load-balancing setup in the product's own configuration words: the
``balance`` / ``hash-type`` lines of an HAProxy backend or the balancing directive of an
nginx ``upstream``. It also lists the servers, optional routing rules, the traffic and
the rule by which observed shares are judged. `lbguard.lab.fidelity_lab` turns rows into
one product config, runs it and compares.
"""

from __future__ import annotations

import ipaddress
import random
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from enum import StrEnum

from lbguard.lab.generator import RequestSpec
from lbguard.model import Product


class Check(StrEnum):
    """Comparison rule between observed traffic and lbguard's prediction."""

    SHARES = "shares"
    """Deterministic algorithm: every server's share within `SHARE_TOLERANCE`."""

    PER_KEY = "per-key"
    """Hash algorithm: every request lands on the server predicted for its key."""

    BINOMIAL = "binomial"
    """Random algorithm: every server's count within the binomial bound of
    `fidelity_lab.row_sigmas`, which gives the whole row the false-failure probability of
    one `SIGMAS` test."""


SHARE_TOLERANCE = 0.01
"""Maximum difference between an observed and a predicted share: 1 percentage point."""

SIGMAS = 3.0
"""Binomial bound for random algorithms, in standard deviations, for a whole row."""
# NOTE: a correct prediction still fails a row with probability about 0.27 % (one 3-sigma
# test, normal approximation), so the two nginx random rows fail a run about 0.5 % of the
# time. The HAProxy random rows repeat from run to run because HAProxy 2.6 starts its
# statistical PRNG from a fixed seed (src/tools.c).


@dataclass(frozen=True)
class LabServer:
    """A server line of a row's pool."""

    name: str
    """Server name; unique within the row, since the backend that answers is named so."""

    options: str = ""
    """HAProxy server keywords or nginx ``server`` parameters, as written in the config."""

    down: bool = False
    """True to point the server at a stopped backend (connections are refused)."""


@dataclass(frozen=True)
class LabPool:
    """An HAProxy backend or an nginx upstream of a row."""

    name: str
    lines: tuple[str, ...]
    """Balancing lines as written, without a trailing ``;`` for nginx."""

    servers: tuple[LabServer, ...]


@dataclass(frozen=True)
class Row:
    """One setup of the matrix."""

    id: str
    product: Product
    title: str
    check: Check
    pools: tuple[LabPool, ...]
    traffic: tuple[RequestSpec, ...]
    """Request shapes; each is sent ``int(weight)`` times, in a seeded shuffled order."""

    routing: str = ""
    """HAProxy frontend lines placed before ``default_backend``, or whole nginx ``server``
    blocks replacing the default one. ``@PORT@`` is the row's port and ``@<pool>@`` the
    product name of a pool."""

    concurrency: int = 4
    warmup: bool = False
    """Send the traffic once before counting, so nginx marks stopped servers as failed."""

    def __post_init__(self) -> None:
        names = [server.name for pool in self.pools for server in pool.servers]
        if len(names) != len(set(names)):
            raise ValueError(f"row {self.id}: server names must be unique within the row")

    @property
    def requests(self) -> int:
        return sum(int(spec.weight) for spec in self.traffic)

    @property
    def key(self) -> str:
        """Prefix of the row's section and pool names in the product config."""
        return self.id.replace("-", "_")

    def pool_name(self, pool: str) -> str:
        return f"{self.key}_{pool}"

    def server_names(self) -> dict[str, tuple[str, str]]:
        """Map each server name to its (pool, server) pair."""
        return {s.name: (p.name, s.name) for p in self.pools for s in p.servers}


# --------------------------------------------------------------------------------------
# Traffic


def client_addresses(count: int, seed: int) -> list[str]:
    """Return distinct client addresses from many /24 networks, one in eight IPv6."""
    rng = random.Random(seed)
    found: dict[str, None] = {}
    while len(found) < count:
        address: ipaddress.IPv4Address | ipaddress.IPv6Address
        if len(found) % 8 == 7:
            address = ipaddress.IPv6Address((0x2001_0DB8 << 96) | rng.getrandbits(96))
        else:
            address = ipaddress.IPv4Address((10 << 24) | rng.getrandbits(24))
        found[str(address)] = None
    return list(found)


def request_paths(count: int, seed: int) -> list[tuple[str, str]]:
    """Return distinct (path, query) pairs of several depths, most with a query."""
    rng = random.Random(seed)
    words = ("api", "v1", "v2", "static", "img", "users", "orders", "cart", "search")
    found: dict[tuple[str, str], None] = {}
    while len(found) < count:
        depth = rng.randint(1, 4)
        path = "/" + "/".join(rng.choice(words) for _ in range(depth - 1))
        path = path.rstrip("/") + f"/item{rng.randint(0, 9999)}"
        query = "" if rng.random() < 0.3 else f"id={rng.randint(0, 999)}&page={rng.randint(1, 9)}"
        found[(path, query)] = None
    return list(found)


def _keys(count: int, seed: int, prefix: str) -> list[str]:
    rng = random.Random(seed)
    return [f"{prefix}{rng.getrandbits(40):x}" for _ in range(count)]


HASH_KEYS = 120
"""Distinct keys per hash row; each is requested once."""


def source_traffic() -> tuple[RequestSpec, ...]:
    return tuple(RequestSpec(path="/", client_ip=ip) for ip in client_addresses(HASH_KEYS, 11))


def uri_traffic() -> tuple[RequestSpec, ...]:
    return tuple(RequestSpec(path=p, query=q) for p, q in request_paths(HASH_KEYS, 12))


def url_param_traffic() -> tuple[RequestSpec, ...]:
    return tuple(
        RequestSpec(path="/search", query=f"lang=en&uid={key}&x={i % 3}")
        for i, key in enumerate(_keys(HASH_KEYS, 13, "user"))
    )


def header_traffic(name: str) -> tuple[RequestSpec, ...]:
    return tuple(
        RequestSpec(path="/", headers=((name, f"www.{key}.example.com"),))
        for key in _keys(HASH_KEYS, 14, "tenant")
    )


def repeated(count: int, spec: RequestSpec | None = None) -> tuple[RequestSpec, ...]:
    """Return one request shape (``GET /`` by default) to be sent `count` times."""
    base = spec or RequestSpec(path="/")
    return (RequestSpec(base.method, base.host, base.path, base.query, base.headers,
                        base.client_ip, float(count)),)


def servers(*weights: int, prefix: str = "s") -> tuple[LabServer, ...]:
    """Servers ``<prefix>1`` to ``<prefix>N`` with the given weights (HAProxy syntax)."""
    return tuple(
        LabServer(f"{prefix}{i}", f"weight {w}" if w != 1 else "")
        for i, w in enumerate(weights, start=1)
    )


def nginx_servers(*weights: int, prefix: str = "s") -> tuple[LabServer, ...]:
    return tuple(
        LabServer(f"{prefix}{i}", f"weight={w}" if w != 1 else "")
        for i, w in enumerate(weights, start=1)
    )


# --------------------------------------------------------------------------------------
# HAProxy rows

_H = Product.HAPROXY

HASH_FUNCTIONS = ("", "sdbm", "djb2", "wt6", "crc32",
                  "sdbm avalanche", "djb2 avalanche", "wt6 avalanche", "crc32 avalanche")
"""``hash-type <method>`` arguments after the method; empty means the product default."""

HAPROXY_HASHES: tuple[tuple[str, str, tuple[RequestSpec, ...]], ...] = (
    ("source", "balance source", source_traffic()),
    ("uri", "balance uri", uri_traffic()),
    ("uri-whole", "balance uri whole", uri_traffic()),
    ("uri-len", "balance uri len 12", uri_traffic()),
    ("uri-depth", "balance uri depth 2", uri_traffic()),
    ("uri-path-only", "balance uri path-only", uri_traffic()),
    ("url-param", "balance url_param uid", url_param_traffic()),
    ("hdr", "balance hdr(x-tenant)", header_traffic("X-Tenant")),
)
"""(row name, balance line, traffic) of every HAProxy hash algorithm in the matrix."""


def _haproxy_hash_rows() -> Iterator[Row]:
    hash_servers = servers(1, 2, 1, 3)
    for name, line, traffic in HAPROXY_HASHES:
        for method in ("map-based", "consistent"):
            for function in HASH_FUNCTIONS:
                suffix = function.replace(" ", "-") or "default"
                hash_type = f"hash-type {method} {function}".strip()
                yield Row(
                    id=f"haproxy-{name}-{method}-{suffix}",
                    product=_H,
                    title=f"{line}; {hash_type}",
                    check=Check.PER_KEY,
                    pools=(LabPool("be", (line, hash_type), hash_servers),),
                    traffic=traffic,
                    concurrency=8,
                )


HAPROXY_ACL_ROUTING = """\
acl is_api path_beg /api/
acl is_static path_end .css .js
acl static_host hdr(host) -i static.example.com
acl is_post method POST
acl admin_user url_param(user) -m reg ^admin
use_backend @api@ if is_api !is_post
use_backend @write@ if is_post is_api || admin_user
use_backend @static@ if is_static or static_host
"""

_ROUTED_TRAFFIC = (
    RequestSpec(path="/api/items", weight=60),
    RequestSpec(method="POST", path="/api/items", weight=30),
    RequestSpec(path="/", query="user=admin7", weight=20),
    RequestSpec(path="/app.js", weight=40),
    RequestSpec(host="static.example.com", path="/logo.png", weight=30),
    RequestSpec(path="/home", weight=60),
)


def _haproxy_rows() -> Iterator[Row]:
    yield Row(
        "haproxy-roundrobin-weights", _H, "balance roundrobin, weights 1/2/3/4",
        Check.SHARES, (LabPool("be", ("balance roundrobin",), servers(1, 2, 3, 4)),),
        repeated(300),
    )
    yield Row(
        "haproxy-static-rr-weights", _H, "balance static-rr, weights 5/3/2",
        Check.SHARES, (LabPool("be", ("balance static-rr",), servers(5, 3, 2)),),
        repeated(300),
    )
    yield Row(
        "haproxy-random", _H, "balance random (two draws), weights 1/1/2/1",
        Check.BINOMIAL, (LabPool("be", ("balance random",), servers(1, 1, 2, 1)),),
        repeated(2000), concurrency=1,
    )
    yield Row(
        "haproxy-random-1", _H, "balance random(1), 4 servers of weight 1",
        Check.BINOMIAL, (LabPool("be", ("balance random(1)",), servers(1, 1, 1, 1)),),
        repeated(2000), concurrency=1,
    )
    down_primaries = (
        LabServer("a1", "check inter 100ms fall 1", down=True),
        LabServer("a2", "disabled"),
    )
    yield Row(
        "haproxy-backup-first", _H,
        "roundrobin; primaries down (stopped, disabled); first backup only",
        Check.SHARES,
        (LabPool("be", ("balance roundrobin",), (
            *down_primaries, LabServer("b1", "backup"), LabServer("b2", "backup weight 3"))),),
        repeated(100),
    )
    yield Row(
        "haproxy-allbackups", _H,
        "roundrobin, option allbackups; primaries down; backups weights 1/3",
        Check.SHARES,
        (LabPool("be", ("balance roundrobin", "option allbackups"), (
            *down_primaries, LabServer("b1", "backup"), LabServer("b2", "backup weight 3"))),),
        repeated(200),
    )
    yield Row(
        "haproxy-static-rr-backups", _H,
        "static-rr; primaries down; backups weights 2/3 without allbackups",
        Check.SHARES,
        (LabPool("be", ("balance static-rr",), (
            *down_primaries, LabServer("b1", "backup weight 2"),
            LabServer("b2", "backup weight 3"))),),
        repeated(200),
    )
    yield Row(
        "haproxy-uri-one-server-down", _H,
        "balance uri, map-based; one server stopped and failing its check",
        Check.PER_KEY,
        (LabPool("be", ("balance uri",), (
            *servers(1, 2, 1), LabServer("s4", "check inter 100ms fall 1", down=True))),),
        uri_traffic(), concurrency=8,
    )
    yield from _haproxy_hash_rows()
    yield Row(
        "haproxy-acl-routing", _H, "use_backend with five ACLs, and/or/negation",
        Check.SHARES,
        (
            LabPool("web", ("balance roundrobin",), servers(1, 1, prefix="web")),
            LabPool("api", ("balance roundrobin",), servers(2, 1, prefix="api")),
            LabPool("write", ("balance roundrobin",), servers(1, prefix="write")),
            LabPool("static", ("balance static-rr",), servers(1, 3, prefix="static")),
        ),
        _ROUTED_TRAFFIC, routing=HAPROXY_ACL_ROUTING,
    )


# --------------------------------------------------------------------------------------
# NGINX rows

_N = Product.NGINX


NGINX_LOCATIONS = """\
server {
    listen 127.0.0.1:@PORT@;
    location = / { proxy_pass http://@home@; }
    location / { proxy_pass http://@web@; }
    location /api/ { proxy_pass http://@api@; }
    location ^~ /static/ { proxy_pass http://@static@; }
    location ~* \\.(png|css)$ { proxy_pass http://@assets@; }
    location ~ ^/api/v2/ { proxy_pass http://@static@; }
}
"""

NGINX_SERVER_NAMES = """\
server {
    listen 127.0.0.1:@PORT@;
    server_name default.example.com;
    location / { proxy_pass http://@web@; }
}
server {
    listen 127.0.0.1:@PORT@;
    server_name api.example.com *.api.example.com;
    location / { proxy_pass http://@api@; }
}
server {
    listen 127.0.0.1:@PORT@;
    server_name ~^static\\d+\\.example\\.com$ assets.*;
    location / { proxy_pass http://@static@; }
}
"""


def _nginx_hash_rows() -> Iterator[Row]:
    hashes: tuple[tuple[str, str, tuple[RequestSpec, ...]], ...] = (
        ("ip-hash", "ip_hash", source_traffic()),
        ("hash-uri", "hash $request_uri", uri_traffic()),
        ("hash-uri-consistent", "hash $request_uri consistent", uri_traffic()),
        ("hash-remote-addr", "hash $remote_addr", source_traffic()),
        ("hash-header-consistent", "hash $http_x_tenant consistent", header_traffic("X-Tenant")),
        ("hash-arg", "hash $arg_uid", url_param_traffic()),
    )
    for name, line, traffic in hashes:
        yield Row(f"nginx-{name}", _N, line, Check.PER_KEY,
                  (LabPool("up", (line,), nginx_servers(1, 2, 1, 3)),), traffic, concurrency=8)
        with_down = (*nginx_servers(1, 2, 1), LabServer("s4", "down"))
        yield Row(f"nginx-{name}-down", _N, f"{line}; one server marked down", Check.PER_KEY,
                  (LabPool("up", (line,), with_down),), traffic, concurrency=8)


def _nginx_rows() -> Iterator[Row]:
    yield Row(
        "nginx-smooth-wrr", _N, "round robin, weights 5/1/1", Check.SHARES,
        (LabPool("up", (), nginx_servers(5, 1, 1)),), repeated(280),
    )
    yield Row(
        "nginx-smooth-wrr-4", _N, "round robin, weights 1/2/3/4", Check.SHARES,
        (LabPool("up", (), nginx_servers(1, 2, 3, 4)),), repeated(300),
    )
    yield from _nginx_hash_rows()
    yield Row(
        "nginx-random", _N, "random, weights 1/1/2/4", Check.BINOMIAL,
        (LabPool("up", ("random",), nginx_servers(1, 1, 2, 4)),), repeated(2000),
        concurrency=1,
    )
    yield Row(
        "nginx-random-two", _N, "random two, weights 1/1/2/4", Check.BINOMIAL,
        (LabPool("up", ("random two",), nginx_servers(1, 1, 2, 4)),), repeated(2000),
        concurrency=1,
    )
    yield Row(
        "nginx-backup", _N,
        "round robin; primaries down (stopped, marked down); backups weights 1/3",
        Check.SHARES,
        (LabPool("up", (), (
            LabServer("a1", "max_fails=1 fail_timeout=60s", down=True),
            LabServer("a2", "down"),
            LabServer("b1", "backup"),
            LabServer("b2", "weight=3 backup"),
        )),),
        repeated(200), warmup=True,
    )
    yield Row(
        "nginx-locations", _N, "exact, prefix, ^~ and regex locations", Check.SHARES,
        (
            LabPool("home", (), nginx_servers(1, prefix="home")),
            LabPool("web", (), nginx_servers(1, 1, prefix="web")),
            LabPool("api", (), nginx_servers(3, 1, prefix="api")),
            LabPool("static", (), nginx_servers(1, prefix="static")),
            LabPool("assets", (), nginx_servers(1, 1, prefix="assets")),
        ),
        (
            RequestSpec(path="/", weight=20),
            RequestSpec(path="/index.html", weight=40),
            RequestSpec(path="/api/users", weight=80),
            RequestSpec(path="/api/v2/users", weight=20),
            RequestSpec(path="/static/logo.png", weight=30),
            RequestSpec(path="/img/logo.PNG", weight=40),
            RequestSpec(path="/api/style.css", weight=20),
        ),
        routing=NGINX_LOCATIONS,
    )
    yield Row(
        "nginx-server-names", _N, "exact, wildcard, regex and default server names",
        Check.SHARES,
        (
            LabPool("web", (), nginx_servers(1, 1, prefix="web")),
            LabPool("api", (), nginx_servers(1, 3, prefix="api")),
            LabPool("static", (), nginx_servers(1, prefix="static")),
        ),
        (
            RequestSpec(host="default.example.com", weight=20),
            RequestSpec(host="other.example.org", weight=20),
            RequestSpec(host="api.example.com", weight=40),
            RequestSpec(host="eu.api.example.com:8080", weight=40),
            RequestSpec(host="static12.example.com", weight=30),
            RequestSpec(host="assets.example.net", weight=30),
        ),
        routing=NGINX_SERVER_NAMES,
    )


MATRIX: tuple[Row, ...] = (*_haproxy_rows(), *_nginx_rows())
"""Every row, HAProxy first."""


def rows_for(product: Product, ids: Sequence[str] = ()) -> tuple[Row, ...]:
    """Return the rows of `product`, only those named in `ids` when it is not empty."""
    chosen = tuple(row for row in MATRIX if row.product is product)
    if ids:
        wanted = set(ids)
        chosen = tuple(row for row in chosen if row.id in wanted)
    return chosen


ROW_IDS: frozenset[str] = frozenset(row.id for row in MATRIX)
if len(ROW_IDS) != len(MATRIX):
    raise ValueError("matrix row ids must be unique")

