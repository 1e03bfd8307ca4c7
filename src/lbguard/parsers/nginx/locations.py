"""nginx ``location`` selection compiled into ordered first-match rules.

The lookup follows ngx_http_core_find_location and ngx_http_core_find_static_location in
nginx 1.22.1 (src/http/ngx_http_core_module.c):

1. an exact ``= /x`` location equal to the URI wins at once;
2. a prefix ending in ``/`` whose location proxies (``*_pass``) redirects the URI without
   the slash with a 301 redirect, unless a location matches that URI itself;
3. the longest matching prefix is remembered and its nested locations are searched;
   a nested exact or regex match is final;
4. unless that longest prefix is ``^~``, regex locations of the level are tried in
   config order and the first match wins (its nested locations are searched too);
5. otherwise the remembered longest prefix (or its nested prefix) is used.

Steps 1, 2, 4 and the final results of nested searches become "strong" rules; step 5
becomes "weak" rules that follow every regex rule of the enclosing levels.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from lbguard.model import (
    Action,
    ActionKind,
    AllOf,
    AnyOf,
    Condition,
    Constant,
    Location,
    Matcher,
    MatchMethod,
    Not,
)
from lbguard.parsers.nginx.files import Directive
from lbguard.parsers.nginx.regex import pcre_to_python

PASS_DIRECTIVES = (
    "proxy_pass",
    "grpc_pass",
    "fastcgi_pass",
    "uwsgi_pass",
    "scgi_pass",
    "memcached_pass",
)
"""Content handlers that set ``auto_redirect`` on a location whose name ends with ``/``."""


@dataclass(frozen=True)
class Outcome:
    """The effect of a location on the requests it receives, possibly split by a condition."""

    condition: Condition | None
    action: Action
    text: str
    location: Location
    implicit: bool = False
    """True for nginx behaviour that no directive states (`lbguard.model.Rule.implicit`)."""


@dataclass
class LocationBlock:
    """One ``location`` with its modifier and nested locations."""

    modifier: str
    """``""`` (prefix), ``=``, ``^~``, ``~``, ``~*`` or ``@`` (named)."""

    name: str
    directive: Directive
    nested: list[LocationBlock] = field(default_factory=list)
    outcomes: list[Outcome] = field(default_factory=list)
    python_regex: str | None = None

    @property
    def is_prefix(self) -> bool:
        return self.modifier in ("", "^~")

    @property
    def is_regex(self) -> bool:
        return self.modifier in ("~", "~*")

    @property
    def auto_redirect(self) -> bool:
        return self.name.endswith("/") and any(
            self.directive.first(name) is not None for name in PASS_DIRECTIVES
        )

    @property
    def label(self) -> str:
        if self.modifier:
            return f"location {self.modifier} {self.name}"
        return f"location {self.name}"


def split_location_args(args: tuple[str, ...]) -> tuple[str, str] | None:
    """Return (modifier, name) of a ``location`` directive's arguments."""
    if len(args) == 2 and args[0] in ("=", "^~", "~", "~*"):
        return args[0], args[1]
    if len(args) == 1:
        arg = args[0]
        if arg.startswith("@"):
            return "@", arg
        for modifier in ("=", "^~", "~*", "~"):
            if arg.startswith(modifier) and len(arg) > len(modifier):
                return modifier, arg[len(modifier) :]
        return "", arg
    return None


def compile_python_regex(block: LocationBlock) -> str | re.error:
    try:
        return pcre_to_python(block.name)
    except re.error as exc:
        return exc


# --------------------------------------------------------------------------------------
# Conditions


def _path(method: MatchMethod, pattern: str, block: LocationBlock, text: str = "") -> Matcher:
    return Matcher(
        "path",
        None,
        method,
        (pattern,),
        ignore_case=block.modifier == "~*",
        location=block.directive.location,
        text=text or block.label,
    )


def _all(terms: tuple[Condition, ...]) -> Condition | None:
    if not terms:
        return None
    if len(terms) == 1:
        return terms[0]
    return AllOf(terms)


@dataclass(frozen=True)
class CompiledRule:
    """A location rule before it is joined with the server-name condition."""

    condition: Condition | None
    action: Action
    text: str
    location: Location
    implicit: bool = False


def _emit(context: tuple[Condition, ...], outcomes: list[Outcome]) -> list[CompiledRule]:
    rules = []
    for outcome in outcomes:
        terms = context if outcome.condition is None else (*context, outcome.condition)
        rules.append(
            CompiledRule(
                _all(terms), outcome.action, outcome.text, outcome.location, outcome.implicit
            )
        )
    return rules


def compile_level(
    level: list[LocationBlock],
    context: tuple[Condition, ...],
    fallback: list[Outcome],
) -> tuple[list[CompiledRule], list[CompiledRule]]:
    """Compile the locations of one level into (strong, weak) ordered rules.

    ``context`` holds the conditions under which a request reaches this level and
    ``fallback`` is what the level does when none of its locations matches.
    """
    exact = [block for block in level if block.modifier == "="]
    prefixes = sorted((block for block in level if block.is_prefix), key=lambda b: -len(b.name))
    regexes = [block for block in level if block.is_regex and block.python_regex is not None]
    strong: list[CompiledRule] = []
    weak: list[CompiledRule] = []

    for block in exact:
        strong += _emit((*context, _path(MatchMethod.STR, block.name, block)), block.outcomes)

    matched_names = {block.name for block in exact} | {block.name for block in prefixes}
    for block in prefixes:
        target = block.name[:-1]
        if block.auto_redirect and target and target not in matched_names:
            condition = _path(MatchMethod.STR, target, block, f"{block.label} (auto redirect)")
            strong.append(
                CompiledRule(
                    _all((*context, condition)),
                    Action(ActionKind.REDIRECT, status=301, detail=f"{target} -> {block.name}"),
                    f"{block.label} (request without the trailing slash)",
                    block.directive.location,
                    implicit=True,
                )
            )

    noregex_conditions: list[Condition] = []
    for block in prefixes:
        longer = [
            _path(MatchMethod.BEG, other.name, other)
            for other in prefixes
            if len(other.name) > len(block.name) and other.name.startswith(block.name)
        ]
        terms: list[Condition] = []
        # Every request URI starts with "/", so "location /" needs no path test of its own.
        if block.name != "/":
            terms.append(_path(MatchMethod.BEG, block.name, block))
        if longer:
            terms.append(Not(longer[0] if len(longer) == 1 else AnyOf(tuple(longer))))
        nested_strong, nested_weak = compile_level(
            block.nested, (*context, *terms), block.outcomes
        )
        longest = _all(tuple(terms)) or Constant(True)
        strong += nested_strong
        weak += nested_weak
        if block.modifier == "^~":
            noregex_conditions.append(longest)

    guard: tuple[Condition, ...] = ()
    if noregex_conditions:
        stop = (
            noregex_conditions[0]
            if len(noregex_conditions) == 1
            else AnyOf(tuple(noregex_conditions))
        )
        guard = (Not(stop),)
    for block in regexes:
        assert block.python_regex is not None
        matcher = _path(MatchMethod.REG, block.python_regex, block)
        nested_strong, nested_weak = compile_level(
            block.nested, (*context, *guard, matcher), block.outcomes
        )
        strong += nested_strong + nested_weak

    weak += _emit(context, fallback)
    return strong, weak


def compile_locations(level: list[LocationBlock], fallback: list[Outcome]) -> list[CompiledRule]:
    strong, weak = compile_level(level, (), fallback)
    return strong + weak


# --------------------------------------------------------------------------------------
# Concrete lookup, used for literal ``rewrite ... last`` targets


def find_location(level: list[LocationBlock], uri: str) -> LocationBlock | None:
    """Return the location nginx selects for ``uri`` at this level, or None."""
    for block in level:
        if block.modifier == "=" and block.name == uri:
            return block
    longest: LocationBlock | None = None
    for block in level:
        longer = longest is None or len(block.name) > len(longest.name)
        if block.is_prefix and uri.startswith(block.name) and longer:
            longest = block
    if longest is not None:
        nested = find_location(longest.nested, uri)
        if nested is not None and (nested.modifier == "=" or nested.is_regex):
            return nested
        if longest.modifier == "^~":
            return nested or longest
    for block in level:
        if block.is_regex and block.python_regex is not None:
            flags = re.IGNORECASE if block.modifier == "~*" else 0
            if re.search(block.python_regex, uri, flags):
                return find_location(block.nested, uri) or block
    if longest is not None:
        return find_location(longest.nested, uri) or longest
    return None
