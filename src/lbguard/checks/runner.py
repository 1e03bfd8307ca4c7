"""Run the registered rules over a prediction, with option overrides."""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence

from lbguard.checks.interface import CheckContext, Finding, OptionValue, Rule
from lbguard.checks.registry import RULES, find_rule
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
                raise CheckOptionError(f"rule {rule.id}: {error}") from None
    return resolved


def sort_key(finding: Finding) -> tuple[int, str, int, str]:
    """Order findings by severity, highest first, then by file, line and rule."""
    location = finding.location
    return (-finding.severity.rank, location.file, location.line, finding.rule_id)


def run_checks(
    context: CheckContext,
    options: Mapping[str, Mapping[str, OptionValue]] | None = None,
    rules: Sequence[Rule] = RULES,
) -> list[Finding]:
    """Run each rule with its options (defaults when absent) and return sorted findings."""
    findings: list[Finding] = []
    for rule in rules:
        values = rule.default_options()
        values.update((options or {}).get(rule.id, {}))
        found = list(rule.check(context, values))
        logger.debug("rule %s found %d", rule.id, len(found))
        findings.extend(found)
    findings.sort(key=sort_key)
    return findings
