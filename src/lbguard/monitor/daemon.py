"""The watch daemon: notice configuration changes, record them, audit, alert.

One thread does all the work: the file watcher and the signal handlers only record what
happened and wake it. On each change the daemon snapshots the configuration, diffs it with
the previous snapshot, audits it, decides on alerts and queues their deliveries in the
outbox, all in one SQLite transaction, and then delivers.
"""

from __future__ import annotations

import logging
import signal
import sqlite3
import threading
import time
from collections import Counter
from collections.abc import Mapping, Sequence
from pathlib import Path
from types import FrameType
from typing import Any

from lbguard.errors import LbguardError
from lbguard.monitor.alerts import (
    AlertEvent,
    FiringAlert,
    evaluate_findings,
    evaluate_share_shift,
    expire,
)
from lbguard.monitor.config import WatchConfig, load_watch_config
from lbguard.monitor.diff import ConfigDiff, diff_configs
from lbguard.monitor.history import History, HistoryError, SnapshotRecord
from lbguard.monitor.metrics import Metrics
from lbguard.monitor.outbox import Outbox, firing_alerts, record_events
from lbguard.monitor.pipeline import (
    Evaluation,
    audit,
    config_files,
    content_hash,
    evaluate,
    read_profile,
)
from lbguard.monitor.render import summary_line
from lbguard.monitor.watcher import ConfigWatcher
from lbguard.predict import predict
from lbguard.traffic import TrafficProfile

logger = logging.getLogger(__name__)

MAX_WAIT = 1.0
"""Maximum sleep of the main loop in seconds, so that deadlines are checked at least this
often."""

REPEAT_LOG_EVERY = 10
"""A repeated read failure is logged as a warning on the first and every Nth attempt."""


class WatchDaemon:
    """Runs ``lbguard watch`` until stopped."""

    def __init__(self, config: WatchConfig) -> None:
        self.config = config
        self.metrics = Metrics(config.instance)
        self.metrics_address: tuple[str, int] | None = None
        self.history: History | None = None
        self.outbox: Outbox | None = None
        self.watcher: ConfigWatcher | None = None
        self.profile: TrafficProfile | None = None

        self._stop = threading.Event()
        self._wake = threading.Event()
        self._reload_requested = threading.Event()
        self._lock = threading.Lock()
        self._first_event: float | None = None
        self._last_event = 0.0

        self._files: list[Path] = []
        self._listing: frozenset[str] = frozenset()
        self._digest: str | None = None
        self._failures = 0
        self._retry_at: float | None = None
        self._next_rescan = 0.0
        self._next_audit = 0.0
        self.started = threading.Event()
        """Set once the daemon has started watching and read the configuration once."""

    # ----------------------------------------------------------------------------------
    # Life cycle

    def run(self, *, handle_signals: bool = True) -> None:
        """Watch until `stop` is called or SIGTERM or SIGINT arrives; SIGHUP reloads.

        Raises LbguardError when the daemon cannot start (history, traffic profile,
        metrics address).
        """
        if handle_signals:
            self._install_signal_handlers()
        try:
            self._start()
            while not self._stop.is_set():
                self._wake.wait(self._sleep_time())
                self._wake.clear()
                if self._stop.is_set():
                    break
                if self._reload_requested.is_set():
                    self._reload_requested.clear()
                    self._reload()
                self._step()
        finally:
            self._shutdown()

    def stop(self) -> None:
        self._stop.set()
        self._wake.set()

    def request_reload(self) -> None:
        self._reload_requested.set()
        self._wake.set()

    def _install_signal_handlers(self) -> None:
        def on_stop(signum: int, _frame: FrameType | None) -> None:
            logger.info("received %s, stopping", signal.Signals(signum).name)
            self.stop()

        def on_reload(_signum: int, _frame: FrameType | None) -> None:
            logger.info("received SIGHUP, reloading %s", self.config.path)
            self.request_reload()

        signal.signal(signal.SIGTERM, on_stop)
        signal.signal(signal.SIGINT, on_stop)
        signal.signal(signal.SIGHUP, on_reload)

    def _start(self) -> None:
        config = self.config
        logger.info(
            "starting lbguard watch for %s (%s)",
            config.instance or "unnamed load balancer",
            ", ".join(str(path) for path in config.configs),
        )
        self.history = History(config.db)
        self.profile = read_profile(config.traffic)
        self.outbox = Outbox(
            self.history,
            {sink.name: sink for sink in config.sinks},
            config.backoff,
            listener=self.metrics.record_delivery,
        )
        for sink in config.sinks:
            logger.info("alert sink %s", sink.describe())
        if config.metrics_listen:
            try:
                self.metrics_address = self.metrics.serve(config.metrics_listen)
            except OSError as error:
                raise LbguardError(
                    f"cannot serve metrics on {config.metrics_listen}: {error}",
                    hint='set [metrics] listen to a free address, or to "" to turn it off',
                ) from error

        self._start_watcher()
        now = time.monotonic()
        self._next_rescan = now + config.watch.rescan_interval
        self._next_audit = now + config.audit_interval
        self._check("start")
        self._deliver()
        self.started.set()

    def _start_watcher(self, method: str | None = None) -> None:
        settings = self.config.watch
        self.watcher = ConfigWatcher(
            self._on_file_event,
            method=method or settings.method,
            poll_interval=settings.poll_interval,
        )
        try:
            self.watcher.start(self._watched_files(), self._watched_directories())
        except OSError as error:
            raise LbguardError(
                f"cannot start {settings.method} watching: {error}",
                hint='set [watch] method = "poll" or "auto", or raise the inotify limits '
                "(fs.inotify.max_user_instances, fs.inotify.max_user_watches)",
            ) from error

    def _shutdown(self) -> None:
        if self.watcher is not None:
            self.watcher.stop()
        self.metrics.stop()
        if self.history is not None:
            self.history.close()
        logger.info("lbguard watch stopped")

    def _reload(self) -> None:
        try:
            config = load_watch_config(self.config.path)
            profile = read_profile(config.traffic)
        except LbguardError as error:
            logger.error("reload failed, keeping the running configuration: %s", error)
            return

        old = self.config
        assert self.history is not None and self.outbox is not None
        if config.db != old.db:
            try:
                history = History(config.db)
            except LbguardError as error:
                logger.error("reload failed, keeping the running configuration: %s", error)
                return
            self.history.close()
            self.history = history
            self.outbox.history = history
        self.config = config
        self.profile = profile
        self.outbox.sinks = {sink.name: sink for sink in config.sinks}
        self.outbox.backoff = config.backoff
        self.metrics.instance = config.instance
        if config.metrics_listen != old.metrics_listen:
            self.metrics.stop()
            self.metrics_address = None
            if config.metrics_listen:
                try:
                    self.metrics_address = self.metrics.serve(config.metrics_listen)
                except OSError as error:
                    logger.error("cannot serve metrics on %s: %s", config.metrics_listen, error)
        if self.watcher is not None:
            self.watcher.stop()
        try:
            self._start_watcher()
        except LbguardError as error:
            logger.error("%s; falling back to polling", error.message)
            self._start_watcher("poll")
        self._digest = None
        logger.info("reloaded %s", config.path)
        self._check("reload")

    # ----------------------------------------------------------------------------------
    # Main loop

    def _on_file_event(self, _path: str) -> None:
        now = time.monotonic()
        with self._lock:
            if self._first_event is None:
                self._first_event = now
            self._last_event = now
        self._wake.set()

    def _sleep_time(self) -> float:
        deadlines = [self._next_rescan]
        if self.config.audit_interval > 0:
            deadlines.append(self._next_audit)
        if self._retry_at is not None:
            deadlines.append(self._retry_at)
        with self._lock:
            if self._first_event is not None:
                settings = self.config.watch
                deadlines.append(
                    min(
                        self._last_event + settings.debounce,
                        self._first_event + settings.max_delay,
                    )
                )
        if self.outbox is not None:
            due = self.outbox.next_due()
            if due is not None:
                deadlines.append(time.monotonic() + due - time.time())
        return max(0.0, min(min(deadlines) - time.monotonic(), MAX_WAIT))

    def _step(self) -> None:
        try:
            now = time.monotonic()
            if self._burst_settled(now):
                self._check("change")
            if self._retry_at is not None and now >= self._retry_at:
                self._retry_at = None
                self._check("retry")
            if now >= self._next_rescan:
                self._next_rescan = now + self.config.watch.rescan_interval
                if self.watcher is not None:
                    self.watcher.rewatch()
                self._check("rescan")
            if self.config.audit_interval > 0 and now >= self._next_audit:
                self._next_audit = now + self.config.audit_interval
                self._scheduled_audit()
            self._expire_alerts()
            self._deliver()
        except Exception:
            # Anything unexpected is logged and retried rather than ending the daemon.
            logger.exception(
                "unexpected error; retrying in %.1f s", self.config.watch.retry_interval
            )
            self._retry_at = time.monotonic() + self.config.watch.retry_interval

    def _burst_settled(self, now: float) -> bool:
        settings = self.config.watch
        with self._lock:
            if self._first_event is None:
                return False
            quiet = now - self._last_event >= settings.debounce
            overdue = now - self._first_event >= settings.max_delay
            if not (quiet or overdue):
                return False
            self._first_event = None
            return True

    # ----------------------------------------------------------------------------------
    # Configuration changes

    def _watched_files(self) -> list[Path]:
        files = {path.absolute() for path in self.config.configs if not path.is_dir()}
        files.update(self._files)
        return sorted(files)

    def _watched_directories(self) -> list[Path]:
        return [path.absolute() for path in self.config.configs if path.is_dir()]

    def _directory_listing(self) -> frozenset[str]:
        names: set[str] = set()
        for directory in self._watched_directories():
            try:
                names.update(str(entry) for entry in directory.iterdir() if entry.is_file())
            except OSError:
                names.add(f"{directory} (unreadable)")
        return frozenset(names)

    def _check(self, trigger: str) -> None:
        """Read the configuration when its files may have changed, and record a change."""
        listing = self._directory_listing()
        try:
            digest = content_hash(self._files) if self._files else None
        except OSError:
            digest = None
        if digest is not None and digest == self._digest and listing == self._listing:
            self._recovered()
            return

        config = self.config
        try:
            evaluation = evaluate(
                config.configs, config.product, self.profile, config.check_options
            )
        except (LbguardError, OSError) as error:
            self._read_failed(trigger, error)
            return
        self._recovered()

        self._files = config_files(evaluation.lb, config.configs)
        self._listing = listing
        self._digest = evaluation.content_hash
        if self.watcher is not None:
            self.watcher.update(self._watched_files(), self._watched_directories())

        assert self.history is not None
        previous = self.history.latest_snapshot(config.instance)
        self.metrics.set_prediction(evaluation.prediction)
        if previous is not None and previous.content_hash == evaluation.content_hash:
            logger.debug("configuration unchanged (%s)", trigger)
            if trigger in ("start", "reload"):
                self._record_audit(previous, evaluation.findings, trigger)
            return
        self._record_change(evaluation, previous, trigger)

    def _record_change(
        self, evaluation: Evaluation, previous: SnapshotRecord | None, trigger: str
    ) -> None:
        assert self.history is not None
        config = self.config
        now = time.time()
        firing = firing_alerts(self.history, config.instance)
        diff: ConfigDiff | None = None
        with self.history.transaction() as connection:
            snapshot = self.history.add_snapshot(
                evaluation.lb,
                evaluation.shares,
                evaluation.content_hash,
                instance=config.instance,
                created_at=now,
            )
            self.history.add_audit(snapshot.id, trigger, evaluation.findings, created_at=now)
            events: list[AlertEvent] = []
            if previous is not None:
                diff = self._diff(previous, evaluation)
                if diff is not None:
                    events += evaluate_share_shift(
                        diff,
                        previous.shares(),
                        evaluation.shares,
                        firing,
                        config.thresholds,
                        instance=config.instance,
                        change_id=snapshot.id,
                        now=now,
                    )
            events += self._finding_events(evaluation.findings, firing, snapshot.id, now)
            self._queue(connection, events, snapshot.id, now)

        if previous is None:
            logger.info("recorded first snapshot %d of the configuration", snapshot.id)
        else:
            self.metrics.config_changes.labels(config.instance).inc()
            summary = summary_line(diff) if diff is not None else "not compared"
            logger.info(
                "configuration changed (%s): snapshot %d, %s", trigger, snapshot.id, summary
            )
        self._log_events(events)
        self.metrics.set_audit(evaluation.findings, now)
        self._update_firing_metric()

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

    def _diff(self, previous: SnapshotRecord, evaluation: Evaluation) -> ConfigDiff | None:
        try:
            old = previous.model()
        except HistoryError as error:
            logger.warning("cannot compare with snapshot %d: %s", previous.id, error)
            return None
        return diff_configs(
            old,
            evaluation.lb,
            previous.shares(),
            evaluation.shares,
            traffic=evaluation.prediction.traffic,
        )

    def _record_audit(
        self, snapshot: SnapshotRecord, findings: list[dict[str, object]], trigger: str
    ) -> None:
        assert self.history is not None
        config = self.config
        now = time.time()
        firing = firing_alerts(self.history, config.instance)
        with self.history.transaction() as connection:
            self.history.add_audit(snapshot.id, trigger, findings, created_at=now)
            events = self._finding_events(findings, firing, snapshot.id, now)
            self._queue(connection, events, snapshot.id, now)
        self._log_events(events)
        self.metrics.set_audit(findings, now)
        self._update_firing_metric()

    def _scheduled_audit(self) -> None:
        self._check("schedule")
        assert self.history is not None
        snapshot = self.history.latest_snapshot(self.config.instance)
        if snapshot is None:
            return
        lb = snapshot.model()
        prediction = predict(lb, self.profile)
        findings = audit(lb, prediction, self.profile, self.config.check_options)
        self._record_audit(snapshot, findings, "schedule")
        logger.info("scheduled audit of snapshot %d: %d findings", snapshot.id, len(findings))

    def _expire_alerts(self) -> None:
        assert self.history is not None
        now = time.time()
        firing = firing_alerts(self.history, self.config.instance)
        if not any(item.alert.ends_at <= now for item in firing):
            return
        latest = self.history.latest_snapshot(self.config.instance)
        events = expire(firing, change_id=latest.id if latest else 0, now=now)
        with self.history.transaction() as connection:
            self._queue(connection, events, latest.id if latest else None, now)
        self._log_events(events)
        self._update_firing_metric()

    def _deliver(self) -> None:
        assert self.outbox is not None
        self.outbox.deliver_due()
        self.metrics.outbox_pending.set(self.outbox.pending())

    def _update_firing_metric(self) -> None:
        assert self.history is not None
        firing = firing_alerts(self.history, self.config.instance)
        self.metrics.set_firing(Counter(item.alert.alertname for item in firing))

    @staticmethod
    def _log_events(events: list[AlertEvent]) -> None:
        for event in events:
            alert = event.alert
            logger.info("alert %s %s: %s", alert.alertname, alert.status, alert.summary)

    def _read_failed(self, trigger: str, error: Exception) -> None:
        self._failures += 1
        self.metrics.config_errors.labels(self.config.instance).inc()
        delay = self.config.watch.retry_interval
        self._retry_at = time.monotonic() + delay
        message = str(error) if isinstance(error, LbguardError) else repr(error)
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
            logger.info("configuration readable again after %d failed attempts", self._failures)
        self._failures = 0
        self._retry_at = None


def run_watch(config_path: Path | str) -> None:
    """Load a watch configuration and run the daemon in the calling (main) thread."""
    WatchDaemon(load_watch_config(config_path)).run()
