"""The shape route: lines of a format's common shape go straight into the requests table.

A `ShapePlan` reads a line with a few cheap expressions instead of the full plan's
capturing expression. `insert_shaped` runs it over the whole file in one parallel
INSERT, then numbers the new rows and moves the lines it does not accept to a temporary
table, from which the full plan reads them.

Line numbers come from the rowids of the new rows. With DuckDB's
``preserve_insertion_order`` (on by default), an INSERT from one file scan appends the
rows in scan order, so the rowids of one file are consecutive and follow its lines. A
later checkpoint may move them down, but only all together. A window function such as
``row_number()`` would make the whole INSERT run on one thread.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import duckdb

from lbguard.errors import LogError
from lbguard.logs import schema
from lbguard.logs import sqlparts as sql
from lbguard.logs.detect import CRI_PREFIX
from lbguard.logs.interface import ShapePlan
from lbguard.logs.sources import LogSource

logger = logging.getLogger(__name__)

SHAPE_SHARE = 0.5
"""Share of the sample lines that the shape must accept before a file is read with it.
Below it, reading with the full plan alone costs less than reading with both."""

REST_TABLE = "_lbguard_rest"
"""Temporary table of the lines the shape did not accept: ``_n`` (line number), ``line``."""

SHAPE_COLUMNS = tuple(name for name in schema.COLUMN_NAMES if not name.startswith("source_"))
"""Columns a shape query computes; the insert adds the file name and line number."""


@dataclass(frozen=True)
class ShapedRead:
    """Outcome of `insert_shaped`."""

    lines: int
    """Lines in the file, blank lines included."""

    accepted: int
    """Rows the shape added to the table."""

    encoding: str
    """Encoding the file was read with."""


def remove_cri(relation: str, cri_prefix: bool) -> str:
    """Return ``relation`` with the CRI prefix removed from its ``line`` column."""
    if not cri_prefix:
        return relation
    return (
        f"SELECT * REPLACE (regexp_replace(line, {sql.quote(CRI_PREFIX)}, '') AS line) "
        f"FROM ({relation}) AS prefixed"
    )


def nest(relation: str, extracts: Sequence[tuple[str, str]]) -> str:
    """Add one nesting level per extract, so that later extracts can use earlier ones."""
    inner = relation
    for alias, expression in extracts:
        inner = f"SELECT *, {expression} AS {alias} FROM ({inner}) AS step_{alias}"
    return inner


def shape_query(lines: str, shape: ShapePlan, *, cri_prefix: bool) -> str:
    """Build the query that reads the ``line`` column of ``lines`` with a `ShapePlan`.

    Each line gives one row: the columns, ``_accept``, and in ``_text`` the line as read
    (before the CRI prefix is removed).
    """
    raw = f"SELECT line AS _text, line FROM ({lines}) AS raw"
    inner = nest(remove_cri(raw, cri_prefix), shape.extracts)
    values = ", ".join(f"{shape.columns.get(name, 'NULL')} AS {name}" for name in SHAPE_COLUMNS)
    typed = f"SELECT *, {values} FROM ({inner}) AS typed"
    return (
        f"SELECT {', '.join(SHAPE_COLUMNS)}, _text, "
        f"coalesce({shape.accept}, false) AS _accept FROM ({typed}) AS judged"
    )


def shape_fits(con: Any, shape: ShapePlan, sample: Sequence[str], cri_prefix: bool) -> bool:
    """True when the shape accepts at least `SHAPE_SHARE` of the sample lines."""
    if not sample:
        return False
    lines = "SELECT unnest($lines::VARCHAR[]) AS line"
    accepted = con.execute(
        f"SELECT count(*) FILTER (WHERE _accept) "
        f"FROM ({shape_query(lines, shape, cri_prefix=cri_prefix)}) AS sampled",
        {"lines": list(sample)},
    ).fetchone()[0]
    return bool(accepted >= SHAPE_SHARE * len(sample))


def table_allows_shape(con: Any, table: str) -> bool:
    """True when no row of ``table`` lacks its file or line, the marks of rows that
    `insert_shaped` has not finished."""
    pending = con.execute(
        f"SELECT count(*) FROM {table} WHERE source_line IS NULL OR source_file IS NULL"
    ).fetchone()[0]
    return bool(pending == 0)


def insert_shaped(
    con: Any,
    source: LogSource,
    shape: ShapePlan,
    scan: Any,
    *,
    table: str,
    cri_prefix: bool,
    execute: Any,
) -> ShapedRead | None:
    """Insert the accepted lines of ``source`` into ``table`` and leave the other lines in
    `REST_TABLE`. Return None, with the table unchanged, when the shape query fails.

    ``scan(encoding)`` returns the file scan, and ``execute(statement)`` runs the INSERT.
    Until the rows are numbered, new rows have no ``source_line``. Rows of lines that the
    shape does not accept also have no ``source_file`` and carry the line in ``path``.
    """
    values = ", ".join(
        "CASE WHEN _accept THEN path ELSE _text END" if name == "path" else name
        for name in SHAPE_COLUMNS
    )
    columns = ", ".join((*SHAPE_COLUMNS, "source_file"))
    name = sql.quote(source.name)
    for encoding in ("utf-8", "latin-1"):
        lines = f"SELECT line FROM {scan(encoding)}"
        statement = (
            f"INSERT INTO {table} ({columns}) "
            f"SELECT {values}, CASE WHEN _accept THEN {name} END "
            f"FROM ({shape_query(lines, shape, cri_prefix=cri_prefix)}) AS shaped"
        )
        try:
            execute(statement)
        except duckdb.Error as error:
            if "Invalid unicode" in str(error) and encoding == "utf-8":
                logger.warning("%s is not valid UTF-8; reading it as Latin-1", source.name)
                continue
            logger.info("reading %s with the full plan only: %s", source.name, error)
            return None
        break
    else:
        return None

    try:
        lines_read = _number_rows(con, source, table)
        con.execute(
            f"CREATE OR REPLACE TEMP TABLE {REST_TABLE} AS "
            f"SELECT source_line AS _n, path AS line FROM {table} WHERE source_file IS NULL"
        )
        con.execute(f"DELETE FROM {table} WHERE source_file IS NULL")
    except BaseException:
        discard_unfinished(con, table)
        raise
    rest = con.execute(f"SELECT count(*) FROM {REST_TABLE}").fetchone()[0]
    return ShapedRead(lines=lines_read, accepted=lines_read - int(rest), encoding=encoding)


def _number_rows(con: Any, source: LogSource, table: str) -> int:
    """Give the new rows (those without ``source_line``) their line numbers."""
    count, first, last = con.execute(
        f"SELECT count(*), min(rowid), max(rowid) FROM {table} WHERE source_line IS NULL"
    ).fetchone()
    if not count:
        return 0
    if last - first + 1 != count:
        raise LogError(
            f"{source.name}: the rows of the file are not consecutive in {table}, so "
            "their line numbers are unknown",
            hint="load the logs into a table that no other connection writes to",
        )
    con.execute(
        f"UPDATE {table} SET source_line = rowid - "
        f"(SELECT min(rowid) FROM {table} WHERE source_line IS NULL) + 1 "
        "WHERE source_line IS NULL"
    )
    return int(count)


def discard_unfinished(con: Any, table: str) -> None:
    """Delete the rows `insert_shaped` left without file or line after a failure."""
    con.execute(f"DELETE FROM {table} WHERE source_line IS NULL OR source_file IS NULL")
