"""Check that a config only listens on and connects to 127.0.0.1 / ::1.

The lab must aim nothing at another host: a config that binds a wildcard address, names a
host (which the product would resolve through DNS) or logs to a remote syslog is rejected
before the product starts. The check covers the directives that open sockets in the
configs the lab runs; it is a guard for lab configs, not a full parser.
"""

from __future__ import annotations

import ipaddress
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import crossplane

from lbguard.lab.errors import LabError
from lbguard.model import Location

HAPROXY_ADDRESS_POSITION = {
    "bind": 1, "dgram-bind": 1, "log": 1,
    "server": 2, "peer": 2, "nameserver": 2, "mailer": 2,
    "server-template": 3,
}  # fmt: skip
"""HAProxy 2.6 keywords that open a socket, with the position of their address argument
(configuration.txt of HAProxy 2.6)."""

_HAPROXY_LOCAL_PREFIXES = (
    "unix@", "abns@", "fd@", "sockpair@", "ring@", "/", "stdout", "stderr",
)  # fmt: skip


@dataclass
class LoopbackReport:
    """Ports a config listens on, once every address in it was found to be loopback."""

    listen_ports: list[int] = field(default_factory=list)


def _is_loopback_host(host: str) -> bool:
    host = host.strip("[]")
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _split_host_port(address: str) -> tuple[str, str]:
    """Split ``host:port``, ``[v6]:port``, ``ipv4@host:port`` or a bare host."""
    for prefix in ("ipv4@", "ipv6@", "udp@", "udp4@", "udp6@", "tcp@", "tcp4@", "tcp6@"):
        if address.startswith(prefix):
            address = address[len(prefix) :]
            break
    if address.startswith("["):
        host, _, rest = address[1:].partition("]")
        return host, rest.lstrip(":")
    if address.count(":") > 1:
        return address, ""
    host, _, port = address.partition(":")
    return host, port


def check_haproxy(text: str, source: Path) -> LoopbackReport:
    """Reject any HAProxy socket address that is not loopback; return the bind ports."""
    report = LoopbackReport()
    section = ""
    for number, raw in enumerate(text.splitlines(), start=1):
        tokens = raw.split("#", 1)[0].split()
        if not tokens:
            continue
        if not raw[:1].isspace():
            section = tokens[0]
        keyword = tokens[0]
        position = HAPROXY_ADDRESS_POSITION.get(keyword, 0)
        if not position or len(tokens) <= position:
            continue
        if keyword == "log" and tokens[1] == "global":
            continue
        location = Location(str(source), number)
        for address in tokens[position].split(","):
            if address.startswith(_HAPROXY_LOCAL_PREFIXES):
                continue
            host, port = _split_host_port(address)
            if not _is_loopback_host(host):
                raise LabError(
                    f"{keyword} address {address!r} in section {section!r} is not loopback",
                    location=location,
                    hint="the lab runs products on 127.0.0.1 only: use 127.0.0.1:<port>",
                )
            if keyword == "bind" and port.isdigit():
                report.listen_ports.append(int(port))
    return report


def check_nginx(path: Path) -> LoopbackReport:
    """Reject an NGINX listen, upstream server or proxy_pass that is not loopback.

    A ``proxy_pass`` host must be a loopback address or the name of an ``upstream`` block
    of the same config; any other name would be resolved through DNS.
    """
    payload = crossplane.parse(str(path), combine=True, comments=False)
    if payload["errors"]:
        first = payload["errors"][0]
        raise LabError(
            f"invalid nginx config: {first['error']}",
            location=Location(str(first.get("file") or path), int(first.get("line") or 0)),
            hint="run nginx -t on the config for the full message",
        )

    directives: list[tuple[dict[str, Any], str]] = []
    upstreams: set[str] = set()

    def walk(block: list[dict[str, Any]], parent: str) -> None:
        for directive in block:
            directives.append((directive, parent))
            if directive["directive"] == "upstream" and directive["args"]:
                upstreams.add(directive["args"][0])
            walk(directive.get("block", []), directive["directive"])

    for config in payload["config"]:
        walk(config["parsed"], "main")

    report = LoopbackReport()
    for directive, parent in directives:
        name, args = directive["directive"], directive["args"]
        location = Location(str(path), int(directive["line"]))
        if name == "listen":
            report.listen_ports.append(_nginx_listen_port(args[0], location))
        elif name == "server" and parent == "upstream":
            _require_loopback(args[0], "upstream server", location)
        elif name in {"proxy_pass", "fastcgi_pass", "uwsgi_pass", "grpc_pass"}:
            target = re.sub(r"^[a-z]+://", "", args[0]).split("/", 1)[0]
            host, _ = _split_host_port(target)
            if host not in upstreams and "$" not in host:
                _require_loopback(target, name, location)
        elif name == "resolver":
            raise LabError(
                "resolver is not allowed in lab configs",
                location=location,
                hint="use upstream blocks with 127.0.0.1 servers",
            )
    return report


def _nginx_listen_port(address: str, location: Location) -> int:
    if address.startswith("unix:"):
        return 0
    _host, port = _split_host_port(address)
    if not port:
        raise LabError(
            f"listen {address!r} binds every interface",
            location=location,
            hint="write listen 127.0.0.1:<port>",
        )
    _require_loopback(address, "listen", location)
    return int(port)


def _require_loopback(address: str, directive: str, location: Location) -> None:
    if address.startswith("unix:"):
        return
    host, _ = _split_host_port(address)
    if not _is_loopback_host(host):
        raise LabError(
            f"{directive} address {address!r} is not loopback",
            location=location,
            hint="the lab runs products on 127.0.0.1 only: use 127.0.0.1:<port>",
        )
