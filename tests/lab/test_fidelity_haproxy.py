"""Every HAProxy row of the fidelity matrix against a real HAProxy on 127.0.0.1."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import replace

import pytest

from lbguard.lab.fidelity_lab import FidelityLab
from lbguard.lab.fidelity_matrix import Check, Row, rows_for
from lbguard.model import HashFunction, Product

pytestmark = pytest.mark.lab

ROWS = rows_for(Product.HAPROXY)


@pytest.fixture(scope="module")
def lab(haproxy_bin: str) -> Iterator[FidelityLab]:
    with FidelityLab(Product.HAPROXY, ROWS, binary=haproxy_bin) as running:
        yield running


@pytest.mark.parametrize("row", ROWS, ids=[row.id for row in ROWS])
def test_haproxy_row_matches_prediction(lab: FidelityLab, row: Row) -> None:
    result = lab.run(row)

    assert result.sent == row.requests
    for server in result.servers:
        assert server.within, (
            f"{server.pool}/{server.server}: observed {server.observed:.2%}, "
            f"predicted {server.predicted:.2%}"
        )
    if row.check is Check.PER_KEY:
        assert result.keys == len(row.traffic)
    assert result.problems == ()


def test_wrong_weights_fail_the_row(lab: FidelityLab) -> None:
    # lbguard gets a model whose weights differ from the running config.
    row = next(r for r in ROWS if r.id == "haproxy-roundrobin-weights")
    assert lab.lb is not None
    pools = tuple(
        replace(pool, servers=tuple(replace(s, weight=1) for s in pool.servers))
        if pool.name == row.pool_name("be") else pool
        for pool in lab.lb.pools
    )
    original = lab.lb
    lab.lb = replace(original, pools=pools)
    try:
        result = lab.run(row)
    finally:
        lab.lb = original

    assert not result.passed
    assert any(p.startswith("be/s4: observed 40.00%, predicted 25.00%") for p in result.problems)


def test_wrong_hash_function_fails_per_key(lab: FidelityLab) -> None:
    row = next(r for r in ROWS if r.id == "haproxy-uri-map-based-djb2")
    assert lab.lb is not None
    pools = tuple(
        replace(pool, balance=replace(pool.balance, hash_function=HashFunction.SDBM))
        if pool.name == row.pool_name("be") else pool
        for pool in lab.lb.pools
    )
    original = lab.lb
    lab.lb = replace(original, pools=pools)
    try:
        result = lab.run(row)
    finally:
        lab.lb = original

    assert not result.passed
    assert any(problem.startswith("key /") for problem in result.problems)
