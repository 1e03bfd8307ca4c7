"""server_name and location precedence: compiled rules against a table and real nginx."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest

from lbguard.lab import NginxProcess, free_port, nginx_config
from lbguard.parsers.nginx import parse_nginx

from .conftest import chosen_rules, label

LOCATIONS = """
server {
    listen 127.0.0.1:@PORT@;
    location = / { return 200 "exact-root"; }
    location / { return 200 "root"; }
    location /docs/ {
        return 200 "docs";
        location /docs/api/ { return 200 "docs-api"; }
        location ~ \\.pdf$ { return 200 "docs-pdf"; }
    }
    location ^~ /static/ { return 200 "static"; }
    location /static/img/ { return 200 "static-img"; }
    location ~ \\.(png|jpg)$ { return 200 "images"; }
    location ~* \\.PHP$ { return 200 "php"; }
    location ~ ^/api { return 200 "api-regex"; }
    location /api/v1/ { return 200 "api-v1"; }
    location ^~ /api/v2/ { return 200 "api-v2"; }
    location = /api { return 200 "api-exact"; }
    location /app/ { proxy_pass http://127.0.0.1:@DEAD@; }
}
"""

LOCATION_TABLE = [
    ("/", "exact-root"),
    ("/index.html", "root"),
    ("/docs/", "docs"),
    ("/docs/api/x", "docs-api"),
    ("/docs/a.pdf", "docs-pdf"),
    ("/docs/api/b.pdf", "docs-pdf"),
    ("/docs/a.png", "images"),
    ("/static/a.png", "static"),
    ("/static/img/a.png", "images"),
    ("/static/img/a.txt", "static-img"),
    ("/x/index.php", "php"),
    ("/x/INDEX.PHP", "php"),
    ("/api", "api-exact"),
    ("/api/x", "api-regex"),
    ("/api/v1/x", "api-regex"),
    ("/api/v2/x.png", "api-v2"),
    ("/app", "301"),
    ("/app/x", "proxy"),
    ("/apple", "root"),
    ("/API/x", "root"),
]

SERVER_NAMES = """
server { listen 127.0.0.1:@PORT@; server_name _; return 200 "first"; }
server { listen 127.0.0.1:@PORT@ default_server; server_name default.test;
         return 200 "default"; }
server { listen 127.0.0.1:@PORT@; server_name example.com www.example.com;
         return 200 "exact"; }
server { listen 127.0.0.1:@PORT@; server_name *.example.com; return 200 "head"; }
server { listen 127.0.0.1:@PORT@; server_name *.api.example.com; return 200 "head-long"; }
server { listen 127.0.0.1:@PORT@; server_name .example.org; return 200 "dot-org"; }
server { listen 127.0.0.1:@PORT@; server_name www.example.*; return 200 "tail"; }
server { listen 127.0.0.1:@PORT@; server_name ~^(?<sub>\\w+)\\.regex\\.test$;
         return 200 "regex-first"; }
server { listen 127.0.0.1:@PORT@; server_name ~^a\\.regex\\.test$; return 200 "regex-second"; }
server { listen 127.0.0.1:@PORT@; server_name ~^www\\.example\\.net$; return 200 "regex-www"; }
"""

SERVER_NAME_TABLE = [
    ("example.com", "exact"),
    ("EXAMPLE.com", "exact"),
    ("example.com:8080", "exact"),
    ("www.example.com", "exact"),
    ("a.example.com", "head"),
    ("x.api.example.com", "head-long"),
    ("example.org", "dot-org"),
    ("a.b.example.org", "dot-org"),
    ("www.example.net", "tail"),
    ("a.regex.test", "regex-first"),
    ("unknown.test", "default"),
    ("default.test", "default"),
]


def _write(tmp_path: Path, http_block: str, port: int) -> Path:
    text = http_block.replace("@PORT@", str(port)).replace("@DEAD@", str(free_port()))
    path = tmp_path / "nginx.conf"
    path.write_text(nginx_config(text).replace("@WORKDIR@", str(tmp_path)))
    return path


@pytest.mark.parametrize(("path", "expected"), LOCATION_TABLE)
def test_location_precedence(tmp_path: Path, path: str, expected: str) -> None:
    lb = parse_nginx(_write(tmp_path, LOCATIONS, 8080))
    [rule] = chosen_rules(lb, "127.0.0.1:8080", ["localhost"], [path])
    assert label(rule) == expected


@pytest.mark.parametrize(("host", "expected"), SERVER_NAME_TABLE)
def test_server_name_precedence(tmp_path: Path, host: str, expected: str) -> None:
    lb = parse_nginx(_write(tmp_path, SERVER_NAMES, 8080))
    [rule] = chosen_rules(lb, "127.0.0.1:8080", [host], ["/"])
    assert label(rule) == expected


def _answer(response: httpx.Response) -> str:
    if response.status_code == 200:
        return response.text
    if response.status_code in (301, 302):
        return str(response.status_code)
    if response.status_code == 502:
        return "proxy"
    return f"status {response.status_code}"


@pytest.mark.lab
def test_precedence_matches_real_nginx(tmp_path: Path, nginx_bin: str) -> None:
    location_port, name_port = free_port(), free_port()
    block = (
        LOCATIONS.replace("@PORT@", str(location_port))
        + SERVER_NAMES.replace("@PORT@", str(name_port)).replace("@DEAD@", str(free_port()))
    ).replace("@DEAD@", str(free_port()))
    config = nginx_config(block)
    with NginxProcess(config, binary=nginx_bin) as nginx:
        lb = parse_nginx(nginx.config_path)
        paths = [path for path, _ in LOCATION_TABLE]
        hosts = [host for host, _ in SERVER_NAME_TABLE]
        with httpx.Client(timeout=5.0, follow_redirects=False) as client:
            real_paths = [
                _answer(client.get(f"http://127.0.0.1:{location_port}{p}")) for p in paths
            ]
            real_hosts = [
                _answer(client.get(f"http://127.0.0.1:{name_port}/", headers={"Host": h}))
                for h in hosts
            ]
    modelled_paths = [
        label(r)
        for r in chosen_rules(lb, f"127.0.0.1:{location_port}", ["localhost"] * len(paths), paths)
    ]
    modelled_hosts = [
        label(r) for r in chosen_rules(lb, f"127.0.0.1:{name_port}", hosts, ["/"] * len(hosts))
    ]
    assert modelled_paths == real_paths
    assert modelled_hosts == real_hosts
    assert real_paths == [expected for _, expected in LOCATION_TABLE]
    assert real_hosts == [expected for _, expected in SERVER_NAME_TABLE]
