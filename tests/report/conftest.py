"""Fixtures that render check reports of real configurations through the CLI."""

from __future__ import annotations

from pathlib import Path

import pytest
from report_support import HOSTILE, Render

from lbguard.cli.main import main


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
