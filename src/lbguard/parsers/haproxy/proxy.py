"""State of one HAProxy proxy section (defaults, frontend, backend, listen) while it is read.

A proxy starts as a copy of the defaults section it inherits from (the last one read, or the
one named by ``from``), as ``parse_new_proxy()`` does in HAProxy 2.6 ``src/proxy.c``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from lbguard.model import Action, ActionKind, Bind, Location, Mode, Rule
from lbguard.parsers.haproxy.acl import AclLine, ParsedCondition
from lbguard.parsers.haproxy.balance import BalanceState
from lbguard.parsers.haproxy.servers import ServerLine, ServerSettings


@dataclass
class PendingRule:
    """A rule whose ACL names are resolved when its proxy ends."""

    action: Action
    condition: ParsedCondition | None
    location: Location
    text: str
    allow: bool = False
    """True for ``http-request allow``/``tcp-request content accept``: it ends the rule list
    for the requests it matches without answering them."""


@dataclass
class ProxyState:
    """Everything lbguard keeps of a proxy section while reading it."""

    kind: str
    """``defaults``, ``frontend``, ``backend`` or ``listen``."""

    name: str
    location: Location
    config_dir: Path
    mode: Mode | None = None
    balance: BalanceState = field(default_factory=BalanceState)
    default_server: ServerSettings = field(default_factory=ServerSettings)
    server_lines: list[ServerLine] = field(default_factory=list)
    acls: dict[str, list[AclLine]] = field(default_factory=dict)
    binds: list[Bind] = field(default_factory=list)
    accepts_http2: bool = False
    captured_request_headers: list[str] = field(default_factory=list)
    default_backend: str | None = None
    default_location: Location = field(default_factory=lambda: Location("", 0))
    monitor_rules: list[PendingRule] = field(default_factory=list)
    tcp_rules: list[PendingRule] = field(default_factory=list)
    http_rules: list[PendingRule] = field(default_factory=list)
    redirect_rules: list[PendingRule] = field(default_factory=list)
    stats_rules: list[PendingRule] = field(default_factory=list)
    switching_rules: list[PendingRule] = field(default_factory=list)
    inherited_rules: tuple[Rule, ...] = ()
    """Built ``http-request`` rules of the defaults section, which HAProxy 2.6 runs first."""

    options: list[str] = field(default_factory=list)
    all_backups: bool = False
    health_check: bool = False
    stats_enabled: bool = False
    stats_uri: str | None = None
    stats_location: Location | None = None

    @property
    def is_frontend(self) -> bool:
        return self.kind in ("frontend", "listen")

    @property
    def is_backend(self) -> bool:
        return self.kind in ("backend", "listen")

    @property
    def is_defaults(self) -> bool:
        return self.kind == "defaults"

    def known_acl(self, name: str) -> bool:
        return name in self.acls

    def inherit(self, defaults: ProxyState) -> None:
        """Copy the settings a new proxy takes from its defaults section."""
        self.mode = defaults.mode
        self.balance = defaults.balance.copy()
        self.default_server = defaults.default_server.copy()
        self.all_backups = defaults.all_backups
        self.health_check = defaults.health_check
        self.options = list(defaults.options)
        if self.is_frontend:
            self.default_backend = defaults.default_backend
            self.default_location = defaults.default_location
        self.inherited_rules = defaults.inherited_rules


STATS_ACTION = Action(ActionKind.RETURN, status=200, detail="statistics page")
"""What ``stats uri`` does to the requests it matches."""
