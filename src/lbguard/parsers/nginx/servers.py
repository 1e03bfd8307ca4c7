"""nginx ``server`` blocks into one `Frontend` per listen socket.

Virtual-server selection follows nginx's documented order (server_names.html, and
ngx_http_find_virtual_server in nginx 1.22.1): exact name, longest wildcard starting
with ``*`` (or ``.x``), longest wildcard ending with ``*``, first matching regex in
config order, then the socket's ``default_server``, which is the first server block
listening on it unless one says ``default_server``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from lbguard.model import (
    AllOf,
    AnyOf,
    Bind,
    Condition,
    Diagnostic,
    Frontend,
    Location,
    Matcher,
    MatchMethod,
    Mode,
    Rule,
    Severity,
    Unevaluated,
)
from lbguard.parsers.nginx.files import Directive
from lbguard.parsers.nginx.handlers import (
    HandlerContext,
    access_and_content,
    compute_outcomes,
    rewrite_outcomes,
)
from lbguard.parsers.nginx.locations import (
    CompiledRule,
    LocationBlock,
    Outcome,
    compile_locations,
    compile_python_regex,
    split_location_args,
)
from lbguard.parsers.nginx.regex import pcre_to_python
from lbguard.parsers.nginx.variables import wildcard_regex

DEFAULT_LISTEN = ("*", 80)
"""Socket of a server block without ``listen`` when nginx runs as root (1.22 docs)."""


@dataclass(frozen=True)
class Listen:
    address: str
    port: int | None
    default_server: bool
    options: tuple[str, ...]
    location: Location

    @property
    def key(self) -> str:
        if self.port is None:
            return self.address
        return f"{self.address}:{self.port}"


def parse_listen(directive: Directive) -> Listen:
    spec = directive.args[0] if directive.args else "80"
    options = directive.args[1:]
    default = "default_server" in options or "default" in options
    if spec.startswith("unix:"):
        return Listen(spec, None, default, options, directive.location)
    if spec.startswith("["):
        host, _, rest = spec.partition("]")
        port = int(rest[1:]) if rest[1:].isdigit() else 80
        return Listen(host + "]", port, default, options, directive.location)
    if spec.isdigit():
        return Listen("*", int(spec), default, options, directive.location)
    host, _, port_text = spec.rpartition(":")
    if not host:
        return Listen(spec, 80, default, options, directive.location)
    if host == "0.0.0.0":
        host = "*"
    return Listen(
        host, int(port_text) if port_text.isdigit() else 80, default, options, directive.location
    )


@dataclass
class ServerBlock:
    directive: Directive
    listens: list[Listen]
    names: list[tuple[str, Location]]
    rules: list[CompiledRule]
    index: int

    @property
    def label(self) -> str:
        shown = " ".join(name for name, _ in self.names if name) or '""'
        return f"server {shown}"


def build_locations(
    block: Directive, ctx: HandlerContext, diagnostics: list[Diagnostic]
) -> tuple[list[LocationBlock], dict[str, LocationBlock]]:
    """Return the location tree of a server or location block and its named locations."""
    level: list[LocationBlock] = []
    named: dict[str, LocationBlock] = {}
    seen: dict[tuple[str, str], Location] = {}
    for directive in block.children("location"):
        parsed = split_location_args(directive.args)
        if parsed is None:
            continue
        modifier, name = parsed
        location_block = LocationBlock(modifier, name, directive)
        key = ("=" if modifier == "=" else "~" if modifier in ("~", "~*") else "", name)
        if modifier not in ("~", "~*") and key in seen:
            diagnostics.append(
                Diagnostic(
                    Severity.ERROR,
                    f'duplicate location "{name}"',
                    directive.location,
                    hint=f"merge it with the location at {seen[key]}",
                    code="duplicate",
                )
            )
            continue
        seen[key] = directive.location
        if modifier == "@":
            named[name] = location_block
            continue
        if location_block.is_regex:
            compiled = compile_python_regex(location_block)
            if isinstance(compiled, re.error):
                diagnostics.append(
                    Diagnostic(
                        Severity.WARNING,
                        f"location regex {name!r} is not valid in Python: {compiled}",
                        directive.location,
                        hint="requests this location would take are not predicted",
                        code="unevaluated",
                    )
                )
            else:
                location_block.python_regex = compiled
        nested, nested_named = build_locations(directive, ctx, diagnostics)
        location_block.nested = nested
        named.update(nested_named)
        level.append(location_block)
    return level, named


def _assign_outcomes(level: list[LocationBlock], ctx: HandlerContext) -> None:
    for block in level:
        block.outcomes = _outcomes_of(block, ctx, 0)
        _assign_outcomes(block.nested, ctx)


def _outcomes_of(block: LocationBlock, ctx: HandlerContext, depth: int) -> list[Outcome]:
    outcomes = compute_outcomes(block.directive, ctx, depth)
    return [
        Outcome(o.condition, o.action, f"{block.label}: {o.text}", o.location) for o in outcomes
    ]


def build_server(
    directive: Directive, index: int, ctx: HandlerContext, diagnostics: list[Diagnostic]
) -> ServerBlock:
    listens = [parse_listen(d) for d in directive.children("listen")]
    if not listens:
        listens = [Listen(*DEFAULT_LISTEN, False, (), directive.location)]
    names: list[tuple[str, Location]] = []
    for name_directive in directive.children("server_name"):
        names.extend((name, name_directive.location) for name in name_directive.args)
    if not names:
        names = [("", directive.location)]

    level, named = build_locations(directive, ctx, diagnostics)
    ctx.locations = level
    ctx.named = named
    ctx.outcomes_of = lambda block, depth: _outcomes_of(block, ctx, depth)
    _assign_outcomes(level, ctx)
    for block in named.values():
        block.outcomes = _outcomes_of(block, ctx, 0)

    # Server-level rewrite directives run before the location search (server rewrite
    # phase), so their conditional outcomes come first and a server-level return ends it.
    early, terminated = rewrite_outcomes(directive, ctx)
    label = f"server at {ctx.display_location(directive.location)}"
    rules = [CompiledRule(o.condition, o.action, f"{label}: {o.text}", o.location) for o in early]
    if not terminated:
        # What the server does when no location matches; nginx's static-file default
        # comes out marked implicit.
        fallback = [
            Outcome(o.condition, o.action, f"{label}: {_fallback_text(o)}", o.location, o.implicit)
            for o in access_and_content(directive, ctx, 0)
        ]
        rules += compile_locations(level, fallback)
    return ServerBlock(directive, listens, names, rules, index)


def _fallback_text(outcome: Outcome) -> str:
    return "no location matches" if outcome.implicit else outcome.text


# --------------------------------------------------------------------------------------
# Server names


def host_condition(name: str, location: Location) -> Condition:
    """Condition that the Host header selects ``server_name name``."""
    text = f"server_name {name}"
    if name.startswith("~"):
        try:
            pattern = pcre_to_python(name[1:])
        except re.error as exc:
            return Unevaluated(text, f"regex not valid in Python: {exc}", location)
        return Matcher("host", None, MatchMethod.REG, (pattern,), True, location, text)
    if name.startswith(("*.", ".")) or name.endswith(".*"):
        return Matcher(
            "host", None, MatchMethod.REG, (wildcard_regex(name.lower()),), True, location, text
        )
    # nginx lower-cases the Host header, drops a trailing dot and the port before lookup.
    pattern = "^" + re.escape(name.lower()) + r"\.?(?::\d+)?$" if name else "^$"
    return Matcher("host", None, MatchMethod.REG, (pattern,), True, location, text)


def _tier(name: str) -> int:
    if name.startswith("~"):
        return 3
    if name.startswith(("*.", ".")):
        return 1
    if name.endswith(".*"):
        return 2
    return 0


@dataclass
class Socket:
    listen: Listen
    servers: list[ServerBlock] = field(default_factory=list)
    default: ServerBlock | None = None


def build_frontends(
    servers: list[ServerBlock], mode: Mode, diagnostics: list[Diagnostic]
) -> list[Frontend]:
    sockets: dict[str, Socket] = {}
    for server in servers:
        for listen in server.listens:
            socket = sockets.setdefault(listen.key, Socket(listen))
            if server in socket.servers:
                continue
            socket.servers.append(server)
            if listen.default_server:
                if socket.default is not None and socket.default is not server:
                    diagnostics.append(
                        Diagnostic(
                            Severity.ERROR,
                            f"a duplicate default server for {listen.key}",
                            listen.location,
                            hint=f"keep one default_server; the other is at "
                            f"{socket.default.directive.location}",
                            code="duplicate",
                        )
                    )
                else:
                    socket.default = server
    return [_frontend(socket, mode, diagnostics) for socket in sockets.values()]


def _frontend(socket: Socket, mode: Mode, diagnostics: list[Diagnostic]) -> Frontend:
    default = socket.default or socket.servers[0]
    entries: list[tuple[int, int, int, ServerBlock, str, Location]] = []
    seen: dict[str, ServerBlock] = {}
    for order, server in enumerate(socket.servers):
        for name, location in server.names:
            key = name.lower() if not name.startswith("~") else name
            if key.startswith("."):
                key = "*" + key
            if key in seen and seen[key] is not server:
                diagnostics.append(
                    Diagnostic(
                        Severity.WARNING,
                        f'conflicting server name "{name}" on {socket.listen.key}, ignored',
                        location,
                        hint=f"the first definition at {seen[key].directive.location} wins",
                        code="conflicting-name",
                    )
                )
                continue
            seen[key] = server
            tier = _tier(name)
            length = -len(name.lstrip("*.")) if tier in (1, 2) else 0
            entries.append((tier, length, order, server, name, location))
    entries.sort(key=lambda entry: entry[:3])

    groups: list[tuple[ServerBlock, list[Condition]]] = []
    for _, _, _, server, name, location in entries:
        condition = host_condition(name, location)
        if groups and groups[-1][0] is server:
            groups[-1][1].append(condition)
        else:
            groups.append((server, [condition]))

    # Names of the default server that no other server's name outranks add nothing: the
    # default server receives those requests anyway.
    while groups and groups[-1][0] is default:
        groups.pop()
    rules: list[Rule] = []
    for server, conditions in groups:
        host = conditions[0] if len(conditions) == 1 else AnyOf(tuple(conditions))
        rules.extend(_server_rules(server, host, socket.servers))
    rules.extend(_server_rules(default, None, socket.servers))

    listen = socket.listen
    binds = tuple(
        Bind(
            server_listen.address,
            server_listen.port,
            server_listen.location,
            server_listen.options,
        )
        for server in socket.servers
        for server_listen in server.listens
        if server_listen.key == listen.key
    )
    http2 = any("http2" in bind.options for bind in binds) or any(
        d.args == ("on",) for s in socket.servers for d in s.directive.children("http2")
    )
    name = listen.key if mode == Mode.HTTP else _stream_name(listen)
    return Frontend(
        name=name,
        mode=mode,
        binds=binds,
        rules=tuple(rules),
        default_pool=None,
        location=default.directive.location,
        accepts_http2=http2,
    )


def _stream_name(listen: Listen) -> str:
    protocol = "udp" if "udp" in listen.options else "tcp"
    return f"{protocol}/{listen.key}"


def _server_rules(
    server: ServerBlock, host: Condition | None, all_servers: list[ServerBlock]
) -> list[Rule]:
    out = []
    prefix = server.label if len(all_servers) > 1 else ""
    for rule in server.rules:
        terms = [term for term in (host, rule.condition) if term is not None]
        condition: Condition | None = None
        if len(terms) == 1:
            condition = terms[0]
        elif terms:
            condition = AllOf(tuple(terms))
        text = f"{prefix}: {rule.text}" if prefix else rule.text
        out.append(Rule(condition, rule.action, rule.location, text, rule.implicit))
    return out
