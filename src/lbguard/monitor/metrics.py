"""Prometheus metrics of the watch daemon, served by prometheus_client on 127.0.0.1."""

from __future__ import annotations

import logging
import threading
from collections import Counter as Tally
from collections.abc import Iterable, Mapping
from typing import Any
from wsgiref.simple_server import WSGIServer

from prometheus_client import CollectorRegistry, Counter, Gauge, start_http_server

from lbguard.monitor.alerts import FINDING, SHARE_SHIFT
from lbguard.monitor.outbox import DeliveryResult
from lbguard.predict.result import Prediction

logger = logging.getLogger(__name__)

DEFAULT_LISTEN = "127.0.0.1:9464"

ALERT_NAMES = (SHARE_SHIFT, FINDING)


class Metrics:
    """The daemon's metrics in a registry of their own (not prometheus_client's global)."""

    def __init__(self, instance: str = "") -> None:
        self.instance = instance
        self.registry = CollectorRegistry()
        lb = ["lb"]
        self.share_of_pool = Gauge(
            "lbguard_predicted_share_of_pool",
            "Predicted fraction of the pool's requests that a server receives",
            [*lb, "pool", "server"],
            registry=self.registry,
        )

        self.share_of_total = Gauge(
            "lbguard_predicted_share_of_total",
            "Predicted fraction of all profile traffic that a server receives",
            [*lb, "pool", "server"],
            registry=self.registry,
        )

        self.imbalance = Gauge(
            "lbguard_pool_imbalance_ratio",
            "Maximum eligible server share over the mean eligible share in a pool",
            [*lb, "pool"],
            registry=self.registry,
        )

        self.findings = Gauge(
            "lbguard_findings",
            "Findings of the latest audit by severity",
            [*lb, "severity"],
            registry=self.registry,
        )

        self.last_audit = Gauge(
            "lbguard_last_audit_timestamp_seconds",
            "Unix time of the latest completed audit",
            lb,
            registry=self.registry,
        )

        self.config_changes = Counter(
            "lbguard_config_changes",
            "Configuration changes detected (new snapshots)",
            lb,
            registry=self.registry,
        )

        self.config_errors = Counter(
            "lbguard_config_read_errors",
            "Failed attempts to read or parse the configuration",
            lb,
            registry=self.registry,
        )

        self.deliveries = Counter(
            "lbguard_alert_deliveries",
            "Alert deliveries accepted by a sink",
            ["sink"],
            registry=self.registry,
        )

        self.delivery_failures = Counter(
            "lbguard_alert_delivery_failures",
            "Failed alert delivery attempts",
            ["sink"],
            registry=self.registry,
        )

        self.outbox_pending = Gauge(
            "lbguard_alert_outbox_pending",
            "Alert deliveries waiting in the outbox",
            registry=self.registry,
        )

        self.firing = Gauge(
            "lbguard_alerts_firing",
            "Alerts currently firing",
            [*lb, "alertname"],
            registry=self.registry,
        )

        self._server: WSGIServer | None = None
        self._thread: threading.Thread | None = None

    def init_series(self, sinks: Iterable[str]) -> None:
        """Create the series of every known label value at 0, so that rate() and absence
        alerts see counters from the start rather than from their first increment."""
        self.config_changes.labels(self.instance)
        self.config_errors.labels(self.instance)
        for sink in sinks:
            self.deliveries.labels(sink)
            self.delivery_failures.labels(sink)
        self.set_firing({})

    def set_prediction(self, prediction: Prediction) -> None:
        """Replace the share and imbalance gauges; servers no longer present disappear."""
        self.share_of_pool.clear()
        self.share_of_total.clear()
        self.imbalance.clear()
        for pool in prediction.pools:
            if pool.max_over_mean is not None:
                self.imbalance.labels(self.instance, pool.pool).set(pool.max_over_mean)
            for server in pool.servers:
                labels = (self.instance, server.pool, server.server)
                self.share_of_pool.labels(*labels).set(server.share_of_pool)
                if server.share_of_total is not None:
                    self.share_of_total.labels(*labels).set(server.share_of_total)

    def set_audit(self, findings: Iterable[Mapping[str, Any]], timestamp: float) -> None:
        counts = Tally(str(finding["severity"]) for finding in findings)
        for severity in ("info", "warning", "error"):
            self.findings.labels(self.instance, severity).set(counts.get(severity, 0))
        self.last_audit.labels(self.instance).set(timestamp)

    def set_firing(self, counts: Mapping[str, int]) -> None:
        """Set the firing alerts by name; a name with none firing reads 0."""
        self.firing.clear()
        for alertname in (*ALERT_NAMES, *counts):
            self.firing.labels(self.instance, alertname).set(counts.get(alertname, 0))

    def record_delivery(self, result: DeliveryResult) -> None:
        if result.ok:
            self.deliveries.labels(result.sink).inc()
        else:
            self.delivery_failures.labels(result.sink).inc()

    def serve(self, listen: str) -> tuple[str, int]:
        """Start the /metrics HTTP server; return the address and port it bound."""
        host, port = parse_listen(listen)
        server, thread = start_http_server(port, addr=host, registry=self.registry)
        self._server, self._thread = server, thread
        bound_port = int(server.server_address[1])
        logger.info("serving metrics on http://%s:%d/metrics", host, bound_port)
        return host, bound_port

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None


def parse_listen(listen: str) -> tuple[str, int]:
    """Split ``host:port`` (``[v6]:port`` for IPv6); raise ValueError when invalid."""
    host, separator, port_text = listen.rpartition(":")
    if not separator or not port_text.isdigit() or not host:
        raise ValueError(f"invalid listen address {listen!r}: expected HOST:PORT")
    port = int(port_text)
    if port > 65535:
        raise ValueError(f"invalid listen address {listen!r}: port above 65535")
    return host.strip("[]"), port
