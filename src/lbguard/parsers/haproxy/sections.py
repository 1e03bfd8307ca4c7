"""Read HAProxy configuration lines section by section into proxy states.

Each line goes to the handler of its section. Problems become diagnostics worded as
``haproxy -c`` words them, and the line is skipped while the rest is still read.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path

from lbguard.model import (
    Action,
    ActionKind,
    Bind,
    Diagnostic,
    Matcher,
    MatchMethod,
    Mode,
    Severity,
)
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
from lbguard.parsers.haproxy.balance import (
    BalanceError,
    parse_balance,
    parse_hash_balance_factor,
    parse_hash_type,
)
from lbguard.parsers.haproxy.build import build_rules
from lbguard.parsers.haproxy.lexer import ConfigLine
from lbguard.parsers.haproxy.proxy import PendingRule, ProxyState
from lbguard.parsers.haproxy.servers import (
    ServerError,
    ServerLine,
    apply_keywords,
    invalid_char,
    parse_address,
    template_names,
)


@dataclass
class Reader:
    """Reads lines of one or more files; collects proxies, settings and diagnostics."""

    diagnostics: list[Diagnostic] = field(default_factory=list)
    proxies: list[ProxyState] = field(default_factory=list)
    settings: list[tuple[str, str]] = field(default_factory=list)
    defaults: dict[str, ProxyState] = field(default_factory=dict)
    last_defaults: ProxyState | None = None
    section: str | None = None
    current: ProxyState | None = None

    # ----------------------------------------------------------------------------------
    # Reporting

    def error(self, line: ConfigLine, message: str, hint: str, code: str = "syntax") -> None:
        """Report a line HAProxy rejects, in ``haproxy -c`` form."""
        loc = line.location
        self.diagnostics.append(
            Diagnostic(
                Severity.ERROR, f"parsing [{loc.file}:{loc.line}] : {message}", loc, hint, code
            )
        )

    def warning(self, line: ConfigLine, message: str, hint: str, code: str = "syntax") -> None:
        loc = line.location
        self.diagnostics.append(
            Diagnostic(
                Severity.WARNING, f"parsing [{loc.file}:{loc.line}] : {message}", loc, hint, code
            )
        )

    def info(self, line: ConfigLine, message: str, hint: str, code: str) -> None:
        self.diagnostics.append(Diagnostic(Severity.INFO, message, line.location, hint, code))

    # ----------------------------------------------------------------------------------
    # Sections

    def read_file(self, lines: Iterable[ConfigLine], config_dir: Path) -> None:
        """Read one file; HAProxy starts every file outside any section."""
        self.section = None
        self.current = None
        for line in lines:
            self._report_unquoted_variables(line)
            keyword = line.words[0]
            if keyword in kw.SECTIONS:
                self.finish_section()
                self.start_section(line, config_dir)
            elif self.section is None:
                self._out_of_section(line)
            elif self.section == "global":
                self.read_global(line)
            elif self.current is not None:
                self.read_proxy(line, self.current)
        self.finish_section()

    def _out_of_section(self, line: ConfigLine) -> None:
        loc = line.location
        self.diagnostics.append(
            Diagnostic(
                Severity.ERROR,
                f"parsing [{loc.file}:{loc.line}]: unknown keyword '{line.words[0]}' out of "
                "section.",
                loc,
                "put the line inside a global, defaults, frontend, backend or listen section",
                "syntax",
            )
        )

    def _report_unquoted_variables(self, line: ConfigLine) -> None:
        for name in line.unquoted_vars:
            self.warning(
                line,
                f"'{name}' is outside double quotes, so HAProxy 2.6 keeps it as literal "
                "text instead of reading the environment variable",
                f'write "{name}" in double quotes, or fill the value in before deploying',
                code="unevaluated",
            )

    def start_section(self, line: ConfigLine, config_dir: Path) -> None:
        keyword = line.words[0]
        self.section = keyword
        self.current = None
        if keyword not in kw.PROXY_SECTIONS:
            return
        name = line.word(1)
        parent = self.last_defaults
        from_index = 2
        if keyword == "defaults":
            parent = None
            if name == "from":
                name, from_index = "", 1
        elif not name:
            self.error(
                line,
                f"'{keyword}' expects an <id> argument",
                f"name the {keyword} section",
            )
            return
        if line.word(from_index) == "from":
            wanted = line.word(from_index + 1)
            parent = self.defaults.get(wanted)
            if parent is None:
                self.error(
                    line,
                    f"defaults section '{wanted}' not found for {keyword} '{name}'.",
                    "declare the named defaults section before this one",
                )
        elif line.word(from_index) and keyword != "defaults":
            self.error(
                line,
                "please use the 'bind' keyword for listening addresses."
                if keyword != "backend"
                else f"unexpected argument '{line.word(from_index)}' after {keyword} name",
                "write only the section name, optionally followed by 'from <defaults>'",
            )
        bad = invalid_char(name)
        if bad is not None:
            self.error(
                line,
                f"character '{bad}' is not permitted in '{keyword}' name '{name}'.",
                "use letters, digits, '-', '_', '.' and ':' only",
            )
        proxy = ProxyState(keyword, name, line.location, config_dir)
        if parent is not None:
            proxy.inherit(parent)
        if keyword == "defaults":
            self.last_defaults = proxy
            if name:
                self.defaults[name] = proxy
        else:
            self.proxies.append(proxy)
        self.current = proxy

    def finish_section(self) -> None:
        """Close the current section; a defaults section builds the rules it passes on."""
        proxy = self.current
        if proxy is not None and proxy.is_defaults:
            context = AclContext(
                proxy.location, proxy.config_dir, self.diagnostics, proxy.mode is Mode.HTTP
            )
            proxy.inherited_rules = proxy.inherited_rules + tuple(
                build_rules(proxy.http_rules, proxy.acls, context)
            )
            proxy.http_rules = []
        self.current = None

    # ----------------------------------------------------------------------------------
    # global

    def read_global(self, line: ConfigLine) -> None:
        keyword = line.words[0]
        if keyword in ("no", "default"):
            keyword = line.word(1)
        if keyword not in kw.GLOBAL_KEYWORDS and not keyword.startswith("tune."):
            self.error(
                line,
                f"unknown keyword '{keyword}' in 'global' section",
                "check the spelling; lbguard knows the keywords of HAProxy 2.6, so a keyword "
                "of a newer version is reported too",
            )
            return
        if keyword == "stats" and line.word(1) == "socket":
            self._check_stats_socket(line)
        if keyword in kw.GLOBAL_SETTINGS:
            self.settings.append((keyword, " ".join(line.words[1:])))

    def _check_stats_socket(self, line: ConfigLine) -> None:
        words = list(line.words)
        if "expose-fd" in words:
            index = words.index("expose-fd")
            value = line.word(index + 1)
            if value != "listeners":
                self.error(
                    line,
                    f"'stats socket' : ''expose-fd' only supports 'listeners' (got '{value}')'",
                    "write 'expose-fd listeners'; a line split in two is a common cause",
                )

    # ----------------------------------------------------------------------------------
    # proxies

    def read_proxy(self, line: ConfigLine, proxy: ProxyState) -> None:
        keyword = line.words[0]
        handler = _HANDLERS.get(keyword)
        if keyword in kw.REMOVED_KEYWORDS:
            self.error(
                line,
                kw.REMOVED_KEYWORDS[keyword],
                "rewrite the line as the message says",
                code="removed",
            )
            if keyword == "block":
                self._block(line, proxy)
            return
        if keyword in ("no", "default") and line.word(1) == "option":
            self._option(line, proxy, line.words[2:], negate=keyword == "no")
            return
        if keyword in ("no", "default") and line.word(1) == "log":
            return
        if handler is not None:
            handler(self, line, proxy)
            return
        if keyword not in kw.PROXY_KEYWORDS:
            self.error(
                line,
                f"unknown keyword '{keyword}' in '{proxy.kind}' section",
                "check the spelling; lbguard knows the keywords of HAProxy 2.6, so a keyword "
                "of a newer version is reported too",
            )

    def _needs(self, line: ConfigLine, proxy: ProxyState, capability: str) -> bool:
        """Warn as HAProxy does when a keyword does not apply to this kind of proxy."""
        frontend = capability == "frontend"
        allowed = proxy.is_defaults or (proxy.is_frontend if frontend else proxy.is_backend)
        if not allowed:
            self.warning(
                line,
                f"'{line.words[0]}' ignored because {proxy.kind} '{proxy.name}' has no "
                f"{capability} capability.",
                f"move the line to a {capability} or listen section",
                code="capability",
            )
        return allowed

    def _mode(self, line: ConfigLine, proxy: ProxyState) -> None:
        value = line.word(1)
        if value not in ("http", "tcp", "log"):
            self.error(line, f"unknown proxy mode '{value}'.", "use 'mode http' or 'mode tcp'")
            return
        proxy.mode = Mode.HTTP if value == "http" else Mode.TCP

    def _balance(self, line: ConfigLine, proxy: ProxyState) -> None:
        if not self._needs(line, proxy, "backend"):
            return
        try:
            parse_balance(proxy.balance, list(line.words[1:]), line.location, line.text)
        except BalanceError as error:
            self.error(
                line,
                f"balance {error}",
                "see the 'balance' keyword in the HAProxy "
                "manual for the algorithms and their options",
                code="balance",
            )

    def _hash_type(self, line: ConfigLine, proxy: ProxyState) -> None:
        if not self._needs(line, proxy, "backend"):
            return
        try:
            parse_hash_type(proxy.balance, list(line.words[1:]))
        except BalanceError as error:
            self.error(
                line,
                str(error),
                "write 'hash-type map-based|consistent [sdbm|djb2|wt6|crc32] [avalanche]'",
                code="balance",
            )

    def _hash_balance_factor(self, line: ConfigLine, proxy: ProxyState) -> None:
        try:
            parse_hash_balance_factor(proxy.balance, list(line.words[1:]))
        except BalanceError as error:
            self.error(
                line, str(error), "use 0 to turn it off, or a percentage above 100", code="balance"
            )

    def _option(
        self,
        line: ConfigLine,
        proxy: ProxyState,
        words: tuple[str, ...] | None = None,
        negate: bool = False,
    ) -> None:
        args = words if words is not None else line.words[1:]
        name = args[0] if args else ""
        if name not in kw.OPTIONS:
            self.error(
                line, f"unknown option '{name}'.", "check the option name in the HAProxy manual"
            )
            return
        if name == "allbackups":
            proxy.all_backups = not negate
        if name in kw.HEALTH_CHECK_OPTIONS:
            proxy.health_check = not negate
        proxy.options.append(line.text)

    def _keep(self, line: ConfigLine, proxy: ProxyState) -> None:
        proxy.options.append(line.text)

    def _default_server(self, line: ConfigLine, proxy: ProxyState) -> None:
        if not self._needs(line, proxy, "backend"):
            return
        warnings: list[str] = []
        try:
            apply_keywords(proxy.default_server, list(line.words[1:]), "default-server", warnings)
        except ServerError as error:
            self._server_error(line, proxy, "default-server", str(error))
        for message in warnings:
            self.warning(
                line, message, "write the weight as a number from 0 to 256", code="weight"
            )

    def _server_error(self, line: ConfigLine, proxy: ProxyState, name: str, message: str) -> None:
        loc = line.location
        self.diagnostics.append(
            Diagnostic(
                Severity.ERROR,
                f"[{loc.file}:{loc.line}] : 'server {proxy.name}/{name}' : {message}",
                loc,
                "fix the server line; HAProxy 2.6 rejects the whole configuration",
                "server",
            )
        )

    def _server(self, line: ConfigLine, proxy: ProxyState) -> None:
        if not self._needs(line, proxy, "backend") or proxy.is_defaults:
            if proxy.is_defaults:
                self.error(
                    line,
                    f"'{line.words[0]}' not allowed in 'defaults' section.",
                    "use 'default-server' in defaults sections",
                )
            return
        template = line.words[0] == "server-template"
        needed = 4 if template else 3
        if len(line.words) < needed:
            expected = (
                "<prefix> <nb | range> <addr>[:<port>]"
                if template
                else ("<name> and <addr>[:<port>]")
            )
            self.error(
                line,
                f"'{line.words[0]}' expects {expected} as arguments.",
                "complete the server line",
            )
            return
        name = line.words[1]
        bad = invalid_char(name)
        if bad is not None:
            label = "prefix" if template else "name"
            self._server_error(
                line,
                proxy,
                name,
                f"character '{bad}' is not permitted in server {label} '{name}'.",
            )
        address_index = 3 if template else 2
        address_text = line.words[address_index]
        try:
            names = template_names(name, line.words[2]) if template else [name]
            if "${" in address_text:
                # Kept as written: the unquoted variable was reported with the line.
                address, port, port_text = address_text, None, ""
            else:
                address, port, port_text = parse_address(address_text)
        except ServerError as error:
            self._server_error(line, proxy, name, str(error))
            return
        settings = proxy.default_server.copy()
        warnings: list[str] = []
        try:
            apply_keywords(settings, list(line.words[address_index + 1 :]), names[0], warnings)
        except ServerError as error:
            self._server_error(line, proxy, name, str(error))
            return
        for message in warnings:
            self.warning(
                line, message, "write the weight as a number from 0 to 256", code="weight"
            )
        proxy.server_lines.append(
            ServerLine(names, address, port, port_text, settings, line.location, line.text)
        )
        if template and address.startswith("_"):
            self.info(
                line,
                f"server-template creates {len(names)} slots that DNS SRV records fill at run "
                "time; slots without a record stay in maintenance, and SRV weights become "
                "(weight + 255) / 256",
                "give the resolved servers as input to predict with the real membership",
                "runtime-membership",
            )

    def _bind(self, line: ConfigLine, proxy: ProxyState) -> None:
        if not self._needs(line, proxy, "frontend") or proxy.is_defaults:
            return
        if len(line.words) < 2:
            self.error(
                line,
                "'bind' expects {<path>|[addr1]:port1[-end1]}{,[addr]:port[-end]}"
                "... as arguments.",
                "give the address to listen on",
            )
            return
        options = tuple(line.words[2:])
        for index, word in enumerate(options):
            following = options[index + 1] if index + 1 < len(options) else ""
            if word in ("alpn", "proto") and "h2" in following.split(","):
                proxy.accepts_http2 = True
        for address in line.words[1].split(","):
            bind = self._bind_address(line, address, options)
            if bind is not None:
                proxy.binds.append(bind)

    def _bind_address(self, line: ConfigLine, text: str, options: tuple[str, ...]) -> Bind | None:
        host, _, port_text = text.rpartition(":")
        if "@" in text and ":" not in text.split("@", 1)[1]:
            return Bind(text, None, line.location, options)
        if not _ or not port_text:
            self.error(
                line,
                f"'bind' : missing port specification in '{text}'",
                "write the address as host:port, *:port or :port",
            )
            return None
        low, _, high = port_text.partition("-")
        if not low.isdigit() or (high and not high.isdigit()):
            if port_text.startswith("$"):
                message = f"'bind' : missing port specification in '{text}'"
            else:
                bad = next(c for c in port_text if not c.isdigit() and c != "-")
                message = (
                    f"'bind' : invalid character '{bad}' in port number '{port_text}' in '{text}'"
                )
            self.error(line, message, "write the port as a number from 1 to 65535")
            return Bind(host, None, line.location, options)
        for value in (low, high or low):
            if not 0 < int(value) < 65536:
                self.error(
                    line,
                    f"'bind' : invalid port '{value}'",
                    "write the port as a number from 1 to 65535",
                )
                return Bind(host, None, line.location, options)
        extra = (f"ports {port_text}",) if high else ()
        return Bind(host, int(low), line.location, options + extra)

    def _acl(self, line: ConfigLine, proxy: ProxyState) -> None:
        name = line.word(1)
        if proxy.is_defaults and not proxy.name:
            self.error(
                line,
                "'acl' not allowed in anonymous 'defaults' section.",
                "name the defaults section or move the ACL to the proxy",
            )
            return
        bad = invalid_char(name)
        if bad is not None:
            self.error(
                line,
                f"character '{bad}' is not permitted in acl name '{name}'.",
                "use letters, digits, '-', '_', '.' and ':' only",
                code="acl",
            )
            return
        if name.lower() == "or":
            self.error(
                line,
                f"acl name '{name}' will never match. 'or' is used to express a "
                "logical disjunction within a condition.",
                "rename the ACL",
                code="acl",
            )
            return
        context = self._context(line, proxy)
        try:
            condition = parse_acl_expression(line.words[2:], context)
        except ConditionError as error:
            self.error(
                line,
                f"error detected while parsing ACL '{name}' : {error}.",
                "fix the ACL expression; rules that use it are kept without it",
                code="acl",
            )
            return
        proxy.acls.setdefault(name, []).append(AclLine(name, condition, line.location))

    def _context(self, line: ConfigLine, proxy: ProxyState) -> AclContext:
        return AclContext(
            line.location, proxy.config_dir, self.diagnostics, proxy.mode is Mode.HTTP
        )

    def _condition(
        self, line: ConfigLine, proxy: ProxyState, start: int, what: str
    ) -> tuple[bool, ParsedCondition | None]:
        """Parse the condition from word ``start``; return (valid, condition or None)."""
        if start >= len(line.words):
            return True, None
        try:
            parsed = parse_condition(
                line.words[start:], proxy.known_acl, self._context(line, proxy)
            )
        except ConditionError as error:
            self.error(
                line,
                f"error detected while parsing {what} : {error}.",
                "declare the ACL before this line, or fix the condition",
                code="acl",
            )
            return False, None
        return True, parsed

    def _use_backend(self, line: ConfigLine, proxy: ProxyState) -> None:
        if proxy.is_defaults:
            self.error(
                line,
                "'use_backend' not allowed in 'defaults' section.",
                "move the rule to a frontend or listen section",
            )
            return
        if not self._needs(line, proxy, "frontend"):
            return
        target = line.word(1)
        if not target:
            self.error(line, "'use_backend' expects a backend name.", "name the backend")
            return
        if line.word(2) and line.word(2) not in ("if", "unless"):
            self.error(
                line,
                f"unexpected keyword '{line.word(2)}' after switching rule, only "
                "'if' and 'unless' are allowed.",
                "start the condition with if or unless",
            )
            return
        valid, condition = self._condition(line, proxy, 2, "switching rule")
        if not valid:
            return
        if "%[" in target:
            action = Action(ActionKind.DYNAMIC, pool=target)
            self.info(
                line,
                f"use_backend computes the backend name at run time from '{target}'",
                "the share it routes is reported as unknown; requests "
                "whose name matches no backend go to the default backend",
                "unevaluated",
            )
        else:
            action = Action(ActionKind.ROUTE, pool=target)
        proxy.switching_rules.append(PendingRule(action, condition, line.location, line.text))

    def _default_backend(self, line: ConfigLine, proxy: ProxyState) -> None:
        if not self._needs(line, proxy, "frontend"):
            return
        target = line.word(1)
        if not target:
            self.error(line, "'default_backend' expects a backend name.", "name the backend")
            return
        proxy.default_backend = target
        proxy.default_location = line.location

    def _http_request(self, line: ConfigLine, proxy: ProxyState) -> None:
        action = line.word(1)
        start = _condition_start(line.words, 2)
        if action in ("allow", *kw.HTTP_REQUEST_FINAL):
            valid, condition = self._condition(line, proxy, start, "'http-request' rule")
            if not valid:
                return
            result = _final_action(action, line.words[2:start])
            proxy.http_rules.append(
                PendingRule(result, condition, line.location, line.text, allow=action == "allow")
            )
            return
        if action in kw.HTTP_REQUEST_REWRITES and proxy.is_frontend:
            self.info(
                line,
                f"'http-request {action}' is not modelled: later rules are "
                "evaluated on the request as received",
                "check the rules that follow this line by hand",
                "not-modelled",
            )

    def _tcp_request(self, line: ConfigLine, proxy: ProxyState) -> None:
        kind, action = line.word(1), line.word(2)
        if kind not in ("connection", "session", "content"):
            return
        start = _condition_start(line.words, 3)
        if action in ("reject", "accept"):
            valid, condition = self._condition(line, proxy, start, "'tcp-request' rule")
            if not valid:
                return
            result = Action(ActionKind.DENY, detail=f"tcp-request {kind} reject")
            proxy.tcp_rules.append(
                PendingRule(result, condition, line.location, line.text, allow=action == "accept")
            )
        elif action in ("set-var", "switch-mode", "use-service", "set-src", "set-dst"):
            self.info(
                line,
                f"'tcp-request {kind} {action}' is not modelled",
                "check the rules that follow this line by hand",
                "not-modelled",
            )

    def _redirect(self, line: ConfigLine, proxy: ProxyState) -> None:
        if not self._needs(line, proxy, "frontend"):
            return
        start = _condition_start(line.words, 1)
        valid, condition = self._condition(line, proxy, start, "'redirect' rule")
        if valid:
            result = _final_action("redirect", line.words[1:start])
            proxy.redirect_rules.append(PendingRule(result, condition, line.location, line.text))

    def _block(self, line: ConfigLine, proxy: ProxyState) -> None:
        valid, condition = self._condition(line, proxy, 1, "'block' rule")
        if valid:
            action = Action(ActionKind.DENY, status=403, detail="block (HAProxy before 2.1)")
            proxy.http_rules.append(PendingRule(action, condition, line.location, line.text))

    def _monitor_uri(self, line: ConfigLine, proxy: ProxyState) -> None:
        uri = line.word(1)
        matcher = Matcher(
            "url", None, MatchMethod.STR, (uri,), location=line.location, text=f"url {uri}"
        )
        condition = ParsedCondition(False, ((Term(False, None, matcher),),), line.text)
        action = Action(ActionKind.RETURN, status=200, detail="monitor-uri")
        proxy.monitor_rules.append(PendingRule(action, condition, line.location, line.text))
        proxy.options.append(line.text)

    def _stats(self, line: ConfigLine, proxy: ProxyState) -> None:
        proxy.options.append(line.text)
        sub = line.word(1)
        if sub in ("enable", "uri"):
            proxy.stats_enabled = True
            proxy.stats_location = proxy.stats_location or line.location
        if sub == "uri":
            proxy.stats_uri = line.word(2)
            proxy.stats_location = line.location

    def _use_server(self, line: ConfigLine, proxy: ProxyState) -> None:
        if not self._needs(line, proxy, "backend"):
            return
        proxy.options.append(line.text)
        self.info(
            line,
            "use-server rules are not modelled: the prediction uses the "
            "balancing algorithm for every request",
            "check which requests this rule pins to one server",
            "not-modelled",
        )

    def _persistence(self, line: ConfigLine, proxy: ProxyState) -> None:
        proxy.options.append(line.text)
        if line.words[0] == "stick" and line.word(1) in ("on", "match"):
            self.info(
                line,
                "stick-table persistence is not modelled: returning clients stay "
                "on the server they first reached",
                "expect the observed spread to differ from the prediction while clients stick",
                "not-modelled",
            )


def _condition_start(words: tuple[str, ...], start: int) -> int:
    """Return the index of the first ``if``/``unless`` at or after ``start``."""
    for index in range(start, len(words)):
        if words[index] in ("if", "unless"):
            return index
    return len(words)


def _final_action(action: str, args: tuple[str, ...]) -> Action:
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


_HANDLERS: dict[str, Callable[[Reader, ConfigLine, ProxyState], None]] = {
    "mode": Reader._mode,
    "balance": Reader._balance,
    "hash-type": Reader._hash_type,
    "hash-balance-factor": Reader._hash_balance_factor,
    "option": Reader._option,
    "default-server": Reader._default_server,
    "server": Reader._server,
    "server-template": Reader._server,
    "bind": Reader._bind,
    "acl": Reader._acl,
    "use_backend": Reader._use_backend,
    "default_backend": Reader._default_backend,
    "http-request": Reader._http_request,
    "tcp-request": Reader._tcp_request,
    "redirect": Reader._redirect,
    "monitor-uri": Reader._monitor_uri,
    "stats": Reader._stats,
    "use-server": Reader._use_server,
    "stick": Reader._persistence,
    "cookie": Reader._persistence,
    "http-check": Reader._keep,
    "tcp-check": Reader._keep,
    "fullconn": Reader._keep,
}
