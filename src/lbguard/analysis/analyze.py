"""One log analysis: aggregates, timeline, change points, regions and a diagnosis."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from lbguard.analysis.aggregates import (
    ERROR_CONDITION,
    POOL_KEY,
    SERVER_KEY,
    STATS_COLUMNS,
    STATS_WIDTH,
    build_timeline,
    overall_stats,
    pool_stats,
    stats_from_row,
)
from lbguard.analysis.onset import OnsetOptions, OnsetResult, detect_changes, span_totals
from lbguard.analysis.regions import (
    CLIENT_REGIONS,
    UNKNOWN_REGION,
    RegionMap,
    assign_regions,
)
from lbguard.analysis.result import (
    Change,
    Diagnosis,
    LogAnalysis,
    RegionStats,
    Timeline,
)
from lbguard.analysis.windows import choose_window
from lbguard.logs import FileStats

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class AnalysisOptions:
    """Settings of one analysis."""

    window: timedelta | None = None
    """Window width; None picks one from the log's time span."""

    onset: OnsetOptions = field(default_factory=OnsetOptions)
    timeline: bool = True
    """False skips the timeline and change points (per-server statistics only)."""


def analyse(
    con: Any,
    *,
    table: str = "requests",
    files: tuple[FileStats, ...] = (),
    region_map: RegionMap | None = None,
    options: AnalysisOptions | None = None,
) -> LogAnalysis:
    """Analyse the requests in ``table`` on the DuckDB connection ``con``."""
    options = options or AnalysisOptions()
    stats, first, last = overall_stats(con, table)
    pools = pool_stats(con, table) if stats.requests else ()

    timeline = None
    segments: tuple[Any, ...] = ()
    changes: tuple[Change, ...] = ()
    result: OnsetResult | None = None
    baseline_span: tuple[datetime, datetime] | None = None
    if options.timeline and first is not None and last is not None:
        width = options.window or choose_window(last - first)
        timeline = build_timeline(con, width, first, table)
        result = detect_changes(timeline, options.onset)
        segments, changes = result.segments, result.changes
        if segments:
            base = segments[result.baseline]
            baseline_span = (base.start, base.end)

    onset = next((c for c in changes if c.kind == "onset"), None)
    incident_span = _incident_span(changes, onset)
    regions: tuple[RegionStats, ...] = ()
    if region_map is not None and stats.requests:
        assign_regions(con, region_map, table)
        regions = region_stats(
            con,
            table,
            total=stats.requests,
            baseline=baseline_span if onset else None,
            incident=incident_span,
            risen=tuple(s.key for s in onset.risen) if onset else (),
        )

    return LogAnalysis(
        files=files,
        first=first,
        last=last,
        stats=stats,
        pools=pools,
        timeline=timeline,
        segments=segments,
        changes=changes,
        regions=regions,
        region_source=region_map.path if region_map else None,
        diagnosis=diagnose(timeline, result, regions, options.onset),
        diagnostics=region_map.diagnostics if region_map else (),
    )


def _incident_span(
    changes: tuple[Change, ...], onset: Change | None
) -> tuple[datetime, datetime | None] | None:
    """Return (onset, recovery or None) for the first onset."""
    if onset is None:
        return None
    later = [c for c in changes if c.kind == "recovery" and c.at > onset.at]
    return onset.at, later[0].at if later else None


def _span_condition(span: tuple[datetime, datetime | None] | None) -> str:
    if span is None:
        return "FALSE"
    start, end = span
    condition = f"ts >= TIMESTAMPTZ '{start.isoformat()}'"
    if end is not None:
        condition += f" AND ts < TIMESTAMPTZ '{end.isoformat()}'"
    return condition


def region_stats(
    con: Any,
    table: str,
    *,
    total: int,
    baseline: tuple[datetime, datetime] | None,
    incident: tuple[datetime, datetime | None] | None,
    risen: tuple[str, ...],
) -> tuple[RegionStats, ...]:
    """Return statistics per client region, most requests first."""
    join = (
        f"{table} q LEFT JOIN {CLIENT_REGIONS} r "
        "ON q.forwarded_for IS NOT DISTINCT FROM r.forwarded_for "
        "AND q.client_ip IS NOT DISTINCT FROM r.client_ip"
    )
    region = f"coalesce(r.region, '{UNKNOWN_REGION}')"
    in_base = _span_condition(baseline)
    in_incident = _span_condition(incident)
    risen_list = ", ".join("'" + key.replace("'", "''") + "'" for key in risen) or "NULL"
    key = f"{POOL_KEY} || '/' || {SERVER_KEY}"

    rows = con.execute(
        f"""
        SELECT {region} AS region, {STATS_COLUMNS},
            count(*) FILTER (WHERE {in_base}) AS base_n,
            count(*) FILTER (WHERE {in_base} AND {ERROR_CONDITION}) AS base_errors,
            count(*) FILTER (WHERE {in_incident}) AS incident_n,
            count(*) FILTER (WHERE {in_incident} AND {ERROR_CONDITION}) AS incident_errors,
            count(*) FILTER (WHERE {in_incident} AND {key} IN ({risen_list})) AS on_risen
        FROM {join} GROUP BY ALL
        """
    ).fetchall()
    top_rows = con.execute(
        f"""
        SELECT region, arg_max(key, n), max(n) FROM (
            SELECT {region} AS region, {key} AS key, count(*) AS n
            FROM {join} WHERE server IS NOT NULL GROUP BY ALL
        ) GROUP BY region
        """
    ).fetchall()
    tops = {row[0]: (row[1], int(row[2])) for row in top_rows}

    result: list[RegionStats] = []
    for row in rows:
        name = row[0]
        stats = stats_from_row(row[1 : 1 + STATS_WIDTH])
        base_n, base_errors, incident_n, incident_errors, on_risen = (
            int(v) for v in row[1 + STATS_WIDTH :]
        )
        top_key, top_count = tops.get(name, (None, 0))
        result.append(
            RegionStats(
                region=name,
                stats=stats,
                share_of_total=stats.requests / total,
                error_rate_baseline=base_errors / base_n if base_n else None,
                error_rate_incident=incident_errors / incident_n if incident_n else None,
                incident_requests=incident_n,
                incident_share_on_risen=on_risen / incident_n if incident_n and risen else None,
                top_server=top_key,
                top_server_share=top_count / stats.requests if stats.requests else 0.0,
            )
        )
    result.sort(key=lambda r: (-r.stats.requests, r.region))
    return tuple(result)


AFFECTED_RATIO = 1.5
"""A region is affected when its incident error rate reaches this many times the error
rate of all regions together over the same span."""


def affected_regions(regions: tuple[RegionStats, ...], min_rise: float) -> tuple[str, ...]:
    """Return the regions where the incident's errors concentrate, most excess errors
    (rise times the region's incident requests) first. When no region exceeds that ratio, every
    region whose error rate rose by ``min_rise`` is affected."""
    known = [
        r for r in regions if r.region != UNKNOWN_REGION and r.error_rate_incident is not None
    ]
    requests = sum(r.incident_requests for r in known)
    if not requests:
        return ()
    errors = sum((r.error_rate_incident or 0.0) * r.incident_requests for r in known)
    overall = errors / requests

    def rise(region: RegionStats) -> float:
        return (region.error_rate_incident or 0.0) - (region.error_rate_baseline or 0.0)

    risen = [r for r in known if rise(r) >= min_rise]
    standing_out = [r for r in risen if (r.error_rate_incident or 0.0) >= AFFECTED_RATIO * overall]
    chosen = standing_out or risen
    chosen.sort(key=lambda r: (-rise(r) * r.incident_requests, r.region))
    return tuple(r.region for r in chosen)


def diagnose(
    timeline: Timeline | None,
    result: OnsetResult | None,
    regions: tuple[RegionStats, ...],
    options: OnsetOptions,
) -> Diagnosis:
    """Tell a concentration on some servers apart from a shared dependency."""
    onset = next((c for c in result.changes if c.kind == "onset"), None) if result else None
    if timeline is None or result is None or onset is None:
        return Diagnosis(
            pattern="none",
            summary="no onset: the distribution over servers and the error rate stayed "
            "near the baseline",
            overloaded=(),
            affected_regions=(),
        )

    recovery = next(
        (c for c in result.changes if c.kind == "recovery" and c.window > onset.window), None
    )
    last = recovery.window - 1 if recovery else len(timeline) - 1
    during = span_totals(timeline, onset.window, last)
    segment = result.segments[result.baseline]
    before = span_totals(timeline, segment.first, segment.last)
    columns = [timeline.server_keys.index(s.key) for s in onset.risen]
    share_before = float(before.shares[columns].sum()) if columns else None
    share_during = float(during.shares[columns].sum()) if columns else None

    until = f"until {recovery.at:%H:%M:%S}" if recovery else "until the end of the log"
    errors = (
        f"error rate {before.error_rate:.1%} before, {during.error_rate:.1%} during; "
        f"skew (max/mean over servers) {before.skew:.2f} before, {during.skew:.2f} during"
    )
    if onset.risen:
        names = ", ".join(s.key for s in onset.risen)
        pattern = "concentration"
        summary = (
            f"from {onset.at:%Y-%m-%d %H:%M:%S} UTC {until}, {len(onset.risen)} server(s) "
            f"({names}) took {share_during:.1%} of requests, against {share_before:.1%} "
            f"before; {errors}"
        )
    else:
        pattern = "shared-dependency"
        summary = (
            f"from {onset.at:%Y-%m-%d %H:%M:%S} UTC {until} the error rate rose without "
            f"any server taking a larger share ({errors}): look for a cause every server "
            "shares, such as a database or the network"
        )

    return Diagnosis(
        pattern=pattern,
        summary=summary,
        overloaded=tuple(s.key for s in onset.risen),
        affected_regions=affected_regions(regions, options.min_error_rise),
        started=onset.at,
        ended=recovery.at if recovery else None,
        error_rate_baseline=before.error_rate,
        error_rate_incident=during.error_rate,
        share_baseline=share_before,
        share_incident=share_during,
    )
