"""Run the registered rules over a prediction, with option overrides and the inline
suppressions of the configuration."""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from lbguard.checks.config import UNUSED_SUPPRESSION, unused_suppression_findings
from lbguard.checks.interface import CheckContext, Finding, OptionValue, Rule
from lbguard.checks.registry import RULES, find_rule
from lbguard.checks.suppression import SuppressedFinding, apply_suppressions, read_suppressions
from lbguard.errors import LbguardError

logger = logging.getLogger(__name__)

OptionOverrides = Mapping[str, Mapping[str, object]]
"""Rule id or name to option name to value, as a user writes them."""


class CheckOptionError(LbguardError):
    """An option override that names an unknown rule or option, or has a bad value."""


def resolve_options(overrides: OptionOverrides) -> dict[str, dict[str, OptionValue]]:
    """Return every rule's option values by rule id, overrides checked and applied.

    Raises CheckOptionError naming the rule and option.
    """
    resolved = {rule.id: rule.default_options() for rule in RULES}
    for key, values in overrides.items():
        rule = find_rule(key)
        if rule is None:
            raise CheckOptionError(
                f"unknown rule {key!r}",
                hint="name a rule by id (LB201) or name (balancing.server-over-fair-share)",
            )
        for name, value in values.items():
            option = rule.option(name)
            if option is None:
                known = ", ".join(option.name for option in rule.options) or "none"
                raise CheckOptionError(
                    f"rule {rule.id} has no option {name!r}", hint=f"its options: {known}"
                )
            try:
                resolved[rule.id][name] = option.parse(value)
            except ValueError as error:
                raise CheckOptionError(
                    f"rule {rule.id}: {error}", hint=f"{option.name} sets the {option.help}"
                ) from None
    return resolved


def sort_key(finding: Finding) -> tuple[int, str, int, str]:
    """Order findings by severity, highest first, then by file, line and rule."""
    location = finding.location
    return (-finding.severity.rank, location.file, location.line, finding.rule_id)


@dataclass(frozen=True)
class AuditResult:
    """Findings of one run, and the findings that inline suppressions silenced."""

    findings: tuple[Finding, ...]
    """Reported findings, highest severity first."""

    suppressed: tuple[SuppressedFinding, ...] = ()


def run_audit(
    context: CheckContext,
    options: Mapping[str, Mapping[str, OptionValue]] | None = None,
    rules: Sequence[Rule] = RULES,
    *,
    suppress: bool = True,
) -> AuditResult:
    """Run each rule with its options (defaults when absent), then apply the inline
    suppressions of the configuration files and report unused ones."""
    findings: list[Finding] = []
    for rule in rules:
        values = rule.default_options()
        values.update((options or {}).get(rule.id, {}))
        found = list(rule.check(context, values))
        logger.debug("rule %s found %d", rule.id, len(found))
        findings.extend(found)

    suppressed: tuple[SuppressedFinding, ...] = ()
    if suppress:
        suppressions = read_suppressions(context.lb.files, context.lb.product)
        ids = {key: rule.id for rule in RULES for key in (rule.id, rule.name)}
        outcome = apply_suppressions(findings, suppressions, ids)
        findings = list(outcome.kept)
        suppressed = outcome.suppressed
        ran = {key for rule in rules for key in (rule.id, rule.name)}
        if UNUSED_SUPPRESSION in rules:
            findings.extend(unused_suppression_findings(suppressions, outcome.used, ran))

    findings.sort(key=sort_key)
    return AuditResult(tuple(findings), suppressed)


def run_checks(
    context: CheckContext,
    options: Mapping[str, Mapping[str, OptionValue]] | None = None,
    rules: Sequence[Rule] = RULES,
) -> list[Finding]:
    """Run the rules and return the findings that no inline suppression silenced."""
    return list(run_audit(context, options, rules).findings)
