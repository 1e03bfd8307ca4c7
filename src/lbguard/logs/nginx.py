"""NGINX and ingress-nginx access logs, and user ``log_format`` definitions.

Variables and list layouts follow the nginx documentation of ngx_http_log_module and
ngx_http_upstream_module (nginx.org, read at the 1.29 documentation): upstream lists use
``, `` between servers tried and `` : `` between upstream groups after an internal
redirect, and an unset variable is logged as ``-``.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from lbguard.errors import LogError
from lbguard.logs import sqlparts as sql
from lbguard.logs.interface import (
    Check,
    LogFormat,
    ParseOptions,
    ParsePlan,
    ShapePlan,
    regex_detector,
)

COMBINED = (
    '$remote_addr - $remote_user [$time_local] "$request" $status $body_bytes_sent '
    '"$http_referer" "$http_user_agent"'
)
"""The predefined ``combined`` format (ngx_http_log_module)."""

UPSTREAMINFO_TAIL = (
    "$request_length $request_time [$proxy_upstream_name] [$proxy_alternative_upstream_name] "
    "$upstream_addr $upstream_response_length $upstream_response_time $upstream_status $req_id"
)
"""Fields that ingress-nginx's default ``upstreaminfo`` format adds after ``combined``
(kubernetes/ingress-nginx log-format documentation)."""

_LIST_VARIABLES = {
    "upstream_addr",
    "upstream_status",
    "upstream_response_time",
    "upstream_connect_time",
    "upstream_header_time",
    "upstream_queue_time",
    "upstream_response_length",
    "upstream_bytes_received",
    "upstream_bytes_sent",
}
_LIST_FRAGMENT = r"((?:\S+(?:, | : ))*\S+)"
_VARIABLE = re.compile(r"\$(\w+)|\$\{(\w+)\}")
_META = re.compile(r"([.^$*+?()\[\]{}|\\])")


def _fragment(name: str, quoted: bool, after: str) -> str:
    if after.endswith("["):
        return r"([^\]]*)"
    if name in _LIST_VARIABLES:
        return _LIST_FRAGMENT
    if name == "time_local":
        return r"(\d\d/[A-Z][a-z]{2}/\d{4}:\d\d:\d\d:\d\d [+-]\d{4})"
    if quoted:
        return r'((?:[^"\\]|\\.)*)'
    return r"(\S+)"


def compile_log_format(text: str) -> tuple[str, tuple[str, ...]]:
    """Compile nginx ``log_format`` text into a regular expression and its group names.

    A variable that appears twice keeps its first position; later ones are matched but
    not captured.
    """
    # Strings of a log_format directive may be given as several quoted parts.
    text = text.strip()
    pattern: list[str] = []
    names: list[str] = []
    position = 0
    quoted = False
    for match in _VARIABLE.finditer(text):
        literal = text[position : match.start()]
        quoted ^= literal.count('"') % 2 == 1
        pattern.append(_META.sub(r"\\\1", literal))
        name = match.group(1) or match.group(2)
        fragment = _fragment(name, quoted, literal)
        if name in names:
            fragment = "(?:" + fragment[1:]
        else:
            names.append(name)
        pattern.append(fragment)
        position = match.end()
    pattern.append(_META.sub(r"\\\1", text[position:]))
    if not names:
        raise LogError(
            "the nginx log_format has no $variable",
            hint="pass the format string of the log_format directive, without its name",
        )
    return "".join(pattern), tuple(names)


_COMBINED_PATTERN, _COMBINED_NAMES = compile_log_format(COMBINED)
_TAIL_PATTERN, _TAIL_NAMES = compile_log_format(UPSTREAMINFO_TAIL)

# A leading virtual-host field ("$host $remote_addr ...") and the "main" format's
# trailing "$http_x_forwarded_for" are common additions to combined.
BUILTIN_PATTERN = (
    r"^(?:([A-Za-z0-9][\w.-]*(?::\d+)?) )?"
    + _COMBINED_PATTERN
    + r'(?: "([^"]*)")?'
    + "(?: "
    + _TAIL_PATTERN
    + ")?$"
)
BUILTIN_NAMES = ("vhost", *_COMBINED_NAMES, "http_x_forwarded_for", *_TAIL_NAMES)

ERROR_LOG_PATTERN = r"^\d{4}/\d\d/\d\d \d\d:\d\d:\d\d \[[a-z]+\] \d+#\d+: "


def _list(value: str) -> str:
    """Return every element of an nginx upstream list, groups flattened, ``-`` as NULL."""
    return (
        f"CASE WHEN {value} NOT IN ('', '-') THEN list_transform("
        f"string_split(regexp_replace({value}, ' : ', ', ', 'g'), ', '), "
        "lambda x: nullif(x, '-')) END"
    )


def _columns(names: tuple[str, ...]) -> dict[str, str]:
    has = set(names).__contains__
    columns: dict[str, str] = {"lb": "'nginx'"}
    if has("time_local"):
        columns["ts"] = sql.zoned_time("f.time_local", ("%d/%b/%Y:%H:%M:%S %z",))
    elif has("time_iso8601"):
        columns["ts"] = sql.zoned_time("f.time_iso8601", ("%Y-%m-%dT%H:%M:%S%z",))
    elif has("msec"):
        columns["ts"] = "to_timestamp(try_cast(f.msec AS DOUBLE))"
    if has("remote_addr"):
        columns["client_ip"] = sql.dash_null("f.remote_addr")
    if has("remote_port"):
        columns["client_port"] = sql.to_int("f.remote_port")
    if has("request"):
        columns.update(sql.request_columns("r"))
    for variable in ("request_method", "server_protocol"):
        if has(variable):
            column = "method" if variable == "request_method" else "protocol"
            columns[column] = sql.dash_null(f"f.{variable}")
    for variable in ("vhost", "host", "http_host", "server_name"):
        if has(variable):
            columns["host"] = (
                f"coalesce({sql.dash_null('f.' + variable)}, {columns.get('host', 'NULL')})"
            )
    if has("status"):
        columns["status"] = sql.to_int("f.status")
    for variable in ("body_bytes_sent", "bytes_sent"):
        if has(variable):
            columns["bytes"] = sql.to_bigint(f"f.{variable}")
    if has("request_time"):
        columns["time_total_ms"] = sql.ms_from_seconds("f.request_time")
    if has("http_x_forwarded_for"):
        columns["forwarded_for"] = sql.first_ip("f.http_x_forwarded_for")
    if has("proxy_upstream_name"):
        columns["pool"] = sql.dash_null("f.proxy_upstream_name")
    if has("upstream_addr"):
        attempts = _list("f.upstream_addr")
        columns["attempts"] = attempts
        columns["server"] = f"({attempts})[-1]"
        columns["retries"] = f"len({attempts}) - 1"
    if has("upstream_status"):
        statuses = (
            f"list_transform({_list('f.upstream_status')}, lambda x: try_cast(x AS INTEGER))"
        )
        columns["attempt_statuses"] = statuses
        columns["upstream_status"] = f"({statuses})[-1]"
        columns["lb_error"] = (
            f"{columns['status']} IN (502, 504) AND ({statuses})[-1] IS NULL"
            if has("status")
            else "NULL"
        )
    timing = {
        "upstream_response_time": "time_response_ms",
        "upstream_header_time": "time_response_ms",
        "upstream_connect_time": "time_connect_ms",
        "upstream_queue_time": "time_queue_ms",
    }
    for variable, column in timing.items():
        if has(variable):
            columns[column] = sql.ms_from_seconds(f"({_list('f.' + variable)})[-1]")
    if has("proxy_upstream_name") and has("request_length"):
        columns["lb"] = "CASE WHEN f.request_length <> '' THEN 'ingress-nginx' ELSE 'nginx' END"
    return columns


def plan(options: ParseOptions) -> ParsePlan:
    if options.nginx_log_format:
        pattern, names = compile_log_format(options.nginx_log_format)
        pattern = "^" + pattern + "$"
    else:
        pattern, names = BUILTIN_PATTERN, BUILTIN_NAMES
    columns = _columns(names)
    checks = [
        Check(
            f"regexp_matches(line, {sql.quote(ERROR_LOG_PATTERN)})",
            "nginx error-log line",
            skipped=True,
        ),
        Check(f"NOT regexp_matches(line, {sql.quote(pattern)})", "not in the nginx log format"),
    ]
    if "ts" in columns:
        checks.append(Check("ts IS NULL", "invalid time"))
    extracts: list[tuple[str, str]] = [("f", sql.extract("line", pattern, names))]
    if "request" in names:
        extracts.append(("r", sql.request_line("f.request")))
    return ParsePlan(extracts=tuple(extracts), columns=columns, checks=tuple(checks))


def shape(options: ParseOptions, sample: Sequence[str]) -> ShapePlan | None:
    """Plan for plain ``combined`` lines (no virtual host, no fields after the user agent),
    which splits them at their six quotes instead of running `BUILTIN_PATTERN`.

    None for a user ``log_format``, whose columns differ.
    """
    if options.nginx_log_format:
        return None
    # Split at quotes: 'ADDR - USER [TIME] ', request, ' STATUS BYTES ', referer, ' ',
    # user agent, ''. Without a backslash, every quote of the line delimits a field.
    # The split of the first part forces the reading without a virtual host: that
    # reading would need the fifth token to start with "[".
    valid = (
        "len(_p) = 7 AND _p[7] = '' AND _p[5] = ' ' AND NOT contains(line, '\\') "
        f"AND {sql.no_other_spaces('line')} "
        "AND len(_a) = 6 AND _a[6] = '' AND _a[1] <> '' AND _a[2] = '-' AND _a[3] <> '' "
        "AND starts_with(_a[4], '[') AND NOT contains(_a[4], ']') "
        "AND ends_with(_a[5], ']') AND strpos(_a[5], ']') = length(_a[5]) "
        "AND NOT contains(_a[5], '[') "
        "AND len(_m) = 4 AND _m[1] = '' AND _m[2] <> '' AND _m[3] <> '' AND _m[4] = ''"
    )
    time_local = "substr(_a[4], 2) || ' ' || left(_a[5], length(_a[5]) - 1)"
    status = sql.to_int("_m[2]")
    columns = {
        "lb": "'nginx'",
        "ts": sql.zoned_time(time_local, ("%d/%b/%Y:%H:%M:%S %z",)),
        "client_ip": sql.dash_null("_a[1]"),
        **sql.request_shape_columns("_"),
        "status": status,
        "bytes": sql.to_bigint("_m[3]"),
        # The full plan's "no upstream status" part is always true without the field.
        "lb_error": f"{status} IN (502, 504)",
    }
    return ShapePlan(
        extracts=(
            ("_p", "string_split(line, '\"')"),
            ("_a", "string_split(_p[1], ' ')"),
            ("_m", "string_split(_p[3], ' ')"),
            ("_valid", f"coalesce({valid}, false)"),
            *sql.request_line_shape("_p[2]", "_"),
        ),
        columns=columns,
        accept="_valid AND ts IS NOT NULL",
    )


FORMAT = LogFormat(
    name="nginx",
    description="NGINX combined (optionally with $host first or XFF last), ingress-nginx "
    "upstreaminfo, or any log_format given with --nginx-log-format",
    detect=regex_detector(f"(?:{BUILTIN_PATTERN})|(?:{ERROR_LOG_PATTERN})"),
    plan=plan,
    lb_names=("nginx", "ingress-nginx"),
    shape=shape,
)
