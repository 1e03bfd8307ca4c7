"""Inline suppressions: comments in the load-balancer configuration that silence a rule.

The comment ``# lbguard: ignore LB201 reason: capacity is 10x`` silences the named rules'
findings that involve its line. Written after a statement it applies to that line; on a
line of its own it applies to the next line that is neither blank nor a comment. Several
rules are separated by commas or spaces, and each may be an id or a dotted name. A
suppression without a reason, naming an unknown rule, or naming LB002 or LB003 (the
rules that report suppressions) silences nothing.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

from lbguard.checks.interface import Finding
from lbguard.model import Location, Product
from lbguard.parsers.haproxy.lexer import LineError, split_words

_MARKER = re.compile(r"#\s*lbguard:\s*(?P<body>.*)$", re.IGNORECASE)
_REASON = re.compile(r"\breason:", re.IGNORECASE)

# The rules that report suppressions themselves: silencing them would hide a suppression
# that silences nothing or is invalid.
_UNSUPPRESSIBLE = frozenset(
    {"LB002", "LB003", "config.unused-suppression", "config.invalid-suppression"}
)
UNSUPPRESSIBLE_PROBLEM = "LB002 and LB003 cannot be suppressed"


@dataclass(frozen=True)
class Suppression:
    """One ``lbguard: ignore`` comment."""

    location: Location
    """Line of the comment."""

    target: Location
    """Line whose findings it silences."""

    rules: tuple[str, ...]
    """Rule ids or names as written."""

    reason: str
    text: str
    """The comment as written."""

    problem: str = ""
    """Reason the comment is invalid. Empty for a valid suppression."""


@dataclass(frozen=True)
class SuppressedFinding:
    """A finding that a suppression silenced, kept for reports that list them."""

    finding: Finding
    suppression: Suppression


def read_suppressions(files: Iterable[str], product: Product | None) -> list[Suppression]:
    """Return the suppressions in the configuration files of ``product``; unreadable files
    are skipped because the parser has already reported them."""
    found: list[Suppression] = []
    for name in files:
        try:
            text = Path(name).read_text(encoding="utf-8", errors="replace")
        except OSError:
            continue
        found.extend(parse_suppressions(name, text.splitlines(), product))
    return found


def parse_suppressions(
    name: str, lines: Sequence[str], product: Product | None = None
) -> list[Suppression]:
    """Return the suppressions of one file's lines; for HAProxy only those in comments, so
    that a quoted ``# lbguard:`` inside an argument is not read as one."""
    found: list[Suppression] = []
    for index, line in enumerate(lines):
        match = _MARKER.search(line, _comment_start(line, product))
        if match is None:
            continue
        location = Location(name, index + 1)
        code = line[: match.start()].strip()
        target = location if code else Location(name, _next_statement(lines, index))
        found.append(_parse(location, target, match.group("body").strip(), match.group(0)))
    return found


def _comment_start(line: str, product: Product | None) -> int:
    """Return where the line's comment may start: for HAProxy, where its lexer ends the
    line's words (a ``#`` inside quotes starts no comment); else 0."""
    if product is not Product.HAPROXY:
        return 0
    try:
        return split_words(line).end
    except LineError:
        return 0


def _next_statement(lines: Sequence[str], index: int) -> int:
    for later in range(index + 1, len(lines)):
        stripped = lines[later].strip()
        if stripped and not stripped.startswith("#"):
            return later + 1
    return index + 1


def _parse(location: Location, target: Location, body: str, text: str) -> Suppression:
    verb, _, rest = body.partition(" ")
    if verb.lower() != "ignore":
        return Suppression(
            location, target, (), "", text, problem=f"unknown lbguard comment {verb!r}"
        )
    split = _REASON.search(rest)
    names = rest[: split.start()] if split else rest
    reason = rest[split.end() :].strip() if split else ""
    rules = tuple(name for name in re.split(r"[\s,]+", names) if name)
    if not rules:
        return Suppression(location, target, (), reason, text, problem="no rule named")
    if not reason:
        return Suppression(location, target, rules, "", text, problem="no reason given")
    if any(rule in _UNSUPPRESSIBLE or rule.upper() in _UNSUPPRESSIBLE for rule in rules):
        return Suppression(location, target, rules, reason, text, problem=UNSUPPRESSIBLE_PROBLEM)
    return Suppression(location, target, rules, reason, text)


@dataclass(frozen=True)
class SuppressionOutcome:
    """Findings after suppression, what was silenced, and which suppressions matched."""

    kept: tuple[Finding, ...]
    suppressed: tuple[SuppressedFinding, ...]
    used: frozenset[Suppression]


def apply_suppressions(
    findings: Iterable[Finding], suppressions: Sequence[Suppression], ids: dict[str, str]
) -> SuppressionOutcome:
    """Silence findings that a valid suppression names; ``ids`` maps every rule id and
    name to its id."""
    by_target: dict[tuple[Location, str], list[Suppression]] = {}
    for suppression in suppressions:
        if suppression.problem:
            continue
        for rule in suppression.rules:
            rule_id = ids.get(rule) or ids.get(rule.upper())
            if rule_id is not None:
                by_target.setdefault((suppression.target, rule_id), []).append(suppression)

    kept: list[Finding] = []
    suppressed: list[SuppressedFinding] = []
    used: set[Suppression] = set()
    for finding in findings:
        match = _matching(finding, by_target)
        if match is None:
            kept.append(finding)
        else:
            suppressed.append(SuppressedFinding(finding, match))
            used.add(match)
    return SuppressionOutcome(tuple(kept), tuple(suppressed), frozenset(used))


def _matching(
    finding: Finding, by_target: dict[tuple[Location, str], list[Suppression]]
) -> Suppression | None:
    for location in finding.locations:
        candidates = by_target.get((location, finding.rule_id))
        if candidates:
            return candidates[0]
    return None
