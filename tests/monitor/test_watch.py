"""The watch daemon on real files: every way an edit reaches the disk, and alerts."""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from pathlib import Path

import pytest
from monitor_support import (
    RunningDaemon,
    WebhookReceiver,
    haproxy_config,
    wait_for,
    watch_toml,
    webhook_sink,
)

from lbguard.monitor.history import History

StartDaemon = Callable[[Path], RunningDaemon]


def snapshot_count(db: Path) -> int:
    with History(db) as history:
        return len(history.snapshots(1000))


def latest_weight(db: Path, server: str) -> int:
    with History(db) as history:
        snapshot = history.snapshots(1)[0]
        pool = snapshot.model().pool("be_web")
        assert pool is not None
        found = pool.server(server)
        assert found is not None
        return found.weight


@pytest.fixture
def config_file(tmp_path: Path) -> Path:
    directory = tmp_path / "haproxy"
    directory.mkdir()
    path = directory / "haproxy.cfg"
    path.write_text(haproxy_config())
    return path


def test_weight_change_sends_one_alert(
    tmp_path: Path, config_file: Path, receiver: WebhookReceiver, start_daemon: StartDaemon
) -> None:
    start_daemon(watch_toml(tmp_path, [config_file], sinks=webhook_sink(receiver.url)))
    db = tmp_path / "history.db"
    assert snapshot_count(db) == 1

    config_file.write_text(haproxy_config(w3=100))
    wait_for(lambda: receiver.processed, 10, "the alert")
    time.sleep(0.5)

    assert len(receiver.processed) == 1
    body = receiver.processed[0].body
    assert body["status"] == "firing"
    assert body["labels"]["alertname"] == "LbguardShareShift"
    assert body["labels"]["pool"] == "be_web"
    assert body["labels"]["lb"] == "test-lb"
    assert body["labels"]["team"] == "edge"
    assert body["labels"]["owner"] == "team-edge"
    assert body["labels"]["severity"] == "critical"
    assert body["annotations"]["runbook_url"] == "https://runbooks.invalid/lb-share-shift"
    assert "be_web/web3: 33.3 % → 83.3 % of be_web" in body["annotations"]["description"]
    assert "weight 10 → 100" in body["annotations"]["description"]
    assert snapshot_count(db) == 2


def test_revert_resolves_alert(
    tmp_path: Path, config_file: Path, receiver: WebhookReceiver, start_daemon: StartDaemon
) -> None:
    start_daemon(watch_toml(tmp_path, [config_file], sinks=webhook_sink(receiver.url)))
    config_file.write_text(haproxy_config(w3=100))
    wait_for(lambda: len(receiver.processed) == 1, 10, "the firing alert")

    config_file.write_text(haproxy_config())
    wait_for(lambda: len(receiver.processed) == 2, 10, "the resolution")

    first, second = (receipt.body for receipt in receiver.processed)
    assert second["status"] == "resolved"
    assert second["labels"] == first["labels"]
    assert second["endsAt"] > first["startsAt"]


def test_atomic_rename_is_seen(
    tmp_path: Path, config_file: Path, start_daemon: StartDaemon
) -> None:
    start_daemon(watch_toml(tmp_path, [config_file]))
    db = tmp_path / "history.db"

    # Editors save by writing a temporary file and renaming it over the original.
    temporary = config_file.with_name(".haproxy.cfg.swp")
    temporary.write_text(haproxy_config(w1=30))
    os.replace(temporary, config_file)

    wait_for(lambda: snapshot_count(db) == 2, 10, "the renamed file's snapshot")
    assert latest_weight(db, "web1") == 30


def test_delete_and_recreate(
    tmp_path: Path,
    config_file: Path,
    start_daemon: StartDaemon,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level("INFO", logger="lbguard")
    running = start_daemon(watch_toml(tmp_path, [config_file]))
    db = tmp_path / "history.db"

    config_file.unlink()
    wait_for(lambda: "cannot read the configuration" in caplog.text, 10, "the read failure log")
    assert snapshot_count(db) == 1
    assert running.thread.is_alive()

    config_file.write_text(haproxy_config(w2=40))
    wait_for(lambda: snapshot_count(db) == 2, 10, "the re-created file's snapshot")
    assert latest_weight(db, "web2") == 40
    assert "configuration readable again" in caplog.text


def test_burst_of_writes_is_debounced(
    tmp_path: Path, config_file: Path, start_daemon: StartDaemon
) -> None:
    start_daemon(watch_toml(tmp_path, [config_file], watch={"debounce": 0.4, "max_delay": 5}))
    db = tmp_path / "history.db"

    for weight in range(11, 41):
        config_file.write_text(haproxy_config(w1=weight))
        time.sleep(0.005)

    wait_for(lambda: snapshot_count(db) == 2, 10, "the burst's snapshot")
    time.sleep(1.0)
    assert snapshot_count(db) == 2
    assert latest_weight(db, "web1") == 40


def test_polling_mode_sees_changes(
    tmp_path: Path, config_file: Path, start_daemon: StartDaemon
) -> None:
    running = start_daemon(
        watch_toml(tmp_path, [config_file], watch={"method": "poll", "poll_interval": 0.2})
    )
    db = tmp_path / "history.db"
    assert running.daemon.watcher is not None
    assert running.daemon.watcher.method_in_use == "poll"

    time.sleep(0.3)
    config_file.write_text(haproxy_config(w3=5))
    wait_for(lambda: snapshot_count(db) == 2, 10, "the polled change")
    assert latest_weight(db, "web3") == 5


def test_inotify_failure_falls_back_to_polling(
    tmp_path: Path, config_file: Path, caplog: pytest.LogCaptureFixture
) -> None:
    # An inotify instance limit cannot be reached safely on a shared machine, so the native
    # observer is replaced by one that fails as inotify_init does at that limit (EMFILE).
    from watchdog.observers.api import BaseObserver

    from lbguard.monitor.watcher import ConfigWatcher

    def failing_observer() -> BaseObserver:
        raise OSError(24, "inotify instance limit reached")

    changed: list[str] = []
    watcher = ConfigWatcher(changed.append, poll_interval=0.1, native=failing_observer)
    try:
        method = watcher.start([config_file], [])
        assert method == "poll"
        assert "falling back to polling" in caplog.text
        time.sleep(0.3)
        config_file.write_text(haproxy_config(w1=2))
        wait_for(lambda: changed, 10, "a polled event")
    finally:
        watcher.stop()
    assert str(config_file) in changed


def test_directory_config_sees_new_file(tmp_path: Path, start_daemon: StartDaemon) -> None:
    directory = tmp_path / "conf.d"
    directory.mkdir()
    (directory / "10-base.cfg").write_text(haproxy_config())
    start_daemon(watch_toml(tmp_path, [directory]))
    db = tmp_path / "history.db"

    extra = "\nbackend be_extra\n    server extra1 127.0.0.1:9010\n"
    (directory / "20-extra.cfg").write_text(extra)

    wait_for(lambda: snapshot_count(db) == 2, 10, "the new file's snapshot")
    with History(db) as history:
        model = history.snapshots(1)[0].model()
    assert model.pool("be_extra") is not None


def test_unchanged_content_adds_no_snapshot(
    tmp_path: Path, config_file: Path, start_daemon: StartDaemon
) -> None:
    running = start_daemon(watch_toml(tmp_path, [config_file]))
    db = tmp_path / "history.db"

    config_file.write_text(haproxy_config())
    config_file.touch()
    time.sleep(0.8)

    assert snapshot_count(db) == 1
    assert running.thread.is_alive()
