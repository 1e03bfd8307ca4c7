"""Read a traffic profile from YAML.

A profile file lists independent distributions (``paths``, ``hosts``, ``methods``,
``clients``, ``headers``, ``query``, ``params``, ``frontend``) and explicit ``samples``.
Each of them is one dimension; the profile's rows are their cross product, and a row's
weight is the product of its entries' fractions times ``requests``. The format is
documented with examples in docs/traffic-profile.md.

Errors name the file and the line of the offending YAML node, which is why this module
walks the composed node tree instead of the plain loaded data.
"""

from __future__ import annotations

import difflib
import ipaddress
import math
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path

import numpy as np
import yaml

from lbguard.errors import TrafficError
from lbguard.model import Location
from lbguard.traffic import TrafficProfile, from_columns, header_key

MAX_ROWS = 2_000_000
"""Largest cross product a YAML profile may expand to; a larger one is almost always a
mistake (for example a whole /8 network expanded address by address)."""

MAX_EXPANDED_ADDRESSES = 65_536
"""Largest network expanded without an explicit ``count``."""

DEFAULT_FIELDS = ("frontend", "method", "host", "path", "query", "client_ip")


@dataclass
class _Entry:
    """One value of a dimension: the request fields it sets and its relative weight."""

    fields: dict[str, str]
    weight: float


@dataclass
class _Dimension:
    """An independent distribution of the profile."""

    name: str
    entries: list[_Entry]
    location: Location
    sets: set[str] = field(default_factory=set)
    """Fields (``path``, ``header:x-user``...) that some entry of the dimension sets."""


class _Reader:
    """Turn composed YAML nodes into dimensions, raising TrafficError at the node's line."""

    def __init__(self, file: str) -> None:
        self.file = file

    def location(self, node: yaml.Node) -> Location:
        return Location(self.file, node.start_mark.line + 1)

    def error(self, node: yaml.Node, message: str, hint: str) -> TrafficError:
        return TrafficError(message, location=self.location(node), hint=hint)

    def scalar(self, node: yaml.Node, what: str) -> str:
        if not isinstance(node, yaml.ScalarNode):
            raise self.error(
                node,
                f"invalid {what}: expected a single value",
                "write a plain value such as /index.html, GET or 10.0.0.1",
            )
        return str(node.value)

    def number(self, node: yaml.Node, what: str) -> float:
        text = self.scalar(node, what)
        try:
            value = float(text)
        except ValueError:
            raise self.error(
                node,
                f"invalid {what} {text!r}: expected a number",
                "write a number such as 0.25 or 3",
            ) from None
        if not math.isfinite(value) or value < 0:
            raise self.error(
                node,
                f"invalid {what} {text!r}: must be a finite number that is not negative",
                "use 0 or a positive number",
            )
        return value

    def mapping(self, node: yaml.Node, what: str) -> Iterator[tuple[str, yaml.Node, yaml.Node]]:
        if not isinstance(node, yaml.MappingNode):
            raise self.error(
                node,
                f"invalid {what}: expected a mapping of key: value",
                "see docs/traffic-profile.md for the layout",
            )
        for key_node, value_node in node.value:
            yield self.scalar(key_node, f"key in {what}"), key_node, value_node

    def weighted(
        self, node: yaml.Node, what: str, make: Callable[[str, yaml.Node], dict[str, str]]
    ) -> list[_Entry]:
        """Read a list (equal weights), a mapping value → weight, or a single value."""
        if isinstance(node, yaml.SequenceNode):
            return [_Entry(make(self.scalar(item, what), item), 1.0) for item in node.value]
        if isinstance(node, yaml.MappingNode):
            return [
                _Entry(make(key, key_node), self.number(value, f"weight of {key!r}"))
                for key, key_node, value in self.mapping(node, what)
            ]
        return [_Entry(make(self.scalar(node, what), node), 1.0)]


def _split_target(target: str) -> dict[str, str]:
    """Split a request target into path and query; the query is known (maybe empty)."""
    path, _, query = target.partition("?")
    return {"path": path, "query": query}


def _accepted_keys_hint(key: str, accepted: tuple[str, ...]) -> str:
    close = difflib.get_close_matches(key, accepted, n=1)
    suggestion = f"did you mean {close[0]!r}? " if close else ""
    return f"{suggestion}accepted keys: {', '.join(accepted)}"


TOP_LEVEL_KEYS = (
    "requests",
    "description",
    "samples",
    "paths",
    "hosts",
    "methods",
    "client_ips",
    "clients",
    "headers",
    "query",
    "params",
    "frontend",
)

SAMPLE_KEYS = (
    "method",
    "host",
    "path",
    "query",
    "client",
    "client_ip",
    "headers",
    "frontend",
    "weight",
)


def _expand_network(reader: _Reader, node: yaml.Node, text: str, count: int | None) -> list[str]:
    """Return *count* addresses spread evenly over a network, from its first address."""
    try:
        network = ipaddress.ip_network(text, strict=False)
    except ValueError:
        raise reader.error(
            node,
            f"invalid client address or network {text!r}",
            "write an address such as 192.0.2.7 or a network such as 198.51.100.0/24",
        ) from None
    size = network.num_addresses
    if count is None:
        if size > MAX_EXPANDED_ADDRESSES:
            raise reader.error(
                node,
                f"network {text} has {size} addresses",
                "add count: N to pick N addresses spread over it",
            )
        count = size
    if count < 1 or count > size:
        raise reader.error(
            node,
            f"invalid count {count} for network {text} of {size} addresses",
            f"use a count from 1 to {size}",
        )
    if count > MAX_ROWS:
        raise reader.error(
            node,
            f"count {count} for network {text} is more than the {MAX_ROWS} rows a profile "
            "may have",
            "lower the count, or describe the traffic with samples or a log",
        )
    base = int(network.network_address)
    offsets = (np.arange(count, dtype=object) * size) // count
    return [str(ipaddress.ip_address(base + int(offset))) for offset in offsets]


def _read_clients(reader: _Reader, node: yaml.Node) -> list[_Entry]:
    """Read ``clients``: addresses, networks, or mappings with cidr/address, count, weight."""
    items = node.value if isinstance(node, yaml.SequenceNode) else [node]
    entries: list[_Entry] = []
    for item in items:
        count: int | None = None
        weight = 1.0
        if isinstance(item, yaml.MappingNode):
            text = ""
            for key, key_node, value in reader.mapping(item, "client"):
                if key in ("cidr", "address", "network"):
                    text = reader.scalar(value, key)
                elif key == "count":
                    number = reader.number(value, "count")
                    if number != int(number):
                        raise reader.error(
                            value,
                            f"invalid count {number}: expected a whole number",
                            "write count: 200",
                        )
                    count = int(number)
                elif key == "weight":
                    weight = reader.number(value, "client weight")
                else:
                    raise reader.error(
                        key_node,
                        f"unknown key {key!r} in a client entry",
                        "accepted keys: cidr, address, count, weight",
                    )
            if not text:
                raise reader.error(
                    item,
                    "client entry has no cidr or address",
                    "add cidr: 198.51.100.0/24 or address: 192.0.2.7",
                )
        else:
            text = reader.scalar(item, "client")
        addresses = _expand_network(reader, item, text, count)
        share = weight / len(addresses)
        entries.extend(_Entry({"client_ip": address}, share) for address in addresses)
    return entries


def _set_field(column: str, text: str, _node: yaml.Node) -> dict[str, str]:
    return {column: text}


def _set_parameter(name: str, text: str, _node: yaml.Node) -> dict[str, str]:
    return {"query": f"{name}={text}"}


def _read_headers(reader: _Reader, node: yaml.Node) -> list[_Dimension]:
    """Read ``headers: {name: values}``; each header is its own dimension."""
    dimensions = []
    for name, key_node, value in reader.mapping(node, "headers"):
        column = "host" if name.lower() == "host" else header_key(name)
        entries = reader.weighted(value, f"header {name}", partial(_set_field, column))
        dimensions.append(_Dimension(f"headers.{name}", entries, reader.location(key_node)))
    return dimensions


def _read_params(reader: _Reader, node: yaml.Node) -> list[_Dimension]:
    """Read ``params: {name: values}``; each parameter adds ``name=value`` to the query."""
    dimensions = []
    for name, key_node, value in reader.mapping(node, "params"):
        entries = reader.weighted(value, f"parameter {name}", partial(_set_parameter, name))
        dimensions.append(_Dimension(f"params.{name}", entries, reader.location(key_node)))
    return dimensions


def _read_sample(reader: _Reader, node: yaml.Node) -> _Entry:
    fields: dict[str, str] = {}
    weight = 1.0
    for key, key_node, value in reader.mapping(node, "sample"):
        if key == "weight":
            weight = reader.number(value, "sample weight")
        elif key == "path":
            fields.update(_split_target(reader.scalar(value, "path")))
        elif key == "method":
            fields["method"] = reader.scalar(value, "method").upper()
        elif key in ("client", "client_ip"):
            fields["client_ip"] = _checked_address(reader, value)
        elif key in ("host", "query", "frontend"):
            fields[key] = reader.scalar(value, key)
        elif key == "headers":
            for name, _header_node, header_value in reader.mapping(value, "sample headers"):
                column = "host" if name.lower() == "host" else header_key(name)
                fields[column] = reader.scalar(header_value, f"header {name}")
        else:
            raise reader.error(
                key_node, f"unknown key {key!r} in a sample", _accepted_keys_hint(key, SAMPLE_KEYS)
            )
    return _Entry(fields, weight)


def _checked_address(reader: _Reader, node: yaml.Node) -> str:
    text = reader.scalar(node, "client address")
    try:
        return str(ipaddress.ip_address(text))
    except ValueError:
        raise reader.error(
            node,
            f"invalid client address {text!r}",
            "write an IPv4 or IPv6 address such as 192.0.2.7",
        ) from None


def _read_dimensions(
    reader: _Reader, root: yaml.Node
) -> tuple[list[_Dimension], float | None, str]:
    dimensions: list[_Dimension] = []
    requests: float | None = None
    description = ""
    for key, key_node, value in reader.mapping(root, "traffic profile"):
        location = reader.location(key_node)
        if key == "requests":
            requests = reader.number(value, "requests")
            if requests == 0:
                raise reader.error(
                    value,
                    "requests must be more than 0",
                    "give the number of requests the profile stands for",
                )
        elif key == "description":
            description = reader.scalar(value, "description")
        elif key == "samples":
            if not isinstance(value, yaml.SequenceNode):
                raise reader.error(
                    value,
                    "invalid samples: expected a list",
                    "write samples as a list of mappings with path, host...",
                )
            entries = [_read_sample(reader, item) for item in value.value]
            dimensions.append(_Dimension("samples", entries, location))
        elif key == "paths":
            entries = reader.weighted(value, "path", lambda text, _n: _split_target(text))
            dimensions.append(_Dimension("paths", entries, location))
        elif key == "hosts":
            entries = reader.weighted(value, "host", lambda text, _n: {"host": text})
            dimensions.append(_Dimension("hosts", entries, location))
        elif key == "methods":
            entries = reader.weighted(value, "method", lambda t, _n: {"method": t.upper()})
            dimensions.append(_Dimension("methods", entries, location))
        elif key == "frontend":
            entries = reader.weighted(value, "frontend", lambda t, _n: {"frontend": t})
            dimensions.append(_Dimension("frontend", entries, location))
        elif key == "client_ips":
            entries = reader.weighted(
                value,
                "client address",
                lambda _t, node: {"client_ip": _checked_address(reader, node)},
            )
            dimensions.append(_Dimension("client_ips", entries, location))
        elif key == "clients":
            dimensions.append(_Dimension("clients", _read_clients(reader, value), location))
        elif key == "headers":
            dimensions.extend(_read_headers(reader, value))
        elif key == "query":
            entries = reader.weighted(value, "query", lambda t, _n: {"query": t.lstrip("?")})
            dimensions.append(_Dimension("query", entries, location))
        elif key == "params":
            dimensions.extend(_read_params(reader, value))
        else:
            raise reader.error(
                key_node,
                f"unknown key {key!r} in the traffic profile",
                _accepted_keys_hint(key, TOP_LEVEL_KEYS),
            )
    return dimensions, requests, description


def _check_dimensions(reader: _Reader, dimensions: list[_Dimension]) -> None:
    """Reject empty dimensions and two dimensions that set the same field."""
    owner: dict[str, str] = {}
    for dimension in dimensions:
        if not dimension.entries:
            raise TrafficError(
                f"{dimension.name} is empty",
                location=dimension.location,
                hint="list at least one value or remove the key",
            )
        total = sum(entry.weight for entry in dimension.entries)
        if total <= 0:
            raise TrafficError(
                f"the weights of {dimension.name} add up to 0",
                location=dimension.location,
                hint="give at least one value a positive weight",
            )
        for entry in dimension.entries:
            dimension.sets |= set(entry.fields)
        # Several dimensions may add to the query string; every other field has one source.
        for name in dimension.sets - {"query"}:
            if name in owner:
                raise TrafficError(
                    f"{dimension.name} sets {name!r}, which {owner[name]} already sets",
                    location=dimension.location,
                    hint="give each request field in one place only, either in samples "
                    "or in a distribution",
                )
            owner[name] = dimension.name


def build_profile(
    dimensions: list[_Dimension], requests: float | None, description: str
) -> TrafficProfile:
    """Expand the dimensions into their weighted cross product."""
    sizes = [len(dimension.entries) for dimension in dimensions]
    rows = math.prod(sizes)
    if rows > MAX_ROWS:
        raise TrafficError(
            f"the profile expands to {rows} rows, more than {MAX_ROWS}",
            location=dimensions[-1].location,
            hint="lower a count, or describe the traffic with samples or a log",
        )

    weights = np.ones(rows, dtype=np.float64)
    columns: dict[str, np.ndarray] = {}
    stride = rows
    for dimension, size in zip(dimensions, sizes, strict=True):
        stride //= size
        index = (np.arange(rows) // stride) % size
        fractions = np.array([entry.weight for entry in dimension.entries], dtype=np.float64)
        with np.errstate(over="ignore", invalid="ignore"):
            weights *= (fractions / fractions.sum())[index]
        for name in sorted(dimension.sets):
            values = np.array(
                [entry.fields.get(name, "") for entry in dimension.entries], dtype=object
            )
            column = values[index]
            if name == "query" and name in columns:
                previous = columns[name]
                joiner = np.where((previous != "") & (column != ""), "&", "")
                column = previous + joiner + column
            columns[name] = column

    if requests is None:
        samples = [d for d in dimensions if d.name == "samples"]
        requests = sum(e.weight for e in samples[0].entries) if samples else 1.0
    with np.errstate(over="ignore", invalid="ignore"):
        weights *= requests
        total = float(weights.sum())
    if not math.isfinite(total) or total <= 0:
        raise TrafficError(
            f"the profile's request weights add up to {total}, not a finite positive number",
            location=dimensions[-1].location,
            hint="use smaller numbers for requests and weights; only their ratios matter "
            "for shares",
        )

    known = set(columns)
    headers = {
        name.removeprefix("header:"): column
        for name, column in columns.items()
        if name.startswith("header:")
    }
    named = {name: columns.get(name) for name in DEFAULT_FIELDS}
    return from_columns(
        weights,
        frontend=named["frontend"],
        method=named["method"],
        host=named["host"],
        path=named["path"],
        query=named["query"],
        client_ip=named["client_ip"],
        headers=headers,
        description=description,
        known=known,
    )


def read_profile_node(root: yaml.Node, file: str) -> TrafficProfile:
    """Build a profile from a composed YAML mapping node read from *file*."""
    reader = _Reader(file)
    dimensions, requests, description = _read_dimensions(reader, root)
    _check_dimensions(reader, dimensions)
    return build_profile(dimensions, requests, description or f"traffic profile {file}")


_FAST_LOADER: type[yaml.CSafeLoader] | None = getattr(yaml, "CSafeLoader", None)
"""PyYAML's loader on libyaml, when PyYAML was built with it; None otherwise."""


def compose(text: str) -> yaml.Node | None:
    """Compose *text* into a node tree, with libyaml when it is available.

    libyaml composes a 5,000-path profile about ten times faster than PyYAML's Python
    scanner, and both resolve tags with the same Python resolver. The Python loader
    composes the text again when the two could differ, so that every tree, mark and error
    message stays PyYAML's:

    - libyaml rejects the text: PyYAML's message is the one reported;
    - the text has a tab: libyaml skips tabs between tokens where PyYAML rejects them;
    - a collection is in flow style (``[...]`` or ``{...}``): libyaml reads ``?`` and
      ``:`` inside plain scalars there (``[/a?x=1]``), which PyYAML rejects;
    - a scalar is empty: libyaml marks an empty value at the next token, often on the
      next line, where PyYAML marks the place where the value is missing.
    """
    # NOTE: libyaml and PyYAML's Python scanner might still disagree on some block-style
    # input; tests/perf_equivalence compares both on generated profiles.
    if _FAST_LOADER is not None and "\t" not in text:
        try:
            root = yaml.compose(text, Loader=_FAST_LOADER)
        except yaml.YAMLError:
            root = None
        else:
            if root is not None and _is_plain_block_tree(root):
                return root
    return yaml.compose(text, Loader=yaml.SafeLoader)


def _is_plain_block_tree(root: yaml.Node) -> bool:
    """Return whether every collection under *root* is in block style and no scalar is
    empty: the trees that libyaml composes as PyYAML does."""
    pending = [root]
    while pending:
        node = pending.pop()
        if isinstance(node, yaml.ScalarNode):
            if node.value == "":
                return False
            continue
        if isinstance(node, yaml.SequenceNode) and not node.flow_style:
            pending.extend(node.value)
        elif isinstance(node, yaml.MappingNode) and not node.flow_style:
            for key, value in node.value:
                pending.append(key)
                pending.append(value)
        else:
            return False
    return True


def read_profile_file(path: Path, *, section: str | None = None) -> TrafficProfile:
    """Read the profile in *path*, or in its top-level key *section*."""
    file = str(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise TrafficError(
            f"traffic profile {file} not found", hint="check the path given with --traffic"
        ) from None
    except (OSError, UnicodeDecodeError) as error:
        raise TrafficError(
            f"cannot read traffic profile {file}: {error}", hint="give a readable UTF-8 YAML file"
        ) from None

    try:
        root = compose(text)
    except yaml.MarkedYAMLError as error:
        mark = error.problem_mark or error.context_mark
        line = mark.line + 1 if mark is not None else 0
        raise TrafficError(
            f"invalid YAML: {error.problem or error}",
            location=Location(file, line),
            hint="fix the YAML syntax at this line",
        ) from None
    if root is None:
        raise TrafficError(
            f"traffic profile {file} is empty",
            location=Location(file, 1),
            hint="add at least requests: N and paths: [...]",
        )

    if section is not None:
        reader = _Reader(file)
        found = [value for key, _k, value in reader.mapping(root, "file") if key == section]
        if not found:
            raise TrafficError(
                f"no {section!r} key in {file}",
                location=Location(file, 1),
                hint=f"add a top-level {section}: mapping",
            )
        root = found[0]
    return read_profile_node(root, file)
