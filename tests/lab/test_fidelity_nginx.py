"""Every NGINX row of the fidelity matrix against a real nginx on 127.0.0.1."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from lbguard.lab.fidelity_lab import FidelityLab
from lbguard.lab.fidelity_matrix import Check, Row, rows_for
from lbguard.model import Product

pytestmark = pytest.mark.lab

ROWS = rows_for(Product.NGINX)


@pytest.fixture(scope="module")
def lab(nginx_bin: str) -> Iterator[FidelityLab]:
    with FidelityLab(Product.NGINX, ROWS, binary=nginx_bin) as running:
        yield running


@pytest.mark.parametrize("row", ROWS, ids=[row.id for row in ROWS])
def test_nginx_row_matches_prediction(lab: FidelityLab, row: Row) -> None:
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
