"""The steps monitoring runs on a configuration: load, predict and audit.

Monitoring parses no format itself: it calls the parsers, the prediction engine and the
check registry, and keeps their results in plain JSON for history.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from lbguard.checks import CheckContext, Finding, resolve_options, run_checks
from lbguard.errors import TrafficError
from lbguard.model import LoadBalancer, Product
from lbguard.monitor.redact import redact_model, redact_text
from lbguard.monitor.shares import ServerShares, share_table
from lbguard.parsers import load_config
from lbguard.predict import predict
from lbguard.predict.result import Prediction
from lbguard.traffic import TrafficProfile, load_profile


@dataclass(frozen=True)
class Evaluation:
    """One configuration read, predicted and audited."""

    lb: LoadBalancer
    prediction: Prediction
    shares: dict[str, ServerShares]
    findings: list[dict[str, Any]]
    content_hash: str


def evaluate(
    paths: Sequence[Path],
    product: Product | None,
    profile: TrafficProfile | None,
    check_options: Mapping[str, Mapping[str, object]] | None = None,
) -> Evaluation:
    """Load, predict and audit a configuration.

    Raises `lbguard.errors.LbguardError` for a configuration that cannot be read, and
    OSError when a file disappears between parsing and hashing.
    """
    lb = load_config(list(paths), product)
    prediction = predict(lb, profile)
    findings = audit(lb, prediction, profile, check_options)
    digest = content_hash(config_files(lb, paths))
    # Diffs and history see the model with its secrets redacted, checks the model as read.
    return Evaluation(redact_model(lb), prediction, share_table(prediction), findings, digest)


def audit(
    lb: LoadBalancer,
    prediction: Prediction,
    profile: TrafficProfile | None,
    check_options: Mapping[str, Mapping[str, object]] | None = None,
) -> list[dict[str, Any]]:
    """Run the check registry and return the findings as JSON-ready dictionaries."""
    context = CheckContext.build(lb, prediction, profile)
    findings = run_checks(context, resolve_options(check_options or {}))
    return [finding_json(finding) for finding in findings]


def finding_json(finding: Finding) -> dict[str, Any]:
    location = finding.location
    return {
        "rule_id": finding.rule_id,
        "severity": str(finding.severity),
        "reason": redact_text(finding.reason),
        "subject": redact_text(finding.subject),
        "location": str(location) if location.file else "",
        "locations": [str(item) for item in finding.locations],
        "metrics": dict(finding.metrics),
    }


def read_profile(path: Path | None) -> TrafficProfile | None:
    """Read the watch configuration's traffic profile; None when it names none."""
    if path is None:
        return None
    if not path.is_file():
        raise TrafficError(
            f"traffic profile {path} not found",
            hint="set traffic in watch.toml to a profile file; a relative path starts at "
            "the folder of watch.toml",
        )
    return load_profile(path)


def traffic_hash(path: Path | None) -> str:
    """Return the SHA-256 of the traffic profile file, or "" without a profile; snapshots
    keep it to tell which profile predicted their shares."""
    if path is None:
        return ""
    try:
        return content_hash([path])
    except OSError:
        return ""


def config_files(lb: LoadBalancer, paths: Iterable[Path]) -> list[Path]:
    """Return the files a configuration consists of: those the parser read, and the
    configured paths that are files."""
    files = {Path(name).absolute() for name in lb.files}
    files.update(path.absolute() for path in paths if not path.is_dir())
    return sorted(files)


def content_hash(files: Iterable[Path]) -> str:
    """Return the SHA-256 over the files' paths and bytes; raise OSError if one is
    unreadable."""
    digest = hashlib.sha256()
    for path in sorted(files):
        digest.update(os.fsencode(path) + b"\0")
        digest.update(path.read_bytes())
        digest.update(b"\0")
    return digest.hexdigest()
