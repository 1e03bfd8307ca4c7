"""Helpers for monitoring tests: HAProxy configs, a local webhook receiver, a watch
configuration writer and waiting with a bound."""

from __future__ import annotations

import json
import socket
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from lbguard.monitor.daemon import WatchDaemon

DEFAULTS = """\
defaults
    mode http
    timeout connect 2s
    timeout client 10s
    timeout server 10s
"""

HAPROXY_TEMPLATE = (
    DEFAULTS
    + """
frontend fe_main
    bind 127.0.0.1:8080
    default_backend be_web

backend be_web
    balance roundrobin
    server web1 127.0.0.1:9001 check weight {w1}
    server web2 127.0.0.1:9002 check weight {w2}
    server web3 127.0.0.1:9003 check weight {w3}
"""
)

ROUTED = (
    DEFAULTS
    + """
frontend fe_main
    bind 127.0.0.1:8080
    use_backend be_api if { path_beg /api }
    default_backend be_web

backend be_web
    server web1 127.0.0.1:9001
    server web2 127.0.0.1:9002

backend be_api
    server api1 127.0.0.1:9004
    server api2 127.0.0.1:9005
"""
)
"""Two pools, one reached by ``path_beg /api``, for tests with a traffic profile."""


def haproxy_config(w1: int = 10, w2: int = 10, w3: int = 10) -> str:
    return HAPROXY_TEMPLATE.format(w1=w1, w2=w2, w3=w3)


def wait_for(predicate: Callable[[], Any], timeout: float = 10.0, what: str = "") -> Any:
    """Poll ``predicate`` every 50 ms until it returns a true value; fail after timeout."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.05)
    pytest.fail(f"timed out after {timeout} s waiting for {what or predicate}")


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@dataclass
class Receipt:
    """One request the webhook receiver read."""

    path: str
    headers: dict[str, str]
    body: Any
    time: float


@dataclass
class WebhookReceiver:
    """A webhook endpoint on 127.0.0.1 that drops repeats by Idempotency-Key, can be taken
    down and brought back on the same port, and can delay its responses."""

    port: int
    receipts: list[Receipt] = field(default_factory=list)
    processed: list[Receipt] = field(default_factory=list)
    """Receipts with a key seen for the first time."""

    release: threading.Event = field(default_factory=threading.Event)
    holding: bool = False
    received: threading.Event = field(default_factory=threading.Event)
    _server: ThreadingHTTPServer | None = None
    _thread: threading.Thread | None = None
    _lock: threading.Lock = field(default_factory=threading.Lock)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/hook"

    def up(self) -> None:
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length", "0"))
                body = json.loads(self.rfile.read(length) or b"null")
                receipt = Receipt(self.path, dict(self.headers), body, time.time())
                key = self.headers.get("Idempotency-Key", "")
                with receiver._lock:
                    seen = any(
                        item.headers.get("Idempotency-Key") == key for item in receiver.processed
                    )
                    receiver.receipts.append(receipt)
                    if not seen:
                        receiver.processed.append(receipt)
                receiver.received.set()
                if receiver.holding:
                    receiver.release.wait(timeout=30)
                self.send_response(200)
                self.send_header("Content-Length", "2")
                self.end_headers()
                self.wfile.write(b"ok")

            def log_message(self, format: str, *args: Any) -> None:
                return

        ThreadingHTTPServer.allow_reuse_address = True
        self._server = ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()

    def down(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None


def _toml_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str | Path):
        return json.dumps(str(value))
    if isinstance(value, list):
        return "[" + ", ".join(_toml_value(item) for item in value) + "]"
    return repr(value)


def _toml_table(name: str, values: dict[str, Any]) -> str:
    lines = [f"[{name}]"] + [f"{key} = {_toml_value(value)}" for key, value in values.items()]
    return "\n".join(lines) + "\n"


def watch_toml(
    tmp_path: Path,
    configs: list[Path],
    *,
    sinks: str = "",
    watch: dict[str, Any] | None = None,
    thresholds: dict[str, Any] | None = None,
    metrics: str = "",
    extra: str = "",
) -> Path:
    """Write a watch configuration for tests: fast debounce and retries, no scheduled
    audits, no finding alerts and no metrics endpoint unless given. ``extra`` is TOML
    text added before the sinks."""
    head = {
        "instance": "test-lb",
        "configs": configs,
        "product": "haproxy",
        "db": tmp_path / "history.db",
    }
    text = "\n".join(f"{key} = {_toml_value(value)}" for key, value in head.items()) + "\n\n"

    text += _toml_table("metrics", {"listen": metrics}) + "\n"
    text += _toml_table(
        "watch",
        {
            "debounce": 0.1,
            "max_delay": 1.0,
            "retry_interval": 0.2,
            "rescan_interval": 300,
            **(watch or {}),
        },
    )
    text += "\n" + _toml_table("schedule", {"audit_interval": 0})
    text += "\n" + _toml_table(
        "thresholds", {"share_points": 10, "finding_severity": "off", **(thresholds or {})}
    )
    text += "\n" + _toml_table("outbox", {"initial_delay": 0.2, "max_delay": 0.5})
    text += extra
    text += sinks

    path = tmp_path / "watch.toml"
    path.write_text(text)
    return path


def webhook_sink(url: str, name: str = "hook") -> str:
    return f"""
[[sinks]]
name = "{name}"
type = "webhook"
url = "{url}"
owner = "team-edge"
labels = {{ team = "edge" }}
runbook_url = "https://runbooks.invalid/lb-share-shift"
"""


@dataclass
class RunningDaemon:
    daemon: WatchDaemon
    thread: threading.Thread
    errors: list[BaseException]


class BlackHole:
    """A TCP listener on 127.0.0.1 that completes connections and never answers, like a
    sink whose process hangs."""

    def __init__(self) -> None:
        self._socket = socket.socket()
        self._socket.bind(("127.0.0.1", 0))
        # Never accepted: the kernel completes up to the backlog's handshakes by itself.
        self._socket.listen(64)
        self.port = int(self._socket.getsockname()[1])

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/hook"

    def close(self) -> None:
        self._socket.close()
