"""The /metrics endpoint of a running watch daemon."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import httpx
from monitor_support import (
    RunningDaemon,
    WebhookReceiver,
    haproxy_config,
    wait_for,
    watch_toml,
    webhook_sink,
)
from prometheus_client.parser import text_string_to_metric_families

StartDaemon = Callable[[Path], RunningDaemon]


def scrape(address: tuple[str, int]) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    host, port = address
    response = httpx.get(f"http://{host}:{port}/metrics", timeout=5)
    response.raise_for_status()
    samples = {}
    for family in text_string_to_metric_families(response.text):
        for sample in family.samples:
            samples[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return samples


def test_metrics_endpoint_contents(
    tmp_path: Path, receiver: WebhookReceiver, start_daemon: StartDaemon
) -> None:
    config_file = tmp_path / "haproxy.cfg"
    config_file.write_text(haproxy_config())
    config = watch_toml(
        tmp_path,
        [config_file],
        metrics="127.0.0.1:0",
        sinks=webhook_sink(receiver.url),
        thresholds={"finding_severity": "warning"},
    )
    running = start_daemon(config)
    address = running.daemon.metrics_address
    assert address is not None
    assert address[0] == "127.0.0.1"

    before = scrape(address)
    lb = ("lb", "test-lb")
    web3 = (lb, ("pool", "be_web"), ("server", "web3"))
    assert before[("lbguard_predicted_share_of_pool", web3)] == 1 / 3
    assert before[("lbguard_pool_imbalance_ratio", (lb, ("pool", "be_web")))] == 1.0
    assert before[("lbguard_last_audit_timestamp_seconds", (lb,))] > 0
    # Labelled counters and the firing gauge have their series at 0 from the start.
    hook = (("sink", "hook"),)
    shift = (("alertname", "LbguardShareShift"), lb)
    assert before[("lbguard_config_changes_total", (lb,))] == 0
    assert before[("lbguard_config_read_errors_total", (lb,))] == 0
    assert before[("lbguard_alert_deliveries_total", hook)] == 0
    assert before[("lbguard_alert_delivery_failures_total", hook)] == 0
    assert before[("lbguard_alerts_firing", shift)] == 0
    assert before[("lbguard_alerts_firing", (("alertname", "LbguardFinding"), lb))] == 0

    config_file.write_text(haproxy_config(w3=100))
    wait_for(lambda: receiver.processed, 10, "the alert delivery")
    after = wait_for(
        lambda: (
            samples
            if (samples := scrape(address)).get(
                ("lbguard_alert_deliveries_total", (("sink", "hook"),))
            )
            else None
        ),
        10,
        "the delivery counter",
    )

    assert after[("lbguard_predicted_share_of_pool", web3)] == 100 / 120
    ratio = after[("lbguard_pool_imbalance_ratio", (lb, ("pool", "be_web")))]
    assert abs(ratio - 2.5) < 1e-9
    assert after[("lbguard_config_changes_total", (lb,))] == 1
    assert after[("lbguard_findings", (lb, ("severity", "warning")))] >= 1
    assert after[("lbguard_alerts_firing", shift)] == 1
    assert after[("lbguard_alert_deliveries_total", hook)] >= 2
    assert after[("lbguard_alert_outbox_pending", ())] == 0

    # A resolved alert leaves its series at 0 instead of removing it.
    config_file.write_text(haproxy_config())
    resolved = wait_for(
        lambda: (
            samples
            if (samples := scrape(address)).get(("lbguard_alerts_firing", shift)) == 0
            else None
        ),
        10,
        "the firing gauge at 0",
    )
    assert resolved[("lbguard_alerts_firing", shift)] == 0
