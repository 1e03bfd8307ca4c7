"""Measure ways to count HAProxy requests per backend/server, to find the bottleneck.

Runs on a log written by bench/logs_analysis.py (give its path). Each method counts
requests per ``backend/server`` token and must give the same counts as the first one:

- ``python split``: CPython ``bytes.split()`` per line, Counter of field 9;
- ``duckdb split``: DuckDB ``read_csv`` with a space delimiter, GROUP BY the column that
  contains ``backend/server`` (a fixed-position parse like halog's, no validation; a
  space-padded syslog day adds one empty column);
- ``duckdb regex``: DuckDB reads whole lines and extracts only ``backend/server`` with one
  regular expression;
- ``load_logs``: lbguard's full parse into the ``requests`` table, then GROUP BY.

Times are CPU seconds of this process (user + system), which other load on the machine
inflates less than wall time, and wall seconds.

Usage: .venv/bin/python bench/logs_alternatives.py LOG
"""

from __future__ import annotations

import resource
import sys
import time
from collections import Counter
from collections.abc import Callable

import duckdb

from lbguard.logs import load_logs

# Syslog month, day, time, host, tag, client, [date], frontend, then backend/server.
SERVER_FIELD = 8


def cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def connect() -> duckdb.DuckDBPyConnection:
    con = duckdb.connect()
    con.execute("SET enable_progress_bar = false")
    return con


def python_split(path: str) -> dict[str, int]:
    counts: Counter[str] = Counter()
    with open(path, "rb") as handle:
        for line in handle:
            fields = line.split()
            if len(fields) > SERVER_FIELD:
                counts[fields[SERVER_FIELD].decode()] += 1
    return dict(counts)


def duckdb_split(path: str) -> dict[str, int]:
    rows = (
        connect()
        .execute(
            f"""
        SELECT CASE WHEN column01 IS NULL THEN column{SERVER_FIELD + 1:02d}
                ELSE column{SERVER_FIELD:02d} END, count(*) FROM read_csv('{path}', delim=' ',
            header=false, all_varchar=true, null_padding=true, quote='', escape='',
            strict_mode=false, auto_detect=false,
            columns={{{", ".join(f"'column{i:02d}': 'VARCHAR'" for i in range(12))}}})
        GROUP BY ALL
        """
        )
        .fetchall()
    )
    return {key: int(count) for key, count in rows if key}


def duckdb_regex(path: str) -> dict[str, int]:
    rows = (
        connect()
        .execute(
            f"""
        SELECT regexp_extract(line, '\\] \\S+ (\\S+/\\S+) ', 1) AS key, count(*)
        FROM read_csv('{path}', columns={{'line': 'VARCHAR'}}, delim='\\x01', quote='',
            escape='', header=false, auto_detect=false, strict_mode=false)
        GROUP BY ALL
        """
        )
        .fetchall()
    )
    return {key: int(count) for key, count in rows if key}


def lbguard_load(path: str) -> dict[str, int]:
    load = load_logs([path], log_format="haproxy", con=connect())
    rows = load.con.execute(
        "SELECT pool || '/' || coalesce(server, '<NOSRV>'), count(*) FROM requests GROUP BY ALL"
    ).fetchall()
    return {key: int(count) for key, count in rows}


METHODS: dict[str, Callable[[str], dict[str, int]]] = {
    "python split": python_split,
    "duckdb split": duckdb_split,
    "duckdb regex": duckdb_regex,
    "load_logs": lbguard_load,
}


def main() -> int:
    path = sys.argv[1]
    with open(path, "rb") as handle:
        lines = sum(1 for _ in handle)

    reference: dict[str, int] | None = None
    same = True
    threads = connect().execute("SELECT current_setting('threads')").fetchone()
    print(f"{lines:,} lines; DuckDB threads: {threads[0] if threads else '?'}")
    print(f"{'method':14} {'CPU s':>7} {'wall s':>7} {'lines/s CPU':>12}  same counts")
    for name, method in METHODS.items():
        started_cpu, started = cpu(), time.perf_counter()
        counts = method(path)
        used, wall = cpu() - started_cpu, time.perf_counter() - started
        reference = reference or counts
        equal = counts == reference
        same = same and equal
        print(f"{name:14} {used:7.2f} {wall:7.2f} {lines / used:12,.0f}  {equal}")
    return 0 if same else 1


if __name__ == "__main__":
    sys.exit(main())
