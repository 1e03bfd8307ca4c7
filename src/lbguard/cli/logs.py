"""``lbguard logs``: per-server statistics, timeline, onset and regions from access logs.

The command reads as parse arguments, load the logs, load the region map, analyse,
render, and return the exit code: 1 when an onset of skew or errors was found, 0 when
not, 2 for usage or input errors.
"""

from __future__ import annotations

import argparse
import contextlib
import glob
import io
import logging
import os
import re
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, TextIO

import duckdb
from rich.console import Console

from lbguard.analysis import AnalysisOptions, LogAnalysis, analyse, load_region_map
from lbguard.analysis.windows import keep_time_range, parse_time, parse_window
from lbguard.cli.check_inputs import check_output_path
from lbguard.cli.main import ExitCode
from lbguard.errors import LbguardError
from lbguard.logs import list_formats, load_logs, parse_field_map
from lbguard.logs.database import DEFAULT_MEMORY_LIMIT, open_database
from lbguard.report.interface import RenderOptions, clean_message
from lbguard.report.logs_json import render_logs_json
from lbguard.report.logs_markdown import render_logs_markdown
from lbguard.report.logs_text import count, render_logs_text

logger = logging.getLogger(__name__)

LogRenderer = Callable[[LogAnalysis, TextIO, RenderOptions], None]

LOG_RENDERERS: dict[str, LogRenderer] = {
    "text": render_logs_text,
    "json": render_logs_json,
    "markdown": render_logs_markdown,
}
"""``--format`` choice to renderer."""


def register(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    formats = "; ".join(f"{name}: {description}" for name, description in list_formats())
    parser = commands.add_parser(
        "logs",
        help="observed per-server shares, errors, latency, onset and regions from logs",
        description="Read access logs and report each pool's and server's share of "
        "requests, error rates and latency percentiles, a timeline with the onset and "
        "recovery of skew or errors, and errors per client region. Exit code 0: no onset "
        "found; 1: an onset of skew or errors was found; 2: usage or input error.",
    )
    parser.add_argument(
        "logs", nargs="+", metavar="LOG", help="log files, globs, .gz/.zst files, or - for stdin"
    )
    parser.add_argument(
        "--log-format",
        metavar="FORMAT",
        help=f"format of every file (default: detected per file). Formats: {formats}",
    )
    parser.add_argument(
        "--nginx-log-format",
        metavar="TEXT",
        help="the nginx log_format text the files were written with",
    )
    parser.add_argument(
        "--field-map",
        metavar="COLUMN=KEY,...",
        help="JSON keys of the columns, for --log-format json",
    )
    parser.add_argument(
        "--timezone",
        default="UTC",
        metavar="ZONE",
        help="IANA zone of timestamps written without one, such as HAProxy's (default: UTC)",
    )
    parser.add_argument(
        "--window",
        default="auto",
        metavar="WIDTH",
        help="timeline window width such as 30s, 1m, 5m or 1h; 'auto' picks one that gives "
        "at most 120 windows (default: auto)",
    )
    parser.add_argument(
        "--since",
        metavar="TIME",
        help="analyse only requests at or after this ISO 8601 time, such as "
        "2026-03-02T22:00:00 (UTC unless an offset is given)",
    )
    parser.add_argument(
        "--until",
        metavar="TIME",
        help="analyse only requests before this ISO 8601 time",
    )
    parser.add_argument(
        "--regions",
        metavar="FILE",
        help="client region map: a CSV file of 'cidr,region' rows or a MaxMind .mmdb database",
    )
    parser.add_argument(
        "--region-field",
        metavar="FIELD",
        help="dotted record field that names the region in an .mmdb database (default: "
        "region, then country.iso_code, then continent.code)",
    )
    parser.add_argument(
        "--format", choices=sorted(LOG_RENDERERS), default="text", help="report format"
    )
    parser.add_argument(
        "-o", "--output", metavar="FILE", help="write the report to FILE instead of stdout"
    )
    parser.add_argument(
        "--limit",
        type=int,
        default=20,
        metavar="ROWS",
        help="rows per table in text and Markdown reports; 0 shows all (default: 20)",
    )
    parser.add_argument(
        "--memory-limit",
        type=memory_limit,
        default=DEFAULT_MEMORY_LIMIT,
        metavar="SIZE",
        help="memory DuckDB may use, such as 512MB or 4GB; beyond it the parsed requests "
        f"spill to a temporary directory (default: {DEFAULT_MEMORY_LIMIT})",
    )
    parser.set_defaults(handler=run)


_MEMORY_LIMIT = re.compile(r"^\s*\d+(\.\d+)?\s*([KMGT]i?B|B)\s*$", re.IGNORECASE)


def memory_limit(text: str) -> str:
    """Check a ``--memory-limit`` value: a number with a byte unit."""
    if not _MEMORY_LIMIT.match(text):
        raise argparse.ArgumentTypeError(
            f"invalid memory limit {text!r}: write a number with a unit, such as 512MB or 4GB"
        )
    return text.strip()


def run(args: argparse.Namespace) -> ExitCode:
    errors = Console(stderr=True, highlight=False, markup=False, emoji=False, soft_wrap=True)
    with _clean_log_records():
        try:
            with open_database(args.memory_limit) as con:
                return _logs(args, errors, con)
        except LbguardError as error:
            say(errors, f"lbguard: error: {error}")
        except duckdb.Error as error:
            # DuckDB's own text can quote whole input lines: keep its first line only.
            first = str(error).strip().split("\n", 1)[0]
            say(errors, f"lbguard: error: the logs could not be read: {first}")
        return ExitCode.ERROR


def say(errors: Console, text: str) -> None:
    """Print a message on stderr with its control characters escaped line by line: file
    names and log lines in it come from the inputs."""
    errors.print(clean_message(text))


class _CleanRecord(logging.Filter):
    """Escape control characters in a log record, as `say` does."""

    def filter(self, record: logging.LogRecord) -> bool:
        record.msg = clean_message(record.getMessage())
        record.args = None
        return True


@contextlib.contextmanager
def _clean_log_records() -> Iterator[None]:
    """Route the warnings of the log readers through `clean_message` while the command
    runs."""
    handlers = logging.getLogger().handlers
    record_filter = _CleanRecord()
    for handler in handlers:
        handler.addFilter(record_filter)
    try:
        yield
    finally:
        for handler in handlers:
            handler.removeFilter(record_filter)


def _logs(args: argparse.Namespace, errors: Console, con: Any) -> ExitCode:
    window = parse_window(args.window)
    since = parse_time(args.since, "--since") if args.since else None
    until = parse_time(args.until, "--until") if args.until else None
    if since is not None and until is not None and until <= since:
        raise LbguardError(
            f"--until {args.until} is not after --since {args.since}",
            hint="give a time range that ends after it starts",
        )
    check_output_path(args.output, _inputs(args.logs, args.regions))
    field_map = parse_field_map(args.field_map) if args.field_map else None
    # The region map is read first: a bad map is reported before a long log is parsed.
    region_map = (
        load_region_map(args.regions, con, field=args.region_field) if args.regions else None
    )
    load = load_logs(
        args.logs,
        con=con,
        log_format=args.log_format,
        timezone=args.timezone,
        nginx_log_format=args.nginx_log_format,
        field_map=field_map,
        progress=errors.is_terminal,
    )
    outside = keep_time_range(load.con, load.table, since, until)

    analysis = analyse(
        load.con,
        table=load.table,
        files=load.files,
        region_map=region_map,
        options=AnalysisOptions(window=window),
    )
    _write(analysis, args.format, args.output, RenderOptions(limit=args.limit))
    say(errors, _summary(analysis, args.output, outside))
    if analysis.stats.requests == 0 and outside:
        raise LbguardError(
            f"none of the {outside:,} requests read lies between --since and --until",
            hint="widen the time range; the report shows the files' lines",
        )
    if analysis.stats.requests == 0:
        raise LbguardError(
            "no request could be read from " + ", ".join(args.logs),
            hint="check --log-format and the malformed-line samples in the report",
        )
    return ExitCode.FINDINGS if analysis.onset is not None else ExitCode.OK


def _inputs(logs: list[str], regions: str | None) -> list[tuple[str, str]]:
    """Pair every input file with the option that named it, globs expanded, so that
    ``-o`` cannot replace one of them."""
    inputs: list[tuple[str, str]] = []
    for source in logs:
        if source == "-":
            continue
        if os.path.exists(source) or not glob.has_magic(source):
            inputs.append((source, "LOG"))
        else:
            inputs.extend((match, "LOG") for match in sorted(glob.glob(source)))
    if regions is not None:
        inputs.append((regions, "--regions"))
    return inputs


def _write(analysis: LogAnalysis, fmt: str, output: str | None, options: RenderOptions) -> None:
    """Render to stdout, or render fully before writing so that an error leaves no
    truncated report file."""
    render = LOG_RENDERERS[fmt]
    if output is None:
        render(analysis, sys.stdout, options)
        return

    buffer = io.StringIO()
    render(analysis, buffer, options)
    try:
        Path(output).write_text(buffer.getvalue(), encoding="utf-8")
    except OSError as error:
        raise LbguardError(
            f"cannot write the report to {output}: {error.strerror}",
            hint="choose a writable file with -o",
        ) from None


def _summary(analysis: LogAnalysis, output: str | None, outside: int = 0) -> str:
    malformed = sum(stats.malformed for stats in analysis.files)
    text = (
        f"lbguard: {count(analysis.stats.requests, 'request')}, "
        f"{count(malformed, 'malformed line')}"
    )
    if outside:
        text += f", {count(outside, 'request')} outside --since/--until left out"
    onset = analysis.onset
    if onset is not None:
        text += f"; onset at {onset.at:%Y-%m-%d %H:%M:%S} UTC"
    recovery = analysis.recovery
    if recovery is not None:
        text += f", recovery at {recovery.at:%Y-%m-%d %H:%M:%S} UTC"
    if output:
        text += f"; report written to {output}"
    return text
