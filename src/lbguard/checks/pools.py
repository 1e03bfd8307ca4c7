"""Small questions about pools that several rules ask."""

from __future__ import annotations

from lbguard.model import ActionKind, AdminState, Frontend, Pool, Server


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
