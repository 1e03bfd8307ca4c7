"""The HTML report: content, escaping, and what headless Chromium renders from it."""

from __future__ import annotations

import subprocess
from html.parser import HTMLParser
from pathlib import Path

from report_support import INCIDENT, Render

from lbguard.lab.testing import require_binary


class Elements(HTMLParser):
    """Collect tags with their attributes, and the text, of an HTML document."""

    def __init__(self) -> None:
        super().__init__()
        self.tags: list[tuple[str, dict[str, str | None]]] = []
        self.text: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append((tag, dict(attrs)))

    def handle_data(self, data: str) -> None:
        self.text.append(data)

    def named(self, tag: str) -> list[dict[str, str | None]]:
        return [attrs for name, attrs in self.tags if name == tag]


def parse(html: str) -> Elements:
    parser = Elements()
    parser.feed(html)
    return parser


def chromium_dom(page: Path, tmp_path: Path) -> str:
    """Return the DOM that headless Chromium builds from a local page."""
    binary = require_binary("chromium")
    completed = subprocess.run(
        [
            binary, "--headless", "--no-sandbox", "--disable-gpu",
            "--disable-background-networking", "--disable-component-update", "--disable-sync",
            "--no-first-run", f"--user-data-dir={tmp_path / 'profile'}", "--dump-dom",
            page.as_uri(),
        ],
        capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    assert completed.returncode == 0, completed.stderr[-2000:]
    return completed.stdout


def incident_page(render: Render) -> Path:
    return render(
        INCIDENT / "haproxy-bad.cfg", "html", "--traffic", str(INCIDENT / "traffic.yaml")
    )


def test_html_chart_has_bar_per_server(render: Render) -> None:
    page = parse(incident_page(render).read_text(encoding="utf-8"))
    bars = {attrs["data-server"]: attrs["data-share"] for attrs in page.named("g")}

    assert len(bars) == 21
    assert float(bars["be_search/search1"] or 0) > 0.23
    assert float(bars["be_api/api1"] or 0) == 0.0
    assert page.named("line")


def test_html_loads_nothing_external(render: Render) -> None:
    page = parse(incident_page(render).read_text(encoding="utf-8"))
    assert page.named("script") == []
    assert page.named("link") == []
    assert all(not (attrs.get("src") or "") for _, attrs in page.tags)


def test_chromium_renders_incident(render: Render, tmp_path: Path) -> None:
    dom = parse(chromium_dom(incident_page(render), tmp_path))
    findings = dom.named("article")
    text = "".join(dom.text)

    assert [attrs["data-rule"] for attrs in findings] == ["LB103", "LB101"]
    assert findings[0]["data-line"] == "40"
    assert len(dom.named("rect")) == 21
    assert "use_backend be_search  if path_search" in text
    assert len(dom.named("tr")) > 8


def test_chromium_keeps_hostile_names_as_text(
    render: Render, hostile_config: Path, tmp_path: Path
) -> None:
    page = render(hostile_config, "html")
    raw = page.read_text(encoding="utf-8")
    dom = parse(chromium_dom(page, tmp_path))
    text = "".join(dom.text)

    assert "\x1b" not in raw
    assert "\x07" not in raw
    assert dom.named("script") == []
    assert dom.named("img") == []
    assert "<script>alert(1)</script>" in text
    assert "be_<img_src=x_onerror=alert(1)>" in text


def test_html_states_missing_profile_once(render: Render) -> None:
    page = render(INCIDENT / "haproxy-bad.cfg", "html").read_text(encoding="utf-8")
    [summary] = [line for line in page.splitlines() if line.startswith("Traffic: ")]
    assert summary.count("no traffic profile") == 1
