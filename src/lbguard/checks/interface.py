"""Rule metadata, findings and the context every check reads.

A check is a plain function that reads a `CheckContext` and yields `Finding` values; its
`Rule` carries everything a user or a renderer needs to know about it. The registry in
`lbguard.checks.registry` lists every rule explicitly.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from functools import cached_property
from typing import TYPE_CHECKING

import numpy as np
import numpy.typing as npt

from lbguard.model import LoadBalancer, Location, Pool, Product, Severity
from lbguard.predict.result import PoolShare, Prediction
from lbguard.traffic import TrafficProfile

if TYPE_CHECKING:
    from lbguard.analysis.compare import Comparison

OptionValue = int | float
"""Value of a rule option; each option keeps the type of its default."""


class Family(StrEnum):
    """Group of related rules; the hundreds digit of a rule id names the family."""

    CONFIG = "config"
    ROUTING = "routing"
    BALANCING = "balancing"
    HEALTH = "health"
    CAPACITY = "capacity"
    HYGIENE = "hygiene"
    OBSERVED = "observed"
    """Departures of the observed traffic (access logs) from the prediction."""

    @property
    def digit(self) -> int:
        """Hundreds digit of the ids in this family: ``LB1xx`` for routing."""
        return list(Family).index(self)


@dataclass(frozen=True)
class Option:
    """A tunable threshold of a rule."""

    name: str
    """Identifier in snake_case, as used in option overrides."""

    default: OptionValue
    help: str
    """Description of the setting, with its unit."""

    minimum: OptionValue | None = None
    maximum: OptionValue | None = None

    def parse(self, value: object) -> OptionValue:
        """Convert an override to the option's type and check its range.

        Raises ValueError naming the option and the accepted range.
        """
        integer = isinstance(self.default, int)
        expected = "an integer" if integer else "a number"
        if isinstance(value, bool) or not isinstance(value, int | float | str):
            raise ValueError(f"option {self.name} expects {expected}, not {value!r}")
        if integer and isinstance(value, float) and not value.is_integer():
            raise ValueError(f"option {self.name} expects an integer, not {value!r}")
        try:
            converted: OptionValue = int(value) if integer else float(value)
        except ValueError:
            raise ValueError(f"option {self.name} expects {expected}, not {value!r}") from None
        if not math.isfinite(converted):
            raise ValueError(f"option {self.name} expects a finite number, not {value!r}")

        if self.minimum is not None and converted < self.minimum:
            raise ValueError(f"option {self.name} must be at least {self.minimum}, not {value}")
        if self.maximum is not None and converted > self.maximum:
            raise ValueError(f"option {self.name} must be at most {self.maximum}, not {value}")
        return converted


@dataclass(frozen=True)
class Finding:
    """One problem a rule found, with the numbers behind it and every line involved."""

    rule_id: str
    severity: Severity
    """Severity of this instance; a rule may raise or lower its default with context."""

    reason: str
    """Explanation of the problem in this configuration, with the numbers that show it."""

    locations: tuple[Location, ...]
    """Every configuration line involved, the primary one first."""

    subject: str = ""
    """The element the finding is about: ``pool/server``, ``frontend#index`` or a pool."""

    metrics: Mapping[str, float] = field(default_factory=dict)
    """Numbers behind the reason (shares as fractions, ratios), for machine readers."""

    @property
    def location(self) -> Location:
        """The primary location."""
        return self.locations[0] if self.locations else Location("", 0)


@dataclass(frozen=True)
class CheckContext:
    """Everything a check reads: the model, the prediction, the traffic profile and, when
    logs were given, the observation."""

    lb: LoadBalancer
    prediction: Prediction
    profile: TrafficProfile | None
    """The traffic profile given by the user; None when the default was used."""

    pools: Mapping[str, Pool]
    """Pools by name, so that checks over thousands of pools avoid linear lookups."""

    pool_shares: Mapping[str, PoolShare]
    """Predicted pool shares by pool name."""

    observation: Comparison | None = None
    """Observed shares from access logs compared with the prediction; None without logs."""

    capacity: Mapping[str, float] = field(default_factory=dict)
    """Relative capacity of servers by ``pool/server`` key, from the user's settings. A
    pool with a hint for some servers counts every other server of it as capacity 1."""

    @classmethod
    def build(
        cls,
        lb: LoadBalancer,
        prediction: Prediction,
        profile: TrafficProfile | None = None,
        *,
        observation: Comparison | None = None,
        capacity: Mapping[str, float] | None = None,
    ) -> CheckContext:
        return cls(
            lb=lb,
            prediction=prediction,
            profile=profile,
            pools={pool.name: pool for pool in lb.pools},
            pool_shares={share.pool: share for share in prediction.pools},
            observation=observation,
            capacity=dict(capacity or {}),
        )

    def capacity_shares(self, pool: PoolShare) -> dict[str, float] | None:
        """Return each eligible server's capacity share of ``pool``; None without hints."""
        return capacity_shares(self.capacity, pool)

    def pool_capacity(self, pool: str) -> dict[str, float] | None:
        """Return server name to capacity for a pool with capacity hints, else None."""
        prefix = f"{pool}/"
        hinted = {
            key[len(prefix) :]: value
            for key, value in self.capacity.items()
            if key.startswith(prefix)
        }
        if not hinted:
            return None
        servers = self.pools[pool].servers if pool in self.pools else ()
        return {server.name: hinted.get(server.name, 1.0) for server in servers}

    def pool_weights(self, pool: str) -> npt.NDArray[np.float64] | None:
        """Return the profile requests per row that reach ``pool``; None without a
        profile or when the routing cannot be evaluated."""
        if self.profile is None or not self.prediction.route_level_known:
            return None
        return self._routed.get(pool)

    @cached_property
    def _routed(self) -> dict[str, npt.NDArray[np.float64]]:
        # Routing the profile again costs one pass over the rules; only the checks that
        # look at hash keys per pool ask for it.
        from lbguard.predict.routing import route

        assert self.profile is not None
        serving = frozenset(pool.name for pool in self.lb.pools if pool.servers)
        return dict(route(self.lb.frontends, self.profile, serving).pool_weights)


Options = Mapping[str, OptionValue]
"""Option values of one rule by option name, defaults filled in."""

Check = Callable[[CheckContext, Options], Iterable[Finding]]
"""The function that runs a rule."""


@dataclass(frozen=True)
class Example:
    """A configuration fragment that triggers a rule, and the same fragment fixed."""

    product: Product
    bad: str
    good: str


def capacity_shares(capacity: Mapping[str, float], pool: PoolShare) -> dict[str, float] | None:
    """Return each eligible server's share of ``pool``'s capacity from the capacity hints
    (``pool/server`` keys; a server without a hint counts 1); None when no hint names a
    server of the pool or no server is eligible."""
    prefix = f"{pool.pool}/"
    if not any(key.startswith(prefix) for key in capacity):
        return None
    units = {
        server.server: capacity.get(prefix + server.server, 1.0)
        for server in pool.servers
        if server.eligible
    }
    total = sum(units.values())
    if total <= 0:
        return None
    return {name: unit / total for name, unit in units.items()}


_ID = re.compile(r"^LB(\d)\d\d$")
_NAME = re.compile(r"^[a-z]+\.[a-z0-9]+(-[a-z0-9]+)*$")


@dataclass(frozen=True)
class Rule:
    """Metadata of one audit rule and the function that checks it."""

    id: str
    """Stable identifier such as ``LB101``; the hundreds digit is the family's."""

    name: str
    """Dotted name such as ``routing.unreachable-rule``; the prefix is the family."""

    family: Family
    severity: Severity
    """Default severity of the rule's findings."""

    summary: str
    """One sentence stating what the rule detects, the same for every finding."""

    rationale: str
    """Why the situation hurts: what happens to traffic."""

    fix_hint: str
    """The usual fix, for every product."""

    check: Check = field(compare=False, repr=False)
    examples: tuple[Example, ...] = ()
    """One bad and good example per product the rule applies to."""

    options: tuple[Option, ...] = ()
    product_fix_hints: tuple[tuple[Product, str], ...] = ()
    """Fix hints of the products whose fix differs from `fix_hint`."""

    needs: str = "config"
    """Input the rule reads beyond the configuration: ``config`` (none), ``traffic`` (runs
    only with a traffic profile), ``sharpens`` (runs without one; a traffic profile makes
    it exact) or ``logs``."""

    def __post_init__(self) -> None:
        match = _ID.match(self.id)
        if match is None:
            raise ValueError(f"rule id {self.id!r} must look like LB101")
        if int(match.group(1)) != self.family.digit:
            raise ValueError(
                f"rule id {self.id} does not match family {self.family}: "
                f"expected LB{self.family.digit}xx"
            )
        if _NAME.match(self.name) is None or not self.name.startswith(f"{self.family}."):
            raise ValueError(
                f"rule name {self.name!r} must be '{self.family}.' followed by a kebab-case name"
            )
        names = [option.name for option in self.options]
        if len(set(names)) != len(names):
            raise ValueError(f"rule {self.id} declares an option twice: {names}")
        products = [example.product for example in self.examples]
        if len(set(products)) != len(products):
            raise ValueError(f"rule {self.id} has two examples for one product")

    @property
    def products(self) -> tuple[Product, ...]:
        """Products the rule applies to: those it has examples for."""
        return tuple(example.product for example in self.examples)

    def fix_hint_for(self, product: Product) -> str:
        """Return the fix hint for findings on ``product``'s configuration."""
        return dict(self.product_fix_hints).get(product, self.fix_hint)

    def example(self, product: Product) -> Example | None:
        for example in self.examples:
            if example.product is product:
                return example
        return None

    def option(self, name: str) -> Option | None:
        for option in self.options:
            if option.name == name:
                return option
        return None

    def default_options(self) -> dict[str, OptionValue]:
        return {option.name: option.default for option in self.options}

    def finding(
        self,
        reason: str,
        locations: Iterable[Location],
        *,
        subject: str = "",
        severity: Severity | None = None,
        metrics: Mapping[str, float] | None = None,
    ) -> Finding:
        """Build a finding of this rule; duplicate and empty locations are dropped."""
        unique: dict[Location, None] = {}
        for location in locations:
            if location.file:
                unique.setdefault(location, None)
        return Finding(
            rule_id=self.id,
            severity=severity or self.severity,
            reason=reason,
            locations=tuple(unique),
            subject=subject,
            metrics=dict(metrics or {}),
        )
