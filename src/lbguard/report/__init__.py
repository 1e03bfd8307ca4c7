"""Renderers of check reports: one function per output format, listed in `RENDERERS`."""

from lbguard.report.html import render_html
from lbguard.report.interface import CheckReport, Renderer, RenderOptions, clean
from lbguard.report.json_report import SCHEMA_VERSION, render_json, report_document
from lbguard.report.markdown import render_markdown
from lbguard.report.sarif import render_sarif, sarif_document
from lbguard.report.text import render_text

RENDERERS: dict[str, Renderer] = {
    "text": render_text,
    "json": render_json,
    "sarif": render_sarif,
    "markdown": render_markdown,
    "html": render_html,
}
"""Output format name (the ``--format`` choice) to its renderer."""

__all__ = [
    "RENDERERS",
    "SCHEMA_VERSION",
    "CheckReport",
    "RenderOptions",
    "Renderer",
    "clean",
    "render_html",
    "render_json",
    "render_markdown",
    "render_sarif",
    "render_text",
    "report_document",
    "sarif_document",
]
