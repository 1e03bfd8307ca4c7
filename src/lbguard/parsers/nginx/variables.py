"""nginx variables and ``map`` blocks as request fetches and ordered conditions."""

from __future__ import annotations

import re
from dataclasses import dataclass

from lbguard.model import Condition, Location, Matcher, MatchMethod, Unevaluated
from lbguard.parsers.nginx.files import Directive
from lbguard.parsers.nginx.regex import pcre_to_python

VARIABLE = re.compile(r"\$(?:\{(\w+)\}|(\w+))")

FIXED_FETCHES: dict[str, tuple[str, str | None]] = {
    "uri": ("path", None),
    "document_uri": ("path", None),
    "request_uri": ("url", None),
    "args": ("query", None),
    "query_string": ("query", None),
    "host": ("host", None),
    "remote_addr": ("src", None),
    "binary_remote_addr": ("src", None),
    "request_method": ("method", None),
    "ssl_server_name": ("sni", None),
    "ssl_preread_server_name": ("sni", None),
}
"""Variables that equal one request fetch (nginx 1.22 ngx_http_variables.c)."""


def variable_fetch(name: str) -> tuple[str, str | None] | None:
    """Return the (fetch, argument) pair behind ``$name``, or None when it has none."""
    if name in FIXED_FETCHES:
        return FIXED_FETCHES[name]
    if name == "http_host":
        return ("host", None)
    if name.startswith("http_"):
        return ("hdr", name[5:].replace("_", "-").lower())
    if name.startswith("arg_"):
        return ("url_param", name[4:])
    if name.startswith("cookie_"):
        return ("cookie", name[7:])
    return None


def single_variable(text: str) -> str | None:
    """Return ``name`` when ``text`` is exactly one variable ``$name`` or ``${name}``."""
    match = VARIABLE.fullmatch(text)
    if match is None:
        return None
    return match.group(1) or match.group(2)


def has_variables(text: str) -> bool:
    return VARIABLE.search(text) is not None


@dataclass(frozen=True)
class MapBlock:
    """One ``map $source $variable { ... }`` block."""

    source: str
    variable: str
    entries: tuple[tuple[Condition | None, str, Location], ...]
    """(condition, value, line) in nginx's lookup order: exact strings, wildcard host
    names, regular expressions in order, then the default (condition None)."""

    location: Location
    evaluable: bool
    """False when the source is not a single request variable lbguard can fetch."""


def parse_map(block: Directive) -> MapBlock | None:
    """Build the ordered lookup of a ``map`` block (nginx 1.22 ngx_http_map_module.c)."""
    if len(block.args) != 2:
        return None
    source_text, target = block.args
    target_name = single_variable(target)
    if target_name is None:
        return None
    source_name = single_variable(source_text)
    fetch = variable_fetch(source_name) if source_name else None
    hostnames = any(d.name == "hostnames" for d in block.block or ())

    exact: list[tuple[Condition | None, str, Location]] = []
    wildcards: list[tuple[Condition | None, str, Location]] = []
    regexes: list[tuple[Condition | None, str, Location]] = []
    default: tuple[Condition | None, str, Location] = (None, "", block.location)
    for entry in block.block or ():
        if entry.name in ("hostnames", "volatile") and not entry.args:
            continue
        if len(entry.args) != 1:
            continue
        key, value, location = entry.name, entry.args[0], entry.location
        if key == "default":
            default = (None, value, location)
            continue
        key = key.removeprefix("\\")
        if fetch is None:
            exact.append((_unevaluated(source_text, location), value, location))
            continue
        fetch_name, arg = fetch
        text = f"{key} {value}"
        if entry.name.startswith("~"):
            insensitive = entry.name.startswith("~*")
            pattern = entry.name[2:] if insensitive else entry.name[1:]
            try:
                python = pcre_to_python(pattern)
            except re.error as exc:
                regexes.append(
                    (
                        Unevaluated(text, f"regex not valid in Python: {exc}", location),
                        value,
                        location,
                    )
                )
                continue
            regexes.append(
                (
                    Matcher(
                        fetch_name, arg, MatchMethod.REG, (python,), insensitive, location, text
                    ),
                    value,
                    location,
                )
            )
        elif hostnames and (key.startswith(("*.", ".")) or key.endswith(".*")):
            wildcards.append(
                (
                    Matcher(
                        fetch_name,
                        arg,
                        MatchMethod.REG,
                        (wildcard_regex(key),),
                        True,
                        location,
                        text,
                    ),
                    value,
                    location,
                )
            )
        else:
            # Map keys are stored lower-case and the value is lower-cased before lookup.
            exact.append(
                (
                    Matcher(fetch_name, arg, MatchMethod.STR, (key,), True, location, text),
                    value,
                    location,
                )
            )
    wildcards.sort(
        key=lambda item: -len(item[0].patterns[0]) if isinstance(item[0], Matcher) else 0
    )
    return MapBlock(
        source=source_text,
        variable=target_name,
        entries=(*exact, *wildcards, *regexes, default),
        location=block.location,
        evaluable=fetch is not None,
    )


def _unevaluated(source: str, location: Location) -> Unevaluated:
    return Unevaluated(
        source, f"map source {source} is not a request field lbguard can fetch", location
    )


def wildcard_regex(name: str) -> str:
    """Return a regex for an nginx wildcard host name ``*.x``, ``.x`` or ``x.*``."""
    if name.startswith("*."):
        return r"^.+\." + re.escape(name[2:]) + r"\.?(?::\d+)?$"
    if name.startswith("."):
        return r"^(?:.+\.)?" + re.escape(name[1:]) + r"\.?(?::\d+)?$"
    return "^" + re.escape(name[:-2]) + r"\.[^:]+(?::\d+)?$"
