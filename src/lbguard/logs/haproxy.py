"""HAProxy ``option httplog``, ``option httpslog`` and ``option tcplog`` lines.

Field order and meanings follow HAProxy's configuration manual, section 8.2 (read in
HAProxy 3.5-dev5; unchanged in layout since 1.7 apart from the additions noted here).
"""

from __future__ import annotations

from lbguard.logs import sqlparts as sql
from lbguard.logs.interface import Check, LogFormat, ParseOptions, ParsePlan, regex_detector

SYSLOG_PREFIX = (
    r"(?:<\d+>)?"
    # RFC 5424: "1 ISO-time host app procid msgid structured-data ".
    r"(?:1 \S+ \S+ \S+ \S+ \S+ \S+ "
    # RFC 3164 from HAProxy ("local" format, no host) or from a syslog daemon (with host).
    # Days 1-9 are space-padded ("Feb  6").
    r"|(?:[A-Z][a-z]{2} +\d{1,2} \d\d:\d\d:\d\d (?:\S+ )?)?(?:[^\s\[]+\[\d+\]: )?)"
)
"""Every syslog header HAProxy or a syslog daemon writes before the log text."""

_CLIENT_DATE = r"(\S+):(\S+) \[(\d\d/[A-Z][a-z]{2}/\d{4}:\d\d:\d\d:\d\d(?:\.\d+)?)\] "

# %ft %b/%s, then either the HTTP timers TR/Tw/Tc/Tr/Ta (Tq/Tw/Tc/Tr/Tt before 1.7) or the
# TCP timers Tw/Tc/Tt. "+" marks logasap values; retries "+N" marks a redispatch.
_HTTP_TAIL = (
    r"(-?\d+)/(-?\d+)/(-?\d+)/(-?\d+)/\+?(-?\d+) (-?\d+) \+?(\d+) (\S+) (\S+) (\S{4}) "
    r"\d+/\d+/\d+/(\d+)/(\+?\d+) \d+/\d+"
    r"(?: \{([^}]*)\})?(?: \{([^}]*)\})? \"(.*?)(?:\"(?: (\S+) (\S+))?)?$"
)
_TCP_TAIL = r"(-?\d+)/(-?\d+)/\+?(-?\d+) \+?(\d+) (\S{2}) \d+/\d+/\d+/(\d+)/(\+?\d+) \d+/\d+$"

BODY_PATTERN = (
    "^" + _CLIENT_DATE + r"(\S+) ([^/ ]+)/(\S+) " + "(?:" + _HTTP_TAIL + "|" + _TCP_TAIL + ")"
)
PATTERN = "^" + SYSLOG_PREFIX + BODY_PATTERN[1:]
"""A whole line: syslog header, then the log text."""

NAMES = (
    "client",
    "port",
    "date",
    "frontend",
    "backend",
    "server",
    "h_t1",
    "h_tw",
    "h_tc",
    "h_tr",
    "h_ta",
    "h_status",
    "h_bytes",
    "h_req_cookie",
    "h_res_cookie",
    "h_term",
    "h_srv_conn",
    "h_retries",
    "h_req_headers",
    "h_res_headers",
    "h_request",
    "h_tls_errors",
    "h_tls_info",
    "t_tw",
    "t_tc",
    "t_tt",
    "t_bytes",
    "t_term",
    "t_srv_conn",
    "t_retries",
)

EVENT_PATTERN = (
    "^"
    + SYSLOG_PREFIX
    + r"(?:Proxy \S+ (?:started|stopped)|Connect from |Server \S+ is |backend \S+ has no server"
    + r"|Stopping |Pausing |Health check|\S+:\S+ \[[^\]]+\] [^ /]+/[^ :]+: )"
)
"""HAProxy messages that are not requests: proxy and server events, the deprecated
"Connect from" lines, and connection errors such as "SSL handshake failure"."""

# Termination causes (first character of %ts/%tsc) after which HAProxy, not the server,
# produced or cut the answer: server timeout or refusal, proxy/resource/internal errors,
# server going down or back up, admin kill (configuration manual section 8.5).
_LB_CAUSES = "('s', 'S', 'P', 'R', 'I', 'D', 'U', 'K')"


def plan(options: ParseOptions) -> ParsePlan:
    prefix = "^" + SYSLOG_PREFIX
    is_http = "f.h_status <> ''"
    term = "coalesce(nullif(f.h_term, ''), nullif(f.t_term, ''))"
    retries = "coalesce(nullif(f.h_retries, ''), nullif(f.t_retries, ''))"
    request = sql.request_columns("r")
    headers = (
        f"CASE WHEN {is_http} AND f.h_req_headers <> '' "
        "THEN string_split(f.h_req_headers, '|') END"
    )
    is_ip = f"regexp_matches(h, {sql.quote(sql.IP_PREFIX_PATTERN)})"
    xff = f"list_filter({headers}, lambda h: {is_ip})[1]"
    columns = {
        "ts": sql.local_time(
            "f.date", ("%d/%b/%Y:%H:%M:%S.%g", "%d/%b/%Y:%H:%M:%S"), options.timezone
        ),
        "lb": f"CASE WHEN {is_http} THEN 'haproxy-http' ELSE 'haproxy-tcp' END",
        # "~" after the frontend name marks a TLS listener (%ft).
        "frontend": "rtrim(f.frontend, '~')",
        "pool": "f.backend",
        "server": "CASE WHEN f.server NOT IN ('<NOSRV>', '<STATS>') THEN f.server END",
        "status": f"CASE WHEN {is_http} AND f.h_status <> '-1' THEN f.h_status::INTEGER END",
        # Tr = -1 means the server's response headers were never received, so the status
        # (if any) was produced by HAProxy.
        "upstream_status": (
            f"CASE WHEN {is_http} AND f.h_tr::INTEGER >= 0 AND f.h_status <> '-1' "
            "THEN f.h_status::INTEGER END"
        ),
        "lb_error": f"f.server = '<NOSRV>' OR left({term}, 1) IN {_LB_CAUSES}",
        "time_total_ms": sql.ms_from_ms(f"CASE WHEN {is_http} THEN f.h_ta ELSE f.t_tt END"),
        "time_queue_ms": sql.ms_from_ms(f"CASE WHEN {is_http} THEN f.h_tw ELSE f.t_tw END"),
        "time_connect_ms": sql.ms_from_ms(f"CASE WHEN {is_http} THEN f.h_tc ELSE f.t_tc END"),
        "time_response_ms": sql.ms_from_ms(f"CASE WHEN {is_http} THEN f.h_tr END"),
        "bytes": f"try_cast(CASE WHEN {is_http} THEN f.h_bytes ELSE f.t_bytes END AS BIGINT)",
        "client_ip": "f.client",
        "client_port": "try_cast(f.port AS INTEGER)",
        # The log does not say which captured header is X-Forwarded-For, so the first
        # captured request header that starts with an IP address is taken.
        "forwarded_for": sql.first_ip(xff),
        **request,
        "termination": term,
        "retries": f"try_cast(ltrim({retries}, '+') AS INTEGER)",
        "redispatched": f"starts_with({retries}, '+')",
        "attempts": "CASE WHEN f.server NOT IN ('<NOSRV>', '<STATS>') THEN [f.server] END",
        "attempt_statuses": (
            f"CASE WHEN f.server NOT IN ('<NOSRV>', '<STATS>') AND {is_http} "
            "AND f.h_tr::INTEGER >= 0 THEN [f.h_status::INTEGER] END"
        ),
        "captured_request_headers": headers,
    }
    checks = (
        Check(
            f"f.client = '' AND regexp_matches(line, {sql.quote(EVENT_PATTERN)})",
            "HAProxy event or connection error, not a request",
            skipped=True,
        ),
        Check("f.client = ''", "not an HAProxy httplog/tcplog line"),
        Check("ts IS NULL", "invalid date in brackets"),
    )
    return ParsePlan(
        # The header is removed first with a capture-free expression: RE2 matches those
        # with its fast DFA, which cuts the cost of the capturing expression by about half.
        extracts=(
            ("body", f"substr(line, length(regexp_extract(line, {sql.quote(prefix)})) + 1)"),
            ("f", sql.extract("body", BODY_PATTERN, NAMES)),
            ("r", sql.request_line("f.h_request")),
        ),
        columns=columns,
        checks=checks,
    )


FORMAT = LogFormat(
    name="haproxy",
    description="HAProxy option httplog, httpslog and tcplog lines, any syslog header",
    # Event lines count too, so a file of "Connect from" lines is still recognised.
    detect=regex_detector(f"(?:{PATTERN})|(?:{EVENT_PATTERN})"),
    plan=plan,
    lb_names=("haproxy-http", "haproxy-tcp"),
)
