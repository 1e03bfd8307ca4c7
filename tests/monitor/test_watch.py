"""The watch daemon on real files: every way an edit reaches the disk, and alerts."""

from __future__ import annotations

import os
import re
import shutil
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from monitor_support import (
    ROUTED,
    BlackHole,
    RunningDaemon,
    WebhookReceiver,
    haproxy_config,
    wait_for,
    watch_toml,
    webhook_sink,
)

from lbguard.errors import ConfigError
from lbguard.monitor.config import load_watch_config
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


@pytest.fixture
def black_hole() -> Iterator[BlackHole]:
    hole = BlackHole()
    yield hole
    hole.close()


def test_hanging_sink_delays_only_itself(
    tmp_path: Path,
    config_file: Path,
    receiver: WebhookReceiver,
    black_hole: BlackHole,
    start_daemon: StartDaemon,
) -> None:
    # The hanging sink comes first, so its deliveries are queued before the good ones.
    sinks = webhook_sink(black_hole.url, "hanging") + webhook_sink(receiver.url, "good")
    running = start_daemon(watch_toml(tmp_path, [config_file], sinks=sinks))
    db = tmp_path / "history.db"

    latencies = []
    for weight in (100, 10, 100):
        count = len(receiver.processed) + 1
        written = time.time()
        config_file.write_text(haproxy_config(w3=weight))
        wait_for(lambda: len(receiver.processed) == count, 10, "the good sink")  # noqa: B023
        latencies.append(receiver.processed[-1].time - written)
        wait_for(lambda: snapshot_count(db) == count + 1, 10, "the snapshot")  # noqa: B023

    # Each delivery to the hanging sink waits for its 5 s timeout. The good sink's alerts
    # arrive after about the 0.1 s debounce, so under 4 s shows that they did not wait.
    assert max(latencies) < 4.0, latencies
    assert [receipt.body["status"] for receipt in receiver.processed] == [
        "firing",
        "resolved",
        "firing",
    ]
    assert running.thread.is_alive()


def test_configmap_symlink_swap(tmp_path: Path, start_daemon: StartDaemon) -> None:
    # Kubernetes ConfigMap volume: haproxy.cfg -> ..data/haproxy.cfg, ..data -> a
    # timestamped folder, updated by renaming a new ..data link over the old one.
    volume = tmp_path / "lb"
    volume.mkdir()

    def publish(version: str, weight: int) -> None:
        folder = volume / f"..{version}"
        folder.mkdir()
        (folder / "haproxy.cfg").write_text(haproxy_config(w1=weight))
        (volume / "..data_tmp").symlink_to(folder.name)
        os.replace(volume / "..data_tmp", volume / "..data")

    publish("2024_01_01", 10)
    (volume / "haproxy.cfg").symlink_to("..data/haproxy.cfg")
    start_daemon(watch_toml(tmp_path, [volume / "haproxy.cfg"]))
    db = tmp_path / "history.db"

    publish("2024_01_02", 50)
    shutil.rmtree(volume / "..2024_01_01")
    wait_for(lambda: snapshot_count(db) == 2, 10, "the snapshot after the first swap")
    assert latest_weight(db, "web1") == 50

    publish("2024_01_03", 60)
    shutil.rmtree(volume / "..2024_01_02")
    wait_for(lambda: snapshot_count(db) == 3, 10, "the snapshot after the second swap")
    assert latest_weight(db, "web1") == 60


def test_reload_with_new_profile_fires_no_shift(
    tmp_path: Path,
    receiver: WebhookReceiver,
    start_daemon: StartDaemon,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level("INFO", logger="lbguard")
    config_file = tmp_path / "haproxy.cfg"
    config_file.write_text(ROUTED)
    profile = tmp_path / "traffic.yaml"
    profile.write_text('requests: 1000\npaths: {"/": 0.5, "/api/items": 0.5}\n')
    config = watch_toml(tmp_path, [config_file], sinks=webhook_sink(receiver.url))
    config.write_text(f'traffic = "{profile}"\n' + config.read_text())
    running = start_daemon(config)
    db = tmp_path / "history.db"

    profile.write_text('requests: 1000\npaths: {"/": 0.9, "/api/items": 0.1}\n')
    running.daemon.request_reload()
    wait_for(lambda: "reloaded" in caplog.text, 10, "the reload")
    config_file.write_text("# reviewed\n" + ROUTED)
    wait_for(lambda: snapshot_count(db) == 2, 10, "the comment-only snapshot")
    time.sleep(1.0)

    assert receiver.receipts == []
    assert "LbguardShareShift" not in caplog.text


def test_retention_prunes_after_snapshot(
    tmp_path: Path, config_file: Path, start_daemon: StartDaemon
) -> None:
    config = watch_toml(tmp_path, [config_file], extra="\n[history]\nmax_snapshots = 2\n")
    start_daemon(config)
    db = tmp_path / "history.db"

    for weight in (20, 30, 40):
        config_file.write_text(haproxy_config(w1=weight))
        wait_for(lambda: latest_weight(db, "web1") == weight, 10, "the snapshot")  # noqa: B023

    assert snapshot_count(db) == 2
    with History(db) as history:
        ids = [snapshot.id for snapshot in history.snapshots(0, with_model=False)]
    assert ids == [4, 3]


@pytest.mark.parametrize(
    ("watch", "extra", "message"),
    [
        ({}, "\n[checks.LB999]\nfactor = 2\n", "checks.LB999: unknown rule 'LB999'"),
        ({}, "\n[checks.LB201]\nbogus = 2\n", "checks.LB201: rule LB201 has no option 'bogus'"),
        ({"method": "poll", "poll_interval": 0}, "", "watch.poll_interval: expected a number"),
        ({}, "\n[history]\nmax_snapshots = 0\n", "history.max_snapshots: must be at least 1"),
        ({}, "\n[history]\nmax_age_days = 0\n", "history.max_age_days: must be more than 0"),
    ],
)
def test_watch_config_rejects(
    tmp_path: Path, config_file: Path, watch: dict[str, object], extra: str, message: str
) -> None:
    path = watch_toml(tmp_path, [config_file], watch=watch, extra=extra)

    with pytest.raises(ConfigError, match=re.escape(message)) as raised:
        load_watch_config(path)
    assert str(raised.value).startswith(f"{path}: ")


def test_watch_config_product_needs_parser(tmp_path: Path, config_file: Path) -> None:
    path = watch_toml(tmp_path, [config_file])
    path.write_text(path.read_text().replace('product = "haproxy"', 'product = "envoy"'))

    with pytest.raises(ConfigError) as raised:
        load_watch_config(path)

    assert "product: unknown product 'envoy'; use one of haproxy, nginx" in str(raised.value)


def test_watch_config_paths_are_absolute(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    watch_toml(tmp_path, [Path("haproxy.cfg")])

    config = load_watch_config("watch.toml")

    assert config.path == tmp_path / "watch.toml"
    assert config.configs == (tmp_path / "haproxy.cfg",)


def test_watcher_log_counts(
    tmp_path: Path,
    config_file: Path,
    start_daemon: StartDaemon,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level("INFO", logger="lbguard")
    start_daemon(watch_toml(tmp_path, [config_file]))

    assert "watching 1 file in 1 directory by" in caplog.text
