"""Markdown reports for pull-request comments: content and escaping."""

from __future__ import annotations

import re
from pathlib import Path

from report_support import INCIDENT, Render

from lbguard.report.markdown import code_block, escape


def test_incident_markdown_lists_finding(render: Render) -> None:
    text = render(
        INCIDENT / "haproxy-bad.cfg", "markdown", "--traffic", str(INCIDENT / "traffic.yaml")
    ).read_text(encoding="utf-8")

    assert "### Errors (1)" in text
    assert "**LB103** `routing.concentrating-rule`" in text
    assert "haproxy-bad.cfg:40`" in text
    assert "   35 | acl path_search" in text
    assert "be\\_search" in text


def outside_code_blocks(text: str) -> str:
    """Return the Markdown without its fenced code blocks, whose content is literal."""
    return re.sub(r"^(`{3,})[^\n]*\n.*?^\1$", "", text, flags=re.MULTILINE | re.DOTALL)


def test_hostile_names_escaped(render: Render, hostile_config: Path) -> None:
    text = render(hostile_config, "markdown").read_text(encoding="utf-8")
    prose = outside_code_blocks(text)

    assert "\x1b" not in text
    assert "\x07" not in text
    assert re.search(r"(?<!\\)<script", prose) is None
    assert re.search(r"(?<!\\)<img", prose) is None
    assert re.search(r"(?<!\\)\]\(http", prose) is None
    assert "\\<script\\>" in prose
    assert "| server <script>alert(1)</script>" in text


def test_escape_defuses_markup() -> None:
    assert escape("<b>") == "\\<b\\>"
    assert escape("[x](y)") == "\\[x\\](y)"
    assert escape("a|b") == "a\\|b"
    assert escape("# title") == "\\# title"
    assert escape("1. item") == "1\\. item"
    assert escape("two\nlines") == "two lines"


def test_code_block_fence_outlasts_content() -> None:
    block = code_block(["x ```` y"])
    assert block[0] == "`````"
    assert block[-1] == "`````"
