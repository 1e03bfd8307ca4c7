"""Envoy (and Istio), Traefik, Caddy and generic JSON-lines access logs.

Field meanings: Envoy access-log usage documentation (default format, %RESPONSE_FLAGS%),
Istio access-log task page (its TEXT format), Traefik access-logs documentation (CLF and
JSON fields), Caddy logging and log_append documentation.
"""

from __future__ import annotations

from lbguard.errors import LogError
from lbguard.logs import sqlparts as sql
from lbguard.logs.interface import Check, LogFormat, ParseOptions, ParsePlan, regex_detector

_Q = r'"([^"]*)"'

ENVOY_PATTERN = (
    rf"^\[(\S+)\] {_Q} (\d+) (\S+)"
    # Istio adds %RESPONSE_CODE_DETAILS% %CONNECTION_TERMINATION_DETAILS% and the quoted
    # %UPSTREAM_TRANSPORT_FAILURE_REASON% after the flags.
    rf"(?: (\S+) (\S+) {_Q})? (\d+) (\d+) (\d+) (\S+) {_Q} {_Q} {_Q} {_Q} {_Q}"
    r"(?: (\S+) (\S+) (\S+) (\S+) (\S+) (\S+))?(?: .*)?$"
)
ENVOY_NAMES = (
    "start", "request", "code", "flags", "details", "termination_details", "failure",
    "received", "sent", "duration", "service_time", "xff", "user_agent", "request_id",
    "authority", "upstream_host", "cluster", "upstream_local", "downstream_local",
    "downstream_remote", "sni", "route",
)  # fmt: skip

ENVOY_JSON_KEYS = (
    "start_time", "method", "x-envoy-origin-path", "protocol", "response_code",
    "response_flags", "bytes_sent", "duration", "x-envoy-upstream-service-time",
    "x-forwarded-for", ":authority", "upstream_host", "upstream_cluster",
    "downstream_remote_address", "route_name", "path",
)  # fmt: skip

# Response flags for which Envoy answered without a usable upstream response (Envoy
# access-log documentation, %RESPONSE_FLAGS%).
ENVOY_LB_FLAGS = ("UH", "UF", "UO", "NR", "URX", "NC", "UT", "LH", "DF", "UMSDR", "OM")


def _json_plan(keys: tuple[str, ...]) -> tuple[str, dict[str, str]]:
    expression = sql.json_values("line", tuple(sql.json_pointer(key) for key in keys))
    return expression, {key: f"j[{index}]" for index, key in enumerate(keys, start=1)}


def envoy_plan(options: ParseOptions) -> ParsePlan:
    del options
    json_list, j = _json_plan(ENVOY_JSON_KEYS)
    is_json = "j IS NOT NULL"

    def pick(json_value: str, text_value: str) -> str:
        return f"CASE WHEN {is_json} THEN {json_value} ELSE {text_value} END"

    upstream = pick(j["upstream_host"], sql.dash_null("f.upstream_host"))
    server = f"nullif(regexp_replace({upstream}, '^[a-z]+://', ''), '-')"
    client = pick(j["downstream_remote_address"], sql.dash_null("f.downstream_remote"))
    client_ip, client_port = sql.last_colon_split(client)
    flags = pick(j["response_flags"], "f.flags")
    flag_list = f"string_split({flags}, ',')"
    code = pick(j["response_code"], "f.code")
    service_time = pick(j["x-envoy-upstream-service-time"], "f.service_time")
    columns = {
        "ts": sql.utc_time(pick(j["start_time"], "f.start"), ("%Y-%m-%dT%H:%M:%S.%gZ",)),
        "lb": "'envoy'",
        "frontend": pick(j["route_name"], sql.dash_null("f.route")),
        "pool": pick(j["upstream_cluster"], sql.dash_null("f.cluster")),
        "server": server,
        # Response code 0 means no response was started.
        "status": f"nullif(try_cast({code} AS INTEGER), 0)",
        "upstream_status": (
            f"CASE WHEN {server} IS NOT NULL AND NOT list_has_any({flag_list}, "
            f"{list(ENVOY_LB_FLAGS)}) THEN nullif(try_cast({code} AS INTEGER), 0) END"
        ),
        "lb_error": f"list_has_any({flag_list}, {list(ENVOY_LB_FLAGS)})",
        "time_total_ms": f"try_cast({pick(j['duration'], 'f.duration')} AS DOUBLE)",
        "time_response_ms": f"try_cast({service_time} AS DOUBLE)",
        "bytes": f"try_cast({pick(j['bytes_sent'], 'f.sent')} AS BIGINT)",
        "client_ip": client_ip,
        "client_port": client_port,
        "forwarded_for": sql.first_ip(pick(j["x-forwarded-for"], "f.xff")),
        "method": pick(j["method"], "nullif(r.method, '')"),
        "host": pick(j[":authority"], sql.dash_null("f.authority")),
        "path": pick(
            f"split_part(coalesce({j['x-envoy-origin-path']}, {j['path']}), '?', 1)",
            "nullif(r.path, '')",
        ),
        "query": pick(
            f"nullif(split_part(coalesce({j['x-envoy-origin-path']}, {j['path']}), '?', 2), '')",
            sql.request_columns("r")["query"],
        ),
        "protocol": pick(j["protocol"], "nullif(r.protocol, '')"),
        "termination": f"nullif({flags}, '-')",
        "attempts": f"CASE WHEN {server} IS NOT NULL THEN [{server}] END",
    }
    return ParsePlan(
        extracts=(
            ("j", json_list),
            ("f", sql.extract("line", ENVOY_PATTERN, ENVOY_NAMES)),
            ("r", sql.request_line("f.request")),
        ),
        columns=columns,
        checks=(
            Check(f"NOT {is_json} AND f.start = ''", "not an Envoy access-log line"),
            Check(f"{is_json} AND {j['response_code']} IS NULL", "JSON without response_code"),
            Check("ts IS NULL", "invalid start time"),
        ),
    )


TRAEFIK_CLF_PATTERN = (
    r"^(\S+) \S+ (\S+) \[(\d\d/[A-Z][a-z]{2}/\d{4}:\d\d:\d\d:\d\d [+-]\d{4})\] "
    rf"{_Q} (\S+) (\S+) {_Q} {_Q} (\S+) {_Q} (\"[^\"]*\"|-) (\d+)ms$"
)
TRAEFIK_CLF_NAMES = (
    "client", "user", "time", "request", "status", "size", "referer", "user_agent",
    "count", "router", "service_url", "duration",
)  # fmt: skip


def traefik_clf_plan(options: ParseOptions) -> ParsePlan:
    del options
    service = "nullif(trim(f.service_url, '\"'), '-')"
    server = f"nullif(regexp_extract({service}, '^[a-z]+://([^/]+)', 1), '')"
    columns = {
        "ts": sql.zoned_time("f.time", ("%d/%b/%Y:%H:%M:%S %z",)),
        "lb": "'traefik'",
        "frontend": sql.dash_null("f.router"),
        "server": server,
        "status": sql.to_int("f.status"),
        "lb_error": f"{server} IS NULL AND {sql.to_int('f.status')} >= 500",
        "time_total_ms": "try_cast(f.duration AS DOUBLE)",
        "bytes": sql.to_bigint("f.size"),
        "client_ip": "f.client",
        **sql.request_columns("r"),
        "attempts": f"CASE WHEN {server} IS NOT NULL THEN [{server}] END",
    }
    return ParsePlan(
        extracts=(
            ("f", sql.extract("line", TRAEFIK_CLF_PATTERN, TRAEFIK_CLF_NAMES)),
            ("r", sql.request_line("f.request")),
        ),
        columns=columns,
        checks=(
            Check("f.client = ''", "not a Traefik CLF line"),
            Check("ts IS NULL", "invalid time"),
        ),
    )


TRAEFIK_JSON_KEYS = (
    "StartUTC", "RouterName", "ServiceName", "ServiceAddr", "ServiceURL", "ClientHost",
    "ClientAddr", "ClientPort", "RequestHost", "RequestMethod", "RequestPath",
    "RequestProtocol", "DownstreamStatus", "OriginStatus", "Duration", "OriginDuration",
    "DownstreamContentSize", "RetryAttempts", "entryPointName",
)  # fmt: skip


def traefik_json_plan(options: ParseOptions) -> ParsePlan:
    del options
    json_list, j = _json_plan(TRAEFIK_JSON_KEYS)
    origin = f"try_cast({j['OriginStatus']} AS INTEGER)"
    status = f"try_cast({j['DownstreamStatus']} AS INTEGER)"
    # ClientHost holds the forwarded chain when forwarded headers are trusted.
    hosts = j["ClientHost"]
    server = f"nullif({j['ServiceAddr']}, '')"
    columns = {
        "ts": f"try_cast({j['StartUTC']} AS TIMESTAMPTZ)",
        "lb": "'traefik'",
        "frontend": f"coalesce({j['entryPointName']}, {j['RouterName']})",
        "pool": j["ServiceName"],
        "server": server,
        "status": status,
        # OriginStatus 0: Traefik answered without a backend response.
        "upstream_status": f"nullif({origin}, 0)",
        "lb_error": f"coalesce({origin}, 0) = 0 AND {status} >= 500",
        "time_total_ms": f"try_cast({j['Duration']} AS DOUBLE) / 1e6",
        "time_response_ms": f"nullif(try_cast({j['OriginDuration']} AS DOUBLE), 0) / 1e6",
        "bytes": f"try_cast({j['DownstreamContentSize']} AS BIGINT)",
        "client_ip": sql.last_colon_split(j["ClientAddr"])[0],
        "client_port": f"try_cast({j['ClientPort']} AS INTEGER)",
        "forwarded_for": f"CASE WHEN contains({hosts}, ',') THEN {sql.first_ip(hosts)} END",
        "method": j["RequestMethod"],
        "host": j["RequestHost"],
        "path": f"split_part({j['RequestPath']}, '?', 1)",
        "query": f"nullif(split_part({j['RequestPath']}, '?', 2), '')",
        "protocol": j["RequestProtocol"],
        "retries": f"try_cast({j['RetryAttempts']} AS INTEGER)",
        "attempts": f"CASE WHEN {server} IS NOT NULL THEN [{server}] END",
    }
    return ParsePlan(
        extracts=(("j", json_list),),
        columns=columns,
        checks=(
            Check("j IS NULL", "not a JSON line"),
            Check(f"{j['DownstreamStatus']} IS NULL", "JSON without DownstreamStatus"),
            Check("ts IS NULL", "invalid StartUTC"),
        ),
    )


CADDY_JSON_KEYS = (
    "ts", "logger", "msg", "request.remote_ip", "request.remote_port", "request.client_ip",
    "request.proto", "request.method", "request.host", "request.uri", "status", "size",
    "duration", "upstream_host", "upstream_duration_ms", "upstream_latency_ms",
    "request.headers.X-Forwarded-For.0",
)  # fmt: skip


def caddy_plan(options: ParseOptions) -> ParsePlan:
    del options
    json_list, j = _json_plan(CADDY_JSON_KEYS)
    # Caddy's default duration unit is seconds; the ts field is Unix seconds.
    uri = j["request.uri"]
    status = f"nullif(try_cast({j['status']} AS INTEGER), 0)"
    server = f"nullif({j['upstream_host']}, '')"
    columns = {
        "ts": f"to_timestamp(try_cast({j['ts']} AS DOUBLE))",
        "lb": "'caddy'",
        "frontend": j["logger"],
        "server": server,
        "status": status,
        "upstream_status": f"CASE WHEN {server} IS NOT NULL THEN {status} END",
        "time_total_ms": f"try_cast({j['duration']} AS DOUBLE) * 1000",
        "time_response_ms": f"try_cast({j['upstream_latency_ms']} AS DOUBLE)",
        "bytes": f"try_cast({j['size']} AS BIGINT)",
        "client_ip": j["request.remote_ip"],
        "client_port": f"try_cast({j['request.remote_port']} AS INTEGER)",
        "forwarded_for": (
            f"coalesce({sql.first_ip(j['request.headers.X-Forwarded-For.0'])}, "
            f"CASE WHEN {j['request.client_ip']} <> {j['request.remote_ip']} "
            f"THEN {j['request.client_ip']} END)"
        ),
        "method": j["request.method"],
        "host": j["request.host"],
        "path": f"split_part({uri}, '?', 1)",
        "query": f"nullif(split_part({uri}, '?', 2), '')",
        "protocol": j["request.proto"],
        "attempts": f"CASE WHEN {server} IS NOT NULL THEN [{server}] END",
    }
    return ParsePlan(
        extracts=(("j", json_list),),
        columns=columns,
        checks=(
            Check("j IS NULL", "not a JSON line"),
            Check(
                f"NOT starts_with(coalesce({j['logger']}, ''), 'http.log.access')",
                "Caddy log entry other than an access log",
                skipped=True,
            ),
            Check("ts IS NULL", "invalid ts"),
        ),
    )


_GENERIC_TYPES = {
    "status": "INTEGER", "upstream_status": "INTEGER", "client_port": "INTEGER",
    "retries": "INTEGER", "bytes": "BIGINT", "time_total_ms": "DOUBLE",
    "time_queue_ms": "DOUBLE", "time_connect_ms": "DOUBLE", "time_response_ms": "DOUBLE",
    "lb_error": "BOOLEAN", "redispatched": "BOOLEAN", "ts": "TIMESTAMPTZ",
}  # fmt: skip


def json_plan(options: ParseOptions) -> ParsePlan:
    if not options.field_map:
        raise LogError(
            "the json log format needs a field mapping",
            hint="give --field-map, for example server=upstream,status=code,ts=time",
        )
    keys = tuple(options.field_map.values())
    json_list, j = _json_plan(keys)
    columns: dict[str, str] = {"lb": "'json'"}
    for column, key in options.field_map.items():
        sql_type = _GENERIC_TYPES.get(column)
        columns[column] = f"try_cast({j[key]} AS {sql_type})" if sql_type else j[key]
    if "ts" in columns and "ts" in options.field_map:
        key = options.field_map["ts"]
        columns["ts"] = (
            f"coalesce(try_cast({j[key]} AS TIMESTAMPTZ), "
            f"to_timestamp(try_cast({j[key]} AS DOUBLE)))"
        )
    checks = [Check("j IS NULL", "not a JSON line")]
    if "ts" in columns:
        checks.append(Check("ts IS NULL", f"missing or invalid {options.field_map['ts']}"))
    return ParsePlan(extracts=(("j", json_list),), columns=columns, checks=tuple(checks))


ENVOY = LogFormat(
    name="envoy",
    description="Envoy default text format, Istio's TEXT format, and Envoy JSON logs",
    detect=regex_detector(rf'(?:{ENVOY_PATTERN})|(?:\{{.*"response_code")'),
    plan=envoy_plan,
)
TRAEFIK_CLF = LogFormat(
    name="traefik-clf",
    description="Traefik common (CLF) access logs with router, service URL and duration",
    detect=regex_detector(TRAEFIK_CLF_PATTERN),
    plan=traefik_clf_plan,
)
TRAEFIK_JSON = LogFormat(
    name="traefik-json",
    description="Traefik JSON access logs",
    detect=regex_detector(r'\{.*"DownstreamStatus"'),
    plan=traefik_json_plan,
)
CADDY = LogFormat(
    name="caddy",
    description="Caddy JSON access logs (server from a log_append upstream_host field)",
    detect=regex_detector(r'\{.*"logger"\s*:\s*"http\.(?:log\.access|handlers)'),
    plan=caddy_plan,
)
JSON_LINES = LogFormat(
    name="json",
    description="Any JSON-lines log, with --field-map COLUMN=KEY,... naming the keys",
    detect=lambda line: False,
    plan=json_plan,
)
