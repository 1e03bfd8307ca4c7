"""Traffic profiles: weighted request samples, stored column by column.

A profile is a table with one row per distinct request shape and a weight (the number of
requests of that shape). Columns are numpy arrays so that prediction over a million rows
stays vectorised.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

StrColumn = npt.NDArray[np.object_]
"""A column of Python ``str`` values; the empty string stands for an absent value."""

REQUEST_FIELDS = ("frontend", "method", "host", "path", "query", "client_ip")
"""Named request columns every profile has (empty strings when the source lacks them)."""


@dataclass(frozen=True)
class TrafficProfile:
    """Weighted request samples."""

    weight: npt.NDArray[np.float64]
    """Requests per row."""

    frontend: StrColumn
    """Frontend that receives the row; empty means every frontend shares it equally."""

    method: StrColumn
    host: StrColumn
    """Host header value as the client sends it, port included when present."""

    path: StrColumn
    """Path from the first ``/`` up to ``?``."""

    query: StrColumn
    """Query string without the ``?``."""

    client_ip: StrColumn
    headers: Mapping[str, StrColumn] = field(default_factory=dict)
    """Other request headers by lower-case name."""

    known: frozenset[str] = frozenset()
    """Columns the source really provides (``path``, ``header:x-user``, ...); predictions
    that need any other column are reported as unknown instead of guessed."""

    description: str = ""
    """Where the profile comes from, for reports."""

    is_default: bool = False
    """True for the stated default used when no traffic is given."""

    def __len__(self) -> int:
        return int(self.weight.shape[0])

    @property
    def total(self) -> float:
        return float(self.weight.sum())


# Column names used in ``TrafficProfile.known`` for the named request columns.
HEADER_PREFIX = "header:"
"""Prefix of a header column's name in ``known``: ``header:x-user``."""


def header_key(name: str) -> str:
    """Return the ``known`` entry of a request header, by its case-insensitive name."""
    return HEADER_PREFIX + name.lower()


def as_str_column(values: Sequence[str] | npt.NDArray[Any], size: int | None = None) -> StrColumn:
    """Return *values* as an object array of ``str``; None values become empty strings."""
    column = np.asarray(values, dtype=object)
    if column.ndim != 1:
        raise ValueError(f"a profile column must be one-dimensional, got shape {column.shape}")
    if size is not None and column.shape[0] != size:
        raise ValueError(f"a profile column has {column.shape[0]} rows, expected {size}")
    missing = np.array([value is None for value in column], dtype=bool)
    if missing.any():
        column = column.copy()
        column[missing] = ""
    return column


def empty_column(size: int) -> StrColumn:
    """Return a column of *size* absent values."""
    return np.full(size, "", dtype=object)


def from_columns(
    weight: Sequence[float] | npt.NDArray[Any] | None = None,
    *,
    frontend: Sequence[str] | npt.NDArray[Any] | None = None,
    method: Sequence[str] | npt.NDArray[Any] | None = None,
    host: Sequence[str] | npt.NDArray[Any] | None = None,
    path: Sequence[str] | npt.NDArray[Any] | None = None,
    query: Sequence[str] | npt.NDArray[Any] | None = None,
    client_ip: Sequence[str] | npt.NDArray[Any] | None = None,
    headers: Mapping[str, Sequence[str] | npt.NDArray[Any]] | None = None,
    description: str = "",
    known: Iterable[str] | None = None,
) -> TrafficProfile:
    """Build a profile from whole columns, one row per request shape.

    Every column given becomes known (see ``TrafficProfile.known``) unless *known* lists
    the known columns explicitly. A column left out is filled with absent values. Without
    *weight* every row counts as one request. Header names are matched case-insensitively
    and stored lower-case.
    """
    named: dict[str, Sequence[str] | npt.NDArray[Any] | None] = {
        "frontend": frontend,
        "method": method,
        "host": host,
        "path": path,
        "query": query,
        "client_ip": client_ip,
    }
    sizes = {len(column) for column in named.values() if column is not None}
    sizes |= {len(column) for column in (headers or {}).values()}
    if weight is not None:
        sizes.add(len(weight))
    if len(sizes) > 1:
        raise ValueError(f"profile columns differ in length: {sorted(sizes)}")
    size = sizes.pop() if sizes else 0

    if weight is None:
        weights = np.ones(size, dtype=np.float64)
    else:
        weights = np.asarray(weight, dtype=np.float64)
    if weights.size and (not np.isfinite(weights).all() or (weights < 0).any()):
        raise ValueError("profile weights must be finite and not negative")

    columns = {
        name: empty_column(size) if values is None else as_str_column(values, size)
        for name, values in named.items()
    }
    header_columns = {
        name.lower(): as_str_column(values, size) for name, values in (headers or {}).items()
    }
    if known is None:
        provided = {name for name, values in named.items() if values is not None}
        provided |= {header_key(name) for name in header_columns}
    else:
        provided = set(known)

    return TrafficProfile(
        weight=weights,
        frontend=columns["frontend"],
        method=columns["method"],
        host=columns["host"],
        path=columns["path"],
        query=columns["query"],
        client_ip=columns["client_ip"],
        headers=header_columns,
        known=frozenset(provided),
        description=description,
    )


def default_profile() -> TrafficProfile:
    """Return the stated default used when no traffic is given.

    The default has no rows and knows no column, so the share of each routing rule and
    pool stays unknown, and each pool's servers are compared over uniformly spread keys
    (for hashing) or by the algorithm alone (for round robin and the like).
    """
    profile = from_columns(
        description="no traffic profile: route shares unknown, pool shares over "
        "uniformly spread keys"
    )
    return replace(profile, is_default=True)


def load_profile(path: str | Path, *, section: str | None = None) -> TrafficProfile:
    """Read a traffic profile from a YAML file (format in docs/traffic-profile.md).

    *section* names a top-level key whose value is the profile, for files that hold more
    than a profile (``traffic`` in a test case file). Raises `lbguard.errors.TrafficError`
    with the file and line of the first bad value.
    """
    from lbguard.traffic_yaml import read_profile_file

    return read_profile_file(Path(path), section=section)
