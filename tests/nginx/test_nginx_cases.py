"""Every nginx case: predicted shares within the case's tolerance."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from lbguard.parsers import load_config
from lbguard.predict import predict
from lbguard.predict.nginx import sequence
from lbguard.traffic import load_profile

from .conftest import CASES

CASE_DIRS = sorted(path for path in CASES.iterdir() if path.name.startswith("nginx-"))


@pytest.mark.parametrize("case", CASE_DIRS, ids=[path.name for path in CASE_DIRS])
def test_case_shares(case: Path) -> None:
    spec = yaml.safe_load((case / "case.yaml").read_text())
    lb = load_config([case / "nginx.conf"])
    prediction = predict(lb, load_profile(case / "case.yaml", section="traffic"))
    tolerance = spec["expect"]["tolerance"]
    for key, expected in spec["expect"]["shares"].items():
        server = prediction.server(key)
        assert server is not None, f"{key} missing from the prediction"
        assert server.share_of_total is not None, f"{key} has no share of all traffic"
        assert abs(server.share_of_total - expected) <= tolerance + 1e-9, (
            f"{key}: predicted {server.share_of_total:.4f}, expected {expected}"
        )


def test_smooth_wrr_sequence_matches_case() -> None:
    case = CASES / "nginx-smooth-weighted-rr"
    spec = yaml.safe_load((case / "case.yaml").read_text())
    pool = load_config([case / "nginx.conf"]).pool("app")
    assert pool is not None
    expected = [f"127.0.0.1:{port}" for port in spec["expect"]["sequence"]]
    assert sequence(pool, len(expected)) == expected


def test_ip_hash_case_without_zone_note() -> None:
    case = CASES / "nginx-ip-hash-one-subnet"
    prediction = predict(
        load_config([case / "nginx.conf"]), load_profile(case / "case.yaml", section="traffic")
    )
    pool = prediction.pool("app")
    assert pool is not None
    assert pool.method.value == "exact"
    # ip_hash places each client the same way in every worker, with or without a zone.
    assert not any("no zone" in note for note in pool.notes)
