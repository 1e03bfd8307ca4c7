"""Rules the nginx parser adds for behaviour no line states (`Rule.implicit`) are not
reported as unreachable, while a written rule in the same place still is."""

from __future__ import annotations

from pathlib import Path

from lbguard.checks import CheckContext, Finding, run_checks
from lbguard.parsers.nginx import parse_nginx
from lbguard.predict import predict

SERVER = """events {{}}

http {{
    upstream web {{
        server 10.0.0.1:80;
        server 10.0.0.2:80;
    }}

    server {{
        listen 127.0.0.1:18080;
        root /srv/www;
{fallback}
        location / {{ proxy_pass http://web; }}
        location @web {{ proxy_pass http://web; }}
    }}
}}
"""


def routing_findings(tmp_path: Path, fallback: str) -> tuple[Path, list[Finding]]:
    config = tmp_path / "nginx.conf"
    config.write_text(SERVER.format(fallback=fallback), encoding="utf-8")
    lb = parse_nginx(config)
    findings = run_checks(CheckContext.build(lb, predict(lb, None), None))
    return config, [finding for finding in findings if finding.rule_id.startswith("LB1")]


def test_static_default_after_location_root_not_reported(tmp_path: Path) -> None:
    _, findings = routing_findings(tmp_path, "")
    assert findings == []


def test_written_server_fallback_reported(tmp_path: Path) -> None:
    # A server-level try_files applies only when no location matches, and `location /`
    # matches every request.
    config, findings = routing_findings(tmp_path, "        try_files $uri @web;")
    keys = {
        (finding.rule_id, finding.location.file, finding.location.line) for finding in findings
    }
    assert keys == {("LB101", str(config), 12)}
