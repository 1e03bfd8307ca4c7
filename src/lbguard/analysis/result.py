"""Result types of a log analysis: per-server and per-pool statistics, the timeline of
windows, changes found in it and regions."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from enum import StrEnum

import numpy as np
import numpy.typing as npt

from lbguard.logs import FileStats
from lbguard.model import Diagnostic

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]

NO_SERVER = "<none>"
"""Server name for requests the load balancer responded to without reaching a server."""


@dataclass(frozen=True)
class Percentiles:
    """Latency percentiles in milliseconds; None when no request has the timer."""

    p50: float | None
    p90: float | None
    p99: float | None


@dataclass(frozen=True)
class GroupStats:
    """Counts, errors and latency of one group of requests."""

    requests: int
    status_4xx: int
    status_5xx: int
    lb_errors: int
    """Requests the load balancer responded to itself (no server reached, queue timeout...)."""

    errors: int
    """Requests with status 5xx, or ended by the load balancer with an error."""

    total_ms: Percentiles
    """Whole request time (HAProxy Ta, nginx ``$request_time``)."""

    response_ms: Percentiles
    """Server response-header time (HAProxy Tr, nginx ``$upstream_header_time``)."""

    @property
    def error_rate(self) -> float:
        return self.errors / self.requests if self.requests else 0.0


@dataclass(frozen=True)
class ServerStats:
    """One server's observed traffic."""

    pool: str
    server: str
    """Server name, or NO_SERVER for requests of the pool that reached no server."""

    stats: GroupStats
    share_of_pool: float
    share_of_total: float

    @property
    def key(self) -> str:
        return f"{self.pool}/{self.server}"


@dataclass(frozen=True)
class PoolStats:
    """One pool's observed traffic and the spread over its servers."""

    pool: str
    stats: GroupStats
    share_of_total: float
    servers: tuple[ServerStats, ...]
    max_over_mean: float | None
    """Busiest server's requests over the mean of the servers seen in the log; None when
    no request of the pool reached a server. Servers that received nothing do not appear
    in a log, so they are not in the mean."""

    coefficient_of_variation: float | None


@dataclass(frozen=True, eq=False)
class Timeline:
    """Per-window series, one row per window from the first request to the last."""

    width: timedelta
    starts: tuple[datetime, ...]
    requests: IntArray
    errors: IntArray
    status_4xx: IntArray
    status_5xx: IntArray
    lb_errors: IntArray
    total_p50: FloatArray
    total_p90: FloatArray
    total_p99: FloatArray
    """Latency percentiles per window in ms; NaN for a window without the timer."""

    server_keys: tuple[str, ...]
    """``pool/server`` for each column of ``server_counts``, requests without a server
    excluded."""

    server_counts: IntArray
    """Requests per window (rows) and server (columns)."""

    server_errors: IntArray
    pool_names: tuple[str, ...]
    pool_counts: IntArray
    pool_skew: FloatArray
    """Max/mean of the pool's servers per window; NaN when the pool had no request."""

    skew: FloatArray
    """Max/mean over every server of every pool per window; NaN for an empty window."""

    def __len__(self) -> int:
        return len(self.starts)

    @property
    def error_rate(self) -> FloatArray:
        with np.errstate(divide="ignore", invalid="ignore"):
            rate = self.errors / self.requests
        return np.where(self.requests > 0, rate, np.nan)

    @property
    def server_shares(self) -> FloatArray:
        """Each server's fraction of the window's server-bound requests."""
        totals = self.server_counts.sum(axis=1, keepdims=True)
        with np.errstate(divide="ignore", invalid="ignore"):
            shares = self.server_counts / totals
        return np.where(totals > 0, shares, 0.0)


class ChangeKind(StrEnum):
    """Meaning of a change point in the timeline."""

    ONSET = "onset"
    """Skew or error rate rose above the baseline."""

    RECOVERY = "recovery"
    """Skew and error rate went back near the baseline."""

    CHANGE = "change"
    """The distribution changed without a clear rise or return."""


@dataclass(frozen=True)
class ServerShift:
    """A server's share of requests before and after a change."""

    key: str
    share_before: float
    share_after: float
    error_rate_before: float
    error_rate_after: float


@dataclass(frozen=True)
class Change:
    """A change point between two segments of the timeline."""

    kind: ChangeKind
    window: int
    """Index of the first window of the new segment."""

    at: datetime
    skew_before: float
    skew_after: float
    error_rate_before: float
    error_rate_after: float
    p90_before: float | None
    p90_after: float | None
    risen: tuple[ServerShift, ...]
    """Servers whose share rose past the effect-size floor, largest rise first."""

    fallen: tuple[ServerShift, ...]
    magnitude: float
    """Total variation distance between the two segments' server distributions: half the
    sum of absolute share differences, in [0, 1]."""


@dataclass(frozen=True)
class Segment:
    """A run of windows with a stable distribution."""

    first: int
    last: int
    """Index of the last window, inclusive."""

    start: datetime
    end: datetime
    """End of the last window."""

    requests: int
    error_rate: float
    skew: float
    p90_ms: float | None
    top_servers: tuple[tuple[str, float], ...]
    """Up to three busiest servers with their share of the segment's requests."""


@dataclass(frozen=True)
class RegionStats:
    """Observed traffic from one client region."""

    region: str
    stats: GroupStats
    share_of_total: float
    error_rate_baseline: float | None
    """Error rate before the onset; None without an onset."""

    error_rate_incident: float | None
    """Error rate between onset and recovery (or the end)."""

    incident_requests: int

    incident_share_on_risen: float | None
    """Fraction of the region's incident requests that went to the servers whose share
    rose at the onset."""

    top_server: str | None
    top_server_share: float


@dataclass(frozen=True)
class Diagnosis:
    """Reading of the incident: where the load and the errors concentrate."""

    pattern: str
    """``concentration`` (a subset of servers took more traffic), ``shared-dependency``
    (latency or errors rose on every server without a shift), ``none``."""

    summary: str
    overloaded: tuple[str, ...]
    """``pool/server`` keys whose share rose at the onset."""

    affected_regions: tuple[str, ...]
    """Regions where the incident's errors concentrate, most excess errors first."""

    started: datetime | None = None
    ended: datetime | None = None
    """Recovery time; None when the log ends inside the incident."""

    error_rate_baseline: float | None = None
    error_rate_incident: float | None = None
    """Error rate over every window from the onset to the recovery."""

    share_baseline: float | None = None
    """Combined share of the overloaded servers in the baseline segment."""

    share_incident: float | None = None
    """Combined share of the overloaded servers from the onset to the recovery."""


@dataclass(frozen=True, eq=False)
class LogAnalysis:
    """Everything ``lbguard logs`` reports."""

    files: tuple[FileStats, ...]
    first: datetime | None
    last: datetime | None
    stats: GroupStats
    pools: tuple[PoolStats, ...]
    timeline: Timeline | None
    segments: tuple[Segment, ...]
    changes: tuple[Change, ...]
    regions: tuple[RegionStats, ...]
    region_source: str | None
    diagnosis: Diagnosis
    diagnostics: tuple[Diagnostic, ...] = field(default=())
    """Problems with side inputs such as the region map."""

    @property
    def onset(self) -> Change | None:
        return next((c for c in self.changes if c.kind == ChangeKind.ONSET), None)

    @property
    def recovery(self) -> Change | None:
        return next((c for c in self.changes if c.kind == ChangeKind.RECOVERY), None)
