"""Pytest support: find a product binary or skip, unless CI requires the products."""

from __future__ import annotations

import os

from lbguard.lab.products import find_binary

REQUIRE_ENV = "LBGUARD_REQUIRE_PRODUCTS"
"""When set to 1, a missing product fails the test instead of skipping it (CI sets it)."""


def require_binary(name: str) -> str:
    """Return the path of product `name`; skip the calling test when it is missing.

    With ``LBGUARD_REQUIRE_PRODUCTS=1`` a missing product fails the test instead.
    """
    import pytest

    path = find_binary(name)
    if path is not None:
        return path
    reason = f"{name} not found in PATH or /usr/sbin: install {name} to run the lab tests"
    if os.environ.get(REQUIRE_ENV) == "1":
        pytest.fail(f"{reason} ({REQUIRE_ENV}=1 requires it)")
    pytest.skip(reason)
