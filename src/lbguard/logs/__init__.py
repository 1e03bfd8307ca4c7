"""Access logs read into one normalized DuckDB table of requests.

`load_logs` detects the format of each file (or uses the one given), parses every line
with one vectorised DuckDB query per file, and appends the rows to the ``requests`` table
described in `lbguard.logs.schema`. Lines that cannot be read are counted and sampled per
file; they never stop the run.
"""

from __future__ import annotations

import logging
import os
import zoneinfo
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import duckdb

from lbguard.errors import LogError
from lbguard.logs import registry, schema
from lbguard.logs.detect import SAMPLE_LINES, detect
from lbguard.logs.interface import LogFormat, ParseOptions
from lbguard.logs.reading import FileStats, MalformedLine, create_table, read_file
from lbguard.logs.sources import expand, head_lines, make_spool_dir

__all__ = [
    "FileStats",
    "LogError",
    "LogLoad",
    "MalformedLine",
    "list_formats",
    "load_logs",
    "parse_field_map",
]

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class LogLoad:
    """Result of `load_logs`."""

    con: Any
    """DuckDB connection that contains the table."""

    table: str
    """Name of the requests table."""

    files: tuple[FileStats, ...]
    """Per-file statistics, in reading order; each names the format it was read with."""

    @property
    def parsed(self) -> int:
        return sum(stats.parsed for stats in self.files)

    @property
    def malformed(self) -> int:
        return sum(stats.malformed for stats in self.files)


def list_formats() -> list[tuple[str, str]]:
    """Return (name, description) of every log format, for ``--help``."""
    return [(log_format.name, log_format.description) for log_format in registry.formats()]


def parse_field_map(text: str) -> dict[str, str]:
    """Parse ``column=key,column=key`` into a mapping, rejecting unknown columns."""
    mapping: dict[str, str] = {}
    for item in filter(None, (part.strip() for part in text.split(","))):
        column, sep, key = item.partition("=")
        if not sep or not key.strip():
            raise LogError(
                f"invalid field mapping {item!r}",
                hint="write COLUMN=JSON_KEY pairs separated by commas, e.g. server=upstream",
            )
        if column.strip() not in schema.COLUMN_NAMES:
            raise LogError(
                f"unknown column {column.strip()!r} in the field mapping",
                hint="columns are: " + ", ".join(schema.COLUMN_NAMES[:-2]),
            )
        mapping[column.strip()] = key.strip()
    return mapping


def load_logs(
    sources: Sequence[str],
    *,
    log_format: str | None = None,
    con: Any | None = None,
    timezone: str = "UTC",
    nginx_log_format: str | None = None,
    field_map: Mapping[str, str] | None = None,
    progress: bool = False,
    table: str = schema.TABLE,
) -> LogLoad:
    """Read log files, globs, ``-`` (stdin), .gz and .zst files into a requests table.

    Raises `LogError` for a source that cannot be read at all: a missing file, an unknown
    format name, or a file whose format cannot be detected.
    """
    if not sources:
        raise LogError("no log file given", hint="give one or more files, globs or -")
    try:
        zoneinfo.ZoneInfo(timezone)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError) as error:
        raise LogError(
            f"unknown time zone {timezone!r}", hint="give an IANA name such as Europe/Paris"
        ) from error

    options = ParseOptions(
        timezone=timezone, nginx_log_format=nginx_log_format, field_map=dict(field_map or {})
    )
    if log_format is None and nginx_log_format:
        log_format = "nginx"
    forced = registry.find(log_format) if log_format else None

    if con is None:
        con = duckdb.connect()
        con.execute("SET TimeZone = 'UTC'")
    create_table(con, table)

    stats: list[FileStats] = []
    with make_spool_dir() as spool:
        for source in expand(sources, spool):
            chosen, cri, sample = _choose_format(source, forced)
            logger.info("reading %s as %s", source.name, chosen.name)
            stats.append(
                read_file(
                    con,
                    source,
                    chosen,
                    options,
                    table=table,
                    detected=forced is None,
                    cri_prefix=cri,
                    progress=progress,
                    sample=sample,
                )
            )
    return LogLoad(con=con, table=table, files=tuple(stats))


def _choose_format(source: Any, forced: LogFormat | None) -> tuple[LogFormat, bool, list[str]]:
    """Return the format, whether lines carry a CRI prefix, and the sample lines."""
    lines = head_lines(source, SAMPLE_LINES)
    result = detect(lines, registry.formats())
    if forced is not None:
        return forced, result.cri_prefix, lines
    if result.log_format is None and not lines:
        raise LogError(
            f"{source.name}: the file is empty"
            if _is_empty(source.path)
            else f"{source.name}: the file contains only blank lines",
            hint="give a log file that contains requests",
        )
    if result.log_format is None:
        first = lines[0][:200] if lines else "(the file is empty)"
        choices = ", ".join(name for name, _ in list_formats())
        raise LogError(
            f"{source.name}: cannot detect the log format from the first "
            f"{len(lines)} lines; first line: {first}",
            hint=f"give --log-format, one of: {choices}",
        )
    return result.log_format, result.cri_prefix, lines


def _is_empty(path: str) -> bool:
    try:
        return os.path.getsize(path) == 0
    except OSError:
        return False
