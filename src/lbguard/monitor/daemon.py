"""The watch daemon: notice configuration changes, record them, audit, alert.

The main thread does the work on configurations: the file watcher and the signal handlers
only record what happened and wake it. On each change the daemon snapshots the
configuration, diffs it with the previous snapshot, audits it, decides on alerts and
queues their deliveries in the outbox, all in one SQLite transaction. Delivery threads,
one per sink, send what the outbox holds, so the main thread never waits on the network.
"""

from __future__ import annotations

import logging
import signal
import threading
import time
from pathlib import Path
from types import FrameType

from lbguard.errors import LbguardError
from lbguard.monitor.config import WatchConfig, load_watch_config
from lbguard.monitor.history import History
from lbguard.monitor.metrics import Metrics
from lbguard.monitor.outbox import DeliveryWorkers, Outbox
from lbguard.monitor.pipeline import read_profile, traffic_hash
from lbguard.monitor.recorder import Recorder
from lbguard.monitor.watcher import ConfigWatcher, is_directory_config

logger = logging.getLogger(__name__)

MAX_WAIT = 1.0
"""Maximum sleep of the main loop in seconds, so that deadlines are checked at least this
often."""

STOP_WAIT = 2.0
"""Seconds the daemon waits at stop for delivery threads that are sending."""


class WatchDaemon:
    """Runs ``lbguard watch`` until stopped."""

    def __init__(self, config: WatchConfig) -> None:
        self.config = config
        self.metrics = Metrics(config.instance)
        self.metrics_address: tuple[str, int] | None = None
        self.history: History | None = None
        self.watcher: ConfigWatcher | None = None
        self.recorder: Recorder | None = None
        self.workers: DeliveryWorkers | None = None

        self._stop = threading.Event()
        self._wake = threading.Event()
        self._reload_requested = threading.Event()
        self._lock = threading.Lock()
        self._first_event: float | None = None
        self._last_event = 0.0
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
            self.install_signal_handlers()
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

    def install_signal_handlers(self) -> None:
        """Make SIGTERM and SIGINT stop the daemon and SIGHUP reload it."""

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
        self.history = History(config.db, choose_path="set db in watch.toml to another file")
        profile = read_profile(config.traffic)
        sinks = {sink.name: sink for sink in config.sinks}
        for sink in config.sinks:
            logger.info("alert sink %s", sink.describe())
        Outbox(self.history, sinks).drop_unconfigured()
        self.metrics.init_series(sinks)
        self.workers = DeliveryWorkers(
            self.history.path,
            sinks,
            config.backoff,
            listener=self.metrics.record_delivery,
            on_pending=self.metrics.outbox_pending.set,
        )
        self.workers.start()
        self.recorder = Recorder(
            config, self.history, self.metrics, profile, traffic_hash(config.traffic)
        )
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
        if self.workers is not None:
            self.workers.stop(STOP_WAIT)
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
        assert self.history is not None and self.recorder is not None
        assert self.workers is not None
        if config.db != old.db:
            try:
                history = History(config.db, choose_path="set db in watch.toml to another file")
            except LbguardError as error:
                logger.error("reload failed, keeping the running configuration: %s", error)
                return
            self.history.close()
            self.history = history
        self.config = config
        sinks = {sink.name: sink for sink in config.sinks}
        Outbox(self.history, sinks).drop_unconfigured()
        self.metrics.instance = config.instance
        self.metrics.init_series(sinks)
        self.workers.update(self.history.path, sinks, config.backoff)
        self.recorder.reload(config, self.history, profile, traffic_hash(config.traffic))
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
        if self.recorder is not None and self.recorder.retry_at is not None:
            deadlines.append(self.recorder.retry_at)
        with self._lock:
            if self._first_event is not None:
                settings = self.config.watch
                deadlines.append(
                    min(
                        self._last_event + settings.debounce,
                        self._first_event + settings.max_delay,
                    )
                )
        return max(0.0, min(min(deadlines) - time.monotonic(), MAX_WAIT))

    def _step(self) -> None:
        assert self.recorder is not None
        try:
            now = time.monotonic()
            if self._burst_settled(now):
                self._check("change")
            retry_at = self.recorder.retry_at
            if retry_at is not None and now >= retry_at:
                self._check("retry")
            if now >= self._next_rescan:
                self._next_rescan = now + self.config.watch.rescan_interval
                if self.watcher is not None:
                    self.watcher.rewatch()
                self._check("rescan")
            if self.config.audit_interval > 0 and now >= self._next_audit:
                self._next_audit = now + self.config.audit_interval
                self._check("schedule")
                if self.recorder.scheduled_audit():
                    self._deliver()
            if self.recorder.expire_alerts():
                self._deliver()
        except Exception:
            # Anything unexpected is logged and retried rather than ending the daemon.
            logger.exception(
                "unexpected error; retrying in %.1f s", self.config.watch.retry_interval
            )
            self.recorder.retry_at = time.monotonic() + self.config.watch.retry_interval

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

    def _check(self, trigger: str) -> None:
        assert self.recorder is not None
        if self.recorder.check(trigger, self._directory_listing()):
            if self.watcher is not None:
                self.watcher.update(self._watched_files(), self._watched_directories())
            self._deliver()

    def _deliver(self) -> None:
        """Wake the delivery threads for the deliveries just queued."""
        assert self.workers is not None and self.history is not None
        self.metrics.outbox_pending.set(Outbox(self.history, {}).pending())
        self.workers.wake()

    # ----------------------------------------------------------------------------------
    # Watched paths

    def _watched_files(self) -> list[Path]:
        files = {path for path in self.config.configs if not path.is_dir()}
        if self.recorder is not None:
            files.update(self.recorder.files)
        return sorted(files)

    def _watched_directories(self) -> list[Path]:
        return [path for path in self.config.configs if path.is_dir()]

    def _directory_listing(self) -> frozenset[str]:
        """Return the configuration files in watched directories, to notice a file added
        or removed when no event reported it."""
        names: set[str] = set()
        for directory in self._watched_directories():
            try:
                names.update(
                    str(entry)
                    for entry in directory.iterdir()
                    if is_directory_config(entry.name) and entry.is_file()
                )
            except OSError:
                names.add(f"{directory} (unreadable)")
        return frozenset(names)


def run_watch(config_path: Path | str) -> None:
    """Load a watch configuration and run the daemon in the calling (main) thread."""
    WatchDaemon(load_watch_config(config_path)).run()
