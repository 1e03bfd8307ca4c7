"""Small helpers for the wording of monitoring messages."""

from __future__ import annotations


def plural(count: int, noun: str, plural_form: str = "") -> str:
    """Return ``1 file``, ``2 files``: the count with the noun in the form it takes."""
    if count == 1:
        return f"{count} {noun}"
    return f"{count} {plural_form or noun + 's'}"
