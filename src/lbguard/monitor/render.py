"""Renderers for a configuration diff: plain text, JSON and Markdown."""

from __future__ import annotations

import json
from enum import StrEnum
from typing import Any

from lbguard.monitor.diff import Change, ConfigDiff
from lbguard.monitor.shares import ShareDelta, format_share


class DiffFormat(StrEnum):
    """Output formats of ``lbguard diff`` and ``lbguard history diff``."""

    TEXT = "text"
    JSON = "json"
    MARKDOWN = "markdown"


def render_diff(diff: ConfigDiff, output_format: DiffFormat) -> str:
    if output_format is DiffFormat.JSON:
        return json.dumps(diff_to_json(diff), indent=2) + "\n"
    if output_format is DiffFormat.MARKDOWN:
        return _render_markdown(diff)
    return _render_text(diff)


def impact_text(delta: ShareDelta) -> str:
    """Describe one server's share change: ``be_web/web3: 8.3 % → 83.3 % of be_web``."""
    text = (
        f"{delta.key}: {format_share(delta.before_of_pool)} → "
        f"{format_share(delta.after_of_pool)} of {delta.pool}"
    )
    if delta.before_of_total is not None or delta.after_of_total is not None:
        text += (
            f" ({format_share(delta.before_of_total)} → "
            f"{format_share(delta.after_of_total)} of all traffic)"
        )
    return text


def summary_line(diff: ConfigDiff) -> str:
    if not diff.changed:
        return "no semantic change"
    servers = len(diff.impact)
    return (
        f"{len(diff.changes)} change{'s' if len(diff.changes) != 1 else ''}, "
        f"{servers} server share{'s' if servers != 1 else ''} moved"
    )


def _render_text(diff: ConfigDiff) -> str:
    lines = [summary_line(diff)]
    if diff.traffic:
        lines.append(f"traffic: {diff.traffic}")

    if diff.changes:
        lines.append("")
        lines.append("Changes:")
        for change in diff.changes:
            lines.append(f"  {_location_text(change)}{change.describe()}")

    if diff.impact:
        lines.append("")
        lines.append("Predicted share impact:")
        for delta in diff.impact:
            lines.append(f"  {impact_text(delta)}")
    return "\n".join(lines) + "\n"


def _render_markdown(diff: ConfigDiff) -> str:
    lines = [f"## lbguard diff: {summary_line(diff)}", ""]
    if diff.traffic:
        lines += [f"Traffic: {_cell(diff.traffic)}", ""]

    if diff.changes:
        lines += ["| where | change |", "|---|---|"]
        for change in diff.changes:
            where = str(change.location) if change.location.file else ""
            lines.append(f"| `{_cell(where)}` | {_cell(change.describe())} |")
        lines.append("")

    if diff.impact:
        lines += [
            "| server | share of pool before | after | share of all traffic before | after |",
            "|---|---:|---:|---:|---:|",
        ]
        for delta in diff.impact:
            lines.append(
                f"| `{_cell(delta.key)}` | {format_share(delta.before_of_pool)} "
                f"| {format_share(delta.after_of_pool)} "
                f"| {format_share(delta.before_of_total)} "
                f"| {format_share(delta.after_of_total)} |"
            )
        lines.append("")
    return "\n".join(lines)


def diff_to_json(diff: ConfigDiff) -> dict[str, Any]:
    return {
        "changed": diff.changed,
        "traffic": diff.traffic,
        "route_level_known": diff.route_level_known,
        "changes": [_change_to_json(change) for change in diff.changes],
        "impact": [
            {
                "pool": delta.pool,
                "server": delta.server,
                "share_of_pool_before": delta.before_of_pool,
                "share_of_pool_after": delta.after_of_pool,
                "share_of_total_before": delta.before_of_total,
                "share_of_total_after": delta.after_of_total,
                "points": round(delta.points, 3),
            }
            for delta in diff.impact
        ],
    }


def _change_to_json(change: Change) -> dict[str, Any]:
    return {
        "kind": change.kind.value,
        "element": change.element.value,
        "subject": change.subject,
        "attribute": change.attribute,
        "before": change.before,
        "after": change.after,
        "old_location": str(change.old_location) if change.old_location.file else None,
        "new_location": str(change.new_location) if change.new_location.file else None,
        "detail": change.detail,
        "description": change.describe(),
    }


def _location_text(change: Change) -> str:
    location = change.location
    return f"{location}: " if location.file else ""


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")
