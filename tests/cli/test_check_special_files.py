"""``lbguard check`` on inputs a new user tries: special files, mixed products, nginx
configurations that are clean, and messages with bytes that are not UTF-8."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from lbguard.cli.main import ExitCode, main

CORPUS = Path(__file__).parent.parent / "data" / "nginx" / "corpus"

RUN_CHECK = "import sys; from lbguard.cli.main import main; sys.exit(main(sys.argv[1:]))"


def run_isolated(args: list[str]) -> subprocess.CompletedProcess[str]:
    """Run ``lbguard check`` in a child process that fails the test instead of hanging."""
    return subprocess.run(
        [sys.executable, "-c", RUN_CHECK, "check", *args],
        capture_output=True,
        text=True,
        timeout=60,
        stdin=subprocess.DEVNULL,
        check=False,
    )


def test_fifo_config_fails_at_once(tmp_path: Path) -> None:
    fifo = tmp_path / "nginx.conf"
    os.mkfifo(fifo)
    result = run_isolated([str(fifo)])
    assert result.returncode == ExitCode.ERROR
    assert f"lbguard: error: {fifo} is not a regular file but a fifo" in result.stderr


def test_proc_kmsg_fails_at_once() -> None:
    if not os.path.exists("/proc/kmsg"):
        pytest.skip("/proc/kmsg does not exist on this machine")
    result = run_isolated(["/proc/kmsg"])
    assert result.returncode == ExitCode.ERROR
    assert "/proc/kmsg is not a regular file but a pseudo-file of /proc" in result.stderr


def test_nginx_include_of_fifo_fails_at_once(tmp_path: Path) -> None:
    os.mkfifo(tmp_path / "fifo.conf")
    config = tmp_path / "nginx.conf"
    config.write_text(
        "events {}\nhttp {\n    include fifo.conf;\n"
        "    upstream app { server 127.0.0.1:9001; }\n}\n"
    )
    result = run_isolated([str(config)])
    assert result.returncode == ExitCode.FINDINGS
    assert "is not a regular file but a fifo" in result.stdout


TWO_SERVERS = """events {}
http {
    upstream app {
        zone app 64k;
        server 127.0.0.1:9001;
        server 127.0.0.1:9002;
    }
    server {
        listen 8080;
        server_name a.test;
        location / { proxy_pass http://app; }
    }
    server {
        listen 8080;
        server_name b.test;
        location / { proxy_pass http://app; }
    }
}
"""


def test_clean_nginx_config_exits_zero(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    config = tmp_path / "nginx.conf"
    config.write_text(TWO_SERVERS)
    code = main(["check", str(config), "--fail-on", "info"])
    out, _ = capsys.readouterr()
    assert "LB101" not in out
    assert code == ExitCode.OK


def test_mixed_products_name_both_files(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    nginx = tmp_path / "nginx.conf"
    nginx.write_text(TWO_SERVERS)
    haproxy = tmp_path / "haproxy.cfg"
    haproxy.write_text("backend be\n    server s1 127.0.0.1:9001\n")
    code = main(["check", str(nginx), str(haproxy)])
    _, err = capsys.readouterr()
    assert code == ExitCode.ERROR
    assert f"lbguard: error: {nginx} is for NGINX but {haproxy} is for HAProxy" in err


def test_swarm_demo_names_skipped_include(capsys: pytest.CaptureFixture[str]) -> None:
    root = CORPUS / "nginx-demos-swarm"
    code = main(["check", str(root / "nginx.conf")])
    _, err = capsys.readouterr()
    assert code == ExitCode.ERROR
    assert 'include "/etc/nginx/conf.d/*.conf" not read' in err
    assert f"--prefix-map /etc/nginx/={root}/" in err


LATIN = b"""frontend fe
    mode http
    bind :8080
    use_backend be if { url_ip 192.168.0.0/24 }
    use_backend caf\xe9 if { path_beg /x }
    default_backend be
backend be
    server s1 127.0.0.1:9001
"""


def test_non_utf8_bytes_shown_as_hex(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    config = tmp_path / "haproxy.cfg"
    config.write_bytes(LATIN)
    main(["check", str(config), "--limit", "0"])
    out, _ = capsys.readouterr()
    assert "caf\\xe9" in out
    assert "\\udce9" not in out


def test_unmodelled_fetch_reason_reads(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    config = tmp_path / "haproxy.cfg"
    config.write_bytes(LATIN)
    main(["check", str(config), "--limit", "0"])
    out, _ = capsys.readouterr()
    flat = " ".join(out.split())
    assert "it uses the sample fetch 'url_ip', which no traffic profile column describes" in flat
    assert "it the sample" not in flat
