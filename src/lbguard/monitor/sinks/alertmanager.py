"""Prometheus Alertmanager sink: ``POST /api/v2/alerts``.

Alertmanager (checked against 0.25) identifies an alert by its label set, so a repeated
delivery of the same alert updates it in place instead of creating a second one. A firing
alert carries ``endsAt`` at the end of its time to live; a resolution sends the same labels
with ``endsAt`` at the resolution time.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from lbguard.monitor.alerts import Alert
from lbguard.monitor.sinks.interface import AlertSink, Routing, public_url
from lbguard.monitor.sinks.posting import post_json


class AlertmanagerSink(AlertSink):
    kind = "alertmanager"

    def __init__(
        self,
        name: str,
        routing: Routing,
        url: str,
        *,
        generator_url: str = "",
        timeout: float = 5.0,
    ) -> None:
        super().__init__(name, routing, timeout=timeout)
        self.url = url.rstrip("/")
        self.generator_url = generator_url

    def payload(self, alert: Alert) -> list[dict[str, Any]]:
        annotations = {"summary": alert.summary, "description": alert.description}
        runbook = self.routing.runbook_for(alert)
        if runbook:
            annotations["runbook_url"] = runbook
        item: dict[str, Any] = {
            "labels": self.routing.labels_for(alert),
            "annotations": annotations,
            "startsAt": _timestamp(alert.starts_at),
            "endsAt": _timestamp(alert.ends_at),
        }
        if self.generator_url:
            item["generatorURL"] = self.generator_url
        return [item]

    def send(self, alert: Alert, idempotency_key: str) -> None:
        post_json(
            f"{self.url}/api/v2/alerts",
            self.payload(alert),
            headers={"Idempotency-Key": idempotency_key},
            timeout=self.timeout,
        )

    def secrets(self) -> tuple[str, ...]:
        return ()

    def describe(self) -> str:
        return f"alertmanager {self.name} at {public_url(self.url)}"


def _timestamp(seconds: float) -> str:
    return datetime.fromtimestamp(seconds, UTC).isoformat(timespec="milliseconds")
