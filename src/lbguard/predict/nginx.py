"""NGINX balancing model: each upstream method exactly as nginx 1.22/1.26 picks peers.

A peer is one address of a ``server`` line: a host name that resolves to k addresses
(given as input, never looked up) makes k peers with the line's full weight. Peers of
``down`` servers keep their weight in the total, so the hash mappings of the others do not
move. A key that lands on an unusable peer is re-hashed as nginx does. Shares are summed
per ``server`` line.
"""

from __future__ import annotations

import ipaddress
import re
import urllib.parse
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace

import numpy as np
import numpy.typing as npt

from lbguard.hashing.nginx import (
    FALLBACK,
    KetamaRing,
    crc32_keys,
    ip_hash_address_peers,
    ip_hash_rows,
    ketama_names,
    ketama_ring,
    ketama_uniform_shares,
    memcached_hash_peers,
    memcached_uniform_shares,
    parse_addresses,
)
from lbguard.model import AdminState, Algorithm, HashMethod, Pool
from lbguard.predict.balancer import Health, PoolOutcome, PoolRequests
from lbguard.predict.result import ShareMethod
from lbguard.traffic import TrafficProfile, header_key

__all__ = [
    "UnknownKeyError",
    "balance",
    "choose",
    "evaluate_key",
    "key_rows",
    "sequence",
    "with_real_ip",
]

IpNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network

_VARIABLE = re.compile(r"\$(?:\{(\w+)\}|(\w+))")
"""An nginx variable reference, ``$name`` or ``${name}``."""


@dataclass(frozen=True)
class Peer:
    server: int
    """Index of the pool's server line this peer comes from."""

    weight: int
    usable: bool


@dataclass(frozen=True)
class PeerSets:
    primary: tuple[Peer, ...]
    backup: tuple[Peer, ...]


def _usable(pool: Pool, index: int, health: Health) -> bool:
    server = pool.servers[index]
    return server.state is AdminState.ENABLED and health.get(server.name, True)


def peer_sets(pool: Pool, health: Health) -> PeerSets:
    """Expand the pool's server lines into nginx peers (ngx_http_upstream_init_round_robin)."""
    primary: list[Peer] = []
    backup: list[Peer] = []
    for index, server in enumerate(pool.servers):
        count = max(1, len(server.resolved))
        peer = Peer(index, server.weight, _usable(pool, index, health))
        (backup if server.backup else primary).extend([peer] * count)
    return PeerSets(tuple(primary), tuple(backup))


def _round_robin(pool: Pool, peers: PeerSets) -> dict[int, float]:
    """Long-run smooth weighted round-robin shares per server line: weights over the usable
    primary peers, or over the usable backup peers when no primary is usable."""
    for group in (peers.primary, peers.backup):
        usable = [peer for peer in group if peer.usable]
        total = sum(peer.weight for peer in usable)
        if total:
            shares: dict[int, float] = {}
            for peer in usable:
                shares[peer.server] = shares.get(peer.server, 0.0) + peer.weight / total
            return shares
    return {}


def _outcome(
    pool: Pool,
    per_server: dict[int, float],
    method: ShareMethod,
    fair: dict[int, float],
    notes: list[str],
) -> PoolOutcome:
    names = [server.name for server in pool.servers]
    return PoolOutcome(
        shares={name: per_server.get(i, 0.0) for i, name in enumerate(names)},
        method=method,
        eligible=frozenset(names[i] for i, share in fair.items() if share > 0),
        fair={name: fair.get(i, 0.0) for i, name in enumerate(names)},
        notes=tuple(notes),
    )


def balance(pool: Pool, requests: PoolRequests | None, health: Health) -> PoolOutcome:
    """Return each server's share of the requests that reach ``pool``."""
    peers = peer_sets(pool, health)
    fair = _round_robin(pool, peers)
    notes = _common_notes(pool)
    algorithm = pool.balance.algorithm
    if not pool.servers:
        notes.append("the upstream lists no servers in the configuration")
        return _outcome(pool, {}, ShareMethod.UNKNOWN, {}, notes)
    if any("balancer_by_lua" in option for option in pool.options):
        notes.append("balancer_by_lua_block picks the peer in Lua; shares follow the weights")
        return _outcome(pool, fair, ShareMethod.UNKNOWN, fair, notes)
    if not fair:
        notes.append("no usable server: nginx answers 502 (no live upstreams)")
        return _outcome(pool, {}, ShareMethod.EXACT, {}, notes)

    if algorithm is Algorithm.LEAST_CONN:
        notes.append(
            "least_conn picks the fewest active connections per weight; with equal "
            "response times connections spread in proportion to the weights"
        )
        return _outcome(pool, fair, ShareMethod.LOAD_DEPENDENT, fair, notes)
    if algorithm is Algorithm.RANDOM:
        return _random(pool, peers, fair, notes)
    if algorithm in (Algorithm.IP_HASH, Algorithm.HASH):
        if len(peers.primary) == 1 and not peers.backup:
            notes.append("a single peer: nginx uses it for every key")
            return _outcome(pool, fair, ShareMethod.EXACT, fair, notes)
        return _hashed(pool, requests, peers, fair, notes)
    notes.append("smooth weighted round robin: long-run shares equal the weights")
    return _outcome(pool, fair, ShareMethod.EXACT, fair, notes)


def _common_notes(pool: Pool) -> list[str]:
    notes = []
    # Round robin, and least_conn when it breaks ties by round robin, start at the first
    # server with the top weight. Hash methods place keys the same way in every worker.
    round_robin = pool.balance.algorithm in (Algorithm.ROUND_ROBIN, Algorithm.LEAST_CONN)
    if not pool.shared_state and round_robin and len(pool.servers) > 1:
        notes.append(
            "no zone: each worker process keeps its own balancing state and counters, and "
            "every worker sends its first request to the first server with the top weight"
        )
    for server in pool.servers:
        if len(server.resolved) > 1:
            notes.append(
                f"{server.name} resolves to {len(server.resolved)} addresses: each address "
                f"is a peer with weight {server.weight}"
            )
    return notes


def _random(pool: Pool, peers: PeerSets, fair: dict[int, float], notes: list[str]) -> PoolOutcome:
    if (pool.balance.draws or 1) < 2:
        notes.append("random: expected shares equal the weights")
        return _outcome(pool, fair, ShareMethod.EXPECTED, fair, notes)
    usable = [peer for peer in peers.primary if peer.usable]
    total = sum(peer.weight for peer in usable)
    shares: dict[int, float] = {}
    # random two draws two distinct peers by weight and keeps the one with fewer connections
    # per weight; on a tie the second draw wins (ngx_http_upstream_get_random2_peer).
    for first in usable:
        remaining = total - first.weight
        for second in usable:
            if second is first or remaining <= 0:
                continue
            chance = first.weight / total * second.weight / remaining
            shares[second.server] = shares.get(second.server, 0.0) + chance
    if len(usable) == 1:
        shares = dict(fair)
    notes.append(
        "random two: expectation with equal connections per weight, where the "
        "second draw wins the tie; under load the less loaded of two draws wins"
    )
    return _outcome(pool, shares, ShareMethod.EXPECTED, fair, notes)


# --------------------------------------------------------------------------------------
# Hash methods


def _hashed(
    pool: Pool,
    requests: PoolRequests | None,
    peers: PeerSets,
    fair: dict[int, float],
    notes: list[str],
) -> PoolOutcome:
    if requests is None:
        notes.append("no traffic profile: shares over uniformly spread keys")
        return _outcome(
            pool, _uniform_hash_shares(pool, peers, fair), ShareMethod.EXPECTED, fair, notes
        )
    rows = np.flatnonzero(requests.weight > 0)
    try:
        per_row = _place_rows(pool, peers, requests.profile, rows)
    except UnknownKeyError as error:
        notes.append(str(error))
        return _outcome(pool, fair, ShareMethod.UNKNOWN, fair, notes)

    # The last bin collects the requests that fall back to round robin.
    fallback_bin = len(pool.servers)
    row_weight = requests.weight[rows]
    total = float(row_weight.sum())
    sums = np.bincount(
        np.where(per_row == FALLBACK, fallback_bin, per_row),
        weights=row_weight,
        minlength=fallback_bin + 1,
    )
    shares = {server: float(sums[server]) / total for server in np.flatnonzero(sums[:-1]).tolist()}
    fallback = float(sums[-1])
    if fallback:
        notes.append(
            f"{fallback / total:.1%} of requests find no usable peer by hashing "
            "(or have an empty key) and fall back to round robin"
        )
        for server, share in fair.items():
            shares[server] = shares.get(server, 0.0) + share * fallback / total
    notes.append(f"exact over {rows.size} profile rows, each hashed as nginx hashes it")
    return _outcome(pool, shares, ShareMethod.EXACT, fair, notes)


def choose(pool: Pool, profile: TrafficProfile, health: Health | None = None) -> list[str | None]:
    """Return, for each profile row, the server a hash pool sends it to; None where nginx
    falls back to round robin. Raise UnknownKeyError when the key cannot be computed."""
    peers = peer_sets(pool, health or {})
    per_row = _place_rows(pool, peers, profile, np.arange(len(profile)))
    names = [server.name for server in pool.servers]
    return [None if index == FALLBACK else names[index] for index in per_row.tolist()]


def _place_rows(
    pool: Pool, peers: PeerSets, profile: TrafficProfile, rows: npt.NDArray[np.intp]
) -> npt.NDArray[np.int64]:
    """Return the server line each of the profile's ``rows`` lands on, FALLBACK for round
    robin. Raise UnknownKeyError when the key cannot be computed."""
    profile = with_real_ip(pool, profile)
    primary = peers.primary
    weights = [peer.weight for peer in primary]
    usable = [peer.usable for peer in primary]
    owners = np.array([peer.server for peer in primary] + [FALLBACK], dtype=np.int64)
    balance_ = pool.balance
    if balance_.algorithm is Algorithm.IP_HASH:
        if "client_ip" not in profile.known:
            raise UnknownKeyError(
                "ip_hash needs client addresses; the traffic profile has no client_ip column"
            )
        return owners[ip_hash_address_peers(profile.client_ip[rows], weights, usable)]

    keys = key_rows(balance_.key or "", profile, rows)
    if balance_.hash_method is not HashMethod.CONSISTENT:
        return owners[memcached_hash_peers(keys, weights, usable)]
    ring = _ring(pool, primary)
    name_usable = _name_usable(pool, ring.names, primary)
    chosen = ketama_names(ring, crc32_keys(keys), name_usable)
    name_owner = np.array(
        [_server_index(pool, name) for name in ring.names] + [FALLBACK], dtype=np.int64
    )
    # An empty key goes to round robin (``hp->key.len == 0``).
    lengths = np.fromiter(map(len, keys), dtype=np.int64, count=len(keys))
    chosen[lengths == 0] = FALLBACK
    return name_owner[chosen]


def _ring(pool: Pool, primary: Sequence[Peer]) -> KetamaRing:
    names = [_ketama_name(pool, peer.server) for peer in primary]
    return ketama_ring(names, [peer.weight for peer in primary])


def _ketama_name(pool: Pool, index: int) -> str:
    """Return the ``server`` address text that chash hashes (the word after ``server``,
    without the ``;`` that ends a line without parameters)."""
    server = pool.servers[index]
    if not server.text.startswith("server "):
        return server.name
    return server.text.split()[1].rstrip(";")


def _server_index(pool: Pool, ketama_name: str) -> int:
    for index in range(len(pool.servers)):
        if _ketama_name(pool, index) == ketama_name:
            return index
    return FALLBACK


def _name_usable(pool: Pool, names: Sequence[str], primary: Sequence[Peer]) -> list[bool]:
    return [
        any(peer.usable and _ketama_name(pool, peer.server) == name for peer in primary)
        for name in names
    ]


def _uniform_hash_shares(pool: Pool, peers: PeerSets, fair: dict[int, float]) -> dict[int, float]:
    primary = peers.primary
    usable = [peer.usable for peer in primary]
    if pool.balance.algorithm is Algorithm.HASH and (
        pool.balance.hash_method is HashMethod.CONSISTENT
    ):
        ring = _ring(pool, primary)
        raw = ketama_uniform_shares(ring, _name_usable(pool, ring.names, primary))
        owners = [_server_index(pool, name) for name in ring.names]
    elif pool.balance.algorithm is Algorithm.HASH:
        raw = memcached_uniform_shares([peer.weight for peer in primary], usable)
        owners = [peer.server for peer in primary]
    else:
        raw = _ip_hash_uniform(primary)
        owners = [peer.server for peer in primary]
    shares: dict[int, float] = {}
    for owner, share in zip(owners, raw[:-1].tolist(), strict=True):
        shares[owner] = shares.get(owner, 0.0) + share
    for server, share in fair.items():
        shares[server] = shares.get(server, 0.0) + share * float(raw[-1])
    return shares


IP_HASH_UNIFORM_CHUNK = 1 << 20


def _ip_hash_uniform(primary: Sequence[Peer]) -> npt.NDArray[np.float64]:
    """Shares of ip_hash over every IPv4 /24 prefix, each counted once."""
    weights = [peer.weight for peer in primary]
    usable = [peer.usable for peer in primary]
    counts = np.zeros(len(primary) + 1)
    for start in range(0, 1 << 24, IP_HASH_UNIFORM_CHUNK):
        prefixes = np.arange(start, start + IP_HASH_UNIFORM_CHUNK, dtype=np.int64)
        octets = np.stack([(prefixes >> 16) & 255, (prefixes >> 8) & 255, prefixes & 255], axis=1)
        chosen = ip_hash_rows(octets, weights, usable)
        counts += np.bincount(
            np.where(chosen < 0, len(primary), chosen), minlength=len(primary) + 1
        )
    result: npt.NDArray[np.float64] = counts / counts.sum()
    return result


# --------------------------------------------------------------------------------------
# Keys


class UnknownKeyError(Exception):
    """A hash key that cannot be computed from the traffic profile."""


def _distinct_rows(values: Sequence[bytes]) -> tuple[list[bytes], npt.NDArray[np.int64]]:
    index: dict[bytes, int] = {}
    inverse = np.fromiter(
        (index.setdefault(v, len(index)) for v in values), dtype=np.int64, count=len(values)
    )
    return list(index), inverse


Column = npt.NDArray[np.object_]
"""A column of ``str`` values, or of ``bytes`` for ``$binary_remote_addr``."""

ColumnGetter = Callable[[npt.NDArray[np.intp]], Column]
"""Returns a variable's value for each of the given profile rows."""


def _map_distinct(column: Column, function: Callable[[str], str]) -> Column:
    """Apply ``function`` once per distinct value of ``column``; return one result per row."""
    values = column.tolist()
    results = {value: function(value) for value in dict.fromkeys(values)}
    return np.fromiter(map(results.__getitem__, values), dtype=object, count=len(values))


def _variable_getter(name: str, profile: TrafficProfile) -> ColumnGetter:
    """Return a function from profile rows to the values of ``$name`` (nginx 1.22
    ngx_http_variables.c); raise UnknownKeyError for a variable the profile lacks."""

    def need(column: str, what: str) -> None:
        if column not in profile.known:
            raise UnknownKeyError(
                f"hash key ${name} needs {what}; the traffic profile has no {column} column"
            )

    if name == "remote_addr":
        need("client_ip", "client addresses")
        return lambda rows: profile.client_ip[rows]
    if name == "binary_remote_addr":
        need("client_ip", "client addresses")
        return lambda rows: _binary_addresses(profile.client_ip[rows])
    if name in ("request_uri", "uri", "document_uri"):
        need("path", "request paths")
        if name != "request_uri":
            return lambda rows: _map_distinct(profile.path[rows], normalize_uri)
        has_query = "query" in profile.known

        def request_uri(rows: npt.NDArray[np.intp]) -> Column:
            uris = profile.path[rows]
            if not has_query:
                return uris
            query = profile.query[rows]
            with_query = query != ""
            if with_query.any():
                uris = uris.copy()
                uris[with_query] = uris[with_query] + "?" + query[with_query]
            return uris

        return request_uri
    if name in ("args", "query_string"):
        need("query", "query strings")
        return lambda rows: profile.query[rows]
    if name.startswith("arg_"):
        need("query", "query strings")
        argument = name[4:]
        return lambda rows: _map_distinct(
            profile.query[rows], lambda query: query_argument(query, argument)
        )
    if name == "host":
        need("host", "Host headers")
        return lambda rows: _map_distinct(profile.host[rows], host_variable)
    if name == "http_host":
        need("host", "Host headers")
        return lambda rows: profile.host[rows]
    if name == "request_method":
        need("method", "request methods")
        return lambda rows: profile.method[rows]
    if name.startswith("cookie_"):
        need(header_key("cookie"), "Cookie headers")
        cookies = profile.headers["cookie"]
        cookie = name[7:]
        return lambda rows: _map_distinct(
            cookies[rows], lambda header: cookie_value(header, cookie)
        )
    if name.startswith("http_"):
        header = name[5:].replace("_", "-")
        need(header_key(header), f"the {header} header")
        column = profile.headers[header.lower()]
        return lambda rows: column[rows]
    raise UnknownKeyError(
        f"hash key variable ${name} is not a request field lbguard can "
        "compute from a traffic profile"
    )


def key_rows(template: str, profile: TrafficProfile, rows: npt.NDArray[np.intp]) -> list[bytes]:
    """Evaluate an nginx complex value such as ``$host$request_uri`` for the given rows;
    returns one key per row, in UTF-8."""
    parts: list[str | ColumnGetter] = []
    position = 0
    for match in _VARIABLE.finditer(template):
        if match.start() > position:
            parts.append(template[position : match.start()])
        parts.append(_variable_getter(match.group(1) or match.group(2), profile))
        position = match.end()
    if position < len(template):
        parts.append(template[position:])

    values = [part if isinstance(part, str) else part(rows) for part in parts]
    binary = any(
        isinstance(value, np.ndarray) and value.size and isinstance(value[0], bytes)
        for value in values
    )
    if binary:
        # $binary_remote_addr is raw bytes, so every other part is encoded before joining.
        encoded = [
            value.encode() if isinstance(value, str) else _encoded(value) for value in values
        ]
        keys: list[bytes] = _joined(encoded, rows.size, b"").tolist()
        return keys
    return list(map(str.encode, _joined(values, rows.size, "").tolist()))


def _encoded(column: Column) -> Column:
    if column.size and isinstance(column[0], bytes):
        return column
    return np.fromiter(map(str.encode, column.tolist()), dtype=object, count=column.size)


def _joined(values: Sequence[str | bytes | Column], size: int, empty: str | bytes) -> Column:
    """Concatenate literal parts and columns row by row."""
    first, rest = (values[0], values[1:]) if values else (empty, [])
    result = first if isinstance(first, np.ndarray) else np.full(size, first, dtype=object)
    for value in rest:
        result = result + value
    return result


def evaluate_key(
    template: str, profile: TrafficProfile, rows: npt.NDArray[np.intp]
) -> tuple[list[bytes], npt.NDArray[np.int64]]:
    """Evaluate an nginx complex value such as ``$host$request_uri`` for the given rows.

    Returns the distinct keys and, for each row, the index of its key.
    """
    return _distinct_rows(key_rows(template, profile, rows))


def _binary_addresses(addresses: Column) -> Column:
    """Return ``$binary_remote_addr`` for each address: 4 or 16 bytes, or empty bytes for
    text that is no IP address."""
    parsed = parse_addresses(addresses)
    result: Column = np.full(addresses.size, b"", dtype=object)
    for rows, octets in ((parsed.ipv4_rows, parsed.ipv4), (parsed.ipv6_rows, parsed.ipv6)):
        width = octets.shape[1]
        packed = np.ascontiguousarray(octets, dtype=np.uint8).view(f"V{width}").reshape(-1)
        result[rows] = packed.tolist()
    return result


def normalize_uri(path: str) -> str:
    """Return ``$uri`` for a raw path: percent-decoded, ``//`` merged, dot segments
    resolved (ngx_http_parse_complex_uri with merge_slashes on)."""
    decoded = urllib.parse.unquote(path)
    segments: list[str] = []
    for segment in decoded.split("/")[1:]:
        if segment in ("", "."):
            continue
        if segment == "..":
            if segments:
                segments.pop()
            continue
        segments.append(segment)
    trailing = decoded.endswith(("/", "/.", "/..")) and bool(segments)
    return "/" + "/".join(segments) + ("/" if trailing else "")


def query_argument(query: str, name: str) -> str:
    """Return ``$arg_name``: the raw value of the first ``name=`` argument, matched
    case-insensitively (ngx_http_arg)."""
    for pair in query.split("&"):
        key, equals, value = pair.partition("=")
        if equals and key.lower() == name.lower():
            return value
    return ""


def cookie_value(header: str, name: str) -> str:
    for pair in header.split(";"):
        key, equals, value = pair.strip().partition("=")
        if equals and key.lower() == name.lower():
            return value
    return ""


def host_variable(host: str) -> str:
    """Return ``$host`` from a Host header: lower case, without port or trailing dot."""
    if host.startswith("["):
        return host.partition("]")[0].lower() + "]"
    return host.rpartition(":")[0].lower().rstrip(".") if ":" in host else host.lower().rstrip(".")


# --------------------------------------------------------------------------------------
# Pick order


def sequence(pool: Pool, count: int, health: Health | None = None) -> list[str]:
    """Return the server names one worker picks for ``count`` requests in a row under
    smooth weighted round robin (ngx_http_upstream_get_peer, nginx 1.22.1).

    Every peer starts with ``current_weight`` 0; each pick adds ``effective_weight`` to
    every usable peer, takes the highest (the first in config order on a tie) and
    subtracts the total from it. Backup peers are used only when no primary is usable.
    """
    peers = peer_sets(pool, health or {})
    group = [peer for peer in peers.primary if peer.usable] or [
        peer for peer in peers.backup if peer.usable
    ]
    if not group:
        return []
    current = [0] * len(group)
    total = sum(peer.weight for peer in group)
    picks: list[str] = []
    for _ in range(count):
        best = 0
        for index, peer in enumerate(group):
            current[index] += peer.weight
            if current[index] > current[best]:
                best = index
        current[best] -= total
        picks.append(pool.servers[group[best].server].name)
    return picks


# Client address


def _trusted(address: str, networks: Sequence[IpNetwork]) -> bool:
    try:
        parsed = ipaddress.ip_address(address)
    except ValueError:
        return False
    return any(parsed.version == network.version and parsed in network for network in networks)


def _real_address(
    address: str, header: str, networks: Sequence[IpNetwork], header_name: str, recursive: bool
) -> str:
    """Return the client address after nginx 1.22 ngx_http_realip_module.

    A connection from a trusted address takes the header's address. For X-Forwarded-For
    that is the last address, or with real_ip_recursive on the last untrusted one. Any
    other connection keeps its own address.
    """
    if not _trusted(address, networks) or not header.strip():
        return address
    if header_name != "x-forwarded-for":
        candidates = [header.strip()]
    else:
        candidates = [part.strip() for part in header.split(",") if part.strip()]
    if not candidates:
        return address
    chosen = candidates[-1]
    if recursive:
        for candidate in reversed(candidates):
            chosen = candidate
            if not _trusted(candidate, networks):
                break
    try:
        return str(ipaddress.ip_address(chosen))
    except ValueError:
        # An invalid address leaves the connection address in place (ngx_inet_addr fails).
        return address


def _realip_settings(pool: Pool) -> tuple[list[IpNetwork], str, bool]:
    networks: list[IpNetwork] = []
    header_name = "x-real-ip"
    recursive = False
    for option in pool.options:
        name, _, value = option.partition(" ")
        value = value.strip()
        if name == "set_real_ip_from":
            try:
                networks.append(ipaddress.ip_network(value, strict=False))
            except ValueError:
                continue
        elif name == "real_ip_header":
            header_name = value.lower()
        elif name == "real_ip_recursive":
            recursive = value == "on"
    return networks, header_name, recursive


def with_real_ip(pool: Pool, profile: TrafficProfile) -> TrafficProfile:
    """Return ``profile`` with each row's client address after the realip directives of
    the pool's http block.

    Returns ``profile`` itself when no directive applies or the profile lacks the header
    the directives read.
    """
    networks, header_name, recursive = _realip_settings(pool)
    if not networks or "client_ip" not in profile.known:
        return profile
    if header_key(header_name) not in profile.known:
        return profile
    header = profile.headers[header_name]
    pairs = list(zip(profile.client_ip.tolist(), header.tolist(), strict=True))
    results = {
        pair: _real_address(str(pair[0]), str(pair[1]), networks, header_name, recursive)
        for pair in dict.fromkeys(pairs)
    }
    addresses = np.fromiter(map(results.__getitem__, pairs), dtype=object, count=len(pairs))
    return replace(profile, client_ip=addresses)
