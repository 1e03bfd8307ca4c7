"""nginx findings: each has a case that fires and a case that stays quiet."""

from __future__ import annotations

from pathlib import Path

from lbguard.parsers.nginx import parse_nginx
from lbguard.parsers.nginx.findings import nginx_findings
from lbguard.traffic import from_columns, load_profile

from .conftest import CASES


def _codes(findings: list) -> list[tuple[str, int]]:  # type: ignore[type-arg]
    return [(f.code, f.location.line) for f in findings]


def test_regex_location_capture_case() -> None:
    case = CASES / "nginx-regex-location-wins"
    lb = parse_nginx(case / "nginx.conf")
    findings = nginx_findings(lb, load_profile(case / "case.yaml", section="traffic"))
    assert _codes(findings) == [("nginx-regex-captures-prefix", 16)]
    assert "60.0% of requests under it" in findings[0].message
    assert "location ^~ /api/" in findings[0].hint


def test_regex_under_caret_prefix_is_quiet(tmp_path: Path) -> None:
    path = tmp_path / "nginx.conf"
    path.write_text(
        "events {}\nhttp { upstream a { server 10.0.0.1:80; }\n"
        "server { listen 80; location ^~ /api/ { proxy_pass http://a; }\n"
        "location ~ ^/static/ { return 200; } } }\n"
    )
    assert nginx_findings(parse_nginx(path)) == []


def test_ip_hash_one_subnet_case() -> None:
    case = CASES / "nginx-ip-hash-one-subnet"
    lb = parse_nginx(case / "nginx.conf")
    findings = nginx_findings(lb, load_profile(case / "case.yaml", section="traffic"))
    assert _codes(findings) == [("nginx-hash-few-subnets", 4)]
    assert "100.0% of requests come from 127.0.0.0/24" in findings[0].message


def test_ip_hash_many_subnets_is_quiet() -> None:
    lb = parse_nginx(CASES / "nginx-ip-hash-one-subnet" / "nginx.conf")
    clients = [f"10.{i}.{j}.1" for i in range(10) for j in range(10)]
    assert nginx_findings(lb, from_columns(client_ip=clients)) == []


def test_hash_not_consistent_and_backup(tmp_path: Path) -> None:
    path = tmp_path / "nginx.conf"
    path.write_text(
        "events {}\nhttp {\nupstream a {\nserver 10.0.0.1:80 backup;\n"
        "server 10.0.0.2:80;\nhash $request_uri;\n}\n"
        "upstream b { hash $request_uri consistent; server 10.0.0.3:80;\n"
        "server 10.0.0.4:80; }\n}\n"
    )
    findings = nginx_findings(parse_nginx(path))
    assert sorted(_codes(findings)) == [
        ("nginx-backup-in-hash-pool", 4),
        ("nginx-hash-not-consistent", 6),
    ]
