"""When share shifts and findings fire and resolve, over predicted real configurations."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from monitor_support import (
    ROUTED,
    RunningDaemon,
    WebhookReceiver,
    haproxy_config,
    wait_for,
    watch_toml,
    webhook_sink,
)

from lbguard.monitor.alerts import (
    FINDING,
    SHARE_SHIFT,
    AlertEvent,
    AlertStatus,
    FiringAlert,
    Thresholds,
    evaluate_findings,
    evaluate_share_shift,
    expire,
)
from lbguard.monitor.diff import diff_configs
from lbguard.monitor.history import History
from lbguard.monitor.shares import ServerShares, share_table
from lbguard.parsers import load_config
from lbguard.predict import predict
from lbguard.traffic import load_profile

StartDaemon = Callable[[Path], RunningDaemon]


def shares_for(tmp_path: Path, name: str, text: str) -> tuple[object, dict[str, ServerShares]]:
    path = tmp_path / name
    path.write_text(text)
    lb = load_config([path])
    return lb, share_table(predict(lb))


def shift(
    tmp_path: Path, old_text: str, new_text: str, firing: list[FiringAlert], points: float
) -> list[AlertEvent]:
    old_lb, old_shares = shares_for(tmp_path, "old.cfg", old_text)
    new_lb, new_shares = shares_for(tmp_path, "new.cfg", new_text)
    diff = diff_configs(old_lb, new_lb, old_shares, new_shares)  # type: ignore[arg-type]
    return evaluate_share_shift(
        diff,
        old_shares,
        new_shares,
        firing,
        Thresholds(share_points=points),
        instance="edge-1",
        change_id=2,
        now=100.0,
    )


def test_small_shift_stays_quiet(tmp_path: Path) -> None:
    # 10/10/10 to 10/10/12 moves web3 from 33.3 % to 37.5 % of the pool: 4.2 points.
    events = shift(tmp_path, haproxy_config(), haproxy_config(w3=12), [], points=10)
    assert events == []


def test_large_shift_fires_once_per_pool(tmp_path: Path) -> None:
    events = shift(tmp_path, haproxy_config(), haproxy_config(w3=100), [], points=10)

    assert len(events) == 1
    alert = events[0].alert
    assert alert.alertname == SHARE_SHIFT
    assert alert.status is AlertStatus.FIRING
    assert alert.severity == "critical"
    assert dict(alert.labels) == {"lb": "edge-1", "pool": "be_web"}
    assert alert.ends_at == 100.0 + Thresholds().alert_ttl
    assert events[0].baseline["basis"] == "pool"
    assert events[0].baseline["shares"]["be_web/web3"] == pytest.approx(1 / 3)


def test_revert_resolves_and_partial_revert_does_not(tmp_path: Path) -> None:
    fired = shift(tmp_path, haproxy_config(), haproxy_config(w3=100), [], points=10)[0]
    firing = [FiringAlert(1, fired.alert, fired.baseline)]

    partial = shift(tmp_path, haproxy_config(w3=100), haproxy_config(w3=30), firing, points=10)
    reverted = shift(tmp_path, haproxy_config(w3=100), haproxy_config(w3=11), firing, points=10)

    assert partial == []
    assert len(reverted) == 1
    assert reverted[0].resolves == 1
    assert reverted[0].alert.status is AlertStatus.RESOLVED
    assert reverted[0].alert.ends_at == 100.0


def test_time_to_live_expires(tmp_path: Path) -> None:
    fired = shift(tmp_path, haproxy_config(), haproxy_config(w3=100), [], points=10)[0]
    firing = [FiringAlert(1, fired.alert, fired.baseline)]

    early = expire(firing, change_id=3, now=fired.alert.ends_at - 1)
    late = expire(firing, change_id=3, now=fired.alert.ends_at)

    assert early == []
    assert [event.resolves for event in late] == [1]
    assert late[0].alert.summary.endswith("(its time to live ended)")


def finding(rule: str, severity: str, subject: str = "be_web/web3") -> dict[str, object]:
    return {
        "rule_id": rule,
        "severity": severity,
        "reason": "skewed",
        "subject": subject,
        "location": "haproxy.cfg:15",
    }


def test_findings_fire_at_threshold_and_resolve() -> None:
    thresholds = Thresholds(finding_severity=None)
    quiet = evaluate_findings(
        [finding("LB201", "error")], [], thresholds, instance="edge-1", change_id=1, now=1.0
    )
    events = evaluate_findings(
        [finding("LB201", "warning"), finding("LB301", "info")],
        [],
        Thresholds(),
        instance="edge-1",
        change_id=1,
        now=1.0,
    )

    assert quiet == []
    assert [event.alert.labels["rule"] for event in events] == ["LB201"]
    assert events[0].alert.alertname == FINDING
    assert events[0].alert.description == "haproxy.cfg:15: skewed"

    firing = [FiringAlert(5, events[0].alert, {})]
    again = evaluate_findings(
        [finding("LB201", "warning")],
        firing,
        Thresholds(),
        instance="edge-1",
        change_id=2,
        now=2.0,
    )
    gone = evaluate_findings([], firing, Thresholds(), instance="edge-1", change_id=3, now=3.0)

    assert again == []
    assert [event.resolves for event in gone] == [5]


def test_scheduled_audit_records_and_alerts(
    tmp_path: Path, receiver: WebhookReceiver, start_daemon: StartDaemon
) -> None:
    config_file = tmp_path / "haproxy.cfg"
    config_file.write_text(haproxy_config(w3=100))
    config = watch_toml(
        tmp_path,
        [config_file],
        sinks=webhook_sink(receiver.url),
        thresholds={"finding_severity": "warning"},
    )
    config.write_text(config.read_text().replace("audit_interval = 0", "audit_interval = 0.5"))
    start_daemon(config)

    def scheduled() -> list[str]:
        with History(tmp_path / "history.db") as history:
            return [audit.trigger for audit in history.audits(1)]

    triggers = wait_for(
        lambda: found if (found := scheduled()).count("schedule") >= 2 else None,
        10,
        "two scheduled audits",
    )
    wait_for(lambda: receiver.processed, 10, "the finding alert")

    assert triggers[0] == "start"
    alertnames = {receipt.body["labels"]["alertname"] for receipt in receiver.processed}
    assert alertnames == {FINDING}
    rules = [receipt.body["labels"]["rule"] for receipt in receiver.processed]
    assert len(rules) == len(set(rules))


def test_new_pool_is_not_a_shift(tmp_path: Path) -> None:
    # Without a traffic profile the new pool's servers go from absent to 100 % of it.
    extra = "\nbackend be_extra\n    server extra1 127.0.0.1:9010\n"
    events = shift(tmp_path, haproxy_config(), haproxy_config() + extra, [], points=10)

    assert events == []


def routed_shares(tmp_path: Path, name: str, text: str, api: float) -> tuple[Any, Any]:
    (tmp_path / f"{name}.yaml").write_text(
        f'requests: 1000\npaths: {{"/": {1 - api}, "/api/items": {api}}}\n'
    )
    (tmp_path / f"{name}.cfg").write_text(text)
    lb = load_config([tmp_path / f"{name}.cfg"])
    profile = load_profile(tmp_path / f"{name}.yaml")
    return lb, share_table(predict(lb, profile))


def test_no_model_change_fires_nothing(tmp_path: Path) -> None:
    # The same configuration predicted for two profiles: shares move, the model does not.
    old_lb, old_shares = routed_shares(tmp_path, "old", ROUTED, api=0.5)
    new_lb, new_shares = routed_shares(tmp_path, "new", ROUTED, api=0.1)
    diff = diff_configs(old_lb, new_lb, old_shares, new_shares)

    events = evaluate_share_shift(
        diff, old_shares, new_shares, [], Thresholds(), instance="edge-1", change_id=2, now=1.0
    )

    assert diff.impact
    assert diff.changes == ()
    assert events == []


def test_summary_quotes_share_of_all_traffic(tmp_path: Path) -> None:
    old_lb, old_shares = routed_shares(tmp_path, "old", ROUTED, api=0.5)
    moved = ROUTED.replace("server api1 127.0.0.1:9004", "server api1 127.0.0.1:9004 weight 9")
    new_lb, new_shares = routed_shares(tmp_path, "new", moved, api=0.5)
    diff = diff_configs(old_lb, new_lb, old_shares, new_shares)

    events = evaluate_share_shift(
        diff, old_shares, new_shares, [], Thresholds(), instance="edge-1", change_id=2, now=1.0
    )

    assert len(events) == 1
    # api1 goes from 50 % to 90 % of be_api, which takes half of all traffic.
    assert events[0].alert.summary == (
        "edge-1: configuration change moves be_api/api1 from 25.0 % to 45.0 % of all traffic"
    )
    assert events[0].alert.severity == "warning"
