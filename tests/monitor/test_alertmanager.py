"""Integration with a real Prometheus Alertmanager started on 127.0.0.1."""

from __future__ import annotations

import os
import shutil
import subprocess
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from monitor_support import RunningDaemon, free_port, haproxy_config, wait_for, watch_toml

BINARY_NAMES = ("prometheus-alertmanager", "alertmanager")

StartDaemon = Callable[[Path], RunningDaemon]


def alertmanager_binary() -> str:
    for name in BINARY_NAMES:
        found = shutil.which(name)
        if found:
            return found
    if os.environ.get("LBGUARD_REQUIRE_PRODUCTS") == "1":
        pytest.fail("Alertmanager not found; install the prometheus-alertmanager package")
    pytest.skip("Alertmanager not found (install prometheus-alertmanager to run this test)")


@pytest.fixture
def alertmanager(tmp_path: Path) -> Iterator[str]:
    """Start Alertmanager with clustering off and temporary storage; yield its URL."""
    binary = alertmanager_binary()
    directory = tmp_path / "alertmanager"
    directory.mkdir()
    config = directory / "alertmanager.yml"
    config.write_text("route:\n  receiver: blackhole\nreceivers:\n  - name: blackhole\n")
    port = free_port()
    log = (directory / "alertmanager.log").open("wb")
    process = subprocess.Popen(
        [
            binary,
            f"--config.file={config}",
            f"--storage.path={directory / 'data'}",
            f"--web.listen-address=127.0.0.1:{port}",
            "--cluster.listen-address=",
        ],
        stdin=subprocess.DEVNULL,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    url = f"http://127.0.0.1:{port}"

    def ready() -> bool:
        if process.poll() is not None:
            pytest.fail(f"Alertmanager exited: {(directory / 'alertmanager.log').read_text()}")
        try:
            return httpx.get(f"{url}/-/ready", timeout=1).status_code == 200
        except httpx.HTTPError:
            return False

    try:
        wait_for(ready, 20, "Alertmanager readiness")
        yield url
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=10)
        log.close()


def active_alerts(url: str) -> list[dict[str, Any]]:
    response = httpx.get(f"{url}/api/v2/alerts", timeout=5)
    response.raise_for_status()
    alerts: list[dict[str, Any]] = response.json()
    return [alert for alert in alerts if alert["labels"].get("lb") == "test-lb"]


def test_weight_change_fires_and_revert_resolves(
    tmp_path: Path, alertmanager: str, start_daemon: StartDaemon
) -> None:
    config_file = tmp_path / "haproxy.cfg"
    config_file.write_text(haproxy_config())
    sink = f"""
[[sinks]]
name = "alertmanager"
type = "alertmanager"
url = "{alertmanager}"
owner = "edge-oncall"
labels = {{ team = "edge" }}
runbook_url = "https://runbooks.invalid/lb-share-shift"
"""
    start_daemon(watch_toml(tmp_path, [config_file], sinks=sink))
    assert active_alerts(alertmanager) == []

    config_file.write_text(haproxy_config(w3=100))
    alerts = wait_for(lambda: active_alerts(alertmanager), 15, "the alert in Alertmanager")
    time.sleep(1.0)
    alerts = active_alerts(alertmanager)

    assert len(alerts) == 1
    alert = alerts[0]
    assert alert["status"]["state"] == "active"
    assert alert["labels"]["alertname"] == "LbguardShareShift"
    assert alert["labels"]["severity"] == "critical"
    assert alert["labels"]["team"] == "edge"
    assert alert["labels"]["owner"] == "edge-oncall"
    assert alert["labels"]["pool"] == "be_web"
    assert alert["annotations"]["runbook_url"] == "https://runbooks.invalid/lb-share-shift"
    assert "83.3 %" in alert["annotations"]["summary"]
    assert "be_web/web3: 33.3 % → 83.3 % of be_web" in alert["annotations"]["description"]

    config_file.write_text(haproxy_config())
    wait_for(lambda: active_alerts(alertmanager) == [], 15, "the alert to resolve")
    assert active_alerts(alertmanager) == []
