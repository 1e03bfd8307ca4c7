"""nginx balancing methods against nginx's arithmetic and logged choices."""

from __future__ import annotations

import csv
from dataclasses import replace

import numpy as np
import pytest

from lbguard.hashing.nginx import (
    crc32_keys,
    ip_hash_key,
    ip_hash_peers,
    ketama_names,
    ketama_ring,
    ketama_uniform_shares,
    memcached_hash_peers,
)
from lbguard.model import AdminState, Algorithm, HashMethod, Pool
from lbguard.parsers.nginx import parse_nginx
from lbguard.predict.balancer import PoolRequests
from lbguard.predict.nginx import balance, evaluate_key, normalize_uri, sequence
from lbguard.predict.result import ShareMethod
from lbguard.traffic import from_columns

from .conftest import CORPUS

KETAMA = CORPUS / "pingora-ketama-hash-consistent"


def _pool(tmp_path, upstream: str, name: str = "app", resolve=None) -> Pool:  # type: ignore[no-untyped-def]
    path = tmp_path / "nginx.conf"
    path.write_text(f"events {{}}\nhttp {{\n upstream {name} {{\n{upstream}\n }}\n}}\n")
    pool = parse_nginx(path, resolve=resolve).pool(name)
    assert pool is not None
    return pool


def test_ketama_reproduces_logged_choices() -> None:
    rows = list(csv.reader((KETAMA / "sample-nginx-upstream.csv").open()))
    pool = parse_nginx(KETAMA / "nginx.conf").pool("uppers")
    assert pool is not None
    assert pool.balance.hash_method is HashMethod.CONSISTENT
    ring = ketama_ring([s.name for s in pool.servers], [s.weight for s in pool.servers])
    chosen = ketama_names(
        ring, crc32_keys([uri.encode() for uri, _ in rows]), [True] * len(ring.names)
    )
    predicted = [ring.names[index] for index in chosen.tolist()]
    mismatches = [
        (uri, want, got) for (uri, want), got in zip(rows, predicted, strict=True) if want != got
    ]
    assert len(rows) >= 1000
    assert mismatches == []


def test_ketama_pool_shares_equal_logged_counts() -> None:
    rows = list(csv.reader((KETAMA / "sample-nginx-upstream.csv").open()))
    pool = parse_nginx(KETAMA / "nginx.conf").pool("uppers")
    assert pool is not None
    paths = [uri for uri, _ in rows]
    profile = from_columns(path=paths, query=[""] * len(paths))
    outcome = balance(pool, PoolRequests(profile, profile.weight), {})
    assert outcome.method is ShareMethod.EXACT
    for server in pool.servers:
        logged = sum(1 for _, addr in rows if addr == server.name) / len(rows)
        assert outcome.shares[server.name] == pytest.approx(logged)


@pytest.mark.parametrize(
    ("names", "weight", "expected"),
    [
        (["10.0.0.1:80", "10.0.0.2:80", "10.0.0.3:80"], 1, [0.348, 0.300, 0.352]),
        (["backend1:8080", "backend2:8080"], 1, [0.531, 0.469]),
    ],
)
def test_ketama_uniform_key_shares(names: list[str], weight: int, expected: list[float]) -> None:
    shares = ketama_uniform_shares(ketama_ring(names, [weight] * len(names)), [True] * len(names))
    assert shares[:-1] == pytest.approx(expected, abs=0.001)
    assert shares[-1] == 0.0


def test_ip_hash_uses_first_three_octets() -> None:
    keys = [ip_hash_key("192.0.2.1"), ip_hash_key("192.0.2.254")]
    assert keys[0] == keys[1] == bytes([192, 0, 2])
    assert len(ip_hash_key("2001:db8::1")) == 16
    assert ip_hash_key("not-an-address") == b"\0\0\0"


def _ip_hash_reference(address: bytes, weights: list[int]) -> int:
    h = 89
    for byte in address:
        h = (h * 113 + byte) % 6271
    w = h % sum(weights)
    index = 0
    while w >= weights[index]:
        w -= weights[index]
        index += 1
    return index


def test_ip_hash_matches_scalar_reference() -> None:
    rng = np.random.default_rng(7)
    addresses = [bytes(rng.integers(0, 256, 3).tolist()) for _ in range(500)]
    weights = [3, 1, 2, 5]
    got = ip_hash_peers(addresses, weights, [True] * 4).tolist()
    assert got == [_ip_hash_reference(a, weights) for a in addresses]


def test_ip_hash_rehashes_from_down_peer() -> None:
    keys = [ip_hash_key(f"10.{i}.{j}.1") for i in range(4) for j in range(50)]
    all_up = ip_hash_peers(keys, [1, 1, 1], [True] * 3)
    one_down = ip_hash_peers(keys, [1, 1, 1], [True, False, True])
    assert (one_down != 1).all()
    unchanged = all_up != 1
    assert (one_down[unchanged] == all_up[unchanged]).all()


def _memcached_reference(key: bytes, weights: list[int], usable: list[bool]) -> int:
    import zlib

    total = 0
    for attempt in range(21):
        prefix = str(attempt).encode() if attempt else b""
        total += (zlib.crc32(prefix + key) >> 16) & 0x7FFF
        w = total % sum(weights)
        index = 0
        while w >= weights[index]:
            w -= weights[index]
            index += 1
        if usable[index]:
            return index
    return -1


def test_hash_matches_scalar_reference_with_down_peer() -> None:
    keys = [f"/item/{i}".encode() for i in range(400)]
    weights, usable = [2, 1, 1], [True, False, True]
    got = memcached_hash_peers(keys, weights, usable).tolist()
    assert got == [_memcached_reference(k, weights, usable) for k in keys]
    assert 1 not in got


def test_round_robin_backup_only_when_primaries_down(tmp_path) -> None:  # type: ignore[no-untyped-def]
    pool = _pool(
        tmp_path, "server 10.0.0.1:80 weight=3;\nserver 10.0.0.2:80;\nserver 10.0.0.9:80 backup;"
    )
    healthy = balance(pool, None, {})
    assert healthy.shares == {"10.0.0.1:80": 0.75, "10.0.0.2:80": 0.25, "10.0.0.9:80": 0.0}
    failed = balance(pool, None, {"10.0.0.1:80": False, "10.0.0.2:80": False})
    assert failed.shares["10.0.0.9:80"] == 1.0
    assert failed.eligible == frozenset({"10.0.0.9:80"})


def test_down_server_keeps_hash_weight(tmp_path) -> None:  # type: ignore[no-untyped-def]
    pool = _pool(
        tmp_path,
        "hash $request_uri;\nserver 10.0.0.1:80;\nserver 10.0.0.2:80 down;\nserver 10.0.0.3:80;",
    )
    assert pool.servers[1].state is AdminState.DISABLED
    paths = [f"/p/{i}" for i in range(300)]
    profile = from_columns(path=paths, query=[""] * 300)
    outcome = balance(pool, PoolRequests(profile, profile.weight), {})
    assert outcome.shares["10.0.0.2:80"] == 0.0
    keys = [p.encode() for p in paths]
    expected = memcached_hash_peers(keys, [1, 1, 1], [True, False, True])
    assert outcome.shares["10.0.0.1:80"] == pytest.approx(float((expected == 0).mean()))


def test_hostname_peers_count_per_address(tmp_path) -> None:  # type: ignore[no-untyped-def]
    pool = _pool(
        tmp_path,
        "server app.internal:8080;\nserver 10.0.0.5:8080;",
        resolve={"app.internal": ["10.0.0.1", "10.0.0.2", "10.0.0.3"]},
    )
    outcome = balance(pool, None, {})
    assert outcome.shares["app.internal:8080"] == pytest.approx(0.75)
    assert outcome.shares["10.0.0.5:8080"] == pytest.approx(0.25)
    assert any("3 addresses" in note for note in outcome.notes)


def test_least_conn_is_load_dependent(tmp_path) -> None:  # type: ignore[no-untyped-def]
    pool = _pool(tmp_path, "least_conn;\nserver 10.0.0.1:80 weight=2;\nserver 10.0.0.2:80;")
    outcome = balance(pool, None, {})
    assert outcome.method is ShareMethod.LOAD_DEPENDENT
    assert outcome.shares["10.0.0.1:80"] == pytest.approx(2 / 3)


def test_random_two_second_draw_wins_ties(tmp_path) -> None:  # type: ignore[no-untyped-def]
    pool = _pool(tmp_path, "random two;\nserver 10.0.0.1:80 weight=3;\nserver 10.0.0.2:80;")
    assert pool.balance.algorithm is Algorithm.RANDOM
    assert pool.balance.draws == 2
    outcome = balance(pool, None, {})
    assert outcome.method is ShareMethod.EXPECTED
    # The second draw differs from the first, so it is 10.0.0.2 whenever the first is
    # 10.0.0.1 (probability 3/4).
    assert outcome.shares["10.0.0.2:80"] == pytest.approx(0.75)


def test_hash_key_needs_profile_column(tmp_path) -> None:  # type: ignore[no-untyped-def]
    pool = _pool(
        tmp_path, "hash $http_x_user consistent;\nserver 10.0.0.1:80;\nserver 10.0.0.2:80;"
    )
    profile = from_columns(path=["/a", "/b"])
    outcome = balance(pool, PoolRequests(profile, profile.weight), {})
    assert outcome.method is ShareMethod.UNKNOWN
    assert any("x-user" in note for note in outcome.notes)


def test_hash_key_combines_variables() -> None:
    profile = from_columns(
        host=["Example.COM:8080", "example.com"],
        path=["/a/../b", "/b"],
        query=["x=1", ""],
        headers={"cookie": ["sid=42; a=b", ""]},
    )
    keys, inverse = evaluate_key(
        "$host$uri|$request_uri|$cookie_sid|$arg_x", profile, np.arange(2)
    )
    assert keys[inverse[0]] == b"example.com/b|/a/../b?x=1|42|1"
    assert keys[inverse[1]] == b"example.com/b|/b||"


def test_normalize_uri() -> None:
    assert normalize_uri("/a//b/./c/../d%20e") == "/a/b/d e"
    assert normalize_uri("/") == "/"


def test_sequence_skips_down_and_uses_backup(tmp_path) -> None:  # type: ignore[no-untyped-def]
    pool = _pool(
        tmp_path,
        "server 10.0.0.1:80 weight=2;\nserver 10.0.0.2:80 down;\n"
        "server 10.0.0.3:80;\nserver 10.0.0.4:80 backup;",
    )
    assert sequence(pool, 3) == ["10.0.0.1:80", "10.0.0.3:80", "10.0.0.1:80"]
    both_down = {"10.0.0.1:80": False, "10.0.0.3:80": False}
    assert sequence(pool, 2, both_down) == ["10.0.0.4:80", "10.0.0.4:80"]
    disabled = replace(
        pool, servers=tuple(replace(s, state=AdminState.DISABLED) for s in pool.servers)
    )
    assert sequence(disabled, 2) == []
