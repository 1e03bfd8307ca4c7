"""Small questions about pools that several rules ask."""

from __future__ import annotations

from lbguard.model import ActionKind, AdminState, Algorithm, Frontend, Pool, Server


def active_servers(pool: Pool) -> list[Server]:
    """Return the non-backup servers that are not disabled and have a weight."""
    return [
        server
        for server in pool.servers
        if not server.backup and server.state is AdminState.ENABLED and server.weight > 0
    ]


def method_text(pool: Pool) -> str:
    """Return the pool's balancing line as written, or the algorithm's name."""
    balance = pool.balance
    if balance.text:
        return f"`{balance.text}`"
    return f"balance {balance.algorithm}"


def frontend_targets(frontend: Frontend) -> set[str]:
    """Return the pools a frontend names in its routing rules and its default."""
    targets = {frontend.default_pool} if frontend.default_pool else set()
    for rule in frontend.rules:
        if rule.action.kind is ActionKind.ROUTE and rule.action.pool:
            targets.add(rule.action.pool)
    return targets


def first_unlimited_server(pool: Pool) -> Server | None:
    """Return the server of a `balance first` pool that takes every request: the first
    active server, by id, without a maxconn. None for other algorithms, for a pool with
    fewer than two active servers, or when every active server has a maxconn."""
    if pool.balance.algorithm is not Algorithm.FIRST:
        return None
    servers = active_servers(pool)
    if len(servers) < 2:
        return None
    # `balance first` fills servers by ascending id; the first one without a limit
    # never fills, so the servers after it receive nothing.
    ordered = sorted(servers, key=lambda server: server.id or 0)
    return next((server for server in ordered if server.maxconn is None), None)
