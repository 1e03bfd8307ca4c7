"""Find the line of a keyword that the model keeps no location for.

The model records one location per balancing setup (the ``balance`` line), while HAProxy
sets the hash placement on a separate ``hash-type`` line of the same section. The diff
points at that line when the file still holds it.
"""

from __future__ import annotations

from lbguard.model import Location
from lbguard.parsers.haproxy.keywords import SECTIONS


def keyword_line(section: Location, keyword: str, argument: str) -> Location | None:
    """Return the line of ``keyword`` inside the section that starts at ``section``.

    The line must also hold ``argument``, so that a file edited since the model was read
    yields None rather than a wrong line. None when the file cannot be read or the section
    does not set the keyword.
    """
    if not section.file or section.line < 1:
        return None
    try:
        with open(section.file, encoding="utf-8", errors="replace") as handle:
            lines = handle.read().splitlines()
    except OSError:
        return None

    for number in range(section.line + 1, len(lines) + 1):
        words = lines[number - 1].split()
        if not words or words[0].startswith("#"):
            continue
        if words[0] in SECTIONS:
            return None
        if words[0] == keyword and argument in words[1:]:
            return Location(section.file, number)
    return None
