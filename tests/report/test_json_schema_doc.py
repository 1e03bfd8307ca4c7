"""docs/json-schema.md names the rule families as the registry has them."""

from __future__ import annotations

import re
from pathlib import Path

from lbguard.checks.registry import RULES

DOC = Path(__file__).resolve().parent.parent.parent / "docs" / "json-schema.md"


def test_family_list_marks_families_without_rules_reserved() -> None:
    text = DOC.read_text(encoding="utf-8")
    section = text.split("## `rules[]`", 1)[1].split("\n## ", 1)[0]
    listed = set(re.findall(r"`([a-z]+)`", section.split("default `severity`", 1)[0]))
    used = {str(rule.family) for rule in RULES}

    assert used <= listed
    for family in listed - used - {"id", "name", "family"}:
        assert f"`{family}` is reserved" in section
