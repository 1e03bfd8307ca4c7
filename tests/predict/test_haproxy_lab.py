"""Predictions against a real HAProxy on 127.0.0.1: the server of each request must match.

Each test writes one HAProxy config with a frontend, the backend under test and one small
``listen`` section per server that answers with the server's name. The same backend text
is parsed by lbguard, and every request's predicted server is compared with the one that
answered.
"""

from __future__ import annotations

import http.client
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest

from lbguard.lab.products import HAProxyProcess, free_port
from lbguard.lab.testing import require_binary
from lbguard.model import Pool
from lbguard.parsers.haproxy import parse_haproxy
from lbguard.predict import predict
from lbguard.predict.haproxy import hash_assignments
from lbguard.traffic import from_columns

pytestmark = pytest.mark.lab

MAX_REQUESTS = 400
"""Upper bound on requests per test, so every loop ends by itself."""


@dataclass
class Request:
    path: str
    headers: dict[str, str]


@dataclass
class Lab:
    """A running HAProxy with the backend under test and the parsed model of it."""

    port: int
    pool: Pool
    config: Path

    def send(self, requests: Sequence[Request]) -> list[str]:
        """Send each request on a new connection and return the answering server names."""
        assert len(requests) <= MAX_REQUESTS
        answers = []
        for request in requests:
            connection = http.client.HTTPConnection("127.0.0.1", self.port, timeout=5)
            try:
                connection.request("GET", request.path, headers=request.headers)
                answers.append(connection.getresponse().read().decode())
            finally:
                connection.close()
        return answers


def lab_config(
    backend: str, servers: Sequence[str], port: int, server_ports: Sequence[int]
) -> str:
    lines = [
        "defaults",
        "    mode http",
        "    timeout connect 2s",
        "    timeout client 5s",
        "    timeout server 5s",
        "",
        "frontend fe",
        f"    bind 127.0.0.1:{port}",
        "    default_backend be",
        "",
        "backend be",
    ]
    lines += ["    " + line.strip() for line in backend.strip().splitlines()]
    for name, server_port in zip(servers, server_ports, strict=True):
        lines += [
            "",
            f"listen srv_{name}",
            f"    bind 127.0.0.1:{server_port}",
            f"    http-request return status 200 content-type text/plain string {name}",
        ]
    return "\n".join(lines) + "\n"


@pytest.fixture
def start_lab(tmp_path: Path):  # type: ignore[no-untyped-def]
    require_binary("haproxy")
    running: list[HAProxyProcess] = []

    def start(backend: str, servers: Sequence[tuple[str, str]]) -> Lab:
        """*servers* are (name, options) pairs; the address is filled in here."""
        port = free_port()
        server_ports = [free_port() for _ in servers]
        lines = [backend.strip()]
        for (name, options), server_port in zip(servers, server_ports, strict=True):
            lines.append(f"server {name} 127.0.0.1:{server_port} {options}".rstrip())
        text = lab_config("\n".join(lines), [n for n, _ in servers], port, server_ports)
        config = tmp_path / f"lab{len(running)}.cfg"
        config.write_text(text)
        lb = parse_haproxy([config])
        pool = lb.pool("be")
        assert pool is not None
        process = HAProxyProcess(text).start()
        running.append(process)
        return Lab(port, pool, config)

    yield start
    for process in running:
        process.stop()


def predicted_names(pool: Pool, rows: np.ndarray) -> list[str]:
    return [pool.servers[int(i)].name if i >= 0 else "round-robin" for i in rows]


SERVERS_5 = [
    ("s1", "weight 1"),
    ("s2", "weight 2"),
    ("s3", "weight 3"),
    ("s4", ""),
    ("s5", "weight 1"),
]


def test_uri_map_based_each_request(start_lab) -> None:  # type: ignore[no-untyped-def]
    lab = start_lab("balance uri", SERVERS_5)
    paths = [f"/item/{i}/view" for i in range(300)]
    profile = from_columns(path=paths, query=[""] * len(paths))
    expected = predicted_names(lab.pool, hash_assignments(lab.pool, profile))
    observed = lab.send([Request(p, {}) for p in paths])
    assert observed == expected


def test_uri_depth_len_whole_each_request(start_lab) -> None:  # type: ignore[no-untyped-def]
    lab = start_lab("balance uri whole depth 2 len 12", SERVERS_5[:3])
    paths = [f"/a{i % 7}/b{i % 11}/c{i}" for i in range(200)]
    queries = [f"q={i % 5}" if i % 3 else "" for i in range(200)]
    profile = from_columns(path=paths, query=queries)
    expected = predicted_names(lab.pool, hash_assignments(lab.pool, profile))
    targets = [p + ("?" + q if q else "") for p, q in zip(paths, queries, strict=True)]
    observed = lab.send([Request(t, {}) for t in targets])
    assert observed == expected


def test_uri_consistent_each_request(start_lab) -> None:  # type: ignore[no-untyped-def]
    servers = [("s1", ""), ("s2", "id 17"), ("s3", "weight 3"), ("s4", "")]
    lab = start_lab("balance uri\nhash-type consistent", servers)
    paths = [f"/doc/{i}.html" for i in range(300)]
    profile = from_columns(path=paths, query=[""] * len(paths))
    expected = predicted_names(lab.pool, hash_assignments(lab.pool, profile))
    observed = lab.send([Request(p, {}) for p in paths])
    assert observed == expected


def test_hdr_djb2_avalanche_domain_only(start_lab) -> None:  # type: ignore[no-untyped-def]
    lab = start_lab(
        "balance hdr(x-site) use_domain_only\nhash-type map-based djb2 avalanche", SERVERS_5
    )
    sites = [f"www.site{i}.example" for i in range(250)]
    profile = from_columns(path=["/"] * len(sites), headers={"x-site": sites})
    expected = predicted_names(lab.pool, hash_assignments(lab.pool, profile))
    observed = lab.send([Request("/", {"x-site": s}) for s in sites])
    assert observed == expected


def test_url_param_consistent_wt6(start_lab) -> None:  # type: ignore[no-untyped-def]
    lab = start_lab("balance url_param uid\nhash-type consistent wt6", SERVERS_5[:4])
    queries = [f"a=1&uid=user{i}" for i in range(250)]
    profile = from_columns(path=["/"] * len(queries), query=queries)
    expected = predicted_names(lab.pool, hash_assignments(lab.pool, profile))
    observed = lab.send([Request(f"/?{q}", {}) for q in queries])
    assert observed == expected


def test_hash_expression_crc32(start_lab) -> None:  # type: ignore[no-untyped-def]
    lab = start_lab("balance hash req.hdr(x-id)\nhash-type map-based crc32", SERVERS_5)
    ids = [f"tenant-{i}" for i in range(250)]
    profile = from_columns(path=["/"] * len(ids), headers={"x-id": ids})
    expected = predicted_names(lab.pool, hash_assignments(lab.pool, profile))
    observed = lab.send([Request("/", {"x-id": i}) for i in ids])
    assert observed == expected


def test_roundrobin_weights_over_one_cycle(start_lab) -> None:  # type: ignore[no-untyped-def]
    servers = [("web1", "weight 10"), ("web2", "weight 10"), ("web3", "weight 100")]
    lab = start_lab("balance roundrobin", servers)
    counts = Counter(lab.send([Request("/", {})] * 240))
    shares = predict_pool(lab)
    for name, _options in servers:
        assert counts[name] / 240 == pytest.approx(shares[name], abs=0.01)


def test_roundrobin_first_backup_only(start_lab) -> None:  # type: ignore[no-untyped-def]
    servers = [("a1", "disabled"), ("b1", "backup"), ("b2", "backup weight 5")]
    lab = start_lab("balance roundrobin", servers)
    counts = Counter(lab.send([Request("/", {})] * 60))
    shares = predict_pool(lab)
    assert shares["b1"] == 1.0
    assert counts["b1"] == 60


def test_allbackups_share_by_weight(start_lab) -> None:  # type: ignore[no-untyped-def]
    servers = [("a1", "disabled"), ("b1", "backup"), ("b2", "backup weight 3")]
    lab = start_lab("balance roundrobin\noption allbackups", servers)
    counts = Counter(lab.send([Request("/", {})] * 80))
    shares = predict_pool(lab)
    assert shares["b2"] == pytest.approx(0.75)
    assert counts["b2"] / 80 == pytest.approx(0.75, abs=0.02)


def test_static_rr_map_with_backups_of_unequal_weight(start_lab) -> None:  # type: ignore[no-untyped-def]
    # Without allbackups the map still holds every usable backup; its size is the first
    # backup's weight (2 here), so the heavier second backup takes one of the two slots.
    servers = [("a1", "disabled"), ("b1", "backup weight 2"), ("b2", "backup weight 3")]
    lab = start_lab("balance static-rr", servers)
    counts = Counter(lab.send([Request("/", {})] * 60))
    shares = predict_pool(lab)
    assert shares["b1"] == pytest.approx(0.5)
    assert shares["b2"] == pytest.approx(0.5)
    assert counts["b1"] == 30
    assert counts["b2"] == 30


def predict_pool(lab: Lab) -> dict[str, float]:
    lb = parse_haproxy([lab.config])
    prediction = predict(lb, from_columns(path=["/"]))
    pool = prediction.pool("be")
    assert pool is not None
    return {server.server: server.share_of_pool for server in pool.servers}
