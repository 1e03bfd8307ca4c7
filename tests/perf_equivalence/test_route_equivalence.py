"""Routing with indexed matching and per-rule pool contributions gives the plain results."""

from __future__ import annotations

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from lbguard.model import (
    Action,
    ActionKind,
    AllOf,
    AnyOf,
    Condition,
    Frontend,
    Location,
    Matcher,
    MatchMethod,
    Mode,
    Not,
    Rule,
    Unevaluated,
)
from lbguard.predict.routing import ConditionEvaluator, route
from lbguard.traffic import TrafficProfile, from_columns

POOLS = ["p0", "p1", "p2"]
piece = st.sampled_from(["/", ".", "a", "A", "b", "c"])
short_text = st.text(alphabet=piece, max_size=5)


def at(line: int) -> Location:
    return Location("lb.cfg", line)


@st.composite
def conditions(draw: st.DrawFn, depth: int = 2) -> Condition:
    kind = draw(st.sampled_from(["matcher"] * 4 + ["all", "any", "not", "unevaluated"]))
    if depth == 0 or kind == "matcher":
        method = draw(
            st.sampled_from(
                [
                    MatchMethod.STR,
                    MatchMethod.BEG,
                    MatchMethod.END,
                    MatchMethod.DIR,
                    MatchMethod.SUB,
                    MatchMethod.LEN,
                ]
            )
        )
        patterns = draw(st.lists(short_text, min_size=1, max_size=2))
        if method is MatchMethod.LEN:
            patterns = [str(draw(st.integers(0, 6)))]
        fetch = draw(st.sampled_from(["path", "host", "method"]))
        return Matcher(fetch, None, method, tuple(patterns), draw(st.booleans()), at(3), "")
    if kind == "unevaluated":
        return Unevaluated("ssl_fc", "not modelled", at(4))
    if kind == "not":
        return Not(draw(conditions(depth - 1)))
    terms = tuple(draw(st.lists(conditions(depth - 1), min_size=1, max_size=3)))
    return AllOf(terms) if kind == "all" else AnyOf(terms)


@st.composite
def frontends(draw: st.DrawFn) -> Frontend:
    rules = []
    for line in range(draw(st.integers(0, 8))):
        condition = draw(st.none() | conditions())
        pool = draw(st.sampled_from(POOLS))
        action = draw(
            st.sampled_from([Action(ActionKind.ROUTE, pool), Action(ActionKind.DENY, status=403)])
        )
        rules.append(Rule(condition, action, at(10 + line), f"rule {line}"))
    default = draw(st.none() | st.sampled_from(POOLS))
    return Frontend("fe", Mode.HTTP, (), tuple(rules), default, at(2), at(9))


@st.composite
def profiles(draw: st.DrawFn) -> TrafficProfile:
    rows = draw(st.integers(1, 10))
    column = st.lists(short_text, min_size=rows, max_size=rows)
    weights = draw(
        st.lists(st.sampled_from([0.0, 1.0, 0.5, 3.0, 1e-9, 7.25]), min_size=rows, max_size=rows)
    )
    return from_columns(
        weights,
        path=["/" + value for value in draw(column)],
        host=draw(column),
        method=draw(column),
    )


@given(frontends(), profiles())
@settings(max_examples=400, deadline=None)
def test_indexed_route_equals_plain(frontend: Frontend, profile: TrafficProfile) -> None:
    fast = route([frontend], profile)
    slow = route([frontend], profile, indexed=False)
    assert fast.rules == slow.rules
    assert fast.unevaluated == slow.unevaluated
    assert fast.assumptions == slow.assumptions
    assert fast.local_answers == slow.local_answers
    assert sorted(fast.pool_weights) == sorted(slow.pool_weights)
    for pool in fast.pool_weights:
        assert fast.pool_weights[pool].tolist() == slow.pool_weights[pool].tolist()


@given(frontends(), profiles())
@settings(max_examples=400, deadline=None)
def test_pool_weights_equal_first_match_per_row(
    frontend: Frontend, profile: TrafficProfile
) -> None:
    # Reference: each row goes whole to the first rule known to match it, else to the
    # default pool; rows of a rule that answers locally reach no pool.
    evaluator = ConditionEvaluator(profile, indexed=False)
    matched = [
        evaluator.evaluate(rule.condition).true
        if rule.condition is not None
        else np.ones(len(profile), dtype=bool)
        for rule in frontend.rules
    ]
    expected = {pool: [0.0] * len(profile) for pool in POOLS}
    for row, weight in enumerate(profile.weight.tolist()):
        first = next((i for i, rows in enumerate(matched) if rows[row]), None)
        if first is None:
            target = frontend.default_pool
        else:
            action = frontend.rules[first].action
            target = action.pool if action.kind is ActionKind.ROUTE else None
        if target is not None:
            expected[target][row] += weight

    result = route([frontend], profile)
    for pool in POOLS:
        weights = result.pool_weights.get(pool)
        actual = [0.0] * len(profile) if weights is None else weights.tolist()
        assert actual == expected[pool], pool
