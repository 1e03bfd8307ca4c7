"""Interface between the routing engine and each product's balancing model.

The engine routes the traffic profile to pools, then hands every pool to the balancer of
the load balancer's product. A balancer returns each server's share of the requests that
reached the pool.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

import numpy as np
import numpy.typing as npt

from lbguard.model import Pool
from lbguard.predict.result import ShareMethod
from lbguard.traffic import TrafficProfile


@dataclass(frozen=True)
class PoolRequests:
    """The requests of a traffic profile that reach one pool."""

    profile: TrafficProfile
    """The whole profile; rows that do not reach the pool have weight 0 in ``weight``."""

    weight: npt.NDArray[np.float64]
    """Requests per profile row that reach this pool, aligned with the profile's rows."""

    @property
    def total(self) -> float:
        return float(self.weight.sum())


@dataclass(frozen=True)
class PoolOutcome:
    """How a pool spreads its requests over its servers."""

    shares: Mapping[str, float]
    """Server name to fraction of the pool's requests; every server of the pool appears."""

    method: ShareMethod
    eligible: frozenset[str]
    """Servers that can receive load-balanced traffic in this health scenario."""

    fair: Mapping[str, float]
    """Server name to weight over the eligible servers' total weight (0 when ineligible)."""

    notes: tuple[str, ...] = field(default=())
    """Assumptions and fallbacks, one sentence each."""


Health = Mapping[str, bool]
"""Server name to True (up) or False (down) for one pool; absent servers are up."""

Balancer = Callable[[Pool, PoolRequests | None, Health], PoolOutcome]
"""A product's balancing model. ``None`` requests means no traffic profile was given: the
balancer then uses the product's behaviour over uniformly spread keys and says so in
``notes``."""
