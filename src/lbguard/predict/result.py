"""Result types of a prediction: shares per rule, pool, server and physical endpoint."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from lbguard.model import Location, Rule


class ShareMethod(StrEnum):
    """How a share was obtained."""

    EXACT = "exact"
    """Deterministic algorithm, or an exact hash over the profile's keys."""

    EXPECTED = "expected"
    """Expectation of a random algorithm."""

    LOAD_DEPENDENT = "load-dependent"
    """Depends on concurrency or latency (leastconn, first); an assumption is stated."""

    UNKNOWN = "unknown"
    """Cannot be computed from the inputs (no traffic profile, dynamic routing)."""


@dataclass(frozen=True)
class RuleShare:
    """Traffic a routing rule receives: the requests it is the first to match."""

    frontend: str
    index: int
    """Position of the rule in the frontend, from 0; -1 for the default pool."""

    rule: Rule | None
    """None for the frontend's default-pool line."""

    target: str
    """Pool name, or the action (``redirect``, ``deny 403``...) for a local answer."""

    share: float | None
    """Fraction of all profile traffic; None when the route level is unknown."""

    could_match: float | None
    """Fraction of the frontend's traffic the condition matches, ignoring earlier rules."""

    location: Location


@dataclass(frozen=True)
class ServerShare:
    """A server's predicted share."""

    pool: str
    server: str
    endpoint: str
    """``address:port``, the key that joins one physical server across pools."""

    share_of_pool: float
    share_of_total: float | None
    """None when the pool's share of all traffic is unknown."""

    fair_share: float
    """Share of the pool the server would get if traffic followed weights exactly: weight over
    the sum of the eligible servers' weights."""

    weight: int
    backup: bool
    eligible: bool
    """False for a server that is down, disabled, drained or an unused backup."""

    location: Location

    @property
    def key(self) -> str:
        return f"{self.pool}/{self.server}"


@dataclass(frozen=True)
class PoolShare:
    """A pool's predicted share and the spread over its servers."""

    pool: str
    share_of_total: float | None
    method: ShareMethod
    servers: tuple[ServerShare, ...]
    notes: tuple[str, ...]
    """Assumptions and fallbacks used for this pool, stated for the reader."""

    max_over_mean: float | None
    """Maximum eligible server share over the mean of the eligible servers; None when no
    server is eligible."""

    coefficient_of_variation: float | None
    """Standard deviation over mean of eligible servers' shares."""

    location: Location


@dataclass(frozen=True)
class EndpointShare:
    """Combined share of one physical ``address:port`` across every pool that lists it."""

    endpoint: str
    share_of_total: float | None
    members: tuple[str, ...]
    """``pool/server`` keys that point at this endpoint."""


@dataclass(frozen=True)
class UnevaluatedItem:
    """Something the prediction could not evaluate, reported instead of guessed."""

    text: str
    reason: str
    location: Location
    share: float | None
    """Traffic that reached it, when known."""


@dataclass(frozen=True)
class Prediction:
    """The whole prediction for one load balancer and one traffic profile."""

    rules: tuple[RuleShare, ...]
    pools: tuple[PoolShare, ...]
    endpoints: tuple[EndpointShare, ...]
    unevaluated: tuple[UnevaluatedItem, ...]
    assumptions: tuple[str, ...]
    traffic: str
    """Description of the traffic profile used."""

    route_level_known: bool
    """False when no traffic profile was given, so only within-pool shares are computed."""

    def pool(self, name: str) -> PoolShare | None:
        for pool in self.pools:
            if pool.pool == name:
                return pool
        return None

    def server(self, key: str) -> ServerShare | None:
        pool_name, _, server_name = key.partition("/")
        pool = self.pool(pool_name)
        if pool is None:
            return None
        for server in pool.servers:
            if server.server == server_name:
                return server
        return None
