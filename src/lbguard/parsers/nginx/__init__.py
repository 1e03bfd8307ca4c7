"""NGINX configuration parser: crossplane in, `lbguard.model.LoadBalancer` out.

``parse_nginx("nginx.conf")`` reads the main file and its includes, turns ``upstream``
blocks into pools, every listen socket into a frontend whose ordered rules reproduce
nginx's server-name and location selection, and reports every problem as a diagnostic
with file:line while the rest is still analysed.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping, Sequence
from dataclasses import replace
from pathlib import Path

from lbguard.model import Diagnostic, Frontend, LoadBalancer, Location, Mode, Pool, Product
from lbguard.parsers.nginx.files import ConfigFiles, Directive, read_config
from lbguard.parsers.nginx.handlers import HandlerContext
from lbguard.parsers.nginx.servers import ServerBlock, build_frontends, build_server
from lbguard.parsers.nginx.stream import build_stream
from lbguard.parsers.nginx.upstreams import PoolBuilder
from lbguard.parsers.nginx.variables import MapBlock, parse_map

__all__ = ["parse_nginx"]

logger = logging.getLogger(__name__)

SETTINGS = ("worker_processes", "set_real_ip_from", "real_ip_header", "real_ip_recursive")
"""Directives whose values checks read (worker count, realip configuration)."""

REALIP = ("set_real_ip_from", "real_ip_header", "real_ip_recursive")
"""realip directives the nginx prediction applies to HTTP pools' client addresses."""


def parse_nginx(
    paths: str | Path | Sequence[str | Path],
    *,
    prefix_map: Mapping[str, str] | None = None,
    resolve: Mapping[str, Sequence[str]] | None = None,
) -> LoadBalancer:
    """Parse nginx configuration files into the normalized model.

    ``paths`` is the main ``nginx.conf`` (or several main files, read one after the
    other). ``prefix_map`` maps an absolute include prefix such as ``/etc/nginx/`` to a
    local folder. An absolute include outside the main file's folder that no prefix maps
    is skipped with an info diagnostic, so that this machine's ``/etc/nginx`` never mixes
    into the configuration; mapping a prefix onto itself reads it on purpose. ``resolve``
    maps host names in ``server`` and ``proxy_pass`` lines to their addresses; host names
    are never looked up on the network.
    """
    if isinstance(paths, (str, Path)):
        paths = [paths]
    resolve = resolve or {}
    files: list[str] = []
    diagnostics: list[Diagnostic] = []
    http: list[Directive] = []
    stream: list[Directive] = []
    settings: list[tuple[str, str]] = []
    for item in paths:
        path = str(item)
        config = read_config(path, prefix_map)
        files.extend(name for name in config.files if name not in files)
        diagnostics.extend(config.diagnostics)
        top = _top_level(config, path)
        http.extend(d for d in top if d.name == "http")
        stream.extend(d for d in top if d.name == "stream")
        settings.extend(_settings(top))

    http_pools = PoolBuilder(resolve, Mode.HTTP)
    frontends: list[Frontend] = []
    http_settings: list[tuple[str, str]] = []
    for block in http:
        http_settings.extend(_settings(block.block or ()))
    settings.extend(http_settings)
    base = os.path.dirname(os.path.abspath(paths[0])) if paths else ""
    frontends.extend(_build_http(http, http_pools, diagnostics, base))
    stream_pools = PoolBuilder(resolve, Mode.TCP)
    frontends.extend(build_stream(stream, stream_pools, diagnostics))
    diagnostics.extend(http_pools.diagnostics)
    diagnostics.extend(stream_pools.diagnostics)

    pools = _with_realip(http_pools.pools, http_settings)
    frontends = _merge_stream_pools(pools, stream_pools.pools, frontends)
    logger.info(
        "read %d nginx files: %d pools, %d frontends", len(files), len(pools), len(frontends)
    )
    return LoadBalancer(
        product=Product.NGINX,
        frontends=tuple(frontends),
        pools=tuple(pools),
        files=tuple(files),
        diagnostics=tuple(sorted(diagnostics, key=lambda d: (d.location.file, d.location.line))),
        settings=tuple(settings),
    )


def _with_realip(pools: Sequence[Pool], settings: Sequence[tuple[str, str]]) -> list[Pool]:
    """Add the http block's realip directives to each HTTP pool's options: nginx 1.22
    (ngx_http_realip_module) replaces the client address that ip_hash and $remote_addr
    read before the request reaches the upstream."""
    realip = tuple(f"{name} {value}" for name, value in settings if name in REALIP)
    if not realip:
        return list(pools)
    return [replace(pool, options=pool.options + realip) for pool in pools]


def _top_level(config: ConfigFiles, path: str) -> tuple[Directive, ...]:
    if not config.fragment:
        return config.directives
    return (Directive("http", (), Location(path, 0), config.directives),)


def _settings(block: Sequence[Directive]) -> list[tuple[str, str]]:
    return [(d.name, " ".join(d.args)) for d in block if d.name in SETTINGS]


def _build_http(
    http: list[Directive], pools: PoolBuilder, diagnostics: list[Diagnostic], base: str
) -> list[Frontend]:
    # Upstream names resolve after the whole http block is read, so an upstream defined
    # below the server that uses it is still found (ngx_http_upstream_add).
    maps: dict[str, MapBlock] = {}
    for block in http:
        for directive in block.block or ():
            if directive.name == "upstream":
                pools.add_upstream(directive)
            elif directive.name == "map":
                parsed = parse_map(directive)
                if parsed is not None:
                    maps[parsed.variable] = parsed
    ctx = HandlerContext(pools=pools, maps=maps, diagnostics=diagnostics, base=base)
    servers: list[ServerBlock] = []
    for block in http:
        for directive in block.children("server"):
            servers.append(build_server(directive, len(servers), ctx, diagnostics))
    return build_frontends(servers, Mode.HTTP, diagnostics)


def _merge_stream_pools(
    pools: list[Pool], stream_pools: list[Pool], frontends: list[Frontend]
) -> list[Frontend]:
    """Add stream pools, renaming one that shares an http upstream's name."""
    taken = {pool.name for pool in pools}
    renames: dict[str, str] = {}
    for pool in stream_pools:
        name = pool.name
        if name in taken:
            name = f"stream:{pool.name}"
            renames[pool.name] = name
        pools.append(replace(pool, name=name))
        taken.add(name)
    if not renames:
        return frontends
    out = []
    for frontend in frontends:
        if frontend.mode != Mode.TCP:
            out.append(frontend)
            continue
        rules = tuple(
            replace(
                rule,
                action=replace(
                    rule.action, pool=renames.get(rule.action.pool or "", rule.action.pool)
                ),
            )
            for rule in frontend.rules
        )
        out.append(replace(frontend, rules=rules))
    return out
