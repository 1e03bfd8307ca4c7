"""A UDP syslog receiver on 127.0.0.1 that writes messages to a file as rsyslog does.

HAProxy 2.6 sends each log line as one datagram with an RFC 3164 header and no hostname:
``<134>Dec  4 15:58:25 haproxy[8200]: <message>``. rsyslog's default file template drops
the priority and inserts the host name after the timestamp, so log files on disk read
``Dec  4 15:58:25 lb1 haproxy[8200]: <message>``. The receiver writes that same shape.
"""

from __future__ import annotations

import logging
import re
import socket
import threading
import time
from pathlib import Path
from typing import Self

from lbguard.lab.cleanup import LabResource, register, unregister
from lbguard.lab.errors import LabError

logger = logging.getLogger(__name__)

RECEIVE_BUFFER = 4 * 1024 * 1024
"""Socket receive buffer in bytes, so that bursts of log datagrams are not dropped while
the writer thread is busy (the kernel may grant less: see net.core.rmem_max)."""

_HEADER = re.compile(
    rb"^<(?P<pri>\d{1,3})>(?P<stamp>[A-Z][a-z]{2} [ \d]\d \d\d:\d\d:\d\d) (?P<rest>.*)$",
    re.DOTALL,
)


class SyslogReceiver(LabResource):
    """Receive syslog datagrams on 127.0.0.1 and append them to `path`, one per line.

    Use as a context manager. `address` is the ``127.0.0.1:<port>`` to give HAProxy in
    ``log <address> local0``.
    """

    def __init__(
        self, path: Path, *, port: int = 0, hostname: str = "lb1", keep_priority: bool = False
    ) -> None:
        self.path = path
        self.port = port
        self.hostname = hostname
        self.keep_priority = keep_priority
        self.lines = 0
        """Lines written so far."""

        self._socket: socket.socket | None = None
        self._thread: threading.Thread | None = None
        self._stopping = threading.Event()
        self._changed = threading.Condition()

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"

    def start(self) -> Self:
        sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, RECEIVE_BUFFER)
        try:
            sock.bind(("127.0.0.1", self.port))
        except OSError as exc:
            sock.close()
            raise LabError(
                f"syslog receiver cannot listen on 127.0.0.1:{self.port}/udp: {exc}",
                hint="free the port or give port 0 for an ephemeral one",
            ) from exc
        sock.settimeout(0.1)
        self.port = int(sock.getsockname()[1])
        self._socket = sock
        self._stopping.clear()
        self._thread = threading.Thread(target=self._run, name="lab-syslog", daemon=True)
        self._thread.start()
        register(self)
        return self

    def format_line(self, datagram: bytes) -> bytes:
        """Turn one datagram into the line a syslog daemon writes to its file."""
        datagram = datagram.rstrip(b"\r\n\x00")
        match = _HEADER.match(datagram)
        if match is None:
            return datagram
        prefix = b"<" + match["pri"] + b">" if self.keep_priority else b""
        return prefix + match["stamp"] + b" " + self.hostname.encode() + b" " + match["rest"]

    def _run(self) -> None:
        assert self._socket is not None
        with self.path.open("ab") as out:
            while not self._stopping.is_set():
                try:
                    datagram = self._socket.recv(65535)
                except TimeoutError:
                    continue
                except OSError:
                    break
                out.write(self.format_line(datagram) + b"\n")
                out.flush()
                with self._changed:
                    self.lines += 1
                    self._changed.notify_all()

    def wait_for_lines(self, count: int, timeout: float = 5.0) -> bool:
        """Wait until at least `count` lines were written; return False on timeout."""
        deadline = time.monotonic() + timeout
        with self._changed:
            while self.lines < count:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    return False
                self._changed.wait(remaining)
        return True

    def wait_idle(self, quiet: float = 0.5, timeout: float = 10.0) -> int:
        """Wait until no line arrived for `quiet` seconds; return the line count."""
        deadline = time.monotonic() + timeout
        seen = -1
        while time.monotonic() < deadline and seen != self.lines:
            seen = self.lines
            time.sleep(quiet)
        return self.lines

    def stop(self) -> None:
        self._stopping.set()
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None
        if self._socket is not None:
            self._socket.close()
            self._socket = None
        unregister(self)
