"""Per-file format detection: score the first lines of a file against every format."""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

from lbguard.logs.interface import LogFormat

SAMPLE_LINES = 50
"""Non-empty lines read from the start of each file for detection."""

CRI_PREFIX = (
    r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(?:\.\d+)?(?:Z|[+-]\d\d:\d\d) (?:stdout|stderr) [FP] "
)
"""Container runtime (CRI) prefix that Kubernetes adds before each line of a pod's log."""

_CRI = re.compile(CRI_PREFIX)


@dataclass(frozen=True)
class Detection:
    """Result of scoring one file."""

    log_format: LogFormat | None
    """Best format, or None when no line matched any format."""

    matched: int
    """Sample lines the chosen format matched."""

    sampled: int
    """Non-empty lines looked at."""

    cri_prefix: bool
    """True when most sample lines carry a CRI prefix, which reading then removes."""


def strip_cri(lines: Sequence[str]) -> tuple[list[str], bool]:
    """Remove CRI prefixes when at least half of the lines have one."""
    prefixed = sum(1 for line in lines if _CRI.match(line))
    if lines and prefixed * 2 >= len(lines):
        return [_CRI.sub("", line, count=1) for line in lines], True
    return list(lines), False


def detect(lines: Sequence[str], formats: Sequence[LogFormat]) -> Detection:
    """Pick the format that matches the most sample lines; earlier formats win ties."""
    sample, cri = strip_cri(lines)
    best: LogFormat | None = None
    best_count = 0
    for log_format in formats:
        count = sum(1 for line in sample if log_format.detect(line))
        if count > best_count:
            best, best_count = log_format, count
    if best is None and sample and sample[0].strip() in ("{", "["):
        # A pretty-printed JSON document: score its joined text as one line.
        joined = "".join(line.strip() for line in sample)
        for log_format in formats:
            if log_format.detect(joined):
                return Detection(log_format, 1, len(sample), cri)
    return Detection(best, best_count, len(sample), cri)
