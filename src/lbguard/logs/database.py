"""The embedded DuckDB database that holds parsed requests.

The database lives in memory, but DuckDB writes table blocks to a temporary directory
when it reaches its memory limit, so a log larger than the limit (or than RAM) is still
read with bounded memory.
"""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import duckdb

DEFAULT_MEMORY_LIMIT = "1GB"
"""DuckDB memory limit for log analysis; beyond it, tables spill to the temporary directory."""


@contextmanager
def open_database(memory_limit: str = DEFAULT_MEMORY_LIMIT) -> Iterator[Any]:
    """Open an in-memory DuckDB connection with a memory limit and its own spill directory.

    The progress bar is off because DuckDB draws it on stdout, where it would corrupt a
    report. Times are handled in UTC. The spill directory is removed on exit.
    """
    spill = tempfile.mkdtemp(prefix="lbguard-duckdb-")
    con = duckdb.connect()
    try:
        con.execute("SET TimeZone = 'UTC'")
        con.execute("SET enable_progress_bar = false")
        con.execute("SET temp_directory = ?", [spill])
        try:
            con.execute("SET memory_limit = ?", [memory_limit])
        except duckdb.Error as error:
            raise ValueError(f"invalid memory limit {memory_limit!r}: {error}") from None
        yield con
    finally:
        con.close()
        shutil.rmtree(spill, ignore_errors=True)
