"""What a renderer receives, and the renderer signature every output format implements."""

from __future__ import annotations

import unicodedata
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TextIO

from lbguard.checks import Finding, OptionValue, Rule
from lbguard.checks.interface import capacity_shares
from lbguard.checks.suppression import SuppressedFinding
from lbguard.model import LoadBalancer, Location, Severity
from lbguard.predict.result import PoolShare, Prediction, RuleShare, ServerShare


@dataclass(frozen=True)
class CheckReport:
    """The outcome of one ``lbguard check`` run."""

    lb: LoadBalancer
    prediction: Prediction
    findings: tuple[Finding, ...]
    rules: tuple[Rule, ...]
    """Rules that ran, in registry order."""

    options: Mapping[str, Mapping[str, OptionValue]]
    """Option values each rule ran with, by rule id."""

    fail_on: Severity
    """Lowest severity that makes the run fail."""

    suppressed: tuple[SuppressedFinding, ...] = ()
    """Findings that inline ``lbguard: ignore`` comments silenced."""

    settings_file: str | None = None
    """The lbguard.toml or pyproject.toml the run read, if any."""

    capacity: Mapping[str, float] = field(default_factory=dict)
    """Relative server capacity by ``pool/server``, from the settings' capacity hints."""

    def fair_share(self, pool: PoolShare, server: ServerShare) -> float:
        """Return the share of ``pool`` that LB201 compares ``server`` with: its capacity
        share when the pool has capacity hints, else its weight share."""
        shares = capacity_shares(self.capacity, pool)
        if shares is None:
            return server.fair_share
        return shares.get(server.server, 0.0)

    @property
    def failing(self) -> tuple[Finding, ...]:
        """Findings at or above the failing severity."""
        return tuple(
            finding for finding in self.findings if finding.severity.rank >= self.fail_on.rank
        )

    def count(self, severity: Severity) -> int:
        return sum(1 for finding in self.findings if finding.severity is severity)


def could_match(route: RuleShare) -> float | None:
    """Return the share of requests the route's condition matches; None for a rule the
    parser added to model product behaviour (such as nginx's "no location matches"),
    whose share is only what the other rules leave."""
    if route.rule is not None and route.rule.implicit:
        return None
    return route.could_match


@dataclass(frozen=True)
class RenderOptions:
    """Presentation settings that change no number in the report."""

    limit: int = 20
    """Rows per table in the text report before the rest is summarised; 0 shows all."""

    color: bool | None = None
    """Force colour on or off; None lets the terminal decide."""

    width: int | None = None
    """Text width in characters; None uses the terminal's, or 120 for files."""


Renderer = Callable[[CheckReport, TextIO, RenderOptions], None]
"""Write a report in one format to a text stream."""


def clean(text: str) -> str:
    """Escape control and format characters so that config-derived text cannot drive the
    terminal (escape sequences, carriage returns, bidirectional overrides)."""
    if text.isprintable():
        return text
    parts: list[str] = []
    for char in text:
        if char.isprintable():
            parts.append(char)
        elif char == "\t":
            parts.append(" ")
        elif "\udc80" <= char <= "\udcff":
            # A byte that is not UTF-8, kept by the "surrogateescape" decoding.
            parts.append(f"\\x{ord(char) - 0xDC00:02x}")
        elif unicodedata.category(char) in ("Cc", "Cf", "Cs", "Co", "Cn", "Zl", "Zp"):
            parts.append(f"\\x{ord(char):02x}" if ord(char) < 0x100 else f"\\u{ord(char):04x}")
        else:
            parts.append(char)
    return "".join(parts)


def clean_message(text: str) -> str:
    """Escape control characters as `clean` does, line by line, keeping the line breaks
    of a multi-line message (an error and its hint)."""
    return "\n".join(clean(line) for line in text.split("\n"))


@dataclass
class SourceLines:
    """Reads configuration lines for display, each file at most once."""

    _files: dict[str, list[str] | None] = field(default_factory=dict)

    def line(self, location: Location) -> str | None:
        """Return the line without its end-of-line characters, or None when unreadable."""
        if not location.file or location.line < 1:
            return None
        lines = self._files.get(location.file)
        if location.file not in self._files:
            lines = self._read(location.file)
            self._files[location.file] = lines
        if lines is None or location.line > len(lines):
            return None
        return lines[location.line - 1].rstrip("\r\n")

    @staticmethod
    def _read(path: str) -> list[str] | None:
        try:
            text = Path(path).read_text(encoding="utf-8", errors="replace")
        except OSError:
            return None
        return text.splitlines()
