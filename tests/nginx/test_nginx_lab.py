"""Key-by-key comparison of hash placement with a real nginx on 127.0.0.1."""

from __future__ import annotations

import httpx
import numpy as np
import pytest

from lbguard.lab import NginxProcess, free_port, nginx_config
from lbguard.parsers.nginx import parse_nginx
from lbguard.predict.nginx import choose
from lbguard.traffic import from_columns

KEY_COUNT = 300


def _http_block(ports: dict[str, int], dead: list[int]) -> str:
    servers = (
        f"server 127.0.0.1:{dead[0]} max_fails=0;\n"
        f"server 127.0.0.1:{dead[1]} max_fails=0 weight=2;\n"
        f"server 127.0.0.1:{dead[2]} max_fails=0;\n"
        f"server 127.0.0.1:{dead[3]} max_fails=0 down;\n"
    )
    blocks = [
        "log_format keys '$remote_addr|$request_uri|$upstream_addr';",
        f"upstream iph {{ ip_hash;\n{servers}}}",
        f"upstream chash {{ hash $request_uri consistent;\n{servers}}}",
        f"upstream mhash {{ hash $arg_k;\n{servers}}}",
    ]
    for name, port in ports.items():
        blocks.append(f"""
server {{
    listen 127.0.0.1:{port};
    set_real_ip_from 127.0.0.1;
    real_ip_header X-Real-IP;
    access_log @WORKDIR@/{name}.log keys;
    location / {{
        proxy_next_upstream off;
        proxy_connect_timeout 1s;
        proxy_pass http://{name};
    }}
}}""")
    return "\n".join(blocks)


@pytest.mark.lab
def test_hash_placement_matches_real_nginx(nginx_bin: str) -> None:
    ports = {"iph": free_port(), "chash": free_port(), "mhash": free_port()}
    dead = [free_port() for _ in range(4)]
    rng = np.random.default_rng(11)
    clients = [f"10.{a}.{b}.{c}" for a, b, c in rng.integers(0, 256, (KEY_COUNT, 3)).tolist()]
    uris = [f"/obj/{i}?k=user{i * 7919 % 1000}" for i in range(KEY_COUNT)]

    with (
        NginxProcess(nginx_config(_http_block(ports, dead)), binary=nginx_bin) as nginx,
        httpx.Client(timeout=5.0) as client,
    ):
        for port in ports.values():
            for address, uri in zip(clients, uris, strict=True):
                client.get(f"http://127.0.0.1:{port}{uri}", headers={"X-Real-IP": address})
        logs = {name: (nginx.workdir / f"{name}.log").read_text().splitlines() for name in ports}
        lb = parse_nginx(nginx.config_path)

    for name in ports:
        lines = [line.split("|") for line in logs[name]]
        assert len(lines) == KEY_COUNT, f"{name}: {len(lines)} log lines"
        assert [line[0] for line in lines] == clients
        paths = [line[1].partition("?")[0] for line in lines]
        queries = [line[1].partition("?")[2] for line in lines]
        profile = from_columns(client_ip=clients, path=paths, query=queries)
        pool = lb.pool(name)
        assert pool is not None
        predicted = choose(pool, profile)
        logged = [line[2] for line in lines]
        mismatches = [
            (i, want, got)
            for i, (want, got) in enumerate(zip(logged, predicted, strict=True))
            if want != got
        ]
        assert mismatches == [], f"{name}: {mismatches[:5]}"
        assert f"127.0.0.1:{dead[3]}" not in logged
