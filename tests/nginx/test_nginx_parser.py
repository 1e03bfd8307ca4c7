"""nginx parser: real corpus configurations, includes and errors with file:line."""

from __future__ import annotations

from pathlib import Path

import pytest

from lbguard.model import ActionKind, AdminState, Algorithm, HashMethod, LoadBalancer, Severity
from lbguard.parsers import detect_product
from lbguard.parsers.nginx import parse_nginx
from lbguard.predict import predict
from lbguard.predict.result import ShareMethod

from .conftest import CORPUS, chosen_rules


def _errors(lb: LoadBalancer) -> list[tuple[str, int, str]]:
    return [
        (Path(d.location.file).name, d.location.line, d.message)
        for d in lb.diagnostics
        if d.severity is Severity.ERROR
    ]


def _codes(lb: LoadBalancer, code: str) -> list[tuple[str, int]]:
    return [
        (Path(d.location.file).name, d.location.line) for d in lb.diagnostics if d.code == code
    ]


ALL_MAIN_FILES = sorted(
    [*CORPUS.glob("*.conf"), *CORPUS.glob("*/nginx.conf")], key=lambda path: path.name
)


@pytest.mark.parametrize(
    "path", ALL_MAIN_FILES, ids=[p.parent.name + "/" + p.name for p in ALL_MAIN_FILES]
)
def test_corpus_file_parses_and_predicts(path: Path) -> None:
    lb = parse_nginx(path, prefix_map={"/etc/nginx/": str(path.parent)})
    assert lb.files[0] == str(path)
    assert detect_product([path]).value == "nginx"
    prediction = predict(lb)
    assert len(prediction.pools) == len(lb.pools)


def test_h5bp_multifile_includes() -> None:
    root = CORPUS / "h5bp-server-configs-multifile"
    lb = parse_nginx(root / "nginx.conf")
    names = [str(Path(f).relative_to(root)) if f.startswith(str(root)) else f for f in lb.files]
    assert names == [
        "nginx.conf",
        "h5bp/security/server_software_information.conf",
        "h5bp/media_types/media_types.conf",
        "mime.types",
        "h5bp/media_types/character_encodings.conf",
        "h5bp/web_performance/compression.conf",
        "h5bp/web_performance/cache_expiration.conf",
        "conf.d/no-ssl.default.conf",
    ]
    assert _errors(lb) == []
    assert lb.pools == ()
    assert sorted(f.name for f in lb.frontends) == ["*:80", "[::]:80"]
    rule = lb.frontend("*:80").rules[-1]  # type: ignore[union-attr]
    assert rule.action.kind is ActionKind.DENY
    assert rule.action.status == 444
    assert rule.location.line == 26


@pytest.mark.parametrize("demo", ["nginx-demos-swarm", "nginx-demos-fun-with-health-checks"])
def test_absolute_prefix_mapped(demo: str) -> None:
    root = CORPUS / demo
    unmapped = parse_nginx(root / "nginx.conf")
    lb = parse_nginx(root / "nginx.conf", prefix_map={"/etc/nginx/": str(root)})
    assert str(root / "conf.d" / "backend.conf") in lb.files
    assert str(root / "conf.d" / "backend.conf") not in unmapped.files
    assert len(lb.pools) == 3
    missing = [e for e in _errors(lb) if "mime.types" in e[2]]
    assert missing == [
        (
            "nginx.conf",
            missing[0][1],
            'open() "/etc/nginx/mime.types" failed (2: No such file or directory)',
        )
    ]
    assert all(pool.shared_state for pool in lb.pools)


def test_swarm_variable_proxy_pass_is_dynamic() -> None:
    root = CORPUS / "nginx-demos-swarm"
    lb = parse_nginx(root / "nginx.conf", prefix_map={"/etc/nginx/": str(root)})
    dynamic = [
        rule for f in lb.frontends for rule in f.rules if rule.action.kind is ActionKind.DYNAMIC
    ]
    assert dynamic
    assert {rule.action.pool for rule in dynamic} == {"$arg_ip"}
    assert ("backend.conf", 61) in _codes(lb, "unevaluated")


def test_ketama_config() -> None:
    lb = parse_nginx(CORPUS / "pingora-ketama-hash-consistent" / "nginx.conf")
    pool = lb.pool("uppers")
    assert pool is not None
    assert pool.balance.algorithm is Algorithm.HASH
    assert pool.balance.key == "$request_uri"
    assert pool.balance.hash_method is HashMethod.CONSISTENT
    assert [s.weight for s in pool.servers] == [100] * 9
    assert {s.max_fails for s in pool.servers} == {0}
    assert not pool.shared_state


def test_exchange_misspelled_upstream() -> None:
    lb = parse_nginx(CORPUS / "nginx-docs-exchange-full-ntlm-sticky-learn.conf")
    [warning] = [d for d in lb.diagnostics if d.code == "unknown-upstream"]
    assert warning.location.line == 152
    assert '"exchange-active-sync"' in warning.message
    assert 'upstream "exchange-activesync"' in warning.hint
    assert ("nginx-docs-exchange-full-ntlm-sticky-learn.conf", 32) in [
        (f, line) for f, line, _ in _errors(lb)
    ]
    assert {"tcp/*:993", "tcp/*:25"} <= {f.name for f in lb.frontends}
    assert len([p for p in lb.pools if "implicit" not in p.options]) == 8


def test_synapse_snippet_reports_locations_and_keeps_upstreams() -> None:
    lb = parse_nginx(CORPUS / "synapse-workers-sync-hash-map-snippet.conf")
    assert [
        line
        for _, line, message in _errors(lb)
        if message == '"location" directive is not allowed here'
    ] == [42, 47, 52, 55]
    sync = lb.pool("synapse_sync")
    initial = lb.pool("synapse_initial_sync")
    assert sync is not None
    assert initial is not None
    assert len(sync.servers) == 4
    assert len(initial.servers) == 2
    assert sync.balance.key == "$mxid_localpart"


def test_minio_ip_hash_console() -> None:
    lb = parse_nginx(CORPUS / "minio-docker-compose-ip-hash-console.conf")
    console = lb.pool("console")
    minio = lb.pool("minio")
    assert console is not None
    assert minio is not None
    assert console.balance.algorithm is Algorithm.IP_HASH
    assert minio.balance.algorithm is Algorithm.ROUND_ROBIN
    assert len(console.servers) == len(minio.servers) == 4
    assert ("worker_processes", "auto") in lb.settings


def test_autoscaling_upstreams_without_servers() -> None:
    lb = parse_nginx(CORPUS / "nginx-demos-autoscaling-state-file-upstreams-conf.d.conf")
    assert _codes(lb, "empty-upstream") == [
        ("nginx-demos-autoscaling-state-file-upstreams-conf.d.conf", 1),
        ("nginx-demos-autoscaling-state-file-upstreams-conf.d.conf", 6),
    ]
    pool = lb.pool("nginx_backends")
    assert pool is not None
    assert pool.shared_state
    assert any(option.startswith("state ") for option in pool.options)
    assert predict(lb).pool("nginx_backends").method is ShareMethod.UNKNOWN  # type: ignore[union-attr]


def test_stream_least_conn_and_udp() -> None:
    lb = parse_nginx(CORPUS / "nginx-docs-tcp-udp-stream-least-conn.conf")
    pool = lb.pool("stream_backend")
    assert pool is not None
    assert pool.balance.algorithm is Algorithm.LEAST_CONN
    assert [s.weight for s in pool.servers] == [5, 1, 1]
    assert pool.servers[1].max_fails == 2
    assert pool.servers[1].fail_timeout == 30.0
    assert pool.servers[2].maxconn == 3
    names = {f.name: f for f in lb.frontends}
    assert set(names) == {"tcp/*:12345", "udp/*:53", "tcp/*:12346"}
    assert names["udp/*:53"].rules[0].action.pool == "dns_servers"
    assert names["tcp/*:12346"].rules[0].action.pool == "backend4.example.com:12346"


def test_mastodon_nested_locations() -> None:
    lb = parse_nginx(CORPUS / "mastodon-dist-nginx.conf")
    paths = ["/about", "/sw.js", "/packs/app.js", "/system/a.png", "/api/v1/streaming/x"]
    rules = chosen_rules(lb, "*:443", ["example.com"] * len(paths), paths)
    targets = [
        rule.action.pool
        if rule and rule.action.kind is ActionKind.ROUTE
        else rule.action.kind.value
        if rule
        else None
        for rule in rules
    ]
    assert targets == ["backend", "return", "return", "return", "streaming"]
    redirect = chosen_rules(lb, "*:80", ["example.com"], ["/x"])[0]
    assert redirect is not None
    assert redirect.action.kind is ActionKind.REDIRECT
    assert redirect.action.status == 301


def test_openresty_lua_balancer_unknown() -> None:
    lb = parse_nginx(CORPUS / "openresty-balancer-by-lua-placeholder.conf")
    assert ("openresty-balancer-by-lua-placeholder.conf", 5) in _codes(lb, "unevaluated")
    assert predict(lb).pool("backend").method is ShareMethod.UNKNOWN  # type: ignore[union-attr]


def test_stream_galera_and_redis() -> None:
    galera = parse_nginx(CORPUS / "nginx-demos-mysql-galera-stream.conf")
    mysql = galera.frontend("tcp/*:3306")
    assert mysql is not None
    assert mysql.rules[0].action.pool == "tcp_backend"
    redis = parse_nginx(
        CORPUS / "nginx-demos-redis-stream-health-match.conf",
        prefix_map={"/etc/nginx/": str(CORPUS)},
    )
    pool = redis.pool("redis_backend")
    assert pool is not None
    assert len(pool.servers) == 3


# --------------------------------------------------------------------------------------
# Errors


def _write(tmp_path: Path, text: str, name: str = "nginx.conf") -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


def test_errors_keep_rest_of_config(tmp_path: Path) -> None:
    path = _write(
        tmp_path,
        """events {}
http {
    upstream a { server 10.0.0.1:80 weight=0; server 10.0.0.2:80; }
    upstream b { hash $uri; server 10.0.0.3:80 backup; server 10.0.0.4:80; }
    upstream a { server 10.0.0.9:80; }
    include missing/*.conf;
    include extra.conf;
    server {
        listen 8080;
        location / { proxy_pass http://a; }
    }
}
""",
    )
    lb = parse_nginx(path)
    assert _errors(lb) == [
        ("nginx.conf", 3, 'invalid parameter "weight=0"'),
        ("nginx.conf", 4, 'balancing method does not support parameter "backup"'),
        ("nginx.conf", 5, 'duplicate upstream "a"'),
        ("nginx.conf", 7, f'open() "{tmp_path}/extra.conf" failed (2: No such file or directory)'),
    ]
    pool = lb.pool("a")
    assert pool is not None
    assert [s.name for s in pool.servers] == ["10.0.0.1:80", "10.0.0.2:80"]
    assert lb.frontend("*:8080") is not None


def test_syntax_error_in_included_file(tmp_path: Path) -> None:
    _write(tmp_path, "upstream x { server 10.0.0.1:80;\n", "broken.conf")
    path = _write(
        tmp_path,
        "events {}\nhttp {\n  include broken.conf;\n  upstream y { server 10.0.0.2:80; }\n}\n",
    )
    lb = parse_nginx(path)
    errors = _errors(lb)
    assert [(name, message) for name, _, message in errors] == [
        ("broken.conf", 'unexpected end of file, expecting "}"')
    ]
    assert lb.pool("y") is not None


def test_down_and_backup_parameters(tmp_path: Path) -> None:
    path = _write(
        tmp_path,
        "events {}\nhttp { upstream u { zone u 64k;\n"
        "server 10.0.0.1:80 down; server 10.0.0.2:80 backup "
        "max_conns=7 fail_timeout=1m30s; } }\n",
    )
    pool = parse_nginx(path).pool("u")
    assert pool is not None
    assert pool.shared_state
    assert pool.servers[0].state is AdminState.DISABLED
    assert pool.servers[1].backup
    assert pool.servers[1].maxconn == 7
    assert pool.servers[1].fail_timeout == 90.0


def test_map_in_proxy_pass_splits_rules(tmp_path: Path) -> None:
    path = _write(
        tmp_path,
        """events {}
http {
    map $http_x_tenant $pool {
        default blue;
        green green;
        ~^canary- green;
    }
    upstream blue { server 10.0.0.1:80; }
    upstream green { server 10.0.0.2:80; }
    server { listen 8080; location / { proxy_pass http://$pool; } }
}
""",
    )
    lb = parse_nginx(path)
    frontend = lb.frontend("*:8080")
    assert frontend is not None
    assert [r.action.pool for r in frontend.rules[:3]] == ["green", "green", "blue"]
    from lbguard.traffic import from_columns

    profile = from_columns(
        path=["/", "/", "/"], headers={"x-tenant": ["GREEN", "canary-1", "other"]}
    )
    prediction = predict(lb, profile)
    assert prediction.pool("green").share_of_total == pytest.approx(2 / 3)  # type: ignore[union-attr]
    assert prediction.pool("blue").share_of_total == pytest.approx(1 / 3)  # type: ignore[union-attr]


def test_rewrite_last_to_literal_uri(tmp_path: Path) -> None:
    path = _write(
        tmp_path,
        """events {}
http {
    upstream old { server 10.0.0.1:80; }
    upstream new { server 10.0.0.2:80; }
    server {
        listen 8080;
        location /legacy/ { rewrite ^/legacy/ping$ /v2/ping last; proxy_pass http://old; }
        location /v2/ { proxy_pass http://new; }
    }
}
""",
    )
    lb = parse_nginx(path)
    rules = chosen_rules(lb, "*:8080", ["a", "a"], ["/legacy/ping", "/legacy/other"])
    assert [r.action.pool if r else None for r in rules] == ["new", "old"]
