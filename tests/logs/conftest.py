"""Fixtures for the log-format tests: the sample logs and a row lookup."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from lbguard.logs import LogLoad, load_logs

DATA = Path(__file__).resolve().parent.parent / "data" / "logs"

Row = dict[str, Any]


def sample(relative: str) -> str:
    """Path of a sample log under tests/data/logs."""
    return str(DATA / relative)


def rows_by_line(load: LogLoad) -> dict[tuple[str, int], Row]:
    """All rows keyed by (file name, line number)."""
    cursor = load.con.execute(f"SELECT * FROM {load.table}")
    names = [column[0] for column in cursor.description]
    result: dict[tuple[str, int], Row] = {}
    for values in cursor.fetchall():
        row = dict(zip(names, values, strict=True))
        result[(Path(row["source_file"]).name, row["source_line"])] = row
    return result


@pytest.fixture
def read_sample() -> Callable[..., tuple[LogLoad, dict[int, Row]]]:
    """Load one sample file and return the load and its rows by line number."""

    def read(relative: str, **options: Any) -> tuple[LogLoad, dict[int, Row]]:
        load = load_logs([sample(relative)], **options)
        rows = {line: row for (_, line), row in rows_by_line(load).items()}
        return load, rows

    return read
