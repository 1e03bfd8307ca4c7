"""Per-server share tables kept with each snapshot, and the change between two of them.

A share table is the part of a prediction that history stores: enough to show how a change
moved traffic without predicting the old configuration again.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass

from lbguard.predict.result import Prediction

EPSILON = 0.0005
"""Share changes smaller than this (0.05 percentage points) are rounding noise."""


@dataclass(frozen=True)
class ServerShares:
    """One server's predicted shares in a snapshot."""

    pool: str
    server: str
    share_of_pool: float
    share_of_total: float | None
    """None when the pool's share of all traffic is unknown."""

    eligible: bool = True

    @property
    def key(self) -> str:
        return f"{self.pool}/{self.server}"


ShareTable = Mapping[str, ServerShares]
"""``pool/server`` key to that server's shares."""


def share_table(prediction: Prediction) -> dict[str, ServerShares]:
    """Extract the per-server shares of a prediction."""
    table: dict[str, ServerShares] = {}
    for pool in prediction.pools:
        for server in pool.servers:
            row = ServerShares(
                server.pool,
                server.server,
                server.share_of_pool,
                server.share_of_total,
                server.eligible,
            )
            table[row.key] = row
    return table


def dumps_shares(table: ShareTable) -> str:
    rows = [
        {
            "pool": row.pool,
            "server": row.server,
            "share_of_pool": row.share_of_pool,
            "share_of_total": row.share_of_total,
            "eligible": row.eligible,
        }
        for row in table.values()
    ]
    return json.dumps(rows, separators=(",", ":"))


def loads_shares(text: str) -> dict[str, ServerShares]:
    rows = [ServerShares(**item) for item in json.loads(text)]
    return {row.key: row for row in rows}


@dataclass(frozen=True)
class ShareDelta:
    """How one server's predicted share changed; None marks a server absent on that side."""

    pool: str
    server: str
    before_of_pool: float | None
    after_of_pool: float | None
    before_of_total: float | None
    after_of_total: float | None

    @property
    def key(self) -> str:
        return f"{self.pool}/{self.server}"

    @property
    def of_total(self) -> bool:
        """True when every side where the server exists has its share of all traffic.
        The change is then measured on all traffic, otherwise within the pool."""
        sides = (
            (self.before_of_pool, self.before_of_total),
            (self.after_of_pool, self.after_of_total),
        )
        return all(of_total is not None for of_pool, of_total in sides if of_pool is not None)

    @property
    def measured(self) -> tuple[float | None, float | None]:
        """The shares before and after on the basis `points` uses."""
        if self.of_total:
            return self.before_of_total, self.after_of_total
        return self.before_of_pool, self.after_of_pool

    @property
    def basis(self) -> str:
        """What the measured shares are fractions of: ``all traffic`` or the pool."""
        return "all traffic" if self.of_total else self.pool

    @property
    def points(self) -> float:
        """Size of the change in percentage points, of all traffic when both sides know it,
        otherwise of the pool; an absent side counts as 0."""
        before, after = self.measured
        return abs((after or 0.0) - (before or 0.0)) * 100


def share_deltas(old: ShareTable, new: ShareTable) -> tuple[ShareDelta, ...]:
    """List the servers whose shares changed, largest change first."""
    deltas: list[ShareDelta] = []
    for key in list(old) + [key for key in new if key not in old]:
        before, after = old.get(key), new.get(key)
        row = before or after
        assert row is not None
        delta = ShareDelta(
            row.pool,
            row.server,
            before.share_of_pool if before else None,
            after.share_of_pool if after else None,
            before.share_of_total if before else None,
            after.share_of_total if after else None,
        )
        if before is None or after is None or _moved(delta):
            deltas.append(delta)
    deltas.sort(key=lambda delta: (-delta.points, delta.key))
    return tuple(deltas)


def _moved(delta: ShareDelta) -> bool:
    if abs((delta.after_of_pool or 0.0) - (delta.before_of_pool or 0.0)) >= EPSILON:
        return True
    if (delta.before_of_total is None) != (delta.after_of_total is None):
        return True
    return abs((delta.after_of_total or 0.0) - (delta.before_of_total or 0.0)) >= EPSILON


def pool_points(deltas: tuple[ShareDelta, ...]) -> Mapping[str, float]:
    """Return the largest server change in each pool, in percentage points."""
    largest: dict[str, float] = {}
    for delta in deltas:
        largest[delta.pool] = max(largest.get(delta.pool, 0.0), delta.points)
    return largest


def format_share(value: float | None) -> str:
    """Show a fraction as a percentage with one decimal, or ``absent``."""
    return "absent" if value is None else f"{value * 100:.1f} %"
