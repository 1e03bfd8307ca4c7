"""LB104 compares a nested regex location only with the prefix locations nginx tries it
against: those nested in the same location."""

from __future__ import annotations

from pathlib import Path

from lbguard.checks import CheckContext, Finding, run_checks
from lbguard.parsers.nginx import parse_nginx
from lbguard.predict import predict
from lbguard.traffic import TrafficProfile, from_columns

CONFIG = r"""events {}

http {
    upstream api { server 10.0.0.1:80; }
    upstream static { server 10.0.0.2:80; }
    upstream json { server 10.0.0.3:80; }

    server {
        listen 127.0.0.1:18080;
        location /api/ {
            proxy_pass http://api;
            location ~ \.json$ { proxy_pass http://json; }
            location /api/v1/ { proxy_pass http://api; }
        }
        location /static/ { proxy_pass http://static; }
    }
}
"""


def lb104(tmp_path: Path, profile: TrafficProfile | None) -> list[Finding]:
    config = tmp_path / "nginx.conf"
    config.write_text(CONFIG, encoding="utf-8")
    lb = parse_nginx(config)
    findings = run_checks(CheckContext.build(lb, predict(lb, profile), profile))
    return [finding for finding in findings if finding.rule_id == "LB104"]


def test_nested_regex_not_compared_with_sibling_without_traffic(tmp_path: Path) -> None:
    reasons = [finding.reason for finding in lb104(tmp_path, None)]
    assert not any("/static/" in reason for reason in reasons)
    assert not any("`location /api/`" in reason for reason in reasons)


def test_nested_regex_reports_only_nested_prefix(tmp_path: Path) -> None:
    profile = from_columns(path=["/static/a.json", "/api/v1/b.json", "/api/c"])
    findings = lb104(tmp_path, profile)
    assert [finding.location.line for finding in findings] == [12]
    assert "`location /api/v1/`" in findings[0].reason
