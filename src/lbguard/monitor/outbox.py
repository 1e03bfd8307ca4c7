"""Persistent alert outbox: alerts survive a sink outage and a killed daemon.

Recording an alert state change and queueing one delivery per sink happen in one SQLite
transaction, and each delivery has a unique idempotency key (alert, event and sink), so a
change is queued exactly once. A delivery is marked sent in one statement right after the
sink accepts it. Delivery is therefore at least once: a daemon killed after the sink
accepted but before the mark sends again on restart, with the same idempotency key, which
Alertmanager (same labels), webhook receivers (``Idempotency-Key``) and mail systems
(``Message-ID``) use to drop the repeat.
"""

from __future__ import annotations

import hashlib
import json
import logging
import sqlite3
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass

from lbguard.monitor.alerts import Alert, AlertEvent, FiringAlert
from lbguard.monitor.history import History
from lbguard.monitor.sinks.interface import AlertSink, PermanentSinkError, SinkError, redact

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class Backoff:
    """Retry schedule of failed deliveries: exponential, capped, with a bounded count."""

    initial: float = 1.0
    """Seconds before the first retry."""

    factor: float = 2.0
    maximum: float = 300.0
    """Maximum wait between two attempts, in seconds."""

    max_attempts: int = 50
    """Attempts after which a delivery is given up and marked dead."""

    def delay(self, attempts: int) -> float:
        """Return the wait after the given number of failed attempts."""
        return float(min(self.maximum, self.initial * self.factor ** max(0, attempts - 1)))


@dataclass(frozen=True)
class DeliveryResult:
    """Outcome of one delivery attempt, for logs and metrics."""

    sink: str
    outbox_id: int
    alert: Alert
    ok: bool
    error: str = ""


DeliveryListener = Callable[[DeliveryResult], None]


def idempotency_key(alert_id: int, event: str, sink: str, fingerprint: str) -> str:
    text = f"{fingerprint}:{alert_id}:{event}:{sink}"
    return hashlib.sha256(text.encode()).hexdigest()[:40]


def firing_alerts(history: History, instance: str) -> list[FiringAlert]:
    """Return the stored alerts of an instance that have not resolved."""
    rows = history.connection.execute(
        "SELECT id, alert, baseline, labels FROM alerts WHERE ends_at IS NULL ORDER BY id"
    ).fetchall()
    firing: list[FiringAlert] = []
    for row in rows:
        if json.loads(row["labels"]).get("lb", "") != instance:
            continue
        alert = Alert.from_json(row["alert"])
        firing.append(FiringAlert(int(row["id"]), alert, json.loads(row["baseline"])))
    return firing


def record_events(
    connection: sqlite3.Connection,
    events: Iterable[AlertEvent],
    sinks: Sequence[str],
    *,
    snapshot_id: int | None,
    now: float,
) -> list[int]:
    """Store alert state changes and queue their deliveries; return the outbox ids queued.

    The caller runs this inside a transaction, together with the snapshot and audit that
    caused the events.
    """
    queued: list[int] = []
    for event in events:
        alert = event.alert
        if event.resolves is None:
            cursor = connection.execute(
                "INSERT INTO alerts (fingerprint, alertname, severity, labels, alert,"
                " baseline, snapshot_id, starts_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    alert.fingerprint,
                    alert.alertname,
                    alert.severity,
                    json.dumps(dict(alert.labels), sort_keys=True),
                    alert.to_json(),
                    json.dumps(dict(event.baseline), sort_keys=True),
                    snapshot_id,
                    alert.starts_at,
                ),
            )
            assert cursor.lastrowid is not None
            alert_id = cursor.lastrowid
        else:
            alert_id = event.resolves
            connection.execute(
                "UPDATE alerts SET ends_at = ?, resolved_snapshot_id = ? WHERE id = ?",
                (alert.ends_at, snapshot_id, alert_id),
            )

        for sink in sinks:
            key = idempotency_key(alert_id, alert.status, sink, alert.fingerprint)
            cursor = connection.execute(
                "INSERT OR IGNORE INTO outbox (alert_id, sink, event, idempotency_key,"
                " payload, created_at, next_attempt_at) VALUES (?, ?, ?, ?, ?, ?, ?)",
                (alert_id, sink, str(alert.status), key, alert.to_json(), now, now),
            )
            if cursor.rowcount == 1 and cursor.lastrowid is not None:
                queued.append(cursor.lastrowid)
    return queued


class Outbox:
    """Delivers queued alerts to the configured sinks, with retries."""

    def __init__(
        self,
        history: History,
        sinks: Mapping[str, AlertSink],
        backoff: Backoff = Backoff(),
        listener: DeliveryListener | None = None,
    ) -> None:
        self.history = history
        self.sinks = dict(sinks)
        self.backoff = backoff
        self.listener = listener

    def pending(self) -> int:
        row = self.history.connection.execute(
            "SELECT count(*) FROM outbox WHERE status = 'pending'"
        ).fetchone()
        return int(row[0])

    def next_due(self) -> float | None:
        """Return when the earliest pending delivery is due, or None when none is."""
        row = self.history.connection.execute(
            "SELECT min(next_attempt_at) FROM outbox WHERE status = 'pending'"
        ).fetchone()
        return None if row[0] is None else float(row[0])

    def deliver_due(self, now: float | None = None, limit: int = 100) -> list[DeliveryResult]:
        """Attempt every pending delivery that is due, oldest first."""
        current = time.time() if now is None else now
        rows = self.history.connection.execute(
            "SELECT id, sink, idempotency_key, payload, attempts FROM outbox"
            " WHERE status = 'pending' AND next_attempt_at <= ? ORDER BY id LIMIT ?",
            (current, limit),
        ).fetchall()
        return [self._attempt(row) for row in rows]

    def _attempt(self, row: sqlite3.Row) -> DeliveryResult:
        outbox_id = int(row["id"])
        alert = Alert.from_json(row["payload"])
        attempts = int(row["attempts"]) + 1
        sink = self.sinks.get(str(row["sink"]))
        if sink is None:
            error = f"sink {row['sink']!r} is no longer configured"
            self._mark_dead(outbox_id, attempts, error)
            logger.warning("dropped alert delivery %d: %s", outbox_id, error)
            return self._notify(DeliveryResult(str(row["sink"]), outbox_id, alert, False, error))

        try:
            sink.send(alert, str(row["idempotency_key"]))
        except SinkError as error:
            message = redact(str(error), sink.secrets())
            permanent = isinstance(error, PermanentSinkError)
            if permanent or attempts >= self.backoff.max_attempts:
                self._mark_dead(outbox_id, attempts, message)
                logger.error(
                    "giving up alert delivery %d to %s after %d attempts: %s",
                    outbox_id,
                    sink.describe(),
                    attempts,
                    message,
                )
            else:
                delay = self.backoff.delay(attempts)
                self._mark_retry(outbox_id, attempts, message, time.time() + delay)
                logger.warning(
                    "alert delivery %d to %s failed (attempt %d), retrying in %.1f s: %s",
                    outbox_id,
                    sink.describe(),
                    attempts,
                    delay,
                    message,
                )
            return self._notify(DeliveryResult(sink.name, outbox_id, alert, False, message))

        with self.history.transaction() as connection:
            connection.execute(
                "UPDATE outbox SET status = 'sent', sent_at = ?, attempts = ?,"
                " last_error = NULL WHERE id = ?",
                (time.time(), attempts, outbox_id),
            )
        logger.info("delivered %s alert %s to %s", alert.status, alert.alertname, sink.describe())
        return self._notify(DeliveryResult(sink.name, outbox_id, alert, True))

    def _mark_retry(self, outbox_id: int, attempts: int, error: str, due: float) -> None:
        with self.history.transaction() as connection:
            connection.execute(
                "UPDATE outbox SET attempts = ?, last_error = ?, next_attempt_at = ? WHERE id = ?",
                (attempts, error, due, outbox_id),
            )

    def _mark_dead(self, outbox_id: int, attempts: int, error: str) -> None:
        with self.history.transaction() as connection:
            connection.execute(
                "UPDATE outbox SET status = 'dead', attempts = ?, last_error = ? WHERE id = ?",
                (attempts, error, outbox_id),
            )

    def _notify(self, result: DeliveryResult) -> DeliveryResult:
        if self.listener is not None:
            self.listener(result)
        return result
