"""Command-line values of ``lbguard check``: argparse types and input checks.

Each argparse type rejects a bad value with a message that names the option, the accepted
form and the value as typed. The checks after loading compare the values with the
configuration: a ``--down`` server or a profile frontend that the configuration lacks.
"""

from __future__ import annotations

import argparse
import ipaddress
import math
import os
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

import yaml

from lbguard.checks import find_rule
from lbguard.checks.wording import join_names
from lbguard.errors import LbguardError, TrafficError
from lbguard.model import LoadBalancer, Location
from lbguard.report.interface import clean
from lbguard.traffic import TrafficProfile


class UsageError(LbguardError):
    """A command-line value that cannot be used: it names nothing in the configuration, or
    it would overwrite an input."""


FAIR_SHARE_RULE = "LB201"
"""The rule whose ``factor`` option ``--fair-share-factor`` sets."""


def fair_share_factor(text: str) -> float:
    """Parse ``--fair-share-factor``: a finite number no smaller than the option's minimum."""
    rule = find_rule(FAIR_SHARE_RULE)
    option = rule.option("factor") if rule is not None else None
    minimum = float(option.minimum) if option is not None and option.minimum is not None else 1.0
    try:
        value = float(text)
    except ValueError:
        value = math.nan
    if not math.isfinite(value) or value < minimum:
        raise argparse.ArgumentTypeError(
            f"expected a finite number of at least {minimum:g} (the multiple of a server's "
            f"fair share above which it is reported), got {clean(text)!r}"
        )
    return value


def row_limit(text: str) -> int:
    """Parse ``--limit``: a whole number of rows, 0 for all."""
    try:
        value = int(text)
    except ValueError:
        value = -1
    if value < 0:
        raise argparse.ArgumentTypeError(
            f"expected a whole number of rows, 0 or more (0 shows all), got {clean(text)!r}"
        )
    return value


def down_server(text: str) -> str:
    """Parse ``--down``: POOL/SERVER with both parts present."""
    pool, slash, server = text.partition("/")
    if not slash or not pool or not server:
        raise argparse.ArgumentTypeError(
            f"expected POOL/SERVER, such as be_web/web1, got {clean(text)!r}"
        )
    return text


@dataclass(frozen=True)
class TrafficSource:
    """The file and optional top-level key that ``--traffic`` names."""

    path: str
    section: str | None = None
    """Top-level key whose value is the profile (``traffic`` in a test case file)."""

    def __str__(self) -> str:
        return self.path if self.section is None else f"{self.path}#{self.section}"


def traffic_source(text: str) -> TrafficSource:
    """Parse ``--traffic FILE`` or ``--traffic FILE#SECTION``.

    A value that names an existing file is that file even when it contains ``#``.
    """
    path, hash_sign, section = text.rpartition("#")
    if not hash_sign or Path(text).exists():
        return TrafficSource(text)
    if not path or not section:
        raise argparse.ArgumentTypeError(
            f"expected FILE or FILE#SECTION, such as case.yaml#traffic, got {clean(text)!r}"
        )
    return TrafficSource(path, section)


def prefix_map(values: Sequence[str]) -> dict[str, str]:
    """Turn ``--prefix-map PREFIX=DIR`` values into the nginx parser's prefix map."""
    mapping: dict[str, str] = {}
    for value in values:
        prefix, equals, folder = value.partition("=")
        if not equals or not prefix.startswith("/") or not folder:
            raise UsageError(
                f"--prefix-map {value}: expected PREFIX=DIR with an absolute PREFIX",
                hint="for example --prefix-map /etc/nginx/=./etc-nginx",
            )
        if not Path(folder).is_dir():
            raise UsageError(
                f"--prefix-map {value}: folder not found: {folder}",
                hint="give the local copy of the configuration folder",
            )
        mapping[prefix] = folder
    return mapping


def resolve_map(values: Sequence[str]) -> dict[str, list[str]]:
    """Turn ``--resolve NAME=IP[,IP]`` values into the nginx parser's host addresses."""
    mapping: dict[str, list[str]] = {}
    for value in values:
        name, equals, addresses = value.partition("=")
        parts = [part.strip() for part in addresses.split(",") if part.strip()]
        if not equals or not name or not parts:
            raise UsageError(
                f"--resolve {value}: expected NAME=IP[,IP]",
                hint="for example --resolve backend.internal=10.0.0.1,10.0.0.2",
            )
        for part in parts:
            try:
                ipaddress.ip_address(part)
            except ValueError:
                raise UsageError(
                    f"--resolve {value}: {part!r} is not an IP address",
                    hint="give addresses, not names: lbguard never queries DNS",
                ) from None
        mapping.setdefault(name, []).extend(parts)
    return mapping


def check_output_path(output: str | None, inputs: Iterable[tuple[str, str]]) -> None:
    """Reject ``-o FILE`` when FILE is one of the inputs, which the report would replace.

    *inputs* pairs each input file with the option that named it. Files are compared by
    resolved path and, when both exist, by device and inode, so a symbolic or hard link
    to an input is caught too.
    """
    if output is None:
        return
    target = Path(output)
    for path, option in inputs:
        if _same_file(target, Path(path)):
            raise UsageError(
                f"-o {output} is the {option} file {path}: writing the report there would "
                "replace it",
                hint="give -o a new file name, such as report.txt",
            )


def _same_file(first: Path, second: Path) -> bool:
    try:
        if first.exists() and second.exists():
            return os.path.samefile(first, second)
        return first.resolve() == second.resolve()
    except OSError:
        return False


def health_from_down(lb: LoadBalancer, down: Sequence[str]) -> dict[str, bool]:
    """Turn ``--down POOL/SERVER`` values into the prediction's health mapping."""
    pools = {pool.name: pool for pool in lb.pools}
    health: dict[str, bool] = {}
    for key in down:
        pool_name, _, server_name = key.partition("/")
        pool = pools.get(pool_name)
        if pool is None:
            raise UsageError(
                f"--down {key}: no pool {pool_name!r} in the configuration",
                hint=f"pools: {join_names(sorted(pools), limit=10) or 'none'}",
            )
        if pool.server(server_name) is None:
            servers = [server.name for server in pool.servers]
            raise UsageError(
                f"--down {key}: no server {server_name!r} in pool {pool_name!r}",
                hint=f"servers of {pool_name}: {join_names(servers, limit=10) or 'none'}",
            )
        health[key] = False
    return health


def check_profile_frontends(
    lb: LoadBalancer, profile: TrafficProfile, source: TrafficSource
) -> None:
    """Reject a profile whose ``frontend`` values name a frontend the configuration lacks.

    Such rows reach no frontend, so every share would come out as 0 %.
    """
    defined = [frontend.name for frontend in lb.frontends]
    named = {str(name) for name in profile.frontend.tolist() if name}
    missing = sorted(named - set(defined))
    if not missing:
        return
    quoted = join_names([repr(name) for name in missing])
    raise TrafficError(
        f"the traffic profile names frontend {quoted}, which the configuration "
        f"{join_names(lb.files)} does not define",
        location=Location(source.path, _line_of_value(source, missing[0])),
        hint=f"use one of the configuration's frontends: "
        f"{join_names(defined, limit=10) or 'none'}",
    )


def _line_of_value(source: TrafficSource, value: str) -> int:
    """Return the 1-based line of the first ``frontend`` entry equal to *value*, else 1."""
    try:
        root = yaml.compose(Path(source.path).read_text(encoding="utf-8"), yaml.SafeLoader)
    except (OSError, UnicodeDecodeError, yaml.YAMLError):
        return 1
    pending: list[tuple[yaml.Node, bool]] = [(root, False)] if root is not None else []
    lines: list[int] = []
    while pending:
        node, under_frontend = pending.pop()
        if isinstance(node, yaml.ScalarNode):
            if under_frontend and node.value == value:
                lines.append(node.start_mark.line + 1)
        elif isinstance(node, yaml.SequenceNode):
            pending.extend((item, under_frontend) for item in node.value)
        elif isinstance(node, yaml.MappingNode):
            for key, item in node.value:
                is_key = isinstance(key, yaml.ScalarNode) and key.value == "frontend"
                pending.append((item, under_frontend or is_key))
                if under_frontend:
                    pending.append((key, True))
    return min(lines, default=1)


def captured_headers(option: str | None, lb: LoadBalancer) -> tuple[list[str], str | None]:
    """Return the captured request header names to read from HAProxy logs, and a note.

    ``--captured-headers`` wins. Otherwise the names come from the frontends' ``capture
    request header`` lines. When frontends capture different lists the note says so and
    no names are used.
    """
    if option is not None:
        return [name.strip() for name in option.split(",") if name.strip()], None

    lists: dict[tuple[str, ...], list[str]] = {}
    for frontend in lb.frontends:
        if frontend.captured_request_headers:
            lists.setdefault(frontend.captured_request_headers, []).append(frontend.name)
    if len(lists) == 1:
        return list(next(iter(lists))), None
    if not lists:
        return [], None
    described = "; ".join(
        f"{join_names(names)}: {','.join(headers)}" for headers, names in lists.items()
    )
    return [], (
        f"frontends capture different request headers ({described}); give "
        "--captured-headers with the names the logs hold so that host and header rules "
        "are evaluated on the logged requests"
    )
