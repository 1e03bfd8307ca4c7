"""JSON renderer of a log analysis (``lbguard logs --format json``), version 1.

Shares and rates are fractions in [0, 1], latencies are milliseconds, times are ISO 8601
in UTC. A value that cannot be computed is ``null``. The timeline lists every window.
"""

from __future__ import annotations

import json
import math
from typing import Any, TextIO

from lbguard import __version__
from lbguard.analysis.result import (
    Change,
    GroupStats,
    LogAnalysis,
    Percentiles,
    PoolStats,
    RegionStats,
    Segment,
    ServerShift,
    Timeline,
)
from lbguard.logs import FileStats
from lbguard.report.interface import RenderOptions

LOGS_SCHEMA_VERSION = 1

JsonObject = dict[str, Any]


def render_logs_json(analysis: LogAnalysis, stream: TextIO, options: RenderOptions) -> None:
    """Write the analysis as one JSON document followed by a newline."""
    json.dump(logs_document(analysis), stream, indent=2, ensure_ascii=False, allow_nan=False)
    stream.write("\n")


def logs_document(analysis: LogAnalysis) -> JsonObject:
    """Return the analysis as JSON-compatible data."""
    return {
        "schema_version": LOGS_SCHEMA_VERSION,
        "tool": {"name": "lbguard", "version": __version__},
        "command": "logs",
        "files": [_file(stats) for stats in analysis.files],
        "first": _time(analysis.first),
        "last": _time(analysis.last),
        "totals": _stats(analysis.stats),
        "pools": [_pool(pool) for pool in analysis.pools],
        "timeline": _timeline(analysis.timeline) if analysis.timeline else None,
        "segments": [_segment(segment) for segment in analysis.segments],
        "changes": [_change(change) for change in analysis.changes],
        "regions": {
            "source": analysis.region_source,
            "rows": [_region(region) for region in analysis.regions],
        },
        "diagnosis": {
            "pattern": analysis.diagnosis.pattern,
            "summary": analysis.diagnosis.summary,
            "overloaded": list(analysis.diagnosis.overloaded),
            "affected_regions": list(analysis.diagnosis.affected_regions),
        },
        "diagnostics": [
            {
                "severity": str(d.severity),
                "message": d.message,
                "file": d.location.file,
                "line": d.location.line,
                "hint": d.hint,
            }
            for d in analysis.diagnostics
        ],
    }


def number(value: float | None) -> float | None:
    """Return a finite float, or None for missing and NaN values."""
    if value is None or math.isnan(value):
        return None
    return float(value)


def _time(value: Any) -> str | None:
    return value.isoformat() if value is not None else None


def _file(stats: FileStats) -> JsonObject:
    return {
        "file": stats.file,
        "log_format": stats.log_format,
        "detected": stats.detected,
        "lines": stats.lines,
        "parsed": stats.parsed,
        "malformed": stats.malformed,
        "skipped": stats.skipped,
        "samples": [
            {"file": s.file, "line": s.line, "reason": s.reason, "text": s.text}
            for s in stats.samples
        ],
    }


def _percentiles(values: Percentiles) -> JsonObject:
    return {"p50": values.p50, "p90": values.p90, "p99": values.p99}


def _stats(stats: GroupStats) -> JsonObject:
    return {
        "requests": stats.requests,
        "status_4xx": stats.status_4xx,
        "status_5xx": stats.status_5xx,
        "lb_errors": stats.lb_errors,
        "errors": stats.errors,
        "error_rate": stats.error_rate,
        "time_total_ms": _percentiles(stats.total_ms),
        "time_response_ms": _percentiles(stats.response_ms),
    }


def _pool(pool: PoolStats) -> JsonObject:
    return {
        "pool": pool.pool,
        "share_of_total": pool.share_of_total,
        "max_over_mean": number(pool.max_over_mean),
        "coefficient_of_variation": number(pool.coefficient_of_variation),
        "stats": _stats(pool.stats),
        "servers": [
            {
                "server": server.server,
                "share_of_pool": server.share_of_pool,
                "share_of_total": server.share_of_total,
                "stats": _stats(server.stats),
            }
            for server in pool.servers
        ],
    }


def _timeline(timeline: Timeline) -> JsonObject:
    windows = []
    for i, start in enumerate(timeline.starts):
        servers = {
            key: int(timeline.server_counts[i, j])
            for j, key in enumerate(timeline.server_keys)
            if timeline.server_counts[i, j]
        }
        windows.append(
            {
                "start": start.isoformat(),
                "requests": int(timeline.requests[i]),
                "errors": int(timeline.errors[i]),
                "error_rate": number(float(timeline.error_rate[i])),
                "status_4xx": int(timeline.status_4xx[i]),
                "status_5xx": int(timeline.status_5xx[i]),
                "lb_errors": int(timeline.lb_errors[i]),
                "time_total_ms": {
                    "p50": number(float(timeline.total_p50[i])),
                    "p90": number(float(timeline.total_p90[i])),
                    "p99": number(float(timeline.total_p99[i])),
                },
                "skew": number(float(timeline.skew[i])),
                "pool_skew": {
                    pool: number(float(timeline.pool_skew[i, p]))
                    for p, pool in enumerate(timeline.pool_names)
                },
                "servers": servers,
            }
        )
    return {"window_seconds": timeline.width.total_seconds(), "windows": windows}


def _segment(segment: Segment) -> JsonObject:
    return {
        "first_window": segment.first,
        "last_window": segment.last,
        "start": segment.start.isoformat(),
        "end": segment.end.isoformat(),
        "requests": segment.requests,
        "error_rate": segment.error_rate,
        "skew": segment.skew,
        "p90_ms": segment.p90_ms,
        "top_servers": [{"server": key, "share": share} for key, share in segment.top_servers],
    }


def _shift(shift: ServerShift) -> JsonObject:
    return {
        "server": shift.key,
        "share_before": shift.share_before,
        "share_after": shift.share_after,
        "error_rate_before": shift.error_rate_before,
        "error_rate_after": shift.error_rate_after,
    }


def _change(change: Change) -> JsonObject:
    return {
        "kind": str(change.kind),
        "window": change.window,
        "at": change.at.isoformat(),
        "magnitude": change.magnitude,
        "skew_before": change.skew_before,
        "skew_after": change.skew_after,
        "error_rate_before": change.error_rate_before,
        "error_rate_after": change.error_rate_after,
        "p90_before_ms": change.p90_before,
        "p90_after_ms": change.p90_after,
        "risen": [_shift(s) for s in change.risen],
        "fallen": [_shift(s) for s in change.fallen],
    }


def _region(region: RegionStats) -> JsonObject:
    return {
        "region": region.region,
        "share_of_total": region.share_of_total,
        "stats": _stats(region.stats),
        "error_rate_baseline": region.error_rate_baseline,
        "error_rate_incident": region.error_rate_incident,
        "incident_share_on_risen": region.incident_share_on_risen,
        "top_server": region.top_server,
        "top_server_share": region.top_server_share,
    }
