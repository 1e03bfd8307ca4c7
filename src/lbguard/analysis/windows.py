"""Time windows for per-window aggregates: parsing ``--window`` and choosing one."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from typing import Any

from lbguard.errors import LbguardError

_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400}
_WINDOW_RE = re.compile(r"^\s*(\d+)\s*([smhd])\s*$")

AUTO = "auto"
"""Window value that picks a width from the log's time span."""

NICE_WIDTHS = (
    1, 2, 5, 10, 15, 30, 60, 120, 300, 600, 900, 1800, 3600, 7200, 21600, 86400, 604800,
    30 * 86400, 365 * 86400,
)  # fmt: skip
"""Window widths in seconds that ``auto`` chooses from."""

TARGET_WINDOWS = 120
"""``auto`` picks the smallest width that gives at most this many windows, so that
change-point detection has enough points and a timeline still fits on a page."""


def parse_window(text: str) -> timedelta | None:
    """Parse a window width such as ``30s``, ``1m``, ``5m`` or ``1h``; None for ``auto``."""
    if text.strip().lower() == AUTO:
        return None
    match = _WINDOW_RE.match(text.lower())
    if match is None or int(match.group(1)) == 0:
        raise LbguardError(
            f"--window: invalid width {text!r}",
            hint="give a positive whole number with a unit s, m, h or d (e.g. 30s, 1m, 1h), "
            "or 'auto'",
        )
    return timedelta(seconds=int(match.group(1)) * _UNITS[match.group(2)])


def choose_window(span: timedelta) -> timedelta:
    """Return the smallest nice width that splits ``span`` into at most TARGET_WINDOWS."""
    seconds = span.total_seconds()
    for width in NICE_WIDTHS:
        if seconds / width <= TARGET_WINDOWS:
            return timedelta(seconds=width)
    return timedelta(seconds=NICE_WIDTHS[-1])


def format_window(width: timedelta) -> str:
    """Format a width the way ``--window`` accepts it (``90s`` stays ``90s``)."""
    seconds = int(width.total_seconds())
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds % size == 0:
            return f"{seconds // size}{unit}"
    return f"{seconds}s"


def parse_time(text: str, option: str) -> datetime:
    """Parse an ISO 8601 time such as ``2026-03-02T22:00:00`` or ``2026-03-02T23:00+01:00``;
    a time without an offset is UTC."""
    try:
        value = datetime.fromisoformat(text.strip())
    except ValueError:
        raise LbguardError(
            f"{option}: invalid time {text!r}",
            hint="give an ISO 8601 time such as 2026-03-02T22:00:00 (UTC) or "
            "2026-03-02T23:00:00+01:00",
        ) from None
    return value if value.tzinfo is not None else value.replace(tzinfo=UTC)


def keep_time_range(con: Any, table: str, since: datetime | None, until: datetime | None) -> int:
    """Delete the requests before ``since`` or from ``until`` on; return how many."""
    conditions = []
    if since is not None:
        conditions.append(f"ts < TIMESTAMPTZ '{since.isoformat()}'")
    if until is not None:
        conditions.append(f"ts >= TIMESTAMPTZ '{until.isoformat()}'")
    if not conditions:
        return 0
    where = " OR ".join(conditions)
    row = con.execute(f"SELECT count(*) FROM {table} WHERE {where}").fetchone()
    con.execute(f"DELETE FROM {table} WHERE {where}")
    return int(row[0]) if row else 0
