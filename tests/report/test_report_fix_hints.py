"""Fix hints follow the product of the configuration the finding is on."""

from __future__ import annotations

import json
from pathlib import Path

from report_support import Render

from lbguard.checks.balancing import OVER_FAIR_SHARE
from lbguard.checks.health import PARTIAL_HEALTH_CHECKS
from lbguard.model import Product

NGINX = """\
events {}
http {
    upstream web {
        server 127.0.0.1:9001 weight=10;
        server 127.0.0.1:9002 weight=10;
        server 127.0.0.1:9003 weight=100 max_fails=0;
    }
    server {
        listen 127.0.0.1:18080;
        location / { proxy_pass http://web; }
    }
}
"""

CAPACITY = '[capacity]\n"web/127.0.0.1:9001" = 10\n"web/127.0.0.1:9002" = 10\n'


def _nginx_hints(tmp_path: Path, render: Render) -> dict[str, str]:
    config = tmp_path / "nginx.conf"
    config.write_text(NGINX, encoding="utf-8")
    settings = tmp_path / "lbguard.toml"
    settings.write_text(CAPACITY, encoding="utf-8")
    report = json.loads(render(config, "json", "--config-file", str(settings)).read_text())
    return {finding["rule_id"]: finding["fix_hint"] for finding in report["findings"]}


def test_nginx_findings_get_nginx_fix_hints(tmp_path: Path, render: Render) -> None:
    hints = _nginx_hints(tmp_path, render)

    assert "hash-balance-factor" not in hints["LB201"]
    assert "hash $request_uri consistent" in hints["LB201"]
    assert "default-server" not in hints["LB302"]
    assert "max_fails=0" in hints["LB302"]


def test_nginx_text_report_uses_nginx_fix_hint(tmp_path: Path, render: Render) -> None:
    config = tmp_path / "nginx.conf"
    config.write_text(NGINX, encoding="utf-8")
    settings = tmp_path / "lbguard.toml"
    settings.write_text(CAPACITY, encoding="utf-8")
    text = render(config, "text", "--config-file", str(settings)).read_text()

    assert "hash-balance-factor" not in text
    assert "default-server" not in text


def test_haproxy_fix_hints_name_haproxy_keywords() -> None:
    assert "hash-balance-factor" in OVER_FAIR_SHARE.fix_hint_for(Product.HAPROXY)
    assert "default-server check" in PARTIAL_HEALTH_CHECKS.fix_hint_for(Product.HAPROXY)
