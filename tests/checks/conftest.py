"""Run the real parser, traffic loader, predictor and checks on configurations written
by a test."""

from __future__ import annotations

import textwrap
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pytest
import yaml
from audit_support import Audit, AuditFactory

from lbguard.checks import CheckContext, run_checks
from lbguard.parsers import load_config
from lbguard.predict import predict
from lbguard.traffic import load_profile


@pytest.fixture
def audit(tmp_path: Path) -> AuditFactory:
    """Return a function that checks a dedented HAProxy config with optional traffic."""

    def run(
        config: str,
        traffic: Mapping[str, Any] | None = None,
        options: Mapping[str, Mapping[str, float]] | None = None,
        health: Mapping[str, bool] | None = None,
    ) -> Audit:
        path = tmp_path / "haproxy.cfg"
        path.write_text(textwrap.dedent(config).lstrip("\n"), encoding="utf-8")
        lb = load_config([path])

        profile = None
        if traffic is not None:
            profile_path = tmp_path / "traffic.yaml"
            profile_path.write_text(yaml.safe_dump(dict(traffic)), encoding="utf-8")
            profile = load_profile(profile_path)

        prediction = predict(lb, profile, health)
        findings = run_checks(CheckContext.build(lb, prediction, profile), options)
        return Audit(path, lb, prediction, findings)

    return run
