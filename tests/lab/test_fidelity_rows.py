"""Every row of the fidelity matrix against a real HAProxy or nginx on 127.0.0.1.

One process per product runs all of that product's rows. It starts when the first of
those rows is tested and stops at the end of the module.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import replace

import pytest

from lbguard.lab.fidelity_lab import FidelityLab, RowResult
from lbguard.lab.fidelity_matrix import MATRIX, Check, Row, rows_for
from lbguard.lab.testing import require_binary
from lbguard.model import HashFunction, Pool, Product

pytestmark = pytest.mark.lab


class Labs:
    """Product labs started on first use, one per product."""

    def __init__(self) -> None:
        self.running: dict[Product, FidelityLab] = {}

    def get(self, product: Product) -> FidelityLab:
        if product not in self.running:
            binary = require_binary(str(product))
            lab = FidelityLab(product, rows_for(product), binary=binary)
            self.running[product] = lab.start()
        return self.running[product]

    def stop(self) -> None:
        for lab in self.running.values():
            lab.stop()


@pytest.fixture(scope="module")
def labs() -> Iterator[Labs]:
    started = Labs()
    yield started
    started.stop()


@pytest.mark.parametrize("row", MATRIX, ids=[row.id for row in MATRIX])
def test_row_matches_prediction(labs: Labs, row: Row) -> None:
    result = labs.get(row.product).run(row)

    assert result.sent == row.requests
    for server in result.servers:
        assert server.within, (
            f"{server.pool}/{server.server}: observed {server.observed:.2%}, "
            f"predicted {server.predicted:.2%}"
        )
    if row.check is Check.PER_KEY:
        assert result.keys == len(row.traffic)
    assert result.problems == ()


def run_with_pool(lab: FidelityLab, row: Row, pool: Pool) -> RowResult:
    """Run `row` while lbguard reads `pool` in place of the row's first pool."""
    assert lab.lb is not None
    original = lab.lb
    pools = tuple(pool if p.name == pool.name else p for p in original.pools)
    lab.lb = replace(original, pools=pools)
    try:
        return lab.run(row)
    finally:
        lab.lb = original


def first_pool(lab: FidelityLab, row: Row) -> Pool:
    assert lab.lb is not None
    pool = lab.lb.pool(row.pool_name(row.pools[0].name))
    assert pool is not None
    return pool


def test_wrong_weights_fail_the_row(labs: Labs) -> None:
    lab = labs.get(Product.HAPROXY)
    row = next(r for r in MATRIX if r.id == "haproxy-roundrobin-weights")
    pool = first_pool(lab, row)
    equal = replace(pool, servers=tuple(replace(s, weight=1) for s in pool.servers))

    result = run_with_pool(lab, row, equal)

    assert not result.passed
    assert any(p.startswith("be/s4: observed 40.00%, predicted 25.00%") for p in result.problems)


def test_wrong_hash_function_fails_per_key(labs: Labs) -> None:
    lab = labs.get(Product.HAPROXY)
    row = next(r for r in MATRIX if r.id == "haproxy-uri-map-based-djb2")
    pool = first_pool(lab, row)
    sdbm = replace(pool, balance=replace(pool.balance, hash_function=HashFunction.SDBM))

    result = run_with_pool(lab, row, sdbm)

    assert not result.passed
    assert any(problem.startswith("key /") for problem in result.problems)
