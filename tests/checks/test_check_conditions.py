"""Static implication between routing conditions, on hand-built condition trees."""

from __future__ import annotations

import pytest

from lbguard.checks.conditions import (
    MAX_DISJUNCTS,
    ShadowIndex,
    condition_implies,
    is_universal,
    normal_form,
)
from lbguard.model import (
    AllOf,
    AnyOf,
    Condition,
    Constant,
    Matcher,
    MatchMethod,
    Named,
    Not,
    Unevaluated,
)


def path(method: MatchMethod, *patterns: str, ignore_case: bool = False) -> Matcher:
    return Matcher("path", None, method, patterns, ignore_case=ignore_case)


def host(*patterns: str) -> Matcher:
    return Matcher("host", None, MatchMethod.STR, patterns)


def header(name: str, *patterns: str) -> Matcher:
    return Matcher("hdr", name, MatchMethod.STR, patterns)


BEG = MatchMethod.BEG
STR = MatchMethod.STR
END = MatchMethod.END


def covering(conditions: list[Condition | None], http: bool = True) -> list[object]:
    """Return ShadowIndex answers for each rule after the first, in order."""
    index = ShadowIndex(http=http)
    answers: list[object] = []
    for position, condition in enumerate(conditions):
        if position:
            answers.append(index.covering_rules(condition))
        index.add(position, condition)
    return answers


@pytest.mark.parametrize(
    ("first", "second"),
    [
        (path(BEG, "/api"), path(BEG, "/api/v1")),
        (path(BEG, "/api"), path(STR, "/api/items")),
        (path(END, ".png"), path(STR, "/logo.png")),
        (path(MatchMethod.SUB, "admin"), path(BEG, "/x/admin")),
        (path(BEG, "/API", ignore_case=True), path(BEG, "/api/v2")),
        (path(BEG, "/"), path(MatchMethod.REG, "^/anything")),
        (
            Matcher("src", None, MatchMethod.IP, ("10.0.0.0/8",)),
            Matcher("src", None, MatchMethod.IP, ("10.1.2.0/24",)),
        ),
        (Matcher("hdr", "x-user", MatchMethod.FOUND, ()), header("x-user", "alice")),
        (AnyOf((path(BEG, "/a"), path(BEG, "/b"))), path(BEG, "/b/c")),
        (path(BEG, "/a"), AllOf((path(BEG, "/a/x"), host("example.com")))),
        (Not(path(BEG, "/static")), path(BEG, "/api")),
        (Not(path(BEG, "/a/b")), Not(path(BEG, "/a"))),
    ],
)
def test_implication_proven(first: Condition, second: Condition) -> None:
    assert condition_implies(second, first, http=True)


@pytest.mark.parametrize(
    ("first", "second"),
    [
        (path(BEG, "/api/v1"), path(BEG, "/api")),
        (path(BEG, "/api"), path(BEG, "/API", ignore_case=True)),
        (path(STR, "/api"), path(BEG, "/api")),
        (path(MatchMethod.REG, "^/api"), path(BEG, "/api")),
        (AllOf((path(BEG, "/a"), host("example.com"))), path(BEG, "/a/x")),
        (header("x-env", "prod"), header("x-env", "staging")),
        (Not(header("x-env", "prod")), header("x-env", "staging")),
        (Not(path(BEG, "/a")), path(BEG, "/a/b")),
        (Not(path(BEG, "/a")), Not(path(BEG, "/a/b"))),
        (Unevaluated("foo", "not modelled"), path(BEG, "/a")),
        (
            Matcher("src", None, MatchMethod.IP, ("10.1.2.0/24",)),
            Matcher("src", None, MatchMethod.IP, ("10.0.0.0/8",)),
        ),
        (Matcher("url", None, BEG, ("/api",)), path(BEG, "/api")),
    ],
)
def test_implication_not_claimed(first: Condition, second: Condition) -> None:
    assert not condition_implies(second, first, http=True)


def test_path_prefix_slash_is_universal_in_http() -> None:
    assert is_universal(Named("is_any", path(BEG, "/"), ()), http=True)


def test_path_prefix_slash_not_universal_in_tcp() -> None:
    assert not is_universal(path(BEG, "/"), http=False)


def test_catch_all_first_shadows_later_rule() -> None:
    answers = covering(
        [Named("is_any", path(BEG, "/"), ()), Named("is_api", path(BEG, "/api"), ())]
    )
    assert answers == [(0,)]


def test_unconditional_rule_shadows_everything_after() -> None:
    answers = covering([host("a.example"), None, header("x-a", "1")])
    assert answers[0] is None
    assert answers[1] == (1,)


def test_union_of_earlier_rules_covers_each_pattern() -> None:
    answers = covering([path(BEG, "/a"), path(BEG, "/b"), path(BEG, "/a/x", "/b/y")])
    assert answers[1] == (0, 1)


def test_partial_cover_is_not_reported() -> None:
    answers = covering([path(BEG, "/a"), path(BEG, "/a/x", "/c")])
    assert answers == [None]


def test_earliest_covering_rule_is_named() -> None:
    answers = covering([path(BEG, "/a"), path(BEG, "/a/b"), path(STR, "/a/b/c")])
    assert answers[1] == (0,)


def test_conjunction_of_earlier_rule_not_sufficient() -> None:
    answers = covering([AllOf((path(BEG, "/a"), host("x.example"))), path(BEG, "/a/b")])
    assert answers == [None]


def test_conjunction_rule_covers_narrower_conjunction() -> None:
    first = AllOf((path(BEG, "/a"), host("x.example")))
    second = AllOf((path(BEG, "/a/b"), host("x.example"), header("x-a", "1")))
    assert covering([first, second]) == [(0,)]


def test_case_insensitive_term_found_through_index() -> None:
    answers = covering([path(BEG, "/Static", ignore_case=True), path(STR, "/STATIC/app.js")])
    assert answers == [(0,)]


def test_false_condition_is_not_reported() -> None:
    assert covering([None, Constant(False)]) == [None]


def test_large_normal_form_is_not_expanded() -> None:
    wide = AnyOf(tuple(path(STR, f"/{i}") for i in range(20)))
    huge = AllOf((wide, wide, wide))
    assert normal_form(huge) is None
    assert len(normal_form(AllOf((wide,))) or []) <= MAX_DISJUNCTS


def test_thousands_of_prefix_rules_use_index() -> None:
    conditions: list[Condition | None] = [path(BEG, f"/svc{i}/") for i in range(5000)]
    conditions.append(path(STR, "/svc4321/health"))
    answers = covering(conditions)
    assert answers[-1] == (4321,)
    assert all(answer is None for answer in answers[:-1])
