"""Routing a profile through ordered rules: match methods, order, unknowns, defaults."""

from __future__ import annotations

import pytest

from lbguard.model import (
    Action,
    ActionKind,
    Algorithm,
    AllOf,
    AnyOf,
    Balance,
    Constant,
    Frontend,
    LoadBalancer,
    Location,
    Matcher,
    MatchMethod,
    Mode,
    Not,
    Pool,
    Product,
    Rule,
    Server,
    Unevaluated,
)
from lbguard.predict import predict
from lbguard.predict.matching import DIR_DELIMITERS, DOM_DELIMITERS, compile_matcher, match_word
from lbguard.predict.routing import ConditionEvaluator, route
from lbguard.traffic import from_columns


def at(line: int) -> Location:
    return Location("lb.cfg", line)


def matcher(
    fetch: str,
    method: MatchMethod,
    *patterns: str,
    arg: str | None = None,
    ignore_case: bool = False,
) -> Matcher:
    return Matcher(fetch, arg, method, patterns, ignore_case, at(1), f"{fetch} {patterns}")


def matches(m: Matcher, value: str) -> bool:
    return compile_matcher(m)(value)


def use(pool: str, condition: object, line: int) -> Rule:
    return Rule(
        condition,
        Action(ActionKind.ROUTE, pool),
        at(line),  # type: ignore[arg-type]
        f"use_backend {pool}",
    )


def pool(name: str, *servers: str) -> Pool:
    return Pool(
        name,
        Mode.HTTP,
        Balance(Algorithm.ROUND_ROBIN),
        tuple(Server(s, "127.0.0.1", 9000 + i, at(20 + i)) for i, s in enumerate(servers)),
        at(19),
    )


def frontend(rules: tuple[Rule, ...], default: str | None, name: str = "fe") -> Frontend:
    return Frontend(name, Mode.HTTP, (), rules, default, at(2))


# -- match methods -------------------------------------------------------------------------


def test_str_is_exact_and_case_sensitive() -> None:
    m = matcher("path", MatchMethod.STR, "/a")
    assert matches(m, "/a")
    assert not matches(m, "/A")
    assert not matches(m, "/a/")


def test_ignore_case_folds_both_sides() -> None:
    m = matcher("host", MatchMethod.STR, "WWW.Example.com", ignore_case=True)
    assert matches(m, "www.example.COM")


def test_beg_end_sub() -> None:
    assert matches(matcher("path", MatchMethod.BEG, "/api"), "/api/v1")
    assert not matches(matcher("path", MatchMethod.BEG, "/api"), "/v1/api")
    assert matches(matcher("path", MatchMethod.END, ".css"), "/s/a.css")
    assert matches(matcher("path", MatchMethod.SUB, "adm"), "/x/admin")


def test_dir_matches_slash_delimited_words() -> None:
    assert match_word("/img/a.png", "img", DIR_DELIMITERS)
    assert match_word("/img/a.png", "/img/", DIR_DELIMITERS)
    assert not match_word("/images/a.png", "img", DIR_DELIMITERS)
    assert match_word("/a/b/c?x", "b/c", DIR_DELIMITERS)


def test_dom_matches_dot_delimited_words() -> None:
    assert match_word("www.example.com", "example", DOM_DELIMITERS)
    assert match_word("www.example.com:8080", "com", DOM_DELIMITERS)
    assert not match_word("www.myexample.com", "example", DOM_DELIMITERS)
    assert match_word("www.example.com", "example.com", DOM_DELIMITERS)


def test_reg_searches() -> None:
    m = matcher("path", MatchMethod.REG, r"\.(jpg|png)$", ignore_case=True)
    assert matches(m, "/a/B.PNG")
    assert not matches(m, "/a/b.png.txt")


def test_len_and_int_ranges() -> None:
    assert matches(matcher("path", MatchMethod.LEN, "3:5"), "/abc")
    assert not matches(matcher("path", MatchMethod.LEN, "3:5"), "/abcdef")
    assert matches(matcher("hdr", MatchMethod.INT, "gt", "10", arg="x-n"), "11")
    assert not matches(matcher("hdr", MatchMethod.INT, "gt", "10", arg="x-n"), "10")
    assert matches(matcher("hdr", MatchMethod.INT, ":5", arg="x-n"), "-3")
    assert matches(matcher("hdr", MatchMethod.INT, "8", arg="x-n"), "8")


def test_ip_matches_networks() -> None:
    m = matcher("src", MatchMethod.IP, "10.0.0.0/8", "192.0.2.7")
    assert matches(m, "10.1.2.3")
    assert matches(m, "192.0.2.7")
    assert not matches(m, "192.0.2.8")


def test_bool_and_found() -> None:
    assert matches(matcher("hdr", MatchMethod.BOOL, arg="x-f"), "1")
    assert not matches(matcher("hdr", MatchMethod.BOOL, arg="x-f"), "0")
    assert matches(matcher("hdr", MatchMethod.FOUND, arg="x-f"), "anything")


# -- samples from the profile ------------------------------------------------------------


def evaluate_true(condition: object, **columns: object) -> list[bool]:
    profile = from_columns(**columns)  # type: ignore[arg-type]
    truth = ConditionEvaluator(profile).evaluate(condition)  # type: ignore[arg-type]
    return truth.true.tolist()


def test_host_exact_misses_port() -> None:
    m = matcher("host", MatchMethod.STR, "example.com")
    assert evaluate_true(m, host=["example.com", "example.com:8080"]) == [True, False]


def test_hdr_tries_every_comma_separated_value() -> None:
    m = matcher("hdr", MatchMethod.STR, "b", arg="x-tag")
    result = evaluate_true(m, headers={"x-tag": ["a, b", "a", ""]})
    assert result == [True, False, False]


def test_url_includes_query_but_path_does_not() -> None:
    url = matcher("url", MatchMethod.END, "=1")
    path = matcher("path", MatchMethod.END, "=1")
    columns = {"path": ["/a", "/a"], "query": ["x=1", ""]}
    assert evaluate_true(url, **columns) == [True, False]
    assert evaluate_true(path, **columns) == [False, False]


def test_url_param_reads_query() -> None:
    m = matcher("url_param", MatchMethod.STR, "42", arg="id")
    assert evaluate_true(m, query=["a=1&id=42", "id=4", ""]) == [True, False, False]


def test_cookie_reads_cookie_header() -> None:
    m = matcher("cookie", MatchMethod.STR, "beta", arg="group")
    result = evaluate_true(m, headers={"cookie": ["a=1; group=beta", "group=alpha"]})
    assert result == [True, False]


def test_three_valued_logic() -> None:
    unknown = Unevaluated("sc0_http_req_rate gt 10", "needs run-time counters")
    evaluator = ConditionEvaluator(from_columns(path=["/a"]))
    assert evaluator.evaluate(AllOf((Constant(False), unknown))).false.tolist() == [True]
    assert evaluator.evaluate(AnyOf((Constant(True), unknown))).true.tolist() == [True]
    both = evaluator.evaluate(AllOf((Constant(True), unknown)))
    assert both.unknown.tolist() == [True]
    negated = evaluator.evaluate(Not(unknown))
    assert negated.unknown.tolist() == [True]


# -- rules ------------------------------------------------------------------------------


def test_first_matching_rule_wins() -> None:
    rules = (
        use("be_web", matcher("path", MatchMethod.BEG, "/"), 5),
        use("be_api", matcher("path", MatchMethod.BEG, "/api"), 6),
    )
    lb = LoadBalancer(
        Product.HAPROXY,
        (frontend(rules, "be_web"),),
        (pool("be_web", "w1"), pool("be_api", "a1")),
        ("lb.cfg",),
    )
    prediction = predict(lb, from_columns([1.0, 1.0], path=["/", "/api/x"]))
    api_rule = prediction.rules[1]
    assert api_rule.share == 0.0
    assert api_rule.could_match == pytest.approx(0.5)
    assert prediction.rules[0].share == pytest.approx(1.0)


def test_no_default_backend_answers_503() -> None:
    rules = (use("be_api", matcher("path", MatchMethod.BEG, "/api"), 5),)
    lb = LoadBalancer(
        Product.HAPROXY, (frontend(rules, None),), (pool("be_api", "a1"),), ("lb.cfg",)
    )
    prediction = predict(lb, from_columns([3.0, 1.0], path=["/", "/api"]))
    default = prediction.rules[-1]
    assert default.target == "503"
    assert default.share == pytest.approx(0.75)
    assert prediction.pool("be_api").share_of_total == pytest.approx(0.25)  # type: ignore[union-attr]


def test_unknown_column_is_reported_and_taken_as_not_matching() -> None:
    rules = (use("be_admin", matcher("hdr", MatchMethod.STR, "x", arg="x-admin"), 5),)
    lb = LoadBalancer(
        Product.HAPROXY,
        (frontend(rules, "be_web"),),
        (pool("be_web", "w1"), pool("be_admin", "a1")),
        ("lb.cfg",),
    )
    prediction = predict(lb, from_columns(path=["/a", "/b"]))
    assert prediction.pool("be_web").share_of_total == pytest.approx(1.0)  # type: ignore[union-attr]
    items = [u for u in prediction.unevaluated if "x-admin" in u.reason]
    assert len(items) == 1
    assert items[0].share == pytest.approx(1.0)


def test_local_answers_are_targets() -> None:
    deny = Rule(
        matcher("path", MatchMethod.BEG, "/admin"),
        Action(ActionKind.DENY, status=403),
        at(4),
        "http-request deny if { path_beg /admin }",
    )
    lb = LoadBalancer(
        Product.HAPROXY, (frontend((deny,), "be_web"),), (pool("be_web", "w1"),), ("lb.cfg",)
    )
    prediction = predict(lb, from_columns([1.0, 3.0], path=["/admin/x", "/"]))
    assert prediction.rules[0].target == "deny 403"
    assert prediction.rules[0].share == pytest.approx(0.25)
    assert prediction.pool("be_web").share_of_total == pytest.approx(0.75)  # type: ignore[union-attr]


def test_dynamic_backend_is_unevaluated() -> None:
    dynamic = Rule(
        None,
        Action(ActionKind.DYNAMIC, "be_%[req.hdr(x-tenant)]"),
        at(4),
        "use_backend be_%[req.hdr(x-tenant)]",
    )
    lb = LoadBalancer(
        Product.HAPROXY, (frontend((dynamic,), "be_web"),), (pool("be_web", "w1"),), ("lb.cfg",)
    )
    prediction = predict(lb, from_columns(path=["/"]))
    assert prediction.pool("be_web").share_of_total == 0.0  # type: ignore[union-attr]
    assert any("computed per request" in u.reason for u in prediction.unevaluated)


def test_rows_without_frontend_split_equally() -> None:
    fe1 = frontend((), "be_a", name="fe1")
    fe2 = frontend((), "be_b", name="fe2")
    lb = LoadBalancer(
        Product.HAPROXY, (fe1, fe2), (pool("be_a", "a"), pool("be_b", "b")), ("lb.cfg",)
    )
    profile = from_columns([2.0, 2.0], path=["/", "/"], frontend=["", "fe2"])
    prediction = predict(lb, profile)
    assert prediction.pool("be_a").share_of_total == pytest.approx(0.25)  # type: ignore[union-attr]
    assert prediction.pool("be_b").share_of_total == pytest.approx(0.75)  # type: ignore[union-attr]
    assert any("split equally" in a for a in prediction.assumptions)


def test_route_records_pool_weights_per_row() -> None:
    rules = (use("be_api", matcher("path", MatchMethod.BEG, "/api"), 5),)
    result = route((frontend(rules, "be_web"),), from_columns([1.0, 2.0], path=["/api", "/"]))
    assert result.pool_weights["be_api"].tolist() == [1.0, 0.0]
    assert result.pool_weights["be_web"].tolist() == [0.0, 2.0]
