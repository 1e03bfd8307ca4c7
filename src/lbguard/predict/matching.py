"""HAProxy match methods (``-m str``, ``beg``, ``dom``...) applied to one sample value.

Semantics follow HAProxy 2.6 ``src/pattern.c`` (read, not copied): ``-i`` compares
case-insensitively, ``dir`` and ``dom`` look for the pattern as a whole word between
delimiters, ``len`` and ``int`` compare integers against ranges and operators, ``ip``
tests network membership.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Callable
from dataclasses import dataclass

from lbguard.model import Matcher, MatchMethod

ValueTest = Callable[[str], bool]
"""A test of one sample value."""

DIR_DELIMITERS = frozenset("/?")
"""Word delimiters of ``-m dir`` (``pat_match_dir`` in src/pattern.c, HAProxy v2.6.0)."""

DOM_DELIMITERS = frozenset("/?.:")
"""Word delimiters of ``-m dom`` (``pat_match_dom`` in src/pattern.c, HAProxy v2.6.0)."""

INT_OPERATORS = ("eq", "ge", "gt", "le", "lt")


class UnsupportedPatternError(ValueError):
    """A pattern lbguard cannot evaluate (a PCRE-only regex, a malformed range)."""


def match_word(sample: str, pattern: str, delimiters: frozenset[str]) -> bool:
    """Return True when *pattern*, stripped of delimiters at both ends, appears in *sample*
    starting at its start or after a delimiter, and ending at its end or before one."""
    word = pattern
    while word and word[0] in delimiters:
        word = word[1:]
    while word and word[-1] in delimiters:
        word = word[:-1]
    size = len(word)
    if size == 0 or size > len(sample):
        return False
    for start in range(len(sample) - size + 1):
        if sample[start] in delimiters:
            continue
        if start > 0 and sample[start - 1] not in delimiters:
            continue
        end = start + size
        if sample[start:end] == word and (end == len(sample) or sample[end] in delimiters):
            return True
    return False


def _parse_int(text: str) -> int | None:
    """Parse the leading integer of *text* as HAProxy's string-to-integer cast does."""
    match = re.match(r"\s*([+-]?\d+)", text)
    return int(match.group(1)) if match else None


@dataclass(frozen=True)
class IntRange:
    """An inclusive integer range; None leaves that end open."""

    low: int | None
    high: int | None

    def __call__(self, value: int) -> bool:
        return (self.low is None or value >= self.low) and (
            self.high is None or value <= self.high
        )


def _int_tests(patterns: tuple[str, ...]) -> list[IntRange]:
    """Compile integer patterns: ``N``, ``N:M``, ``:M``, ``N:`` and ``gt N``-style pairs."""
    tests: list[IntRange] = []
    tokens = list(patterns)
    while tokens:
        token = tokens.pop(0)
        if token in INT_OPERATORS:
            if not tokens:
                raise UnsupportedPatternError(f"operator {token!r} has no value")
            bound = _parse_int(tokens.pop(0))
            if bound is None:
                raise UnsupportedPatternError(f"invalid integer after {token!r}")
            bounds = {
                "eq": (bound, bound),
                "ge": (bound, None),
                "gt": (bound + 1, None),
                "le": (None, bound),
                "lt": (None, bound - 1),
            }
            tests.append(IntRange(*bounds[token]))
            continue
        low_text, colon, high_text = token.partition(":")
        low = _parse_int(low_text) if low_text else None
        high = _parse_int(high_text) if high_text else None
        if (low_text and low is None) or (high_text and high is None):
            raise UnsupportedPatternError(f"invalid integer pattern {token!r}")
        tests.append(IntRange(low, high) if colon else IntRange(low, low))
    return tests


def folded_patterns(matcher: Matcher) -> tuple[str, ...]:
    """Return the patterns as compared: lower-case with ``-i``, else as written."""
    if matcher.ignore_case:
        return tuple(pattern.lower() for pattern in matcher.patterns)
    return matcher.patterns


def compile_matcher(matcher: Matcher) -> ValueTest:
    """Return a test of one sample value for *matcher*'s method and patterns.

    Raises `UnsupportedPatternError` when a pattern cannot be evaluated faithfully.
    """
    method = matcher.method
    fold = matcher.ignore_case
    patterns = folded_patterns(matcher)

    def folded(value: str) -> str:
        return value.lower() if fold else value

    if method is MatchMethod.STR:
        pattern_set = frozenset(patterns)
        return lambda value: folded(value) in pattern_set
    if method is MatchMethod.BEG:
        return lambda value: folded(value).startswith(patterns)
    if method is MatchMethod.END:
        return lambda value: folded(value).endswith(patterns)
    if method is MatchMethod.SUB:
        return lambda value: any(p in folded(value) for p in patterns)
    if method is MatchMethod.DIR:
        return lambda value: any(match_word(folded(value), p, DIR_DELIMITERS) for p in patterns)
    if method is MatchMethod.DOM:
        return lambda value: any(match_word(folded(value), p, DOM_DELIMITERS) for p in patterns)
    if method is MatchMethod.REG:
        try:
            flags = re.IGNORECASE if matcher.ignore_case else 0
            compiled = [re.compile(p, flags) for p in matcher.patterns]
        except re.error as error:
            raise UnsupportedPatternError(f"regular expression not supported: {error}") from None
        return lambda value: any(r.search(value) for r in compiled)
    if method is MatchMethod.LEN:
        length_tests = _int_tests(matcher.patterns)
        return lambda value: any(test(len(value)) for test in length_tests)
    if method is MatchMethod.INT:
        int_tests = _int_tests(matcher.patterns)

        def int_match(value: str) -> bool:
            number = _parse_int(value)
            return number is not None and any(test(number) for test in int_tests)

        return int_match
    if method is MatchMethod.IP:
        try:
            networks = [ipaddress.ip_network(p, strict=False) for p in matcher.patterns]
        except ValueError as error:
            raise UnsupportedPatternError(f"invalid address pattern: {error}") from None

        def ip_match(value: str) -> bool:
            try:
                address = ipaddress.ip_address(value)
            except ValueError:
                return False
            return any(address in network for network in networks)

        return ip_match
    if method is MatchMethod.FOUND:
        return lambda value: True
    if method is MatchMethod.BOOL:

        def bool_match(value: str) -> bool:
            number = _parse_int(value)
            return number != 0 if number is not None else value != ""

        return bool_match
    raise UnsupportedPatternError(f"match method {method} not supported")
