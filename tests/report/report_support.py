"""Paths, a hostile configuration and the report-rendering type shared by report tests."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

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
"""Runs ``lbguard check CONFIG --format FORMAT -o FILE [options]`` and returns FILE."""
