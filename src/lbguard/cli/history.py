"""``lbguard history``: list, show and compare stored configuration snapshots."""

from __future__ import annotations

import argparse
import json
import sys
from datetime import UTC, datetime

from rich.console import Console

from lbguard.cli.main import ExitCode
from lbguard.errors import LbguardError
from lbguard.monitor.diff import diff_configs
from lbguard.monitor.history import History, SnapshotRecord, default_path
from lbguard.monitor.render import DiffFormat, render_diff
from lbguard.monitor.shares import format_share


def register(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = commands.add_parser(
        "history",
        help="list, show and compare configuration snapshots recorded by lbguard watch",
        description="Read the history database that lbguard watch writes. Exit code 0: "
        "success (for diff: no change); 1: diff found changes; 2: usage or input error.",
    )
    parser.add_argument(
        "--db",
        metavar="PATH",
        help=f"history database (default: {default_path()})",
    )
    actions = parser.add_subparsers(dest="action", metavar="ACTION")
    listing = actions.add_parser("list", help="list snapshots, newest first (default)")
    listing.add_argument(
        "--limit", type=int, default=50, help="number of snapshots to list (default: 50)"
    )
    show = actions.add_parser("show", help="show one snapshot with its audits")
    show.add_argument("id", type=int, metavar="ID", help="snapshot id")
    compare = actions.add_parser("diff", help="compare two snapshots")
    compare.add_argument("first", type=int, metavar="ID1", help="older snapshot id")
    compare.add_argument("second", type=int, metavar="ID2", help="newer snapshot id")
    compare.add_argument(
        "--format",
        choices=[item.value for item in DiffFormat],
        default=DiffFormat.TEXT.value,
        help="output format (default: text)",
    )
    parser.set_defaults(handler=run, action="list", limit=50)


def run(args: argparse.Namespace) -> ExitCode:
    errors = Console(stderr=True, highlight=False, markup=False, emoji=False, soft_wrap=True)
    try:
        with History(args.db) as history:
            if args.action == "show":
                sys.stdout.write(_show(history, args.id))
                return ExitCode.OK
            if args.action == "diff":
                return _diff(history, args.first, args.second, DiffFormat(args.format))
            sys.stdout.write(_list(history, args.limit))
            return ExitCode.OK
    except LbguardError as error:
        errors.print(f"lbguard: error: {error}")
        return ExitCode.ERROR


def _list(history: History, limit: int) -> str:
    snapshots = history.snapshots(limit)
    if not snapshots:
        return f"no snapshots in {history.path}\n"
    counts = history.audit_counts()
    lines = [f"{'ID':>5}  {'TIME (UTC)':19}  {'HASH':12}  {'FINDINGS':>8}  LB  FILES"]
    for snapshot in snapshots:
        findings = counts.get(snapshot.id)
        lines.append(
            f"{snapshot.id:>5}  {_time(snapshot.created_at)}  {snapshot.content_hash[:12]}  "
            f"{'-' if findings is None else findings:>8}  {snapshot.instance or '-'}  "
            f"{', '.join(snapshot.files)}"
        )
    return "\n".join(lines) + "\n"


def _show(history: History, snapshot_id: int) -> str:
    snapshot = history.snapshot(snapshot_id)
    lines = [
        f"snapshot {snapshot.id}",
        f"  time:     {_time(snapshot.created_at)} UTC",
        f"  lb:       {snapshot.instance or '-'}",
        f"  product:  {snapshot.product}",
        f"  hash:     {snapshot.content_hash}",
        f"  files:    {', '.join(snapshot.files)}",
        "",
        "predicted shares:",
    ]
    lines += _share_lines(snapshot)
    for record in history.audits(snapshot.id):
        lines.append("")
        lines.append(
            f"audit {record.id} ({record.trigger}, {_time(record.created_at)} UTC): "
            f"{len(record.findings)} findings"
        )
        for finding in record.findings:
            where = f"{finding.get('location')}: " if finding.get("location") else ""
            lines.append(
                f"  {where}{finding.get('severity')}: {finding.get('rule_id')} "
                f"{json.dumps(finding.get('reason', ''))[1:-1]}"
            )
    return "\n".join(lines) + "\n"


def _share_lines(snapshot: SnapshotRecord) -> list[str]:
    lines = []
    for row in snapshot.shares().values():
        total = (
            f", {format_share(row.share_of_total)} of all traffic"
            if row.share_of_total is not None
            else ""
        )
        lines.append(f"  {row.key}: {format_share(row.share_of_pool)} of {row.pool}{total}")
    return lines or ["  (no servers)"]


def _diff(history: History, first: int, second: int, output_format: DiffFormat) -> ExitCode:
    old, new = history.snapshot(first), history.snapshot(second)
    diff = diff_configs(old.model(), new.model(), old.shares(), new.shares())
    sys.stdout.write(render_diff(diff, output_format))
    return ExitCode.FINDINGS if diff.changed else ExitCode.OK


def _time(seconds: float) -> str:
    return datetime.fromtimestamp(seconds, UTC).strftime("%Y-%m-%d %H:%M:%S")
