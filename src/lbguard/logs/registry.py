"""The explicit table of log formats, in detection tie-break order."""

from __future__ import annotations

from lbguard.errors import LogError
from lbguard.logs import aws, haproxy, nginx, proxies
from lbguard.logs.interface import LogFormat


def formats() -> tuple[LogFormat, ...]:
    """Return every format; on equal detection scores the earlier one wins."""
    return (
        haproxy.FORMAT,
        nginx.FORMAT,
        aws.ALB,
        aws.CLB,
        aws.NLB,
        proxies.ENVOY,
        proxies.TRAEFIK_CLF,
        proxies.TRAEFIK_JSON,
        proxies.CADDY,
        proxies.JSON_LINES,
    )


ALIASES = {
    "haproxy-http": "haproxy",
    "haproxy-tcp": "haproxy",
    "nginx-combined": "nginx",
    "ingress-nginx": "nginx",
}
"""Other accepted ``--log-format`` values (the ``lb`` names of multi-kind formats)."""


def find(name: str) -> LogFormat:
    """Return the format called ``name`` (or one of its aliases)."""
    wanted = ALIASES.get(name, name)
    for log_format in formats():
        if log_format.name == wanted:
            return log_format
    choices = ", ".join(log_format.name for log_format in formats())
    raise LogError(f"unknown log format {name!r}", hint=f"use one of: {choices}")
