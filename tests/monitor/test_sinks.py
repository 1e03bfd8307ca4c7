"""Alert sinks against local receivers, the outbox's retry rules, and secret redaction."""

from __future__ import annotations

import logging
import re
import time
from collections.abc import Iterator
from email import message_from_bytes, policy
from pathlib import Path
from typing import Any

import pytest
from aiosmtpd.controller import Controller
from monitor_support import WebhookReceiver, free_port, watch_toml

from lbguard.errors import ConfigError
from lbguard.monitor.alerts import Alert, AlertEvent, AlertStatus
from lbguard.monitor.config import load_watch_config
from lbguard.monitor.history import History
from lbguard.monitor.outbox import Backoff, Outbox, record_events
from lbguard.monitor.sinks.interface import Routing, redact
from lbguard.monitor.sinks.slack import SlackSink
from lbguard.monitor.sinks.smtp import EmailSink
from lbguard.monitor.sinks.webhook import WebhookSink

ROUTING = Routing(
    labels={"team": "edge"}, owner="edge-oncall", runbook_url="https://runbooks.invalid/x"
)


def sample_alert(status: AlertStatus = AlertStatus.FIRING) -> Alert:
    return Alert(
        alertname="LbguardShareShift",
        severity="critical",
        labels={"lb": "edge-1", "pool": "be_web"},
        summary="edge-1: configuration change moves be_web/web3 from 33.3 % to 83.3 %",
        description="Predicted shares:\n  be_web/web3: 33.3 % → 83.3 % of be_web",
        status=status,
        starts_at=1_700_000_000.0,
        ends_at=1_700_003_600.0,
        change_id=7,
    )


class Mailbox:
    def __init__(self) -> None:
        self.messages: list[bytes] = []

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:  # noqa: N802
        self.messages.append(envelope.original_content or envelope.content)
        return "250 OK"


@pytest.fixture
def smtp_server() -> Iterator[tuple[int, Mailbox]]:
    mailbox = Mailbox()
    port = free_port()
    controller = Controller(mailbox, hostname="127.0.0.1", port=port)
    controller.start()
    yield port, mailbox
    controller.stop()


def email_sink(
    port: int, recipients: tuple[str, ...] = ("oncall@example.invalid",), starttls: bool = False
) -> EmailSink:
    return EmailSink(
        "mail",
        ROUTING,
        host="127.0.0.1",
        port=port,
        sender="lbguard@example.invalid",
        recipients=recipients,
        starttls=starttls,
    )


def test_email_sink_sends_message(smtp_server: tuple[int, Mailbox]) -> None:
    port, mailbox = smtp_server
    sink = email_sink(port)

    sink.send(sample_alert(), "key-123")

    assert len(mailbox.messages) == 1
    message = message_from_bytes(mailbox.messages[0], policy=policy.default)
    assert message["Subject"].startswith("[FIRING] edge-1: configuration change")
    assert message["To"] == "oncall@example.invalid"
    assert message["Message-ID"] == "<key-123@lbguard>"
    body = message.get_content()
    assert "be_web/web3: 33.3 % → 83.3 % of be_web" in body
    assert "owner: edge-oncall" in body
    assert "Runbook: https://runbooks.invalid/x" in body


def test_slack_sink_posts_text(receiver: WebhookReceiver) -> None:
    sink = SlackSink("chat", ROUTING, receiver.url)

    sink.send(sample_alert(AlertStatus.RESOLVED), "key-1")

    text = receiver.receipts[0].body["text"]
    assert text.startswith(":white_check_mark: *[RESOLVED] LbguardShareShift* (critical)")
    assert "owner: edge-oncall" in text
    assert "runbook: <https://runbooks.invalid/x>" in text


def test_webhook_payload(receiver: WebhookReceiver) -> None:
    sink = WebhookSink("hook", ROUTING, receiver.url, headers={"Authorization": "Bearer s3cret"})

    sink.send(sample_alert(), "key-9")

    receipt = receiver.receipts[0]
    assert receipt.headers["Idempotency-Key"] == "key-9"
    assert receipt.headers["Authorization"] == "Bearer s3cret"
    assert receipt.body["idempotency_key"] == "key-9"
    assert receipt.body["labels"] == {
        "alertname": "LbguardShareShift",
        "severity": "critical",
        "lb": "edge-1",
        "pool": "be_web",
        "team": "edge",
        "owner": "edge-oncall",
    }
    assert receipt.body["startsAt"] == "2023-11-14T22:13:20.000+00:00"


def test_redact_hides_secret_urls() -> None:
    url = "https://hooks.example.invalid/services/T000/B000/XXXX"
    message = f"Client error '404 Not Found' for url '{url}' (path /services/T000/B000/XXXX)"

    redacted = redact(message, [url, "hunter2"])

    assert "T000" not in redacted
    assert "hooks.example.invalid" not in redacted
    assert redacted.count("<redacted>") == 2


def queue_alert(history: History, sinks: list[str]) -> list[int]:
    with history.transaction() as connection:
        return record_events(
            connection, [AlertEvent(sample_alert())], sinks, snapshot_id=None, now=time.time()
        )


def test_outbox_retries_with_backoff(
    tmp_path: Path, receiver: WebhookReceiver, caplog: pytest.LogCaptureFixture
) -> None:
    receiver.down()
    secret_url = receiver.url + "?token=s3cret"
    sink = WebhookSink("hook", ROUTING, secret_url, timeout=1)
    with History(tmp_path / "history.db") as history:
        outbox = Outbox(history, {"hook": sink}, Backoff(initial=0.2, factor=2, maximum=1))
        queue_alert(history, ["hook"])

        first = outbox.deliver_due()
        due = outbox.next_due()
        immediately = outbox.deliver_due()
        receiver.up()
        time.sleep(0.25)
        second = outbox.deliver_due()
        row = history.connection.execute("SELECT * FROM outbox").fetchone()

    assert [result.ok for result in first] == [False]
    assert due is not None
    assert due > time.time() - 1
    assert immediately == []
    assert [result.ok for result in second] == [True]
    assert row["status"] == "sent"
    assert row["attempts"] == 2
    assert "s3cret" not in caplog.text
    assert "retrying in 0.2 s" in caplog.text


def test_outbox_queues_once_per_change(tmp_path: Path) -> None:
    with History(tmp_path / "history.db") as history:
        with history.transaction() as connection:
            event = AlertEvent(sample_alert())
            first = record_events(connection, [event], ["a", "b"], snapshot_id=None, now=1.0)
            alert_id = connection.execute("SELECT id FROM alerts").fetchone()[0]
            resolved = AlertEvent(sample_alert(AlertStatus.RESOLVED), resolves=alert_id)
            second = record_events(connection, [resolved], ["a"], snapshot_id=None, now=2.0)
            repeated = record_events(connection, [resolved], ["a"], snapshot_id=None, now=3.0)
        keys = [row[0] for row in history.connection.execute("SELECT idempotency_key FROM outbox")]

    assert len(first) == 2
    assert len(second) == 1
    assert repeated == []
    assert len(set(keys)) == 3


def test_outbox_gives_up_on_rejection(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.ERROR)
    # Nothing listens on this port: a connection error is retried, never marked dead early.
    unreachable = WebhookSink("gone", ROUTING, f"http://127.0.0.1:{free_port()}/x", timeout=1)
    with History(tmp_path / "history.db") as history:
        outbox = Outbox(history, {"gone": unreachable}, Backoff(initial=0, max_attempts=2))
        queue_alert(history, ["gone", "removed"])
        outbox.deliver_due()
        outbox.deliver_due()
        rows = history.connection.execute("SELECT sink, status FROM outbox ORDER BY id").fetchall()

    assert [(row["sink"], row["status"]) for row in rows] == [
        ("gone", "dead"),
        ("removed", "dead"),
    ]
    assert "giving up alert delivery" in caplog.text


def test_watch_config_reads_secrets_from_environment(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TEST_SLACK_URL", "https://hooks.example.invalid/T/B/secret")
    sinks = """
[[sinks]]
name = "chat"
type = "slack"
url_env = "TEST_SLACK_URL"
"""
    config = load_watch_config(watch_toml(tmp_path, [tmp_path / "haproxy.cfg"], sinks=sinks))

    sink = config.sinks[0]
    assert isinstance(sink, SlackSink)
    assert sink.url == "https://hooks.example.invalid/T/B/secret"
    assert "secret" not in sink.describe()


@pytest.mark.parametrize(
    ("sinks", "message"),
    [
        ('[[sinks]]\ntype = "pager"\n', "sinks[0].type: must be one of"),
        ('[[sinks]]\ntype = "slack"\n', "sinks[0].url: missing"),
        ('[[sinks]]\ntype = "slack"\nurl_env = "LBGUARD_TEST_UNSET"\n', "is not set"),
        ('[[sinks]]\ntype = "webhook"\nurl = "ftp://x"\n', "must be an http"),
        ('[[sinks]]\ntype = "email"\nfrom = "a@b"\n', "sinks[0].to: must be a non-empty"),
        ('[[sinks]]\ntype = "webhook"\nurl = "http://127.0.0.1/"\nport = 1\n', "unknown key"),
    ],
)
def test_watch_config_errors_name_the_key(tmp_path: Path, sinks: str, message: str) -> None:
    path = watch_toml(tmp_path, [tmp_path / "haproxy.cfg"], sinks="\n" + sinks)

    with pytest.raises(ConfigError, match=re.escape(message)) as raised:
        load_watch_config(path)
    assert str(path) in str(raised.value)


def test_email_starttls_unsupported_is_permanent(
    tmp_path: Path, smtp_server: tuple[int, Mailbox]
) -> None:
    # aiosmtpd without a TLS context does not offer STARTTLS, like many relays on port 25.
    port, mailbox = smtp_server
    sink = email_sink(port, starttls=True)
    with History(tmp_path / "history.db") as history:
        outbox = Outbox(history, {"mail": sink}, Backoff(initial=0, max_attempts=5))
        queue_alert(history, ["mail"])
        results = outbox.deliver_due()
        row = history.connection.execute("SELECT status, attempts, last_error FROM outbox")
        status, attempts, error = row.fetchone()

    assert [result.ok for result in results] == [False]
    assert status == "dead"
    assert attempts == 1
    assert "STARTTLS" in error
    assert mailbox.messages == []


def test_sink_descriptions_count_recipients() -> None:
    one = email_sink(25)
    two = email_sink(25, recipients=("a@example.invalid", "b@example.invalid"))

    assert one.describe() == "email mail via 127.0.0.1:25 to 1 recipient"
    assert two.describe() == "email mail via 127.0.0.1:25 to 2 recipients"
