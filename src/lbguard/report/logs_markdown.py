"""Markdown renderer of a log analysis, for incident tickets and postmortem drafts.

Log-derived text is escaped for Markdown table cells (``|``, backticks, line breaks) and
stripped of control characters.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TextIO

from lbguard.analysis.result import LogAnalysis
from lbguard.analysis.windows import format_window
from lbguard.report.interface import RenderOptions, clean
from lbguard.report.logs_text import clock, count, ms, segment_clock
from lbguard.report.text import percent


def escape(text: str) -> str:
    """Make log-derived text safe inside a Markdown table cell."""
    cleaned = clean(text).replace("\\", "\\\\")
    for char in "|`*_[]<>":
        cleaned = cleaned.replace(char, "\\" + char)
    return cleaned


def _table(headers: Sequence[str], rows: Sequence[Sequence[str]]) -> list[str]:
    aligned = ["---" if i == 0 else "---:" for i in range(len(headers))]
    lines = ["| " + " | ".join(headers) + " |", "| " + " | ".join(aligned) + " |"]
    lines.extend("| " + " | ".join(row) + " |" for row in rows)
    return lines


def render_logs_markdown(analysis: LogAnalysis, stream: TextIO, options: RenderOptions) -> None:
    """Write the analysis as a Markdown document."""
    lines = ["# lbguard logs", ""]
    for stats in analysis.files:
        lines.append(
            f"- `{clean(stats.file).replace('`', '')}`: {stats.log_format}, "
            f"{count(stats.parsed, 'request')}, {count(stats.malformed, 'malformed line')}"
        )
    if analysis.first and analysis.last:
        lines.append(f"- time range {clock(analysis.first)} to {clock(analysis.last)} UTC")
    total = analysis.stats
    lines.append(
        f"- {count(total.requests, 'request')}, error rate {percent(total.error_rate)}, "
        f"p90 {ms(total.total_ms.p90)} ms"
    )

    diagnosis = analysis.diagnosis
    lines += ["", "## Diagnosis", "", escape(diagnosis.summary), ""]
    if diagnosis.overloaded:
        lines.append("Overloaded servers: " + ", ".join(escape(k) for k in diagnosis.overloaded))
    if diagnosis.affected_regions:
        lines.append(
            "Affected regions: " + ", ".join(escape(r) for r in diagnosis.affected_regions)
        )

    limit = options.limit if options.limit > 0 else None
    lines += ["", "## Servers", ""]
    server_rows = [
        [
            escape(server.key),
            f"{server.stats.requests:,}",
            percent(server.share_of_pool),
            percent(server.share_of_total),
            percent(server.stats.error_rate),
            ms(server.stats.total_ms.p90),
        ]
        for pool in analysis.pools
        for server in pool.servers
    ][:limit]
    lines += _table(
        ("pool/server", "requests", "of pool", "of all", "errors", "p90 ms"), server_rows
    )

    if analysis.timeline is not None:
        lines += ["", f"## Timeline (window {format_window(analysis.timeline.width)})", ""]
        when = segment_clock(analysis)
        segment_rows = [
            [
                f"{when(s.start)}–{when(s.end)}",
                f"{s.requests:,}",
                percent(s.error_rate),
                f"{s.skew:.2f}",
                ms(s.p90_ms),
                ", ".join(f"{escape(k)} {percent(v)}" for k, v in s.top_servers),
            ]
            for s in analysis.segments
        ]
        lines += _table(
            ("segment", "requests", "errors", "skew", "p90 ms", "busiest servers"), segment_rows
        )
        lines.append("")
        for change in analysis.changes:
            risen = ", ".join(
                f"{escape(s.key)} {percent(s.share_before)} → {percent(s.share_after)}"
                for s in change.risen
            )
            lines.append(
                f"- **{change.kind}** at {clock(change.at)} UTC: error rate "
                f"{percent(change.error_rate_before)} → {percent(change.error_rate_after)}"
                + (f"; share rose: {risen}" if risen else "")
            )

    if analysis.region_source is not None:
        lines += ["", "## Regions", ""]
        region_rows = [
            [
                escape(r.region),
                f"{r.stats.requests:,}",
                percent(r.stats.error_rate),
                percent(r.error_rate_baseline),
                percent(r.error_rate_incident),
            ]
            for r in analysis.regions
        ][:limit]
        lines += _table(
            ("region", "requests", "errors", "errors before", "errors during"), region_rows
        )

    malformed = [(stats, sample) for stats in analysis.files for sample in stats.samples]
    lines += ["", f"## Malformed lines: {sum(s.malformed for s in analysis.files):,}", ""]
    for _stats, sample in malformed:
        lines.append(
            f"- {escape(sample.file)}:{sample.line}: {escape(sample.reason)}: "
            f"{escape(sample.text[:160])}"
        )
    stream.write("\n".join(lines) + "\n")
