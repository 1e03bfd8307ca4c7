"""Handlers of the proxy keywords that define ACLs and routing rules.

Each handler reads one line into the proxy state; conditions keep ACL names until the proxy
ends, because HAProxy adds later ``acl`` lines of the same name to the ACL a rule uses.
"""

from __future__ import annotations

from lbguard.model import Action, ActionKind, Matcher, MatchMethod, Mode
from lbguard.parsers.haproxy import keywords as kw
from lbguard.parsers.haproxy.acl import (
    AclContext,
    AclLine,
    ConditionError,
    ParsedCondition,
    Term,
    parse_acl_expression,
    parse_condition,
)
from lbguard.parsers.haproxy.lexer import ConfigLine
from lbguard.parsers.haproxy.proxy import PendingRule, ProxyState
from lbguard.parsers.haproxy.report import Reporter
from lbguard.parsers.haproxy.servers import invalid_char


def acl(report: Reporter, line: ConfigLine, proxy: ProxyState) -> None:
    name = line.word(1)
    if proxy.is_defaults and not proxy.name:
        report.error(
            line,
            "'acl' not allowed in anonymous 'defaults' section.",
            "name the defaults section or move the ACL to the proxy",
        )
        return
    bad = invalid_char(name)
    if bad is not None:
        report.error(
            line,
            f"character '{bad}' is not permitted in acl name '{name}'.",
            "use letters, digits, '-', '_', '.' and ':' only",
            code="acl",
        )
        return
    if name.lower() == "or":
        report.error(
            line,
            f"acl name '{name}' will never match. 'or' is used to express a "
            "logical disjunction within a condition.",
            "rename the ACL",
            code="acl",
        )
        return
    context = acl_context(report, line, proxy)
    try:
        condition = parse_acl_expression(line.words[2:], context)
    except ConditionError as error:
        report.error(
            line,
            f"error detected while parsing ACL '{name}' : {error}.",
            "fix the ACL expression; rules that use it are kept without it",
            code="acl",
        )
        return
    proxy.acls.setdefault(name, []).append(AclLine(name, condition, line.location))


def acl_context(report: Reporter, line: ConfigLine, proxy: ProxyState) -> AclContext:
    return AclContext(line.location, proxy.config_dir, report.diagnostics, proxy.mode is Mode.HTTP)


def parse_rule_condition(
    report: Reporter, line: ConfigLine, proxy: ProxyState, start: int, what: str
) -> tuple[bool, ParsedCondition | None]:
    """Parse the condition from word ``start``; return (valid, condition or None)."""
    if start >= len(line.words):
        return True, None
    try:
        parsed = parse_condition(
            line.words[start:], proxy.known_acl, acl_context(report, line, proxy)
        )
    except ConditionError as error:
        report.error(
            line,
            f"error detected while parsing {what} : {error}.",
            "declare the ACL before this line, or fix the condition",
            code="acl",
        )
        return False, None
    return True, parsed


def use_backend(report: Reporter, line: ConfigLine, proxy: ProxyState) -> None:
    if proxy.is_defaults:
        report.error(
            line,
            "'use_backend' not allowed in 'defaults' section.",
            "move the rule to a frontend or listen section",
        )
        return
    if not report.needs(line, proxy, "frontend"):
        return
    target = line.word(1)
    if not target:
        report.error(line, "'use_backend' expects a backend name.", "name the backend")
        return
    if line.word(2) and line.word(2) not in ("if", "unless"):
        report.error(
            line,
            f"unexpected keyword '{line.word(2)}' after switching rule, only "
            "'if' and 'unless' are allowed.",
            "start the condition with if or unless",
        )
        return
    valid, condition = parse_rule_condition(report, line, proxy, 2, "switching rule")
    if not valid:
        return
    if "%[" in target:
        action = Action(ActionKind.DYNAMIC, pool=target)
        report.info(
            line,
            f"use_backend computes the backend name at run time from '{target}'",
            "the share it routes is reported as unknown; requests "
            "whose name matches no backend go to the default backend",
            "unevaluated",
        )
    else:
        action = Action(ActionKind.ROUTE, pool=target)
    proxy.switching_rules.append(PendingRule(action, condition, line.location, line.text))


def default_backend(report: Reporter, line: ConfigLine, proxy: ProxyState) -> None:
    if not report.needs(line, proxy, "frontend"):
        return
    target = line.word(1)
    if not target:
        report.error(line, "'default_backend' expects a backend name.", "name the backend")
        return
    if len(line.words) > 2:
        # HAProxy 2.6 rejects the line and keeps the previous default (alertif_too_many_args
        # in cfgparse-listen.c).
        report.error(
            line,
            f"'default_backend' cannot handle unexpected argument '{line.words[2]}'.",
            "default_backend takes no condition; write 'use_backend NAME if COND' for a "
            "conditional rule and keep one default_backend without arguments",
        )
        return
    proxy.default_backend = target
    proxy.default_location = line.location


def http_request(report: Reporter, line: ConfigLine, proxy: ProxyState) -> None:
    action = line.word(1)
    start = condition_start(line.words, 2)
    if action in ("allow", *kw.HTTP_REQUEST_FINAL):
        valid, condition = parse_rule_condition(report, line, proxy, start, "'http-request' rule")
        if not valid:
            return
        result = final_action(action, line.words[2:start])
        proxy.http_rules.append(
            PendingRule(result, condition, line.location, line.text, allow=action == "allow")
        )
        return
    if action in kw.HTTP_REQUEST_REWRITES and proxy.is_frontend:
        report.info(
            line,
            f"'http-request {action}' is not modelled: later rules are "
            "evaluated on the request as received",
            "check the rules that follow this line by hand",
            "not-modelled",
        )


def tcp_request(report: Reporter, line: ConfigLine, proxy: ProxyState) -> None:
    kind, action = line.word(1), line.word(2)
    if kind not in ("connection", "session", "content"):
        return
    start = condition_start(line.words, 3)
    if action in ("reject", "accept"):
        valid, condition = parse_rule_condition(report, line, proxy, start, "'tcp-request' rule")
        if not valid:
            return
        result = Action(ActionKind.DENY, detail=f"tcp-request {kind} reject")
        proxy.tcp_rules.append(
            PendingRule(result, condition, line.location, line.text, allow=action == "accept")
        )
    elif action in ("set-var", "switch-mode", "use-service", "set-src", "set-dst"):
        report.info(
            line,
            f"'tcp-request {kind} {action}' is not modelled",
            "check the rules that follow this line by hand",
            "not-modelled",
        )


def redirect(report: Reporter, line: ConfigLine, proxy: ProxyState) -> None:
    if not report.needs(line, proxy, "frontend"):
        return
    start = condition_start(line.words, 1)
    valid, condition = parse_rule_condition(report, line, proxy, start, "'redirect' rule")
    if valid:
        result = final_action("redirect", line.words[1:start])
        proxy.redirect_rules.append(PendingRule(result, condition, line.location, line.text))


def block(report: Reporter, line: ConfigLine, proxy: ProxyState) -> None:
    valid, condition = parse_rule_condition(report, line, proxy, 1, "'block' rule")
    if valid:
        action = Action(ActionKind.DENY, status=403, detail="block (HAProxy before 2.1)")
        proxy.http_rules.append(PendingRule(action, condition, line.location, line.text))


def monitor_uri(report: Reporter, line: ConfigLine, proxy: ProxyState) -> None:
    uri = line.word(1)
    matcher = Matcher(
        "url", None, MatchMethod.STR, (uri,), location=line.location, text=f"url {uri}"
    )
    condition = ParsedCondition(False, ((Term(False, None, matcher),),), line.text)
    action = Action(ActionKind.RETURN, status=200, detail="monitor-uri")
    proxy.monitor_rules.append(PendingRule(action, condition, line.location, line.text))
    proxy.options.append(line.text)


def stats(report: Reporter, line: ConfigLine, proxy: ProxyState) -> None:
    proxy.options.append(line.text)
    sub = line.word(1)
    if sub in ("enable", "uri"):
        proxy.stats_enabled = True
        proxy.stats_location = proxy.stats_location or line.location
    if sub == "uri":
        proxy.stats_uri = line.word(2)
        proxy.stats_location = line.location


def use_server(report: Reporter, line: ConfigLine, proxy: ProxyState) -> None:
    if not report.needs(line, proxy, "backend"):
        return
    proxy.options.append(line.text)
    report.info(
        line,
        "use-server rules are not modelled: the prediction uses the "
        "balancing algorithm for every request",
        "check which requests this rule pins to one server",
        "not-modelled",
    )


def persistence(report: Reporter, line: ConfigLine, proxy: ProxyState) -> None:
    proxy.options.append(line.text)
    if line.words[0] == "stick" and line.word(1) in ("on", "match"):
        report.info(
            line,
            "stick-table persistence is not modelled: returning clients stay "
            "on the server they first reached",
            "expect the observed spread to differ from the prediction while clients stick",
            "not-modelled",
        )


def condition_start(words: tuple[str, ...], start: int) -> int:
    """Return the index of the first ``if``/``unless`` at or after ``start``."""
    for index in range(start, len(words)):
        if words[index] in ("if", "unless"):
            return index
    return len(words)


def final_action(action: str, args: tuple[str, ...]) -> Action:
    """Build the model action of a terminal ``http-request`` action or ``redirect``."""
    status = kw.HTTP_REQUEST_FINAL.get(action)
    for index, word in enumerate(args[:-1]):
        if word in ("status", "deny_status", "code") and args[index + 1].isdigit():
            status = int(args[index + 1])
    detail = " ".join((action, *args)).strip()
    kind = {
        "deny": ActionKind.DENY,
        "tarpit": ActionKind.DENY,
        "auth": ActionKind.DENY,
        "reject": ActionKind.DENY,
        "silent-drop": ActionKind.DENY,
        "redirect": ActionKind.REDIRECT,
        "return": ActionKind.RETURN,
        "use-service": ActionKind.RETURN,
        "allow": ActionKind.ROUTE,
    }[action]
    return Action(kind, status=status, detail=detail)
