"""Terminal renderer of a log analysis (``lbguard logs``), built on rich.

Every string that comes from a log (pool and server names, regions, malformed lines)
passes through `clean` and is placed as plain `Text`, so it can neither move the cursor
nor inject rich markup.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Sequence
from datetime import datetime
from typing import TextIO

import numpy as np
from rich.console import Group
from rich.table import Table
from rich.text import Text

from lbguard.analysis.result import (
    Change,
    ChangeKind,
    GroupStats,
    LogAnalysis,
    PoolStats,
    RegionStats,
    ServerStats,
    Timeline,
)
from lbguard.analysis.windows import format_window
from lbguard.report.interface import RenderOptions, clean, clean_message
from lbguard.report.text import make_console, percent

SPARK = "▁▂▃▄▅▆▇█"

CHANGE_STYLES = {
    ChangeKind.ONSET: "bold red",
    ChangeKind.RECOVERY: "bold green",
    ChangeKind.CHANGE: "yellow",
}


def render_logs_text(analysis: LogAnalysis, stream: TextIO, options: RenderOptions) -> None:
    """Write the analysis for a reader at a terminal or in a text file."""
    console = make_console(stream, options)
    console.print(_header(analysis))
    console.print(_diagnosis(analysis))
    console.print(_pools(analysis.pools, options.limit))
    console.print(_servers(analysis.pools, options.limit))
    if analysis.timeline is not None:
        console.print(_timeline(analysis, analysis.timeline))
    if analysis.region_source is not None:
        console.print(_regions(analysis.regions, analysis.region_source, options.limit))
    console.print(_malformed(analysis))
    if analysis.diagnostics:
        console.print(_heading("Input problems"))
        for diagnostic in analysis.diagnostics:
            console.print(Text(clean_message(str(diagnostic))))


def count(number: int, noun: str) -> str:
    """``1 request``, ``2 requests``: the number with thousands separators and the noun in
    the matching form (nouns here take a plain ``s``)."""
    return f"{number:,} {noun}" if number == 1 else f"{number:,} {noun}s"


def clock(value: datetime) -> str:
    """Format a UTC time as ``YYYY-MM-DD HH:MM:SS``."""
    return f"{value:%Y-%m-%d %H:%M:%S}"


def segment_clock(analysis: LogAnalysis) -> Callable[[datetime], str]:
    """Return the format of segment bounds: the time of day when every segment lies in
    one day, the full date and time otherwise."""
    segments = analysis.segments
    if segments and segments[0].start.date() != segments[-1].end.date():
        return clock
    return lambda value: f"{value:%H:%M:%S}"


def ms(value: float | None) -> str:
    if value is None or np.isnan(value):
        return "-"
    return f"{value:,.0f}" if value >= 100 else f"{value:.1f}"


def _ratio(value: float | None) -> str:
    return "-" if value is None else f"{value:.2f}"


def _heading(title: str) -> Text:
    return Text(f"\n{title}", style="bold")


def _more(hidden: int, what: str) -> Text:
    return Text(
        f"... {hidden:,} more {what}; --limit 0 shows all, --format json lists every one.",
        style="dim",
    )


def _header(analysis: LogAnalysis) -> Group:
    lines = [Text("lbguard logs", style="bold")]
    for stats in analysis.files:
        lines.append(
            Text(
                f"{clean(stats.file)}: {stats.log_format}, {count(stats.parsed, 'request')} "
                f"from {count(stats.lines, 'line')}, {stats.malformed:,} malformed, "
                f"{stats.skipped:,} skipped"
            )
        )
    if analysis.first is not None and analysis.last is not None:
        width = (
            f", window {format_window(analysis.timeline.width)}"
            if analysis.timeline is not None
            else ""
        )
        lines.append(
            Text(f"time range {clock(analysis.first)} to {clock(analysis.last)} UTC{width}")
        )
    total = analysis.stats
    lines.append(
        Text(
            f"{count(total.requests, 'request')}, error rate {percent(total.error_rate)} "
            f"({total.status_5xx:,} 5xx, {total.lb_errors:,} answered by the load balancer, "
            f"{total.status_4xx:,} 4xx), p90 {ms(total.total_ms.p90)} ms"
        )
    )
    return Group(*lines)


def _diagnosis(analysis: LogAnalysis) -> Group:
    diagnosis = analysis.diagnosis
    style = "bold red" if diagnosis.pattern != "none" else "green"
    parts = [_heading("Diagnosis"), Text(clean(diagnosis.summary), style=style)]
    if diagnosis.overloaded:
        names = ", ".join(clean(key) for key in diagnosis.overloaded)
        parts.append(Text(f"overloaded servers: {names}"))
    if diagnosis.affected_regions:
        names = ", ".join(clean(name) for name in diagnosis.affected_regions)
        parts.append(Text(f"affected regions: {names}"))
    return Group(*parts)


def _stats_cells(stats: GroupStats) -> list[str]:
    return [
        f"{stats.requests:,}",
        percent(stats.error_rate),
        f"{stats.status_5xx:,}",
        f"{stats.lb_errors:,}",
        ms(stats.total_ms.p50),
        ms(stats.total_ms.p90),
        ms(stats.total_ms.p99),
        ms(stats.response_ms.p90),
    ]


_STATS_HEADERS = ("requests", "errors", "5xx", "LB", "p50", "p90", "p99", "Tr p90")

_LATENCY_CAPTION = (
    "errors: 5xx or answered by the load balancer, each request once; LB: answered by the "
    "load balancer; p50/p90/p99: whole request time in ms; Tr p90: server response time in ms"
)


def _pools(pools: Sequence[PoolStats], limit: int) -> Group:
    table = Table(caption=_LATENCY_CAPTION, caption_justify="left")
    table.add_column("pool", overflow="fold", min_width=12)
    table.add_column("share", justify="right")
    for column in (*_STATS_HEADERS, "max/mean", "CV"):
        table.add_column(column, justify="right")

    shown = pools if limit <= 0 else pools[:limit]
    for pool in shown:
        table.add_row(
            Text(clean(pool.pool)),
            percent(pool.share_of_total),
            *_stats_cells(pool.stats),
            _ratio(pool.max_over_mean),
            _ratio(pool.coefficient_of_variation),
        )

    parts: list[Text | Table] = [_heading("Pools: observed share, errors and latency")]
    parts.append(table if pools else Text("no requests", style="dim"))
    if len(shown) < len(pools):
        parts.append(_more(len(pools) - len(shown), "pools"))
    return Group(*parts)


def _servers(pools: Sequence[PoolStats], limit: int) -> Group:
    table = Table(caption=_LATENCY_CAPTION, caption_justify="left")
    table.add_column("pool/server", overflow="fold", min_width=20)
    table.add_column("of pool", justify="right")
    table.add_column("of all", justify="right")
    for column in _STATS_HEADERS:
        table.add_column(column, justify="right")

    servers: list[ServerStats] = [server for pool in pools for server in pool.servers]
    shown = servers
    if 0 < limit < len(servers):
        ranked = sorted(servers, key=lambda s: -s.stats.requests)[:limit]
        keep = {id(s) for s in ranked}
        shown = [s for s in servers if id(s) in keep]
    for server in shown:
        table.add_row(
            Text(clean(server.key)),
            percent(server.share_of_pool),
            percent(server.share_of_total),
            *_stats_cells(server.stats),
        )

    parts: list[Text | Table] = [
        _heading("Servers: load, errors and latency side by side"),
        Text("<none>: requests the load balancer answered without a server", style="dim"),
    ]
    parts.append(table if servers else Text("no requests", style="dim"))
    if len(shown) < len(servers):
        parts.append(_more(len(servers) - len(shown), "servers"))
    return Group(*parts)


def sparkline(values: np.ndarray, width: int = 60) -> str:
    """Draw values as block characters, averaging neighbours down to ``width`` columns;
    a blank stands for a window without data."""
    if values.size == 0:
        return ""
    if values.size > width:
        edges = np.linspace(0, values.size, width + 1).astype(int)
        values = np.array(
            [
                np.nanmean(values[a:b]) if np.any(~np.isnan(values[a:b])) else np.nan
                for a, b in itertools.pairwise(edges)
            ]
        )
    finite = values[~np.isnan(values)]
    if finite.size == 0:
        return " " * values.size
    low, high = float(finite.min()), float(finite.max())
    span = high - low or 1.0
    return "".join(
        " " if np.isnan(v) else SPARK[round((v - low) / span * (len(SPARK) - 1))] for v in values
    )


def _peak(values: np.ndarray, fmt: Callable[[float], str]) -> str:
    finite = values[~np.isnan(values)]
    return f"max {fmt(float(finite.max()))}" if finite.size else ""


def _timeline(analysis: LogAnalysis, timeline: Timeline) -> Group:
    seconds = timeline.width.total_seconds()
    parts: list[Text | Table] = [
        _heading(
            f"Timeline: {count(len(timeline), 'window')} of {format_window(timeline.width)} from "
            f"{clock(timeline.starts[0])} UTC"
        )
    ]
    rate = (timeline.requests / seconds).astype(np.float64)
    series = (
        ("requests/s", rate, _peak(rate, lambda v: f"{v:,.1f}")),
        ("error rate", timeline.error_rate, _peak(timeline.error_rate, percent)),
        ("skew", timeline.skew, _peak(timeline.skew, lambda v: f"{v:.2f}")),
        ("p90 ms", timeline.total_p90, _peak(timeline.total_p90, ms)),
    )
    for label, values, note in series:
        parts.append(Text(f"{label:>11} {sparkline(values)} {note}"))

    table = Table()
    for column in ("from", "to", "windows"):
        table.add_column(column)
    for column in ("requests", "req/s", "errors", "skew", "p90 ms"):
        table.add_column(column, justify="right")
    table.add_column("busiest servers", overflow="fold")
    when = segment_clock(analysis)
    for segment in analysis.segments:
        duration = (segment.end - segment.start).total_seconds()
        busiest = ", ".join(f"{clean(key)} {percent(share)}" for key, share in segment.top_servers)
        table.add_row(
            when(segment.start),
            when(segment.end),
            str(segment.last - segment.first + 1),
            f"{segment.requests:,}",
            f"{segment.requests / duration:,.1f}" if duration else "-",
            percent(segment.error_rate),
            f"{segment.skew:.2f}",
            ms(segment.p90_ms),
            Text(busiest),
        )
    parts.append(Text("Segments with a stable distribution (change points between them):"))
    parts.append(table)

    for change in analysis.changes:
        parts.extend(_change(change))
    if not analysis.changes:
        parts.append(Text("no change point: one stable distribution over the whole range"))
    return Group(*parts)


def _change(change: Change) -> list[Text]:
    lines = [
        Text(
            f"{change.kind.upper()} at {clock(change.at)} UTC (window {change.window}): "
            f"{percent(change.magnitude)} of traffic moved, error rate "
            f"{percent(change.error_rate_before)} -> {percent(change.error_rate_after)}, "
            f"skew {change.skew_before:.2f} -> {change.skew_after:.2f}, p90 "
            f"{ms(change.p90_before)} -> {ms(change.p90_after)} ms",
            style=CHANGE_STYLES[change.kind],
        )
    ]
    for label, shifts in (("share rose", change.risen), ("share fell", change.fallen)):
        if shifts:
            text = ", ".join(
                f"{clean(s.key)} {percent(s.share_before)} -> {percent(s.share_after)}"
                for s in shifts
            )
            lines.append(Text(f"  {label}: {text}"))
    return lines


def _regions(regions: Sequence[RegionStats], source: str, limit: int) -> Group:
    table = Table()
    table.add_column("region", overflow="fold")
    for column in (
        "requests",
        "share",
        "errors",
        "p90 ms",
        "errors before",
        "errors during",
        "on risen servers",
    ):
        table.add_column(column, justify="right")
    table.add_column("busiest server", overflow="fold")

    shown = regions if limit <= 0 else regions[:limit]
    for region in shown:
        table.add_row(
            Text(clean(region.region)),
            f"{region.stats.requests:,}",
            percent(region.share_of_total),
            percent(region.stats.error_rate),
            ms(region.stats.total_ms.p90),
            percent(region.error_rate_baseline),
            percent(region.error_rate_incident),
            percent(region.incident_share_on_risen),
            Text(
                f"{clean(region.top_server)} {percent(region.top_server_share)}"
                if region.top_server
                else "-"
            ),
        )
    parts: list[Text | Table] = [
        _heading(f"Regions (from {clean(source)}): errors before and during the incident"),
        table,
    ]
    if len(shown) < len(regions):
        parts.append(_more(len(regions) - len(shown), "regions"))
    return Group(*parts)


def _malformed(analysis: LogAnalysis) -> Group:
    total = sum(stats.malformed for stats in analysis.files)
    parts: list[Text] = [_heading(f"Malformed lines: {total:,}")]
    for stats in analysis.files:
        if not stats.malformed:
            continue
        lines = count(stats.lines, "line")
        parts.append(Text(f"{clean(stats.file)}: {stats.malformed:,} of {lines}"))
        for sample in stats.samples:
            parts.append(
                Text(
                    f"  {clean(sample.file)}:{sample.line}: {clean(sample.reason)}: "
                    f"{clean(sample.text[:160])}"
                )
            )
    return Group(*parts)
