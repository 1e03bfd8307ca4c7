"""Markdown renderer of a check report, for pull-request comments.

Findings come first, grouped by severity, each with its configuration lines in a code
block. Configuration-derived text is stripped of control characters and escaped, so a
server name cannot open a link, an HTML tag or a table cell. Code blocks use a fence
longer than any run of backticks inside them.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import TextIO

from lbguard.checks import Finding, Rule
from lbguard.model import Location, Severity
from lbguard.predict.result import PoolShare
from lbguard.report.interface import CheckReport, RenderOptions, SourceLines, clean
from lbguard.report.text import percent

_SPECIAL = re.compile(r"([\\`*_\[\]|<>~&])")
"""Characters that open emphasis, code, links, table cells, HTML or entities anywhere."""

_LINE_START = re.compile(r"^([#+\-=!>])")
_LIST_NUMBER = re.compile(r"^(\d+)([.)])")
"""Text that opens a heading, list, quote or underline at the start of a line."""

SEVERITY_TITLES = {
    Severity.ERROR: "Errors",
    Severity.WARNING: "Warnings",
    Severity.INFO: "Information",
}


def escape(text: str) -> str:
    """Make configuration-derived text literal in Markdown, on one line."""
    flat = clean(text.replace("\r\n", " ").replace("\n", " "))
    escaped = _LINE_START.sub(r"\\\1", _SPECIAL.sub(r"\\\1", flat))
    return _LIST_NUMBER.sub(r"\1\\\2", escaped)


def code_block(lines: Sequence[str], language: str = "") -> list[str]:
    """Return a fenced code block whose fence no line of ``lines`` can close."""
    cleaned = [clean(line) for line in lines]
    longest = max((len(run) for line in cleaned for run in re.findall("`+", line)), default=0)
    fence = "`" * max(3, longest + 1)
    return [f"{fence}{language}", *cleaned, fence]


def render_markdown(report: CheckReport, stream: TextIO, options: RenderOptions) -> None:
    """Write the report as GitHub-flavoured Markdown."""
    sources = SourceLines()
    rules = {rule.id: rule for rule in report.rules}
    lines = _summary(report)
    for severity in sorted(Severity, key=lambda level: -level.rank):
        findings = [finding for finding in report.findings if finding.severity is severity]
        if not findings:
            continue
        lines += ["", f"### {SEVERITY_TITLES[severity]} ({len(findings)})"]
        for finding in findings:
            lines += ["", *_finding(finding, rules.get(finding.rule_id), report, sources)]
    if report.suppressed:
        lines += ["", f"### Suppressed ({len(report.suppressed)})", ""]
        for item in report.suppressed:
            lines.append(
                f"- **{item.finding.rule_id}** at {_where(item.finding.location)}: "
                f"{escape(item.suppression.reason)}"
            )
    lines += ["", *_pools(report.prediction.pools, options.limit)]
    stream.write("\n".join(lines) + "\n")


def code_span(text: str) -> str:
    """Return text as an inline code span, which Markdown shows literally."""
    flat = clean(text.replace("\n", " ")).replace("`", "'")
    return f"`{flat}`"


def _where(location: Location) -> str:
    if not location.file:
        return "(no line)"
    return code_span(str(location))


def _summary(report: CheckReport) -> list[str]:
    files = ", ".join(code_span(name) for name in report.lb.files)
    failing = len(report.failing)
    verdict = (
        f"**{failing} finding(s) at or above {report.fail_on}**"
        if failing
        else f"no finding at or above {report.fail_on}"
    )
    counts = ", ".join(
        f"{report.count(level)} {level}" for level in sorted(Severity, key=lambda s: -s.rank)
    )
    return [
        "## lbguard check",
        "",
        f"{report.lb.product} configuration {files}: {verdict} ({counts}).",
        "",
        f"Traffic: {escape(report.prediction.traffic) or '-'}.",
    ]


def _finding(
    finding: Finding, rule: Rule | None, report: CheckReport, sources: SourceLines
) -> list[str]:
    name = f" {code_span(rule.name)}" if rule is not None else ""
    lines = [
        f"**{finding.rule_id}**{name} at {_where(finding.location)}",
        "",
        escape(finding.reason),
    ]
    quoted = []
    for location in finding.locations[:8]:
        text = sources.line(location)
        if text is not None:
            quoted.append(f"{location.line:>5} | {text.strip()}")
    if quoted:
        lines += ["", *code_block(quoted)]
    if rule is not None:
        lines += ["", f"Fix: {escape(rule.fix_hint_for(report.lb.product))}"]
    return lines


def _pools(pools: Sequence[PoolShare], limit: int) -> list[str]:
    shown = sorted(pools, key=lambda pool: -(pool.share_of_total or 0.0))
    if limit > 0:
        shown = shown[:limit]
    lines = [
        f"<details><summary>Predicted shares of {len(pools)} pool(s)</summary>",
        "",
        "| pool | share of all | method | server | share of pool | fair share |",
        "|---|---:|---|---|---:|---:|",
    ]
    for pool in shown:
        for server in pool.servers:
            lines.append(
                f"| {escape(pool.pool)} | {percent(pool.share_of_total)} | {pool.method} | "
                f"{escape(server.server)} | {percent(server.share_of_pool)} | "
                f"{percent(server.fair_share)} |"
            )
    if len(shown) < len(pools):
        lines += ["", f"{len(pools) - len(shown)} more pool(s); `--limit 0` shows all."]
    lines += ["", "</details>"]
    return lines
