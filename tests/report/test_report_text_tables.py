"""Text report tables: implicit routes and fair shares from capacity hints."""

from __future__ import annotations

from pathlib import Path

from report_support import Render

NGINX = """\
events {}
http {
    upstream web {
        server 127.0.0.1:9001 weight=10;
        server 127.0.0.1:9002 weight=10;
        server 127.0.0.1:9003 weight=100;
    }
    server {
        listen 127.0.0.1:18080;
        location / { proxy_pass http://web; }
    }
}
"""


def _row(text: str, needle: str) -> list[str]:
    [line] = [line for line in text.splitlines() if needle in line]
    return [cell.strip() for cell in line.split("│")[1:-1]]


def test_implicit_route_has_no_could_match(tmp_path: Path, render: Render) -> None:
    config = tmp_path / "nginx.conf"
    config.write_text(NGINX, encoding="utf-8")
    traffic = tmp_path / "traffic.yaml"
    traffic.write_text('requests: 1000\npaths: ["/a", "/b"]\n', encoding="utf-8")
    text = render(config, "text", "--traffic", str(traffic)).read_text()

    implicit = _row(text, "static files from root")
    location = _row(text, "proxy_pass http://web")
    assert implicit[-1] == "-"
    assert implicit[-2] == "0.0 %"
    assert location[-1] == "100.0 %"


def test_fair_share_column_uses_capacity_hints(tmp_path: Path, render: Render) -> None:
    config = tmp_path / "nginx.conf"
    config.write_text(NGINX, encoding="utf-8")
    settings = tmp_path / "lbguard.toml"
    settings.write_text(
        '[capacity]\n"web/127.0.0.1:9001" = 10\n"web/127.0.0.1:9002" = 10\n', encoding="utf-8"
    )
    text = render(config, "text", "--config-file", str(settings)).read_text()

    big = _row(text, "web/127.0.0.1:9003")
    small = _row(text, "web/127.0.0.1:9001")
    assert big[4] == "83.3 %"
    assert big[5] == "4.8 %"
    assert small[5] == "47.6 %"
