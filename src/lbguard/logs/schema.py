"""The normalized ``requests`` table that every log format is read into.

One row is one request (or one TCP session) as the load balancer logged it. Analysis code
queries this table with DuckDB and never looks at the original text.
"""

from __future__ import annotations

from dataclasses import dataclass

TABLE = "requests"
"""Default name of the table that `lbguard.logs.load_logs` fills."""


@dataclass(frozen=True)
class Column:
    """One column of the ``requests`` table."""

    name: str
    sql_type: str
    doc: str
    """Meaning of the column, including what NULL means."""


COLUMNS: tuple[Column, ...] = (
    Column(
        "ts",
        "TIMESTAMPTZ",
        "Time of the request. Logs without a zone (HAProxy) are read in the zone given by "
        "the `timezone` option, UTC by default. The event it marks depends on the product: "
        "HAProxy first request byte (accept for TCP and before 1.7), nginx log write, ALB "
        "response, Classic ELB request receipt, Envoy and Traefik request start.",
    ),
    Column("lb", "VARCHAR", "Format the row was read with, for example `haproxy-http`."),
    Column(
        "frontend",
        "VARCHAR",
        "Listener that received the request: HAProxy frontend (without the `~` TLS mark), "
        "ALB/ELB name, Traefik entry point, Envoy/Istio route name. NULL when not logged.",
    ),
    Column(
        "pool",
        "VARCHAR",
        "Server group: HAProxy backend, nginx upstream or `$proxy_upstream_name`, ALB target "
        "group ARN, Envoy cluster, Traefik service. NULL when not logged.",
    ),
    Column(
        "server",
        "VARCHAR",
        "Server that produced the response: HAProxy server name, or the last upstream "
        "`address:port` for nginx, ALB, Envoy and Traefik. NULL when no server was reached.",
    ),
    Column("status", "INTEGER", "HTTP status sent to the client; NULL when none was sent."),
    Column(
        "upstream_status",
        "INTEGER",
        "Status the (last) server returned; NULL when no server answered or the log lacks it.",
    ),
    Column(
        "lb_error",
        "BOOLEAN",
        "True when the load balancer answered or failed by itself instead of a server: "
        "HAProxy `<NOSRV>` or termination state starting with `s`, `S` (server side), "
        "`P`, `R`, `I`, `D`, `K` or `U`; nginx 502/504 without an upstream status; "
        "ALB/ELB with no target status; Envoy UH/UF/UO/NR/URX/NC/UT/LH/DF flags; Traefik "
        "5xx with origin status 0.",
    ),
    Column(
        "time_total_ms",
        "DOUBLE",
        "Whole request time in ms: HAProxy Ta (Tt before 1.7 and for TCP), nginx "
        "$request_time, ALB sum of the three processing times, Envoy %DURATION%, Traefik "
        "Duration, Caddy duration.",
    ),
    Column("time_queue_ms", "DOUBLE", "Time in the load balancer queues (HAProxy Tw) in ms."),
    Column(
        "time_connect_ms",
        "DOUBLE",
        "Time to connect to the server in ms (HAProxy Tc, nginx $upstream_connect_time).",
    ),
    Column(
        "time_response_ms",
        "DOUBLE",
        "Server response time in ms: HAProxy Tr (response headers), nginx "
        "$upstream_header_time or else $upstream_response_time of the last attempt, ALB "
        "target_processing_time, Envoy x-envoy-upstream-service-time, Traefik OriginDuration.",
    ),
    Column("bytes", "BIGINT", "Bytes sent to the client."),
    Column("client_ip", "VARCHAR", "Address of the connecting peer, without the port."),
    Column("client_port", "INTEGER", "Port of the connecting peer; NULL when not logged."),
    Column(
        "forwarded_for",
        "VARCHAR",
        "First X-Forwarded-For address when the log carries one (HAProxy captured header, "
        "nginx $http_x_forwarded_for, Envoy XFF, Traefik ClientHost list, Caddy client_ip).",
    ),
    Column("method", "VARCHAR", "HTTP method; NULL for TCP sessions."),
    Column("host", "VARCHAR", "Host of an absolute-form URI or the logged Host header."),
    Column("path", "VARCHAR", "Request path up to `?`."),
    Column("query", "VARCHAR", "Query string without the `?`; NULL when absent."),
    Column("protocol", "VARCHAR", "Protocol of the request line, for example `HTTP/1.1`."),
    Column(
        "termination",
        "VARCHAR",
        "Termination or error detail: HAProxy termination state, Envoy response flags, "
        "ALB error_reason.",
    ),
    Column(
        "retries",
        "INTEGER",
        "Retries before the logged outcome: HAProxy retries, or the number of extra nginx "
        "upstream attempts, or Traefik RetryAttempts.",
    ),
    Column(
        "redispatched",
        "BOOLEAN",
        "True when HAProxy redispatched to another server (`+` before the retries). The "
        "retries then belong to an earlier server, not to the logged one.",
    ),
    Column(
        "attempts",
        "VARCHAR[]",
        "Every upstream address tried, in order (nginx $upstream_addr across groups, ALB "
        "target list); a single element for products that log only the last one.",
    ),
    Column(
        "attempt_statuses",
        "INTEGER[]",
        "Status of each attempt, aligned with `attempts`; NULL elements where none was "
        "logged (`-`).",
    ),
    Column(
        "captured_request_headers",
        "VARCHAR[]",
        "HAProxy captured request headers in `capture request header` order.",
    ),
    Column("source_file", "VARCHAR", "Log file the row comes from (`-` for stdin)."),
    Column("source_line", "BIGINT", "1-based line number in the (decompressed) file."),
)

COLUMN_NAMES: tuple[str, ...] = tuple(column.name for column in COLUMNS)


def create_table_sql(table: str = TABLE) -> str:
    """Return the ``CREATE TABLE IF NOT EXISTS`` statement for the requests table."""
    body = ",\n    ".join(f"{column.name} {column.sql_type}" for column in COLUMNS)
    return f"CREATE TABLE IF NOT EXISTS {table} (\n    {body}\n)"
