"""Terminal safety of config-derived text and source line reading."""

from __future__ import annotations

from pathlib import Path

from lbguard.model import Location
from lbguard.report import clean
from lbguard.report.interface import SourceLines, clean_message


def test_clean_escapes_escape_sequences() -> None:
    assert clean("be_\x1b[31mred") == "be_\\x1b[31mred"


def test_clean_escapes_carriage_return() -> None:
    assert clean("web1\rweb9") == "web1\\x0dweb9"


def test_clean_escapes_bidi_override() -> None:
    assert clean("a\u202eb") == "a\\u202eb"


def test_clean_turns_tab_into_space() -> None:
    assert clean("use_backend\tbe") == "use_backend be"


def test_clean_keeps_printable_unicode() -> None:
    assert clean("bäckend-ü") == "bäckend-ü"


def test_clean_message_keeps_line_breaks() -> None:
    message = "error: nonexist\x1b[2J.cfg\x00\n  hint: check the path"
    assert clean_message(message) == "error: nonexist\\x1b[2J.cfg\\x00\n  hint: check the path"


def test_clean_message_escapes_carriage_return() -> None:
    assert clean_message("a\r\nb") == "a\\x0d\nb"


def test_source_lines_reads_line(tmp_path: Path) -> None:
    config = tmp_path / "a.cfg"
    config.write_text("first\r\nsecond\n", encoding="utf-8")
    sources = SourceLines()
    assert sources.line(Location(str(config), 2)) == "second"
    assert sources.line(Location(str(config), 1)) == "first"


def test_source_lines_out_of_range(tmp_path: Path) -> None:
    config = tmp_path / "a.cfg"
    config.write_text("only\n", encoding="utf-8")
    sources = SourceLines()
    assert sources.line(Location(str(config), 5)) is None
    assert sources.line(Location(str(tmp_path / "missing.cfg"), 1)) is None
    assert sources.line(Location("", 0)) is None
