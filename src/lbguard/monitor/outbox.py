"""Persistent alert outbox: alerts survive a sink outage and a killed daemon.

Recording an alert state change and queueing one delivery per sink happen in one SQLite
transaction, and each delivery has a unique idempotency key (alert, event and sink), so a
change is queued exactly once. A delivery is marked sent in one statement right after the
sink accepts it. Delivery is therefore at least once: a daemon killed after the sink
accepted but before the mark sends again on restart, with the same idempotency key, which
Alertmanager (same labels), webhook receivers (``Idempotency-Key``) and mail systems
(``Message-ID``) use to drop the repeat.

Each sink's deliveries go out in queue order, and a delivery waits while an earlier one to
the same sink is retried, so that a resolution never overtakes its firing alert. The
daemon delivers on `DeliveryWorkers`: one thread and one database connection per sink, so
that a sink that hangs delays only its own queue, never change processing or other sinks.
"""

from __future__ import annotations

import hashlib
import json
import logging
import sqlite3
import threading
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from lbguard.monitor.alerts import Alert, AlertEvent, FiringAlert
from lbguard.monitor.history import History, HistoryError
from lbguard.monitor.sinks.interface import AlertSink, PermanentSinkError, SinkError, redact
from lbguard.monitor.text import plural

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
    """Delivers queued alerts to the configured sinks, with retries, in the calling thread."""

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

    def next_due(self, sink: str | None = None) -> float | None:
        """Return when the next delivery is due (to ``sink``, else to any sink), or None
        when none is pending."""
        if sink is None:
            row = self.history.connection.execute(
                "SELECT min(next_attempt_at) FROM outbox WHERE status = 'pending'"
            ).fetchone()
        else:
            # The oldest pending delivery holds up the sink's later ones.
            row = self.history.connection.execute(
                "SELECT next_attempt_at FROM outbox WHERE status = 'pending' AND sink = ?"
                " ORDER BY id LIMIT 1",
                (sink,),
            ).fetchone()
        return None if row is None or row[0] is None else float(row[0])

    def drop_unconfigured(self) -> int:
        """Mark dead the pending deliveries to sinks that are no longer configured."""
        rows = self.history.connection.execute(
            "SELECT id, sink, payload, attempts FROM outbox WHERE status = 'pending'"
        ).fetchall()
        dropped = 0
        for row in rows:
            if str(row["sink"]) in self.sinks:
                continue
            error = f"sink {row['sink']!r} is no longer configured"
            self._mark_dead(int(row["id"]), int(row["attempts"]), error)
            logger.warning("dropped alert delivery %d: %s", row["id"], error)
            alert = Alert.from_json(row["payload"])
            self._notify(DeliveryResult(str(row["sink"]), int(row["id"]), alert, False, error))
            dropped += 1
        return dropped

    def deliver_due(
        self, now: float | None = None, limit: int = 100, sink: str | None = None
    ) -> list[DeliveryResult]:
        """Attempt the due deliveries, oldest first, to ``sink`` or to every sink.

        A sink's queue stops at its first delivery that is not due or that fails.
        """
        current = time.time() if now is None else now
        if sink is None:
            self.drop_unconfigured()
        names = [sink] if sink is not None else list(self.sinks)
        results: list[DeliveryResult] = []
        for name in names:
            rows = self.history.connection.execute(
                "SELECT id, sink, idempotency_key, payload, attempts, next_attempt_at"
                " FROM outbox WHERE status = 'pending' AND sink = ? ORDER BY id LIMIT ?",
                (name, limit),
            ).fetchall()
            for row in rows:
                if float(row["next_attempt_at"]) > current:
                    break
                result = self._attempt(row)
                results.append(result)
                if not result.ok:
                    break
        return results

    def _attempt(self, row: sqlite3.Row) -> DeliveryResult:
        outbox_id = int(row["id"])
        alert = Alert.from_json(row["payload"])
        attempts = int(row["attempts"]) + 1
        sink = self.sinks[str(row["sink"])]
        try:
            sink.send(alert, str(row["idempotency_key"]))
        except SinkError as error:
            message = redact(str(error), sink.secrets())
            permanent = isinstance(error, PermanentSinkError)
            if permanent or attempts >= self.backoff.max_attempts:
                self._mark_dead(outbox_id, attempts, message)
                logger.error(
                    "giving up alert delivery %d to %s after %s: %s",
                    outbox_id,
                    sink.describe(),
                    plural(attempts, "attempt"),
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


class _SinkWorker:
    """The thread that delivers one sink's queue, with its own database connection."""

    def __init__(
        self,
        path: Path,
        sink: AlertSink,
        backoff: Backoff,
        listener: DeliveryListener | None,
        on_pending: Callable[[int], None] | None,
    ) -> None:
        self.path = path
        self.sink = sink
        self.backoff = backoff
        self.listener = listener
        self.on_pending = on_pending
        self.wake = threading.Event()
        self.stopping = threading.Event()
        self.thread = threading.Thread(
            target=self._run, name=f"lbguard-sink-{sink.name}", daemon=True
        )

    def _run(self) -> None:
        try:
            history = History(self.path, create=False)
        except HistoryError as error:
            logger.error("alert sink %s cannot open the outbox: %s", self.sink.name, error)
            return
        try:
            while not self.stopping.is_set():
                self.wake.clear()
                wait = self._deliver(history)
                self.wake.wait(wait)
        finally:
            history.close()

    def _deliver(self, history: History) -> float:
        """Deliver what is due; return the seconds until the next look at the queue."""
        outbox = Outbox(history, {self.sink.name: self.sink}, self.backoff, self.listener)
        try:
            outbox.deliver_due(sink=self.sink.name)
            if self.on_pending is not None:
                self.on_pending(outbox.pending())
            due = outbox.next_due(self.sink.name)
        except (sqlite3.Error, HistoryError):
            # A locked or busy database is retried at the next look.
            logger.exception("alert delivery to %s failed; retrying", self.sink.describe())
            return WORKER_IDLE_WAIT
        if due is None:
            return WORKER_IDLE_WAIT
        return min(max(0.0, due - time.time()), WORKER_IDLE_WAIT)


WORKER_IDLE_WAIT = 30.0
"""Seconds a sink worker sleeps at most between two looks at its queue; the daemon wakes
it as soon as it queues a delivery."""


class DeliveryWorkers:
    """One delivery thread per sink, so that a slow or hanging sink delays only its own
    deliveries."""

    def __init__(
        self,
        path: Path,
        sinks: Mapping[str, AlertSink],
        backoff: Backoff = Backoff(),
        listener: DeliveryListener | None = None,
        on_pending: Callable[[int], None] | None = None,
    ) -> None:
        self.path = path
        self.backoff = backoff
        self.listener = listener
        self.on_pending = on_pending
        self._workers: dict[str, _SinkWorker] = {}
        self._sinks = dict(sinks)

    def start(self) -> None:
        for name, sink in self._sinks.items():
            if name not in self._workers:
                worker = _SinkWorker(self.path, sink, self.backoff, self.listener, self.on_pending)
                self._workers[name] = worker
                worker.thread.start()

    def wake(self) -> None:
        """Make every worker look at its queue now."""
        for worker in self._workers.values():
            worker.wake.set()

    def update(self, path: Path, sinks: Mapping[str, AlertSink], backoff: Backoff) -> None:
        """Apply a reloaded configuration: keep the workers of sinks that stay, with their
        new settings, stop those of removed sinks and start new ones."""
        if path != self.path:
            self.stop(0.0)
            self.path = path
        self.backoff = backoff
        self._sinks = dict(sinks)
        for name in list(self._workers):
            worker = self._workers[name]
            if name in self._sinks:
                worker.sink = self._sinks[name]
                worker.backoff = backoff
            else:
                worker.stopping.set()
                worker.wake.set()
                del self._workers[name]
        self.start()
        self.wake()

    def stop(self, timeout: float) -> None:
        """Stop the workers, waiting up to ``timeout`` seconds in all.

        A worker still waiting for a sink is left behind as a daemon thread; its delivery
        stays pending and is sent again, with the same idempotency key, after a restart.
        """
        for worker in self._workers.values():
            worker.stopping.set()
            worker.wake.set()
        deadline = time.monotonic() + timeout
        for worker in self._workers.values():
            worker.thread.join(max(0.0, deadline - time.monotonic()))
            if worker.thread.is_alive():
                logger.warning(
                    "alert sink %s still waiting for a response at stop; its delivery stays "
                    "queued",
                    worker.sink.describe(),
                )
        self._workers.clear()
