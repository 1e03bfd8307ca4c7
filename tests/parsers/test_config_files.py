"""Reading configuration paths safely, and telling products apart before parsing."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from lbguard.errors import ConfigError
from lbguard.model import Product
from lbguard.parsers import detect_product, load_config
from lbguard.parsers.files import MAX_CONFIG_BYTES, ConfigFileError, read_config_file

NGINX = """events {}
http {
    upstream app {
        server 127.0.0.1:9001;
        server 127.0.0.1:9002;
    }
    server {
        listen 8080;
        location / {
            proxy_pass http://app;
        }
    }
}
"""

HAPROXY = """frontend fe
    bind :8080
    default_backend be
backend be
    server s1 127.0.0.1:9001
"""


def _write(tmp_path: Path, name: str, text: str) -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


# --------------------------------------------------------------------------------------
# read_config_file


def test_read_regular_file(tmp_path: Path) -> None:
    path = _write(tmp_path, "nginx.conf", NGINX)
    assert read_config_file(path) == NGINX.encode()
    assert read_config_file(path, head=6) == b"events"


def _read_error(path: str | Path) -> ConfigFileError:
    with pytest.raises(ConfigFileError) as caught:
        read_config_file(path)
    return caught.value


def test_fifo_is_not_regular(tmp_path: Path) -> None:
    fifo = tmp_path / "fifo.conf"
    os.mkfifo(fifo)
    assert _read_error(fifo).message == f"{fifo} is not a regular file but a fifo"


@pytest.mark.parametrize(
    ("path", "kind"),
    [
        ("/dev/zero", "a character device"),
        ("/proc/self/status", "a pseudo-file of /proc"),
        ("/proc/kmsg", "a pseudo-file of /proc"),
        ("/sys/kernel/mm/transparent_hugepage/enabled", "a pseudo-file of /sys"),
    ],
)
def test_special_files_are_not_regular(path: str, kind: str) -> None:
    if not os.path.exists(path):
        pytest.skip(f"{path} does not exist on this machine")
    if not os.access(path, os.R_OK):
        pytest.skip(f"{path} is not readable by this user")
    assert _read_error(path).message == f"{path} is not a regular file but {kind}"


def test_pipe_is_fifo() -> None:
    read_end, write_end = os.pipe()
    path = f"/dev/fd/{read_end}"
    try:
        assert _read_error(path).message == f"{path} is not a regular file but a fifo"
    finally:
        os.close(read_end)
        os.close(write_end)


def test_directory_is_not_regular(tmp_path: Path) -> None:
    error = _read_error(tmp_path)
    assert error.message == f"{tmp_path} is not a regular file but a directory"
    assert error.errno == 21


def test_symlink_loop_is_named(tmp_path: Path) -> None:
    (tmp_path / "a.conf").symlink_to(tmp_path / "b.conf")
    (tmp_path / "b.conf").symlink_to(tmp_path / "a.conf")
    error = _read_error(tmp_path / "a.conf")
    assert "symbolic link loop" in error.message
    assert str(tmp_path / "a.conf") in error.message


def test_missing_file_is_named(tmp_path: Path) -> None:
    error = _read_error(tmp_path / "missing.conf")
    assert error.message == f"configuration file not found: {tmp_path / 'missing.conf'}"
    assert error.errno == 2


def test_permission_denied_is_named(tmp_path: Path) -> None:
    if os.geteuid() == 0:
        pytest.skip("root reads files whatever their mode")
    path = _write(tmp_path, "secret.conf", NGINX)
    path.chmod(0)
    assert _read_error(path).message == f"permission denied reading configuration file {path}"


def test_file_over_limit_names_limit(tmp_path: Path) -> None:
    path = tmp_path / "huge.conf"
    with path.open("wb") as handle:
        handle.truncate(MAX_CONFIG_BYTES + 1)
    message = _read_error(path).message
    assert message.startswith(f"{path} is larger than the 64 MiB limit")


# --------------------------------------------------------------------------------------
# load_config and detection


@pytest.mark.parametrize("product", [None, Product.HAPROXY, Product.NGINX])
def test_load_config_rejects_fifo(tmp_path: Path, product: Product | None) -> None:
    fifo = tmp_path / "lb.cfg"
    os.mkfifo(fifo)
    with pytest.raises(ConfigError, match="not a regular file but a fifo"):
        load_config([fifo], product)


def test_load_config_rejects_proc_file() -> None:
    with pytest.raises(ConfigError, match="pseudo-file of /proc"):
        load_config(["/proc/self/status"])


def test_directory_detection_skips_huge_file(tmp_path: Path) -> None:
    _write(tmp_path, "haproxy.cfg", HAPROXY)
    with (tmp_path / "big.map").open("wb") as handle:
        handle.truncate(MAX_CONFIG_BYTES + 1)
    assert detect_product([tmp_path]) is Product.HAPROXY


def test_crlf_nginx_is_detected(tmp_path: Path) -> None:
    path = tmp_path / "site.conf"
    path.write_bytes(NGINX.replace("\n", "\r\n").encode())
    assert detect_product([path]) is Product.NGINX
    pool = load_config([path]).pool("app")
    assert pool is not None
    assert len(pool.servers) == 2


def test_mixed_products_are_rejected(tmp_path: Path) -> None:
    nginx = _write(tmp_path, "nginx.conf", NGINX)
    haproxy = _write(tmp_path, "haproxy.cfg", HAPROXY)
    with pytest.raises(ConfigError) as caught:
        load_config([nginx, haproxy])
    assert caught.value.message == f"{nginx} is for NGINX but {haproxy} is for HAProxy"


UNSUPPORTED = [
    (
        "envoy.yaml",
        "static_resources:\n  clusters:\n  - name: web\n    connect_timeout: 1s\n",
        "Envoy",
    ),
    (
        "cds.yaml",
        "clusters:\n- name: web\n  connect_timeout: 1s\n  lb_policy: ROUND_ROBIN\n",
        "Envoy",
    ),
    (
        "dynamic.yml",
        "http:\n  routers:\n    web:\n      rule: Host(`a.test`)\n      service: web\n",
        "Traefik",
    ),
    ("dynamic.toml", '[http.routers]\n  [http.routers.web]\n    service = "web"\n', "Traefik"),
    ("Caddyfile", "a.test {\n\treverse_proxy 10.0.0.1:80 10.0.0.2:80\n}\n", "Caddy"),
    ("caddy.json", '{"apps": {"http": {"servers": {}}}}\n', "Caddy"),
    (
        "route.yaml",
        "apiVersion: gateway.networking.k8s.io/v1\nkind: HTTPRoute\nmetadata:\n  name: web\n",
        "Kubernetes Gateway API",
    ),
]


@pytest.mark.parametrize(("name", "text", "product"), UNSUPPORTED, ids=[u[0] for u in UNSUPPORTED])
def test_unsupported_product_is_named(tmp_path: Path, name: str, text: str, product: str) -> None:
    path = _write(tmp_path, name, text)
    with pytest.raises(ConfigError) as caught:
        load_config([path])
    message = caught.value.message
    assert message.startswith(f"{path} is for {product}, ")
    assert message.endswith("lbguard supports HAProxy and NGINX configurations so far")
    assert "--product" not in caught.value.hint


def test_unknown_content_still_suggests_product(tmp_path: Path) -> None:
    path = _write(tmp_path, "notes.txt", "nothing here\n")
    with pytest.raises(ConfigError, match="--product"):
        detect_product([path])


def test_forced_nginx_on_haproxy_file_gives_reason(tmp_path: Path) -> None:
    path = _write(tmp_path, "haproxy.cfg", HAPROXY)
    lb = load_config([path], Product.NGINX)
    assert [(d.location.line, d.message) for d in lb.diagnostics] == [
        (6, 'unexpected end of file, expecting ";" or "}"')
    ]
