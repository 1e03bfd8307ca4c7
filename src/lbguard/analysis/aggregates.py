"""Aggregates over the normalized ``requests`` table, computed in DuckDB SQL.

Each function reads the table that ``lbguard.logs.load_logs`` fills and returns result
types from ``lbguard.analysis.result``. Grouping keys use NO_SERVER for requests that
reached no server (and for requests without a pool), so every request lands in exactly
one ``pool/server`` group.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

import numpy as np

from lbguard.analysis.result import (
    NO_SERVER,
    GroupStats,
    Percentiles,
    PoolStats,
    ServerStats,
    Timeline,
)

ERROR_CONDITION = "(status >= 500 OR coalesce(lb_error, false))"
"""A request counts as an error, once, when the client got a 5xx status or the load
balancer answered it itself (``lb_error``), so that ``errors`` is at least ``lb_errors``
and at least ``status_5xx``."""

POOL_KEY = f"coalesce(pool, '{NO_SERVER}')"
SERVER_KEY = f"coalesce(server, '{NO_SERVER}')"

_QUANTILES = "[0.5, 0.9, 0.99]"

STATS_COLUMNS = f"""
    count(*) AS requests,
    count(*) FILTER (WHERE status BETWEEN 400 AND 499) AS status_4xx,
    count(*) FILTER (WHERE status >= 500) AS status_5xx,
    count(*) FILTER (WHERE lb_error) AS lb_errors,
    count(*) FILTER (WHERE {ERROR_CONDITION}) AS errors,
    quantile_cont(time_total_ms, {_QUANTILES}) FILTER (WHERE time_total_ms >= 0) AS total_q,
    quantile_cont(time_response_ms, {_QUANTILES})
        FILTER (WHERE time_response_ms >= 0) AS response_q
"""
"""Select-list that ``stats_from_row`` reads back, seven columns in this order. Negative
timers are HAProxy's -1 (phase not reached) and are left out of the percentiles."""

STATS_WIDTH = 7


def stats_from_row(row: Sequence[Any]) -> GroupStats:
    """Build GroupStats from the seven STATS_COLUMNS values of a result row."""
    requests, status_4xx, status_5xx, lb_errors, errors, total_q, response_q = row
    return GroupStats(
        requests=int(requests),
        status_4xx=int(status_4xx),
        status_5xx=int(status_5xx),
        lb_errors=int(lb_errors),
        errors=int(errors),
        total_ms=_percentiles(total_q),
        response_ms=_percentiles(response_q),
    )


def _percentiles(values: Sequence[float] | None) -> Percentiles:
    if not values:
        return Percentiles(None, None, None)
    return Percentiles(float(values[0]), float(values[1]), float(values[2]))


def overall_stats(
    con: Any, table: str = "requests"
) -> tuple[GroupStats, datetime | None, datetime | None]:
    """Return the statistics of every request with the first and last timestamp."""
    row = con.execute(f"SELECT {STATS_COLUMNS}, min(ts), max(ts) FROM {table}").fetchone()
    first = _as_utc(row[STATS_WIDTH])
    last = _as_utc(row[STATS_WIDTH + 1])
    return stats_from_row(row[:STATS_WIDTH]), first, last


def _as_utc(value: datetime | None) -> datetime | None:
    if value is None:
        return None
    if value.tzinfo is None:
        return value.replace(tzinfo=UTC)
    return value.astimezone(UTC)


def pool_stats(con: Any, table: str = "requests") -> tuple[PoolStats, ...]:
    """Return per-pool and per-server statistics, busiest pool and server first."""
    server_rows = con.execute(
        f"""
        SELECT {POOL_KEY} AS pool_key, {SERVER_KEY} AS server_key, {STATS_COLUMNS}
        FROM {table} GROUP BY ALL
        """
    ).fetchall()
    pool_rows = con.execute(
        f"SELECT {POOL_KEY} AS pool_key, {STATS_COLUMNS} FROM {table} GROUP BY ALL"
    ).fetchall()

    total = sum(int(row[1]) for row in pool_rows)
    servers_by_pool: dict[str, list[tuple[str, GroupStats]]] = {}
    for row in server_rows:
        servers_by_pool.setdefault(row[0], []).append((row[1], stats_from_row(row[2:])))

    pools: list[PoolStats] = []
    for row in pool_rows:
        name = row[0]
        stats = stats_from_row(row[1:])
        servers = tuple(
            sorted(
                (
                    ServerStats(
                        pool=name,
                        server=server,
                        stats=server_stats,
                        share_of_pool=server_stats.requests / stats.requests,
                        share_of_total=server_stats.requests / total,
                    )
                    for server, server_stats in servers_by_pool.get(name, [])
                ),
                key=lambda s: (-s.stats.requests, s.server),
            )
        )
        counts = np.array(
            [s.stats.requests for s in servers if s.server != NO_SERVER], dtype=np.float64
        )
        max_over_mean, cv = imbalance(counts)
        pools.append(
            PoolStats(
                pool=name,
                stats=stats,
                share_of_total=stats.requests / total if total else 0.0,
                servers=servers,
                max_over_mean=max_over_mean,
                coefficient_of_variation=cv,
            )
        )

    pools.sort(key=lambda p: (-p.stats.requests, p.pool))
    return tuple(pools)


def imbalance(counts: np.ndarray[Any, Any]) -> tuple[float | None, float | None]:
    """Return (max/mean, coefficient of variation) of server counts; None when empty."""
    if counts.size == 0 or counts.sum() <= 0:
        return None, None
    mean = float(counts.mean())
    return float(counts.max()) / mean, float(counts.std()) / mean


def build_timeline(
    con: Any, width: timedelta, first: datetime, table: str = "requests"
) -> Timeline:
    """Aggregate requests per window of ``width`` aligned on ``first``'s window start."""
    seconds = width.total_seconds()
    origin = float(np.floor(first.timestamp() / seconds) * seconds)

    # Windows are numbered from the first request's window; epoch() returns seconds.
    window = f"CAST(floor((epoch(ts) - {origin!r}) / {seconds!r}) AS BIGINT)"
    window_rows = con.execute(
        f"""
        SELECT {window} AS w, {STATS_COLUMNS}
        FROM {table} WHERE ts IS NOT NULL GROUP BY ALL ORDER BY w
        """
    ).fetchall()
    server_rows = con.execute(
        f"""
        SELECT {window} AS w, {POOL_KEY} || '/' || {SERVER_KEY} AS key,
            count(*) AS requests, count(*) FILTER (WHERE {ERROR_CONDITION}) AS errors
        FROM {table} WHERE ts IS NOT NULL GROUP BY ALL
        """
    ).fetchall()

    count = int(window_rows[-1][0]) + 1 if window_rows else 0
    requests = np.zeros(count, dtype=np.int64)
    errors = np.zeros(count, dtype=np.int64)
    status_4xx = np.zeros(count, dtype=np.int64)
    status_5xx = np.zeros(count, dtype=np.int64)
    lb_errors = np.zeros(count, dtype=np.int64)
    p50, p90, p99 = (np.full(count, np.nan) for _ in range(3))
    for row in window_rows:
        index = int(row[0])
        stats = stats_from_row(row[1:])
        requests[index] = stats.requests
        errors[index] = stats.errors
        status_4xx[index] = stats.status_4xx
        status_5xx[index] = stats.status_5xx
        lb_errors[index] = stats.lb_errors
        if stats.total_ms.p50 is not None:
            p50[index] = stats.total_ms.p50
            p90[index] = stats.total_ms.p90
            p99[index] = stats.total_ms.p99

    keys = tuple(sorted({row[1] for row in server_rows}))
    column = {key: i for i, key in enumerate(keys)}
    server_counts = np.zeros((count, len(keys)), dtype=np.int64)
    server_errors = np.zeros((count, len(keys)), dtype=np.int64)
    for w, key, n, e in server_rows:
        server_counts[int(w), column[key]] = n
        server_errors[int(w), column[key]] = e

    pools = tuple(sorted({key.rsplit("/", 1)[0] for key in keys}))
    pool_counts = np.zeros((count, len(pools)), dtype=np.int64)
    pool_skew = np.full((count, len(pools)), np.nan)
    real = np.array([not key.endswith("/" + NO_SERVER) for key in keys], dtype=bool)
    for p, pool in enumerate(pools):
        members = np.array([key.rsplit("/", 1)[0] == pool for key in keys], dtype=bool)
        pool_counts[:, p] = server_counts[:, members].sum(axis=1)
        pool_skew[:, p] = max_over_mean_rows(server_counts[:, members & real])

    return Timeline(
        width=width,
        starts=tuple(datetime.fromtimestamp(origin + i * seconds, tz=UTC) for i in range(count)),
        requests=requests,
        errors=errors,
        status_4xx=status_4xx,
        status_5xx=status_5xx,
        lb_errors=lb_errors,
        total_p50=p50,
        total_p90=p90,
        total_p99=p99,
        server_keys=keys,
        server_counts=server_counts,
        server_errors=server_errors,
        pool_names=pools,
        pool_counts=pool_counts,
        pool_skew=pool_skew,
        skew=max_over_mean_rows(server_counts[:, real]),
    )


def max_over_mean_rows(counts: np.ndarray[Any, Any]) -> np.ndarray[Any, Any]:
    """Max over mean of each row; NaN for a row without requests or columns."""
    if counts.shape[1] == 0:
        return np.full(counts.shape[0], np.nan)
    means = counts.mean(axis=1)
    with np.errstate(divide="ignore", invalid="ignore"):
        ratio = counts.max(axis=1) / means
    return np.where(means > 0, ratio, np.nan)
