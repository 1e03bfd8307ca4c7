"""Vectorised nginx hashing against the plain per-key references, with hypothesis."""

from __future__ import annotations

import ipaddress
import tempfile
import zlib
from pathlib import Path

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from lbguard.hashing import haproxy
from lbguard.hashing.nginx import (
    FALLBACK,
    crc32_keys,
    ip_hash_address_peers,
    ip_hash_key,
    ip_hash_peer,
    ip_hash_peers,
    ketama_name,
    ketama_names,
    ketama_ring,
    memcached_hash_peer,
    memcached_hash_peers,
    parse_addresses,
)
from lbguard.model import Pool
from lbguard.parsers.nginx import parse_nginx
from lbguard.predict.nginx import (
    choose,
    cookie_value,
    evaluate_key,
    host_variable,
    key_rows,
    normalize_uri,
    query_argument,
)
from lbguard.traffic import TrafficProfile, from_columns

EXAMPLES = settings(max_examples=200, deadline=None)


def _address_texts() -> st.SearchStrategy[str]:
    """Client address texts: valid addresses in several spellings, near misses, noise."""
    valid = st.ip_addresses()
    spelled = valid.flatmap(
        lambda address: st.sampled_from(
            [str(address), address.exploded, str(address).upper()]
            + (
                [f"::ffff:{address}", f"0{address}", f"{address}.1"]
                if address.version == 4
                else []
            )
            + ([f"{address}%eth0", f"{address}::"] if address.version == 6 else [])
        )
    )
    padded = spelled.flatmap(
        lambda text: st.sampled_from([text, f" {text}", f"{text}\0", text.replace("1", "١")])
    )
    noise = st.text(alphabet="0123456789abcdefABCDEF.:%/ ", max_size=45)
    return st.one_of(padded, noise, st.sampled_from(["", "-", "unix:", "1.2.3.04", "::1.2.3"]))


def _packed_or_none(text: str) -> bytes | None:
    try:
        return ipaddress.ip_address(text).packed
    except ValueError:
        return None


@EXAMPLES
@given(st.lists(_address_texts(), max_size=30))
def test_parse_addresses_matches_ipaddress(texts: list[str]) -> None:
    parsed = parse_addresses(texts)
    got: list[bytes | None] = [None] * len(texts)
    for rows, octets in ((parsed.ipv4_rows, parsed.ipv4), (parsed.ipv6_rows, parsed.ipv6)):
        for row, value in zip(rows.tolist(), octets, strict=True):
            assert got[row] is None
            got[row] = value.tobytes()
    assert got == [_packed_or_none(text) for text in texts]


weights_and_usable = st.integers(1, 6).flatmap(
    lambda size: st.tuples(
        st.lists(st.integers(1, 5), min_size=size, max_size=size),
        st.lists(st.booleans(), min_size=size, max_size=size),
    )
)


@EXAMPLES
@given(st.lists(_address_texts(), max_size=30), weights_and_usable)
def test_ip_hash_address_peers_match_reference(
    texts: list[str], peers: tuple[list[int], list[bool]]
) -> None:
    weights, usable = peers
    got = ip_hash_address_peers(texts, weights, usable).tolist()
    assert got == [ip_hash_peer(ip_hash_key(text), weights, usable) for text in texts]


@EXAMPLES
@given(st.lists(st.binary(max_size=17), max_size=30), weights_and_usable)
def test_ip_hash_peers_match_reference(
    keys: list[bytes], peers: tuple[list[int], list[bool]]
) -> None:
    weights, usable = peers
    got = ip_hash_peers(keys, weights, usable).tolist()
    assert got == [ip_hash_peer(key, weights, usable) for key in keys]


@EXAMPLES
@given(st.lists(st.binary(max_size=40), max_size=30), weights_and_usable)
def test_memcached_peers_match_reference(
    keys: list[bytes], peers: tuple[list[int], list[bool]]
) -> None:
    weights, usable = peers
    got = memcached_hash_peers(keys, weights, usable).tolist()
    assert got == [memcached_hash_peer(key, weights, usable) for key in keys]


@EXAMPLES
@given(st.lists(st.binary(max_size=60), max_size=30))
def test_crc32_keys_match_bitwise_crc32(keys: list[bytes]) -> None:
    assert crc32_keys(keys).tolist() == [haproxy.crc32(key) for key in keys]


SERVER_NAMES = ["10.0.0.1:80", "10.0.0.2:80", "backend:8080", "unix:/run/app.sock", "10.0.0.1"]


@EXAMPLES
@given(
    st.lists(st.sampled_from(SERVER_NAMES), min_size=1, max_size=4),
    st.lists(st.integers(0, 2**32 - 1), max_size=30),
    st.data(),
)
def test_ketama_names_match_reference(
    names: list[str], hashes: list[int], data: st.DataObject
) -> None:
    ring = ketama_ring(names, [1 + i % 3 for i in range(len(names))])
    usable = data.draw(st.lists(st.booleans(), min_size=len(ring.names), max_size=len(ring.names)))
    got = ketama_names(ring, np.array(hashes, dtype=np.uint32), usable).tolist()
    assert got == [ketama_name(ring, value, usable) for value in hashes]


# --------------------------------------------------------------------------------------
# Keys


def _reference_variable(name: str, profile: TrafficProfile, row: int) -> bytes:
    """Compute one variable for one row, the way the row-by-row evaluator did."""
    path, query = str(profile.path[row]), str(profile.query[row])
    values = {
        "remote_addr": str(profile.client_ip[row]),
        "request_uri": path + ("?" + query if query else ""),
        "uri": normalize_uri(path),
        "args": query,
        "arg_id": query_argument(query, "id"),
        "host": host_variable(str(profile.host[row])),
        "http_host": str(profile.host[row]),
        "request_method": str(profile.method[row]),
        "cookie_sid": cookie_value(str(profile.headers["cookie"][row]), "sid"),
        "http_x_user": str(profile.headers["x-user"][row]),
    }
    if name == "binary_remote_addr":
        return _packed_or_none(str(profile.client_ip[row])) or b""
    return values[name].encode()


TEMPLATES = [
    ("$request_uri", ["request_uri"]),
    ("$host$uri", ["host", "uri"]),
    ("u=$arg_id|$cookie_sid;", ["arg_id", "cookie_sid"]),
    ("$request_method $http_host$args", ["request_method", "http_host", "args"]),
    ("$remote_addr-$http_x_user", ["remote_addr", "http_x_user"]),
    ("$binary_remote_addr:$request_uri", ["binary_remote_addr", "request_uri"]),
    ("fixed", []),
]


def _reference_key(template: str, names: list[str], profile: TrafficProfile, row: int) -> bytes:
    parts = template
    for name in names:
        parts = parts.replace(f"${name}", "\x00", 1)
    pieces = parts.split("\x00")
    key = pieces[0].encode()
    for name, piece in zip(names, pieces[1:], strict=True):
        key += _reference_variable(name, profile, row) + piece.encode()
    return key


request_text = st.text(alphabet="aZ/.%2F?=&;é ", max_size=12)


@st.composite
def _profiles(draw: st.DrawFn) -> TrafficProfile:
    size = draw(st.integers(0, 12))

    def column(values: st.SearchStrategy[str]) -> list[str]:
        return draw(st.lists(values, min_size=size, max_size=size))

    return from_columns(
        method=column(st.sampled_from(["GET", "POST", ""])),
        host=column(st.sampled_from(["Example.COM:8080", "a.example.", "[::1]:80", ""])),
        path=column(request_text.map(lambda text: "/" + text)),
        query=column(st.sampled_from(["", "id=7", "ID=8&x=1", "x=1&id="])),
        client_ip=column(_address_texts()),
        headers={
            "cookie": column(st.sampled_from(["", "sid=42; a=b", "a=1;SID=x", "sid"])),
            "x-user": column(request_text),
        },
    )


@EXAMPLES
@given(_profiles(), st.sampled_from(TEMPLATES))
def test_key_rows_match_row_reference(
    profile: TrafficProfile, template: tuple[str, list[str]]
) -> None:
    text, names = template
    rows = np.arange(len(profile))
    expected = [_reference_key(text, names, profile, row) for row in range(len(profile))]
    assert key_rows(text, profile, rows) == expected
    distinct, inverse = evaluate_key(text, profile, rows)
    assert [distinct[index] for index in inverse.tolist()] == expected
    assert len(distinct) == len(set(expected))


def _hash_pool(method: str) -> Pool:
    """Parse an upstream with three weighted servers and a down one between them."""
    servers = [
        "server 10.0.0.1:80;",
        "server 10.0.0.2:80 weight=2;",
        "server 10.0.0.9:80 down;",
        "server 10.0.0.3:80 weight=3;",
    ]
    upstream = "\n".join([f"{method};", *servers])
    text = "events {}\nhttp {\nupstream app {\n" + upstream + "\n}\n}\n"
    with tempfile.TemporaryDirectory() as directory:
        config = Path(directory) / "nginx.conf"
        config.write_text(text)
        pool = parse_nginx(config).pool("app")
    assert pool is not None
    return pool


HASH_POOLS = {
    method: _hash_pool(method)
    for method in ("ip_hash", "hash $request_uri", "hash $request_uri consistent")
}


@EXAMPLES
@given(_profiles(), st.sampled_from(sorted(HASH_POOLS)))
def test_choose_matches_per_key_reference(profile: TrafficProfile, method: str) -> None:
    pool = HASH_POOLS[method]
    names = [server.name for server in pool.servers]
    weights = [server.weight for server in pool.servers]
    usable = [server.name != "10.0.0.9:80" for server in pool.servers]
    expected: list[str | None] = []
    for row in range(len(profile)):
        if method == "ip_hash":
            peer = ip_hash_peer(ip_hash_key(str(profile.client_ip[row])), weights, usable)
        else:
            key = _reference_key("$request_uri", ["request_uri"], profile, row)
            if method.endswith("consistent"):
                ring = ketama_ring(names, weights)
                peer = ketama_name(ring, zlib.crc32(key), usable) if key else FALLBACK
            else:
                peer = memcached_hash_peer(key, weights, usable)
        expected.append(None if peer == FALLBACK else names[peer])
    assert choose(pool, profile) == expected
