"""Real HAProxy and NGINX processes on 127.0.0.1, each in its own temporary directory.

Each process runs in the foreground as a child of the caller, in a session of its own,
with its config written to its work directory. `start` returns once every listening port
accepts connections. `reload` checks the new config with the product's own check mode,
hot-reloads it and waits until the old workers have exited. `stop` ends the whole process
group. Processes still running at interpreter exit are stopped.
"""

from __future__ import annotations

import logging
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import ClassVar, Self

from lbguard.lab.cleanup import LabResource, register, unregister
from lbguard.lab.errors import LabError
from lbguard.lab.loopback import check_haproxy, check_nginx

logger = logging.getLogger(__name__)

WORKDIR_TOKEN = "@WORKDIR@"
"""Replaced in every config by the process's work directory."""

DEFAULT_PATHS = ("/usr/sbin", "/usr/local/sbin", "/sbin")
"""Directories searched after PATH: distributions install both products in sbin."""


def find_binary(name: str) -> str | None:
    """Return the path of executable `name` from PATH or the sbin directories, or None."""
    found = shutil.which(name)
    if found:
        return found
    for directory in DEFAULT_PATHS:
        candidate = Path(directory) / name
        if candidate.is_file() and os.access(candidate, os.X_OK):
            return str(candidate)
    return None


def port_open(port: int, host: str = "127.0.0.1", timeout: float = 0.2) -> bool:
    """Return True when a TCP connection to host:port succeeds."""
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return True
    except OSError:
        return False


def free_port() -> int:
    """Return a TCP port on 127.0.0.1 that was free a moment ago (the OS may reuse it)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def child_pids(pid: int) -> set[int]:
    """Return the ids of the live processes whose parent is `pid` (Linux /proc)."""
    children: set[int] = set()
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        # Field 2 is "(comm)" and may contain spaces; the fields after it are plain.
        fields = stat.rsplit(")", 1)[1].split()
        state, parent = fields[0], int(fields[1])
        if parent == pid and state != "Z":
            children.add(int(entry.name))
    return children


class ProductProcess(LabResource):
    """A load-balancer binary running one config; see HAProxyProcess and NginxProcess."""

    product: ClassVar[str] = ""
    config_name: ClassVar[str] = "lb.conf"

    def __init__(
        self,
        config: str | Path,
        *,
        variables: Mapping[str, str] | None = None,
        binary: str | None = None,
        workdir: Path | None = None,
        ready_timeout: float = 10.0,
        stop_timeout: float = 10.0,
    ) -> None:
        found = binary or find_binary(self.product)
        if found is None:
            raise LabError(
                f"{self.product} not found in PATH or {', '.join(DEFAULT_PATHS)}",
                hint=f"install {self.product} (Debian: apt-get install {self.product})",
            )
        self.binary = found
        self.variables = dict(variables or {})
        self.ready_timeout = ready_timeout
        self.stop_timeout = stop_timeout

        self._own_workdir = workdir is None
        self.workdir = (
            Path(tempfile.mkdtemp(prefix=f"lbguard-{self.product}-"))
            if (workdir is None)
            else workdir
        )
        if os.geteuid() == 0:
            # Workers of a root master switch to an unprivileged user that must reach files
            # in the work directory; mkdtemp creates it with mode 0700.
            self.workdir.chmod(0o755)
        self.config_path = self.workdir / self.config_name
        self.listen_ports: list[int] = []
        self._process: subprocess.Popen[bytes] | None = None
        try:
            self._write_config(config, self.config_path)
        except BaseException:
            self._remove_workdir()
            raise

    # -- subclass hooks -------------------------------------------------------------------

    def _command(self) -> list[str]:
        raise NotImplementedError

    def _check_command(self, config_path: Path) -> list[str]:
        raise NotImplementedError

    def _check_loopback(self, path: Path) -> list[int]:
        raise NotImplementedError

    def _send_reload(self) -> None:
        raise NotImplementedError

    # -- config handling ------------------------------------------------------------------

    def render(self, config: str | Path) -> str:
        """Return config text with ``@WORKDIR@`` and ``@NAME@`` variables substituted."""
        text = config.read_text() if isinstance(config, Path) else config
        text = text.replace(WORKDIR_TOKEN, str(self.workdir))
        for name, value in self.variables.items():
            text = text.replace(f"@{name}@", value)
        return text

    def _write_config(self, config: str | Path, path: Path) -> None:
        path.write_text(self.render(config))
        self.listen_ports = self._check_loopback(path)
        self._validate(path)

    def _validate(self, path: Path) -> None:
        result = subprocess.run(
            self._check_command(path), capture_output=True, text=True, timeout=30, check=False
        )
        if result.returncode != 0:
            output = (result.stdout + result.stderr).strip()
            raise LabError(
                f"{self.product} rejected the config {path}:\n{output}",
                hint=f"fix the config; {' '.join(self._check_command(path))} shows the error",
            )

    # -- lifecycle ------------------------------------------------------------------------

    @property
    def pid(self) -> int:
        """Process id of the master process."""
        if self._process is None:
            raise LabError(f"{self.product} is not running")
        return self._process.pid

    @property
    def running(self) -> bool:
        return self._process is not None and self._process.poll() is None

    def start(self) -> Self:
        """Start the product and wait until every listening port accepts connections."""
        if self.running:
            return self
        stdout = (self.workdir / "stdout.log").open("ab")
        stderr = (self.workdir / "stderr.log").open("ab")
        with stdout, stderr:
            self._process = subprocess.Popen(
                self._command(),
                cwd=self.workdir,
                stdin=subprocess.DEVNULL,
                stdout=stdout,
                stderr=stderr,
                start_new_session=True,
            )
        register(self)
        logger.info("started %s pid %d in %s", self.product, self.pid, self.workdir)

        deadline = time.monotonic() + self.ready_timeout
        pending = [p for p in self.listen_ports if p]
        while pending:
            if not self.running:
                self._fail_exited("start")
            pending = [p for p in pending if not port_open(p)]
            if pending and time.monotonic() > deadline:
                self.stop()
                raise LabError(
                    f"{self.product} did not accept connections on port(s) "
                    f"{', '.join(map(str, pending))} within {self.ready_timeout} s",
                    hint=f"read {self.workdir / 'stderr.log'}",
                )
            time.sleep(0.02)
        return self

    def reload(self, config: str | Path | None = None, *, timeout: float = 15.0) -> None:
        """Hot-reload, optionally with a new config, and wait until only new workers run.

        An invalid new config raises `LabError` and leaves the running config in place.
        """
        if not self.running:
            raise LabError(f"{self.product} is not running", hint="call start() first")
        if config is not None:
            candidate = self.workdir / f"next-{self.config_name}"
            self._write_config(config, candidate)
            candidate.replace(self.config_path)

        old_workers = child_pids(self.pid)
        self._send_reload()
        deadline = time.monotonic() + timeout
        while True:
            if not self.running:
                self._fail_exited("reload")
            children = child_pids(self.pid)
            if children and not children & old_workers:
                break
            if time.monotonic() > deadline:
                raise LabError(
                    f"{self.product} reload did not finish within {timeout} s: old workers "
                    f"{sorted(children & old_workers)}, workers now {sorted(children)}",
                    hint="old workers keep running while clients hold connections open; "
                    "close the clients before reloading",
                )
            time.sleep(0.02)
        logger.info("reloaded %s pid %d, workers %s", self.product, self.pid, sorted(children))

    def stop(self) -> None:
        """Stop the master and its workers, then remove a work directory the lab created."""
        process = self._process
        if process is not None and process.poll() is None:
            process.terminate()
            try:
                process.wait(timeout=self.stop_timeout)
            except subprocess.TimeoutExpired:
                logger.warning("%s pid %d ignored SIGTERM; killing", self.product, process.pid)
                os.killpg(process.pid, signal.SIGKILL)
                process.wait(timeout=self.stop_timeout)
        if process is not None:
            self._kill_leftovers(process.pid)
        unregister(self)
        self._remove_workdir()

    def _remove_workdir(self) -> None:
        """Remove the work directory if the lab created it, unless LBGUARD_LAB_KEEP is set."""
        if self._own_workdir and not os.environ.get("LBGUARD_LAB_KEEP"):
            shutil.rmtree(self.workdir, ignore_errors=True)

    def _kill_leftovers(self, group: int) -> None:
        """Kill workers of our own process group that outlived their master."""
        try:
            os.killpg(group, signal.SIGKILL)
        except ProcessLookupError:
            return
        logger.warning("killed leftover %s workers of process group %d", self.product, group)

    def stderr_text(self) -> str:
        """Return what the product has written to stderr so far."""
        path = self.workdir / "stderr.log"
        return path.read_text(errors="replace") if path.exists() else ""

    def _fail_exited(self, action: str) -> None:
        code = self._process.returncode if self._process else None
        output = self.stderr_text().strip()[-2000:]
        self.stop()
        raise LabError(f"{self.product} exited with code {code} during {action}:\n{output}")


class HAProxyProcess(ProductProcess):
    """HAProxy in master-worker mode (``-W -db``); reload is SIGUSR2 to the master.

    The config must bind, connect and log to loopback addresses only. `start` probes each
    bind port with a connection that sends nothing, which HAProxy logs as a 400
    ``<BADREQ>`` line unless the frontend sets ``option dontlognull``.
    """

    product = "haproxy"
    config_name = "haproxy.cfg"

    def _command(self) -> list[str]:
        return [self.binary, "-W", "-db", "-f", str(self.config_path)]

    def _check_command(self, config_path: Path) -> list[str]:
        return [self.binary, "-c", "-q", "-f", str(config_path)]

    def _check_loopback(self, path: Path) -> list[int]:
        return check_haproxy(path.read_text(), path).listen_ports

    def _send_reload(self) -> None:
        # HAProxy 2.6 management guide: SIGUSR2 makes the master re-execute itself, read
        # the config again and start new workers; old workers finish their connections.
        os.kill(self.pid, signal.SIGUSR2)


class NginxProcess(ProductProcess):
    """NGINX with its own prefix, pid file and error log in the work directory.

    `config` is a whole nginx.conf that must not set ``daemon`` or ``pid`` (the lab sets
    both); `nginx_config` builds one around an ``http`` block.
    """

    product = "nginx"
    config_name = "nginx.conf"

    @property
    def _globals(self) -> str:
        return f"daemon off; pid {self.workdir / 'nginx.pid'};"

    def _base(self) -> list[str]:
        return [
            self.binary,
            "-p", f"{self.workdir}/",
            "-e", str(self.workdir / "error.log"),
            "-g", self._globals,
        ]  # fmt: skip

    def _command(self) -> list[str]:
        return [*self._base(), "-c", str(self.config_path)]

    def _check_command(self, config_path: Path) -> list[str]:
        return [*self._base(), "-t", "-q", "-c", str(config_path)]

    def _check_loopback(self, path: Path) -> list[int]:
        return check_nginx(path).listen_ports

    def _send_reload(self) -> None:
        result = subprocess.run(
            [*self._command(), "-s", "reload"],
            capture_output=True, text=True, timeout=30, check=False,
        )  # fmt: skip
        if result.returncode != 0:
            raise LabError(f"nginx -s reload failed: {result.stderr.strip()}")

    def error_log_text(self) -> str:
        path = self.workdir / "error.log"
        return path.read_text(errors="replace") if path.exists() else ""


NGINX_LOG_FORMAT = (
    '$remote_addr - $remote_user [$time_local] "$request" $status $body_bytes_sent '
    '"$http_referer" "$http_user_agent" "$http_x_forwarded_for" '
    "upstream=$upstream_addr upstream_status=$upstream_status "
    "request_time=$request_time upstream_response_time=$upstream_response_time"
)
"""The ``combined`` format plus the upstream variables a per-server analysis needs."""


def nginx_config(http_block: str, *, workers: int = 1, extra_main: Sequence[str] = ()) -> str:
    """Build a whole nginx.conf around the directives of one ``http`` block.

    Temp paths and the access log (``upstream_log`` format, `NGINX_LOG_FORMAT`) are placed
    in the work directory, so that NGINX needs no writable system paths.
    """
    main = "\n".join(extra_main)
    return f"""\
worker_processes {workers};
{main}
events {{
    worker_connections 1024;
}}
http {{
    client_body_temp_path {WORKDIR_TOKEN}/client_body_temp;
    proxy_temp_path {WORKDIR_TOKEN}/proxy_temp;
    fastcgi_temp_path {WORKDIR_TOKEN}/fastcgi_temp;
    uwsgi_temp_path {WORKDIR_TOKEN}/uwsgi_temp;
    scgi_temp_path {WORKDIR_TOKEN}/scgi_temp;
    log_format upstream_log '{NGINX_LOG_FORMAT}';
    access_log {WORKDIR_TOKEN}/access.log upstream_log;
{http_block}
}}
"""
