"""Generic JSON webhook sink.

The body is one JSON object: ``version``, ``idempotency_key``, ``status``, ``labels``,
``annotations``, ``startsAt``, ``endsAt``, ``change_id`` and ``details``. The
``Idempotency-Key`` header repeats the key, so that a receiver can drop a delivery it has
already accepted.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from lbguard.monitor.alerts import Alert
from lbguard.monitor.sinks.interface import AlertSink, Routing, public_url
from lbguard.monitor.sinks.posting import post_json

PAYLOAD_VERSION = "1"


class WebhookSink(AlertSink):
    kind = "webhook"

    def __init__(
        self,
        name: str,
        routing: Routing,
        url: str,
        *,
        headers: Mapping[str, str] | None = None,
        timeout: float = 5.0,
    ) -> None:
        super().__init__(name, routing, timeout=timeout)
        self.url = url
        self.headers = dict(headers or {})

    def payload(self, alert: Alert, idempotency_key: str) -> dict[str, Any]:
        annotations = {"summary": alert.summary, "description": alert.description}
        runbook = self.routing.runbook_for(alert)
        if runbook:
            annotations["runbook_url"] = runbook
        return {
            "version": PAYLOAD_VERSION,
            "idempotency_key": idempotency_key,
            "status": str(alert.status),
            "labels": self.routing.labels_for(alert),
            "annotations": annotations,
            "startsAt": _timestamp(alert.starts_at),
            "endsAt": _timestamp(alert.ends_at),
            "change_id": alert.change_id,
            "details": dict(alert.details),
        }

    def send(self, alert: Alert, idempotency_key: str) -> None:
        headers = {**self.headers, "Idempotency-Key": idempotency_key}
        post_json(
            self.url, self.payload(alert, idempotency_key), headers=headers, timeout=self.timeout
        )

    def secrets(self) -> tuple[str, ...]:
        return (self.url, *self.headers.values())

    def describe(self) -> str:
        return f"webhook {self.name} at {public_url(self.url)}"


def _timestamp(seconds: float) -> str:
    return datetime.fromtimestamp(seconds, UTC).isoformat(timespec="milliseconds")
