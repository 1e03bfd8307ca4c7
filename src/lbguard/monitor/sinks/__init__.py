"""Alert sinks: Alertmanager, generic JSON webhooks, Slack-compatible webhooks and email."""

from lbguard.monitor.sinks.interface import AlertSink, SinkError, redact

__all__ = ["AlertSink", "SinkError", "redact"]
