"""SARIF 2.1.0 renderer, for code scanning in CI (GitHub, GitLab, Azure DevOps).

One run with lbguard as the driver, a reporting descriptor per rule (generated from the
same metadata as ``lbguard explain``), and one result per finding. Suppressed findings
are results with an ``inSource`` suppression, as SARIF 2.1.0 section 3.35 describes.
Relative configuration paths are kept relative to the ``SRCROOT`` base, the current
directory, so that code-scanning services can place them in the repository.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any, TextIO

from lbguard import __version__
from lbguard.checks import Finding, Rule
from lbguard.checks.suppression import SuppressedFinding
from lbguard.model import Location, Severity
from lbguard.report.interface import CheckReport, RenderOptions
from lbguard.report.rules_doc import explain_text, rules_markdown

SARIF_VERSION = "2.1.0"
SARIF_SCHEMA = "https://json.schemastore.org/sarif-2.1.0.json"
SOURCE_ROOT = "SRCROOT"

LEVELS = {Severity.ERROR: "error", Severity.WARNING: "warning", Severity.INFO: "note"}
"""Severity to SARIF ``level``."""

JsonObject = dict[str, Any]


def render_sarif(report: CheckReport, stream: TextIO, options: RenderOptions) -> None:
    """Write the report as a SARIF 2.1.0 log."""
    json.dump(sarif_document(report), stream, ensure_ascii=False, indent=2)
    stream.write("\n")


def sarif_document(report: CheckReport) -> JsonObject:
    """Return the report as a SARIF 2.1.0 log object."""
    index = {rule.id: position for position, rule in enumerate(report.rules)}
    results = [_result(finding, index) for finding in report.findings]
    results += [_suppressed(item, index) for item in report.suppressed]
    return {
        "$schema": SARIF_SCHEMA,
        "version": SARIF_VERSION,
        "runs": [
            {
                "tool": {
                    "driver": {
                        "name": "lbguard",
                        "version": __version__,
                        "semanticVersion": __version__,
                        "rules": [_descriptor(rule, report) for rule in report.rules],
                    }
                },
                "originalUriBaseIds": {
                    SOURCE_ROOT: {"uri": Path.cwd().as_uri() + "/"},
                },
                "invocations": [_invocation(report)],
                "results": results,
                "columnKind": "unicodeCodePoints",
            }
        ],
    }


def _descriptor(rule: Rule, report: CheckReport) -> JsonObject:
    options = dict(report.options.get(rule.id, rule.default_options()))
    descriptor: JsonObject = {
        "id": rule.id,
        "name": rule.name,
        "shortDescription": {"text": rule.summary},
        "fullDescription": {"text": rule.rationale},
        "help": {"text": explain_text(rule), "markdown": rules_markdown([rule])},
        "defaultConfiguration": {"level": LEVELS[rule.severity]},
        "properties": {
            "tags": [str(rule.family), *(str(product) for product in rule.products)],
            "fixHint": rule.fix_hint_for(report.lb.product),
        },
    }
    if options:
        descriptor["defaultConfiguration"]["parameters"] = options
    return descriptor


def _invocation(report: CheckReport) -> JsonObject:
    notifications = [
        {
            "level": LEVELS[diagnostic.severity],
            "message": {"text": diagnostic.message},
            "locations": [_location(diagnostic.location)] if diagnostic.location.file else [],
        }
        for diagnostic in report.lb.diagnostics
    ]
    invocation: JsonObject = {"executionSuccessful": True}
    if notifications:
        invocation["toolExecutionNotifications"] = notifications
    return invocation


def _uri(path: str) -> JsonObject:
    target = Path(path)
    if target.is_absolute():
        return {"uri": target.as_uri()}
    return {"uri": target.as_posix(), "uriBaseId": SOURCE_ROOT}


def _location(location: Location, message: str | None = None) -> JsonObject:
    physical: JsonObject = {"artifactLocation": _uri(location.file)}
    if location.line >= 1:
        physical["region"] = {"startLine": location.line}
    result: JsonObject = {"physicalLocation": physical}
    if message:
        result["message"] = {"text": message}
    return result


def _result(finding: Finding, index: dict[str, int]) -> JsonObject:
    located = [location for location in finding.locations if location.file]
    result: JsonObject = {
        "ruleId": finding.rule_id,
        "level": LEVELS[finding.severity],
        "message": {"text": finding.reason},
        "locations": [_location(location) for location in located[:1]],
        "properties": {
            "subject": finding.subject,
            "metrics": {
                name: value for name, value in finding.metrics.items() if math.isfinite(value)
            },
        },
    }
    if finding.rule_id in index:
        result["ruleIndex"] = index[finding.rule_id]
    if len(located) > 1:
        result["relatedLocations"] = [
            {"id": number, **_location(location)} for number, location in enumerate(located[1:], 1)
        ]
    # A stable fingerprint lets code-scanning services track a finding across commits
    # while its line moves.
    result["partialFingerprints"] = {"lbguardSubject/v1": f"{finding.rule_id}:{finding.subject}"}
    return result


def _suppressed(item: SuppressedFinding, index: dict[str, int]) -> JsonObject:
    result = _result(item.finding, index)
    result["suppressions"] = [
        {
            "kind": "inSource",
            "justification": item.suppression.reason,
            "location": _location(item.suppression.location),
        }
    ]
    return result
