"""Translate nginx (PCRE) regular expressions into Python ``re`` syntax."""

from __future__ import annotations

import re

_NAMED_GROUP = re.compile(r"\(\?(?:<(?![=!])([A-Za-z_]\w*)>|'([A-Za-z_]\w*)')")


def pcre_to_python(pattern: str) -> str:
    """Return ``pattern`` in Python syntax; raise ``re.error`` when Python cannot compile it.

    PCRE's ``(?<name>...)`` and ``(?'name'...)`` named groups become ``(?P<name>...)``.
    Python 3.11 ``re`` accepts the rest of the PCRE subset nginx configurations use
    (classes, lazy and possessive quantifiers, atomic groups, lookaround).
    """
    converted = _NAMED_GROUP.sub(lambda m: f"(?P<{m.group(1) or m.group(2)}>", pattern)
    re.compile(converted)
    return converted
