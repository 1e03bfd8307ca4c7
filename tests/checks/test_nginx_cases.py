"""The nginx rules on the shared nginx misconfiguration cases, with their traffic."""

from __future__ import annotations

from pathlib import Path

from lbguard.checks import CheckContext, Finding, run_checks
from lbguard.parsers.nginx import parse_nginx
from lbguard.predict import predict
from lbguard.traffic import from_columns, load_profile

CASES = Path(__file__).parent.parent / "data" / "nginx" / "cases"


def audit(case: str, rule_id: str, *, clients: list[str] | None = None) -> list[Finding]:
    lb = parse_nginx(CASES / case / "nginx.conf")
    if clients is None:
        profile = load_profile(CASES / case / "case.yaml", section="traffic")
    else:
        profile = from_columns(client_ip=clients)
    findings = run_checks(CheckContext.build(lb, predict(lb, profile), profile))
    return [finding for finding in findings if finding.rule_id == rule_id]


def test_regex_location_takes_api_requests() -> None:
    [finding] = audit("nginx-regex-location-wins", "LB104")
    assert finding.location.line == 16
    assert "60.0 % of the requests under it" in finding.reason
    assert "location /api/" in finding.reason


def test_ip_hash_one_subnet() -> None:
    [finding] = audit("nginx-ip-hash-one-subnet", "LB206")
    assert finding.location.line == 4
    assert "100.0 % of its requests" in finding.reason
    assert "127.0.0.0/24" in finding.reason


def test_ip_hash_many_subnets_quiet() -> None:
    clients = [f"10.{i}.{j}.1" for i in range(10) for j in range(10)]
    assert audit("nginx-ip-hash-one-subnet", "LB206", clients=clients) == []
