"""The reading engine: one vectorised DuckDB query per file fills the requests table."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from lbguard.errors import LogError
from lbguard.logs import schema, shaping
from lbguard.logs import sqlparts as sql
from lbguard.logs.detect import strip_cri
from lbguard.logs.interface import Check, LogFormat, ParseOptions, ParsePlan
from lbguard.logs.shaping import nest, remove_cri
from lbguard.logs.sources import LogSource

logger = logging.getLogger(__name__)

MAX_SAMPLES = 5
"""Malformed lines kept per file as examples."""

BLANK_LINE = "trim(coalesce(line, '')) = ''"

# A delimiter that no log line contains, so that read_csv returns each line whole.
_DELIMITER = "\x1f\x1e\x1d\x1c"

MAX_LINE_BYTES = 16 << 20
"""Longest line read. A longer line is counted as malformed (DuckDB 2.0's read_csv
default max_line_size is 2,000,000 bytes)."""

OVERLONG = f"line longer than {MAX_LINE_BYTES >> 20} MiB"

SCAN_BUFFER_BYTES = 2 * MAX_LINE_BYTES
"""read_csv buffer size. DuckDB 2.0 defaults it to 16 times the maximum line size, which
would be 256 MiB per buffer here and exceed small memory limits."""

_REJECTS = "_lbguard_rejects"
_REJECTS_SCAN = "_lbguard_rejects_scan"


@dataclass(frozen=True)
class MalformedLine:
    """A line that could not be read, with the reason."""

    file: str
    line: int
    text: str
    reason: str

    def __str__(self) -> str:
        return f"{self.file}:{self.line}: {self.reason}: {self.text[:200]}"


@dataclass(frozen=True)
class FileStats:
    """Result of reading one file."""

    file: str
    log_format: str
    """Format the file was read with."""

    detected: bool
    """True when the format was detected rather than given."""

    lines: int
    """Lines in the file, blank lines included."""

    parsed: int
    """Rows added to the table."""

    malformed: int
    """Lines in no known shape, or with an invalid value."""

    skipped: int
    """Valid lines that hold no request (blank lines, startup events, error-log lines)."""

    samples: tuple[MalformedLine, ...]
    """Up to five malformed lines, first ones first."""

    encoding: str = "utf-8"
    """``latin-1`` when the file is not valid UTF-8 and was read byte for byte."""


def _read_csv(source: LogSource, encoding: str, *, rejects: bool = False) -> str:
    """Scan ``source`` one line per row. With ``rejects``, lines DuckDB cannot read (too
    long, invalid UTF-8) are left out and recorded in the rejects table instead."""
    compression = {"none": "none", "gzip": "gzip", "zstd": "zstd"}[source.compression]
    kept = (
        f", ignore_errors=true, store_rejects=true, rejects_table='{_REJECTS}', "
        f"rejects_scan='{_REJECTS_SCAN}'"
        if rejects
        else ""
    )
    return (
        f"read_csv({sql.quote(source.path)}, columns={{'line': 'VARCHAR'}}, "
        f"delim={sql.quote(_DELIMITER)}, quote='', escape='', header=false, "
        f"auto_detect=false, strict_mode=false, compression={sql.quote(compression)}, "
        f"encoding={sql.quote(encoding)}, max_line_size={MAX_LINE_BYTES}, "
        f"buffer_size={SCAN_BUFFER_BYTES}{kept})"
    )


def parse_query(lines: str, plan: ParsePlan, *, cri_prefix: bool, name: str) -> str:
    """Build the query that turns the ``line`` column of the relation ``lines`` into
    request rows plus a status per line. Other columns of ``lines`` are kept."""
    inner = nest(remove_cri(lines, cri_prefix), plan.extracts)

    values = []
    for column in schema.COLUMN_NAMES:
        if column == "source_file":
            values.append(f"{sql.quote(name)} AS source_file")
        elif column == "source_line":
            values.append("NULL::BIGINT AS source_line")
        else:
            values.append(f"{plan.columns.get(column, 'NULL')} AS {column}")
    middle = f"SELECT *, {', '.join(values)} FROM ({inner}) AS parsed"

    checks = (Check(BLANK_LINE, "blank line", skipped=True), *plan.checks)
    reasons = " ".join(
        f"WHEN {check.condition} THEN {sql.quote(check.reason)}" for check in checks
    )
    skips = " ".join(
        f"WHEN {check.condition} THEN {str(check.skipped).lower()}" for check in checks
    )
    aliases = ", ".join(alias for alias, _ in plan.extracts)
    judged = (
        f"SELECT * EXCLUDE ({aliases}), CASE {reasons} END AS _reason, "
        f"CASE {skips} ELSE false END AS _skipped FROM ({middle}) AS typed"
    )
    # The raw text is kept only for rejected lines, which feed the samples.
    return (
        "SELECT * EXCLUDE (line), CASE WHEN _reason IS NOT NULL THEN line END AS _line "
        f"FROM ({judged}) AS judged"
    )


def read_file(
    con: Any,
    source: LogSource,
    log_format: LogFormat,
    options: ParseOptions,
    *,
    table: str,
    detected: bool,
    cri_prefix: bool,
    progress: bool,
    sample: Sequence[str] = (),
) -> FileStats:
    """Read one file into ``table`` and return its statistics.

    When the format has a `ShapePlan` that accepts most of the ``sample`` lines, the file
    is read with it first, and only the lines it does not accept go through the full
    plan. Both give the same rows.
    """
    plan = log_format.plan(options)
    shape = None
    if log_format.shape is not None and sample:
        shape = log_format.shape(options, strip_cri(sample)[0])
    if shape is not None and not (
        shaping.table_allows_shape(con, table)
        and shaping.shape_fits(con, shape, sample, cri_prefix)
    ):
        shape = None

    shaped = None
    if shape is not None:
        shaped = shaping.insert_shaped(
            con,
            source,
            shape,
            lambda encoding: _read_csv(source, encoding),
            table=table,
            cri_prefix=cri_prefix,
            execute=lambda statement: _execute(con, statement, source.name, progress),
        )
    if shaped is None:
        return _read_with_plan(
            con,
            source,
            log_format,
            plan,
            table=table,
            detected=detected,
            cri_prefix=cri_prefix,
            progress=progress,
        )

    rest = f"SELECT _n, line FROM {shaping.REST_TABLE}"
    query = parse_query(rest, plan, cri_prefix=cri_prefix, name=source.name)
    con.execute(f"CREATE OR REPLACE TEMP TABLE _lbguard_parsed AS {query}")
    con.execute(f"DROP TABLE {shaping.REST_TABLE}")
    parsed, malformed, skipped, samples = _store_parsed(con, source, table, "_n")
    return FileStats(
        file=source.name,
        log_format=log_format.name,
        detected=detected,
        lines=shaped.lines,
        parsed=shaped.accepted + parsed,
        malformed=malformed,
        skipped=skipped,
        samples=samples,
        encoding=shaped.encoding,
    )


def _read_with_plan(
    con: Any,
    source: LogSource,
    log_format: LogFormat,
    plan: ParsePlan,
    *,
    table: str,
    detected: bool,
    cri_prefix: bool,
    progress: bool,
) -> FileStats:
    """Read every line of one file with the full plan."""
    encoding = "utf-8"
    overlong = _run(con, source, plan, cri_prefix=cri_prefix, encoding=encoding, progress=progress)
    if overlong is None:
        logger.warning("%s is not valid UTF-8; reading it as Latin-1", source.name)
        encoding = "latin-1"
        overlong = _run(
            con, source, plan, cri_prefix=cri_prefix, encoding=encoding, progress=progress
        )
        if overlong is None:
            raise LogError(f"{source.name}: cannot read the file as text")

    total = con.execute("SELECT count(*) FROM _lbguard_parsed").fetchone()[0]
    line_number = "rowid + 1"
    if overlong:
        # The k-th row read is line k plus the overlong lines before it: overlong line
        # number n at rank j (from 1) has n - j rows read before it.
        con.execute("CREATE OR REPLACE TEMP TABLE _lbguard_shift (before BIGINT)")
        con.executemany(
            "INSERT INTO _lbguard_shift VALUES (?)",
            [[n - rank] for rank, n in enumerate(overlong, start=1)],
        )
        line_number = (
            "rowid + 1 + (SELECT count(*) FROM _lbguard_shift AS shift "
            "WHERE shift.before <= _lbguard_parsed.rowid)"
        )
    parsed, malformed, skipped, samples = _store_parsed(con, source, table, line_number)
    if overlong:
        con.execute("DROP TABLE _lbguard_shift")
        extra = tuple(MalformedLine(source.name, n, "", OVERLONG) for n in overlong)
        samples = tuple(sorted((*samples, *extra), key=lambda s: s.line))[:MAX_SAMPLES]
    return FileStats(
        file=source.name,
        log_format=log_format.name,
        detected=detected,
        lines=int(total) + len(overlong),
        parsed=parsed,
        malformed=malformed + len(overlong),
        skipped=skipped,
        samples=samples,
        encoding=encoding,
    )


def _store_parsed(
    con: Any, source: LogSource, table: str, line_number: str
) -> tuple[int, int, int, tuple[MalformedLine, ...]]:
    """Insert the accepted rows of ``_lbguard_parsed`` into ``table`` with the line number
    ``line_number``, drop it, and return (parsed, malformed, skipped, samples)."""
    columns = ", ".join(schema.COLUMN_NAMES)
    values = ", ".join(
        line_number if name == "source_line" else name for name in schema.COLUMN_NAMES
    )
    con.execute(
        f"INSERT INTO {table} ({columns}) "
        f"SELECT {values} FROM _lbguard_parsed WHERE _reason IS NULL"
    )
    counts = con.execute(
        "SELECT count(*) FILTER (WHERE _reason IS NULL), "
        "count(*) FILTER (WHERE _reason IS NOT NULL AND NOT _skipped), "
        "count(*) FILTER (WHERE _skipped) FROM _lbguard_parsed"
    ).fetchone()
    parsed, malformed, skipped = (int(value) for value in counts)
    rows = con.execute(
        f"SELECT {line_number}, _line, _reason FROM _lbguard_parsed "
        f"WHERE _reason IS NOT NULL AND NOT _skipped ORDER BY {line_number} "
        f"LIMIT {MAX_SAMPLES}"
    ).fetchall()
    con.execute("DROP TABLE _lbguard_parsed")
    samples = tuple(
        MalformedLine(source.name, int(n), str(text), str(reason)) for n, text, reason in rows
    )
    return parsed, malformed, skipped, samples


def _run(
    con: Any,
    source: LogSource,
    plan: ParsePlan,
    *,
    cri_prefix: bool,
    encoding: str,
    progress: bool,
) -> list[int] | None:
    """Parse ``source`` into ``_lbguard_parsed``; return the numbers of the lines left
    out for being longer than `MAX_LINE_BYTES`, or None when a line is not valid text in
    ``encoding``."""
    # Line numbers are not computed here: a window function such as row_number() would
    # make the whole query run on one thread. The statement stores the result with
    # CREATE TABLE AS and `_store_parsed` takes the line number from the rowid.
    # NOTE: this relies on DuckDB's preserve_insertion_order (on by default), which keeps
    # the scan order in CREATE TABLE AS; tests check it on 120,000 and 200,000 lines.
    lines = f"SELECT line FROM {_read_csv(source, encoding, rejects=True)}"
    query = parse_query(lines, plan, cri_prefix=cri_prefix, name=source.name)
    try:
        _execute(
            con,
            f"CREATE OR REPLACE TEMP TABLE _lbguard_parsed AS {query}",
            source.name,
            progress,
        )
        rejected = con.execute(
            f"SELECT DISTINCT line, error_type FROM {_REJECTS} ORDER BY line"
        ).fetchall()
    except Exception as error:
        # DuckDB's message quotes the whole line, so the user gets the file name only.
        logger.info("DuckDB could not read %s: %s", source.name, str(error)[:500])
        raise LogError(
            f"{source.name}: cannot read the file",
            hint="check that it is a text log file",
        ) from None
    finally:
        con.execute(f"DROP TABLE IF EXISTS {_REJECTS}")
        con.execute(f"DROP TABLE IF EXISTS {_REJECTS_SCAN}")
    if any(kind != "LINE SIZE OVER MAXIMUM" for _, kind in rejected):
        return None
    return [int(line) for line, _ in rejected]


def _execute(con: Any, statement: str, name: str, progress: bool) -> None:
    if progress:
        _execute_with_progress(con, statement, name)
    else:
        con.execute(statement)


def _execute_with_progress(con: Any, statement: str, name: str) -> None:
    """Run a statement while a rich progress bar follows DuckDB's query progress."""
    from rich.progress import Progress

    failure: list[BaseException] = []

    def work() -> None:
        try:
            con.execute(statement)
        except BaseException as error:
            failure.append(error)

    worker = threading.Thread(target=work, daemon=True)
    with Progress(transient=True) as bar:
        task = bar.add_task(f"reading {name}", total=100)
        worker.start()
        while worker.is_alive():
            done = con.query_progress()
            if done >= 0:
                bar.update(task, completed=done)
            time.sleep(0.1)
    worker.join()
    if failure:
        raise failure[0]


def create_table(con: Any, table: str) -> None:
    con.execute(schema.create_table_sql(table))


def known_formats(formats: Sequence[LogFormat]) -> str:
    return ", ".join(log_format.name for log_format in formats)
