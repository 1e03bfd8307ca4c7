"""How many distinct hash keys a pool's requests carry, and how heavy the heaviest is.

The hash rules need the key of every profile request that reaches a hashed pool. This
module calls the same key functions as the prediction and counts requests per key.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from lbguard.checks.interface import CheckContext
from lbguard.model import Algorithm, Balance, Pool, Product
from lbguard.predict import haproxy_keys
from lbguard.predict.haproxy_keys import HashedKeys, KeyUnavailableError
from lbguard.predict.nginx import UnknownKeyError, evaluate_key
from lbguard.traffic import TrafficProfile

CLIENT_KEYS = frozenset({"$remote_addr", "$binary_remote_addr"})
"""nginx hash keys that are the client address."""

HAPROXY_CLIENT_EXPRESSIONS = frozenset({"src"})
"""HAProxy ``balance hash`` expressions that are the client address."""

_HAPROXY_KEYS: dict[Algorithm, Callable[[TrafficProfile, Balance], HashedKeys]] = {
    Algorithm.SOURCE: lambda profile, _balance: haproxy_keys.source_keys(profile),
    Algorithm.URI: haproxy_keys.uri_keys,
    Algorithm.URL_PARAM: haproxy_keys.url_param_keys,
    Algorithm.HDR: haproxy_keys.hdr_keys,
    Algorithm.RDP_COOKIE: haproxy_keys.rdp_cookie_keys,
    Algorithm.HASH: haproxy_keys.expression_keys,
}


@dataclass(frozen=True)
class KeySpread:
    """Requests per distinct key among the requests that reach one hashed pool."""

    distinct: int
    """Distinct keys among the requests that carry one."""

    top_share: float
    """Fraction of the keyed requests that carry the most frequent key."""

    keyed_share: float
    """Fraction of the pool's requests that carry a key; the rest are balanced without
    one (round robin in both products)."""


def hashes_client_address(pool: Pool, product: Product) -> bool:
    """Tell whether the pool hashes the client address (or, for ip_hash, its /24)."""
    balance = pool.balance
    if balance.algorithm in (Algorithm.SOURCE, Algorithm.IP_HASH):
        return True
    if balance.algorithm is not Algorithm.HASH:
        return False
    key = (balance.key or "").strip()
    if product is Product.NGINX:
        return key in CLIENT_KEYS
    return key in HAPROXY_CLIENT_EXPRESSIONS


def key_spread(context: CheckContext, pool: Pool) -> KeySpread | None:
    """Return the key spread of a hashed pool's profile requests; None when no profile
    request reaches it or the profile lacks the key's column."""
    weights = context.pool_weights(pool.name)
    if weights is None or context.profile is None or weights.sum() <= 0:
        return None
    if context.lb.product is Product.NGINX:
        groups = _nginx_groups(pool, context.profile, weights)
    else:
        groups = _haproxy_groups(pool, context.profile, weights)
    if groups is None:
        return None

    inverse, keyed = groups
    rows = np.nonzero(keyed & (weights > 0))[0]
    keyed_total = float(weights[rows].sum())
    if keyed_total <= 0:
        return KeySpread(0, 0.0, 0.0)
    per_key = np.bincount(inverse[rows], weights=weights[rows])
    per_key = per_key[per_key > 0]
    return KeySpread(
        distinct=int(per_key.size),
        top_share=float(per_key.max()) / keyed_total,
        keyed_share=keyed_total / float(weights.sum()),
    )


Groups = tuple[npt.NDArray[np.int64], npt.NDArray[np.bool_]]
"""Key index per profile row, and whether the row carries a key."""


def _haproxy_groups(
    pool: Pool, profile: TrafficProfile, weights: npt.NDArray[np.float64]
) -> Groups | None:
    function = _HAPROXY_KEYS.get(pool.balance.algorithm)
    if function is None:
        return None
    try:
        keys = function(profile, pool.balance)
    except KeyUnavailableError:
        return None
    # Distinct 32-bit hashes stand for distinct keys; a collision only merges two keys.
    _, inverse = np.unique(keys.hashes, return_inverse=True)
    return inverse.reshape(-1).astype(np.int64), ~keys.missing


def _nginx_groups(
    pool: Pool, profile: TrafficProfile, weights: npt.NDArray[np.float64]
) -> Groups | None:
    rows = np.nonzero(weights > 0)[0]
    inverse = np.zeros(len(profile), dtype=np.int64)
    keyed = np.zeros(len(profile), dtype=bool)
    balance = pool.balance
    if balance.algorithm is Algorithm.IP_HASH:
        if "client_ip" not in profile.known:
            return None
        subnets = [ip_hash_unit(str(address)) for address in profile.client_ip[rows]]
        index: dict[str, int] = {}
        inverse[rows] = [index.setdefault(subnet, len(index)) for subnet in subnets]
        keyed[rows] = True
        return inverse, keyed
    if balance.algorithm is not Algorithm.HASH or not balance.key:
        return None
    try:
        keys, row_keys = evaluate_key(balance.key, profile, rows)
    except UnknownKeyError:
        return None
    inverse[rows] = row_keys
    # nginx balances a request with an empty key by round robin.
    keyed[rows] = [keys[key] != b"" for key in row_keys.tolist()]
    return inverse, keyed


def ip_hash_unit(address: str) -> str:
    """Return what nginx ``ip_hash`` hashes, as text: the /24 of an IPv4 address, or the
    whole IPv6 address (nginx 1.22 ngx_http_upstream_ip_hash_module)."""
    try:
        parsed = ipaddress.ip_address(address)
    except ValueError:
        return address
    if parsed.version == 4:
        return str(ipaddress.ip_network(f"{address}/24", strict=False))
    return str(parsed)
