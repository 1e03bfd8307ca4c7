"""The fidelity lab's pieces: matrix, configs, comparison, report and command."""

from __future__ import annotations

import math
from pathlib import Path
from statistics import NormalDist

import numpy as np
import pytest

from lbguard.lab.fidelity import main, render_markdown
from lbguard.lab.fidelity_configs import distinct_ports, haproxy_config, nginx_http_block
from lbguard.lab.fidelity_lab import (
    RowResult,
    ServerResult,
    binomial_bound,
    replay_sequence,
    row_sigmas,
    traffic_profile,
)
from lbguard.lab.fidelity_matrix import (
    HAPROXY_HASHES,
    HASH_FUNCTIONS,
    MATRIX,
    Check,
    LabPool,
    LabServer,
    Row,
    rows_for,
)
from lbguard.lab.generator import RequestSpec
from lbguard.model import Product
from lbguard.parsers.nginx import parse_nginx
from lbguard.predict import predict
from lbguard.traffic import from_columns


def row(row_id: str) -> Row:
    return next(r for r in MATRIX if r.id == row_id)


def test_matrix_covers_every_haproxy_hash_setup() -> None:
    titles = {r.title for r in rows_for(Product.HAPROXY)}
    for _name, line, _traffic in HAPROXY_HASHES:
        for method in ("map-based", "consistent"):
            for function in HASH_FUNCTIONS:
                assert f"{line}; hash-type {method} {function}".strip() in titles


def test_matrix_covers_every_nginx_method() -> None:
    lines = {line for r in rows_for(Product.NGINX) for p in r.pools for line in p.lines}
    assert {"ip_hash", "hash $request_uri", "hash $request_uri consistent", "random",
            "random two"} <= lines
    assert any(r.routing and "location" in r.routing for r in rows_for(Product.NGINX))
    assert any(r.routing and "server_name" in r.routing for r in rows_for(Product.NGINX))
    assert any("backup" in s.options for r in rows_for(Product.NGINX)
               for p in r.pools for s in p.servers)


def test_row_rejects_duplicate_server_names() -> None:
    pool = LabPool("a", (), (LabServer("s1"),))
    other = LabPool("b", (), (LabServer("s1"),))
    with pytest.raises(ValueError, match="unique within the row"):
        Row("dup", Product.HAPROXY, "dup", Check.SHARES, (pool, other), ())


def test_binomial_bound_is_three_sigma() -> None:
    assert binomial_bound(0.25, 2000) == pytest.approx(3 * math.sqrt(0.25 * 0.75 / 2000))
    assert binomial_bound(0.0, 2000) == 0.0
    assert binomial_bound(1.0, 2000) == 0.0


def test_row_sigmas_keep_one_test_rate() -> None:
    one_test = 2 * (1 - NormalDist().cdf(3.0))
    assert row_sigmas(0) == 3.0
    assert row_sigmas(1) == 3.0
    for servers in range(2, 9):
        per_server = 2 * (1 - NormalDist().cdf(row_sigmas(servers)))
        assert 1 - (1 - per_server) ** servers == pytest.approx(one_test)
        assert row_sigmas(servers) > row_sigmas(servers - 1)


def _false_failure_rate(sigmas: float) -> float:
    """Replay 40,000 seeded rows of 2,000 requests over shares 1/8, 1/8, 1/4, 1/2 and
    return the fraction of rows where some server leaves its bound."""
    shares = np.array([0.125, 0.125, 0.25, 0.5])
    counts = np.random.default_rng(2027).multinomial(2000, shares, size=40_000)
    bounds = np.array([binomial_bound(share, 2000, sigmas) for share in shares])
    outside = np.abs(counts / 2000 - shares) > bounds
    return float(outside.any(axis=1).mean())


def test_row_bound_false_failure_rate() -> None:
    one_test = 2 * (1 - NormalDist().cdf(3.0))
    assert _false_failure_rate(row_sigmas(4)) < one_test * 1.5
    assert _false_failure_rate(3.0) > one_test * 2.5


def test_row_bound_fails_wrong_prediction() -> None:
    allowed = binomial_bound(0.25, 2000, row_sigmas(4))
    assert ServerResult("up", "s3", 0.25, 0.27, 540, allowed).within
    assert not ServerResult("up", "s3", 0.25, 0.30, 600, allowed).within


def test_server_result_within_bound() -> None:
    assert ServerResult("be", "s1", 0.25, 0.259, 259, 0.01).within
    assert not ServerResult("be", "s1", 0.25, 0.261, 261, 0.01).within
    assert ServerResult("be", "s1", 0.25, 0.25, 250, 0.0).within


def test_replay_sequence_sends_each_shape_weight_times() -> None:
    routed = row("haproxy-acl-routing")

    sequence = replay_sequence(routed)

    for spec in routed.traffic:
        assert sequence.count(spec) == int(spec.weight)
    assert sequence == replay_sequence(routed)
    assert sequence != [spec for spec in routed.traffic for _ in range(int(spec.weight))]


def test_traffic_profile_columns() -> None:
    specs = [
        RequestSpec(path="/a", query="x=1", client_ip="10.0.0.1", weight=3),
        RequestSpec(host="api.example.com", headers=(("X-Tenant", "t1"),)),
    ]

    profile = traffic_profile(specs, "fe_x", 8080)

    assert list(profile.weight) == [3.0, 1.0]
    assert list(profile.host) == ["127.0.0.1:8080", "api.example.com"]
    assert list(profile.client_ip) == ["10.0.0.1", ""]
    assert list(profile.headers["x-tenant"]) == ["", "t1"]
    assert list(profile.frontend) == ["fe_x", "fe_x"]


def test_haproxy_config_stays_on_loopback() -> None:
    rows = rows_for(Product.HAPROXY, ["haproxy-backup-first", "haproxy-acl-routing"])
    ports = {r.id: 20000 + i for i, r in enumerate(rows)}
    addresses = {(r.key, name): f"127.0.0.1:{30000 + i}"
                 for r in rows for i, name in enumerate(r.server_names())}

    text = haproxy_config(rows, ports, addresses)

    addresses_used = [line.split()[2] for line in text.splitlines()
                      if line.strip().startswith("server ")]
    assert all(a.startswith("127.0.0.1:") for a in addresses_used)
    assert text.count("http-request set-src hdr(x-forwarded-for)") == 2
    assert "    bind 127.0.0.1:20001" in text
    assert "use_backend haproxy_acl_routing_api if is_api !is_post" in text


def test_nginx_block_uses_realip() -> None:
    rows = rows_for(Product.NGINX, ["nginx-ip-hash"])
    addresses = {(rows[0].key, name): f"127.0.0.1:{30000 + i}"
                 for i, name in enumerate(rows[0].server_names())}

    text = nginx_http_block(rows, {rows[0].id: 20000}, addresses)

    assert "set_real_ip_from 127.0.0.1;" in text
    assert "real_ip_header X-Forwarded-For;" in text
    assert "upstream nginx_ip_hash_up {" in text
    assert "listen 127.0.0.1:20000;" in text


def test_distinct_ports_are_distinct() -> None:
    ports = distinct_ports(50)
    assert len(set(ports)) == 50


def test_report_lists_rows_and_failures() -> None:
    ok = RowResult(row("nginx-smooth-wrr"), 280,
                   (ServerResult("up", "s1", 5 / 7, 5 / 7, 200, 0.01),), 0, (), "exact")
    bad = RowResult(row("haproxy-random"), 2000,
                    (ServerResult("be", "s1", 0.2, 0.3, 600, 0.027),), 0,
                    ("be/s1: observed 30.00%, predicted 20.00%",), "expected")

    text = render_markdown([ok, bad], ["nginx version: nginx/1.22.1"], "cmd")

    assert "Result: 1 of 2 rows pass." in text
    assert "- `nginx version: nginx/1.22.1`" in text
    assert "| nginx-smooth-wrr | round robin, weights 5/1/1 | shares | 280 | s1 71.4% / 71.4% " \
           "| pass |" in text
    assert "| FAIL: be/s1: observed 30.00%, predicted 20.00% |" in text


def test_ketama_server_without_parameters(tmp_path: Path) -> None:
    # "server A;" and "server A weight=1;" are the same peer, so they must place every
    # key alike: the line's ';' is not part of the name nginx hashes.
    def config(suffix: str) -> Path:
        path = tmp_path / f"nginx{len(suffix)}.conf"
        path.write_text(
            "events {}\nhttp {\n upstream up {\n  hash $request_uri consistent;\n"
            f"  server 127.0.0.1:8001{suffix};\n  server 127.0.0.1:8002{suffix};\n"
            "  server 127.0.0.1:8003 weight=2;\n }\n"
            " server { listen 127.0.0.1:8080; location / { proxy_pass http://up; } }\n}\n"
        )
        return path

    bare, weighted = parse_nginx(config("")), parse_nginx(config(" weight=1"))
    for i in range(40):
        profile = from_columns(path=[f"/doc/{i}"], query=[""], host=["127.0.0.1:8080"])
        first = predict(bare, profile).pool("up")
        second = predict(weighted, profile).pool("up")
        assert first is not None
        assert second is not None
        assert [s.share_of_pool for s in first.servers] == [
            s.share_of_pool for s in second.servers
        ]


@pytest.mark.lab
def test_command_writes_report(haproxy_bin: str, tmp_path: Path) -> None:
    output = tmp_path / "fidelity.md"

    code = main(["--row", "haproxy-static-rr-weights", "-o", str(output)])

    text = output.read_text()
    assert code == 0
    assert "Result: 1 of 1 rows pass." in text
    assert "HAProxy version 2." in text
    assert "| haproxy-static-rr-weights |" in text


def test_command_rejects_unknown_row(tmp_path: Path) -> None:
    with pytest.raises(SystemExit) as caught:
        main(["--row", "no-such-row", "-o", str(tmp_path / "x.md")])

    assert caught.value.code == 2
    assert not (tmp_path / "x.md").exists()
