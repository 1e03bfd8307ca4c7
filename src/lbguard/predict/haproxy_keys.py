"""Hash keys of HAProxy's hash-based ``balance`` algorithms, computed over profile rows.

Each function returns a `HashedKeys`: one uint32 hash per row (before avalanche and
placement) and a mask of rows whose key is missing, which HAProxy sends by round robin
instead. Semantics follow HAProxy v2.6.0 ``src/backend.c`` (read, not copied):
``get_server_sh`` (source), ``get_server_uh`` (uri), ``get_server_ph`` (url_param),
``get_server_hh`` (hdr), ``get_server_rch`` (rdp-cookie), ``get_server_expr`` (hash).
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from lbguard.hashing.haproxy import (
    PackedKeys,
    hash_packed,
    pack_bytes,
    pack_keys,
)
from lbguard.model import Balance, HashFunction
from lbguard.predict.samples import cookie_values, query_parameters, request_uri
from lbguard.traffic import StrColumn, TrafficProfile, header_key

Mask = npt.NDArray[np.bool_]
Extractor = Callable[[str], str | None]
"""Gets the key from one column value; None when the request has no key."""


@dataclass(frozen=True)
class HashedKeys:
    """Per-row hashes of one pool's key."""

    hashes: npt.NDArray[np.uint32]
    missing: Mask
    """Rows without a key; HAProxy balances them by round robin."""


class KeyUnavailableError(Exception):
    """The key cannot be computed from this profile; ``reason`` gives the cause."""

    def __init__(self, reason: str, needs: str = "") -> None:
        super().__init__(reason)
        self.reason = reason
        self.needs = needs


def _require(profile: TrafficProfile, column: str, what: str) -> None:
    if column not in profile.known:
        raise KeyUnavailableError(f"the traffic profile has no {column} column for {what}", column)


def _hash_strings(keys: StrColumn, function: HashFunction) -> npt.NDArray[np.uint32]:
    return hash_packed(pack_keys(keys), function)


def _distinct(column: StrColumn) -> tuple[npt.NDArray[np.object_], npt.NDArray[np.intp]]:
    values, inverse = np.unique(column.astype(str), return_inverse=True)
    return values.astype(object), inverse.reshape(-1)


# --------------------------------------------------------------------------------------
# source


def _address_key(text: str) -> int | None:
    """IPv4 as a 32-bit integer; IPv6 as the XOR of its four 32-bit words."""
    try:
        address = ipaddress.ip_address(text)
    except ValueError:
        return None
    value = int(address)
    if address.version == 4:
        return value
    key = 0
    for _ in range(4):
        key ^= value & 0xFFFFFFFF
        value >>= 32
    return key


def source_keys(profile: TrafficProfile) -> HashedKeys:
    """Key of ``balance source``: the client address itself, no hash function applied."""
    _require(profile, "client_ip", "balance source")
    values, inverse = _distinct(profile.client_ip)
    keys = [_address_key(str(v)) for v in values]
    distinct_missing = np.array([k is None for k in keys], dtype=bool)
    distinct_hashes = np.array([k or 0 for k in keys], dtype=np.uint32)
    return HashedKeys(distinct_hashes[inverse], distinct_missing[inverse])


# --------------------------------------------------------------------------------------
# uri


def _cut_uri(packed: PackedKeys, balance: Balance) -> PackedKeys:
    """Shorten each key as ``get_server_uh`` scans it: at most ``len`` bytes, stop before
    ``?`` unless ``whole``, stop before the slash number ``depth + 1``."""
    lengths = packed.lengths.copy()
    if balance.uri_len:
        lengths = np.minimum(lengths, balance.uri_len)
    buffer = packed.buffer

    def inside(
        positions: npt.NDArray[np.intp],
    ) -> tuple[npt.NDArray[np.intp], npt.NDArray[np.intp]]:
        """Keep the positions within their key's scanned length; return them and their rows.
        Only marked bytes are located, so the cost follows the number of marks."""
        rows = np.searchsorted(packed.starts, positions, side="right") - 1
        keep = positions - packed.starts[rows] < lengths[rows]
        return positions[keep], rows[keep]

    if not balance.uri_whole:
        marks, rows = inside(np.flatnonzero(buffer == ord("?")))
        _stop_at_first(marks, rows, packed.starts, lengths)

    if balance.uri_depth is not None:
        slashes, rows = inside(np.flatnonzero(buffer == ord("/")))
        # Rank of each slash inside its key, from 1.
        first_in_row = np.searchsorted(rows, rows, side="left")
        rank = np.arange(rows.shape[0]) - first_in_row + 1
        stops = rank == balance.uri_depth + 1
        _stop_at_first(slashes[stops], rows[stops], packed.starts, lengths)

    return PackedKeys(buffer, packed.starts, lengths)


def _stop_at_first(
    positions: npt.NDArray[np.intp],
    rows: npt.NDArray[np.intp],
    starts: npt.NDArray[np.int64],
    lengths: npt.NDArray[np.int64],
) -> None:
    """Cut each key before the first of *positions* inside it (in place); *rows* gives the
    key of each position, both in ascending order."""
    if positions.shape[0] == 0:
        return
    first = np.unique(rows, return_index=True)[1]
    hit_rows = rows[first]
    offsets = positions[first] - starts[hit_rows]
    lengths[hit_rows] = np.minimum(lengths[hit_rows], offsets)


def uri_keys(profile: TrafficProfile, balance: Balance) -> HashedKeys:
    """Key of ``balance uri [whole] [len N] [depth N] [path-only]``."""
    _require(profile, "path", "balance uri")
    packed = _cut_uri(pack_keys(request_uri(profile)), balance)
    hashes = hash_packed(packed, balance.hash_function)
    return HashedKeys(hashes, np.zeros(len(profile), dtype=bool))


# --------------------------------------------------------------------------------------
# url_param, hdr, rdp-cookie


def _hash_distinct(column: StrColumn, extract: Extractor, function: HashFunction) -> HashedKeys:
    """Extract a key from each distinct column value, hash the keys, broadcast to rows."""
    values, inverse = _distinct(column)
    keys = [extract(str(value)) for value in values]
    missing = np.array([key is None for key in keys], dtype=bool)
    hashes = _hash_strings(np.array([key or "" for key in keys], dtype=object), function)
    return HashedKeys(hashes[inverse], missing[inverse])


class _FirstParameter:
    """First value of a query parameter; an empty value is still a key."""

    def __init__(self, name: str) -> None:
        self.name = name

    def __call__(self, value: str) -> str | None:
        values = query_parameters(value, self.name)
        return values[0] if values else None


class _HeaderValue:
    """First comma-separated value of a header (``http_find_header`` with full=0); missing
    or empty means round robin. With use_domain_only, the label before the last dot."""

    def __init__(self, domain_only: bool) -> None:
        self.domain_only = domain_only

    def __call__(self, value: str) -> str | None:
        first = value.split(",", 1)[0].strip(" \t")
        if not first:
            return None
        return main_domain(first) if self.domain_only else first


class _Cookie:
    def __init__(self, name: str) -> None:
        self.name = name

    def __call__(self, value: str) -> str | None:
        values = cookie_values(value, self.name)
        return values[0] if values and values[0] else None


def main_domain(host: str) -> str:
    """Return the part of a host name that ``hdr(...) use_domain_only`` hashes: the label
    before the last dot (``haproxy.1wt.eu`` gives ``1wt``); a name without a dot is kept
    whole. The backward scan mirrors ``get_server_hh`` so that odd names such as ``a..b``
    give the same part as HAProxy."""
    size = len(host)
    position = end = size
    remaining = size
    in_domain = False
    while remaining:
        if in_domain:
            if host[position - 1] == ".":
                break
        elif position < size and host[position] == ".":
            end = position
            in_domain = True
        position -= 1
        remaining -= 1
    return host[position:end]


def url_param_keys(profile: TrafficProfile, balance: Balance) -> HashedKeys:
    """Key of ``balance url_param <name>``: the parameter's first value in the query."""
    _require(profile, "query", "balance url_param")
    return _hash_distinct(profile.query, _FirstParameter(balance.key or ""), balance.hash_function)


def hdr_keys(profile: TrafficProfile, balance: Balance) -> HashedKeys:
    """Key of ``balance hdr(<name>) [use_domain_only]``."""
    name = (balance.key or "").lower()
    if name == "host":
        _require(profile, "host", "balance hdr(host)")
        column = profile.host
    else:
        _require(profile, header_key(name), f"balance hdr({name})")
        column = profile.headers.get(name, np.full(len(profile), "", dtype=object))
    return _hash_distinct(column, _HeaderValue(balance.use_domain_only), balance.hash_function)


def rdp_cookie_keys(profile: TrafficProfile, balance: Balance) -> HashedKeys:
    """Key of ``balance rdp-cookie[(name)]``, read from the profile's Cookie column."""
    _require(profile, header_key("cookie"), "balance rdp-cookie")
    name = balance.key or "mstshash"
    column = profile.headers.get("cookie", np.full(len(profile), "", dtype=object))
    return _hash_distinct(column, _Cookie(name), balance.hash_function)


# --------------------------------------------------------------------------------------
# hash <expr>

_EXPRESSION = re.compile(r"^\s*([a-z_.]+)(?:\(\s*([^(),\s]*)\s*\))?\s*$")


def expression_keys(profile: TrafficProfile, balance: Balance) -> HashedKeys:
    """Key of ``balance hash <expr>`` for a single sample fetch without converters.

    Supported: path, url, query, method, src, base, req.hdr(x)/hdr(x) (last
    comma-separated value, as the fetch returns), url_param(x)/urlp(x), req.cook(x)/cook(x).
    """
    text = balance.key or ""
    match = _EXPRESSION.match(text)
    if match is None:
        raise KeyUnavailableError(
            f"hash expression {text!r} is not modelled (converters and "
            "compound expressions are not evaluated)"
        )
    fetch, arg = match.group(1), match.group(2) or ""
    function = balance.hash_function

    if fetch in ("path", "url", "query", "method"):
        needs = {"path": "path", "url": "path", "query": "query", "method": "method"}[fetch]
        _require(profile, needs, f"hash {text}")
        column = request_uri(profile) if fetch == "url" else getattr(profile, fetch)
        return _hash_distinct(column, _NonEmpty(), function)
    if fetch == "base":
        _require(profile, "host", f"hash {text}")
        _require(profile, "path", f"hash {text}")
        return _hash_distinct(profile.host + profile.path, _NonEmpty(), function)
    if fetch == "src":
        return _source_binary_keys(profile, function)
    if fetch in ("req.hdr", "hdr") and arg:
        name = arg.lower()
        if name == "host":
            _require(profile, "host", f"hash {text}")
            column = profile.host
        else:
            _require(profile, header_key(name), f"hash {text}")
            column = profile.headers.get(name, np.full(len(profile), "", dtype=object))
        return _hash_distinct(column, _LastHeaderValue(), function)
    if fetch in ("url_param", "urlp") and arg:
        _require(profile, "query", f"hash {text}")
        return _hash_distinct(profile.query, _FirstParameter(arg), function)
    if fetch in ("req.cook", "cook") and arg:
        _require(profile, header_key("cookie"), f"hash {text}")
        column = profile.headers.get("cookie", np.full(len(profile), "", dtype=object))
        return _hash_distinct(column, _Cookie(arg), function)
    raise KeyUnavailableError(f"hash expression {text!r} is not modelled")


class _NonEmpty:
    def __call__(self, value: str) -> str | None:
        return value or None


class _LastHeaderValue:
    def __call__(self, value: str) -> str | None:
        last = value.rsplit(",", 1)[-1].strip(" \t")
        return last or None


def _source_binary_keys(profile: TrafficProfile, function: HashFunction) -> HashedKeys:
    """``hash src``: the hash function over the address bytes in network order."""
    _require(profile, "client_ip", "hash src")
    values, inverse = _distinct(profile.client_ip)
    packed: list[bytes] = []
    missing = []
    for value in values:
        try:
            packed.append(ipaddress.ip_address(str(value)).packed)
            missing.append(False)
        except ValueError:
            packed.append(b"")
            missing.append(True)
    hashes = hash_packed(pack_bytes(packed), function)
    return HashedKeys(hashes[inverse], np.array(missing, dtype=bool)[inverse])
