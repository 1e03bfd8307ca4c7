"""SQL expressions shared by several log formats (DuckDB dialect)."""

from __future__ import annotations

REQUEST_LINE_PATTERN = (
    r"^(\S+) (?:([A-Za-z][A-Za-z0-9+.-]*)://([^/?# ]*))?([^?# ]*)(\?[^# ]*)?(?:#\S*)?"
    r"(?: (\S+))?$"
)
"""Method, absolute-form scheme and host, path, ``?query`` and protocol of a request line."""

REQUEST_LINE_NAMES = ("method", "scheme", "host", "path", "query", "protocol")

IP_PREFIX_PATTERN = r"^\s*\[?(\d{1,3}(?:\.\d{1,3}){3}|[0-9A-Fa-f]{0,4}:[0-9A-Fa-f:.]*[0-9A-Fa-f])"
"""Leading IPv4 or IPv6 address of a value, with an optional ``[`` before IPv6."""


def quote(text: str) -> str:
    """Return ``text`` as a SQL string literal."""
    return "'" + text.replace("'", "''") + "'"


def extract(source: str, pattern: str, names: tuple[str, ...]) -> str:
    """Return a ``regexp_extract`` call that yields a struct with one field per group."""
    name_list = ", ".join(quote(name) for name in names)
    return f"regexp_extract({source}, {quote(pattern)}, [{name_list}])"


def request_line(source: str) -> str:
    """Return a struct expression splitting an HTTP request line into its parts."""
    return extract(source, REQUEST_LINE_PATTERN, REQUEST_LINE_NAMES)


def request_columns(alias: str) -> dict[str, str]:
    """Return the request columns read from a `request_line` struct named ``alias``."""
    return {
        "method": f"nullif({alias}.method, '')",
        "host": f"nullif({alias}.host, '')",
        "path": f"nullif({alias}.path, '')",
        "query": f"CASE WHEN {alias}.query = '' THEN NULL ELSE substr({alias}.query, 2) END",
        "protocol": f"nullif({alias}.protocol, '')",
    }


# RE2 (the engine behind DuckDB's regexp functions) matches \s as [\t\n\f\r ]. A text
# without tab, form feed or carriage return splits on " " exactly where \s and \S split it
# (a line has no newline).
_SPACES_BUT_BLANK = ("chr(9)", "chr(12)", "chr(13)")


def no_other_spaces(value: str) -> str:
    """True when ``value`` contains no RE2 whitespace other than the blank."""
    return " AND ".join(f"NOT contains({value}, {char})" for char in _SPACES_BUT_BLANK)


def request_line_shape(
    request: str, prefix: str, parts: str | None = None
) -> tuple[tuple[str, str], ...]:
    """Extracts that split an origin-form request line ``METHOD /path?query PROTOCOL``.

    ``parts`` is a list expression of the blank-separated parts of ``request`` (by default
    ``string_split``). The caller guarantees that the request contains no RE2 whitespace
    other than blanks (see `no_other_spaces`). The extracts define ``{prefix}rl`` (the parts),
    ``{prefix}rq`` (position of ``?`` in the target), ``{prefix}rs`` (true when the
    request has that shape) and ``{prefix}r``, the `request_line` struct of the other
    requests.
    """
    rl, mark, shaped = f"{prefix}rl", f"{prefix}rq", f"{prefix}rs"
    # A target that starts with "/" has no scheme and host. Without "#" it has no
    # fragment, so the path ends at the first "?" and the query runs to the end.
    condition = (
        f"len({rl}) = 3 AND {rl}[1] <> '' AND {rl}[3] <> '' "
        f"AND starts_with({rl}[2], '/') AND NOT contains({rl}[2], '#')"
    )
    return (
        (rl, parts if parts is not None else f"string_split({request}, ' ')"),
        (mark, f"strpos({rl}[2], '?')"),
        (shaped, f"coalesce({condition}, false)"),
        (f"{prefix}r", f"CASE WHEN NOT {shaped} THEN {request_line(request)} END"),
    )


def request_shape_columns(prefix: str) -> dict[str, str]:
    """Request columns from the extracts of `request_line_shape`, equal to
    `request_columns` of the `request_line` struct on every request."""
    parts, mark, shaped = f"{prefix}rl", f"{prefix}rq", f"{prefix}rs"
    other = request_columns(f"{prefix}r")
    return {
        "method": f"CASE WHEN {shaped} THEN {parts}[1] ELSE {other['method']} END",
        "host": f"CASE WHEN NOT {shaped} THEN {other['host']} END",
        "path": f"CASE WHEN {shaped} THEN split_part({parts}[2], '?', 1) ELSE {other['path']} END",
        "query": (
            f"CASE WHEN {shaped} THEN CASE WHEN {mark} > 0 "
            f"THEN substr({parts}[2], {mark} + 1) END ELSE {other['query']} END"
        ),
        "protocol": f"CASE WHEN {shaped} THEN {parts}[3] ELSE {other['protocol']} END",
    }


def dash_null(value: str) -> str:
    """Return ``value`` with the empty string and ``-`` mapped to NULL."""
    return f"nullif(nullif({value}, ''), '-')"


def to_int(value: str) -> str:
    return f"try_cast({dash_null(value)} AS INTEGER)"


def to_bigint(value: str) -> str:
    return f"try_cast({dash_null(value)} AS BIGINT)"


def ms_from_ms(value: str) -> str:
    """Milliseconds from an integer millisecond field where ``-1`` means not reached."""
    return f"CASE WHEN try_cast({value} AS DOUBLE) >= 0 THEN try_cast({value} AS DOUBLE) END"


def ms_from_seconds(value: str) -> str:
    """Milliseconds from a seconds field where negative values mean not reached."""
    seconds = f"try_cast({dash_null(value)} AS DOUBLE)"
    return f"CASE WHEN {seconds} >= 0 THEN {seconds} * 1000 END"


def first_ip(value: str) -> str:
    """First address of a comma-separated address list (X-Forwarded-For style)."""
    return (
        f"nullif(regexp_extract(split_part({value}, ',', 1), {quote(IP_PREFIX_PATTERN)}, 1), '')"
    )


def split_host_port(value: str) -> tuple[str, str]:
    """Address and port expressions for ``ip:port``, ``[ipv6]:port`` or a bare address."""
    pattern = r"^\[?(.*?)\]?(?::(\d+))?$"
    address = f"nullif(regexp_extract({value}, {quote(pattern)}, 1), '')"
    port = f"try_cast(nullif(regexp_extract({value}, {quote(pattern)}, 2), '') AS INTEGER)"
    return address, port


def local_time(value: str, formats: tuple[str, ...], timezone: str) -> str:
    """TIMESTAMPTZ from a zone-less text time read in ``timezone``."""
    format_list = ", ".join(quote(fmt) for fmt in formats)
    return f"timezone({quote(timezone)}, try_strptime({value}, [{format_list}]))"


def zoned_time(value: str, formats: tuple[str, ...]) -> str:
    """TIMESTAMPTZ from a text time that carries its zone (``%z`` or ``Z``)."""
    format_list = ", ".join(quote(fmt) for fmt in formats)
    return f"try_strptime({value}, [{format_list}])::TIMESTAMPTZ"


def json_pointer(key: str) -> str:
    """JSON pointer for a dotted key (``request.remote_ip``); ``/`` is escaped as ``~1``."""
    parts = key.split(".") if not key.startswith("/") else key[1:].split("/")
    return "/" + "/".join(part.replace("~", "~0").replace("/", "~1") for part in parts)


def json_values(source: str, pointers: tuple[str, ...]) -> str:
    """List of the values at ``pointers`` as text, or NULL when ``source`` is not JSON."""
    items = ", ".join(quote(pointer) for pointer in pointers)
    return f"CASE WHEN json_valid({source}) THEN json_extract_string({source}, [{items}]) END"


def utc_time(value: str, formats: tuple[str, ...]) -> str:
    """TIMESTAMPTZ from a zone-less text time that the product writes in UTC."""
    return local_time(value, formats, "UTC")


def last_colon_split(value: str) -> tuple[str, str]:
    """Address and port of ``address:port`` where IPv6 addresses may be unbracketed."""
    pattern = r"^\[?(.*?)\]?:(\d+)$"
    address = f"nullif(regexp_extract({value}, {quote(pattern)}, 1), '')"
    port = f"try_cast(nullif(regexp_extract({value}, {quote(pattern)}, 2), '') AS INTEGER)"
    return address, port
