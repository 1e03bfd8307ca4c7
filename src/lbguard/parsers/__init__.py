"""Configuration parsers, one per product, behind one entry point.

`load_config` picks the product from the ``product`` argument, else from the file names and
contents through `DETECTORS`, a small explicit table checked in order.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path

from lbguard.errors import ConfigError
from lbguard.model import LoadBalancer, Product
from lbguard.parsers.haproxy import parse_haproxy
from lbguard.parsers.nginx import parse_nginx

__all__ = ["DETECTORS", "PARSERS", "detect_product", "load_config"]

Parser = Callable[[Sequence[str | Path]], LoadBalancer]

PARSERS: dict[Product, Parser] = {
    Product.HAPROXY: parse_haproxy,
    Product.NGINX: parse_nginx,
}
"""Product to the parser that reads its configuration."""

_HAPROXY_SECTION = re.compile(r"^\s*(global|defaults|frontend|backend|listen)(\s|$)", re.MULTILINE)

# nginx goes first because its server blocks hold indented "listen" lines, which the
# HAProxy pattern also matches; HAProxy configurations have no line opening a "{" block.
_NGINX_BLOCK = re.compile(
    r"^\s*(?:http|events|stream|upstream|server|location|map)(?:\s[^;{}\n]*)?\{[ \t]*(?:#.*)?$",
    re.MULTILINE,
)

DETECTORS: tuple[tuple[Product, re.Pattern[str], re.Pattern[str]], ...] = (
    (Product.NGINX, re.compile(r"nginx", re.IGNORECASE), _NGINX_BLOCK),
    (Product.HAPROXY, re.compile(r"haproxy|\.cfg$", re.IGNORECASE), _HAPROXY_SECTION),
)
"""(product, file-name pattern, content pattern) in the order they are tried. The content
pattern decides; the file-name pattern only breaks a tie when the content matches none."""

_SNIFF_BYTES = 65536


def detect_product(paths: Sequence[str | Path]) -> Product:
    """Return the product whose configuration the files hold; raise `ConfigError` if none."""
    files = _sample_files(paths)
    for product, _name_pattern, content_pattern in DETECTORS:
        if any(content_pattern.search(_head(path)) for path in files):
            return product
    for product, name_pattern, _content_pattern in DETECTORS:
        if any(name_pattern.search(path.name) for path in files):
            return product
    raise ConfigError(
        f"cannot tell which load balancer {files[0] if files else paths[0]} configures",
        hint="pass --product haproxy or --product nginx",
    )


def _sample_files(paths: Sequence[str | Path]) -> list[Path]:
    files: list[Path] = []
    for item in paths:
        path = Path(item)
        if path.is_dir():
            files.extend(sorted(entry for entry in path.iterdir() if entry.is_file()))
        elif path.is_file():
            files.append(path)
        else:
            raise ConfigError(f"configuration file not found: {path}", hint="check the path")
    return files


def _head(path: Path) -> str:
    with path.open("rb") as handle:
        return handle.read(_SNIFF_BYTES).decode("utf-8", errors="replace")


def load_config(
    paths: Sequence[str | Path],
    product: Product | None = None,
    *,
    prefix_map: Mapping[str, str] | None = None,
    resolve: Mapping[str, Sequence[str]] | None = None,
) -> LoadBalancer:
    """Parse the configuration of ``product`` (detected when None) from ``paths``.

    ``prefix_map`` (absolute include prefix to local folder) and ``resolve`` (host name to
    addresses) are passed to the NGINX parser; other products reject them.
    """
    if not paths:
        raise ConfigError("no configuration file given", hint="pass at least one file")
    chosen = product or detect_product(paths)
    parser = PARSERS.get(chosen)
    if parser is None:
        raise ConfigError(
            f"lbguard cannot read {chosen} configurations yet",
            hint=f"supported products: {', '.join(p.value for p in PARSERS)}",
        )
    if chosen is Product.NGINX and (prefix_map or resolve):
        return parse_nginx(paths, prefix_map=prefix_map, resolve=resolve)
    if prefix_map or resolve:
        raise ConfigError(
            f"--prefix-map and --resolve apply to nginx configurations, not {chosen}",
            hint="drop these options, or pass --product nginx for an nginx configuration",
        )
    return parser(paths)
