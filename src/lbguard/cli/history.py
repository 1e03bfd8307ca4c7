"""``lbguard history``: list, show, compare and prune stored configuration snapshots.

``list``, ``show`` and ``diff`` open the database read-only and never create it.
"""

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
from lbguard.monitor.text import plural


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
        "--limit",
        type=_count,
        default=50,
        help="number of snapshots to list; 0 lists all (default: 50)",
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
    prune = actions.add_parser(
        "prune",
        help="delete old snapshots and their audits; each load balancer keeps its newest",
    )
    prune.add_argument(
        "--max-snapshots",
        type=_count,
        metavar="N",
        help="keep the N newest snapshots of each load balancer",
    )
    prune.add_argument(
        "--max-age-days",
        type=float,
        metavar="DAYS",
        help="delete snapshots older than DAYS days",
    )
    parser.set_defaults(handler=run, action="list", limit=50)


def _count(text: str) -> int:
    """Parse a count of at least 0 for argparse."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number, found {text!r}") from None
    if value < 0:
        raise argparse.ArgumentTypeError(f"must be 0 or more, found {value}")
    return value


def run(args: argparse.Namespace) -> ExitCode:
    errors = Console(stderr=True, highlight=False, markup=False, emoji=False, soft_wrap=True)
    try:
        if args.action == "prune":
            return _prune(args, errors)
        with History(args.db, read_only=True) as history:
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


def _prune(args: argparse.Namespace, errors: Console) -> ExitCode:
    if args.max_snapshots is None and args.max_age_days is None:
        raise LbguardError(
            "history prune needs a limit",
            hint="pass --max-snapshots N, --max-age-days DAYS or both",
        )
    if args.max_snapshots == 0 or (args.max_age_days is not None and args.max_age_days < 0):
        raise LbguardError(
            "history prune limits must be positive",
            hint="each load balancer keeps at least its newest snapshot anyway",
        )
    with History(args.db, create=False) as history:
        removed = history.prune(max_snapshots=args.max_snapshots, max_age_days=args.max_age_days)
        if removed:
            history.vacuum()
        errors.print(f"lbguard history: pruned {plural(removed, 'snapshot')} from {history.path}")
    return ExitCode.OK


def _list(history: History, limit: int) -> str:
    snapshots = history.snapshots(limit, with_model=False)
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
            f"{plural(len(record.findings), 'finding')}"
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
