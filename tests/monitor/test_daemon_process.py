"""``lbguard watch`` as a real process: signals, permission errors, a kill mid-send."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from monitor_support import (
    WebhookReceiver,
    free_port,
    haproxy_config,
    wait_for,
    watch_toml,
    webhook_sink,
)

from lbguard.monitor.history import History

LBGUARD = Path(sys.executable).with_name("lbguard")


class WatchProcess:
    """``lbguard -v watch`` in a subprocess with its log in a file."""

    def __init__(
        self,
        config: Path,
        log: Path,
        prefix: tuple[str, ...] = (),
        *,
        verbose: str = "-v",
        cwd: Path | None = None,
    ) -> None:
        self.log = log
        self._log_handle = log.open("ab")
        self.process = subprocess.Popen(
            [*prefix, str(LBGUARD), verbose, "watch", "--config", str(config)],
            stdin=subprocess.DEVNULL,
            stdout=self._log_handle,
            stderr=subprocess.STDOUT,
            cwd=cwd,
        )

    def text(self) -> str:
        return self.log.read_text(errors="replace")

    def wait_log(self, needle: str, timeout: float = 15.0) -> None:
        wait_for(
            lambda: needle in self.text() or self.process.poll() is not None,
            timeout,
            f"log line {needle!r}",
        )
        assert needle in self.text(), self.text()

    def finish(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait(timeout=10)
        self._log_handle.close()


@pytest.fixture
def processes() -> Iterator[list[WatchProcess]]:
    started: list[WatchProcess] = []
    yield started
    for item in started:
        item.finish()


@pytest.fixture
def config_file(tmp_path: Path) -> Path:
    path = tmp_path / "haproxy.cfg"
    path.write_text(haproxy_config())
    return path


def snapshot_weights(db: Path) -> list[int]:
    with History(db) as history:
        weights = []
        for snapshot in reversed(history.snapshots(100)):
            pool = snapshot.model().pool("be_web")
            assert pool is not None
            weights.append(sum(server.weight for server in pool.servers))
        return weights


def test_sigterm_stops_cleanly(
    tmp_path: Path, config_file: Path, processes: list[WatchProcess]
) -> None:
    port = free_port()
    config = watch_toml(tmp_path, [config_file], metrics=f"127.0.0.1:{port}")
    watch = WatchProcess(config, tmp_path / "watch.log")
    processes.append(watch)
    watch.wait_log("recorded first snapshot")

    watch.process.send_signal(signal.SIGTERM)
    assert watch.process.wait(timeout=15) == 0
    log = watch.text()
    assert "received SIGTERM, stopping" in log
    assert "lbguard watch stopped" in log
    with pytest.raises(httpx.ConnectError):
        httpx.get(f"http://127.0.0.1:{port}/metrics", timeout=2)


def test_sighup_reloads_configuration(
    tmp_path: Path, config_file: Path, processes: list[WatchProcess]
) -> None:
    config = watch_toml(tmp_path, [config_file])
    watch = WatchProcess(config, tmp_path / "watch.log")
    processes.append(watch)
    watch.wait_log("recorded first snapshot")

    second = tmp_path / "second.cfg"
    second.write_text("\nbackend be_more\n    server more1 127.0.0.1:9020\n")
    watch_toml(tmp_path, [config_file, second])
    watch.process.send_signal(signal.SIGHUP)
    watch.wait_log("reloaded")
    watch.wait_log("configuration changed (reload)")

    broken = tmp_path / "watch.toml"
    broken.write_text(broken.read_text() + "\nunknown_key = 1\n")
    watch.process.send_signal(signal.SIGHUP)
    watch.wait_log("reload failed, keeping the running configuration")
    assert watch.process.poll() is None

    with History(tmp_path / "history.db") as history:
        latest = history.snapshots(1)[0].model()
    assert latest.pool("be_more") is not None


@pytest.mark.skipif(
    os.geteuid() == 0 and shutil.which("setpriv") is None,
    reason="running as root without setpriv: root reads unreadable files",
)
def test_permission_error_is_retried(
    tmp_path: Path, config_file: Path, processes: list[WatchProcess]
) -> None:
    # Root bypasses file modes through CAP_DAC_OVERRIDE, so the daemon runs without it.
    prefix: tuple[str, ...] = ()
    if os.geteuid() == 0:
        prefix = ("setpriv", "--bounding-set=-dac_override,-dac_read_search")
    config = watch_toml(tmp_path, [config_file])
    watch = WatchProcess(config, tmp_path / "watch.log", prefix)
    processes.append(watch)
    watch.wait_log("recorded first snapshot")

    config_file.write_text(haproxy_config(w1=20))
    config_file.chmod(0)
    watch.wait_log("permission denied")
    assert f"permission denied reading configuration file {config_file}" in watch.text()
    assert "retrying in" in watch.text()
    assert watch.process.poll() is None

    config_file.chmod(0o644)
    watch.wait_log("configuration readable again")
    wait_for(lambda: len(snapshot_weights(tmp_path / "history.db")) == 2, 10, "new snapshot")
    assert snapshot_weights(tmp_path / "history.db") == [30, 40]


def test_kill_mid_send_delivers_once(
    tmp_path: Path,
    config_file: Path,
    receiver: WebhookReceiver,
    processes: list[WatchProcess],
) -> None:
    config = watch_toml(tmp_path, [config_file], sinks=webhook_sink(receiver.url))
    first = WatchProcess(config, tmp_path / "watch.log")
    processes.append(first)
    first.wait_log("recorded first snapshot")

    # The receiver reads the delivery and delays its response. The daemon is killed while
    # it waits for the response, so the outbox never records the delivery as sent.
    receiver.holding = True
    config_file.write_text(haproxy_config(w3=100))
    assert receiver.received.wait(15)
    first.process.send_signal(signal.SIGKILL)
    first.process.wait(timeout=10)
    receiver.holding = False
    receiver.release.set()

    with History(tmp_path / "history.db") as history:
        pending = history.connection.execute("SELECT status FROM outbox").fetchall()
    assert [row["status"] for row in pending] == ["pending"]

    second = WatchProcess(config, tmp_path / "watch.log")
    processes.append(second)
    wait_for(lambda: len(receiver.receipts) == 2, 15, "the repeated delivery")
    time.sleep(0.5)

    keys = {receipt.headers["Idempotency-Key"] for receipt in receiver.receipts}
    assert len(receiver.receipts) == 2
    assert len(keys) == 1
    assert len(receiver.processed) == 1
    with History(tmp_path / "history.db") as history:
        rows = history.connection.execute("SELECT status, attempts FROM outbox").fetchall()
        alerts = history.connection.execute("SELECT count(*) FROM alerts").fetchone()[0]
    assert [row["status"] for row in rows] == ["sent"]
    assert alerts == 1


def test_sink_outage_then_delivery(
    tmp_path: Path,
    config_file: Path,
    receiver: WebhookReceiver,
    processes: list[WatchProcess],
) -> None:
    config = watch_toml(tmp_path, [config_file], sinks=webhook_sink(receiver.url))
    receiver.down()
    watch = WatchProcess(config, tmp_path / "watch.log")
    processes.append(watch)
    watch.wait_log("recorded first snapshot")

    config_file.write_text(haproxy_config(w3=100))
    watch.wait_log("failed (attempt 1)")
    watch.wait_log("failed (attempt 2)")
    assert receiver.url not in watch.text()

    # Restarting the daemon while the sink is still down keeps the queued alert.
    watch.process.send_signal(signal.SIGTERM)
    assert watch.process.wait(timeout=15) == 0
    receiver.up()
    restarted = WatchProcess(config, tmp_path / "watch.log")
    processes.append(restarted)
    wait_for(lambda: receiver.processed, 15, "the delivery after the outage")
    time.sleep(0.5)

    assert len(receiver.receipts) == 1
    assert receiver.processed[0].body["labels"]["alertname"] == "LbguardShareShift"
    with History(tmp_path / "history.db") as history:
        row = history.connection.execute("SELECT status, attempts FROM outbox").fetchone()
    assert row["status"] == "sent"
    assert row["attempts"] >= 3


def without_dac_override() -> tuple[str, ...]:
    """Return a command prefix that makes root obey file modes, as other users do."""
    if os.geteuid() != 0:
        return ()
    if shutil.which("setpriv") is None:
        pytest.skip("running as root without setpriv: root writes anywhere")
    return ("setpriv", "--bounding-set=-dac_override,-dac_read_search")


def test_verbose_log_hides_webhook_token(
    tmp_path: Path,
    config_file: Path,
    receiver: WebhookReceiver,
    processes: list[WatchProcess],
) -> None:
    url = receiver.url + "/TOKEN123?token=SECRET456"
    config = watch_toml(tmp_path, [config_file], sinks=webhook_sink(url))
    watch = WatchProcess(config, tmp_path / "watch.log")
    processes.append(watch)
    watch.wait_log("recorded first snapshot")

    config_file.write_text(haproxy_config(w3=100))
    wait_for(lambda: receiver.processed, 15, "the alert")
    watch.wait_log("delivered firing alert")

    log = watch.text()
    assert receiver.processed[0].path == "/hook/TOKEN123?token=SECRET456"
    assert "TOKEN123" not in log
    assert "SECRET456" not in log
    assert "HTTP Request" not in log


def test_debug_log_in_watched_folder_stays_quiet(
    tmp_path: Path, processes: list[WatchProcess]
) -> None:
    folder = tmp_path / "conf.d"
    folder.mkdir()
    (folder / "10-base.cfg").write_text(haproxy_config())
    config = watch_toml(tmp_path, [folder])
    watch = WatchProcess(config, folder / "watch.log", verbose="-vv")
    processes.append(watch)
    watch.wait_log("recorded first snapshot")

    time.sleep(1.0)
    settled = len(watch.text().splitlines())
    time.sleep(2.0)
    later = len(watch.text().splitlines())

    assert later - settled < 5, watch.text()[-2000:]
    assert watch.process.poll() is None


def test_sighup_during_start_up(
    tmp_path: Path, config_file: Path, processes: list[WatchProcess]
) -> None:
    config = watch_toml(tmp_path, [config_file])
    watch = WatchProcess(config, tmp_path / "watch.log", verbose="-vv")
    processes.append(watch)

    # Sent as soon as the handlers exist, while the daemon's modules are still importing.
    watch.wait_log("signal handlers installed")
    watch.process.send_signal(signal.SIGHUP)
    watch.wait_log("recorded first snapshot")
    watch.wait_log("reloaded")

    assert watch.process.poll() is None


def run_watch(config: Path, prefix: tuple[str, ...] = ()) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*prefix, str(LBGUARD), "watch", "--config", str(config)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_start_errors_name_the_setting(tmp_path: Path, config_file: Path) -> None:
    no_profile = watch_toml(tmp_path, [config_file])
    no_profile.write_text('traffic = "nope.yaml"\n' + no_profile.read_text())
    profile_error = run_watch(no_profile)

    (tmp_path / "notes.db").write_text("not a database\n" * 200)
    not_a_db = watch_toml(tmp_path, [config_file])
    not_a_db.write_text(not_a_db.read_text().replace("history.db", "notes.db"))
    db_error = run_watch(not_a_db)

    assert profile_error.returncode == 2
    assert f"traffic profile {tmp_path / 'nope.yaml'} not found" in profile_error.stderr
    assert "set traffic in watch.toml" in profile_error.stderr
    assert "--traffic" not in profile_error.stderr
    assert db_error.returncode == 2
    assert f"{tmp_path / 'notes.db'} is not an SQLite database" in db_error.stderr
    assert "set db in watch.toml" in db_error.stderr
    assert "writable" not in db_error.stderr


def test_read_only_db_folder_names_the_setting(tmp_path: Path, config_file: Path) -> None:
    prefix = without_dac_override()
    locked = tmp_path / "locked"
    locked.mkdir(mode=0o555)
    config = watch_toml(tmp_path, [config_file])
    config.write_text(config.read_text().replace("history.db", "locked/history.db"))

    result = run_watch(config, prefix)

    assert result.returncode == 2
    assert f"cannot open history database {locked / 'history.db'}" in result.stderr
    assert "set db in watch.toml" in result.stderr
    assert "--db" not in result.stderr


def test_relative_config_path_logged_absolute(
    tmp_path: Path, processes: list[WatchProcess]
) -> None:
    watch_toml(tmp_path, [Path("missing.cfg")])
    watch = WatchProcess(Path("watch.toml"), tmp_path / "watch.log", cwd=tmp_path)
    processes.append(watch)

    watch.wait_log("cannot read the configuration")

    assert str(tmp_path / "missing.cfg") in watch.text()
