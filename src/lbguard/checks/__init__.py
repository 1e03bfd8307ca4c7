"""Audit rules: each rule reads the model and its prediction and returns findings."""

from lbguard.checks.interface import (
    CheckContext,
    Family,
    Finding,
    Option,
    OptionValue,
    Rule,
)
from lbguard.checks.registry import RULES, find_rule
from lbguard.checks.runner import CheckOptionError, resolve_options, run_checks

__all__ = [
    "RULES",
    "CheckContext",
    "CheckOptionError",
    "Family",
    "Finding",
    "Option",
    "OptionValue",
    "Rule",
    "find_rule",
    "resolve_options",
    "run_checks",
]
