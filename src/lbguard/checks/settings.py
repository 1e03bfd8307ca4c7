"""Audit settings from ``lbguard.toml`` or the ``[tool.lbguard]`` table of pyproject.toml.

The file is found from the current directory upward, or given with ``--config-file``::

    fail-on = "error"                  # lowest severity that fails the run
    select = ["LB1", "balancing"]      # rule ids, id prefixes, families or names
    ignore = ["LB207"]

    [rules.LB201]                      # options of one rule, by id or dotted name
    factor = 2.0

    [capacity]                         # relative capacity of servers, by pool/server
    "be_web/web3" = 10

Every invalid value raises `SettingsError` naming the file and line.
"""

from __future__ import annotations

import math
import re
import tomllib
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from lbguard.checks.interface import OptionValue, Rule
from lbguard.checks.registry import RULES, find_rule
from lbguard.checks.runner import CheckOptionError, resolve_options
from lbguard.errors import LbguardError
from lbguard.model import LoadBalancer, Location, Severity

SETTINGS_FILE = "lbguard.toml"
PYPROJECT = "pyproject.toml"
KNOWN_KEYS = ("fail-on", "select", "ignore", "rules", "capacity")


class SettingsError(LbguardError):
    """An invalid value in lbguard's settings file."""


@dataclass(frozen=True)
class AuditSettings:
    """Rule selection, rule options, failing severity and capacity hints from the settings
    file."""

    source: str | None = None
    """The file read; None when no settings file was found."""

    select: tuple[str, ...] = ()
    """Rule selectors to run; empty runs every rule."""

    ignore: tuple[str, ...] = ()
    options: Mapping[str, Mapping[str, OptionValue]] = field(default_factory=dict)
    """Option values by rule id, every rule present, overrides applied."""

    fail_on: Severity | None = None
    capacity: Mapping[str, float] = field(default_factory=dict)
    """Relative server capacity by ``pool/server``."""

    text: str = ""
    """The file's text, for locating values in later errors."""

    table: tuple[str, ...] = ()
    """Path of lbguard's table in the file: () for lbguard.toml, ("tool", "lbguard")."""

    def rules(self) -> tuple[Rule, ...]:
        """Return the selected rules, in registry order."""
        chosen = [rule for rule in RULES if not self.select or _selected(rule, self.select)]
        return tuple(rule for rule in chosen if not _selected(rule, self.ignore))

    def check_capacity(self, lb: LoadBalancer) -> None:
        """Raise SettingsError for a capacity hint naming no server of ``lb``."""
        for key in self.capacity:
            pool_name, _, server_name = key.partition("/")
            pool = lb.pool(pool_name)
            if pool is not None and pool.server(server_name) is not None:
                continue
            line = line_of(self.text, (*self.table, "capacity"), key)
            raise SettingsError(
                f"capacity hint {key!r} names no server of the configuration",
                location=Location(self.source or "", line),
                hint="name servers as POOL/SERVER, as the check report lists them",
            )


def selector_matches(rule: Rule, selector: str) -> bool:
    """Tell whether a selector (``LB201``, ``LB2``, ``balancing``, a dotted name) picks a
    rule."""
    text = selector.strip()
    if text.upper().startswith("LB"):
        return rule.id.startswith(text.upper())
    return text in (rule.name, str(rule.family))


def _selected(rule: Rule, selectors: Iterable[str]) -> bool:
    return any(selector_matches(rule, selector) for selector in selectors)


def find_settings(start: Path) -> Path | None:
    """Return the nearest lbguard.toml, or pyproject.toml with a [tool.lbguard] table, in
    ``start`` or a parent directory."""
    for directory in (start, *start.parents):
        candidate = directory / SETTINGS_FILE
        if candidate.is_file():
            return candidate
        pyproject = directory / PYPROJECT
        if pyproject.is_file() and _has_tool_table(pyproject):
            return pyproject
    return None


def _has_tool_table(path: Path) -> bool:
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError):
        return False
    tool = data.get("tool")
    return isinstance(tool, dict) and "lbguard" in tool


def load_settings(path: Path | None = None, start: Path | None = None) -> AuditSettings:
    """Read the settings file given, or the one found from ``start`` (default: the current
    directory) upward; return defaults when there is none."""
    if path is None:
        path = find_settings((start or Path.cwd()).resolve())
        if path is None:
            return AuditSettings()
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as error:
        raise SettingsError(
            f"cannot read settings file {path}: {error.strerror}",
            hint="check the --config-file path",
        ) from None
    except UnicodeDecodeError:
        raise SettingsError(
            "the settings file is not UTF-8 text",
            location=Location(str(path), 1),
            hint="save the file as UTF-8",
        ) from None
    return parse_settings(str(path), text)


def parse_settings(source: str, text: str) -> AuditSettings:
    """Parse settings text; ``source`` names the file in errors."""
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as error:
        line = _decode_error_line(str(error))
        raise SettingsError(
            f"invalid TOML: {error}", location=Location(source, line), hint="fix the TOML syntax"
        ) from None

    table: tuple[str, ...] = ()
    if Path(source).name == PYPROJECT:
        table = ("tool", "lbguard")
        data = data.get("tool", {}).get("lbguard", {})
    reader = _Reader(source, text, table)
    return reader.read(data)


def _decode_error_line(message: str) -> int:
    match = re.search(r"at line (\d+)", message)
    return int(match.group(1)) if match else 1


@dataclass
class _Reader:
    source: str
    text: str
    table: tuple[str, ...]

    def error(
        self, path: Sequence[str], key: str | None, message: str, hint: str
    ) -> SettingsError:
        line = line_of(self.text, (*self.table, *path), key)
        return SettingsError(message, location=Location(self.source, line), hint=hint)

    def read(self, data: Mapping[str, Any]) -> AuditSettings:
        for key in data:
            if key not in KNOWN_KEYS:
                raise self.error(
                    (), key, f"unknown setting {key!r}", f"known settings: {', '.join(KNOWN_KEYS)}"
                )
        return AuditSettings(
            source=self.source,
            select=self.selectors(data, "select"),
            ignore=self.selectors(data, "ignore"),
            options=self.options(data.get("rules", {})),
            fail_on=self.fail_on(data),
            capacity=self.capacity(data.get("capacity", {})),
            text=self.text,
            table=self.table,
        )

    def selectors(self, data: Mapping[str, Any], key: str) -> tuple[str, ...]:
        value = data.get(key, [])
        if isinstance(value, str):
            value = [value]
        if not isinstance(value, list) or not all(isinstance(item, str) for item in value):
            raise self.error((), key, f"{key} must be a list of rule selectors", _SELECTOR_HINT)
        for selector in value:
            if not any(selector_matches(rule, selector) for rule in RULES):
                raise self.error((), key, f"{key}: {selector!r} matches no rule", _SELECTOR_HINT)
        return tuple(value)

    def fail_on(self, data: Mapping[str, Any]) -> Severity | None:
        value = data.get("fail-on")
        if value is None:
            return None
        levels = [level.value for level in Severity]
        if value not in levels:
            raise self.error(
                (), "fail-on", f"fail-on must be one of {', '.join(levels)}, not {value!r}",
                "set the lowest severity that makes lbguard exit with 1",
            )  # fmt: skip
        return Severity(value)

    def options(self, rules: Any) -> dict[str, dict[str, OptionValue]]:
        if not isinstance(rules, dict):
            raise self.error((), "rules", "rules must be a table", "write [rules.LB201] tables")
        seen: dict[str, str] = {}
        for key, values in rules.items():
            if not isinstance(values, dict):
                raise self.error(
                    ("rules",), key, f"rules.{key} must be a table of options",
                    f"write [rules.{key}] followed by option = value lines",
                )  # fmt: skip
            rule = find_rule(key)
            if rule is None:
                raise self.error(
                    ("rules",), key, f"unknown rule {key!r}",
                    "name a rule by id (LB201) or dotted name (balancing.server-over-fair-share)",
                )  # fmt: skip
            if rule.id in seen:
                raise self.error(
                    ("rules",), key,
                    f"rule {rule.id} is configured twice, as {_table(seen[rule.id])} and "
                    f"{_table(key)}",
                    "keep one table per rule, named by id or by dotted name",
                )  # fmt: skip
            seen[rule.id] = key
            for name, value in values.items():
                option = rule.option(name)
                if isinstance(value, str) and option is not None:
                    expected = "an integer" if isinstance(option.default, int) else "a number"
                    raise self.error(
                        ("rules", key), name,
                        f"rule {rule.id}: option {name} expects {expected}, not the "
                        f"string {value!r}",
                        f"write {name} = {value.strip()} without quotes",
                    )  # fmt: skip
                try:
                    resolve_options({key: {name: value}})
                except CheckOptionError as error:
                    raise self.error(("rules", key), name, error.message, error.hint) from None
        return resolve_options(rules)

    def capacity(self, hints: Any) -> dict[str, float]:
        if not isinstance(hints, dict):
            raise self.error(
                (), "capacity", "capacity must be a table", 'write [capacity] "pool/server" = N'
            )
        result: dict[str, float] = {}
        for key, value in hints.items():
            number = isinstance(value, int | float) and not isinstance(value, bool)
            valid = number and math.isfinite(value) and value > 0
            if "/" not in key or not valid:
                raise self.error(
                    ("capacity",), key,
                    f"capacity hint {key!r} = {value!r} must name POOL/SERVER and be a "
                    "finite positive number",
                    'write "be_web/web3" = 10 for a server with 10 times the capacity of 1',
                )  # fmt: skip
            result[key] = float(value)
        return result


def _table(key: str) -> str:
    return f'[rules."{key}"]' if "." in key else f"[rules.{key}]"


_SELECTOR_HINT = "use rule ids (LB201), id prefixes (LB2), families (balancing) or names"


_HEADER = re.compile(r"^\s*\[(?!\[)(.+?)\]\s*(?:#.*)?$")
_KEY = re.compile(r"""^\s*(?:"([^"]*)"|'([^']*)'|([A-Za-z0-9_.-]+))\s*=""")


def line_of(text: str, table: Sequence[str], key: str | None) -> int:
    """Return the line of ``key`` in ``table``, else of the nearest enclosing key or the
    table's header; 1 when none is found. Dotted keys count as their tables."""
    target_path = (*table, key) if key is not None else tuple(table)
    current: tuple[str, ...] = ()
    best = 0
    best_depth = 0
    for number, line in enumerate(text.splitlines(), 1):
        header = _HEADER.match(line)
        if header is not None:
            current = _header_path(header.group(1))
            path = current
        else:
            match = _KEY.match(line)
            if match is None:
                continue
            name = next(group for group in match.groups() if group is not None)
            path = current + (tuple(name.split(".")) if match.group(3) else (name,))
        if path == target_path[: len(path)] and len(path) > best_depth:
            best, best_depth = number, len(path)
            if path == target_path:
                return number
    return best or 1


def _header_path(text: str) -> tuple[str, ...]:
    try:
        data: Any = tomllib.loads(f"[{text}]\n")
    except tomllib.TOMLDecodeError:
        return ()
    path: list[str] = []
    while isinstance(data, dict) and len(data) == 1:
        name = next(iter(data))
        path.append(name)
        data = data[name]
    return tuple(path)
