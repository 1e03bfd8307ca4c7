"""Exceptions raised for input lbguard cannot use at all.

Problems inside an input that still leave the rest usable are reported as
`lbguard.model.Diagnostic` values instead, so that nothing good is lost.
"""

from __future__ import annotations

from lbguard.model import Location


class LbguardError(Exception):
    """Base of every error lbguard reports to the user with exit code 2."""

    def __init__(self, message: str, *, location: Location | None = None, hint: str = "") -> None:
        super().__init__(message)
        self.message = message
        self.location = location
        self.hint = hint

    def __str__(self) -> str:
        text = self.message
        if self.location is not None and self.location.file:
            text = f"{self.location}: {text}"
        if self.hint:
            text += f"\n  hint: {self.hint}"
        return text


class ConfigError(LbguardError):
    """A configuration that cannot be read (missing file, unknown product)."""


class TrafficError(LbguardError):
    """A traffic profile that cannot be read."""


class LogError(LbguardError):
    """A log source that cannot be read at all (missing file, unknown format)."""
