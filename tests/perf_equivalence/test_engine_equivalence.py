"""Batched pool statistics give the floats that numpy gives for each pool on its own."""

from __future__ import annotations

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from lbguard.predict.engine import imbalances

share = st.one_of(
    st.sampled_from([0.0, 1.0, 0.1, 1 / 3, 1e-300]),
    st.floats(min_value=0.0, max_value=1.0, allow_nan=False),
)


def plain(shares: list[float]) -> tuple[float | None, float | None]:
    """Compute one pool's statistics from its own array."""
    if not shares:
        return None, None
    values = np.array(shares, dtype=np.float64)
    mean = float(values.mean())
    if mean == 0:
        return None, None
    return float(values.max()) / mean, float(values.std()) / mean


# Sizes past 8 and 128 cross numpy's unrolled and blocked pairwise summation.
sizes = st.sampled_from([0, 1, 2, 3, 7, 8, 9, 16, 17, 127, 128, 129, 300])


@st.composite
def pool_groups(draw: st.DrawFn) -> list[list[float]]:
    groups = []
    for _ in range(draw(st.integers(1, 6))):
        size = draw(sizes)
        groups.append(draw(st.lists(share, min_size=size, max_size=size)))
    # Repeat a size so that several pools share one stacked array.
    groups.append(draw(st.lists(share, min_size=len(groups[0]), max_size=len(groups[0]))))
    return groups


@given(pool_groups())
@settings(max_examples=400, deadline=None)
def test_batched_imbalances_equal_per_pool(groups: list[list[float]]) -> None:
    assert imbalances(groups) == [plain(group) for group in groups]


def test_batched_imbalances_on_random_weights() -> None:
    generator = np.random.default_rng(7)
    groups = [
        (generator.random(size) / size).tolist()
        for size in generator.integers(1, 400, size=300).tolist()
    ]
    assert imbalances(groups) == [plain(group) for group in groups]
