"""The parser agrees with the real HAProxy on what is an error and on server ids.

Every configuration here uses 127.0.0.1 only, so ``haproxy -c`` resolves no host name.
"""

from __future__ import annotations

import os
import re
import shutil
import socket
import subprocess
import textwrap
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from lbguard.model import Severity
from lbguard.parsers.haproxy import parse_haproxy

_LINE = re.compile(r"\[[^\]]*?:(\d+)\]")

HEADER = """
defaults
    mode http
    timeout connect 1s
    timeout client 1s
    timeout server 1s
"""

BROKEN = {
    "unknown-keyword": """
        backend be
            server s1 127.0.0.1:9000
            foo bar
        """,
    "undefined-acl": """
        frontend fe
            bind 127.0.0.1:18080
            acl a path_beg /a
            use_backend be if b
        backend be
            server s1 127.0.0.1:9000
        """,
    "bad-weight": """
        backend be
            server s1 127.0.0.1:9000 weight 300
        """,
    "unknown-balance": """
        backend be
            balance fastest
            server s1 127.0.0.1:9000
        """,
    "bad-hash-type": """
        backend be
            balance uri
            hash-type consistent md5
            server s1 127.0.0.1:9000
        """,
    "server-out-of-section": """
        server s0 127.0.0.1:9000
        backend be
            server s1 127.0.0.1:9000
        """,
    "duplicate-server": """
        backend be
            server s1 127.0.0.1:9000
            server s1 127.0.0.1:9001
        """,
    "unknown-server-keyword": """
        backend be
            server s1 127.0.0.1:9000 wieght 3
        """,
    "unmatched-quote": """
        backend be
            server s1 127.0.0.1:9000
            http-request deny if { path "/x }
        """,
    "trailing-backslash": """
        backend be
            server s1 127.0.0.1:9000 \\
                weight 3
        """,
    "removed-block": """
        frontend fe
            bind 127.0.0.1:18080
            block if TRUE
            default_backend be
        backend be
            server s1 127.0.0.1:9000
        """,
    "bad-acl-flag": """
        frontend fe
            bind 127.0.0.1:18080
            acl a path_beg -q /x
            default_backend be
        backend be
            server s1 127.0.0.1:9000
        """,
    "bind-port-zero": """
        frontend fe
            bind 127.0.0.1:0
            default_backend be
        backend be
            server s1 127.0.0.1:9000
        """,
    "valid": """
        frontend fe
            bind 127.0.0.1:18080
            acl api path_beg /api
            http-request deny if { src 10.0.0.0/8 }
            use_backend api if api
            default_backend be
        backend be
            balance uri whole
            hash-type consistent
            server-template web 3 127.0.0.1:9000 weight 20
        backend api
            balance url_param id check_post
            default-server check inter 2s
            server a1 127.0.0.1:9100 id 4
            server a2 127.0.0.1:9101 backup
        """,
}


@pytest.fixture(scope="module")
def haproxy() -> str:
    path = shutil.which("haproxy") or (
        "/usr/sbin/haproxy" if Path("/usr/sbin/haproxy").exists() else None
    )
    if path is None:
        if os.environ.get("LBGUARD_REQUIRE_PRODUCTS") == "1":
            pytest.fail("haproxy is not installed and LBGUARD_REQUIRE_PRODUCTS=1")
        pytest.skip("haproxy is not installed")
    return path


def write_config(tmp_path: Path, body: str) -> Path:
    path = tmp_path / "haproxy.cfg"
    path.write_text(textwrap.dedent(HEADER).lstrip() + textwrap.dedent(body).lstrip("\n"))
    return path


def alert_lines(haproxy: str, path: Path) -> tuple[int, set[int], str]:
    """Run ``haproxy -c``; return its exit code, the lines its alerts name, and its output."""
    result = subprocess.run(
        [haproxy, "-c", "-f", str(path)], capture_output=True, text=True, timeout=30, check=False
    )
    output = result.stdout + result.stderr
    lines = {
        int(match.group(1))
        for line in output.splitlines()
        if "[ALERT]" in line
        for match in _LINE.finditer(line)
    }
    return result.returncode, lines, output


@pytest.mark.parametrize("name", sorted(BROKEN))
def test_error_lines_match_haproxy(haproxy: str, tmp_path: Path, name: str) -> None:
    path = write_config(tmp_path, BROKEN[name])
    code, product_lines, output = alert_lines(haproxy, path)
    lb = parse_haproxy([path])
    ours = {d.location.line for d in lb.diagnostics if d.severity is Severity.ERROR}
    assert ours == product_lines, output
    assert (code == 0) == (name == "valid"), output


def test_unknown_backend_wording_matches(haproxy: str, tmp_path: Path) -> None:
    path = write_config(
        tmp_path,
        """
        frontend fe
            bind 127.0.0.1:18080
            use_backend nope if { path /x }
            default_backend be
        backend be
            server s1 127.0.0.1:9000
        """,
    )
    _code, _lines, output = alert_lines(haproxy, path)
    lb = parse_haproxy([path])
    messages = [d.message for d in lb.diagnostics if d.severity is Severity.ERROR]
    assert messages == ["Proxy 'fe': unable to find required use_backend: 'nope'."]
    assert messages[0] in output


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@pytest.fixture
def running(haproxy: str, tmp_path: Path) -> Iterator[tuple[Path, Path]]:
    """Start HAProxy on 127.0.0.1 with a stats socket; yield (config, socket)."""
    sock = tmp_path / "stats.sock"
    path = write_config(
        tmp_path,
        f"""
        global
            stats socket {sock} mode 600
        frontend fe
            bind 127.0.0.1:{free_port()}
            default_backend be
        backend be
            server a 127.0.0.1:9000
            server b 127.0.0.1:9001 id 3
            server-template web 2-4 127.0.0.1:9100
            server-template app 2 127.0.0.1:9200 id 10
            server c 127.0.0.1:9002
        """,
    )
    process = subprocess.Popen(
        [haproxy, "-db", "-f", str(path)], stdout=subprocess.PIPE, stderr=subprocess.STDOUT
    )
    try:
        deadline = time.monotonic() + 10
        while not sock.exists() and time.monotonic() < deadline and process.poll() is None:
            time.sleep(0.05)
        assert sock.exists(), "HAProxy did not open its stats socket"
        yield path, sock
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=10)


def connect_when_ready(client: socket.socket, sock: Path) -> None:
    """Connect to the stats socket; HAProxy creates the file before it accepts on it."""
    deadline = time.monotonic() + 10
    while True:
        try:
            client.connect(str(sock))
            return
        except ConnectionRefusedError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.05)


def show_servers_state(sock: Path) -> dict[str, int]:
    with socket.socket(socket.AF_UNIX) as client:
        client.settimeout(5)
        connect_when_ready(client, sock)
        client.sendall(b"show servers state be\n")
        data = b""
        while chunk := client.recv(65536):
            data += chunk
    ids = {}
    for line in data.decode().splitlines():
        fields = line.split()
        if len(fields) > 3 and fields[1] == "be":
            ids[fields[3]] = int(fields[2])
    return ids


def test_server_ids_match_running_haproxy(running: tuple[Path, Path]) -> None:
    path, sock = running
    product_ids = show_servers_state(sock)
    lb = parse_haproxy([path])
    pool = lb.pool("be")
    assert pool is not None
    ours = {server.name: server.id for server in pool.servers}
    assert ours == product_ids
    assert ours["app2"] == 8
