"""Indexed string matching gives the same truth per row as testing every distinct value."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from lbguard.model import Location, Matcher
from lbguard.predict.routing import ConditionEvaluator
from lbguard.predict.value_index import INDEXED_METHODS, prefix_successor
from lbguard.traffic import TrafficProfile, from_columns

TOP = chr(0x10FFFF)

# Delimiters of dir and dom, separators of headers, queries and cookies, and letters in
# both cases, so that -i, whole words and splitting all matter.
piece = st.sampled_from(["/", "?", ".", ":", ",", ";", "=", "&", " ", "a", "A", "b", "é", TOP])
short_text = st.text(alphabet=piece, max_size=8)

FETCHES = [
    ("path", None),
    ("url", None),
    ("host", None),
    ("hdr", "X-List"),
    ("url_param", "a"),
    ("url_param", "A"),
    ("cookie", "b"),
    ("base", None),
]


@st.composite
def profiles(draw: st.DrawFn) -> TrafficProfile:
    rows = draw(st.integers(min_value=1, max_value=12))
    column = st.lists(short_text, min_size=rows, max_size=rows)
    return from_columns(
        path=["/" + value for value in draw(column)],
        query=draw(column),
        host=draw(column),
        headers={"x-list": draw(column), "cookie": draw(column)},
    )


@st.composite
def matchers(draw: st.DrawFn) -> Matcher:
    fetch, arg = draw(st.sampled_from(FETCHES))
    method = draw(st.sampled_from(sorted(INDEXED_METHODS)))
    patterns = tuple(draw(st.lists(short_text, max_size=3)))
    fold = draw(st.booleans())
    return Matcher(fetch, arg, method, patterns, fold, Location("lb.cfg", 1), "")


@given(profiles(), st.lists(matchers(), min_size=1, max_size=6))
@settings(max_examples=600, deadline=None)
def test_indexed_truth_equals_plain(profile: TrafficProfile, tests: list[Matcher]) -> None:
    indexed = ConditionEvaluator(profile)
    plain = ConditionEvaluator(profile, indexed=False)
    for matcher in tests:
        fast = indexed.evaluate(matcher)
        slow = plain.evaluate(matcher)
        assert fast.true.tolist() == slow.true.tolist(), matcher
        assert fast.false.tolist() == slow.false.tolist(), matcher


@given(st.text(alphabet=piece, max_size=6), st.text(alphabet=piece, max_size=4))
@settings(max_examples=2000)
def test_prefix_successor_bounds_prefixed_strings(text: str, prefix: str) -> None:
    successor = prefix_successor(prefix)
    in_range = prefix <= text and (successor is None or text < successor)
    assert in_range == text.startswith(prefix)


def test_prefix_successor_carries_past_top_code_point() -> None:
    assert prefix_successor("a" + TOP) == "b"


def test_prefix_successor_of_empty_prefix_is_none() -> None:
    assert prefix_successor("") is None
