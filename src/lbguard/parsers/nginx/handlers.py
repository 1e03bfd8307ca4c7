"""What one nginx location (or server level) does with a request: its `Outcome` list.

Rewrite-module directives (``return``, ``rewrite``, ``if``, ``break``) run first, in
order; then the access phase (``deny all``, ``internal``); then the content handler
(``*_pass``, ``try_files``) or the static-file default.
"""

from __future__ import annotations

import difflib
import os
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

from lbguard.model import (
    Action,
    ActionKind,
    AllOf,
    Condition,
    Diagnostic,
    Location,
    Matcher,
    MatchMethod,
    Not,
    Severity,
    Unevaluated,
)
from lbguard.parsers.nginx.files import Directive
from lbguard.parsers.nginx.locations import (
    PASS_DIRECTIVES,
    LocationBlock,
    Outcome,
    find_location,
)
from lbguard.parsers.nginx.regex import pcre_to_python
from lbguard.parsers.nginx.upstreams import PoolBuilder, split_address
from lbguard.parsers.nginx.variables import (
    MapBlock,
    has_variables,
    single_variable,
    variable_fetch,
)

REDIRECT_CODES = frozenset({301, 302, 303, 307, 308})
MAX_INTERNAL_REDIRECTS = 10
"""nginx stops a chain of internal redirects after 10 (NGX_HTTP_MAX_URI_CHANGES + 1)."""

STATIC = Action(ActionKind.RETURN, detail="static files from root")
"""nginx's default content handler: the file under ``root`` (200), or 403 or 404."""
SCHEMES = ("http://", "https://", "grpc://", "grpcs://", "uwsgi://", "suwsgi://")


@dataclass
class HandlerContext:
    """Everything outcome computation needs from the enclosing configuration."""

    pools: PoolBuilder
    maps: Mapping[str, MapBlock]
    diagnostics: list[Diagnostic]
    locations: list[LocationBlock] = field(default_factory=list)
    """Top-level locations of the current server, for rewrite targets."""

    named: dict[str, LocationBlock] = field(default_factory=dict)
    """Named ``@x`` locations of the current server."""

    outcomes_of: Callable[[LocationBlock, int], list[Outcome]] | None = None
    base: str = ""
    """Folder of the main file; rule texts show file names relative to it."""

    def display_location(self, location: Location) -> str:
        """Return ``file:line`` with the file relative to `base` when it lies inside."""
        if not self.base or not location.file:
            return str(location)
        path = os.path.abspath(location.file)
        if os.path.commonpath([self.base, path]) != self.base:
            return str(location)
        return f"{os.path.relpath(path, self.base)}:{location.line}"

    def report(
        self,
        severity: Severity,
        message: str,
        location: Location,
        hint: str = "",
        code: str = "unevaluated",
    ) -> None:
        self.diagnostics.append(Diagnostic(severity, message, location, hint, code))


def return_action(directive: Directive) -> Action:
    """Action of ``return code [text|URL]`` or ``return URL``."""
    args = directive.args
    if not args:
        return Action(ActionKind.RETURN, detail=directive.text)
    if args[0].isdigit():
        status = int(args[0])
        target = args[1] if len(args) > 1 else ""
        if status in REDIRECT_CODES:
            return Action(ActionKind.REDIRECT, status=status, detail=target)
        if status == 444:
            return Action(ActionKind.DENY, status=444, detail="connection closed")
        return Action(ActionKind.RETURN, status=status, detail=target)
    return Action(ActionKind.REDIRECT, status=302, detail=args[0])


def _unconditional(outcomes: list[Outcome]) -> Outcome | None:
    for outcome in outcomes:
        if outcome.condition is None:
            return outcome
    return None


def if_condition(directive: Directive) -> Condition:
    """Translate ``if (...)`` over a request variable into a condition when possible."""
    args = directive.args
    text = directive.text
    unevaluated = Unevaluated(
        text, "if condition is not a request field comparison", directive.location
    )
    if not args:
        return unevaluated
    name = single_variable(args[0])
    fetch = variable_fetch(name) if name else None
    if fetch is None:
        return unevaluated
    fetch_name, arg = fetch
    if len(args) == 1:
        return Matcher(fetch_name, arg, MatchMethod.BOOL, (), False, directive.location, text)
    if len(args) != 3:
        return unevaluated
    operator, value = args[1], args[2]
    negate = operator.startswith("!")
    operator = operator.lstrip("!")
    condition: Condition
    if operator == "=":
        condition = Matcher(
            fetch_name, arg, MatchMethod.STR, (value,), False, directive.location, text
        )
    elif operator in ("~", "~*"):
        try:
            python = pcre_to_python(value)
        except re.error as exc:
            return Unevaluated(text, f"regex not valid in Python: {exc}", directive.location)
        condition = Matcher(
            fetch_name, arg, MatchMethod.REG, (python,), operator == "~*", directive.location, text
        )
    else:
        return unevaluated
    if negate:
        return Not(condition)
    return condition


def compute_outcomes(block: Directive, ctx: HandlerContext, depth: int = 0) -> list[Outcome]:
    """Return the ordered outcomes of a location block; the last one is unconditional."""
    outcomes, terminated = rewrite_outcomes(block, ctx, depth)
    if not terminated:
        outcomes.extend(access_and_content(block, ctx, depth))
    return outcomes


def rewrite_outcomes(
    block: Directive, ctx: HandlerContext, depth: int = 0
) -> tuple[list[Outcome], bool]:
    """Return the outcomes of the rewrite directives of a block, and whether an
    unconditional ``return`` ends the block."""
    outcomes: list[Outcome] = []
    for directive in block.block or ():
        if directive.name == "return":
            outcomes.append(
                Outcome(None, return_action(directive), directive.text, directive.location)
            )
            return outcomes, True
        if directive.name == "break" and not directive.args:
            break
        if directive.name == "rewrite":
            outcome = _rewrite(directive, ctx, depth)
            if outcome is not None:
                outcomes.append(outcome)
        elif directive.name == "if":
            condition = if_condition(directive)
            for inner in compute_outcomes(directive, ctx, depth):
                if inner.action is STATIC:
                    continue
                terms = (condition,) if inner.condition is None else (condition, inner.condition)
                joined = terms[0] if len(terms) == 1 else AllOf(terms)
                outcomes.append(Outcome(joined, inner.action, inner.text, inner.location))
    return outcomes, False


def access_and_content(block: Directive, ctx: HandlerContext, depth: int) -> list[Outcome]:
    for directive in block.block or ():
        if directive.name == "allow":
            break
        if directive.name == "deny" and directive.args == ("all",):
            return [
                Outcome(
                    None, Action(ActionKind.DENY, status=403), directive.text, directive.location
                )
            ]
    internal = block.first("internal")
    if internal is not None:
        return [
            Outcome(
                None,
                Action(ActionKind.RETURN, status=404, detail="internal location"),
                internal.text,
                internal.location,
            )
        ]
    for name in PASS_DIRECTIVES:
        handler = block.first(name)
        if handler is not None and handler.args:
            return pass_outcomes(handler, ctx)
    try_files = block.first("try_files")
    if try_files is not None and len(try_files.args) >= 2:
        return _try_files(try_files, ctx, depth)
    for name in ("stub_status", "echo", "content_by_lua_block", "js_content", "api"):
        handler = block.first(name)
        if handler is not None:
            return [
                Outcome(
                    None,
                    Action(ActionKind.RETURN, status=200, detail=handler.name),
                    handler.text,
                    handler.location,
                )
            ]
    return [static_default(block)]


def static_default(block: Directive) -> Outcome:
    """Return the outcome of a block without a content handler: nginx serves static files.

    At server level it is implicit, because no location matched and no line states it. A
    location's own static default is stated by that location, so `_outcomes_of` in
    `servers` drops the mark.
    """
    return Outcome(None, STATIC, "static files", block.location, implicit=True)


def _try_files(directive: Directive, ctx: HandlerContext, depth: int) -> list[Outcome]:
    last = directive.args[-1]
    note = f"{directive.text}: requests whose file exists are served from disk instead"
    if last.startswith("="):
        return [Outcome(None, STATIC, directive.text, directive.location)]
    if last.startswith("@"):
        target = ctx.named.get(last)
        if target is None:
            ctx.report(
                Severity.ERROR,
                f'named location "{last}" not found',
                directive.location,
                hint="define location " + last,
                code="syntax",
            )
            return [Outcome(None, STATIC, directive.text, directive.location)]
        return _via(target, ctx, depth, note, directive)
    if has_variables(last):
        return [
            Outcome(
                None,
                Action(ActionKind.DYNAMIC, pool=last, detail=note),
                directive.text,
                directive.location,
            )
        ]
    target = find_location(ctx.locations, last.partition("?")[0])
    if target is None:
        return [Outcome(None, STATIC, directive.text, directive.location)]
    return _via(target, ctx, depth, note, directive)


def _via(
    target: LocationBlock, ctx: HandlerContext, depth: int, note: str, directive: Directive
) -> list[Outcome]:
    """Outcome of an internal redirect to ``target`` from ``directive``."""
    if depth >= MAX_INTERNAL_REDIRECTS or ctx.outcomes_of is None:
        ctx.report(
            Severity.ERROR,
            "rewrite or internal redirection cycle",
            directive.location,
            hint="break the redirect loop",
            code="cycle",
        )
        return [
            Outcome(
                None, Action(ActionKind.RETURN, status=500), directive.text, directive.location
            )
        ]
    final = _unconditional(ctx.outcomes_of(target, depth + 1))
    if final is None:
        return [Outcome(None, STATIC, directive.text, directive.location)]
    detail = f"{note}; via {target.label} at {target.directive.location}"
    action = Action(final.action.kind, final.action.pool, final.action.status, detail)
    return [Outcome(None, action, directive.text, directive.location)]


def _rewrite(directive: Directive, ctx: HandlerContext, depth: int) -> Outcome | None:
    args = directive.args
    if len(args) < 2:
        return None
    pattern, replacement = args[0], args[1]
    flag = args[2] if len(args) > 2 else ""
    try:
        python = pcre_to_python(pattern)
    except re.error as exc:
        ctx.report(
            Severity.WARNING, f"rewrite regex not valid in Python: {exc}", directive.location
        )
        return None
    condition = Matcher(
        "path", None, MatchMethod.REG, (python,), False, directive.location, directive.text
    )
    if flag in ("redirect", "permanent") or replacement.startswith(
        ("http://", "https://", "$scheme")
    ):
        status = 301 if flag == "permanent" else 302
        return Outcome(
            condition,
            Action(ActionKind.REDIRECT, status=status, detail=replacement),
            directive.text,
            directive.location,
        )
    if flag == "break":
        return None
    if has_variables(replacement) or re.search(r"\$\d", replacement):
        ctx.report(
            Severity.INFO,
            f"rewrite to a computed URI is not followed: {directive.text}",
            directive.location,
            hint="requests it matches are reported as dynamic",
        )
        return Outcome(
            condition,
            Action(ActionKind.DYNAMIC, pool=replacement, detail="rewrite to a computed URI"),
            directive.text,
            directive.location,
        )
    target = find_location(ctx.locations, replacement.partition("?")[0])
    if target is None:
        return Outcome(condition, STATIC, directive.text, directive.location)
    via = _via(target, ctx, depth, f"{directive.text}", directive)[0]
    return Outcome(condition, via.action, directive.text, directive.location)


# --------------------------------------------------------------------------------------
# proxy_pass and friends


def pass_target(directive: Directive) -> str:
    """Return the authority (``host:port``, upstream name or ``unix:``) of a ``*_pass``."""
    url = directive.args[0]
    lower = url.lower()
    for scheme in SCHEMES:
        if lower.startswith(scheme):
            url = url[len(scheme) :]
            break
    if url.startswith("unix:"):
        path, _, _ = url[5:].partition(":")
        return "unix:" + path
    return url.partition("/")[0]


def pass_outcomes(directive: Directive, ctx: HandlerContext) -> list[Outcome]:
    target = pass_target(directive)
    if not has_variables(target):
        return [
            Outcome(None, route_to(target, directive, ctx), directive.text, directive.location)
        ]
    name = single_variable(target)
    map_block = ctx.maps.get(name) if name else None
    if map_block is None or not map_block.evaluable:
        ctx.report(
            Severity.INFO,
            f"{directive.name} target {target} is computed per request; its traffic is "
            "reported as unevaluated",
            directive.location,
            hint="lbguard evaluates only map variables over request fields",
        )
        return [
            Outcome(
                None,
                Action(ActionKind.DYNAMIC, pool=target, detail=directive.text),
                directive.text,
                directive.location,
            )
        ]
    outcomes = []
    for condition, value, location in map_block.entries:
        if has_variables(value):
            action = Action(ActionKind.DYNAMIC, pool=value, detail=directive.text)
        elif ctx.pools.find(value) is not None:
            action = Action(ActionKind.ROUTE, pool=ctx.pools.find(value).name)  # type: ignore[union-attr]
        else:
            action = Action(
                ActionKind.DYNAMIC,
                pool=value,
                detail="host name resolved at run time through resolver",
            )
        shown = value or '""'
        text = f"{directive.text} (${map_block.variable} = {shown})"
        outcomes.append(Outcome(condition, action, text, location))
    return outcomes


def route_to(target: str, directive: Directive, ctx: HandlerContext) -> Action:
    host, port = split_address(target)
    pool = ctx.pools.find(host)
    if pool is not None and "implicit" not in pool.options:
        if port is not None:
            ctx.report(
                Severity.ERROR,
                f'upstream "{host}" may not have port {port}',
                directive.location,
                hint=f"write {directive.name} without the port",
                code="syntax",
            )
        return Action(ActionKind.ROUTE, pool=pool.name)
    if not host.startswith("unix:") and port is None and "." not in host and ":" not in host:
        names = [p.name for p in ctx.pools.pools if "implicit" not in p.options]
        close = difflib.get_close_matches(host, names, n=1)
        hint = (
            f'did you mean upstream "{close[0]}"?'
            if close
            else ("define the upstream or use an address")
        )
        ctx.report(
            Severity.WARNING,
            f'no upstream named "{host}"; nginx resolves it as a host name at start-up '
            f'and fails with "host not found in upstream" when it does not resolve',
            directive.location,
            hint=hint,
            code="unknown-upstream",
        )
    name = ctx.pools.add_implicit(target, directive.location, directive.text)
    return Action(ActionKind.ROUTE, pool=name)
