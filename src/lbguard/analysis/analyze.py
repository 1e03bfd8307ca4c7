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
from lbguard.analysis.onset import OnsetOptions, detect_changes
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
        diagnosis=diagnose(changes, regions, options.onset),
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
                incident_share_on_risen=on_risen / incident_n if incident_n and risen else None,
                top_server=top_key,
                top_server_share=top_count / stats.requests if stats.requests else 0.0,
            )
        )
    result.sort(key=lambda r: (-r.stats.requests, r.region))
    return tuple(result)


AFFECTED_FRACTION = 0.2
"""A region is affected when its excess errors reach this fraction of the worst region's."""


def affected_regions(regions: tuple[RegionStats, ...], min_rise: float) -> tuple[str, ...]:
    """Return regions whose error rate rose by at least ``min_rise`` during the incident,
    ranked by excess errors (rise times the region's incident requests)."""
    scored: list[tuple[float, str]] = []
    for region in regions:
        if region.region == UNKNOWN_REGION:
            continue
        if region.error_rate_incident is None:
            continue
        rise = region.error_rate_incident - (region.error_rate_baseline or 0.0)
        if rise >= min_rise:
            scored.append((rise * region.stats.requests, region.region))
    scored.sort(reverse=True)
    if not scored:
        return ()
    # Regions with a small fraction of the worst region's excess errors are noise or
    # spill-over, not where the incident concentrates.
    floor = AFFECTED_FRACTION * scored[0][0]
    return tuple(name for excess, name in scored if excess >= floor)


def diagnose(
    changes: tuple[Change, ...], regions: tuple[RegionStats, ...], options: OnsetOptions
) -> Diagnosis:
    """Tell a concentration on some servers apart from a shared dependency."""
    onset = next((c for c in changes if c.kind == "onset"), None)
    if onset is None:
        return Diagnosis(
            pattern="none",
            summary="no onset: the distribution over servers and the error rate stayed "
            "near the baseline",
            overloaded=(),
            affected_regions=(),
        )

    regions_hit = affected_regions(regions, options.min_error_rise)
    error_text = (
        f"error rate {onset.error_rate_before:.1%} -> {onset.error_rate_after:.1%}, "
        f"skew (max/mean) {onset.skew_before:.2f} -> {onset.skew_after:.2f}"
    )
    if onset.risen:
        names = ", ".join(s.key for s in onset.risen)
        before = sum(s.share_before for s in onset.risen)
        after = sum(s.share_after for s in onset.risen)
        summary = (
            f"from {onset.at:%Y-%m-%d %H:%M:%S} UTC, {len(onset.risen)} server(s) "
            f"({names}) took {after:.1%} of requests, up from {before:.1%}; {error_text}"
        )
        return Diagnosis(
            pattern="concentration",
            summary=summary,
            overloaded=tuple(s.key for s in onset.risen),
            affected_regions=regions_hit,
        )

    return Diagnosis(
        pattern="shared-dependency",
        summary=f"from {onset.at:%Y-%m-%d %H:%M:%S} UTC the error rate rose without any "
        f"server taking a larger share ({error_text}): look for a cause every server "
        "shares, such as a database or the network",
        overloaded=(),
        affected_regions=regions_hit,
    )
