"""Time from a configuration file change to the alert's arrival at a webhook receiver.

Starts ``lbguard watch`` as its own process with the default watch settings (inotify,
0.3 s debounce), a webhook sink pointing at a receiver in this process on 127.0.0.1, and
one HAProxy configuration. Each round rewrites the configuration so that one server's
weight moves from 10 to 100 or back, which fires or resolves one share-shift alert, and
measures from just before the write to the arrival of the delivery.

With ``--black-hole``, a second webhook sink comes first in watch.toml and points at a
TCP listener that completes connections and never responds (a hung receiver), so every
delivery to it waits for its 5 s timeout. The alerts must still reach the good receiver
within the target, because each sink has its own delivery thread.

Usage: .venv/bin/python bench/alert_latency.py [--rounds N] [--black-hole]
Target: every alert arrives within 2 s of the change.
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

TARGET_SECONDS = 2.0
ROUND_TIMEOUT = 10.0
"""Seconds a round waits for its alert before the benchmark fails."""

CONFIG = """\
defaults
    mode http
    timeout connect 2s
    timeout client 10s
    timeout server 10s

frontend fe_main
    bind 127.0.0.1:8080
    default_backend be_web

backend be_web
    balance roundrobin
    server web1 127.0.0.1:9001 weight 10
    server web2 127.0.0.1:9002 weight 10
    server web3 127.0.0.1:9003 weight {weight}
"""


class Arrivals:
    def __init__(self) -> None:
        self.times: list[tuple[float, dict[str, Any]]] = []
        self.condition = threading.Condition()

    def add(self, body: dict[str, Any]) -> None:
        with self.condition:
            self.times.append((time.time(), body))
            self.condition.notify_all()

    def wait_count(self, count: int, timeout: float) -> bool:
        with self.condition:
            return self.condition.wait_for(lambda: len(self.times) >= count, timeout)


def start_receiver(arrivals: Arrivals) -> ThreadingHTTPServer:
    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
            arrivals.add(body)
            self.send_response(200)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, format: str, *args: Any) -> None:
            return

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server


BLACK_HOLE_SINK = """
[[sinks]]
name = "hung"
type = "webhook"
url = "http://127.0.0.1:{port}/hook"
"""


def black_hole() -> socket.socket:
    """Listen on 127.0.0.1 without ever accepting: the kernel completes the handshakes up
    to the backlog, and nothing responds."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(128)
    return listener


def write_watch_config(
    directory: Path, config: Path, hook_port: int, hung_port: int | None
) -> Path:
    hung = BLACK_HOLE_SINK.format(port=hung_port) if hung_port is not None else ""
    path = directory / "watch.toml"
    path.write_text(
        f"""\
instance = "bench"
configs = ["{config}"]
product = "haproxy"
db = "{directory / "history.db"}"

[metrics]
listen = ""

[thresholds]
finding_severity = "off"
{hung}
[[sinks]]
name = "hook"
type = "webhook"
url = "http://127.0.0.1:{hook_port}/hook"
"""
    )
    return path


def wait_started(log: Path, process: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if "recorded first snapshot" in log.read_text(errors="replace"):
            return
        if process.poll() is not None:
            break
        time.sleep(0.05)
    sys.exit(f"lbguard watch did not start:\n{log.read_text(errors='replace')}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=20, help="changes to time (default 20)")
    parser.add_argument(
        "--black-hole",
        action="store_true",
        help="configure a sink that never responds, before the measured one",
    )
    args = parser.parse_args()
    hung = black_hole() if args.black_hole else None

    lbguard = Path(sys.executable).with_name("lbguard")
    arrivals = Arrivals()
    server = start_receiver(arrivals)
    latencies: list[float] = []
    with tempfile.TemporaryDirectory(prefix="lbguard-bench-") as temporary:
        directory = Path(temporary)
        config = directory / "haproxy.cfg"
        config.write_text(CONFIG.format(weight=10))
        watch = write_watch_config(
            directory,
            config,
            int(server.server_address[1]),
            hung.getsockname()[1] if hung is not None else None,
        )
        log = directory / "watch.log"
        with log.open("wb") as handle:
            process = subprocess.Popen(
                [str(lbguard), "-v", "watch", "--config", str(watch)],
                stdin=subprocess.DEVNULL,
                stdout=handle,
                stderr=subprocess.STDOUT,
            )
        try:
            wait_started(log, process)
            for round_number in range(args.rounds):
                weight = 100 if round_number % 2 == 0 else 10
                time.sleep(0.5)
                started = time.time()
                config.write_text(CONFIG.format(weight=weight))
                if not arrivals.wait_count(round_number + 1, ROUND_TIMEOUT):
                    sys.exit(f"round {round_number + 1}: no alert within {ROUND_TIMEOUT} s")
                arrived, body = arrivals.times[round_number]
                expected = "firing" if weight == 100 else "resolved"
                if body["status"] != expected:
                    sys.exit(f"round {round_number + 1}: got {body['status']}, not {expected}")
                latencies.append(arrived - started)
        finally:
            process.terminate()
            process.wait(timeout=15)
            server.shutdown()
            if hung is not None:
                hung.close()

    ordered = sorted(latencies)
    p95 = ordered[max(0, round(0.95 * len(ordered)) - 1)]
    setup = "with a sink that never responds" if args.black_hole else "one sink"
    print(f"alert latency over {len(latencies)} changes, {setup} (cpus: {os.cpu_count()}):")
    print(
        f"  min {min(latencies):.3f} s  median {statistics.median(latencies):.3f} s  "
        f"p95 {p95:.3f} s  max {max(latencies):.3f} s"
    )
    verdict = "met" if max(latencies) < TARGET_SECONDS else "MISSED"
    print(f"  target: every alert under {TARGET_SECONDS:.1f} s: {verdict}")
    if max(latencies) >= TARGET_SECONDS:
        sys.exit(1)


if __name__ == "__main__":
    main()
