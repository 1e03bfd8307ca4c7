"""HAProxy 2.6 configuration parser: files in, `lbguard.model.LoadBalancer` out."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path

from lbguard.errors import ConfigError
from lbguard.model import Diagnostic, LoadBalancer
from lbguard.parsers.haproxy.build import build_load_balancer
from lbguard.parsers.haproxy.lexer import list_config_files, read_lines
from lbguard.parsers.haproxy.report import Reporter
from lbguard.parsers.haproxy.sections import Reader

__all__ = ["parse_haproxy"]

logger = logging.getLogger(__name__)


def parse_haproxy(paths: Sequence[str | Path]) -> LoadBalancer:
    """Parse HAProxy configuration files and directories, in the order ``haproxy -f`` reads
    them.

    A directory contributes its ``*.cfg`` files in byte order. Raise `ConfigError` when a
    path is missing or no file is left to read; every other problem becomes a diagnostic of
    the returned model.
    """
    if not paths:
        raise ConfigError("no configuration file given", hint="pass haproxy.cfg or a directory")
    files, missing = list_config_files([Path(path) for path in paths])
    if missing:
        raise ConfigError(
            f"configuration file not found: {missing[0]}",
            hint="check the path; give every file as HAProxy's -f options would",
        )
    if not files:
        raise ConfigError(
            f"no *.cfg file in {', '.join(str(path) for path in paths)}",
            hint="HAProxy reads only files ending in .cfg from a directory",
        )

    diagnostics: list[Diagnostic] = []
    reader = Reader(Reporter(diagnostics))
    names = []
    for path in files:
        name = str(path)
        names.append(name)
        logger.debug("reading %s", name)
        try:
            reader.read_file(read_lines(path, name, diagnostics), path.parent)
        except OSError as error:
            raise ConfigError(
                f"cannot read configuration file {name}: {error.strerror}",
                hint="check the file's permissions",
            ) from error
    return build_load_balancer(reader.proxies, names, diagnostics, reader.settings)
