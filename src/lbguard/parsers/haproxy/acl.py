"""HAProxy ACLs and conditions, turned into `lbguard.model` conditions.

An ACL line ``acl <name> <criterion> [flags] [operator] <value> ...`` becomes a `Matcher`
when lbguard can evaluate the criterion over a traffic profile, and an `Unevaluated` with the
reason otherwise. Conditions (``if``/``unless`` followed by ACL names, ``!``, ``or``/``||``
and anonymous ``{ ... }`` ACLs) follow ``parse_acl_cond()`` of HAProxy 2.6 ``src/acl.c``:
AND binds tighter than OR and there are no parentheses.

Fetch names in the model are product-neutral. Decisions:

- ``hdr(host)`` and ``req.hdr(host)`` become fetch ``host`` (the Host header as sent, with
  ``:port`` when the client sends one); other headers become fetch ``hdr`` with the header
  name in lower case as ``arg``.
- ``url`` is the request target as sent, ``path`` the part before ``?``, ``query`` the part
  after it, ``base`` the Host header followed by the path.
- ``cook(name)`` becomes fetch ``cookie``; ``urlp(name)`` and ``url_param(name)`` become
  ``url_param``; ``req.ssl_sni``, ``req_ssl_sni`` and ``ssl_fc_sni`` become ``sni``.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from lbguard.model import (
    AllOf,
    AnyOf,
    Condition,
    Constant,
    Diagnostic,
    Location,
    Matcher,
    MatchMethod,
    Named,
    Not,
    Severity,
    Unevaluated,
)
from lbguard.parsers.haproxy.fetches import is_known_fetch
from lbguard.parsers.haproxy.keywords import PREDEFINED_ACLS

_SUFFIXES = {
    "beg": MatchMethod.BEG,
    "end": MatchMethod.END,
    "sub": MatchMethod.SUB,
    "dir": MatchMethod.DIR,
    "dom": MatchMethod.DOM,
    "reg": MatchMethod.REG,
    "len": MatchMethod.LEN,
}
"""ACL keyword suffix (``path_beg``) to the match method it selects."""

_BASE_FETCHES: dict[str, tuple[str, MatchMethod]] = {
    "path": ("path", MatchMethod.STR),
    "url": ("url", MatchMethod.STR),
    "query": ("query", MatchMethod.STR),
    "base": ("base", MatchMethod.STR),
    "method": ("method", MatchMethod.STR),
    "src": ("src", MatchMethod.IP),
    "urlp": ("url_param", MatchMethod.STR),
    "url_param": ("url_param", MatchMethod.STR),
    "hdr": ("hdr", MatchMethod.STR),
    "req.hdr": ("hdr", MatchMethod.STR),
    "req.fhdr": ("hdr", MatchMethod.STR),
    "fhdr": ("hdr", MatchMethod.STR),
    "cook": ("cookie", MatchMethod.STR),
    "req.cook": ("cookie", MatchMethod.STR),
    "req.ssl_sni": ("sni", MatchMethod.STR),
    "req_ssl_sni": ("sni", MatchMethod.STR),
    "ssl_fc_sni": ("sni", MatchMethod.STR),
}
"""HAProxy fetch name to (model fetch, default match method)."""

_NEEDS_ARGUMENT = frozenset({"url_param", "cookie"})

_UNEVALUATED_REASONS: tuple[tuple[re.Pattern[str], str], ...] = (
    (
        re.compile(r"(nbsrv|srv_is_up|srv_conn|srv_queue|be_conn|connslots|avg_queue|queue)"),
        "depends on run-time server health or load",
    ),
    (re.compile(r"(ssl_fc|ssl_c_|ssl_f_|ssl_bc)"), "depends on the client's TLS connection"),
    (re.compile(r"(dst|dst_port|so_id|fe_|fc_|bc_)"), "depends on the receiving socket"),
    (re.compile(r"(sc[0-9]?_|src_[a-z]|table_)"), "depends on stick-table counters"),
    (re.compile(r"http_auth"), "depends on the client's credentials"),
    (re.compile(r"(req\.ver|req_ver|req\.proto_http)"), "depends on the HTTP version"),
    (
        re.compile(r"(hdr_cnt|cook_cnt|hdr_val|cook_val|urlp_val|hdr_ip|_cnt|_val)"),
        "counts or converts header values, which the traffic profile does not describe",
    ),
    (re.compile(r"(var|env)"), "depends on a variable set at run time"),
)

_INT_OPERATORS = frozenset({"eq", "ge", "gt", "le", "lt"})


@dataclass(frozen=True)
class AclLine:
    """One ``acl`` line of a proxy, already turned into a condition."""

    name: str
    condition: Condition
    location: Location


@dataclass(frozen=True)
class Term:
    """One term of a condition: a named ACL, a predefined ACL or an anonymous one."""

    negate: bool
    name: str | None
    anonymous: Condition | None = None


@dataclass(frozen=True)
class ParsedCondition:
    """A condition after ``if``/``unless``, with ACL names resolved at the proxy's end."""

    unless: bool
    suites: tuple[tuple[Term, ...], ...]
    """OR of AND-suites, as HAProxy stores them."""

    text: str


@dataclass
class AclContext:
    """What ACL parsing needs from the section being read."""

    location: Location
    config_dir: Path
    diagnostics: list[Diagnostic]
    mode_is_http: bool = True
    reported: set[Location] = field(default_factory=set)


class ConditionError(ValueError):
    """A condition or ACL that HAProxy rejects; the message uses HAProxy's words."""


def parse_acl_expression(words: Sequence[str], context: AclContext) -> Condition:
    """Turn ``<criterion> [flags] [operator] <value> ...`` into a condition.

    Raise `ConditionError` for what HAProxy rejects (unknown fetch, bad flag, missing
    pattern file); return `Unevaluated` for valid criteria lbguard cannot evaluate.
    """
    if not words:
        raise ConditionError("missing ACL expression")
    criterion = words[0]
    text = " ".join(words)
    fetch, arg, converters = _split_criterion(criterion)
    if not is_known_fetch(fetch):
        raise ConditionError(f"unknown fetch method '{fetch}' in ACL expression '{criterion}'")

    ignore_case, explicit_method, patterns = _parse_flags_and_patterns(words[1:], context)

    if fetch in ("always_true", "always_false"):
        return Constant(fetch == "always_true")

    resolved = _resolve_fetch(fetch, arg)
    if resolved is None or (converters and converters != ["lower"]):
        reason = _unevaluated_reason(fetch, converters)
        return _unevaluated(text, reason, context)
    model_fetch, model_arg, method = resolved
    if converters == ["lower"]:
        if any(p != p.lower() for p in patterns):
            return _unevaluated(
                text,
                "applies the 'lower' converter before comparing with upper-case patterns",
                context,
            )
        ignore_case = True
    if explicit_method is not None:
        method = explicit_method
    if method in (MatchMethod.INT, MatchMethod.LEN):
        patterns = _integer_patterns(patterns)
    if not patterns and method not in (MatchMethod.FOUND, MatchMethod.BOOL):
        diagnostic_text = f"ACL expression '{text}' has no pattern and never matches"
        context.diagnostics.append(
            Diagnostic(
                Severity.WARNING,
                diagnostic_text,
                context.location,
                hint="add the values to compare with, or use '-m found'",
                code="acl",
            )
        )
    return Matcher(
        fetch=model_fetch,
        arg=model_arg,
        method=method,
        patterns=tuple(patterns),
        ignore_case=ignore_case,
        location=context.location,
        text=text,
    )


def _split_criterion(criterion: str) -> tuple[str, str | None, list[str]]:
    """Split ``fetch(arg),conv1,conv2`` into fetch name, argument and converter names."""
    depth = 0
    parts: list[str] = []
    current: list[str] = []
    for char in criterion:
        if char == "(":
            depth += 1
        elif char == ")":
            depth -= 1
        if char == "," and depth == 0:
            parts.append("".join(current))
            current = []
            continue
        current.append(char)
    parts.append("".join(current))
    head = parts[0]
    converters = [part.split("(", 1)[0] for part in parts[1:]]
    if "(" in head and head.endswith(")"):
        name, argument = head[:-1].split("(", 1)
        return name, argument or None, converters
    return head, None, converters


def _resolve_fetch(fetch: str, arg: str | None) -> tuple[str, str | None, MatchMethod] | None:
    """Map an HAProxy fetch (with suffix) to (model fetch, argument, default method)."""
    base, method = fetch, None
    for suffix, suffix_method in _SUFFIXES.items():
        if fetch.endswith("_" + suffix) and fetch[: -len(suffix) - 1] in _BASE_FETCHES:
            base, method = fetch[: -len(suffix) - 1], suffix_method
            break
    if base not in _BASE_FETCHES:
        return None
    model_fetch, default_method = _BASE_FETCHES[base]
    method = method or default_method
    if model_fetch == "hdr":
        if arg is None:
            return None
        name = arg.split(",", 1)[0].strip().lower()
        if name == "host":
            return "host", None, method
        return "hdr", name, method
    if model_fetch in _NEEDS_ARGUMENT:
        if arg is None:
            return None
        return model_fetch, arg.split(",", 1)[0].strip(), method
    if arg is not None and model_fetch not in ("sni",):
        return None
    return model_fetch, None, method


def _unevaluated_reason(fetch: str, converters: list[str]) -> str:
    if converters:
        return f"applies the converter(s) {', '.join(converters)}, which lbguard does not model"
    for pattern, reason in _UNEVALUATED_REASONS:
        if pattern.match(fetch):
            return reason
    return f"uses the sample fetch '{fetch}', which no traffic profile column describes"


def _unevaluated(text: str, reason: str, context: AclContext) -> Unevaluated:
    if context.location not in context.reported:
        context.reported.add(context.location)
        context.diagnostics.append(
            Diagnostic(
                Severity.INFO,
                f"cannot evaluate '{text}' over a traffic profile: it {reason}",
                context.location,
                hint="the share of traffic this condition decides is reported as unknown",
                code="unevaluated",
            )
        )
    return Unevaluated(text, reason, context.location)


_MATCH_NAMES = {method.value: method for method in MatchMethod}


def _parse_flags_and_patterns(
    words: Sequence[str], context: AclContext
) -> tuple[bool, MatchMethod | None, list[str]]:
    """Read ``-i``, ``-m``, ``-f``, ``-M``, ``-n``, ``-u`` and ``--``, then the patterns."""
    ignore_case = False
    method: MatchMethod | None = None
    patterns: list[str] = []
    index = 0
    while index < len(words) and words[index].startswith("-"):
        flag = words[index]
        if flag == "--":
            index += 1
            break
        if flag in ("-i", "-n", "-M"):
            ignore_case = ignore_case or flag == "-i"
        elif flag == "-u":
            index += 1
        elif flag == "-m":
            index += 1
            name = words[index] if index < len(words) else ""
            if name not in _MATCH_NAMES:
                raise ConditionError(
                    f"unknown matching method '{name}' when parsing ACL expression"
                )
            method = _MATCH_NAMES[name]
        elif flag == "-f":
            index += 1
            file_name = words[index] if index < len(words) else ""
            patterns.extend(read_pattern_file(file_name, context))
        else:
            raise ConditionError(
                f"'{flag}' is not a valid ACL option. Please use '--' before any pattern "
                "beginning with a '-'"
            )
        index += 1
    patterns.extend(words[index:])
    return ignore_case, method, patterns


def read_pattern_file(file_name: str, context: AclContext) -> list[str]:
    """Read an ACL pattern file: one pattern a line, blanks trimmed, ``#`` lines skipped.

    A relative name is read relative to the configuration file's directory.
    """
    path = Path(file_name)
    if not path.is_absolute():
        path = context.config_dir / path
    try:
        text = path.read_text(encoding="utf-8", errors="surrogateescape")
    except OSError as error:
        raise ConditionError(
            f"failed to open pattern file <{file_name}> ({error.strerror})"
        ) from error
    patterns = []
    for line in text.splitlines():
        stripped = line.strip()
        if stripped and not stripped.startswith("#"):
            patterns.append(stripped.split()[0] if stripped else stripped)
    return patterns


def _integer_patterns(patterns: list[str]) -> list[str]:
    """Rewrite ``gt 1`` style operators into HAProxy's range form (``2:``)."""
    result: list[str] = []
    operator = "eq"
    for pattern in patterns:
        if pattern in _INT_OPERATORS:
            operator = pattern
            continue
        if ":" in pattern or "-" in pattern[1:] or operator == "eq" or not pattern.isdigit():
            result.append(pattern)
            continue
        value = int(pattern)
        result.append(
            {
                "le": f":{value}",
                "lt": f":{value - 1}",
                "ge": f"{value}:",
                "gt": f"{value + 1}:",
            }[operator]
        )
    return result


# --------------------------------------------------------------------------------------
# Conditions


def parse_condition(
    words: Sequence[str], known: Callable[[str], bool], context: AclContext
) -> ParsedCondition:
    """Parse ``if|unless <terms>``; ``known`` tells whether an ACL name exists yet.

    Raise `ConditionError` with HAProxy's message for an unknown ACL, a missing ``}`` or a
    keyword other than ``if``/``unless``.
    """
    if not words or words[0] not in ("if", "unless"):
        raise ConditionError("conditions must start with either 'if' or 'unless'")
    unless = words[0] == "unless"
    suites: list[tuple[Term, ...]] = []
    suite: list[Term] = []
    negate = False
    index = 1
    while index < len(words):
        word = words[index]
        while word.startswith("!"):
            negate = not negate
            word = word[1:]
        if not word:
            index += 1
            continue
        if word.lower() == "or" or word == "||":
            if suite:
                suites.append(tuple(suite))
            suite = []
            negate = False
            index += 1
            continue
        if word == "{":
            end = index + 1
            while end < len(words) and words[end] != "}":
                end += 1
            if end >= len(words):
                raise ConditionError("missing closing '}' in condition")
            inner = parse_acl_expression(words[index + 1 : end], context)
            suite.append(Term(negate, None, inner))
            index = end + 1
            negate = False
            continue
        if not known(word) and word not in PREDEFINED_ACLS:
            raise ConditionError(f"no such ACL : '{word}'")
        suite.append(Term(negate, word))
        negate = False
        index += 1
    if suite:
        suites.append(tuple(suite))
    return ParsedCondition(unless, tuple(suites), " ".join(words))


def build_condition(
    parsed: ParsedCondition, acls: dict[str, list[AclLine]], context: AclContext
) -> Condition:
    """Resolve ACL names into `Named` conditions and build the model's tree."""
    alternatives: list[Condition] = []
    for suite in parsed.suites:
        terms = [_build_term(term, acls, context) for term in suite]
        alternatives.append(terms[0] if len(terms) == 1 else AllOf(tuple(terms)))
    condition: Condition
    if not alternatives:
        condition = Constant(True)
    elif len(alternatives) == 1:
        condition = alternatives[0]
    else:
        condition = AnyOf(tuple(alternatives))
    return Not(condition) if parsed.unless else condition


def _build_term(term: Term, acls: dict[str, list[AclLine]], context: AclContext) -> Condition:
    condition: Condition
    if term.anonymous is not None:
        condition = term.anonymous
    elif term.name is not None and term.name in acls:
        lines = acls[term.name]
        inner = (
            lines[0].condition
            if len(lines) == 1
            else AnyOf(tuple(line.condition for line in lines))
        )
        condition = Named(term.name, inner, tuple(line.location for line in lines))
    else:
        condition = predefined_acl(term.name or "", context)
    return Not(condition) if term.negate else condition


def predefined_acl(name: str, context: AclContext) -> Condition:
    """Return HAProxy's built-in ACL ``name`` (``TRUE``, ``METH_GET``, ``LOCALHOST``...)."""
    definition = PREDEFINED_ACLS[name]
    if definition[0] == "always_true":
        return Constant(True)
    if definition[0] == "always_false":
        return Constant(False)
    if definition[0] == "req.proto_http" and context.mode_is_http:
        return Named(name, Constant(True), ())
    return Named(name, parse_acl_expression(definition, context), ())
