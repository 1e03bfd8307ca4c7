"""Configuration parsers, one per product, behind one entry point.

`load_config` picks the product from the ``product`` argument, else from the file names and
contents through `DETECTORS`, a small explicit table checked in order. It also recognises
products that lbguard cannot read yet (Envoy, Traefik, Caddy, the Kubernetes Gateway API),
so that their users get a plain error message instead of a wrong parser's errors.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path

from lbguard.errors import ConfigError
from lbguard.model import LoadBalancer, Product
from lbguard.parsers.files import ConfigFileError, read_config_file
from lbguard.parsers.haproxy import parse_haproxy
from lbguard.parsers.nginx import parse_nginx

__all__ = ["DETECTORS", "PARSERS", "PRODUCT_NAMES", "detect_product", "load_config"]

Parser = Callable[[Sequence[str | Path]], LoadBalancer]

PARSERS: dict[Product, Parser] = {
    Product.HAPROXY: parse_haproxy,
    Product.NGINX: parse_nginx,
}
"""Product to the parser that reads its configuration."""

PRODUCT_NAMES: dict[Product, str] = {
    Product.HAPROXY: "HAProxy",
    Product.NGINX: "NGINX",
    Product.ENVOY: "Envoy",
    Product.AWS_ALB: "AWS Application Load Balancer",
    Product.GATEWAY_API: "Kubernetes Gateway API",
    Product.TRAEFIK: "Traefik",
    Product.CADDY: "Caddy",
}
"""Each product's name as its vendor writes it, for messages."""

_HAPROXY_SECTION = re.compile(r"^\s*(global|defaults|frontend|backend|listen)(\s|$)", re.MULTILINE)

# nginx goes first because its server blocks hold indented "listen" lines, which the
# HAProxy pattern also matches; HAProxy configurations have no line opening a "{" block.
_NGINX_BLOCK = re.compile(
    r"^\s*(?:http|events|stream|upstream|server|location|map)(?:\s[^;{}\n]*)?\{[ \t]*(?:#.*)?$",
    re.MULTILINE,
)

# Products lbguard cannot read yet, recognised by the top-level keys of their documented
# formats. Envoy: a bootstrap (static_resources) or a cluster list. Traefik: dynamic
# configuration (http routers and services, in YAML or TOML) or static configuration
# (entryPoints). Caddy: Caddyfile directives or JSON "apps". Gateway API: its apiVersion.
_GATEWAY_API = re.compile(r"^apiVersion:\s*[\"']?gateway\.networking\.k8s\.io/", re.MULTILINE)
_ENVOY = re.compile(
    r"^\s*\"?static_resources\"?\s*:"
    r"|^\s*\"@type\"\s*:\s*\"?type\.googleapis\.com/envoy\."
    r"|^clusters:\s*$.*^\s+(?:-\s+)?(?:load_assignment|lb_policy|connect_timeout):",
    re.MULTILINE | re.DOTALL,
)
_TRAEFIK = re.compile(
    r"^http:\s*$.*?^\s+(?:routers|services|middlewares):"
    r"|^\[http\.(?:routers|services|middlewares)[.\]]"
    r"|^entryPoints:\s*$",
    re.MULTILINE | re.DOTALL,
)
_CADDY = re.compile(
    r"^\s*(?:reverse_proxy|file_server|php_fastcgi)(?:\s|$)"
    r"|\"apps\"\s*:\s*\{\s*\"(?:http|tls|pki)\"",
    re.MULTILINE,
)

DETECTORS: tuple[tuple[Product, re.Pattern[str], re.Pattern[str]], ...] = (
    (Product.NGINX, re.compile(r"nginx", re.IGNORECASE), _NGINX_BLOCK),
    (Product.HAPROXY, re.compile(r"haproxy|\.cfg$", re.IGNORECASE), _HAPROXY_SECTION),
    (Product.GATEWAY_API, re.compile(r"gateway|httproute", re.IGNORECASE), _GATEWAY_API),
    (Product.ENVOY, re.compile(r"envoy", re.IGNORECASE), _ENVOY),
    (Product.TRAEFIK, re.compile(r"traefik", re.IGNORECASE), _TRAEFIK),
    (Product.CADDY, re.compile(r"^Caddyfile|caddy", re.IGNORECASE), _CADDY),
)
"""(product, file-name pattern, content pattern) in the order they are tried. The content
pattern decides; the file-name pattern only breaks a tie when the content matches none."""

_SNIFF_BYTES = 65536


def detect_product(paths: Sequence[str | Path]) -> Product:
    """Return the product whose configuration the files hold.

    Raise `ConfigError` when no file looks like a known product, when two files belong to
    different products, or when a path cannot be read (`read_config_file`).
    """
    return _detect(paths)[0]


def _detect(paths: Sequence[str | Path]) -> tuple[Product, Path]:
    """Return the product and the first file that shows it."""
    samples = _sample_files(paths)
    found: dict[Product, Path] = {}
    for path, head in samples:
        product = _content_product(head)
        if product is not None:
            found.setdefault(product, path)
    if len(found) > 1:
        (first, first_path), (second, second_path) = list(found.items())[:2]
        raise ConfigError(
            f"{first_path} is for {PRODUCT_NAMES[first]} but {second_path} is for "
            f"{PRODUCT_NAMES[second]}",
            hint="check one load balancer at a time: run lbguard once per product",
        )
    if found:
        return next(iter(found.items()))

    for product, name_pattern, _content_pattern in DETECTORS:
        for path, _head in samples:
            if name_pattern.search(path.name):
                return product, path
    shown = samples[0][0] if samples else paths[0]
    raise ConfigError(
        f"cannot tell which load balancer {shown} configures",
        hint="pass --product haproxy or --product nginx",
    )


def _content_product(head: str) -> Product | None:
    for product, _name_pattern, content_pattern in DETECTORS:
        if content_pattern.search(head):
            return product
    return None


def _sample_files(paths: Sequence[str | Path]) -> list[tuple[Path, str]]:
    """Return each file with the start of its text; a directory gives its regular files."""
    samples: list[tuple[Path, str]] = []
    for item in paths:
        path = Path(item)
        if path.is_dir():
            files = sorted(entry for entry in path.iterdir() if entry.is_file())
        else:
            files = [path]
        for file in files:
            try:
                head = read_config_file(file, head=_SNIFF_BYTES)
            except ConfigFileError:
                # A directory may hold other files (maps, backups) that are no concern of
                # detection; a file named on its own must be readable.
                if file is path:
                    raise
                continue
            # Windows line ends would hide the "{" at the end of an nginx block line.
            text = head.decode("utf-8", errors="replace").replace("\r", "")
            samples.append((file, text))
    return samples


def _check_files(paths: Sequence[str | Path]) -> None:
    for item in paths:
        if not Path(item).is_dir():
            read_config_file(item, head=0)


def load_config(
    paths: Sequence[str | Path],
    product: Product | None = None,
    *,
    prefix_map: Mapping[str, str] | None = None,
    resolve: Mapping[str, Sequence[str]] | None = None,
) -> LoadBalancer:
    """Parse the configuration of ``product`` (detected when None) from ``paths``.

    Every path must be a directory or a regular file (`read_config_file`), else
    `ConfigError` is raised before any parser runs. ``prefix_map`` (absolute include prefix
    to local folder) and ``resolve`` (host name to addresses) are passed to the NGINX
    parser; other products reject them.
    """
    if not paths:
        raise ConfigError("no configuration file given", hint="pass at least one file")
    product_file = Path(paths[0])
    if product is None:
        chosen, product_file = _detect(paths)
    else:
        _check_files(paths)
        chosen = product
    parser = PARSERS.get(chosen)
    if parser is None:
        supported = " and ".join(PRODUCT_NAMES[p] for p in PARSERS)
        raise ConfigError(
            f"{product_file} is for {PRODUCT_NAMES[chosen]}, and lbguard supports {supported} "
            "configurations so far",
            hint="give lbguard the HAProxy or NGINX configuration of a load balancer",
        )
    if chosen is Product.NGINX and (prefix_map or resolve):
        return parse_nginx(paths, prefix_map=prefix_map, resolve=resolve)
    if prefix_map or resolve:
        raise ConfigError(
            f"--prefix-map and --resolve apply to nginx configurations, not {chosen}",
            hint="drop these options, or pass --product nginx for an nginx configuration",
        )
    return parser(paths)
