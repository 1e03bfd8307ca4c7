"""Alerts: what a configuration change or an audit fires and resolves.

Two kinds of alert exist. ``LbguardShareShift`` fires once per pool when a change moves a
server's predicted share by at least the threshold. It resolves when every server of that
pool is back within the threshold of its share before the change (a revert), or when the
alert's time to live ends because the change was intended. ``LbguardFinding`` fires for an
audit finding at or above the configured severity, and resolves when an audit no longer
reports it. Alerts are identified by a fingerprint of their labels, as in Alertmanager.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from enum import StrEnum
from typing import Any

from lbguard.model import Severity
from lbguard.monitor.diff import ConfigDiff
from lbguard.monitor.render import impact_text
from lbguard.monitor.shares import ShareDelta, ShareTable, format_share

SHARE_SHIFT = "LbguardShareShift"
FINDING = "LbguardFinding"


class AlertStatus(StrEnum):
    FIRING = "firing"
    RESOLVED = "resolved"


@dataclass(frozen=True)
class Alert:
    """One alert as the sinks send it."""

    alertname: str
    severity: str
    """``warning`` or ``critical``, the values Alertmanager routes usually match."""

    labels: Mapping[str, str]
    """Identifying labels besides alertname and severity (``lb``, ``pool``, ``rule``)."""

    summary: str
    description: str
    status: AlertStatus
    starts_at: float
    """Seconds since the Unix epoch."""

    ends_at: float
    """Resolution time when resolved; the expiry of the time to live while firing."""

    change_id: int
    """Snapshot id of the configuration that fired or resolved the alert."""

    runbook_url: str = ""
    details: Mapping[str, Any] = field(default_factory=dict)
    """Machine-readable facts: the share changes, the finding's numbers."""

    @property
    def fingerprint(self) -> str:
        return fingerprint(self.alertname, self.labels)

    def all_labels(self, extra: Mapping[str, str] | None = None) -> dict[str, str]:
        """Return the labels a sink sends: extra routing labels first, identity labels win."""
        labels = dict(extra or {})
        labels.update(self.labels)
        labels["alertname"] = self.alertname
        labels["severity"] = self.severity
        return labels

    def to_json(self) -> str:
        return json.dumps(asdict(self), sort_keys=True)

    @classmethod
    def from_json(cls, text: str) -> Alert:
        data = json.loads(text)
        data["status"] = AlertStatus(data["status"])
        return cls(**data)


def fingerprint(alertname: str, labels: Mapping[str, str]) -> str:
    """Return a stable SHA-256 hex digest of the alert name and its identifying labels."""
    text = json.dumps({"alertname": alertname, **labels}, sort_keys=True)
    return hashlib.sha256(text.encode()).hexdigest()[:32]


@dataclass(frozen=True)
class Thresholds:
    """When a change or an audit raises an alert."""

    share_points: float = 10.0
    """Minimum change of any server's share, in percentage points, that fires an alert."""

    critical_points: float = 25.0
    """Share change in percentage points from which the alert's severity is critical."""

    finding_severity: Severity | None = Severity.WARNING
    """Minimum severity of a finding that fires an alert; None sends no finding alerts."""

    alert_ttl: float = 4 * 3600.0
    """Seconds after which a share-shift alert resolves by itself."""


@dataclass(frozen=True)
class FiringAlert:
    """A stored alert that has not resolved yet."""

    id: int
    alert: Alert
    baseline: Mapping[str, Any]
    """State the alert compares with: the shares before the change for a share shift."""


@dataclass(frozen=True)
class AlertEvent:
    """A state change to record: a new alert firing, or a firing alert resolving."""

    alert: Alert
    baseline: Mapping[str, Any] = field(default_factory=dict)
    resolves: int | None = None
    """Id of the stored alert this event resolves; None for a new alert."""


def evaluate_share_shift(
    diff: ConfigDiff,
    old_shares: ShareTable,
    new_shares: ShareTable,
    firing: Iterable[FiringAlert],
    thresholds: Thresholds,
    *,
    instance: str,
    change_id: int,
    now: float,
) -> list[AlertEvent]:
    """Fire a share-shift alert per pool whose servers moved past the threshold, and
    resolve the firing ones whose pool is back near its baseline."""
    events: list[AlertEvent] = []
    firing_by_pool = {
        item.alert.labels.get("pool", ""): item
        for item in firing
        if item.alert.alertname == SHARE_SHIFT
    }

    for pool, item in firing_by_pool.items():
        deviation = _deviation(item.baseline, new_shares, pool)
        if deviation < thresholds.share_points:
            reason = f"every server back within {deviation:.1f} points of its earlier share"
            events.append(_resolved(item, change_id, now, reason))

    # Shares that move without a model change come from the prediction's inputs (a new
    # traffic profile), not from the configuration.
    if not diff.changes:
        return events

    old_pools = {row.pool for row in old_shares.values()}
    moved: dict[str, list[ShareDelta]] = {}
    for delta in diff.impact:
        # A new pool's servers appear from nothing; that is not a shift between servers.
        if delta.pool not in old_pools:
            continue
        moved.setdefault(delta.pool, []).append(delta)
    for pool, deltas in moved.items():
        largest = max(delta.points for delta in deltas)
        if largest < thresholds.share_points or pool in firing_by_pool:
            continue
        severity = "critical" if largest >= thresholds.critical_points else "warning"
        labels = {"lb": instance, "pool": pool}
        top = max(deltas, key=lambda delta: delta.points)
        before, after = top.measured
        changes = [
            f"{change.location}: {change.describe()}"
            if change.location.file
            else change.describe()
            for change in diff.changes
            if _concerns_pool(change.subject, pool)
        ]
        description = "\n".join(
            ["Predicted shares:"]
            + [f"  {impact_text(delta)}" for delta in deltas]
            + (["Changes:"] + [f"  {line}" for line in changes] if changes else [])
        )
        alert = Alert(
            alertname=SHARE_SHIFT,
            severity=severity,
            labels=labels,
            summary=(
                f"{instance or 'load balancer'}: configuration change moves "
                f"{top.key} from {format_share(before)} to {format_share(after)} "
                f"of {top.basis}"
            ),
            description=description,
            status=AlertStatus.FIRING,
            starts_at=now,
            ends_at=now + thresholds.alert_ttl,
            change_id=change_id,
            details={
                "max_points": round(largest, 3),
                "servers": {
                    delta.key: [delta.before_of_pool, delta.after_of_pool] for delta in deltas
                },
            },
        )
        events.append(AlertEvent(alert, _baseline(old_shares, pool)))
    return events


def evaluate_findings(
    findings: Sequence[Mapping[str, Any]],
    firing: Iterable[FiringAlert],
    thresholds: Thresholds,
    *,
    instance: str,
    change_id: int,
    now: float,
) -> list[AlertEvent]:
    """Fire an alert for each new finding at or above the threshold severity, and resolve
    the firing ones that the audit no longer reports."""
    current: dict[str, Mapping[str, Any]] = {}
    if thresholds.finding_severity is not None:
        for finding in findings:
            if Severity(finding["severity"]).rank < thresholds.finding_severity.rank:
                continue
            labels = {
                "lb": instance,
                "rule": str(finding["rule_id"]),
                "subject": str(finding.get("subject", "")),
            }
            current.setdefault(fingerprint(FINDING, labels), finding)

    events: list[AlertEvent] = []
    firing_keys: set[str] = set()
    for item in firing:
        if item.alert.alertname != FINDING:
            continue
        firing_keys.add(item.alert.fingerprint)
        if item.alert.fingerprint not in current:
            events.append(_resolved(item, change_id, now, "the audit no longer reports it"))

    for key, finding in current.items():
        if key in firing_keys:
            continue
        location = finding.get("location", "")
        severity = "critical" if finding["severity"] == Severity.ERROR else "warning"
        labels = {
            "lb": instance,
            "rule": str(finding["rule_id"]),
            "subject": str(finding.get("subject", "")),
        }
        alert = Alert(
            alertname=FINDING,
            severity=severity,
            labels=labels,
            summary=f"{instance or 'load balancer'}: {finding['rule_id']} {finding['reason']}",
            description=f"{location}: {finding['reason']}" if location else finding["reason"],
            status=AlertStatus.FIRING,
            starts_at=now,
            # A finding alert lasts as long as audits report it: a long expiry, renewed by
            # nothing, so that a silent daemon does not leave it firing for ever.
            ends_at=now + max(thresholds.alert_ttl, 24 * 3600.0),
            change_id=change_id,
            details={"finding": dict(finding)},
        )
        events.append(AlertEvent(alert))
    return events


def expire(firing: Iterable[FiringAlert], *, change_id: int, now: float) -> list[AlertEvent]:
    """Resolve the firing alerts whose time to live has ended."""
    return [
        _resolved(item, change_id, now, "its time to live ended")
        for item in firing
        if item.alert.ends_at <= now
    ]


def _resolved(item: FiringAlert, change_id: int, now: float, reason: str) -> AlertEvent:
    alert = item.alert
    resolved = Alert(
        alertname=alert.alertname,
        severity=alert.severity,
        labels=alert.labels,
        summary=f"{alert.summary} ({reason})",
        description=alert.description,
        status=AlertStatus.RESOLVED,
        starts_at=alert.starts_at,
        ends_at=now,
        change_id=change_id,
        runbook_url=alert.runbook_url,
        details=alert.details,
    )
    return AlertEvent(resolved, item.baseline, resolves=item.id)


def _baseline(shares: ShareTable, pool: str) -> dict[str, Any]:
    rows = [row for row in shares.values() if row.pool == pool]
    use_total = bool(rows) and all(row.share_of_total is not None for row in rows)
    return {
        "basis": "total" if use_total else "pool",
        "shares": {
            row.key: (row.share_of_total if use_total else row.share_of_pool) for row in rows
        },
    }


def _deviation(baseline: Mapping[str, Any], shares: ShareTable, pool: str) -> float:
    """Return the largest distance, in percentage points, between the pool's current
    shares and its baseline; servers absent on one side count as 0."""
    use_total = baseline.get("basis") == "total"
    before: Mapping[str, float] = baseline.get("shares", {})
    current: dict[str, float] = {}
    for row in shares.values():
        if row.pool != pool:
            continue
        value = row.share_of_total if use_total else row.share_of_pool
        current[row.key] = value or 0.0
    keys = set(before) | set(current)
    return max(
        (abs(current.get(key, 0.0) - (before.get(key) or 0.0)) * 100 for key in keys),
        default=0.0,
    )


def _concerns_pool(subject: str, pool: str) -> bool:
    return subject == pool or subject.startswith(f"{pool}/")
