"""Slack-compatible incoming-webhook sink (Slack, Mattermost, Rocket.Chat).

The body is ``{"text": ...}`` with Slack's mrkdwn. Slack has no idempotency key, so a
delivery repeated after a crash between sending and recording appears twice.
"""

from __future__ import annotations

from typing import Any

from lbguard.monitor.alerts import Alert, AlertStatus
from lbguard.monitor.sinks.interface import AlertSink, Routing, public_url
from lbguard.monitor.sinks.posting import post_json


class SlackSink(AlertSink):
    kind = "slack"

    def __init__(self, name: str, routing: Routing, url: str, *, timeout: float = 5.0) -> None:
        super().__init__(name, routing, timeout=timeout)
        self.url = url

    def payload(self, alert: Alert) -> dict[str, Any]:
        marker = ":red_circle:" if alert.status is AlertStatus.FIRING else ":white_check_mark:"
        labels = self.routing.labels_for(alert)
        owner = labels.get("owner") or labels.get("team")
        lines = [
            f"{marker} *[{alert.status.upper()}] {alert.alertname}* ({alert.severity})",
            alert.summary,
            "```" + alert.description + "```",
        ]
        if owner:
            lines.append(f"owner: {owner}")
        runbook = self.routing.runbook_for(alert)
        if runbook:
            lines.append(f"runbook: <{runbook}>")
        return {"text": "\n".join(lines)}

    def send(self, alert: Alert, idempotency_key: str) -> None:
        post_json(self.url, self.payload(alert), headers={}, timeout=self.timeout)

    def secrets(self) -> tuple[str, ...]:
        return (self.url,)

    def describe(self) -> str:
        return f"slack {self.name} at {public_url(self.url)}"
