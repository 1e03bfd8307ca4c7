"""Diagnostics in ``haproxy -c`` wording, collected while a configuration is read."""

from __future__ import annotations

from dataclasses import dataclass, field

from lbguard.model import Diagnostic, Severity
from lbguard.parsers.haproxy.lexer import ConfigLine
from lbguard.parsers.haproxy.proxy import ProxyState


@dataclass
class Reporter:
    """Collects the diagnostics of one parse."""

    diagnostics: list[Diagnostic] = field(default_factory=list)

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

    def needs(self, line: ConfigLine, proxy: ProxyState, capability: str) -> bool:
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

    def server_error(self, line: ConfigLine, proxy: ProxyState, name: str, message: str) -> None:
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
