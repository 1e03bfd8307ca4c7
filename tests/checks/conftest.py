"""Run the real parser, traffic loader, predictor and checks on configurations written
by a test."""

from __future__ import annotations

import textwrap
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml

from lbguard.checks import CheckContext, Finding, run_checks
from lbguard.model import LoadBalancer
from lbguard.parsers import load_config
from lbguard.predict import predict
from lbguard.predict.result import Prediction
from lbguard.traffic import load_profile


@dataclass
class Audit:
    """The outcome of checking one configuration."""

    config: Path
    lb: LoadBalancer
    prediction: Prediction
    findings: list[Finding]

    def finding_keys(self, rule_id: str | None = None) -> set[tuple[str, str, int]]:
        """Return (rule id, file, line) of each finding, optionally of one rule."""
        return {
            (finding.rule_id, finding.location.file, finding.location.line)
            for finding in self.findings
            if rule_id is None or finding.rule_id == rule_id
        }

    def of(self, rule_id: str) -> list[Finding]:
        return [finding for finding in self.findings if finding.rule_id == rule_id]

    def line_of(self, text: str) -> int:
        """Return the 1-based number of the first config line that starts with ``text``
        (indentation ignored), or else of the first line that contains it."""
        lines = self.config.read_text(encoding="utf-8").splitlines()
        for number, line in enumerate(lines, 1):
            if line.strip().startswith(text):
                return number
        return next(number for number, line in enumerate(lines, 1) if text in line)


AuditFactory = Callable[..., Audit]


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
