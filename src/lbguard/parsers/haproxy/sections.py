"""Read HAProxy configuration lines section by section into proxy states.

Each line goes to the handler of its keyword. Problems become diagnostics worded as
``haproxy -c`` words them, and the line is skipped while the rest is still read.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path

from lbguard.model import Diagnostic, Mode, Severity
from lbguard.parsers.haproxy import keywords as kw
from lbguard.parsers.haproxy import members, rules
from lbguard.parsers.haproxy.acl import AclContext
from lbguard.parsers.haproxy.balance import (
    BalanceError,
    parse_balance,
    parse_hash_balance_factor,
    parse_hash_type,
)
from lbguard.parsers.haproxy.build import build_rules
from lbguard.parsers.haproxy.lexer import ConfigLine
from lbguard.parsers.haproxy.proxy import ProxyState
from lbguard.parsers.haproxy.report import Reporter
from lbguard.parsers.haproxy.servers import invalid_char

Handler = Callable[[Reporter, ConfigLine, ProxyState], None]


@dataclass
class Reader:
    """Reads lines of one or more files; collects proxies, settings and diagnostics."""

    report: Reporter = field(default_factory=Reporter)
    proxies: list[ProxyState] = field(default_factory=list)
    settings: list[tuple[str, str]] = field(default_factory=list)
    defaults: dict[str, ProxyState] = field(default_factory=dict)
    last_defaults: ProxyState | None = None
    section: str | None = None
    current: ProxyState | None = None

    @property
    def diagnostics(self) -> list[Diagnostic]:
        return self.report.diagnostics

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
        self.report.diagnostics.append(
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
            self.report.warning(
                line,
                f"'{name}' is outside double quotes, so HAProxy 2.6 keeps it as literal "
                "text instead of reading the environment variable",
                f'write "{name}" in double quotes, or fill the value in before deploying',
                code="unevaluated",
            )

    def start_section(self, line: ConfigLine, config_dir: Path) -> None:
        """Open a section; a proxy starts from its defaults section, as HAProxy 2.6 does."""
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
            self.report.error(
                line,
                f"'{keyword}' expects an <id> argument",
                f"name the {keyword} section",
            )
            return

        if line.word(from_index) == "from":
            parent_name = line.word(from_index + 1)
            parent = self.defaults.get(parent_name)
            if parent is None:
                self.report.error(
                    line,
                    f"defaults section '{parent_name}' not found for {keyword} '{name}'.",
                    "declare the named defaults section before this one",
                )
        elif line.word(from_index) and keyword != "defaults":
            self.report.error(
                line,
                "please use the 'bind' keyword for listening addresses."
                if keyword != "backend"
                else f"unexpected argument '{line.word(from_index)}' after {keyword} name",
                "write only the section name, optionally followed by 'from <defaults>'",
            )

        bad = invalid_char(name)
        if bad is not None:
            self.report.error(
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
                proxy.location, proxy.config_dir, self.report.diagnostics, proxy.mode is Mode.HTTP
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
            self.report.error(
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
                self.report.error(
                    line,
                    f"'stats socket' : ''expose-fd' only supports 'listeners' (got '{value}')'",
                    "write 'expose-fd listeners'; a line split in two is a common cause",
                )

    # ----------------------------------------------------------------------------------
    # proxies

    def read_proxy(self, line: ConfigLine, proxy: ProxyState) -> None:
        keyword = line.words[0]
        handler = HANDLERS.get(keyword)
        if keyword in kw.REMOVED_KEYWORDS:
            self.report.error(
                line,
                kw.REMOVED_KEYWORDS[keyword],
                "rewrite the line as the message says",
                code="removed",
            )
            if keyword == "block":
                rules.block(self.report, line, proxy)
            return
        if keyword in ("no", "default") and line.word(1) == "option":
            option(self.report, line, proxy, line.words[2:], negate=keyword == "no")
            return
        if keyword in ("no", "default") and line.word(1) == "log":
            return
        if handler is not None:
            handler(self.report, line, proxy)
            return
        if keyword not in kw.PROXY_KEYWORDS:
            self.report.error(
                line,
                f"unknown keyword '{keyword}' in '{proxy.kind}' section",
                "check the spelling; lbguard knows the keywords of HAProxy 2.6, so a keyword "
                "of a newer version is reported too",
            )


def mode(report: Reporter, line: ConfigLine, proxy: ProxyState) -> None:
    value = line.word(1)
    if value not in ("http", "tcp", "log"):
        report.error(line, f"unknown proxy mode '{value}'.", "use 'mode http' or 'mode tcp'")
        return
    proxy.mode = Mode.HTTP if value == "http" else Mode.TCP


def balance(report: Reporter, line: ConfigLine, proxy: ProxyState) -> None:
    if not report.needs(line, proxy, "backend"):
        return
    try:
        parse_balance(proxy.balance, list(line.words[1:]), line.location, line.text)
    except BalanceError as error:
        report.error(
            line,
            f"balance {error}",
            "see the 'balance' keyword in the HAProxy manual for the algorithms and their options",
            code="balance",
        )


def hash_type(report: Reporter, line: ConfigLine, proxy: ProxyState) -> None:
    if not report.needs(line, proxy, "backend"):
        return
    try:
        parse_hash_type(proxy.balance, list(line.words[1:]))
    except BalanceError as error:
        report.error(
            line,
            str(error),
            "write 'hash-type map-based|consistent [sdbm|djb2|wt6|crc32] [avalanche]'",
            code="balance",
        )


def hash_balance_factor(report: Reporter, line: ConfigLine, proxy: ProxyState) -> None:
    try:
        parse_hash_balance_factor(proxy.balance, list(line.words[1:]))
    except BalanceError as error:
        report.error(
            line, str(error), "use 0 to turn it off, or a percentage above 100", code="balance"
        )


def option(
    report: Reporter,
    line: ConfigLine,
    proxy: ProxyState,
    words: tuple[str, ...] | None = None,
    negate: bool = False,
) -> None:
    args = words if words is not None else line.words[1:]
    name = args[0] if args else ""
    if name not in kw.OPTIONS:
        report.error(
            line, f"unknown option '{name}'.", "check the option name in the HAProxy manual"
        )
        return
    if name == "allbackups":
        proxy.all_backups = not negate
    if name in kw.HEALTH_CHECK_OPTIONS:
        proxy.health_check = not negate
    proxy.options.append(line.text)


def keep(report: Reporter, line: ConfigLine, proxy: ProxyState) -> None:
    proxy.options.append(line.text)


HANDLERS: dict[str, Handler] = {
    "mode": mode,
    "balance": balance,
    "hash-type": hash_type,
    "hash-balance-factor": hash_balance_factor,
    "option": option,
    "default-server": members.default_server,
    "server": members.server,
    "server-template": members.server,
    "bind": members.bind,
    "acl": rules.acl,
    "use_backend": rules.use_backend,
    "default_backend": rules.default_backend,
    "http-request": rules.http_request,
    "tcp-request": rules.tcp_request,
    "redirect": rules.redirect,
    "monitor-uri": rules.monitor_uri,
    "stats": rules.stats,
    "use-server": rules.use_server,
    "capture": members.capture,
    "stick": rules.persistence,
    "cookie": rules.persistence,
    "http-check": keep,
    "tcp-check": keep,
    "fullconn": keep,
}
"""Proxy keyword to the function that reads its line; other known keywords are accepted."""
