"""Fixtures for monitoring tests: a local webhook receiver and a daemon in a thread."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from monitor_support import RunningDaemon, WebhookReceiver, free_port, wait_for

from lbguard.monitor.config import load_watch_config
from lbguard.monitor.daemon import WatchDaemon


@pytest.fixture
def receiver() -> Iterator[WebhookReceiver]:
    hook = WebhookReceiver(free_port())
    hook.up()
    yield hook
    hook.release.set()
    hook.down()


@pytest.fixture
def start_daemon() -> Iterator[Callable[[Path], RunningDaemon]]:
    """Start WatchDaemon in a thread from a watch configuration; stopped at teardown."""
    running: list[RunningDaemon] = []

    def start(config_path: Path) -> RunningDaemon:
        daemon = WatchDaemon(load_watch_config(config_path))
        errors: list[BaseException] = []

        def target() -> None:
            try:
                daemon.run(handle_signals=False)
            except BaseException as error:  # reported by the test
                errors.append(error)

        thread = threading.Thread(target=target, daemon=True)
        thread.start()
        item = RunningDaemon(daemon, thread, errors)
        running.append(item)
        wait_for(lambda: daemon.started.is_set() or errors, 10, "daemon start")
        assert not errors, errors
        return item

    yield start
    for item in running:
        item.daemon.stop()
        item.thread.join(timeout=10)
