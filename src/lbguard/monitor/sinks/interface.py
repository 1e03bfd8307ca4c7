"""The interface every alert sink implements, and secret redaction for their messages."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from urllib.parse import urlsplit

from lbguard.monitor.alerts import Alert

REDACTED = "<redacted>"


class SinkError(Exception):
    """A delivery that failed and may succeed when retried (sink down, timeout, 5xx)."""


class PermanentSinkError(SinkError):
    """A delivery that will fail the same way when retried (rejected payload, 4xx)."""


@dataclass(frozen=True)
class Routing:
    """Labels and links a sink adds to every alert it sends, so that the right people
    receive it."""

    labels: Mapping[str, str] = field(default_factory=dict)
    """Extra labels such as ``team``; an alert's own labels take precedence."""

    owner: str = ""
    """Owner label value; sent as the ``owner`` label when set."""

    runbook_url: str = ""
    """Runbook sent when the alert carries none of its own."""

    def labels_for(self, alert: Alert) -> dict[str, str]:
        extra = dict(self.labels)
        if self.owner:
            extra.setdefault("owner", self.owner)
        return alert.all_labels(extra)

    def runbook_for(self, alert: Alert) -> str:
        return alert.runbook_url or self.runbook_url


class AlertSink(ABC):
    """A destination for alerts.

    ``send`` either delivers the alert or raises `SinkError`. The idempotency key is the
    same for every retry of one delivery, so that a receiver can drop a repeat after a
    crash between sending and recording.
    """

    kind: str = ""

    def __init__(self, name: str, routing: Routing, *, timeout: float = 5.0) -> None:
        self.name = name
        self.routing = routing
        self.timeout = timeout

    @abstractmethod
    def send(self, alert: Alert, idempotency_key: str) -> None: ...

    @abstractmethod
    def secrets(self) -> tuple[str, ...]:
        """Return the values that must never appear in logs or stored errors."""

    @abstractmethod
    def describe(self) -> str:
        """Return the destination for logs, with secrets redacted."""


def redact(text: str, secrets: Iterable[str]) -> str:
    """Replace every secret, and the path and query of secret URLs, in ``text``."""
    for secret in sorted((item for item in secrets if item), key=len, reverse=True):
        text = text.replace(secret, REDACTED)
        parts = urlsplit(secret)
        if parts.scheme and parts.netloc:
            hidden = parts.path + (f"?{parts.query}" if parts.query else "")
            if len(hidden) > 1:
                text = text.replace(hidden, "/" + REDACTED)
    return text


def public_url(url: str) -> str:
    """Return scheme and host of a URL, the rest redacted, for log messages."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    if parts.port is not None:
        host = f"{host}:{parts.port}"
    tail = f"/{REDACTED}" if parts.path.strip("/") or parts.query else ""
    return f"{parts.scheme}://{host}{tail}"
