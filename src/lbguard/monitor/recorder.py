"""What the watch daemon does with a configuration: read, snapshot, diff, audit, alert.

The recorder runs on the daemon's main thread. It keeps the newest snapshot's model in
memory, so that a change is compared without decoding the stored model again. When the
traffic profile changed since that snapshot, it predicts the old model again with the
current profile, so that a new profile alone never reads as a share shift.
"""

from __future__ import annotations

import logging
import sqlite3
import time
from collections import Counter
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from lbguard.errors import LbguardError
from lbguard.model import LoadBalancer
from lbguard.monitor.alerts import (
    AlertEvent,
    FiringAlert,
    evaluate_findings,
    evaluate_share_shift,
    expire,
)
from lbguard.monitor.config import WatchConfig
from lbguard.monitor.diff import ConfigDiff, diff_configs
from lbguard.monitor.history import History, HistoryError, SnapshotRecord
from lbguard.monitor.metrics import Metrics
from lbguard.monitor.outbox import firing_alerts, record_events
from lbguard.monitor.pipeline import Evaluation, audit, config_files, content_hash, evaluate
from lbguard.monitor.render import summary_line
from lbguard.monitor.shares import ServerShares, share_table
from lbguard.monitor.text import plural
from lbguard.predict import predict
from lbguard.traffic import TrafficProfile

logger = logging.getLogger(__name__)

REPEAT_LOG_EVERY = 10
"""A repeated read failure is logged as a warning on the first and every Nth attempt."""


class Recorder:
    """Reads the watched configuration and records what changed."""

    def __init__(
        self,
        config: WatchConfig,
        history: History,
        metrics: Metrics,
        profile: TrafficProfile | None,
        traffic_hash: str,
    ) -> None:
        self.config = config
        self.history = history
        self.metrics = metrics
        self.profile = profile
        self.traffic_hash = traffic_hash
        self.files: list[Path] = []
        """Files the configuration consisted of at the last successful read."""

        self.retry_at: float | None = None
        """Monotonic time of the next read after a failed one."""

        self._listing: frozenset[str] = frozenset()
        self._digest: str | None = None
        self._failures = 0
        self._newest: tuple[int, LoadBalancer] | None = None

    def reload(
        self,
        config: WatchConfig,
        history: History,
        profile: TrafficProfile | None,
        traffic_hash: str,
    ) -> None:
        """Take a reloaded configuration; the next check reads the files again."""
        if history is not self.history:
            self._newest = None
        self.config = config
        self.history = history
        self.profile = profile
        self.traffic_hash = traffic_hash
        self._digest = None

    # ----------------------------------------------------------------------------------
    # Reading

    def check(self, trigger: str, listing: frozenset[str]) -> bool:
        """Read the configuration when its files may have changed, and record a change.

        Return True when the configuration was read, so that the caller watches its
        files again and wakes the deliveries.
        """
        try:
            digest = content_hash(self.files) if self.files else None
        except OSError:
            digest = None
        if digest is not None and digest == self._digest and listing == self._listing:
            self._recovered()
            return False

        config = self.config
        try:
            evaluation = evaluate(
                config.configs, config.product, self.profile, config.check_options
            )
        except (LbguardError, OSError) as error:
            self._read_failed(trigger, error)
            return False
        self._recovered()

        self.files = config_files(evaluation.lb, config.configs)
        self._listing = listing
        self._digest = evaluation.content_hash

        previous = self.history.latest_snapshot(config.instance)
        self.metrics.set_prediction(evaluation.prediction)
        if previous is not None and previous.content_hash == evaluation.content_hash:
            logger.debug("configuration unchanged (%s)", trigger)
            if trigger in ("start", "reload"):
                self._record_audit(previous, evaluation.findings, trigger)
            return True
        self._record_change(evaluation, previous, trigger)
        return True

    def _read_failed(self, trigger: str, error: Exception) -> None:
        self._failures += 1
        self.metrics.config_errors.labels(self.config.instance).inc()
        delay = self.config.watch.retry_interval
        self.retry_at = time.monotonic() + delay
        message = _error_text(error)
        if self._failures == 1 or self._failures % REPEAT_LOG_EVERY == 0:
            logger.warning(
                "cannot read the configuration (%s, attempt %d), retrying in %.1f s: %s",
                trigger,
                self._failures,
                delay,
                message,
            )
        else:
            logger.debug("read attempt %d failed: %s", self._failures, message)

    def _recovered(self) -> None:
        if self._failures:
            logger.info(
                "configuration readable again after %s",
                plural(self._failures, "failed attempt"),
            )
        self._failures = 0
        self.retry_at = None

    # ----------------------------------------------------------------------------------
    # Changes

    def _record_change(
        self, evaluation: Evaluation, previous: SnapshotRecord | None, trigger: str
    ) -> None:
        config = self.config
        now = time.time()
        firing = firing_alerts(self.history, config.instance)
        diff: ConfigDiff | None = None
        old_shares: Mapping[str, ServerShares] = {}
        if previous is not None:
            baseline = self._baseline(previous)
            if baseline is not None:
                old_lb, old_shares = baseline
                diff = diff_configs(
                    old_lb,
                    evaluation.lb,
                    old_shares,
                    evaluation.shares,
                    traffic=evaluation.prediction.traffic,
                )

        with self.history.transaction() as connection:
            snapshot = self.history.add_snapshot(
                evaluation.lb,
                evaluation.shares,
                evaluation.content_hash,
                instance=config.instance,
                created_at=now,
                traffic_hash=self.traffic_hash,
            )
            self.history.add_audit(snapshot.id, trigger, evaluation.findings, created_at=now)
            events: list[AlertEvent] = []
            if diff is not None:
                events += evaluate_share_shift(
                    diff,
                    old_shares,
                    evaluation.shares,
                    firing,
                    config.thresholds,
                    instance=config.instance,
                    change_id=snapshot.id,
                    now=now,
                )
            events += self._finding_events(evaluation.findings, firing, snapshot.id, now)
            self._queue(connection, events, snapshot.id, now)
        self._newest = (snapshot.id, evaluation.lb)

        if previous is None:
            logger.info("recorded first snapshot %d of the configuration", snapshot.id)
        else:
            self.metrics.config_changes.labels(config.instance).inc()
            summary = summary_line(diff) if diff is not None else "not compared"
            logger.info(
                "configuration changed (%s): snapshot %d, %s", trigger, snapshot.id, summary
            )
        _log_events(events)
        self.metrics.set_audit(evaluation.findings, now)
        self._update_firing_metric()
        self._prune()

    def _baseline(
        self, previous: SnapshotRecord
    ) -> tuple[LoadBalancer, Mapping[str, ServerShares]] | None:
        """Return the previous snapshot's model and its shares for the current profile."""
        if self._newest is not None and self._newest[0] == previous.id:
            old_lb = self._newest[1]
        else:
            try:
                old_lb = previous.model()
            except HistoryError as error:
                logger.warning("cannot compare with snapshot %d: %s", previous.id, error)
                return None
        if previous.traffic_hash == self.traffic_hash:
            return old_lb, previous.shares()
        logger.info(
            "traffic profile changed since snapshot %d; predicting it again as the baseline",
            previous.id,
        )
        return old_lb, share_table(predict(old_lb, self.profile))

    def _prune(self) -> None:
        retention = self.config.retention
        if not retention.enabled:
            return
        try:
            self.history.prune(
                max_snapshots=retention.max_snapshots, max_age_days=retention.max_age_days
            )
        except sqlite3.Error as error:
            logger.warning("cannot prune %s: %s", self.history.path, error)

    # ----------------------------------------------------------------------------------
    # Audits and alerts

    def _finding_events(
        self,
        findings: Sequence[Mapping[str, Any]],
        firing: list[FiringAlert],
        change_id: int,
        now: float,
    ) -> list[AlertEvent]:
        return evaluate_findings(
            findings,
            firing,
            self.config.thresholds,
            instance=self.config.instance,
            change_id=change_id,
            now=now,
        )

    def _queue(
        self,
        connection: sqlite3.Connection,
        events: list[AlertEvent],
        snapshot_id: int | None,
        now: float,
    ) -> None:
        sinks = [sink.name for sink in self.config.sinks]
        record_events(connection, events, sinks, snapshot_id=snapshot_id, now=now)

    def _record_audit(
        self, snapshot: SnapshotRecord, findings: list[dict[str, object]], trigger: str
    ) -> None:
        config = self.config
        now = time.time()
        firing = firing_alerts(self.history, config.instance)
        with self.history.transaction() as connection:
            self.history.add_audit(snapshot.id, trigger, findings, created_at=now)
            events = self._finding_events(findings, firing, snapshot.id, now)
            self._queue(connection, events, snapshot.id, now)
        _log_events(events)
        self.metrics.set_audit(findings, now)
        self._update_firing_metric()

    def scheduled_audit(self) -> bool:
        """Audit the newest snapshot again; return True when it was audited."""
        snapshot = self.history.latest_snapshot(self.config.instance)
        if snapshot is None:
            return False
        if self._newest is not None and self._newest[0] == snapshot.id:
            lb = self._newest[1]
        else:
            lb = snapshot.model()
        prediction = predict(lb, self.profile)
        findings = audit(lb, prediction, self.profile, self.config.check_options)
        self._record_audit(snapshot, findings, "schedule")
        logger.info(
            "scheduled audit of snapshot %d: %s", snapshot.id, plural(len(findings), "finding")
        )
        return True

    def expire_alerts(self) -> bool:
        """Resolve the alerts whose time to live ended; return True when any did."""
        now = time.time()
        firing = firing_alerts(self.history, self.config.instance)
        if not any(item.alert.ends_at <= now for item in firing):
            return False
        latest = self.history.latest_snapshot(self.config.instance)
        events = expire(firing, change_id=latest.id if latest else 0, now=now)
        with self.history.transaction() as connection:
            self._queue(connection, events, latest.id if latest else None, now)
        _log_events(events)
        self._update_firing_metric()
        return True

    def _update_firing_metric(self) -> None:
        firing = firing_alerts(self.history, self.config.instance)
        self.metrics.set_firing(Counter(item.alert.alertname for item in firing))


def _log_events(events: list[AlertEvent]) -> None:
    for event in events:
        alert = event.alert
        logger.info("alert %s %s: %s", alert.alertname, alert.status, alert.summary)


def _error_text(error: Exception) -> str:
    """Describe a read failure with the absolute path of the file it concerns."""
    if isinstance(error, LbguardError):
        return str(error)
    if isinstance(error, OSError):
        reason = error.strerror or type(error).__name__
        if error.filename:
            return f"{reason}: {Path(error.filename).absolute()}"
        return reason
    return repr(error)
