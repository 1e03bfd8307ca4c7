"""Check reports of real configurations, rendered by the CLI into files."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from lbguard.cli.main import main

ROOT = Path(__file__).resolve().parent.parent.parent
INCIDENT = ROOT / "examples" / "incident"

HOSTILE = (
    "defaults\n    mode http\n    timeout connect 1s\n    timeout client 1s\n"
    "    timeout server 1s\n\nfrontend fe\n    bind 127.0.0.1:18080\n"
    "    default_backend be_<img_src=x_onerror=alert(1)>\n\n"
    "backend be_<img_src=x_onerror=alert(1)>\n"
    "    server web1\x1b[2J\x1b]0;owned\x07 10.0.0.1:80 weight 10\n"
    "    server <script>alert(1)</script> 10.0.0.2:80 weight 100\n"
    "    server `|[x](http://example.invalid)|` 10.0.0.3:80 weight 10\n"
)
"""An HAProxy configuration whose names carry HTML, Markdown and terminal escapes."""

Render = Callable[..., Path]


@pytest.fixture
def render(tmp_path: Path) -> Render:
    """Return a function that runs ``lbguard check`` and returns the report file."""

    def run(config: Path, fmt: str, *extra: str) -> Path:
        output = tmp_path / f"report.{fmt}"
        main(["check", str(config), "--format", fmt, "-o", str(output), *extra])
        return output

    return run


@pytest.fixture
def hostile_config(tmp_path: Path) -> Path:
    path = tmp_path / "hostile.cfg"
    path.write_text(HOSTILE, encoding="utf-8")
    return path
