"""HTML renderer of a check report: one self-contained page with an inline SVG chart.

The page loads nothing: its styles are inline and its Content-Security-Policy forbids
scripts and external resources. Jinja2 escapes every value (autoescape), and every
configuration- or profile-derived string is first stripped of control characters.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, TextIO

import jinja2

from lbguard import __version__
from lbguard.checks import Finding, Rule
from lbguard.model import Location, Severity
from lbguard.predict.result import PoolShare
from lbguard.report.interface import (
    CheckReport,
    RenderOptions,
    SourceLines,
    clean,
    could_match,
)
from lbguard.report.text import percent

BAR_HEIGHT = 16
BAR_GAP = 6
LABEL_WIDTH = 260
PLOT_WIDTH = 520
VALUE_WIDTH = 80
OVER_FAIR = 1.5
"""A bar above this multiple of its weight share is drawn in the warning colour."""

OVER_MEAN = 2.0
"""A bar above this multiple of the mean per eligible server is drawn in the warning
colour; the default factor of LB103 routing.concentrating-rule."""

BAR_COLOR = "#1e88e5"
OVER_COLOR = "#c62828"

_ENVIRONMENT = jinja2.Environment(
    loader=jinja2.PackageLoader("lbguard.report", "templates"),
    autoescape=True,
    undefined=jinja2.StrictUndefined,
    trim_blocks=True,
    lstrip_blocks=True,
)


@dataclass(frozen=True)
class Bar:
    """One server's bar in the share chart."""

    key: str
    value: float
    label: str
    fair_label: str
    y: int
    width: float
    fair_x: float | None
    color: str


def render_html(report: CheckReport, stream: TextIO, options: RenderOptions) -> None:
    """Write the report as a self-contained HTML page."""
    template = _ENVIRONMENT.get_template("check.html.j2")
    stream.write(template.render(**page_context(report, options)))
    stream.write("\n")


def page_context(report: CheckReport, options: RenderOptions) -> dict[str, Any]:
    """Return the values the template shows, every string already cleaned."""
    prediction = report.prediction
    sources = SourceLines()
    rules = {rule.id: rule for rule in report.rules}
    levels = sorted(Severity, key=lambda level: -level.rank)
    groups = [
        {
            "severity": str(level),
            "findings": [
                _finding(finding, rules.get(finding.rule_id), report, sources)
                for finding in report.findings
                if finding.severity is level
            ],
        }
        for level in levels
    ]
    return {
        "product": str(report.lb.product),
        "files": [clean(name) for name in report.lb.files],
        "traffic": clean(prediction.traffic) or "-",
        "failing": len(report.failing),
        "fail_on": str(report.fail_on),
        "counts": [(str(level), report.count(level)) for level in levels],
        "groups": [group for group in groups if group["findings"]],
        "suppressed": [
            {
                "rule_id": item.finding.rule_id,
                "where": _where(item.finding.location),
                "reason": clean(item.suppression.reason),
            }
            for item in report.suppressed
        ],
        "chart": share_chart(prediction.pools, prediction.route_level_known, options.limit),
        "routes": [
            {
                "frontend": clean(route.frontend),
                "where": _where(route.location),
                "rule": clean(route.rule.text) if route.rule is not None else "(default)",
                "target": clean(route.target),
                "share": percent(route.share),
                "could_match": percent(could_match(route)),
            }
            for route in prediction.rules
        ],
        "pools": [
            {
                "name": clean(pool.pool),
                "method": str(pool.method),
                "share": percent(pool.share_of_total),
                "servers": f"{sum(1 for s in pool.servers if s.eligible)}/{len(pool.servers)}",
                "max_over_mean": _ratio(pool.max_over_mean),
            }
            for pool in prediction.pools
        ],
        "diagnostics": [
            {
                "where": _where(item.location),
                "severity": str(item.severity),
                "message": clean(item.message),
            }
            for item in report.lb.diagnostics
        ],
        "assumptions": [clean(text) for text in prediction.assumptions],
        "version": __version__,
    }


def _ratio(value: float | None) -> str:
    return "-" if value is None else f"{value:.2f}"


def _where(location: Location) -> str:
    return clean(str(location)) if location.file else "-"


def _finding(
    finding: Finding, rule: Rule | None, report: CheckReport, sources: SourceLines
) -> dict[str, Any]:
    quoted = []
    for location in finding.locations[:8]:
        text = sources.line(location)
        if text is not None:
            quoted.append(f"{location.line:>5} | {clean(text.strip())}")
    return {
        "rule_id": finding.rule_id,
        "rule_name": rule.name if rule is not None else "",
        "where": _where(finding.location),
        "line": finding.location.line,
        "reason": clean(finding.reason),
        "quoted": quoted,
        "fix": rule.fix_hint_for(report.lb.product) if rule is not None else "",
    }


def share_chart(pools: Sequence[PoolShare], route_level_known: bool, limit: int) -> dict[str, Any]:
    """Lay out one horizontal bar per server with a tick at its weight share.

    A bar is the server's share of all requests when the route level is known, else its
    share of its pool. Shares of all requests also get a dashed line at the mean per
    eligible server.
    """
    rows = []
    for pool in pools:
        for server in pool.servers:
            if route_level_known and pool.share_of_total is not None:
                value = server.share_of_total or 0.0
                fair = server.fair_share * pool.share_of_total
            else:
                value = server.share_of_pool
                fair = server.fair_share
            rows.append((clean(server.key), value, fair, server.eligible))

    eligible = [value for _, value, _, usable in rows if usable]
    mean = sum(eligible) / len(eligible) if route_level_known and eligible else None

    shown = rows
    if limit > 0 and len(rows) > limit * 4:
        ranked = sorted(range(len(rows)), key=lambda i: -rows[i][1])[: limit * 4]
        shown = [rows[i] for i in sorted(ranked)]
    values = [value for _, value, _, _ in shown] + [fair for _, _, fair, _ in shown]
    scale = max([*values, mean or 0.0, 1e-9])

    bars = []
    for position, (key, value, fair, _usable) in enumerate(shown):
        over = (fair > 0 and value > OVER_FAIR * fair) or (
            mean is not None and value > OVER_MEAN * mean
        )
        bars.append(
            Bar(
                key=key,
                value=round(value, 6),
                label=percent(value),
                fair_label=percent(fair),
                y=BAR_GAP + position * (BAR_HEIGHT + BAR_GAP),
                width=round(PLOT_WIDTH * value / scale, 2),
                fair_x=round(LABEL_WIDTH + PLOT_WIDTH * fair / scale, 2) if fair > 0 else None,
                color=OVER_COLOR if over else BAR_COLOR,
            )
        )
    if route_level_known:
        caption = (
            "Share of all requests. The black tick marks the share the server's weight gives "
            "it within its pool; the dashed line is the mean per eligible server. Red bars "
            f"exceed {OVER_FAIR:g} times their weight share or {OVER_MEAN:g} times the mean."
        )
    else:
        caption = (
            "Share of its pool's requests (no traffic profile). The black tick marks the "
            f"weight share; red bars exceed it {OVER_FAIR:g} times."
        )
    height = BAR_GAP + len(bars) * (BAR_HEIGHT + BAR_GAP)
    return {
        "bars": bars,
        "caption": caption,
        "width": LABEL_WIDTH + PLOT_WIDTH + VALUE_WIDTH,
        "height": height,
        "label_width": LABEL_WIDTH,
        "bar_height": BAR_HEIGHT,
        "mean_x": round(LABEL_WIDTH + PLOT_WIDTH * mean / scale, 2) if mean else None,
        "mean_label": percent(mean) if mean else "",
        "hidden": len(rows) - len(shown),
    }
