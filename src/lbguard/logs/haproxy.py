"""HAProxy ``option httplog``, ``option httpslog`` and ``option tcplog`` lines.

Field order and meanings follow HAProxy's configuration manual, section 8.2 (read in
HAProxy 3.5-dev5; unchanged in layout since 1.7 apart from the additions noted here).
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from lbguard.logs import sqlparts as sql
from lbguard.logs.interface import (
    Check,
    LogFormat,
    ParseOptions,
    ParsePlan,
    ShapePlan,
    regex_detector,
)

SYSLOG_PREFIX = (
    r"(?:<\d+>)?"
    # RFC 5424: "1 ISO-time host app procid msgid structured-data ".
    r"(?:1 \S+ \S+ \S+ \S+ \S+ \S+ "
    # RFC 3164 from HAProxy ("local" format, no host) or from a syslog daemon (with host).
    # Days 1-9 are space-padded ("Feb  6").
    r"|(?:[A-Z][a-z]{2} +\d{1,2} \d\d:\d\d:\d\d (?:\S+ )?)?(?:[^\s\[]+\[\d+\]: )?)"
)
"""Every syslog header HAProxy or a syslog daemon writes before the log text."""

_DATE = r"\d\d/[A-Z][a-z]{2}/\d{4}:\d\d:\d\d:\d\d(?:\.\d+)?"

# %ft %b/%s, then either the HTTP timers TR/Tw/Tc/Tr/Ta (Tq/Tw/Tc/Tr/Tt before 1.7) or the
# TCP timers Tw/Tc/Tt. "+" marks logasap values; retries "+N" marks a redispatch. Fields
# that no column uses (Tq/TR, cookies, connection counts but one, response headers, the
# httpslog TLS fields) are matched without capture.
_HTTP_TAIL = (
    r"-?\d+/(-?\d+)/(-?\d+)/(-?\d+)/\+?(-?\d+) (-?\d+) \+?(\d+) \S+ \S+ (\S{4}) "
    r"\d+/\d+/\d+/\d+/(\+?\d+) \d+/\d+"
    r"(?: \{([^}]*)\})?(?: \{[^}]*\})? \"(.*?)(?:\"(?: \S+ \S+)?)?$"
)
_TCP_TAIL = r"(-?\d+)/(-?\d+)/\+?(-?\d+) \+?(\d+) (\S{2}) \d+/\d+/\d+/\d+/(\+?\d+) \d+/\d+$"

BODY_PATTERN = rf"^(\S+):(\S+) \[({_DATE})\] (\S+) ([^/ ]+)/(\S+) (?:{_HTTP_TAIL}|{_TCP_TAIL})"
PATTERN = "^" + SYSLOG_PREFIX + BODY_PATTERN[1:]
"""A whole line: syslog header, then the log text."""

# Fast path: lines of this narrower shape are split with string functions, and only the
# others go through the capturing expression (RE2 checks a capture-free match with its
# DFA, several times faster than extracting 22 groups). Tokens before the request contain
# no quote or brace, and none before the date starts with "[", so the first " [" opens the
# date, a "{" before the first quote opens the request headers and the first quote opens
# the request. The port has no ":", so the last ":" of the client token splits it as the
# greedy capture does. A test compares both paths on the sample logs and generated lines.
_T = r'[^\s"{}]'
_LEAD = r'[^\s"{}\[][^\s"{}]*'
_FAST_PREFIX = (
    r"(?:<\d+>)?"
    rf"(?:1 {_LEAD} {_LEAD} {_LEAD} {_LEAD} {_LEAD} {_LEAD} "
    rf'|(?:[A-Z][a-z]{{2}} +\d{{1,2}} \d\d:\d\d:\d\d (?:{_LEAD} )?)?(?:[^\s"{{}}\[]+\[\d+\]: )?)'
)
_FAST_HTTP = (
    rf"-?\d+/-?\d+/-?\d+/-?\d+/\+?-?\d+ -?\d+ \+?\d+ {_T}+ {_T}+ {_T}{{4}} "
    r"\d+/\d+/\d+/\d+/\+?\d+ \d+/\d+"
    r'(?: \{[^{}"]*\})?(?: \{[^{}"]*\})? "[^"]*"(?: [^\s"]+ [^\s"]+)?$'
)
_FAST_TCP = rf"-?\d+/-?\d+/\+?-?\d+ \+?\d+ {_T}{{2}} \d+/\d+/\d+/\d+/\+?\d+ \d+/\d+$"
FAST_PATTERN = (
    f'^{_FAST_PREFIX}{_LEAD}:[^\\s":{{}}]+ \\[{_DATE}\\] {_LEAD} '
    f'[^\\s"{{}}/]+/{_T}+ (?:{_FAST_HTTP}|{_FAST_TCP})'
)
"""Lines that `fast_fields` splits exactly as the captures of `PATTERN` would."""

NAMES = (
    "client",
    "port",
    "date",
    "frontend",
    "backend",
    "server",
    "h_tw",
    "h_tc",
    "h_tr",
    "h_ta",
    "h_status",
    "h_bytes",
    "h_term",
    "h_retries",
    "h_req_headers",
    "h_request",
    "t_tw",
    "t_tc",
    "t_tt",
    "t_bytes",
    "t_term",
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


def fast_fields() -> str:
    """Return the ``f`` struct of a `FAST_PATTERN` line from the tokens ``s`` and the index
    ``c`` of the client token (the number of spaces before the date, plus one)."""
    client = "s[c]"
    colon = f"strpos(reverse({client}), ':')"
    common = {
        "client": f"left({client}, length({client}) - {colon})",
        "port": f"right({client}, {colon} - 1)",
        "date": "s[c + 1][2:-2]",
        "frontend": "s[c + 2]",
        "backend": "split_part(s[c + 3], '/', 1)",
        "server": "s[c + 3][strpos(s[c + 3], '/') + 1:]",
    }
    brace = "strpos(line, '{')"
    http = {
        "h_tw": "split_part(s[c + 4], '/', 2)",
        "h_tc": "split_part(s[c + 4], '/', 3)",
        "h_tr": "split_part(s[c + 4], '/', 4)",
        "h_ta": "ltrim(split_part(s[c + 4], '/', 5), '+')",
        "h_status": "s[c + 5]",
        "h_bytes": "ltrim(s[c + 6], '+')",
        "h_term": "s[c + 9]",
        "h_retries": "split_part(s[c + 10], '/', 5)",
        "h_req_headers": (
            f"CASE WHEN {brace} BETWEEN 1 AND strpos(line, '\"') "
            f"THEN substr(line, {brace} + 1, strpos(line, '}}') - {brace} - 1) ELSE '' END"
        ),
        "h_request": "split_part(line, '\"', 2)",
    }
    tcp = {
        "t_tw": "split_part(s[c + 4], '/', 1)",
        "t_tc": "split_part(s[c + 4], '/', 2)",
        "t_tt": "ltrim(split_part(s[c + 4], '/', 3), '+')",
        "t_bytes": "ltrim(s[c + 5], '+')",
        "t_term": "s[c + 6]",
        "t_retries": "split_part(s[c + 7], '/', 5)",
    }

    # Fields of the other kind are empty strings, as the unmatched groups of the capture.
    def pack(values: dict[str, str]) -> str:
        empty = "''"
        fields = ", ".join(f"{name} := {values.get(name, empty)}" for name in NAMES)
        return f"struct_pack({fields})"

    # A tcplog line ends with the queue counters, token c + 8; httplog lines go on.
    return f"CASE WHEN len(s) > c + 8 THEN {pack(common | http)} ELSE {pack(common | tcp)} END"


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
    # The syslog header is removed with a capture-free expression before the capturing
    # one, which RE2 then runs on a shorter text.
    body = f"substr(line, length(regexp_extract(line, {sql.quote(prefix)})) + 1)"
    date_at = "strpos(line, ' [')"
    return ParsePlan(
        extracts=(
            ("fast", f"regexp_matches(line, {sql.quote(FAST_PATTERN)})"),
            ("s", "CASE WHEN fast THEN string_split(line, ' ') END"),
            ("c", f"{date_at} - length(replace(left(line, {date_at}), ' ', ''))"),
            (
                "f",
                f"CASE WHEN fast THEN {fast_fields()} "
                f"ELSE {sql.extract(body, BODY_PATTERN, NAMES)} END",
            ),
            ("r", sql.request_line("f.h_request")),
        ),
        columns=columns,
        checks=checks,
    )


# The common shape, read by `shape`: one of the syslog headers below, the fields up to
# the queue counters, then for HTTP at most two header blocks and the quoted request,
# which ends the line. Each header has a fixed number of blank-separated tokens, except
# that syslog daemons pad days 1-9 with a second blank, which adds an empty token. Status
# and Tr are limited to nine digits, so that the INTEGER casts of the full plan cannot
# fail on a line that the shape accepts. The request is "METHOD /target PROTOCOL" with
# no whitespace inside the parts and no "#" in the target, which `REQUEST_LINE_PATTERN`
# splits into the method, the path up to the first "?", the query after it and the
# protocol.
_TAG = r'[^\s"{}\[]+\[\d+\]:'
_SYSLOG_TIME = r"[A-Z][a-z]{2} {1,2}\d{1,2} \d\d:\d\d:\d\d"
SHAPE_HEADERS: tuple[tuple[str, int], ...] = (
    ("", 0),
    (rf"(?:<\d+>)?{_TAG} ", 1),
    (rf"(?:<\d+>)?1(?: {_LEAD}){{6}} ", 7),
    (rf"(?:<\d+>)?{_SYSLOG_TIME} ", 3),
    (rf"(?:<\d+>)?{_SYSLOG_TIME} {_LEAD} ", 4),
    (rf"(?:<\d+>)?{_SYSLOG_TIME} {_LEAD} {_TAG} ", 5),
)
"""Syslog headers of the common shape, each a subset of `_FAST_PREFIX` that ends with a
blank, with its number of tokens when the day is not padded."""

_DAY_TIME = r"\d\d/[A-Z][a-z]{2}/\d{4}:\d\d:\d\d:\d\d"
SHAPE_DATES: tuple[tuple[str, str], ...] = (
    (_DAY_TIME + r"\.\d{3}", "[%d/%b/%Y:%H:%M:%S.%g]"),
    (_DAY_TIME, "[%d/%b/%Y:%H:%M:%S]"),
)
"""Dates of the common shape, with and without milliseconds, and the strptime format
that reads the bracketed date as the full plan's format list does."""


def shape_body(date: str) -> str:
    """The log text of the common shape with dates ``date``: a subset of `FAST_PATTERN`
    after its header."""
    head = f'{_LEAD}:[^\\s":{{}}]+ \\[{date}\\] {_LEAD} [^\\s"{{}}/]+/{_T}+ '
    http = (
        r"-?\d+/-?\d+/-?\d+/-?\d{1,9}/\+?-?\d+ -?\d{1,9} \+?\d+ "
        + f"{_T}+ {_T}+ {_T}{{4}} "
        + r"\d+/\d+/\d+/\d+/\+?\d+ \d+/\d+"
        + r'(?: \{[^{}"]*\}){0,2} "[^\s"]+ /[^\s"#]* [^\s"]+"'
    )
    tcp = r"-?\d+/-?\d+/\+?-?\d+ \+?\d+ " + f"{_T}{{2}} " + r"\d+/\d+/\d+/\d+/\+?\d+ \d+/\d+"
    return f"{head}(?:{http}|{tcp})"


# `sql.first_ip` of the first element of the captured headers that starts with an
# address: an element starts at the beginning or after "|", and no address contains "|"
# or ",", so the leftmost match of this expression is in that element and its group is
# the address `sql.first_ip` returns.
_XFF_IN_HEADERS = r"(?:^|\|)" + sql.IP_PREFIX_PATTERN.removeprefix("^")


def _shape_form(sample: Sequence[str]) -> tuple[str, int, str] | None:
    """Return the pattern, header token count and date format of the header and date
    form (`SHAPE_HEADERS`, `SHAPE_DATES`) that most sample lines have."""
    best: tuple[int, str, int, str] | None = None
    for date, date_format in SHAPE_DATES:
        body = shape_body(date)
        for header, tokens in SHAPE_HEADERS:
            compiled = re.compile(header + body, re.ASCII)
            count = sum(1 for line in sample if compiled.fullmatch(line))
            if count and (best is None or count > best[0]):
                best = (count, header + body, tokens, date_format)
    return best[1:] if best is not None else None


def shape(options: ParseOptions, sample: Sequence[str]) -> ShapePlan | None:
    """Plan for httplog and tcplog lines with the syslog header most sample lines have,
    which checks each line with one capture-free expression and then reads each field at
    its token position, as the full plan's fast path does."""
    chosen = _shape_form(sample)
    if chosen is None:
        return None
    pattern, tokens, date_format = chosen
    client = str(tokens + 1)
    if _SYSLOG_TIME in pattern:
        client = f"CASE WHEN _s[2] = '' THEN {tokens + 2} ELSE {tokens + 1} END"
    # The request is the last three tokens, and it holds the only quotes of the line.
    extracts = (
        ("_valid", f"regexp_full_match(line, {sql.quote(pattern)})"),
        ("_s", "string_split(line, ' ')"),
        # _c: token index of the client. httplog lines end with the request's quote,
        # tcplog lines with the queue counters; for HTTP the bytes, termination state and
        # counters come one token later than for TCP.
        ("_c", client),
        ("_http", "ends_with(line, '\"')"),
        ("_client", "_s[_c]"),
        ("_colon", "strpos(reverse(_client), ':')"),
        ("_route", "_s[_c + 3]"),
        ("_server", "_route[strpos(_route, '/') + 1:]"),
        ("_reached", "_server NOT IN ('<NOSRV>', '<STATS>')"),
        # Timers as TR/Tw/Tc/Tr/Ta, with NULL for the two a tcplog line (Tw/Tc/Tt) lacks.
        # "+" marks logasap values; -1 marks a step not reached.
        ("_tl", "try_cast(string_split(_s[_c + 4], '/') AS DOUBLE[])"),
        ("_tm", "CASE WHEN _http THEN _tl ELSE [NULL, _tl[1], _tl[2], NULL, _tl[3]] END"),
        ("_status", "CASE WHEN _http THEN _s[_c + 5] END"),
        ("_code", "try_cast(_status AS INTEGER)"),
        # Tr >= 0: the server's response headers arrived, so the status is the server's.
        ("_responded", "_tm[4] >= 0"),
        ("_term", "CASE WHEN _http THEN _s[_c + 9] ELSE _s[_c + 6] END"),
        (
            "_retries",
            "split_part(CASE WHEN _http THEN _s[_c + 10] ELSE _s[_c + 7] END, '/', 5)",
        ),
        # The first "{" of the line opens the header blocks when they follow the queue
        # counters; the request headers are the first block.
        (
            "_headers",
            "CASE WHEN _http AND starts_with(_s[_c + 12], '{') "
            "THEN split_part(split_part(line, '{', 2), '}', 1) END",
        ),
        ("_target", "CASE WHEN _http THEN _s[-2] END"),
        ("_mark", "strpos(_target, '?')"),
    )
    # "-1" is the status of a request that got no answer.
    status = "CASE WHEN _status <> '-1' THEN _code END"
    columns = {
        # The pattern fixes the date form, so one format reads it.
        "ts": sql.local_time("_s[_c + 1]", (date_format,), options.timezone),
        "lb": "CASE WHEN _http THEN 'haproxy-http' ELSE 'haproxy-tcp' END",
        "frontend": (
            "CASE WHEN ends_with(_s[_c + 2], '~') THEN rtrim(_s[_c + 2], '~') ELSE _s[_c + 2] END"
        ),
        "pool": "split_part(_route, '/', 1)",
        "server": "CASE WHEN _reached THEN _server END",
        "status": status,
        "upstream_status": f"CASE WHEN _responded THEN {status} END",
        "lb_error": f"_server = '<NOSRV>' OR left(_term, 1) IN {_LB_CAUSES}",
        "time_total_ms": "CASE WHEN _tm[5] >= 0 THEN _tm[5] END",
        "time_queue_ms": "CASE WHEN _tm[2] >= 0 THEN _tm[2] END",
        "time_connect_ms": "CASE WHEN _tm[3] >= 0 THEN _tm[3] END",
        "time_response_ms": "CASE WHEN _tm[4] >= 0 THEN _tm[4] END",
        "bytes": "try_cast(CASE WHEN _http THEN _s[_c + 6] ELSE _s[_c + 5] END AS BIGINT)",
        "client_ip": "left(_client, length(_client) - _colon)",
        "client_port": "try_cast(right(_client, _colon - 1) AS INTEGER)",
        "forwarded_for": (
            f"nullif(regexp_extract(nullif(_headers, ''), {sql.quote(_XFF_IN_HEADERS)}, 1), '')"
        ),
        "method": "CASE WHEN _http THEN _s[-3][2:] END",
        "path": "split_part(_target, '?', 1)",
        "query": "CASE WHEN _mark > 0 THEN substr(_target, _mark + 1) END",
        "protocol": "CASE WHEN _http THEN left(_s[-1], length(_s[-1]) - 1) END",
        "termination": "_term",
        "retries": "try_cast(_retries AS INTEGER)",
        "redispatched": "starts_with(_retries, '+')",
        "attempts": "CASE WHEN _reached THEN [_server] END",
        "attempt_statuses": "CASE WHEN _reached AND _responded THEN [_code] END",
        "captured_request_headers": "string_split(nullif(_headers, ''), '|')",
    }
    return ShapePlan(extracts=extracts, columns=columns, accept="_valid AND ts IS NOT NULL")


FORMAT = LogFormat(
    name="haproxy",
    description="HAProxy option httplog, httpslog and tcplog lines, any syslog header",
    # Event lines count too, so a file of "Connect from" lines is still recognised.
    detect=regex_detector(f"(?:{PATTERN})|(?:{EVENT_PATTERN})"),
    plan=plan,
    lb_names=("haproxy-http", "haproxy-tcp"),
    shape=shape,
)
