"""The nginx ``stream`` module: TCP and UDP servers that proxy to stream upstreams."""

from __future__ import annotations

from lbguard.model import Action, ActionKind, Bind, Diagnostic, Frontend, Mode, Rule, Severity
from lbguard.parsers.nginx.files import Directive
from lbguard.parsers.nginx.servers import parse_listen
from lbguard.parsers.nginx.upstreams import PoolBuilder, split_address
from lbguard.parsers.nginx.variables import has_variables


def build_stream(
    stream: list[Directive], pools: PoolBuilder, diagnostics: list[Diagnostic]
) -> list[Frontend]:
    for block in stream:
        for directive in block.children("upstream"):
            pools.add_upstream(directive)
    frontends: list[Frontend] = []
    for block in stream:
        for server in block.children("server"):
            frontends.extend(_stream_server(server, pools, diagnostics))
    return frontends


def _stream_server(
    server: Directive, pools: PoolBuilder, diagnostics: list[Diagnostic]
) -> list[Frontend]:
    proxy_pass = server.first("proxy_pass")
    rules: tuple[Rule, ...] = ()
    if proxy_pass is not None and proxy_pass.args:
        target = proxy_pass.args[0]
        if has_variables(target):
            diagnostics.append(
                Diagnostic(
                    Severity.INFO,
                    f"stream proxy_pass target {target} is computed per connection",
                    proxy_pass.location,
                    hint="its traffic is reported as unevaluated",
                    code="unevaluated",
                )
            )
            action = Action(ActionKind.DYNAMIC, pool=target, detail=proxy_pass.text)
        else:
            host, port = split_address(target)
            pool = pools.find(host)
            name = (
                pool.name
                if pool is not None and port is None
                else pools.add_implicit(target, proxy_pass.location, proxy_pass.text)
            )
            action = Action(ActionKind.ROUTE, pool=name)
        rules = (Rule(None, action, proxy_pass.location, proxy_pass.text),)
    else:
        diagnostics.append(
            Diagnostic(
                Severity.INFO,
                "stream server without proxy_pass",
                server.location,
                code="no-proxy",
            )
        )
    frontends = []
    for listen_directive in server.children("listen"):
        listen = parse_listen(listen_directive)
        protocol = "udp" if "udp" in listen.options else "tcp"
        frontends.append(
            Frontend(
                name=f"{protocol}/{listen.key}",
                mode=Mode.TCP,
                binds=(Bind(listen.address, listen.port, listen.location, listen.options),),
                rules=rules,
                default_pool=None,
                location=server.location,
            )
        )
    return frontends
