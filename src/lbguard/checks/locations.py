"""nginx location rules (LB104): regex locations that take a prefix location's requests."""

from __future__ import annotations

import re
from collections.abc import Iterator

import numpy as np

from lbguard.checks.interface import CheckContext, Example, Family, Finding, Options, Rule
from lbguard.checks.wording import percent
from lbguard.model import AllOf, AnyOf, Condition, Matcher, MatchMethod, Not, Product, Severity
from lbguard.traffic import TrafficProfile

_REGEX_SPECIALS = frozenset(".^$*+?()[]{}|\\")


def _path_matchers(
    condition: Condition | None, negated: bool = False
) -> Iterator[tuple[Matcher, bool]]:
    if condition is None:
        return
    if isinstance(condition, Matcher):
        if condition.fetch == "path":
            yield condition, negated
    elif isinstance(condition, AllOf | AnyOf):
        for term in condition.terms:
            yield from _path_matchers(term, negated)
    elif isinstance(condition, Not):
        yield from _path_matchers(condition.term, not negated)


def _literal_head(pattern: str) -> str | None:
    """Return the literal text a ``^``-anchored regex starts with; None if unanchored."""
    if not pattern.startswith("^"):
        return None
    head = []
    for char in pattern[1:]:
        if char in _REGEX_SPECIALS:
            break
        head.append(char)
    return "".join(head)


_ALTERNATION = re.compile(r"^\^([^.^$*+?()\[\]{}|\\]*)\(\??:?([\w./-]+(?:\|[\w./-]+)+)\)")
"""An anchored regex that starts with a literal and a group of literal alternatives:
``^/(assets|packs)/``."""


def _literal_heads(pattern: str) -> list[str] | None:
    """Return the literal texts an anchored regex's matches start with; None when the
    regex is not anchored."""
    match = _ALTERNATION.match(pattern)
    if match is not None:
        return [match.group(1) + alternative for alternative in match.group(2).split("|")]
    head = _literal_head(pattern)
    return None if head is None else [head]


def _overlaps(regex: Matcher, prefix: str) -> bool:
    """Tell whether the regex can match a path that starts with ``prefix``."""
    heads = _literal_heads(regex.patterns[0])
    if heads is None:
        return True
    if regex.ignore_case:
        heads, prefix = [head.lower() for head in heads], prefix.lower()
    return any(head.startswith(prefix) or prefix.startswith(head) for head in heads)


def _captured_share(regex: Matcher, prefix: str, profile: TrafficProfile | None) -> float | None:
    """Return the fraction of the profile's requests under ``prefix`` that the regex
    matches; None when the profile has no paths."""
    if profile is None or "path" not in profile.known or profile.total == 0:
        return None
    paths = [str(path) for path in profile.path]
    under = np.array([path.startswith(prefix) for path in paths], dtype=bool)
    total = float(profile.weight[under].sum())
    if total == 0:
        return 0.0
    compiled = re.compile(regex.patterns[0], re.IGNORECASE if regex.ignore_case else 0)
    hit = np.array([compiled.search(path) is not None for path in paths], dtype=bool)
    return float(profile.weight[under & hit].sum()) / total


def _chain(condition: Condition | None) -> list[Matcher]:
    """Return a rule's location matchers from the outermost location to the rule's own."""
    return [
        matcher
        for matcher, negated in _path_matchers(condition)
        if not negated and matcher.text.startswith("location")
    ]


def _key(matcher: Matcher) -> tuple[str, str, int]:
    return matcher.text, matcher.location.file, matcher.location.line


def _competes(regex_chain: list[Matcher], prefix_chain: list[Matcher]) -> bool:
    """Tell whether nginx tries the regex for requests whose longest prefix is the prefix.

    nginx 1.22 (ngx_http_core_find_location) tries the regex locations of one level
    only after the longest prefix at that level or below it matched, so a regex nested
    in a location competes only with the prefix locations nested in that same location.
    """
    parents = [_key(matcher) for matcher in regex_chain[:-1]]
    chain = [_key(matcher) for matcher in prefix_chain]
    return len(chain) > len(parents) and chain[: len(parents)] == parents


def _locations(
    context: CheckContext,
) -> Iterator[tuple[str, dict[tuple[str, str, int], list[Matcher]], list[list[Matcher]]]]:
    """Yield each frontend's plain prefix locations and regex locations, each with the
    locations it is nested in."""
    for frontend in context.lb.frontends:
        prefixes: dict[tuple[str, str, int], list[Matcher]] = {}
        regexes: dict[tuple[str, str, int], list[Matcher]] = {}
        for rule in frontend.rules:
            chain = _chain(rule.condition)
            if not chain:
                continue
            matcher = chain[-1]
            # `location ^~ /x` stops the regex search, so a regex cannot take its requests.
            if matcher.method is MatchMethod.BEG and not matcher.text.startswith("location ^~"):
                prefixes.setdefault(_key(matcher), chain)
            elif matcher.method is MatchMethod.REG:
                regexes.setdefault(_key(matcher), chain)
        yield frontend.name, prefixes, list(regexes.values())


def check_regex_captures_prefix(context: CheckContext, options: Options) -> Iterator[Finding]:
    if context.lb.product is not Product.NGINX:
        return
    seen: set[tuple[str, str]] = set()
    for frontend, prefixes, regexes in _locations(context):
        for regex_chain in regexes:
            regex = regex_chain[-1]
            for prefix_chain in prefixes.values():
                prefix_matcher = prefix_chain[-1]
                prefix = prefix_matcher.patterns[0]
                key = (regex.text, prefix_matcher.text)
                if prefix == "/" or key in seen or not _overlaps(regex, prefix):
                    continue
                if not _competes(regex_chain, prefix_chain):
                    continue
                seen.add(key)
                share = _captured_share(regex, prefix, context.profile)
                if share == 0.0:
                    continue
                if share is None and _literal_head(regex.patterns[0]) is None:
                    # Without traffic, an unanchored regex can take requests under any
                    # prefix, so the pair is reported at info severity, not as a warning.
                    yield _finding(frontend, regex, prefix_matcher, None, Severity.INFO)
                else:
                    yield _finding(frontend, regex, prefix_matcher, share)


def _finding(
    frontend: str,
    regex: Matcher,
    prefix: Matcher,
    share: float | None,
    severity: Severity | None = None,
) -> Finding:
    if share is None:
        takes = "can take requests under"
        amount = ""
    else:
        takes = "takes requests under"
        amount = f" ({percent(share)} of the requests under it in the traffic profile)"
    reason = (
        f"`{regex.text}` in {frontend} {takes} `{prefix.text}`{amount}: nginx "
        "remembers the longest matching prefix location, then tries the regex locations "
        "in order and the first matching regex wins."
    )
    return REGEX_CAPTURES_PREFIX.finding(
        reason,
        [regex.location, prefix.location],
        subject=frontend,
        severity=severity,
        metrics={"captured_share": share} if share is not None else {},
    )


REGEX_CAPTURES_PREFIX = Rule(
    id="LB104",
    name="routing.regex-captures-prefix",
    family=Family.ROUTING,
    severity=Severity.WARNING,
    summary="An nginx regex location matches requests under a prefix location, so it takes "
    "them from that location.",
    rationale="nginx checks regex locations after finding the longest prefix and uses the "
    "first regex that matches, unless the prefix location is written with ^~. A regex "
    "meant for static files or one API version then receives requests that the prefix "
    "location and its upstream were meant to serve.",
    fix_hint="Write the prefix location as `location ^~ /prefix/`, or nest the regex "
    "location inside the prefix location.",
    check=check_regex_captures_prefix,
    needs="sharpens",
    examples=(
        Example(
            Product.NGINX,
            bad="location /api/ { proxy_pass http://api; }\n"
            "location ~ \\.json$ { proxy_pass http://static; }",
            good="location ^~ /api/ { proxy_pass http://api; }\n"
            "location ~ \\.json$ { proxy_pass http://static; }",
        ),
    ),
)
