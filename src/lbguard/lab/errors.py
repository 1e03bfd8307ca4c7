"""The error the lab harness raises when a product or backend cannot be run."""

from __future__ import annotations

from lbguard.errors import LbguardError


class LabError(LbguardError):
    """A lab process that cannot start, reload or stop, or a config it must not run."""
