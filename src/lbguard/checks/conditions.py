"""Static implication between routing conditions.

`ShadowIndex` decides whether the earlier rules of a frontend match every request that a
later rule matches, from the conditions alone. Every answer is a proof: when implication
cannot be shown (regular expressions against prefixes, unevaluated fetches, very large
conjunctions), the answer is "not shown", never a guess.

A condition is compared in two forms:

- its *sufficient terms*: conditions that each imply the rule matches (the disjuncts of
  an ``or``, each pattern of a matcher);
- its *disjunctive normal form*: a list of conjunctions of literals, one of which holds
  whenever the rule matches.

A later rule is shadowed when each of its conjunctions has a literal that implies some
earlier rule's sufficient term. Single-pattern ``str``/``beg``/``end`` terms are kept in
dictionaries so that a frontend with thousands of rules is checked in near-linear time.
"""

from __future__ import annotations

import ipaddress
import itertools
from collections.abc import Iterator
from dataclasses import dataclass, replace

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

MAX_DISJUNCTS = 256
"""Largest normal form expanded; a larger conjunction of ``or`` terms is not analysed."""

_ALWAYS = Constant(True)

_SINGLE_VALUED_FETCHES = frozenset(
    {"path", "url", "base", "query", "method", "host", "src", "sni"}
)
"""Fetches with one value per request. A header fetch may see several occurrences, and
HAProxy 2.6 tries every occurrence in an ACL, so two header tests are never disjoint."""

_INDEXED_METHODS = (MatchMethod.STR, MatchMethod.BEG, MatchMethod.END)

_IndexKey = tuple[str, str | None, MatchMethod, bool]
"""(fetch, argument, match method, ignore case) of a single-pattern matcher."""


def single_patterns(matcher: Matcher) -> tuple[Matcher, ...]:
    """Split a matcher into one matcher per pattern; patternless tests stay whole."""
    if len(matcher.patterns) <= 1:
        return (matcher,)
    return tuple(replace(matcher, patterns=(pattern,)) for pattern in matcher.patterns)


def is_universal(condition: Condition, http: bool) -> bool:
    """Return True when the condition matches every request of the frontend."""
    if isinstance(condition, Constant):
        return condition.value
    if isinstance(condition, Named):
        return is_universal(condition.condition, http)
    if not isinstance(condition, Matcher) or condition.method is not MatchMethod.BEG:
        return False

    # HAProxy 2.6 `path` is the part of the URI from the first slash to before the `?`, so
    # every origin-form request matches `path_beg /`.
    # NOTE: the asterisk-form `OPTIONS *` has no path and does not match.
    covers_every_path = "/" in condition.patterns or "" in condition.patterns
    return http and condition.fetch == "path" and covers_every_path


def sufficient_terms(condition: Condition | None) -> list[Condition]:
    """Return conditions each of which implies ``condition``."""
    if condition is None:
        return [_ALWAYS]
    if isinstance(condition, Constant):
        return [_ALWAYS] if condition.value else []
    if isinstance(condition, Named):
        return sufficient_terms(condition.condition)
    if isinstance(condition, Matcher):
        return list(single_patterns(condition))
    if isinstance(condition, AnyOf):
        return [term for child in condition.terms for term in sufficient_terms(child)]
    if isinstance(condition, AllOf) and len(condition.terms) == 1:
        return sufficient_terms(condition.terms[0])
    if isinstance(condition, AllOf) and not condition.terms:
        return [_ALWAYS]
    if isinstance(condition, AllOf | Not):
        return [condition]
    return []


def normal_form(condition: Condition | None) -> list[tuple[Condition, ...]] | None:
    """Return the disjunctive normal form, or None when it exceeds `MAX_DISJUNCTS`.

    The empty conjunction ``()`` is always true; an empty list is never true.
    """
    if condition is None:
        return [()]
    if isinstance(condition, Constant):
        return [()] if condition.value else []
    if isinstance(condition, Named):
        return normal_form(condition.condition)
    if isinstance(condition, Matcher):
        return [(single,) for single in single_patterns(condition)]
    if isinstance(condition, Not | Unevaluated):
        return [(condition,)]
    if isinstance(condition, AnyOf):
        disjuncts: list[tuple[Condition, ...]] = []
        for child in condition.terms:
            child_form = normal_form(child)
            if child_form is None:
                return None
            disjuncts.extend(child_form)
            if len(disjuncts) > MAX_DISJUNCTS:
                return None
        return disjuncts

    product: list[tuple[Condition, ...]] = [()]
    for child in condition.terms:
        child_form = normal_form(child)
        if child_form is None or len(product) * len(child_form) > MAX_DISJUNCTS:
            return None
        product = [left + right for left, right in itertools.product(product, child_form)]
    return product


def implies(literal: Condition, term: Condition, http: bool) -> bool:
    """Return True when every request matching ``literal`` matches ``term``."""
    return conjunction_implies((literal,), term, http)


def condition_implies(first: Condition, second: Condition, http: bool) -> bool:
    """Return True when every request matching ``first`` matches ``second``."""
    form = normal_form(first)
    if form is None:
        return False
    terms = sufficient_terms(second)
    return all(
        any(conjunction_implies(conjunction, term, http) for term in terms) for conjunction in form
    )


def conjunction_implies(conjunction: tuple[Condition, ...], term: Condition, http: bool) -> bool:
    """Return True when every request matching all literals of ``conjunction`` matches
    ``term``: each conjunct of the term must follow from some literal."""
    if is_universal(term, http):
        return True
    if isinstance(term, Named):
        return conjunction_implies(conjunction, term.condition, http)
    if isinstance(term, AllOf):
        return all(conjunction_implies(conjunction, child, http) for child in term.terms)
    if isinstance(term, AnyOf):
        return any(conjunction_implies(conjunction, child, http) for child in term.terms)
    return any(_literal_implies(literal, term, http) for literal in conjunction)


def _literal_implies(literal: Condition, term: Condition, http: bool) -> bool:
    """Decide implication between two leaves: matchers and negations."""
    if isinstance(term, Matcher) and isinstance(literal, Matcher):
        return _matcher_implies(literal, term)
    if isinstance(term, Not) and isinstance(literal, Matcher):
        return _disjoint(literal, term.term)
    if isinstance(term, Not) and isinstance(literal, Not):
        # not A implies not B exactly when B implies A.
        return condition_implies(term.term, literal.term, http)
    return False


def _same_sample(first: Matcher, second: Matcher) -> bool:
    return first.fetch == second.fetch and (first.arg or "").lower() == (second.arg or "").lower()


def _comparable(literal: Matcher, term: Matcher) -> tuple[str, str] | None:
    """Return the two patterns in the case the comparison needs, or None when the term
    cannot cover every case variant that the literal matches."""
    pattern = literal.patterns[0]
    covering = term.patterns[0]
    if term.ignore_case:
        return pattern.lower(), covering.lower()
    if literal.ignore_case and pattern.lower() != pattern.upper():
        return None
    return pattern, covering


def _matcher_implies(literal: Matcher, term: Matcher) -> bool:
    if not _same_sample(literal, term):
        return False
    if term.method is MatchMethod.FOUND:
        return True
    if literal.method in (MatchMethod.FOUND, MatchMethod.BOOL) or not literal.patterns:
        return False
    return any(_pattern_implies(literal, single) for single in single_patterns(term))


def _pattern_implies(literal: Matcher, term: Matcher) -> bool:
    if not term.patterns:
        return False
    if literal.method is MatchMethod.IP and term.method is MatchMethod.IP:
        return _network_within(literal.patterns[0], term.patterns[0])

    pair = _comparable(literal, term)
    if pair is None:
        return False
    value, covering = pair
    method, covered_by = literal.method, term.method

    if covered_by is MatchMethod.BEG and method in (MatchMethod.BEG, MatchMethod.STR):
        return value.startswith(covering)
    if covered_by is MatchMethod.END and method in (MatchMethod.END, MatchMethod.STR):
        return value.endswith(covering)
    if covered_by is MatchMethod.SUB and method in (
        MatchMethod.STR,
        MatchMethod.BEG,
        MatchMethod.END,
        MatchMethod.SUB,
    ):
        return covering in value
    return method is covered_by and value == covering


def _network_within(inner: str, outer: str) -> bool:
    try:
        inner_net = ipaddress.ip_network(inner, strict=False)
        outer_net = ipaddress.ip_network(outer, strict=False)
    except ValueError:
        return False
    if inner_net.version != outer_net.version:
        return False
    return inner_net.subnet_of(outer_net)  # type: ignore[arg-type]


def _disjoint(literal: Matcher, other: Condition) -> bool:
    """Return True when no request matches both ``literal`` and ``other``."""
    if isinstance(other, Named):
        return _disjoint(literal, other.condition)
    if isinstance(other, AnyOf):
        return all(_disjoint(literal, child) for child in other.terms)
    if not isinstance(other, Matcher) or not _same_sample(literal, other):
        return False
    if literal.fetch not in _SINGLE_VALUED_FETCHES or not literal.patterns:
        return False
    if not other.patterns:
        return False
    return all(_patterns_disjoint(literal, single) for single in single_patterns(other))


def _patterns_disjoint(first: Matcher, second: Matcher) -> bool:
    left, right = first.patterns[0], second.patterns[0]
    if first.ignore_case or second.ignore_case:
        left, right = left.lower(), right.lower()
    kinds = {first.method, second.method}

    if kinds == {MatchMethod.STR}:
        return left != right
    if kinds <= {MatchMethod.STR, MatchMethod.BEG}:
        return not (left.startswith(right) or right.startswith(left))
    if kinds <= {MatchMethod.STR, MatchMethod.END}:
        return not (left.endswith(right) or right.endswith(left))
    return False


@dataclass
class ShadowIndex:
    """Sufficient terms of a frontend's earlier rules, indexed for fast implication."""

    http: bool
    """True for an HTTP frontend, where ``path_beg /`` matches every request."""

    first_universal: int | None = None
    """Index of the first rule that matches every request."""

    def __post_init__(self) -> None:
        self._patterns: dict[_IndexKey, dict[str, int]] = {}
        self._others: list[tuple[Condition, int]] = []

    def add(self, index: int, condition: Condition | None) -> None:
        """Record the rule at ``index``; rules must be added in evaluation order."""
        for term in sufficient_terms(condition):
            if is_universal(term, self.http):
                if self.first_universal is None:
                    self.first_universal = index
            elif (
                isinstance(term, Matcher)
                and term.method in _INDEXED_METHODS
                and len(term.patterns) == 1
            ):
                key = (term.fetch, (term.arg or "").lower() or None, term.method, term.ignore_case)
                pattern = term.patterns[0].lower() if term.ignore_case else term.patterns[0]
                self._patterns.setdefault(key, {}).setdefault(pattern, index)
            else:
                self._others.append((term, index))

    def covering_rules(self, condition: Condition | None) -> tuple[int, ...] | None:
        """Return indexes of earlier rules that together match every request the
        condition matches, or None when that cannot be shown."""
        form = normal_form(condition)
        if not form:
            return None

        covering: set[int] = set()
        for conjunction in form:
            best = self._cover(conjunction)
            if best is None:
                return None
            covering.add(best)
        return tuple(sorted(covering))

    def _cover(self, conjunction: tuple[Condition, ...]) -> int | None:
        candidates = [self.first_universal] if self.first_universal is not None else []
        for literal in conjunction:
            if isinstance(literal, Matcher) and len(literal.patterns) == 1:
                candidates.extend(self._indexed_covers(literal))
        for term, index in self._others:
            if conjunction_implies(conjunction, term, self.http):
                candidates.append(index)
        return min(candidates) if candidates else None

    def _indexed_covers(self, literal: Matcher) -> Iterator[int]:
        arg = (literal.arg or "").lower() or None
        value = literal.patterns[0]
        for ignore_case in (False, True):
            if not ignore_case and literal.ignore_case and value.lower() != value.upper():
                continue
            text = value.lower() if ignore_case else value
            for method, candidates in self._candidate_patterns(literal.method, text):
                patterns = self._patterns.get((literal.fetch, arg, method, ignore_case))
                if patterns is None:
                    continue
                for candidate in candidates:
                    index = patterns.get(candidate)
                    if index is not None:
                        yield index

    @staticmethod
    def _candidate_patterns(
        method: MatchMethod, value: str
    ) -> Iterator[tuple[MatchMethod, Iterator[str]]]:
        """Yield the indexed term patterns that could cover a literal, per method."""
        prefixes = (value[:end] for end in range(len(value) + 1))
        suffixes = (value[start:] for start in range(len(value) + 1))
        if method is MatchMethod.STR:
            yield MatchMethod.STR, iter((value,))
            yield MatchMethod.BEG, prefixes
            yield MatchMethod.END, suffixes
        elif method is MatchMethod.BEG:
            yield MatchMethod.BEG, prefixes
        elif method is MatchMethod.END:
            yield MatchMethod.END, suffixes
