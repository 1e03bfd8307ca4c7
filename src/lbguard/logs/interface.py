"""The log-format extension point: a format is declared as data plus SQL fragments.

The reading engine runs the fragments inside one DuckDB query per file, so parsing stays
vectorised. Python only looks at single lines to detect the format of a file.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field


@dataclass(frozen=True)
class ParseOptions:
    """Settings that change how a format reads its lines."""

    timezone: str = "UTC"
    """IANA zone of timestamps that carry no zone of their own (HAProxy dates)."""

    nginx_log_format: str | None = None
    """Text of an nginx ``log_format`` to compile, for the ``nginx`` format."""

    field_map: Mapping[str, str] = field(default_factory=dict)
    """Column name to JSON key (dotted for nested keys), for the ``json`` format."""


@dataclass(frozen=True)
class Check:
    """A condition that keeps a line out of the table, with the reason reported."""

    condition: str
    """SQL boolean over the parsed columns, the ``f`` struct and ``line``."""

    reason: str
    """Reason the line was not read, shown with the malformed-line samples."""

    skipped: bool = False
    """True for lines that are valid but hold no request (startup events, error-log
    lines); they are counted as skipped instead of malformed."""


@dataclass(frozen=True)
class ParsePlan:
    """SQL fragments that turn the ``line`` column into request columns."""

    extracts: tuple[tuple[str, str], ...]
    """(alias, expression) pairs computed once per line, in order; later expressions may
    use earlier aliases (DuckDB lateral column aliases)."""

    columns: Mapping[str, str]
    """Request column name to SQL expression; missing columns become NULL."""

    checks: tuple[Check, ...]
    """Conditions tried in order; the first one that is true decides the line's fate."""


@dataclass(frozen=True)
class ShapePlan:
    """SQL fragments that read the most common shape of a format's lines in less work.

    The engine runs them before the full `ParsePlan`: lines for which ``accept`` is true
    take ``columns``, and every other line goes through the full plan. ``accept`` must
    be true only for lines that the full plan reads into exactly the same values, and every
    expression must be free of errors on any text, because all of them are computed for
    every line (use ``try_cast``, ``try_strptime``).
    """

    extracts: tuple[tuple[str, str], ...]
    """(alias, expression) pairs computed once per line, in order, as in `ParsePlan`."""

    columns: Mapping[str, str]
    """Request column name to SQL expression; missing columns become NULL."""

    accept: str
    """SQL boolean over ``line``, the aliases and the columns: the line has the common
    shape. NULL counts as false."""


@dataclass(frozen=True)
class LogFormat:
    """One access-log format that lbguard can detect and read."""

    name: str
    """Value of ``--log-format``."""

    description: str
    """One line for ``--help``."""

    detect: Callable[[str], bool]
    """True when one log line (syslog/CRI prefix already removed) is in this format."""

    plan: Callable[[ParseOptions], ParsePlan]
    """Build the SQL fragments for the given options."""

    lb_names: tuple[str, ...] = ()
    """Values this format writes into the ``lb`` column; the format name when empty."""

    shape: Callable[[ParseOptions, Sequence[str]], ShapePlan | None] | None = None
    """Build the SQL for the common line shape from the options and sample lines of a file
    (CRI prefix removed), or None when no shape fits them."""


def regex_detector(pattern: str) -> Callable[[str], bool]:
    """Return a detector that matches ``pattern`` at the start of a line."""
    compiled = re.compile(pattern)

    def detect(line: str) -> bool:
        return compiled.match(line) is not None

    return detect
