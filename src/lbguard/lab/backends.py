"""Backend HTTP servers on 127.0.0.1 that name themselves in every response.

Every server runs a `ThreadingHTTPServer` in a thread of the calling process. It responds to
each request with the header ``X-Server: <name>`` and a one-line body naming the server,
counts requests, can record what it received (so that a test knows each request's hash
key), adds a configurable latency and limits how many requests it serves at once.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import Counter
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, replace
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Self

from lbguard.lab.cleanup import LabResource, register, unregister
from lbguard.lab.errors import LabError

logger = logging.getLogger(__name__)

LOOPBACK = "127.0.0.1"

LISTEN_BACKLOG = 1024
"""Accept queue length: the `socketserver` default of 5 would drop connections that a
load balancer opens in bursts and turn them into connect retries."""


@dataclass(frozen=True)
class BackendSpec:
    """One backend server's name, port and behaviour."""

    name: str
    """Value of the ``X-Server`` response header."""

    port: int = 0
    """Listening port on 127.0.0.1; 0 picks a free ephemeral port."""

    latency: float = 0.0
    """Seconds each request takes at least."""

    latency_per_inflight: float = 0.0
    """Extra seconds per other request in service at the same time, so that response time
    grows with load as on a saturated server."""

    max_concurrency: int = 0
    """Requests served at once; 0 means no limit."""

    reject_when_busy: bool = False
    """When `max_concurrency` is reached: respond 503 at once if true, else wait for a slot."""

    status: int = 200
    """Status of normal responses."""


@dataclass(frozen=True)
class RecordedRequest:
    """One request as a backend server received it."""

    server: str
    method: str
    target: str
    """Request target as sent on the request line (path and query)."""

    headers: tuple[tuple[str, str], ...]
    """Header fields in order, names as sent."""

    peer: str
    """Address of the connecting peer (the load balancer)."""

    received_at: float
    """Wall-clock time, seconds since the epoch."""

    status: int
    """Status of the server's response."""

    def header(self, name: str) -> str | None:
        """Return the first value of header `name` (case-insensitive), or None."""
        wanted = name.lower()
        for key, value in self.headers:
            if key.lower() == wanted:
                return value
        return None


class _BackendHTTPServer(ThreadingHTTPServer):
    daemon_threads = True
    block_on_close = False
    request_queue_size = LISTEN_BACKLOG

    def __init__(self, spec: BackendSpec, pool: Backends) -> None:
        self.spec = spec
        self.pool = pool
        self.inflight = 0
        self.inflight_lock = threading.Lock()
        self.slots = (
            threading.BoundedSemaphore(spec.max_concurrency) if spec.max_concurrency else None
        )
        super().__init__((LOOPBACK, spec.port), _BackendHandler)


class _BackendHandler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    # Headers and body are written separately: without TCP_NODELAY, Nagle and delayed ACKs
    # hold every keep-alive response for about 40 ms.
    disable_nagle_algorithm = True
    server_version = "lbguard-lab-backend"
    timeout = 30
    server: _BackendHTTPServer
    error_message_format = "%(code)d %(message)s\n"
    error_content_type = "text/plain"

    def log_message(self, format: str, *args: object) -> None:
        """Keep the lab quiet: the pool counts and records requests instead."""

    def handle_one_request(self) -> None:
        try:
            super().handle_one_request()
        except ConnectionError:
            self.close_connection = True

    def _serve(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        if length:
            self.rfile.read(length)

        server = self.server
        spec = server.spec
        acquired = True
        if server.slots is not None:
            acquired = server.slots.acquire(blocking=not spec.reject_when_busy)

        status = spec.status if acquired else 503
        try:
            if acquired:
                with server.inflight_lock:
                    server.inflight += 1
                    others = server.inflight - 1
                delay = spec.latency + spec.latency_per_inflight * others
                if delay > 0:
                    time.sleep(delay)
            server.pool.record(self._recorded(status))
            self._respond(status)
        finally:
            if acquired:
                with server.inflight_lock:
                    server.inflight -= 1
                if server.slots is not None:
                    server.slots.release()

    def _recorded(self, status: int) -> RecordedRequest:
        return RecordedRequest(
            server=self.server.spec.name,
            method=self.command,
            target=self.path,
            headers=tuple((k, v) for k, v in self.headers.items()),
            peer=self.client_address[0],
            received_at=time.time(),
            status=status,
        )

    def _respond(self, status: int) -> None:
        name = self.server.spec.name
        body = f"served by {name}\n".encode() if status < 400 else b"server busy\n"
        self.send_response(status)
        self.send_header("X-Server", name)
        self.send_header("Content-Type", "text/plain")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    # BaseHTTPRequestHandler dispatches on do_<METHOD>: every method is served alike.
    do_GET = do_HEAD = do_POST = do_PUT = do_DELETE = do_PATCH = do_OPTIONS = _serve  # noqa: N815


class Backends(LabResource):
    """A pool of backend servers on 127.0.0.1, started and stopped together.

    Use as a context manager; `stop` is idempotent and also runs at interpreter exit.
    """

    def __init__(self, specs: Sequence[BackendSpec | str], *, record: bool = False) -> None:
        self.specs = [BackendSpec(s) if isinstance(s, str) else s for s in specs]
        names = [s.name for s in self.specs]
        duplicates = sorted({n for n in names if names.count(n) > 1})
        if duplicates:
            raise LabError(f"duplicate backend names: {', '.join(duplicates)}")

        self.record_requests = record
        self.counts: Counter[str] = Counter()
        """Requests served per server name."""

        self.requests: list[RecordedRequest] = []
        """Requests received, in arrival order, when `record` is true."""

        self._lock = threading.Lock()
        self._servers: dict[str, _BackendHTTPServer] = {}
        self._threads: list[threading.Thread] = []

    @classmethod
    def named(
        cls, prefix: str, count: int, template: BackendSpec | None = None, *, record: bool = False
    ) -> Backends:
        """Build `count` servers named ``<prefix>1`` to ``<prefix>N`` that behave as
        `template` (ephemeral ports)."""
        base = template or BackendSpec(prefix)
        specs = [replace(base, name=f"{prefix}{i}", port=0) for i in range(1, count + 1)]
        return cls(specs, record=record)

    def start(self) -> Self:
        """Bind and start every server; raise `LabError` naming a port already in use.

        Calling it on a started pool does nothing.
        """
        if self._servers:
            return self
        for spec in self.specs:
            try:
                server = _BackendHTTPServer(spec, self)
            except OSError as exc:
                self.stop()
                raise LabError(
                    f"backend {spec.name}: cannot listen on {LOOPBACK}:{spec.port}: {exc}",
                    hint="free the port or give port 0 for an ephemeral one",
                ) from exc
            self._servers[spec.name] = server
            thread = threading.Thread(
                target=server.serve_forever,
                kwargs={"poll_interval": 0.1},
                name=f"lab-backend-{spec.name}",
                daemon=True,
            )
            thread.start()
            self._threads.append(thread)

        register(self)
        logger.debug("started backends %s", self.addresses())
        return self

    def stop(self) -> None:
        """Stop every server and close its socket."""
        for server in self._servers.values():
            server.shutdown()
            server.server_close()
        for thread in self._threads:
            thread.join(timeout=5)
        self._servers.clear()
        self._threads.clear()
        unregister(self)

    def port(self, name: str) -> int:
        """Return the port server `name` listens on."""
        return int(self._servers[name].server_address[1])

    def address(self, name: str) -> str:
        """Return ``127.0.0.1:<port>`` of server `name`."""
        return f"{LOOPBACK}:{self.port(name)}"

    def addresses(self) -> dict[str, str]:
        """Return every server's ``127.0.0.1:<port>`` by name, in spec order."""
        return {spec.name: self.address(spec.name) for spec in self.specs}

    def __iter__(self) -> Iterator[str]:
        return iter(spec.name for spec in self.specs)

    def record(self, request: RecordedRequest) -> None:
        """Count `request` and keep it when recording is on; called by the servers."""
        with self._lock:
            self.counts[request.server] += 1
            if self.record_requests:
                self.requests.append(request)

    def reset(self) -> None:
        """Forget the counts and recorded requests."""
        with self._lock:
            self.counts.clear()
            self.requests.clear()

    def snapshot(self) -> Counter[str]:
        """Return a copy of the per-server counts."""
        with self._lock:
            return Counter(self.counts)
