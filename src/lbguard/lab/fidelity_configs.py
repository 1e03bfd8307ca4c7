"""Product-side helpers of the fidelity lab: configs for the matrix rows, free ports
and HAProxy server states from its stats socket."""

from __future__ import annotations

import socket
from collections.abc import Sequence
from pathlib import Path

from lbguard.lab.fidelity_matrix import Row

Addresses = dict[tuple[str, str], str]
"""(row key, server name) to ``127.0.0.1:<port>``."""


def _substitute(text: str, row: Row, port: int) -> str:
    text = text.replace("@PORT@", str(port))
    for pool in row.pools:
        text = text.replace(f"@{pool.name}@", row.pool_name(pool.name))
    return text


def haproxy_config(rows: Sequence[Row], ports: dict[str, int], addresses: Addresses) -> str:
    """Build one HAProxy config with a frontend and backends per row."""
    lines = [
        "global",
        "    stats socket @WORKDIR@/admin.sock level admin",
        "    hard-stop-after 5s",
        "",
        "defaults",
        "    mode http",
        "    timeout connect 1s",
        "    timeout client 10s",
        "    timeout server 10s",
        "    timeout queue 5s",
    ]
    for row in rows:
        lines += ["", f"frontend fe_{row.key}", f"    bind 127.0.0.1:{ports[row.id]}",
                  "    http-request set-src hdr(x-forwarded-for)"]
        routing = _substitute(row.routing, row, ports[row.id])
        lines += [f"    {line}" for line in routing.splitlines() if line.strip()]
        lines.append(f"    default_backend {row.pool_name(row.pools[0].name)}")
        for pool in row.pools:
            lines += ["", f"backend {row.pool_name(pool.name)}"]
            lines += [f"    {line}" for line in pool.lines]
            for server in pool.servers:
                address = addresses[(row.key, server.name)]
                lines.append(f"    server {server.name} {address} {server.options}".rstrip())
    return "\n".join(lines) + "\n"


def nginx_http_block(rows: Sequence[Row], ports: dict[str, int], addresses: Addresses) -> str:
    """Build the ``http`` block contents with upstreams and server blocks of every row."""
    lines = ["    set_real_ip_from 127.0.0.1;", "    real_ip_header X-Forwarded-For;"]
    for row in rows:
        for pool in row.pools:
            lines.append(f"    upstream {row.pool_name(pool.name)} {{")
            lines += [f"        {line};" for line in pool.lines]
            for server in pool.servers:
                address = addresses[(row.key, server.name)]
                lines.append(f"        server {address} {server.options}".rstrip() + ";")
            lines.append("    }")
        routing = row.routing or (
            "server {\n    listen 127.0.0.1:@PORT@;\n"
            f"    location / {{ proxy_pass http://@{row.pools[0].name}@; }}\n}}\n"
        )
        lines += [f"    {line}" for line in _substitute(routing, row, ports[row.id]).splitlines()]
    return "\n".join(lines) + "\n"


def distinct_ports(count: int) -> list[int]:
    """Return `count` different TCP ports on 127.0.0.1 that were free a moment ago.

    The sockets stay bound until all ports are picked, so the OS cannot return one twice.
    """
    sockets = []
    try:
        for _ in range(count):
            sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            sockets.append(sock)
            sock.bind(("127.0.0.1", 0))
        return [int(sock.getsockname()[1]) for sock in sockets]
    finally:
        for sock in sockets:
            sock.close()



def haproxy_server_states(path: Path, timeout: float = 2.0) -> dict[tuple[str, str], str]:
    """Return (backend, server) to the ``status`` column of ``show stat`` on the HAProxy
    stats socket at `path`; empty while the socket is not there yet."""
    try:
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as client:
            client.settimeout(timeout)
            client.connect(str(path))
            client.sendall(b"show stat\n")
            chunks = []
            while chunk := client.recv(65536):
                chunks.append(chunk)
    except OSError:
        return {}
    lines = b"".join(chunks).decode(errors="replace").splitlines()
    if not lines or not lines[0].startswith("# "):
        return {}
    header = lines[0][2:].split(",")
    proxy, server, status = (header.index(c) for c in ("pxname", "svname", "status"))
    states = {}
    for line in lines[1:]:
        fields = line.split(",")
        if len(fields) == len(header):
            states[(fields[proxy], fields[server])] = fields[status]
    return states
