"""The outcome of auditing one configuration, shared by the check tests."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from lbguard.checks import Finding
from lbguard.model import LoadBalancer
from lbguard.predict.result import Prediction


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
