"""The lab harness against real HAProxy and NGINX processes on 127.0.0.1."""

from __future__ import annotations

import os
import re
import tempfile
from collections.abc import Mapping
from pathlib import Path

import pytest

from lbguard.lab import (
    Backends,
    BackendSpec,
    HAProxyProcess,
    LabError,
    NginxProcess,
    RequestSpec,
    SyslogReceiver,
    TrafficGenerator,
    child_pids,
    count_servers,
    free_port,
    nginx_config,
)
from lbguard.lab.testing import require_binary

pytestmark = pytest.mark.lab

RFC3164_HTTPLOG = re.compile(
    r"^[A-Z][a-z]{2} [ \d]\d \d\d:\d\d:\d\d lb1 haproxy\[\d+\]: "
    r"127\.0\.0\.1:\d+ \[\d\d/[A-Z][a-z]{2}/\d{4}:\d\d:\d\d:\d\d\.\d{3}\] fe_main "
    r"be_app/s[123] \d+/\d+/\d+/\d+/\d+ 200 \d+ - - ---- "
)


def haproxy_cfg(
    backends: Backends,
    weights: Mapping[str, int],
    port: int,
    *,
    log: str = "",
    server_options: str = "",
    backend_options: str = "",
) -> str:
    servers = "\n".join(
        f"    server {name} {backends.address(name)} weight {weight} {server_options}"
        for name, weight in weights.items()
    )
    log_global = f"    log {log} local0" if log else ""
    return f"""\
global
{log_global}
    hard-stop-after 5s

defaults
    mode http
    log global
    option httplog
    option dontlognull
    timeout connect 2s
    timeout client 10s
    timeout server 10s

frontend fe_main
    bind 127.0.0.1:{port}
    capture request header X-Forwarded-For len 64
    default_backend be_app

backend be_app
    balance roundrobin
{backend_options}
{servers}
"""


def nginx_http(backends: Backends, weights: Mapping[str, int], port: int) -> str:
    servers = "\n".join(
        f"        server {backends.address(name)} weight={weight};"
        for name, weight in weights.items()
    )
    return f"""\
    upstream app {{
{servers}
    }}
    server {{
        listen 127.0.0.1:{port};
        location / {{
            proxy_pass http://app;
        }}
    }}
"""


def send(port: int, count: int, *, concurrency: int = 4, seed: int = 1) -> list[int]:
    mix = [RequestSpec(path="/a"), RequestSpec(path="/b", query="x=1")]
    results = TrafficGenerator(port, mix, requests=count, concurrency=concurrency, seed=seed)
    return [r.status for r in results.run()]


def descendants_alive(pid: int) -> bool:
    return Path(f"/proc/{pid}").exists() or bool(child_pids(pid))


def test_haproxy_roundrobin_exact_counts(
    haproxy_bin: str, three_backends: Backends, syslog: SyslogReceiver
) -> None:
    port = free_port()
    config = haproxy_cfg(three_backends, {"s1": 1, "s2": 2, "s3": 3}, port, log=syslog.address)
    mix = [RequestSpec(path="/items", client_ip="198.51.100.7")]

    with HAProxyProcess(config, binary=haproxy_bin):
        results = TrafficGenerator(port, mix, requests=600, concurrency=6, seed=3).run()

    assert len(results) == 600
    assert all(r.status == 200 for r in results)
    assert count_servers(results) == {"s1": 100, "s2": 200, "s3": 300}
    assert three_backends.snapshot() == {"s1": 100, "s2": 200, "s3": 300}


def test_haproxy_log_is_rfc3164_httplog(
    haproxy_bin: str, three_backends: Backends, syslog: SyslogReceiver
) -> None:
    port = free_port()
    config = haproxy_cfg(three_backends, {"s1": 1, "s2": 1, "s3": 1}, port, log=syslog.address)
    mix = [RequestSpec(path="/items", query="id=7", client_ip="203.0.113.9")]

    with HAProxyProcess(config, binary=haproxy_bin):
        TrafficGenerator(port, mix, requests=30, concurrency=3).run()
        arrived = syslog.wait_for_lines(30)

    assert arrived
    lines = [line for line in syslog.path.read_text().splitlines() if " fe_main be_app/" in line]
    assert len(lines) == 30
    assert all(RFC3164_HTTPLOG.match(line) for line in lines), lines[0]
    assert all(line.endswith('{203.0.113.9} "GET /items?id=7 HTTP/1.1"') for line in lines)


def test_nginx_weighted_round_robin_exact_counts(nginx_bin: str, three_backends: Backends) -> None:
    port = free_port()
    config = nginx_config(nginx_http(three_backends, {"s1": 1, "s2": 2, "s3": 3}, port))

    with NginxProcess(config, binary=nginx_bin) as nginx:
        statuses = send(port, 600)
        access_log = (nginx.workdir / "access.log").read_text()

    assert statuses == [200] * 600
    assert three_backends.snapshot() == {"s1": 100, "s2": 200, "s3": 300}
    assert access_log.count(f"upstream={three_backends.address('s3')} ") == 300


def test_haproxy_reload_applies_new_weights(haproxy_bin: str, three_backends: Backends) -> None:
    port = free_port()
    before = haproxy_cfg(three_backends, {"s1": 1, "s2": 1, "s3": 1}, port)
    after = haproxy_cfg(three_backends, {"s1": 1, "s2": 1, "s3": 0}, port)

    with HAProxyProcess(before, binary=haproxy_bin) as haproxy:
        send(port, 90)
        workers_before = child_pids(haproxy.pid)
        counts_before = three_backends.snapshot()
        three_backends.reset()
        haproxy.reload(after)
        workers_after = child_pids(haproxy.pid)
        send(port, 90)
        counts_after = three_backends.snapshot()

    assert counts_before == {"s1": 30, "s2": 30, "s3": 30}
    assert counts_after == {"s1": 45, "s2": 45}
    assert workers_after
    assert not workers_before & workers_after


def test_haproxy_rejected_reload_keeps_running(haproxy_bin: str, three_backends: Backends) -> None:
    port = free_port()
    good = haproxy_cfg(three_backends, {"s1": 1, "s2": 1, "s3": 1}, port)
    broken = good.replace("balance roundrobin", "balance no-such-algorithm")

    with HAProxyProcess(good, binary=haproxy_bin) as haproxy:
        with pytest.raises(LabError, match="haproxy rejected the config"):
            haproxy.reload(broken)
        statuses = send(port, 30)

    assert statuses == [200] * 30
    assert three_backends.snapshot() == {"s1": 10, "s2": 10, "s3": 10}


def test_nginx_reload_applies_new_weights(nginx_bin: str, three_backends: Backends) -> None:
    port = free_port()
    before = nginx_config(nginx_http(three_backends, {"s1": 1, "s2": 1, "s3": 1}, port))
    after = nginx_config(nginx_http(three_backends, {"s1": 3, "s2": 1}, port))

    with NginxProcess(before, binary=nginx_bin) as nginx:
        send(port, 30)
        workers_before = child_pids(nginx.pid)
        counts_before = three_backends.snapshot()
        three_backends.reset()
        nginx.reload(after)
        workers_after = child_pids(nginx.pid)
        send(port, 40)
        counts_after = three_backends.snapshot()

    assert counts_before == {"s1": 10, "s2": 10, "s3": 10}
    assert counts_after == {"s1": 30, "s2": 10}
    assert workers_after
    assert not workers_before & workers_after


def test_no_process_left_behind(
    haproxy_bin: str, nginx_bin: str, three_backends: Backends
) -> None:
    haproxy_port, nginx_port = free_port(), free_port()
    haproxy = HAProxyProcess(
        haproxy_cfg(three_backends, {"s1": 1}, haproxy_port), binary=haproxy_bin
    )
    nginx = NginxProcess(
        nginx_config(nginx_http(three_backends, {"s1": 1}, nginx_port)), binary=nginx_bin
    )
    with haproxy, nginx:
        haproxy.reload()
        nginx.reload()
        pids = {haproxy.pid, nginx.pid} | child_pids(haproxy.pid) | child_pids(nginx.pid)
        workdirs = [haproxy.workdir, nginx.workdir]

    assert len(pids) >= 4
    assert not any(descendants_alive(pid) for pid in pids)
    assert not any(path.exists() for path in workdirs)
    assert not child_pids(os.getpid())


def test_haproxy_queue_timeout_gives_503_sq(haproxy_bin: str, syslog: SyslogReceiver) -> None:
    slow = BackendSpec("slow1", latency=0.4)
    with Backends([slow]) as backends:
        port = free_port()
        config = haproxy_cfg(
            backends, {"slow1": 1}, port,
            log=syslog.address, server_options="maxconn 1",
            backend_options="    timeout queue 300ms",
        )  # fmt: skip
        with HAProxyProcess(config, binary=haproxy_bin):
            statuses = send(port, 8, concurrency=8)
            syslog.wait_for_lines(8)

    log = syslog.path.read_text()
    assert statuses.count(200) >= 1
    assert statuses.count(503) >= 4
    # A request that times out in the backend queue never reached a server: <NOSRV>.
    assert re.search(r" be_app/<NOSRV> 0/\d+/-1/-1/\d+ 503 \d+ - - sQ-- ", log)


def test_backend_rejects_when_busy() -> None:
    busy = BackendSpec("b1", latency=0.3, max_concurrency=1, reject_when_busy=True)
    with Backends([busy]) as backends:
        results = TrafficGenerator(
            backends.port("b1"), [RequestSpec()], requests=4, concurrency=4
        ).run()

    statuses = sorted(r.status for r in results)
    assert statuses == [200, 503, 503, 503]
    assert all(r.server == "b1" for r in results)


def test_backend_records_hash_keys(three_backends: Backends) -> None:
    spec = RequestSpec(
        host="api.example.com", path="/v1/items", query="user=42",
        headers=(("X-User", "u-9"),), client_ip="192.0.2.44",
    )  # fmt: skip
    TrafficGenerator(three_backends.port("s2"), [spec], requests=2, concurrency=1).run()

    recorded = three_backends.requests
    assert len(recorded) == 2
    assert recorded[0].server == "s2"
    assert recorded[0].target == "/v1/items?user=42"
    assert recorded[0].header("host") == "api.example.com"
    assert recorded[0].header("x-forwarded-for") == "192.0.2.44"
    assert recorded[0].header("X-USER") == "u-9"


def test_generator_draw_is_seeded() -> None:
    mix = [RequestSpec(path=f"/{i}") for i in range(10)]

    first = TrafficGenerator(1, mix, requests=50, seed=7).draw()
    again = TrafficGenerator(1, mix, requests=50, seed=7).draw()
    other = TrafficGenerator(1, mix, requests=50, seed=8).draw()

    assert first == again
    assert first != other


def test_generator_stops_at_max_duration() -> None:
    slow = BackendSpec("slow", latency=0.2)
    with Backends([slow]) as backends:
        generator = TrafficGenerator(
            backends.port("slow"), [RequestSpec()], requests=1000, concurrency=2,
            max_duration=0.5,
        )  # fmt: skip
        results = generator.run()

    assert 0 < len(results) < 20


def test_generator_rejects_remote_host() -> None:
    with pytest.raises(LabError, match="not loopback"):
        TrafficGenerator(80, [RequestSpec()], requests=1, host="192.0.2.1")


@pytest.mark.parametrize(
    ("line", "bad"),
    [
        ("    bind :{port}", "':{port}'"),
        ("    bind 0.0.0.0:{port}", "'0.0.0.0:{port}'"),
        ("    bind 127.0.0.1:{port}\n    server x db.example.com:5432", "'db.example.com:5432'"),
        ("    bind 127.0.0.1:{port}\n    log 192.0.2.1:514 local0", "'192.0.2.1:514'"),
        (
            "    bind 127.0.0.1:{port}\n    server-template web 1-3 web.example.com:80",
            "'web.example.com:80'",
        ),
    ],
)
def test_haproxy_config_must_stay_on_loopback(
    haproxy_bin: str, line: str, bad: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    port = free_port()
    config = f"defaults\n    mode http\nlisten app\n{line.format(port=port)}\n"

    with pytest.raises(LabError) as caught:
        HAProxyProcess(config, binary=haproxy_bin)

    assert bad.format(port=port) in caught.value.message
    assert caught.value.location is not None
    assert caught.value.location.line == config.count("\n")
    assert list(tmp_path.iterdir()) == []


def test_nginx_listen_without_address_rejected(
    nginx_bin: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    config = nginx_config("    server {\n        listen 8080;\n    }\n")

    with pytest.raises(LabError, match="binds every interface") as caught:
        NginxProcess(config, binary=nginx_bin)

    listen_line = config.splitlines().index("        listen 8080;") + 1
    assert caught.value.location is not None
    assert caught.value.location.line == listen_line
    assert list(tmp_path.iterdir()) == []


def test_require_binary_skips_or_fails(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("LBGUARD_REQUIRE_PRODUCTS", raising=False)
    with pytest.raises(pytest.skip.Exception, match="no-such-lb not found"):
        require_binary("no-such-lb")

    monkeypatch.setenv("LBGUARD_REQUIRE_PRODUCTS", "1")
    with pytest.raises(pytest.fail.Exception, match="LBGUARD_REQUIRE_PRODUCTS=1"):
        require_binary("no-such-lb")
