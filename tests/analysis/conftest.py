"""Fixtures for analysis tests."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path

import pytest
from loggen import Phase, incident_phases, write_log


@pytest.fixture
def log_writer(tmp_path: Path) -> Callable[..., Path]:
    def write(phases: Sequence[Phase], name: str = "haproxy.log", seed: int = 7) -> Path:
        return write_log(tmp_path / name, phases, seed)

    return write


@pytest.fixture
def incident_log(tmp_path: Path) -> Path:
    return write_log(tmp_path / "incident.log", incident_phases())


@pytest.fixture
def regions_csv(tmp_path: Path) -> Path:
    path = tmp_path / "regions.csv"
    path.write_text(
        "cidr,region\n198.51.100.0/24,us-east\n203.0.113.0/24,ap-south\n2001:db8::/32,eu-west\n",
        encoding="utf-8",
    )
    return path
