"""Email sink over SMTP with the standard library's smtplib.

The Message-ID is derived from the idempotency key, so that a delivery repeated after a
crash between sending and recording carries the same Message-ID as the first one.
"""

from __future__ import annotations

import smtplib
import ssl
from email import policy
from email.message import EmailMessage
from email.utils import formatdate

from lbguard.monitor.alerts import Alert
from lbguard.monitor.sinks.interface import AlertSink, PermanentSinkError, Routing, SinkError
from lbguard.monitor.text import plural


class EmailSink(AlertSink):
    kind = "email"

    def __init__(
        self,
        name: str,
        routing: Routing,
        *,
        host: str,
        port: int,
        sender: str,
        recipients: tuple[str, ...],
        username: str = "",
        password: str = "",
        starttls: bool = False,
        timeout: float = 10.0,
    ) -> None:
        super().__init__(name, routing, timeout=timeout)
        self.host = host
        self.port = port
        self.sender = sender
        self.recipients = recipients
        self.username = username
        self.password = password
        self.starttls = starttls

    def message(self, alert: Alert, idempotency_key: str) -> EmailMessage:
        labels = self.routing.labels_for(alert)
        # RFC 5322 allows 998 characters per line; folding at 78 broke long subjects
        # right after "Subject:", which clients show as a leading space.
        message = EmailMessage(policy=policy.SMTP.clone(max_line_length=998))
        message["Subject"] = f"[{alert.status.upper()}] {alert.summary}"
        message["From"] = self.sender
        message["To"] = ", ".join(self.recipients)
        message["Date"] = formatdate(alert.ends_at if alert.status == "resolved" else None)
        message["Message-ID"] = f"<{idempotency_key}@lbguard>"
        message["X-Lbguard-Idempotency-Key"] = idempotency_key

        body = [alert.summary, "", alert.description, ""]
        body += [f"{key}: {value}" for key, value in sorted(labels.items())]
        runbook = self.routing.runbook_for(alert)
        if runbook:
            body += ["", f"Runbook: {runbook}"]
        message.set_content("\n".join(body) + "\n")
        return message

    def send(self, alert: Alert, idempotency_key: str) -> None:
        message = self.message(alert, idempotency_key)
        try:
            with smtplib.SMTP(self.host, self.port, timeout=self.timeout) as client:
                if self.starttls:
                    client.starttls(context=ssl.create_default_context())
                if self.username:
                    client.login(self.username, self.password)
                client.send_message(message)
        except smtplib.SMTPRecipientsRefused as error:
            raise PermanentSinkError(
                f"SMTP server rejected the recipients: {error.recipients}"
            ) from error
        except smtplib.SMTPAuthenticationError as error:
            raise PermanentSinkError(f"SMTP authentication failed: {error.smtp_code}") from error
        except smtplib.SMTPNotSupportedError as error:
            # The server does not offer STARTTLS (or AUTH): every retry fails the same way.
            raise PermanentSinkError(
                f"SMTP server {self.host}:{self.port} lacks a required extension: {error}; "
                "set starttls and username to what the server offers"
            ) from error
        except (smtplib.SMTPException, OSError) as error:
            raise SinkError(f"{type(error).__name__}: {error}") from error

    def secrets(self) -> tuple[str, ...]:
        return (self.password,) if self.password else ()

    def describe(self) -> str:
        recipients = plural(len(self.recipients), "recipient")
        return f"email {self.name} via {self.host}:{self.port} to {recipients}"
