"""Route a traffic profile through each frontend's ordered rules, vectorised.

Conditions use three-valued logic over the profile's rows: a row is known true, known
false, or unknown (an `Unevaluated` condition, a fetch lbguard does not model, or a column
the profile lacks). Each matcher is computed once per distinct column value
(``np.unique`` with ``return_inverse``) and broadcast back to the rows.

Rules are tried in order and the first match wins (HAProxy ``use_backend``). A row whose
condition is unknown is treated as not matching, so it goes on to the next rule. The
traffic that an unknown condition decides is reported with the rule instead of guessed.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np
import numpy.typing as npt

from lbguard.model import (
    ActionKind,
    AllOf,
    AnyOf,
    Condition,
    Constant,
    Frontend,
    Location,
    Matcher,
    Mode,
    Named,
    Not,
    Rule,
    Unevaluated,
)
from lbguard.predict.matching import UnsupportedPatternError, compile_matcher, folded_patterns
from lbguard.predict.result import RuleShare, UnevaluatedItem
from lbguard.predict.samples import sample_for
from lbguard.predict.value_index import INDEXED_METHODS, ValueIndex
from lbguard.traffic import TrafficProfile

Mask = npt.NDArray[np.bool_]
Weights = npt.NDArray[np.float64]

NO_DEFAULT_TARGET = "503"
"""Target of requests that no rule matches in a frontend without a default pool. HAProxy
responds 503 Service Unavailable (doc/configuration.txt, "use_backend", v2.6)."""


@dataclass(frozen=True)
class Truth:
    """A condition's value per profile row: known true, known false, or neither."""

    true: Mask
    false: Mask

    @property
    def unknown(self) -> Mask:
        result: Mask = ~(self.true | self.false)
        return result


@dataclass
class _Issue:
    """A condition part that could not be evaluated, and the rows it left unknown."""

    text: str
    reason: str
    location: Location
    rows: Mask


class ConditionEvaluator:
    """Evaluate conditions over one profile, caching each matcher's result.

    With *indexed* (the default), string match methods read a `ValueIndex` of each column
    instead of testing every distinct value; both ways give the same result.
    """

    def __init__(self, profile: TrafficProfile, *, indexed: bool = True) -> None:
        self.profile = profile
        self.size = len(profile)
        self.indexed = indexed
        self.issues: list[_Issue] = []
        self._cache: dict[Matcher, Truth] = {}
        self._uniques: dict[
            tuple[str, str], tuple[npt.NDArray[np.object_], npt.NDArray[np.intp]]
        ] = {}
        self._indexes: dict[tuple[str, str | None], ValueIndex] = {}

    def constant(self, value: bool) -> Truth:
        full = np.full(self.size, value, dtype=bool)
        return Truth(full, ~full)

    def unknown(self) -> Truth:
        empty = np.zeros(self.size, dtype=bool)
        return Truth(empty, empty.copy())

    def evaluate(self, condition: Condition) -> Truth:
        if isinstance(condition, Constant):
            return self.constant(condition.value)
        if isinstance(condition, Named):
            return self.evaluate(condition.condition)
        if isinstance(condition, Not):
            inner = self.evaluate(condition.term)
            return Truth(inner.false, inner.true)
        if isinstance(condition, AllOf):
            result = self.constant(True)
            for term in condition.terms:
                part = self.evaluate(term)
                result = Truth(result.true & part.true, result.false | part.false)
            return result
        if isinstance(condition, AnyOf):
            result = self.constant(False)
            for term in condition.terms:
                part = self.evaluate(term)
                result = Truth(result.true | part.true, result.false & part.false)
            return result
        if isinstance(condition, Unevaluated):
            self._report(condition.text, condition.reason, condition.location)
            return self.unknown()
        return self._matcher(condition)

    def _report(self, text: str, reason: str, location: Location) -> None:
        rows = np.ones(self.size, dtype=bool)
        self.issues.append(_Issue(text, reason, location, rows))

    def _distinct(
        self, key: tuple[str, str], column: npt.NDArray[np.object_]
    ) -> tuple[npt.NDArray[np.object_], npt.NDArray[np.intp]]:
        if key not in self._uniques:
            values, inverse = np.unique(column.astype(str), return_inverse=True)
            self._uniques[key] = (values.astype(object), inverse.reshape(-1))
        return self._uniques[key]

    def _matcher(self, matcher: Matcher) -> Truth:
        cached = self._cache.get(matcher)
        if cached is not None:
            return cached

        text = matcher.text or f"{matcher.fetch}({matcher.arg or ''}) -m {matcher.method}"
        sample = sample_for(matcher.fetch, matcher.arg, self.profile)
        if sample is None:
            self._report(text, f"sample fetch {matcher.fetch!r} is not modelled", matcher.location)
            return self.unknown()
        missing = sorted(sample.needs - self.profile.known)
        if missing:
            self._report(
                text, f"the traffic profile has no {', '.join(missing)} column", matcher.location
            )
            return self.unknown()
        try:
            test = compile_matcher(matcher)
        except UnsupportedPatternError as error:
            self._report(text, str(error), matcher.location)
            return self.unknown()

        column_key = (matcher.fetch, (matcher.arg or "").lower())
        values, inverse = self._distinct(column_key, sample.column)
        split = sample.split
        if self.indexed and matcher.method in INDEXED_METHODS:
            # The splitter depends on the argument's case (url_param, cookie) but the
            # column does not.
            index_key = (matcher.fetch, matcher.arg)
            index = self._indexes.get(index_key)
            if index is None:
                index = self._indexes[index_key] = ValueIndex(values.tolist(), split)
            per_value = index.match(matcher.method, folded_patterns(matcher), matcher.ignore_case)
        else:
            per_value = np.fromiter(
                (any(test(v) for v in split(value)) for value in values),
                dtype=bool,
                count=values.shape[0],
            )
        matched = per_value[inverse]
        truth = Truth(matched, ~matched)
        self._cache[matcher] = truth
        return truth


class PoolWeights(Mapping[str, Weights]):
    """Requests per profile row that reach each pool, built when a pool is read.

    Each rule's contribution is kept as the rows it takes and their weights, so that
    thousands of pools over thousands of rows do not each hold a whole column. Reading a
    pool adds the contributions in rule order, which gives the same floats as adding
    whole columns because adding 0.0 to a weight leaves it unchanged.
    """

    def __init__(self, size: int = 0) -> None:
        self.size = size
        self._parts: dict[str, list[tuple[npt.NDArray[np.intp], Weights]]] = {}

    def add(self, pool: str, taken: Weights) -> None:
        """Add the weights a rule sends to *pool*, one per profile row."""
        (rows,) = taken.nonzero()
        self._parts.setdefault(pool, []).append((rows, taken[rows]))

    def __getitem__(self, pool: str) -> Weights:
        weights = np.zeros(self.size, dtype=np.float64)
        for rows, values in self._parts[pool]:
            weights[rows] += values
        return weights

    def __iter__(self) -> Iterator[str]:
        return iter(self._parts)

    def __len__(self) -> int:
        return len(self._parts)

    def any_traffic(self) -> bool:
        """Tell whether some pool receives a request."""
        return any(values.any() for parts in self._parts.values() for _, values in parts)


@dataclass
class RoutingResult:
    """The profile's traffic per rule, and per pool as row weights."""

    rules: list[RuleShare] = field(default_factory=list)
    pool_weights: PoolWeights = field(default_factory=PoolWeights)
    unevaluated: list[UnevaluatedItem] = field(default_factory=list)
    assumptions: list[str] = field(default_factory=list)
    local_answers: dict[str, float] = field(default_factory=dict)
    """Share of all traffic answered by the load balancer itself, by target."""


def local_target(rule: Rule) -> str:
    """Return the target text of a rule that answers locally (``deny 403``...)."""
    kind = rule.action.kind
    if kind is ActionKind.ROUTE:
        return rule.action.pool or ""
    if kind is ActionKind.DYNAMIC:
        return f"dynamic {rule.action.pool or rule.text}"
    if kind is ActionKind.RETURN and rule.action.status is None and rule.action.detail:
        # An answer without one fixed status, such as nginx serving static files.
        return rule.action.detail
    status = f" {rule.action.status}" if rule.action.status is not None else ""
    return f"{kind.value}{status}"


def reaches_default(frontend: Frontend) -> bool:
    """Tell whether a request can pass every rule of *frontend* and reach its default.

    A last rule without a condition takes every request left, as the nginx parser's
    static-file rule does, so the frontend has no default route.
    """
    return not frontend.rules or frontend.rules[-1].condition is not None


def _routes_to_servers(frontend: Frontend, serving_pools: frozenset[str] | None) -> bool:
    """Tell whether a frontend can send requests to a pool with servers.

    A stats-only ``listen`` section has no servers and answers every request itself.
    """
    if serving_pools is None:
        return True
    if frontend.default_pool in serving_pools:
        return True
    return any(
        rule.action.kind is ActionKind.DYNAMIC
        or (rule.action.kind is ActionKind.ROUTE and rule.action.pool in serving_pools)
        for rule in frontend.rules
    )


def frontend_weights(
    frontends: Sequence[Frontend],
    profile: TrafficProfile,
    result: RoutingResult,
    serving_pools: frozenset[str] | None = None,
) -> dict[str, Weights]:
    """Split the profile's rows over frontends: by the ``frontend`` column, else equally.

    Rows without a frontend are split equally over the HTTP frontends that route to a pool
    with servers (*serving_pools*). When there are none, they go to every HTTP frontend,
    and when no frontend is HTTP, to every frontend.
    """
    names = [frontend.name for frontend in frontends]
    shares = {name: np.zeros(len(profile), dtype=np.float64) for name in names}
    if not names:
        return shares

    unattributed = profile.frontend == ""
    http = [f for f in frontends if f.mode is Mode.HTTP]
    serving = [f.name for f in http if _routes_to_servers(f, serving_pools)]
    candidates = serving or [f.name for f in http] or names
    if unattributed.any() and len(candidates) > 1:
        result.assumptions.append(
            "requests without a frontend are split equally over the frontends "
            + ", ".join(candidates)
        )
    elif unattributed.any() and len(names) > 1:
        result.assumptions.append(
            f"requests without a frontend go to {candidates[0]}, the only frontend "
            "that routes to servers"
        )
    for name in candidates:
        shares[name][unattributed] = profile.weight[unattributed] / len(candidates)
    for name in names:
        own = profile.frontend == name
        shares[name][own] += profile.weight[own]

    known_names = np.isin(profile.frontend, np.array(names, dtype=object))
    stray = ~unattributed & ~known_names
    if stray.any():
        total = profile.total
        for name in sorted(set(profile.frontend[stray].tolist())):
            rows = profile.frontend == name
            result.unevaluated.append(
                UnevaluatedItem(
                    text=f"frontend {name}",
                    reason="the traffic profile names a frontend the configuration lacks",
                    location=Location("", 0),
                    share=float(profile.weight[rows].sum()) / total if total else None,
                )
            )
    return shares


def route(
    frontends: Sequence[Frontend],
    profile: TrafficProfile,
    serving_pools: frozenset[str] | None = None,
    *,
    indexed: bool = True,
) -> RoutingResult:
    """Route every row of *profile* through *frontends*; first matching rule wins.

    *serving_pools* names the pools that have servers; rows without a frontend go only to
    frontends that can reach one of them. *indexed* is passed to `ConditionEvaluator`.
    """
    result = RoutingResult(pool_weights=PoolWeights(len(profile)))
    total = profile.total
    evaluator = ConditionEvaluator(profile, indexed=indexed)

    split = frontend_weights(frontends, profile, result, serving_pools)
    for frontend in frontends:
        weights = split[frontend.name]
        frontend_total = float(weights.sum())
        remaining = weights.copy()
        for index, rule in enumerate(frontend.rules):
            issues_before = len(evaluator.issues)
            if rule.condition is None:
                truth = evaluator.constant(True)
            else:
                truth = evaluator.evaluate(rule.condition)
            taken = np.where(truth.true, remaining, 0.0)
            could = float(weights[truth.true].sum())

            new_issues = evaluator.issues[issues_before:]
            if new_issues:
                undecided = float(np.where(truth.unknown, remaining, 0.0).sum())
            for issue in new_issues:
                result.unevaluated.append(
                    UnevaluatedItem(
                        text=issue.text,
                        reason=f"{issue.reason}; the rule at {rule.location} is taken as "
                        "not matching for the requests it decides",
                        location=issue.location,
                        share=undecided / total if total else None,
                    )
                )
            _assign(
                result,
                frontend,
                index,
                rule,
                target=local_target(rule),
                taken=taken,
                total=total,
                could_match=could / frontend_total if frontend_total else None,
            )
            remaining = remaining - taken

        if not reaches_default(frontend):
            continue
        target = frontend.default_pool or NO_DEFAULT_TARGET
        _assign(
            result,
            frontend,
            -1,
            None,
            target=target,
            taken=remaining,
            total=total,
            could_match=1.0 if frontend_total else None,
        )
    return result


def _assign(
    result: RoutingResult,
    frontend: Frontend,
    index: int,
    rule: Rule | None,
    *,
    target: str,
    taken: Weights,
    total: float,
    could_match: float | None,
) -> None:
    share = float(taken.sum()) / total if total else 0.0
    location = rule.location if rule is not None else frontend.default_location
    result.rules.append(
        RuleShare(
            frontend=frontend.name,
            index=index,
            rule=rule,
            target=target,
            share=share,
            could_match=could_match,
            location=location,
        )
    )
    routes_to_pool = rule is None and frontend.default_pool is not None
    routes_to_pool = routes_to_pool or (rule is not None and rule.action.kind is ActionKind.ROUTE)
    if routes_to_pool:
        result.pool_weights.add(target, taken)
        return
    result.local_answers[target] = result.local_answers.get(target, 0.0) + share
    if rule is not None and rule.action.kind is ActionKind.DYNAMIC and share > 0:
        result.unevaluated.append(
            UnevaluatedItem(
                text=rule.text,
                reason="the backend name is computed per request; its traffic is not "
                "attributed to any pool",
                location=rule.location,
                share=share,
            )
        )
