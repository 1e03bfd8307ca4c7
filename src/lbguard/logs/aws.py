"""AWS Application, Classic and Network Load Balancer access logs.

Field orders follow the Elastic Load Balancing user guides (access-log pages of the ALB,
Classic and NLB guides, awsdocs GitHub mirrors). AWS appends new fields at the end and
asks readers to ignore fields they do not expect, so every pattern accepts a tail.
"""

from __future__ import annotations

from lbguard.logs import sqlparts as sql
from lbguard.logs.interface import Check, LogFormat, ParseOptions, ParsePlan, regex_detector

_Q = r'"([^"]*)"'
_LIST = r'("[^"]*"|\S+)'

ALB_PATTERN = (
    r"^(http|https|h2|grpcs|ws|wss) (\S+) (\S+) (\S+) (\S+) (\S+) (\S+) (\S+) (\S+) (\S+) "
    rf"(\S+) (\S+) {_Q} {_Q} (\S+) (\S+) (\S+) {_Q} {_Q} {_Q}"
    # Fields added later: rule priority to error reason, then the target lists (quoted in
    # real logs, unquoted in older documentation), then the desync classification.
    rf"(?: (\S+) (\S+) {_Q} {_Q} {_Q}(?: {_LIST} {_LIST})?)?(?: .*)?$"
)
ALB_NAMES = (
    "type", "time", "elb", "client", "target", "request_time", "target_time",
    "response_time", "elb_status", "target_status", "received", "sent", "request",
    "user_agent", "cipher", "tls_protocol", "target_group", "trace_id", "domain", "cert",
    "priority", "created", "actions", "redirect", "error_reason", "targets", "target_statuses",
)  # fmt: skip

CLB_PATTERN = (
    r"^(\d{4}-\d\d-\d\dT\S+Z) (\S+) (\S+) (\S+) (\S+) (\S+) (\S+) (\S+) (\S+) (\S+) (\S+) "
    rf"{_Q} {_Q} (\S+) (\S+)(?: .*)?$"
)
CLB_NAMES = (
    "time", "elb", "client", "backend", "request_time", "backend_time", "response_time",
    "elb_status", "backend_status", "received", "sent", "request", "user_agent", "cipher",
    "tls_protocol",
)  # fmt: skip

NLB_PATTERN = (
    r"^tls (\S+) (\S+) (\S+) (\S+) (\S+) (\S+) (\S+) (\S+) (\S+) (\S+) (\S+) (\S+) (\S+) "
    r"(\S+) (\S+) (\S+) (\S+)(?: .*)?$"
)
NLB_NAMES = (
    "version", "time", "elb", "listener", "client", "destination", "connection_time",
    "handshake_time", "received", "sent", "alert", "cert", "serial", "cipher",
    "tls_protocol", "named_group", "domain",
)  # fmt: skip

_TIME_FORMATS = ("%Y-%m-%dT%H:%M:%S.%fZ", "%Y-%m-%dT%H:%M:%SZ", "%Y-%m-%dT%H:%M:%S")


def _sum(values: tuple[str, ...]) -> str:
    return " + ".join(f"{value}::DOUBLE" for value in values)


def _unquote(value: str) -> str:
    return f"trim({value}, '\"')"


def alb_plan(options: ParseOptions) -> ParsePlan:
    del options
    client_ip, client_port = sql.last_colon_split("f.client")
    times = ("f.request_time", "f.target_time", "f.response_time")
    all_reached = " AND ".join(f"try_cast({t} AS DOUBLE) >= 0" for t in times)
    targets = f"nullif({_unquote('f.targets')}, '-')"
    statuses = f"nullif({_unquote('f.target_statuses')}, '-')"
    columns = {
        "ts": sql.utc_time("f.time", _TIME_FORMATS),
        "lb": "'aws-alb'",
        "frontend": "f.elb",
        "pool": sql.dash_null("f.target_group"),
        "server": sql.dash_null("f.target"),
        "status": sql.to_int("f.elb_status"),
        "upstream_status": sql.to_int("f.target_status"),
        # "-" as target status: no connection to, or no response from, a target.
        "lb_error": f"{sql.dash_null('f.target_status')} IS NULL",
        "time_total_ms": (f"CASE WHEN {all_reached} THEN ({_sum(times)}) * 1000 END"),
        "time_response_ms": sql.ms_from_seconds("f.target_time"),
        "bytes": sql.to_bigint("f.sent"),
        "client_ip": client_ip,
        "client_port": client_port,
        **sql.request_columns("r"),
        "termination": sql.dash_null("f.error_reason"),
        "attempts": (
            f"CASE WHEN {targets} IS NOT NULL THEN string_split({targets}, ' ') "
            f"WHEN {sql.dash_null('f.target')} IS NOT NULL THEN [f.target] END"
        ),
        "attempt_statuses": (
            f"CASE WHEN {statuses} IS NOT NULL THEN list_transform(string_split({statuses}, ' '), "
            "lambda s: try_cast(s AS INTEGER)) "
            f"WHEN {sql.dash_null('f.target')} IS NOT NULL "
            f"THEN [{sql.to_int('f.target_status')}] END"
        ),
    }
    return ParsePlan(
        extracts=(
            ("f", sql.extract("line", ALB_PATTERN, ALB_NAMES)),
            ("r", sql.request_line("f.request")),
        ),
        columns=columns,
        checks=(
            Check("f.type = ''", "not an ALB access-log entry"),
            Check("ts IS NULL", "invalid time"),
        ),
    )


def clb_plan(options: ParseOptions) -> ParsePlan:
    del options
    client_ip, client_port = sql.last_colon_split("f.client")
    times = ("f.request_time", "f.backend_time", "f.response_time")
    all_reached = " AND ".join(f"try_cast({t} AS DOUBLE) >= 0" for t in times)
    is_http = "f.request <> '- - - '"
    backend_ms = sql.ms_from_seconds("f.backend_time")
    columns = {
        "ts": sql.utc_time("f.time", _TIME_FORMATS),
        "lb": "'aws-elb'",
        "frontend": "f.elb",
        "server": sql.dash_null("f.backend"),
        "status": sql.to_int("f.elb_status"),
        "upstream_status": sql.to_int("f.backend_status"),
        "lb_error": (
            f"{sql.to_int('f.elb_status')} IS NOT NULL "
            f"AND {sql.dash_null('f.backend_status')} IS NULL"
        ),
        "time_total_ms": (f"CASE WHEN {all_reached} THEN ({_sum(times)}) * 1000 END"),
        "time_response_ms": f"CASE WHEN {is_http} THEN {backend_ms} END",
        # For TCP listeners the backend time is the connect time.
        "time_connect_ms": f"CASE WHEN NOT {is_http} THEN {backend_ms} END",
        "bytes": sql.to_bigint("f.sent"),
        "client_ip": client_ip,
        "client_port": client_port,
        **{
            name: f"CASE WHEN {is_http} THEN {expr} END"
            for name, expr in sql.request_columns("r").items()
        },
        "attempts": f"CASE WHEN {sql.dash_null('f.backend')} IS NOT NULL THEN [f.backend] END",
    }
    return ParsePlan(
        extracts=(
            ("f", sql.extract("line", CLB_PATTERN, CLB_NAMES)),
            ("r", sql.request_line("f.request")),
        ),
        columns=columns,
        checks=(
            Check("f.time = ''", "not a Classic ELB access-log entry"),
            Check("ts IS NULL", "invalid time"),
        ),
    )


def nlb_plan(options: ParseOptions) -> ParsePlan:
    del options
    client_ip, client_port = sql.last_colon_split("f.client")
    columns = {
        "ts": sql.utc_time("f.time", _TIME_FORMATS),
        "lb": "'aws-nlb'",
        "frontend": "f.elb || '/' || f.listener",
        # NLB logs name no target: destination is the listener or VPC endpoint address.
        "time_total_ms": sql.ms_from_ms("f.connection_time"),
        "bytes": sql.to_bigint("f.sent"),
        "client_ip": client_ip,
        "client_port": client_port,
        "host": sql.dash_null("f.domain"),
        "protocol": sql.dash_null("f.tls_protocol"),
        "termination": sql.dash_null("f.alert"),
    }
    return ParsePlan(
        extracts=(("f", sql.extract("line", NLB_PATTERN, NLB_NAMES)),),
        columns=columns,
        checks=(
            Check("f.time = ''", "not an NLB TLS access-log entry"),
            Check("ts IS NULL", "invalid time"),
        ),
    )


ALB = LogFormat(
    name="aws-alb",
    description="AWS Application Load Balancer access logs, every field generation",
    detect=regex_detector(ALB_PATTERN),
    plan=alb_plan,
)
CLB = LogFormat(
    name="aws-elb",
    description="AWS Classic Load Balancer access logs",
    detect=regex_detector(CLB_PATTERN),
    plan=clb_plan,
)
NLB = LogFormat(
    name="aws-nlb",
    description="AWS Network Load Balancer TLS access logs (no target field)",
    detect=regex_detector(NLB_PATTERN),
    plan=nlb_plan,
)
