"""The watch daemon's TOML configuration (``lbguard watch --config watch.toml``).

Relative paths are resolved against the directory of the TOML file. Secrets (webhook URLs,
SMTP passwords) may come from environment variables or files instead of the TOML text:
``url_env``, ``url_file``, ``password_env`` and ``password_file``.
"""

from __future__ import annotations

import os
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

from lbguard.errors import ConfigError
from lbguard.model import Product, Severity
from lbguard.monitor.alerts import Thresholds
from lbguard.monitor.metrics import DEFAULT_LISTEN, parse_listen
from lbguard.monitor.outbox import Backoff
from lbguard.monitor.sinks.alertmanager import AlertmanagerSink
from lbguard.monitor.sinks.interface import AlertSink, Routing
from lbguard.monitor.sinks.slack import SlackSink
from lbguard.monitor.sinks.smtp import EmailSink
from lbguard.monitor.sinks.webhook import WebhookSink

T = TypeVar("T")

WATCH_METHODS = ("auto", "inotify", "poll")

MIN_POLL_INTERVAL = 0.1
"""Shortest poll interval in seconds; a shorter one keeps a CPU busy re-reading the tree."""


@dataclass(frozen=True)
class WatchSettings:
    """Settings for noticing configuration changes."""

    method: str = "auto"
    """``auto`` (inotify, polling when inotify cannot start), ``inotify`` or ``poll``."""

    debounce: float = 0.3
    """Seconds without a new event before a burst of events is processed."""

    max_delay: float = 3.0
    """Maximum wait in seconds, from the first event of a burst, before processing."""

    poll_interval: float = 1.0
    """Seconds between two polls of the file system in ``poll`` mode."""

    rescan_interval: float = 300.0
    """Seconds between two full rescans that hash every file whatever the events."""

    retry_interval: float = 5.0
    """Seconds before reading a configuration again after a read or parse error."""


@dataclass(frozen=True)
class Retention:
    """How many snapshots the history keeps; None leaves that limit off."""

    max_snapshots: int | None = None
    """Snapshots kept per load balancer, newest first."""

    max_age_days: float | None = None
    """Snapshots older than this many days are deleted; the newest one always stays."""

    @property
    def enabled(self) -> bool:
        return self.max_snapshots is not None or self.max_age_days is not None


@dataclass(frozen=True)
class WatchConfig:
    """Everything ``lbguard watch`` reads from its TOML file."""

    path: Path
    configs: tuple[Path, ...]
    """Configuration files and directories to watch and load."""

    instance: str = ""
    """Name of the watched load balancer, sent as the ``lb`` label."""

    product: Product | None = None
    """None lets the parser detect the product."""

    traffic: Path | None = None
    db: Path | None = None
    """History database; None means the default under the user's state directory."""

    watch: WatchSettings = field(default_factory=WatchSettings)
    audit_interval: float = 3600.0
    """Seconds between scheduled audits; 0 turns them off."""

    thresholds: Thresholds = field(default_factory=Thresholds)
    check_options: Mapping[str, Mapping[str, object]] = field(default_factory=dict)
    """Rule id or name to option overrides, as ``lbguard check`` takes them."""

    metrics_listen: str = DEFAULT_LISTEN
    """``host:port`` of the /metrics endpoint; empty turns it off."""

    backoff: Backoff = field(default_factory=Backoff)
    sinks: tuple[AlertSink, ...] = ()
    retention: Retention = field(default_factory=Retention)


_TOP_KEYS = {
    "instance",
    "configs",
    "product",
    "traffic",
    "db",
    "watch",
    "schedule",
    "thresholds",
    "metrics",
    "outbox",
    "checks",
    "sinks",
    "history",
}


def load_watch_config(path: Path | str) -> WatchConfig:
    """Read and validate a watch configuration; raise ConfigError naming the key."""
    path = Path(path).absolute()
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except OSError as error:
        raise ConfigError(
            f"cannot read watch configuration {path}: {error.strerror or error}",
            hint="pass the path of a readable TOML file with --config",
        ) from error
    except tomllib.TOMLDecodeError as error:
        raise ConfigError(
            f"{path}: invalid TOML: {error}", hint="fix the syntax at the line shown"
        ) from error

    reader = _Reader(path)
    reader.reject_unknown(data, _TOP_KEYS, "")
    base = path.parent

    configs = reader.get(data, "configs", list, "", None)
    if not configs or not all(isinstance(item, str) for item in configs):
        raise reader.error("configs", "must be a non-empty list of file or directory paths")
    product = _product(reader, reader.get(data, "product", str, "", ""))

    traffic = reader.get(data, "traffic", str, "", "")
    db = reader.get(data, "db", str, "", "")
    metrics = reader.table(data, "metrics")
    reader.reject_unknown(metrics, {"listen"}, "metrics.")
    listen = reader.get(metrics, "listen", str, "metrics.", DEFAULT_LISTEN)
    if listen:
        try:
            parse_listen(listen)
        except ValueError as error:
            raise reader.error("metrics.listen", str(error)) from None

    schedule = reader.table(data, "schedule")
    reader.reject_unknown(schedule, {"audit_interval"}, "schedule.")
    checks = _check_options(reader, reader.table(data, "checks"))

    return WatchConfig(
        path=path,
        configs=tuple(_resolve(base, item) for item in configs),
        instance=reader.get(data, "instance", str, "", ""),
        product=product,
        traffic=_resolve(base, traffic) if traffic else None,
        db=_resolve(base, db) if db else None,
        watch=_watch_settings(reader, reader.table(data, "watch")),
        audit_interval=reader.number(schedule, "audit_interval", "schedule.", 3600.0),
        thresholds=_thresholds(reader, reader.table(data, "thresholds")),
        check_options=checks,
        metrics_listen=listen,
        backoff=_backoff(reader, reader.table(data, "outbox")),
        sinks=_sinks(reader, data.get("sinks", []), base),
        retention=_retention(reader, reader.table(data, "history")),
    )


def _product(reader: _Reader, name: str) -> Product | None:
    """Return the product named in watch.toml; only products with a parser are valid."""
    from lbguard.parsers import PARSERS

    if not name:
        return None
    known = [product for product in PARSERS if product.value == name]
    if not known:
        choices = ", ".join(product.value for product in PARSERS)
        raise reader.error("product", f"unknown product {name!r}; use one of {choices}")
    return known[0]


def _check_options(reader: _Reader, table: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """Validate ``[checks.RULE]`` tables against the rule registry, as ``lbguard check``
    does, so that a typo stops the start instead of failing every audit."""
    from lbguard.checks import resolve_options
    from lbguard.checks.runner import CheckOptionError

    for rule, options in table.items():
        if not isinstance(options, dict):
            raise reader.error(f"checks.{rule}", "must be a table of option = value")
        try:
            resolve_options({rule: options})
        except CheckOptionError as error:
            raise reader.error(f"checks.{rule}", error.message, hint=error.hint) from None
    return table


def _retention(reader: _Reader, table: dict[str, Any]) -> Retention:
    reader.reject_unknown(table, {"max_snapshots", "max_age_days"}, "history.")
    max_snapshots: int | None = None
    if "max_snapshots" in table:
        max_snapshots = reader.get(table, "max_snapshots", int, "history.", 0)
        if max_snapshots < 1:
            raise reader.error("history.max_snapshots", "must be at least 1")
    max_age: float | None = None
    if "max_age_days" in table:
        max_age = reader.number(table, "max_age_days", "history.", 0.0)
        if max_age <= 0:
            raise reader.error("history.max_age_days", "must be more than 0")
    return Retention(max_snapshots, max_age)


def _watch_settings(reader: _Reader, table: dict[str, Any]) -> WatchSettings:
    defaults = WatchSettings()
    names = {
        "method",
        "debounce",
        "max_delay",
        "poll_interval",
        "rescan_interval",
        "retry_interval",
    }
    reader.reject_unknown(table, names, "watch.")
    method = reader.get(table, "method", str, "watch.", defaults.method)
    if method not in WATCH_METHODS:
        raise reader.error("watch.method", f"must be one of {', '.join(WATCH_METHODS)}")
    return WatchSettings(
        method=method,
        debounce=reader.number(table, "debounce", "watch.", defaults.debounce),
        max_delay=reader.number(table, "max_delay", "watch.", defaults.max_delay),
        poll_interval=reader.number(
            table, "poll_interval", "watch.", defaults.poll_interval, minimum=MIN_POLL_INTERVAL
        ),
        rescan_interval=reader.number(
            table, "rescan_interval", "watch.", defaults.rescan_interval
        ),
        retry_interval=reader.number(table, "retry_interval", "watch.", defaults.retry_interval),
    )


def _thresholds(reader: _Reader, table: dict[str, Any]) -> Thresholds:
    defaults = Thresholds()
    names = {"share_points", "critical_points", "finding_severity", "alert_ttl"}
    reader.reject_unknown(table, names, "thresholds.")
    severity_text = reader.get(table, "finding_severity", str, "thresholds.", "warning")
    severity: Severity | None = None
    if severity_text != "off":
        try:
            severity = Severity(severity_text)
        except ValueError:
            raise reader.error(
                "thresholds.finding_severity", "must be info, warning, error or off"
            ) from None
    return Thresholds(
        share_points=reader.number(table, "share_points", "thresholds.", defaults.share_points),
        critical_points=reader.number(
            table, "critical_points", "thresholds.", defaults.critical_points
        ),
        finding_severity=severity,
        alert_ttl=reader.number(table, "alert_ttl", "thresholds.", defaults.alert_ttl),
    )


def _backoff(reader: _Reader, table: dict[str, Any]) -> Backoff:
    defaults = Backoff()
    reader.reject_unknown(table, {"initial_delay", "max_delay", "max_attempts"}, "outbox.")
    attempts = reader.get(table, "max_attempts", int, "outbox.", defaults.max_attempts)
    if attempts < 1:
        raise reader.error("outbox.max_attempts", "must be at least 1")
    return Backoff(
        initial=reader.number(table, "initial_delay", "outbox.", defaults.initial),
        maximum=reader.number(table, "max_delay", "outbox.", defaults.maximum),
        max_attempts=attempts,
    )


_SINK_KEYS = {
    "common": {"name", "type", "labels", "owner", "runbook_url", "timeout"},
    "alertmanager": {"url", "generator_url"},
    "webhook": {"url", "url_env", "url_file", "headers"},
    "slack": {"url", "url_env", "url_file"},
    "email": {
        "host",
        "port",
        "from",
        "to",
        "username",
        "password",
        "password_env",
        "password_file",
        "starttls",
    },
}


def _sinks(reader: _Reader, items: Any, base: Path) -> tuple[AlertSink, ...]:
    if not isinstance(items, list):
        raise reader.error("sinks", "must be an array of tables: [[sinks]]")
    sinks: list[AlertSink] = []
    names: set[str] = set()
    for index, table in enumerate(items):
        where = f"sinks[{index}]."
        if not isinstance(table, dict):
            raise reader.error(f"sinks[{index}]", "must be a table")
        kind = reader.get(table, "type", str, where, "")
        if kind not in _SINK_KEYS or kind == "common":
            kinds = ", ".join(key for key in _SINK_KEYS if key != "common")
            raise reader.error(f"{where}type", f"must be one of {kinds}")
        reader.reject_unknown(table, _SINK_KEYS["common"] | _SINK_KEYS[kind], where)
        name = reader.get(table, "name", str, where, kind)
        if name in names:
            raise reader.error(f"{where}name", f"sink name {name!r} is used twice")
        names.add(name)

        labels = reader.get(table, "labels", dict, where, {})
        if not all(isinstance(value, str) for value in labels.values()):
            raise reader.error(f"{where}labels", "label values must be strings")
        routing = Routing(
            labels=labels,
            owner=reader.get(table, "owner", str, where, ""),
            runbook_url=reader.get(table, "runbook_url", str, where, ""),
        )
        timeout = reader.number(table, "timeout", where, 5.0)
        sinks.append(
            _sink(
                reader, table, where, base, kind=kind, name=name, routing=routing, timeout=timeout
            )
        )
    return tuple(sinks)


def _sink(
    reader: _Reader,
    table: dict[str, Any],
    where: str,
    base: Path,
    *,
    kind: str,
    name: str,
    routing: Routing,
    timeout: float,
) -> AlertSink:
    if kind == "email":
        recipients = reader.get(table, "to", list, where, [])
        if not recipients or not all(isinstance(item, str) for item in recipients):
            raise reader.error(f"{where}to", "must be a non-empty list of addresses")
        return EmailSink(
            name,
            routing,
            host=reader.get(table, "host", str, where, "127.0.0.1"),
            port=reader.get(table, "port", int, where, 25),
            sender=reader.required(table, "from", str, where),
            recipients=tuple(recipients),
            username=reader.get(table, "username", str, where, ""),
            password=reader.secret(table, "password", where, base),
            starttls=reader.get(table, "starttls", bool, where, False),
            timeout=timeout,
        )

    if kind == "alertmanager":
        url = reader.required(table, "url", str, where)
    else:
        url = reader.secret(table, "url", where, base)
    if not url.startswith(("http://", "https://")):
        raise reader.error(f"{where}url", "must be an http:// or https:// URL")

    if kind == "alertmanager":
        generator = reader.get(table, "generator_url", str, where, "")
        return AlertmanagerSink(name, routing, url, generator_url=generator, timeout=timeout)
    if kind == "slack":
        return SlackSink(name, routing, url, timeout=timeout)
    headers = reader.get(table, "headers", dict, where, {})
    if not all(isinstance(value, str) for value in headers.values()):
        raise reader.error(f"{where}headers", "header values must be strings")
    return WebhookSink(name, routing, url, headers=headers, timeout=timeout)


def _resolve(base: Path, text: str) -> Path:
    path = Path(text).expanduser()
    return path if path.is_absolute() else base / path


class _Reader:
    """Typed access to TOML tables with errors that name the file and the key."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def error(self, key: str, problem: str, hint: str = "") -> ConfigError:
        return ConfigError(
            f"{self.path}: {key}: {problem}",
            hint=hint or "fix the watch configuration; docs/operations.md lists every key",
        )

    def reject_unknown(self, table: Mapping[str, Any], known: set[str], where: str) -> None:
        for key in table:
            if key not in known:
                raise self.error(f"{where}{key}", "unknown key")

    def table(self, data: Mapping[str, Any], key: str) -> dict[str, Any]:
        return self.get(data, key, dict, "", {})

    def get(self, table: Mapping[str, Any], key: str, kind: type[T], where: str, default: T) -> T:
        if key not in table:
            return default
        value = table[key]
        if not isinstance(value, kind) or (kind is int and isinstance(value, bool)):
            raise self.error(
                f"{where}{key}", f"expected {kind.__name__}, found {type(value).__name__}"
            )
        return value

    def required(self, table: Mapping[str, Any], key: str, kind: type[T], where: str) -> T:
        if key not in table:
            raise self.error(f"{where}{key}", "missing")
        value: T = table[key]
        return self.get(table, key, kind, where, value)

    def number(
        self,
        table: Mapping[str, Any],
        key: str,
        where: str,
        default: float,
        *,
        minimum: float = 0.0,
    ) -> float:
        value = table.get(key, default)
        if isinstance(value, bool) or not isinstance(value, int | float) or value < minimum:
            raise self.error(
                f"{where}{key}", f"expected a number of at least {minimum:g}, found {value!r}"
            )
        return float(value)

    def secret(self, table: Mapping[str, Any], key: str, where: str, base: Path) -> str:
        """Read ``key`` inline, from the variable named by ``key_env`` or from the file
        named by ``key_file``; exactly one of them may be given."""
        given = [name for name in (key, f"{key}_env", f"{key}_file") if name in table]
        if len(given) > 1:
            raise self.error(f"{where}{key}", f"give only one of {', '.join(given)}")
        if not given:
            if key == "password":
                return ""
            raise self.error(f"{where}{key}", f"missing; set {key}, {key}_env or {key}_file")

        source = given[0]
        name = self.get(table, source, str, where, "")
        if source == key:
            return name
        if source.endswith("_env"):
            value = os.environ.get(name)
            if not value:
                raise self.error(f"{where}{source}", f"environment variable {name} is not set")
            return value
        try:
            return _resolve(base, name).read_text(encoding="utf-8").strip()
        except OSError as error:
            raise self.error(
                f"{where}{source}", f"cannot read {name}: {error.strerror or error}"
            ) from None
