"""Traffic profiles: weighted request samples, stored column by column.

A profile is a table with one row per distinct request shape and a weight (the number of
requests of that shape). Columns are numpy arrays so that prediction over a million rows
stays vectorised.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

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
