"""nginx parser on awkward input: unknown directives, odd include targets, deep nesting,
implicit rules, and the messages each gives, checked against ``nginx -t`` where it can."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import httpx
import pytest

from lbguard.lab import NginxProcess, free_port, nginx_config
from lbguard.model import ActionKind, LoadBalancer, Severity
from lbguard.parsers.nginx import parse_nginx
from lbguard.parsers.nginx.files import MAX_BLOCK_DEPTH
from lbguard.predict import predict
from lbguard.predict.routing import local_target

from .conftest import CORPUS, chosen_rules


def _write(tmp_path: Path, text: str, name: str = "nginx.conf") -> Path:
    path = tmp_path / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


def _diagnostics(lb: LoadBalancer, code: str) -> list[tuple[Severity, int, str]]:
    return [(d.severity, d.location.line, d.message) for d in lb.diagnostics if d.code == code]


def _nginx_test(nginx_bin: str, config: Path, workdir: Path) -> str:
    """Return what ``nginx -t`` prints for ``config``, with the lab's private paths."""
    command = [nginx_bin, "-p", f"{workdir}/", "-e", str(workdir / "error.log")]
    command += ["-g", f"pid {workdir / 'nginx.pid'};", "-t", "-c", str(config)]
    result = subprocess.run(
        command,
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    return result.stderr


# --------------------------------------------------------------------------------------
# Unknown directives and syntax errors, in nginx's wording


UNKNOWN = """events {}
http {
    foo_bar on;
    upstream app {
        server 127.0.0.1:9001;
        check interval=5000 rise=1 fall=3 timeout=4000;
    }
    server {
        listen 127.0.0.1:8080;
        location / { proxy_pass http://app; }
    }
}
"""


def test_unknown_directives_are_errors(tmp_path: Path) -> None:
    lb = parse_nginx(_write(tmp_path, UNKNOWN))
    assert _diagnostics(lb, "unknown-directive") == [
        (Severity.ERROR, 3, 'unknown directive "foo_bar"'),
        (Severity.ERROR, 6, 'unknown directive "check"'),
    ]
    hints = [d.hint for d in lb.diagnostics if d.code == "unknown-directive"]
    assert all("stock NGINX 1.22" in hint for hint in hints)


def test_unknown_directives_keep_the_rest(tmp_path: Path) -> None:
    lb = parse_nginx(_write(tmp_path, UNKNOWN))
    pool = lb.pool("app")
    assert pool is not None
    assert [server.name for server in pool.servers] == ["127.0.0.1:9001"]
    [rule] = chosen_rules(lb, "127.0.0.1:8080", ["localhost"], ["/x"])
    assert rule is not None
    assert rule.action.pool == "app"


@pytest.mark.lab
def test_unknown_directive_matches_nginx_t(tmp_path: Path, nginx_bin: str) -> None:
    config = _write(tmp_path, UNKNOWN)
    assert f'unknown directive "foo_bar" in {config}:3' in _nginx_test(nginx_bin, config, tmp_path)


def test_upstream_check_module_corpus() -> None:
    lb = parse_nginx(CORPUS / "upstream-check-module-readme-synopsis.conf")
    assert _diagnostics(lb, "unknown-directive") == [
        (Severity.ERROR, 9, 'unknown directive "check"'),
        (Severity.ERROR, 26, 'unknown directive "check_status"'),
    ]
    pool = lb.pool("cluster")
    assert pool is not None
    assert len(pool.servers) == 2


def test_lua_block_directive_is_warning() -> None:
    lb = parse_nginx(CORPUS / "openresty-balancer-by-lua-placeholder.conf")
    found = _diagnostics(lb, "unknown-directive")
    assert (Severity.WARNING, 5, 'unknown directive "balancer_by_lua_block"') in found
    assert (Severity.ERROR, 39, 'unknown directive "echo"') in found


def test_directives_inside_types_are_not_checked(tmp_path: Path) -> None:
    path = _write(tmp_path, "events {}\nhttp {\n    types { text/html html; }\n}\n")
    assert _diagnostics(parse_nginx(path), "unknown-directive") == []


HAPROXY_TEXT = """global
    maxconn 100
frontend fe
    bind :8080
    default_backend be
backend be
    server s1 127.0.0.1:9001
"""


def test_end_of_file_has_reason_and_line(tmp_path: Path) -> None:
    lb = parse_nginx(_write(tmp_path, HAPROXY_TEXT, "haproxy.cfg"))
    errors = [(d.location.line, d.message) for d in lb.diagnostics]
    assert errors == [(8, 'unexpected end of file, expecting ";" or "}"')]


@pytest.mark.lab
def test_end_of_file_matches_nginx_t(tmp_path: Path, nginx_bin: str) -> None:
    config = _write(tmp_path, HAPROXY_TEXT, "haproxy.cfg")
    expected = f'unexpected end of file, expecting ";" or "}}" in {config}:8'
    assert expected in _nginx_test(nginx_bin, config, tmp_path)


def _nested(levels: int) -> str:
    lines = ["events {}", "http {", "  upstream u { server 127.0.0.1:9001; }", "  server {"]
    lines += ["    listen 8080;"]
    lines += [f"    location /{i} {{" for i in range(levels)]
    lines += ["    }"] * levels
    lines += ["  }", "}"]
    return "\n".join(lines) + "\n"


# The block that would open level MAX_BLOCK_DEPTH + 1: http and server take two levels,
# and the first location is on line 6.
DEEP_LINE = 6 + MAX_BLOCK_DEPTH - 2


@pytest.mark.parametrize("levels", [MAX_BLOCK_DEPTH + 50, 1000])
def test_deep_nesting_reported_by_name(tmp_path: Path, levels: int) -> None:
    lb = parse_nginx(_write(tmp_path, _nested(levels)))
    [error] = [d for d in lb.diagnostics if d.severity is Severity.ERROR]
    assert error.message == f"blocks nested deeper than {MAX_BLOCK_DEPTH} levels"
    assert error.location.line == DEEP_LINE
    assert "recursion" not in error.hint


def test_deep_nesting_keeps_what_it_can(tmp_path: Path) -> None:
    lb = parse_nginx(_write(tmp_path, _nested(MAX_BLOCK_DEPTH + 50)))
    assert lb.pool("u") is not None


# --------------------------------------------------------------------------------------
# Include targets that are not configuration files


def _include(tmp_path: Path, target: str) -> LoadBalancer:
    text = (
        f"events {{}}\nhttp {{\n    include {target};\n"
        "    upstream kept { server 127.0.0.1:9001; }\n}\n"
    )
    return parse_nginx(_write(tmp_path, text))


def _include_errors(lb: LoadBalancer) -> list[tuple[int, str]]:
    return [(d.location.line, d.message) for d in lb.diagnostics if d.code == "include"]


@pytest.mark.parametrize(
    ("target", "expected"),
    [
        ("/dev/zero", "/dev/zero is not a regular file but a character device"),
        (
            "/proc/self/status",
            "/proc/self/status is not a regular file but a pseudo-file of /proc",
        ),
    ],
)
def test_include_of_special_file(tmp_path: Path, target: str, expected: str) -> None:
    lb = _include(tmp_path, target)
    assert _include_errors(lb) == [(3, expected)]
    assert lb.pool("kept") is not None


def test_include_of_fifo(tmp_path: Path) -> None:
    fifo = tmp_path / "fifo.conf"
    os.mkfifo(fifo)
    lb = _include(tmp_path, "fifo.conf")
    assert _include_errors(lb) == [(3, f"{fifo} is not a regular file but a fifo")]


def test_include_of_symlink_loop(tmp_path: Path) -> None:
    (tmp_path / "a.conf").symlink_to(tmp_path / "b.conf")
    (tmp_path / "b.conf").symlink_to(tmp_path / "a.conf")
    lb = _include(tmp_path, "a.conf")
    message = f'open() "{tmp_path}/a.conf" failed (40: Too many levels of symbolic links)'
    assert _include_errors(lb) == [(3, message)]


def test_include_of_huge_file(tmp_path: Path) -> None:
    huge = tmp_path / "huge.conf"
    with huge.open("wb") as handle:
        handle.truncate(65 * 1024 * 1024)
    lb = _include(tmp_path, "huge.conf")
    [(line, message)] = _include_errors(lb)
    assert line == 3
    assert message.startswith(f"{huge} is larger than the 64 MiB limit")


def test_main_file_fifo_is_reported(tmp_path: Path) -> None:
    fifo = tmp_path / "nginx.conf"
    os.mkfifo(fifo)
    lb = parse_nginx(fifo)
    assert _include_errors(lb) == [(0, f"{fifo} is not a regular file but a fifo")]


# --------------------------------------------------------------------------------------
# Absolute includes and globs


def _conf_d(tmp_path: Path) -> Path:
    _write(tmp_path, "upstream app { server 127.0.0.1:9001; }\n", "conf.d/app.conf")
    return _write(
        tmp_path,
        "events {}\nhttp {\n    include /etc/nginx/mime.types;\n"
        "    include /etc/nginx/conf.d/*.conf;\n}\n",
    )


def test_absolute_include_outside_folder_is_skipped(tmp_path: Path) -> None:
    lb = parse_nginx(_conf_d(tmp_path))
    assert lb.files == (str(tmp_path / "nginx.conf"),)
    skipped = _diagnostics(lb, "include-skipped")
    assert [(severity, line) for severity, line, _ in skipped] == [
        (Severity.INFO, 3),
        (Severity.INFO, 4),
    ]
    assert 'include "/etc/nginx/conf.d/*.conf" not read' in skipped[1][2]


def test_skipped_include_hint_names_prefix_map(tmp_path: Path) -> None:
    lb = parse_nginx(_conf_d(tmp_path))
    hints = [d.hint for d in lb.diagnostics if d.code == "include-skipped"]
    assert "--prefix-map /etc/nginx/=DIR" in hints[0]
    assert "--prefix-map /etc/nginx/=/etc/nginx/" in hints[0]
    assert hints[1] == f"pass --prefix-map /etc/nginx/={tmp_path}/ to read it from here"


def test_mapped_absolute_include_is_read(tmp_path: Path) -> None:
    lb = parse_nginx(_conf_d(tmp_path), prefix_map={"/etc/nginx/": str(tmp_path)})
    assert str(tmp_path / "conf.d" / "app.conf") in lb.files
    assert lb.pool("app") is not None
    missing = [d for d in lb.diagnostics if d.code == "include"]
    assert [d.location.line for d in missing] == [3]
    assert "--prefix-map sends it to" in missing[0].hint


def test_absolute_include_inside_folder_is_read(tmp_path: Path) -> None:
    _write(tmp_path, "upstream app { server 127.0.0.1:9001; }\n", "conf.d/app.conf")
    path = _write(tmp_path, f"events {{}}\nhttp {{\n    include {tmp_path}/conf.d/*.conf;\n}}\n")
    lb = parse_nginx(path)
    assert lb.pool("app") is not None
    assert _diagnostics(lb, "include-skipped") == []


def test_empty_include_glob_is_info(tmp_path: Path) -> None:
    lb = _include(tmp_path, "custom.d/*.conf")
    assert _diagnostics(lb, "include") == [
        (Severity.INFO, 3, 'include "custom.d/*.conf" matches no file')
    ]


def test_swarm_demo_says_why_nothing_is_read() -> None:
    lb = parse_nginx(CORPUS / "nginx-demos-swarm" / "nginx.conf")
    lines = [line for _, line, _ in _diagnostics(lb, "include-skipped")]
    assert lines == [12, 25]
    assert lb.pools == ()


def test_unresolved_host_hint_names_cli_option(tmp_path: Path) -> None:
    path = _write(tmp_path, "events {}\nhttp { upstream u { server backend.internal:80; } }\n")
    [hint] = [d.hint for d in parse_nginx(path).diagnostics if d.code == "unresolved"]
    assert "--resolve backend.internal=IP[,IP]" in hint


# --------------------------------------------------------------------------------------
# Rules the parser adds


TWO_SERVERS = """events {}
http {
    upstream app { server 127.0.0.1:9001; }
    server {
        listen 127.0.0.1:8080;
        server_name a.test;
        location / { proxy_pass http://app; }
    }
    server {
        listen 127.0.0.1:8080;
        server_name b.test;
        location /app/ { proxy_pass http://app; }
    }
}
"""


def test_static_fallback_is_last_and_implicit(tmp_path: Path) -> None:
    lb = parse_nginx(_write(tmp_path, TWO_SERVERS))
    frontend = lb.frontend("127.0.0.1:8080")
    assert frontend is not None
    last = frontend.rules[-1]
    assert last.implicit
    assert last.condition is None
    assert local_target(last) == "static files from root"


def test_only_parser_rules_are_implicit(tmp_path: Path) -> None:
    lb = parse_nginx(_write(tmp_path, TWO_SERVERS))
    frontend = lb.frontend("127.0.0.1:8080")
    assert frontend is not None
    implicit = [(rule.location.line, rule.action.kind) for rule in frontend.rules if rule.implicit]
    # a.test is the default server, so its rules come again, unconditionally, at the end.
    assert implicit == [
        (4, ActionKind.RETURN),
        (12, ActionKind.REDIRECT),
        (9, ActionKind.RETURN),
        (4, ActionKind.RETURN),
    ]
    explicit = [rule.location.line for rule in frontend.rules if not rule.implicit]
    assert explicit == [7, 12, 7]


def test_rule_text_is_relative_to_config_folder(tmp_path: Path) -> None:
    lb = parse_nginx(_write(tmp_path, TWO_SERVERS).resolve())
    frontend = lb.frontend("127.0.0.1:8080")
    assert frontend is not None
    assert frontend.rules[-1].text == "server a.test: server at nginx.conf:4: no location matches"
    assert all(str(tmp_path) not in rule.text for rule in frontend.rules)


def test_no_default_route_after_catch_all(tmp_path: Path) -> None:
    prediction = predict(parse_nginx(_write(tmp_path, TWO_SERVERS)))
    assert [rule.index for rule in prediction.rules if rule.rule is None] == []
    assert "503" not in [rule.target for rule in prediction.rules]


STATIC_ROOT = """
server {
    listen 127.0.0.1:@PORT@;
    root @WORKDIR@/www;
    location /api/ { return 200 "api"; }
}
"""


@pytest.mark.lab
def test_unmatched_request_is_served_from_root(tmp_path: Path, nginx_bin: str) -> None:
    port = free_port()
    config = nginx_config(STATIC_ROOT.replace("@PORT@", str(port)))
    with NginxProcess(config, binary=nginx_bin) as nginx:
        (nginx.workdir / "www").mkdir()
        (nginx.workdir / "www" / "hello.txt").write_text("from disk")
        lb = parse_nginx(nginx.config_path)
        with httpx.Client(timeout=5.0) as client:
            response = client.get(f"http://127.0.0.1:{port}/hello.txt")
    assert response.text == "from disk"
    [rule] = chosen_rules(lb, f"127.0.0.1:{port}", ["localhost"], ["/hello.txt"])
    assert rule is not None
    assert rule.implicit
    assert local_target(rule) == "static files from root"


# --------------------------------------------------------------------------------------
# Health overrides and notes


DUPLICATES = """events {}
http {
    upstream app {
        zone app 64k;
        server 127.0.0.1:9001;
        server 127.0.0.1:9002;
        server 127.0.0.1:9002;
    }
    server { listen 8080; location / { proxy_pass http://app; } }
}
"""


def _pool_shares(lb: LoadBalancer, down: str) -> dict[str, float]:
    prediction = predict(lb, health={down: False})
    pool = prediction.pool("app")
    assert pool is not None
    return {server.server: server.share_of_pool for server in pool.servers}


def test_down_plain_name_marks_duplicates(tmp_path: Path) -> None:
    lb = parse_nginx(_write(tmp_path, DUPLICATES))
    shares = _pool_shares(lb, "app/127.0.0.1:9002")
    assert shares == {"127.0.0.1:9001": 1.0, "127.0.0.1:9002": 0.0, "127.0.0.1:9002#2": 0.0}


def test_down_numbered_name_marks_one(tmp_path: Path) -> None:
    lb = parse_nginx(_write(tmp_path, DUPLICATES))
    shares = _pool_shares(lb, "app/127.0.0.1:9002#2")
    assert shares["127.0.0.1:9002#2"] == 0.0
    assert shares["127.0.0.1:9002"] == pytest.approx(0.5)


@pytest.mark.parametrize(
    ("method", "noted"),
    [
        ("", True),
        ("least_conn;", True),
        ("hash $request_uri consistent;", False),
        ("ip_hash;", False),
    ],
)
def test_no_zone_note_only_for_round_robin(tmp_path: Path, method: str, noted: bool) -> None:
    text = (
        "events {}\nhttp {\n    upstream app {\n"
        f"        {method}\n        server 127.0.0.1:9001;\n        server 127.0.0.1:9002;\n"
        "    }\n    server { listen 8080; location / { proxy_pass http://app; } }\n}\n"
    )
    pool = predict(parse_nginx(_write(tmp_path, text))).pool("app")
    assert pool is not None
    assert any(note.startswith("no zone") for note in pool.notes) is noted
