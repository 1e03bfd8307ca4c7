"""The nginx prediction and LB206 use the client address the realip module sets, so a
trusted proxy in front of ip_hash is not mistaken for one client."""

from __future__ import annotations

from pathlib import Path

from lbguard.checks import CheckContext, Finding, run_checks
from lbguard.parsers.nginx import parse_nginx
from lbguard.predict import predict
from lbguard.predict.result import Prediction
from lbguard.traffic import TrafficProfile, from_columns

CONFIG = """events {{}}

http {{
{realip}
    upstream app {{
        ip_hash;
        server 10.0.0.1:80;
        server 10.0.0.2:80;
    }}

    server {{
        listen 127.0.0.1:18080;
        location / {{ proxy_pass http://app; }}
    }}
}}
"""

REALIP = "    set_real_ip_from 203.0.113.0/24;\n    real_ip_header X-Forwarded-For;"

FORWARDED = [
    "198.51.100.7, 10.1.1.1",
    "10.1.1.2",
    "10.1.2.3",
    "10.1.3.4",
    "10.1.4.5",
    "10.1.5.6",
    "10.1.6.7",
    "10.1.6.8",
]


def profile() -> TrafficProfile:
    return from_columns(
        client_ip=["203.0.113.10"] * len(FORWARDED),
        headers={"X-Forwarded-For": FORWARDED},
    )


def audit(tmp_path: Path, realip: str) -> tuple[Prediction, list[Finding]]:
    config = tmp_path / "nginx.conf"
    config.write_text(CONFIG.format(realip=realip), encoding="utf-8")
    lb = parse_nginx(config)
    traffic = profile()
    prediction = predict(lb, traffic)
    return prediction, run_checks(CheckContext.build(lb, prediction, traffic))


def pool_shares(prediction: Prediction) -> list[float]:
    pool = prediction.pool("app")
    assert pool is not None
    return sorted(server.share_of_pool for server in pool.servers)


def rule_ids(findings: list[Finding]) -> set[str]:
    return {finding.rule_id for finding in findings}


def test_trusted_proxy_hashes_forwarded_clients(tmp_path: Path) -> None:
    prediction, findings = audit(tmp_path, REALIP)
    shares = pool_shares(prediction)
    assert shares[0] > 0.0
    assert "LB206" not in rule_ids(findings)
    assert "LB201" not in rule_ids(findings)


def test_without_realip_the_proxy_is_one_client(tmp_path: Path) -> None:
    prediction, findings = audit(tmp_path, "")
    shares = pool_shares(prediction)
    assert shares == [0.0, 1.0]
    assert "LB206" in rule_ids(findings)
