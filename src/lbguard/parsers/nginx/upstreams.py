"""nginx ``upstream`` blocks and implicit one-address groups into `Pool` values.

Parameter names, defaults and error texts follow ``ngx_http_upstream_server`` and the
balancing modules' directive handlers in nginx 1.22.1 (src/http/ngx_http_upstream.c,
src/http/modules/ngx_http_upstream_*_module.c).
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace

from lbguard.model import (
    AdminState,
    Algorithm,
    Balance,
    Diagnostic,
    HashFunction,
    HashMethod,
    Location,
    Mode,
    Pool,
    Server,
    Severity,
)
from lbguard.parsers.nginx.files import Directive

DEFAULT_PORT = 80
"""Port nginx adds to a ``server`` address without one (``u.default_port = 80``)."""

DEFAULT_MAX_FAILS = 1
DEFAULT_FAIL_TIMEOUT = 10.0

BACKUP_CAPABLE = frozenset({Algorithm.ROUND_ROBIN, Algorithm.LEAST_CONN})
"""Methods whose module flags include NGX_HTTP_UPSTREAM_BACKUP; hash, ip_hash and random
lack it, so nginx rejects ``backup`` after those directives."""

PLUS_SERVER_PARAMETERS = ("slow_start=", "route=", "service=", "drain", "resolve")
"""``server`` parameters of NGINX Plus (``resolve`` is also open source since 1.27.3)."""

_TIME_UNITS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0, "w": 604800.0}
_TIME_PART = re.compile(r"(\d+)(ms|s|m|h|d|w|M|y)?")


def parse_seconds(text: str) -> float | None:
    """Parse an nginx time such as ``10s``, ``1m30s`` or ``30`` into seconds."""
    total = 0.0
    position = 0
    for match in _TIME_PART.finditer(text):
        if match.start() != position:
            return None
        unit = match.group(2) or "s"
        scale = {"M": 2592000.0, "y": 31536000.0}.get(unit) or _TIME_UNITS[unit]
        total += int(match.group(1)) * scale
        position = match.end()
    if position != len(text) or not text:
        return None
    return total


def split_address(text: str) -> tuple[str, int | None]:
    """Split ``host:port``, ``[v6]:port``, ``host`` or ``unix:/path`` into host and port."""
    if text.startswith("unix:"):
        return text, None
    if text.startswith("["):
        host, _, rest = text[1:].partition("]")
        port = rest[1:] if rest.startswith(":") else ""
        return host, int(port) if port.isdigit() else None
    if text.count(":") == 1:
        host, _, port = text.partition(":")
        if port.isdigit():
            return host, int(port)
    return text, None


def is_ip_address(host: str) -> bool:
    try:
        ipaddress.ip_address(host)
    except ValueError:
        return False
    return True


@dataclass
class PoolBuilder:
    """Collects the pools of one configuration and the diagnostics found on the way."""

    resolve: Mapping[str, Sequence[str]]
    mode: Mode = Mode.HTTP
    pools: list[Pool] = field(default_factory=list)
    diagnostics: list[Diagnostic] = field(default_factory=list)
    implicit: dict[str, str] = field(default_factory=dict)
    """Implicit pool name by lower-case ``host:port``."""

    def report(
        self, severity: Severity, message: str, location: Location, hint: str = "", code: str = ""
    ) -> None:
        self.diagnostics.append(Diagnostic(severity, message, location, hint, code))

    def find(self, host: str) -> Pool | None:
        """Return the ``upstream`` named ``host``; nginx compares the names case-insensitively."""
        for pool in self.pools:
            if pool.name.lower() == host.lower() and pool.name not in self.implicit.values():
                return pool
        return None

    def add_upstream(self, block: Directive) -> Pool | None:
        if len(block.args) != 1:
            self.report(
                Severity.ERROR,
                'invalid number of arguments in "upstream" directive',
                block.location,
                code="syntax",
            )
            return None
        name = block.args[0]
        existing = self.find(name)
        if existing is not None:
            self.report(
                Severity.ERROR,
                f'duplicate upstream "{name}"',
                block.location,
                hint=f"rename one of the two; the first is at {existing.location}",
                code="duplicate",
            )
            return None
        pool = _build_upstream(block, self.mode, self.resolve, self.diagnostics)
        self.pools.append(pool)
        return pool

    def add_implicit(self, address: str, location: Location, text: str) -> str:
        """Return the name of the one-address pool behind ``proxy_pass http://address``."""
        key = address.lower()
        if key in self.implicit:
            return self.implicit[key]
        host, port = split_address(address)
        server = _make_server(
            address, host, port or DEFAULT_PORT, location, text, self.resolve, self.diagnostics
        )
        name = address
        if any(pool.name == name for pool in self.pools):
            name = f"{address} (implicit)"
        pool = Pool(
            name=name,
            mode=self.mode,
            balance=Balance(Algorithm.ROUND_ROBIN, location=location, explicit=False),
            servers=(server,),
            location=location,
            shared_state=False,
            options=("implicit",),
        )
        self.implicit[key] = name
        self.pools.append(pool)
        return name


def _build_upstream(
    block: Directive,
    mode: Mode,
    resolve: Mapping[str, Sequence[str]],
    diagnostics: list[Diagnostic],
) -> Pool:
    balance = Balance(Algorithm.ROUND_ROBIN, location=block.location, explicit=False)
    servers: list[Server] = []
    options: list[str] = []
    shared_state = False
    names: dict[str, int] = {}

    for directive in block.block or ():
        if directive.name == "server":
            server = _parse_server(directive, balance, resolve, diagnostics)
            if server is None:
                continue
            count = names.get(server.name, 0) + 1
            names[server.name] = count
            if count > 1:
                # Two identical lines are two peers in nginx; keep both under distinct names.
                server = _renamed(server, f"{server.name}#{count}")
            servers.append(server)
        elif directive.name in ("ip_hash", "hash", "least_conn", "random", "least_time"):
            if balance.explicit:
                diagnostics.append(
                    Diagnostic(
                        Severity.WARNING,
                        "load balancing method redefined",
                        directive.location,
                        hint=f"keep one method; the earlier one is at {balance.location}",
                        code="redefined",
                    )
                )
            balance = _parse_method(directive, diagnostics) or balance
        elif directive.name == "zone":
            shared_state = True
            options.append(directive.text)
        else:
            options.append(directive.text)
            if directive.name == "balancer_by_lua_block":
                diagnostics.append(
                    Diagnostic(
                        Severity.WARNING,
                        f'upstream "{block.args[0]}" picks its peer in Lua '
                        "(balancer_by_lua_block); the servers listed are placeholders",
                        directive.location,
                        hint="shares of this upstream cannot be predicted from the config",
                        code="unevaluated",
                    )
                )

    if balance.algorithm not in BACKUP_CAPABLE:
        for server in servers:
            if server.backup:
                diagnostics.append(
                    Diagnostic(
                        Severity.WARNING,
                        f"backup server {server.name} in a {balance.algorithm} upstream is "
                        "used only by the round-robin fallback when every primary is down",
                        server.location,
                        hint="nginx rejects this order of lines when the method comes "
                        "first; remove backup or use round robin or least_conn",
                        code="backup-with-hash",
                    )
                )
    if not servers:
        diagnostics.append(
            Diagnostic(
                Severity.WARNING if options else Severity.ERROR,
                f'no servers are inside upstream "{block.args[0]}"',
                block.location,
                hint="servers added at run time (API, state file) are not in the config; "
                "shares cannot be predicted",
                code="empty-upstream",
            )
        )
    return Pool(
        name=block.args[0],
        mode=mode,
        balance=balance,
        servers=tuple(servers),
        location=block.location,
        shared_state=shared_state,
        options=tuple(options),
    )


def _renamed(server: Server, name: str) -> Server:
    return replace(server, name=name)


def _parse_method(directive: Directive, diagnostics: list[Diagnostic]) -> Balance | None:
    args = directive.args
    location = directive.location
    if directive.name == "ip_hash":
        return Balance(Algorithm.IP_HASH, location=location, text=directive.text)
    if directive.name == "least_conn":
        return Balance(Algorithm.LEAST_CONN, location=location, text=directive.text)
    if directive.name == "least_time":
        diagnostics.append(
            Diagnostic(
                Severity.INFO,
                "least_time is an NGINX Plus method; modelled like least_conn",
                location,
                code="plus",
            )
        )
        return Balance(Algorithm.LEAST_CONN, location=location, text=directive.text)
    if directive.name == "hash":
        if not args or len(args) > 2 or (len(args) == 2 and args[1] != "consistent"):
            diagnostics.append(
                Diagnostic(
                    Severity.ERROR,
                    f'invalid parameter "{args[-1] if args else ""}"',
                    location,
                    hint="write hash KEY [consistent];",
                    code="syntax",
                )
            )
            return None
        method = HashMethod.CONSISTENT if len(args) == 2 else HashMethod.MAP_BASED
        return Balance(
            Algorithm.HASH,
            location=location,
            key=args[0],
            hash_method=method,
            hash_function=HashFunction.CRC32,
            text=directive.text,
        )
    # random [two [least_conn | least_time=header|last_byte]]
    draws = 1
    if args:
        if args[0] != "two" or len(args) > 2:
            diagnostics.append(
                Diagnostic(
                    Severity.ERROR,
                    f'invalid parameter "{args[0]}"',
                    location,
                    hint="write random; or random two [least_conn];",
                    code="syntax",
                )
            )
            return None
        draws = 2
    return Balance(Algorithm.RANDOM, location=location, draws=draws, text=directive.text)


def _parse_server(
    directive: Directive,
    balance: Balance,
    resolve: Mapping[str, Sequence[str]],
    diagnostics: list[Diagnostic],
) -> Server | None:
    location = directive.location
    if not directive.args:
        diagnostics.append(
            Diagnostic(
                Severity.ERROR,
                'invalid number of arguments in "server" directive',
                location,
                code="syntax",
            )
        )
        return None

    def invalid(value: str, reason: str = "invalid parameter") -> None:
        diagnostics.append(
            Diagnostic(
                Severity.ERROR,
                f'{reason} "{value}"',
                location,
                hint="nginx -t rejects this line; the value was ignored here",
                code="syntax",
            )
        )

    weight = 1
    max_conns: int | None = None
    max_fails = DEFAULT_MAX_FAILS
    fail_timeout = DEFAULT_FAIL_TIMEOUT
    backup = False
    down = False
    for value in directive.args[1:]:
        key, eq, number = value.partition("=")
        if key in ("weight", "max_conns", "max_fails") and eq:
            parsed = int(number) if number.isdigit() else None
            if parsed is None or (key == "weight" and parsed == 0):
                invalid(value)
            elif key == "weight":
                weight = parsed
            elif key == "max_conns":
                max_conns = parsed or None
            else:
                max_fails = parsed
        elif key == "fail_timeout" and eq:
            seconds = parse_seconds(number)
            if seconds is None:
                invalid(value)
            else:
                fail_timeout = seconds
        elif value == "backup":
            if balance.explicit and balance.algorithm not in BACKUP_CAPABLE:
                invalid(value, "balancing method does not support parameter")
            backup = True
        elif value == "down":
            down = True
        elif value.startswith(PLUS_SERVER_PARAMETERS):
            diagnostics.append(
                Diagnostic(
                    Severity.INFO,
                    f'"{value}" is an NGINX Plus server parameter; it does not change the '
                    "predicted shares",
                    location,
                    code="plus",
                )
            )
        else:
            invalid(value)

    address = directive.args[0]
    host, port = split_address(address)
    server = _make_server(
        address, host, port or DEFAULT_PORT, location, directive.text, resolve, diagnostics
    )
    return replace(
        server,
        weight=weight,
        backup=backup,
        state=AdminState.DISABLED if down else AdminState.ENABLED,
        maxconn=max_conns,
        max_fails=max_fails,
        fail_timeout=fail_timeout,
    )


def _make_server(  # noqa: PLR0917
    name: str,
    host: str,
    port: int | None,
    location: Location,
    text: str,
    resolve: Mapping[str, Sequence[str]],
    diagnostics: list[Diagnostic],
) -> Server:
    resolved: tuple[str, ...] = ()
    if host.startswith("unix:"):
        port = None
    elif not is_ip_address(host):
        addresses = resolve.get(host) or resolve.get(host.lower())
        if addresses:
            resolved = tuple(addresses)
        else:
            diagnostics.append(
                Diagnostic(
                    Severity.INFO,
                    f'host name "{host}" was not resolved; counted as one address',
                    location,
                    hint="nginx resolves it at start-up and makes one peer per address; "
                    f"pass --resolve {host}=IP[,IP] to model that",
                    code="unresolved",
                )
            )
    return Server(
        name=name,
        address=host,
        port=port,
        location=location,
        resolved=resolved,
        text=text,
    )
