"""Wording of the significance test in observed-departure findings."""

from __future__ import annotations

import math

from lbguard.analysis.compare import ShareComparison
from lbguard.checks.observed import _test_text


def comparison(z: float, p_value: float) -> ShareComparison:
    return ShareComparison(
        key="be/web1",
        observed=900,
        trials=1000,
        observed_share=0.9,
        predicted_share=0.5,
        z=z,
        p_value=p_value,
        flagged=True,
        reason="",
    )


def test_infinite_z_is_worded() -> None:
    text = _test_text(comparison(math.inf, 0.0))
    assert "inf" not in text
    assert "0 % or 100 %" in text


def test_zero_p_value_is_bounded() -> None:
    assert _test_text(comparison(25.3, 0.0)) == " (z = 25.3, p < 1e-300)"


def test_ordinary_p_value() -> None:
    assert _test_text(comparison(3.2, 0.0014)) == " (z = 3.2, p = 0.0014)"
