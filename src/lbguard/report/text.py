"""Terminal renderer of a check report, built on rich.

Every string that comes from a configuration or a traffic profile passes through `clean`
and is placed as plain `Text`, so it can neither move the cursor nor inject rich markup.
"""

from __future__ import annotations

import textwrap
from collections.abc import Sequence
from typing import TextIO

from rich.console import Console, Group
from rich.table import Table
from rich.text import Text

from lbguard.checks import Finding, Rule
from lbguard.checks.wording import join_names
from lbguard.model import Location, Product, Severity
from lbguard.predict.result import PoolShare, RuleShare, ServerShare
from lbguard.report.interface import (
    CheckReport,
    RenderOptions,
    SourceLines,
    clean,
    could_match,
)

SEVERITY_STYLES = {
    Severity.ERROR: "bold red",
    Severity.WARNING: "yellow",
    Severity.INFO: "cyan",
}

MAX_LOCATIONS_SHOWN = 8
"""Configuration lines quoted under one finding; the rest are counted."""


def render_text(report: CheckReport, stream: TextIO, options: RenderOptions) -> None:
    """Write the report for a reader at a terminal or in a text file."""
    console = make_console(stream, options)
    sources = SourceLines()

    console.print(_header(report))
    only_file = report.lb.files[0] if len(report.lb.files) == 1 else None
    console.print(_routes(report.prediction.rules, options.limit, only_file))
    console.print(_pools(report.prediction.pools, options.limit, only_file))
    console.print(_servers(report, options.limit, only_file))
    console.print(_findings(report, sources, console.width))
    console.print(_diagnostics(report))
    console.print(_unevaluated(report))
    console.print(_assumptions(report))


def make_console(stream: TextIO, options: RenderOptions) -> Console:
    width = options.width
    if width is None and not stream.isatty():
        width = 120
    return Console(
        file=stream,
        width=width,
        force_terminal=options.color,
        no_color=options.color is False,
        highlight=False,
        markup=False,
        emoji=False,
    )


def percent(value: float | None) -> str:
    """Format a fraction with one decimal, or ``-`` when unknown."""
    return "-" if value is None else f"{value * 100:.1f} %"


def _ratio(value: float | None) -> str:
    return "-" if value is None else f"{value:.2f}"


def _where(location: Location) -> str:
    return clean(str(location)) if location.file else "-"


def _cell(location: Location, only_file: str | None) -> str:
    """Return the line number alone when the configuration is one file, else file:line."""
    if location.file and location.file == only_file:
        return str(location.line)
    return _where(location)


def _heading(title: str) -> Text:
    return Text(f"\n{title}", style="bold")


def _more(hidden: int, noun: str) -> Text:
    return Text(
        f"... {hidden:,} more {noun}; --limit 0 shows all, --format json lists every one.",
        style="dim",
    )


def _top(items: Sequence[PoolShare], limit: int) -> list[PoolShare]:
    """Keep the ``limit`` items with the largest share, in their original order."""
    if limit <= 0 or len(items) <= limit:
        return list(items)
    ranked = sorted(range(len(items)), key=lambda i: -(items[i].share_of_total or 0.0))
    keep = sorted(ranked[:limit])
    return [items[i] for i in keep]


def _header(report: CheckReport) -> Group:
    files = ", ".join(clean(name) for name in report.lb.files) or "-"
    # The description of the default profile states that route shares are unknown.
    return Group(
        Text(f"lbguard check: {report.lb.product} configuration {files}", style="bold"),
        Text(f"traffic: {clean(report.prediction.traffic) or '-'}"),
    )


def _routes(routes: Sequence[RuleShare], limit: int, only_file: str | None) -> Group:
    table = Table(title_justify="left", expand=False)
    for column in ("frontend", "line", "rule", "target"):
        table.add_column(column, overflow="fold")
    for column in ("share", "could match"):
        table.add_column(column, justify="right")

    shown = list(routes)
    if 0 < limit < len(routes):
        ranked = sorted(range(len(routes)), key=lambda i: -(routes[i].share or 0.0))
        shown = [routes[i] for i in sorted(ranked[:limit])]
    for route in shown:
        rule = clean(route.rule.text) if route.rule is not None else "(default)"
        table.add_row(
            Text(clean(route.frontend)),
            Text(_cell(route.location, only_file)),
            Text(rule),
            Text(clean(route.target)),
            percent(route.share),
            percent(could_match(route)),
        )

    parts: list[Text | Table] = [_heading("Routes: which rule sends what share where")]
    parts.append(table if routes else Text("no routing rules", style="dim"))
    if len(shown) < len(routes):
        parts.append(_more(len(routes) - len(shown), "routes"))
    return Group(*parts)


def _pools(pools: Sequence[PoolShare], limit: int, only_file: str | None) -> Group:
    table = Table()
    table.add_column("pool", overflow="fold")
    table.add_column("line")
    table.add_column("method")
    for column in ("share of all", "servers", "max/mean", "CV"):
        table.add_column(column, justify="right")

    shown = _top(pools, limit)
    for pool in shown:
        eligible = sum(1 for server in pool.servers if server.eligible)
        table.add_row(
            Text(clean(pool.pool)),
            Text(_cell(pool.location, only_file)),
            str(pool.method),
            percent(pool.share_of_total),
            f"{eligible}/{len(pool.servers)}",
            _ratio(pool.max_over_mean),
            _ratio(pool.coefficient_of_variation),
        )

    parts: list[Text | Table] = [_heading("Pools: share of all requests and imbalance")]
    parts.append(table if pools else Text("no pools", style="dim"))
    if len(shown) < len(pools):
        parts.append(_more(len(pools) - len(shown), "pools"))
    return Group(*parts)


def _server_state(server: ServerShare) -> str:
    if server.eligible:
        return "backup" if server.backup else "active"
    return "backup, idle" if server.backup else "not eligible"


def _servers(report: CheckReport, limit: int, only_file: str | None) -> Group:
    pools = report.prediction.pools
    table = Table()
    table.add_column("server", overflow="fold")
    table.add_column("line")
    table.add_column("state")
    for column in ("weight", "share of pool", "fair share", "share of all"):
        table.add_column(column, justify="right")

    hidden_pools = len(pools)
    for pool in _top(pools, limit):
        hidden_pools -= 1
        servers: list[ServerShare] = list(pool.servers)
        if 0 < limit < len(servers):
            servers = sorted(servers, key=lambda server: -server.share_of_pool)[:limit]
        for server in servers:
            table.add_row(
                Text(clean(server.key)),
                Text(_cell(server.location, only_file)),
                _server_state(server),
                str(server.weight),
                percent(server.share_of_pool),
                percent(report.fair_share(pool, server)),
                percent(server.share_of_total),
            )
        if len(servers) < len(pool.servers):
            hidden = len(pool.servers) - len(servers)
            table.add_row(Text(f"... {hidden:,} more in {clean(pool.pool)}", style="dim"))

    parts: list[Text | Table] = [_heading("Servers: predicted share per server")]
    parts.append(table if pools else Text("no servers", style="dim"))
    if hidden_pools:
        parts.append(_more(hidden_pools, "pools' servers"))
    return Group(*parts)


def _findings(report: CheckReport, sources: SourceLines, width: int) -> Group:
    rules = {rule.id: rule for rule in report.rules}
    parts: list[Text] = [_heading(f"Findings ({len(report.findings)})")]
    if not report.findings:
        parts.append(Text("no findings", style="green"))
    for finding in report.findings:
        rule = rules.get(finding.rule_id)
        parts.extend(_finding(finding, rule, report.lb.product, sources, width))
    return Group(*parts)


def _indented(text: str, width: int) -> Text:
    """Wrap prose two spaces in, without the trailing padding rich adds to wrapped lines."""
    return Text(
        textwrap.fill(
            text,
            width=max(width, 40),
            initial_indent="  ",
            subsequent_indent="  ",
            break_on_hyphens=False,
        )
    )


def _finding(
    finding: Finding, rule: Rule | None, product: Product, sources: SourceLines, width: int
) -> list[Text]:
    title = Text()
    title.append(f"{finding.severity.upper():<7}", style=SEVERITY_STYLES[finding.severity])
    title.append(f" {finding.rule_id}", style="bold")
    if rule is not None:
        title.append(f" {rule.name}")
    title.append(f"  {_where(finding.location)}")

    lines = [title, _indented(clean(finding.reason), width)]
    shown = finding.locations[:MAX_LOCATIONS_SHOWN]
    column = max((len(_where(location)) for location in shown), default=0)
    for location in shown:
        source = sources.line(location)
        quoted = clean(source.strip()) if source is not None else "(line not readable)"
        lines.append(Text(f"    {_where(location):<{column}} | {quoted}", style="dim"))
    if len(finding.locations) > MAX_LOCATIONS_SHOWN:
        hidden = len(finding.locations) - MAX_LOCATIONS_SHOWN
        lines.append(Text(f"    ... {hidden} more lines", style="dim"))
    if rule is not None:
        lines.append(_indented(f"fix: {rule.fix_hint_for(product)}", width))
    return lines


def _diagnostics(report: CheckReport) -> Group:
    diagnostics = report.lb.diagnostics
    parts: list[Text] = [_heading(f"Parser diagnostics ({len(diagnostics)})")]
    reported = sum(1 for item in diagnostics if item.severity is not Severity.INFO)
    if reported:
        parts.append(Text(f"{reported} errors and warnings are also listed as LB001 findings."))
    for item in diagnostics:
        text = f"{_where(item.location)}: {item.severity}: {clean(item.message)}"
        if item.hint:
            text += f"\n  hint: {clean(item.hint)}"
        parts.append(Text(text, style=SEVERITY_STYLES[item.severity]))
    if not diagnostics:
        parts.append(Text("none", style="dim"))
    return Group(*parts)


def _unevaluated(report: CheckReport) -> Group:
    items = report.prediction.unevaluated
    parts: list[Text] = [_heading(f"Not evaluated ({len(items)})")]
    for item in items:
        parts.append(
            Text(
                f"{_where(item.location)}: {clean(item.text)}: {clean(item.reason)} "
                f"(traffic reaching it: {percent(item.share)})"
            )
        )
    if not items:
        parts.append(Text("none", style="dim"))
    return Group(*parts)


def _assumptions(report: CheckReport) -> Group:
    """List global assumptions, then each pool note once with the pools it applies to."""
    assumptions = dict.fromkeys(clean(text) for text in report.prediction.assumptions)
    notes: dict[str, list[str]] = {}
    for pool in report.prediction.pools:
        for note in pool.notes:
            notes.setdefault(clean(note), []).append(clean(pool.pool))

    parts: list[Text] = [_heading("Assumptions")]
    parts.extend(Text(f"- {assumption}") for assumption in assumptions)
    for note, pools in notes.items():
        parts.append(Text(f"- {join_names(pools)}: {note}"))
    if not assumptions and not notes:
        parts.append(Text("none", style="dim"))
    return Group(*parts)
