"""The shape route must read every line it accepts exactly as the full plan reads it, and a
file read through it must give the same rows and statistics as the full plan alone."""

from __future__ import annotations

import dataclasses
import gzip
from pathlib import Path
from typing import Any

import duckdb
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from lbguard.errors import LogError
from lbguard.logs import haproxy, nginx, reading, schema, shaping
from lbguard.logs.detect import SAMPLE_LINES, strip_cri
from lbguard.logs.interface import LogFormat, ParseOptions
from lbguard.logs.reading import FileStats
from lbguard.logs.sources import LogSource, head_lines, sniff_compression

from .conftest import DATA

Row = dict[str, Any]
LINES = "SELECT unnest($lines::VARCHAR[]) AS line, unnest($lines::VARCHAR[]) AS _key"


def query_rows(con: Any, query: str, lines: list[str]) -> list[Row]:
    cursor = con.execute(query, {"lines": lines})
    names = [column[0] for column in cursor.description]
    return [dict(zip(names, values, strict=True)) for values in cursor.fetchall()]


def compare(log_format: LogFormat, lines: list[str]) -> dict[str, tuple[Row, Row]]:
    """Return {line: (shape row, full-plan row)} for every line a shape accepts.

    Each line is read with the shape built from that line alone as the sample, so every
    header and date form of the shape is tried.
    """
    assert log_format.shape is not None
    options = ParseOptions()
    con = duckdb.connect()
    con.execute("SET TimeZone = 'UTC'")
    full_query = reading.parse_query(LINES, log_format.plan(options), cri_prefix=False, name="t")
    full = {row["_key"]: row for row in query_rows(con, full_query, lines)}

    groups: dict[str, tuple[Any, list[str]]] = {}
    for line in dict.fromkeys(lines):
        shape = log_format.shape(options, [line])
        if shape is not None:
            key = repr(shape)
            groups.setdefault(key, (shape, []))[1].append(line)
    accepted: dict[str, tuple[Row, Row]] = {}
    for shape, group in groups.values():
        query = shaping.shape_query(LINES, shape, cri_prefix=False)
        for row in query_rows(con, query, group):
            if row["_accept"]:
                accepted[row["_text"]] = (row, full[row["_text"]])
    return accepted


def assert_same(accepted: dict[str, tuple[Row, Row]]) -> None:
    for line, (shaped, parsed) in accepted.items():
        assert parsed["_reason"] is None, line
        for column in shaping.SHAPE_COLUMNS:
            assert shaped[column] == parsed[column], (column, line)


def corpus_lines(folder: str) -> list[str]:
    return [
        line
        for path in sorted((DATA / folder).iterdir())
        for line in path.read_text(encoding="utf-8").splitlines()
    ]


def test_haproxy_shape_on_samples():
    lines = corpus_lines("haproxy")
    accepted = compare(haproxy.FORMAT, lines)
    assert_same(accepted)
    assert len(accepted) >= 20


def test_nginx_shape_on_samples():
    lines = corpus_lines("nginx")
    accepted = compare(nginx.FORMAT, lines)
    assert_same(accepted)
    assert len(accepted) >= 5


# Syslog headers, with and without each part, padded days and priorities.
HEADERS = st.sampled_from(
    [
        "",
        "haproxy[674]: ",
        "<134>haproxy[674]: ",
        "Feb  6 12:14:14 localhost haproxy[14389]: ",
        "Dec 10 12:01:46 haproxy[19312]: ",
        "Dec 10 12:01:46 lb-1 ",
        "Dec  4 12:01:46 ",
        "<134>Dec  4 12:01:46 lb.example.com haproxy[1]: ",
        "<134>1 2019-01-07T13:35:02+00:00 ingress-7d5 ingress 44 - - ",
        "1 2019-01-07T13:35:02Z host app 1 - - ",
        # Near misses: three blanks, missing blank, a "[" that starts a token.
        "Feb   6 12:14:14 localhost haproxy[1]: ",
        "<134>",
        "Feb  6 12:14:14 [host] haproxy[1]: ",
        "haproxy[x]: ",
    ]
)
# Values that the full plan's INTEGER casts reject (ten-digit status or Tr) make it fail
# the whole file; `test_integer_overflow_fails_both_routes` covers them.
TIMER = st.sampled_from(["-1", "0", "-0", "007", "5007", "+3", "+-1", "123456789", "x"])
NAME = st.from_regex(r"[a-z][a-z0-9_.~-]{0,8}", fullmatch=True)
HEADER_TEXT = st.sampled_from(
    [
        "",
        "1wt.eu",
        "www.example.com||Mozilla/5.0 (X11; Linux x86_64) Firefox/124.0",
        "h|203.0.113.7, 10.0.0.1|curl/8.5.0",
        "h| [2001:db8::1]:80|x",
        "h|::1|x",
        "ab:cd|x",
        "h|not an ip|1.2.3.4",
        "a{b",
        'say "hi"',
        "tab\there",
    ]
)
REQUEST = st.sampled_from(
    [
        "GET / HTTP/1.1",
        "GET /a?b=1&c HTTP/1.1",
        "POST /x?y?z= HTTP/2.0",
        "GET /a? HTTP/1.1",
        "POST /x{y} HTTP/2",
        "GET http://example.com/a?b HTTP/1.1",
        "GET /a#frag HTTP/1.1",
        "OPTIONS * HTTP/1.1",
        "GET /",
        "",
        "<BADREQ>",
        "GET  / HTTP/1.1",
        "GET\t/ HTTP/1.1",
        "GET / HTTP/1.1\t",
    ]
)
DATE = st.sampled_from(
    [
        "06/Feb/2009:12:14:14.655",
        "06/Feb/2009:12:14:14",
        "31/Feb/2009:12:14:14.655",
        "06/Feb/2009:12:14:14.65",
        "6/Feb/2009:12:14:14.655",
    ]
)


@st.composite
def httplog_lines(draw: st.DrawFn) -> str:
    client = draw(st.sampled_from(["10.0.1.2", "::1", "2001:db8::7", "-", "[::1]", "a:b"]))
    timers = "/".join(draw(TIMER) for _ in range(4)) + "/" + draw(TIMER)
    status = draw(st.sampled_from(["200", "503", "-1", "-01", "0200", "123456789", "+200"]))
    size = draw(st.sampled_from(["0", "2750", "+350", "-"]))
    retries = draw(st.sampled_from(["0", "3", "+1"]))
    blocks = draw(st.lists(HEADER_TEXT, max_size=3))
    headers = "".join(f" {{{block}}}" for block in blocks)
    tls = draw(st.sampled_from(["", "", " 0/0/0/0/0 1wt.eu/TLSv1.3/TLS_AES_256_GCM_SHA384"]))
    server = draw(st.sampled_from(["srv1", "<NOSRV>", "<STATS>", "10.244.13.99:8000"]))
    term = draw(st.sampled_from(["----", "SC--", "PH--", "sH--", "CR--", "--"]))
    return (
        f"{draw(HEADERS)}{client}:{draw(st.integers(0, 99999))} [{draw(DATE)}] "
        f"{draw(NAME)} {draw(NAME)}/{server} {timers} {status} {size} - - {term} "
        f'1/1/1/1/{retries} 0/0{headers} "{draw(REQUEST)}"{tls}'
    )


COMMON_HEADERS = st.sampled_from(
    [
        "",
        "haproxy[674]: ",
        "Feb  6 12:14:14 localhost haproxy[14389]: ",
        "Dec 10 12:01:46 haproxy[19312]: ",
        "Dec  4 12:01:46 ",
        "<134>1 2019-01-07T13:35:02+00:00 ingress-7d5 ingress 44 - - ",
    ]
)
COMMON_TIMER = st.sampled_from(["-1", "0", "7", "5007"])


@st.composite
def common_httplog_lines(draw: st.DrawFn) -> str:
    """httplog lines of the common shape only."""
    timers = "/".join(draw(COMMON_TIMER) for _ in range(4))
    timers += "/" + draw(st.sampled_from(["", "+"])) + draw(COMMON_TIMER)
    text = st.sampled_from(["", "1wt.eu", "h|203.0.113.7, 10.0.0.1|curl/8.5.0 (x y)", "::1"])
    headers = "".join(f" {{{block}}}" for block in draw(st.lists(text, max_size=2)))
    request = draw(st.sampled_from(["GET / HTTP/1.1", "GET /a?b=1&c HTTP/1.1", "PUT /x? H"]))
    return (
        f"{draw(COMMON_HEADERS)}{draw(st.sampled_from(['10.0.1.2', '::1']))}:"
        f"{draw(st.integers(0, 65535))} [{draw(st.sampled_from(DATE_FORMS))}] "
        f"{draw(NAME)} {draw(NAME)}/{draw(st.sampled_from(['srv1', '<NOSRV>']))} {timers} "
        f"{draw(st.sampled_from(['200', '503', '-1']))} {draw(st.sampled_from(['0', '+35']))} "
        f"- - {draw(st.sampled_from(['----', 'SC--', 'sH--']))} "
        f'1/1/1/1/{draw(st.sampled_from(["0", "+1"]))} 0/0{headers} "{request}"'
    )


DATE_FORMS = ["06/Feb/2009:12:14:14.655", "06/Feb/2009:12:14:14"]


@settings(max_examples=40, deadline=None)
@given(st.lists(common_httplog_lines(), min_size=1, max_size=25))
def test_shape_accepts_common_httplog(lines):
    accepted = compare(haproxy.FORMAT, lines)
    assert set(accepted) == set(lines)
    assert_same(accepted)


@st.composite
def tcplog_lines(draw: st.DrawFn) -> str:
    timers = f"{draw(TIMER)}/{draw(TIMER)}/{draw(TIMER)}"
    return (
        f"{draw(HEADERS)}10.0.1.2:{draw(st.integers(1, 65535))} [{draw(DATE)}] "
        f"{draw(NAME)} {draw(NAME)}/{draw(st.sampled_from(['srv1', '<NOSRV>']))} {timers} "
        f"{draw(st.sampled_from(['212', '+0']))} {draw(st.sampled_from(['--', 'cD', 'sD']))} "
        f"0/0/0/0/{draw(st.sampled_from(['0', '3', '+2']))} 0/0"
        f"{draw(st.sampled_from(['', '', ' ', ' extra']))}"
    )


@settings(max_examples=40, deadline=None)
@given(st.lists(st.one_of(httplog_lines(), tcplog_lines()), min_size=1, max_size=25))
def test_haproxy_shape_on_generated_lines(lines):
    assert_same(compare(haproxy.FORMAT, lines))


PLAIN_HAPROXY = (
    "Mar  1 00:00:00 lb1 haproxy[2000]: 198.51.24.19:54847 [01/Mar/2024:00:00:00.000] api~ "
    "api/api-b2 4/0/0/188/192 200 14220 - - ---- 246/46/35/13/0 0/0 "
    '{www.example.com|203.0.113.9|curl/8.5.0} {|14220} "GET /static/site.css?v=2 HTTP/1.1"',
    "<134>1 2019-01-07T13:35:02+00:00 ingress-7d5 ingress 44 - - 10.244.5.0:48548 "
    "[07/Jan/2019:13:35:02.165] fe~ be/10.244.13.99:8000 0/0/1/593/595 404 9085 - - ---- "
    '4/2/1/1/0 0/0 "GET /health/ HTTP/1.1"',
    "10.0.1.2:33313 [06/Feb/2009:12:12:51.443] fnt bck/srv1 0/0/5007 212 -- 0/0/0/0/3 0/0",
    "Aug  9 20:26:09 localhost haproxy[2022]: 127.0.0.1:34014 [09/Aug/2004:20:26:09] "
    "proxy-out proxy-out/cache1 0/0/0/162/+162 200 +350 - - ---- 0/0/0/0/+1 0/0 "
    '{fr.adserver.yahoo.co||x} {|864|private||} "GET /a HTTP/1.0"',
)


def test_shape_accepts_plain_haproxy_lines():
    accepted = compare(haproxy.FORMAT, list(PLAIN_HAPROXY))
    assert set(accepted) == set(PLAIN_HAPROXY)
    assert_same(accepted)


QUOTED = st.sampled_from(
    ["-", "", "https://www.example.com/", "a b [c] d", 'with \\"quote\\"', "back\\\\slash"]
)


@st.composite
def nginx_lines(draw: st.DrawFn) -> str:
    vhost = draw(st.sampled_from(["", "", "www.example.com ", "example.com:80 "]))
    user = draw(st.sampled_from(["-", "alice", "[x]", "-"]))
    zone = draw(st.sampled_from(["+0000", "+0200", "-0530", "+00"]))
    day = draw(st.sampled_from(["10/Oct/2000", "31/Feb/2000", "1/Oct/2000"]))
    status = draw(st.sampled_from(["200", "502", "504", "-", "abc"]))
    size = draw(st.sampled_from(["0", "2326", "-"]))
    tail = draw(
        st.sampled_from(
            [
                "",
                "",
                ' "203.0.113.5, 10.0.0.1"',
                " 89 0.001 [default-web-8080] [] 172.17.0.5:8080 59 0.000 200 abc",
                "\t",
            ]
        )
    )
    return (
        f"{vhost}{draw(st.sampled_from(['127.0.0.1', '::1', '-']))} - {user} "
        f'[{day}:13:55:36 {zone}] "{draw(REQUEST)}" {status} {size} '
        f'"{draw(QUOTED)}" "{draw(QUOTED)}"{tail}'
    )


@settings(max_examples=40, deadline=None)
@given(st.lists(nginx_lines(), min_size=1, max_size=25))
def test_nginx_shape_on_generated_lines(lines):
    assert_same(compare(nginx.FORMAT, lines))


def test_shape_accepts_plain_nginx_lines():
    lines = [
        '192.168.1.1 - - [04/Jan/2020:07:25:02 +0000] "GET /a?b=1 HTTP/1.1" 404 522 "-" '
        '"Go-http-client/1.1"',
        '0.0.0.0 - bob [18/Mar/2023:15:00:00 +0100] "POST /x HTTP/2.0" 502 0 '
        '"https://10.0.0.1/r" "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7)"',
    ]
    accepted = compare(nginx.FORMAT, lines)
    assert set(accepted) == set(lines)
    assert_same(accepted)


# Whole files: the shape route against the full plan alone.


def read_with(con: Any, path: Path, log_format: LogFormat) -> FileStats:
    source = LogSource(path.name, str(path), sniff_compression(str(path)))
    sample = head_lines(source, SAMPLE_LINES)
    return reading.read_file(
        con,
        source,
        log_format,
        ParseOptions(),
        table=schema.TABLE,
        detected=False,
        cri_prefix=strip_cri(sample)[1],
        progress=False,
        sample=sample,
    )


def new_connection(database: str = ":memory:") -> Any:
    con = duckdb.connect(database)
    con.execute("SET TimeZone = 'UTC'")
    reading.create_table(con, schema.TABLE)
    return con


def table_rows(con: Any) -> list[tuple[Any, ...]]:
    return con.execute(
        f"SELECT * FROM {schema.TABLE} ORDER BY source_file, source_line"
    ).fetchall()


def assert_same_file(path: Path, log_format: LogFormat) -> FileStats:
    shaped_con, full_con = new_connection(), new_connection()
    shaped = read_with(shaped_con, path, log_format)
    full = read_with(full_con, path, dataclasses.replace(log_format, shape=None))
    assert shaped == full
    assert table_rows(shaped_con) == table_rows(full_con)
    return shaped


def haproxy_file_lines() -> list[str]:
    """Common lines with, between them, lines of every other kind."""
    lines = []
    for number in range(1, 3001):
        line = PLAIN_HAPROXY[number % len(PLAIN_HAPROXY)]
        lines.append(
            line.replace("0/0/0/162", f"0/0/0/{number}").replace("14220 -", f"{number} -")
        )
        if number % 97 == 0:
            lines.append("")
        if number % 211 == 0:
            lines.append("Feb 25 16:19:38 192.168.4.2 haproxy[1]: Proxy prod_http_in started.")
        if number % 307 == 0:
            lines.append("garbage line")
        if number % 401 == 0:
            lines.append(line.replace('"GET', '"GET http://example.com').removesuffix('"'))
    return lines


def test_mixed_file_both_routes(tmp_path):
    path = tmp_path / "mixed.log"
    path.write_text("\n".join(haproxy_file_lines()) + "\n", encoding="utf-8")
    stats = assert_same_file(path, haproxy.FORMAT)
    assert stats.parsed > 3000
    assert stats.skipped > 40
    assert stats.malformed == 3000 // 307


def test_gzip_file_both_routes(tmp_path):
    path = tmp_path / "mixed.log.gz"
    path.write_bytes(gzip.compress(("\n".join(haproxy_file_lines()) + "\n").encode()))
    assert assert_same_file(path, haproxy.FORMAT).parsed > 3000


def test_latin1_file_both_routes(tmp_path):
    lines = haproxy_file_lines()
    lines = [line.replace("curl/8.5.0", "caf\xe9") for line in lines]
    path = tmp_path / "latin1.log"
    path.write_bytes(("\n".join(lines) + "\n").encode("latin-1"))
    stats = assert_same_file(path, haproxy.FORMAT)
    assert stats.encoding == "latin-1"


def test_cri_file_both_routes(tmp_path):
    prefix = "2024-03-01T00:00:00.123456789Z stdout F "
    lines = [prefix + line if line else line for line in haproxy_file_lines()]
    path = tmp_path / "cri.log"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    assert assert_same_file(path, haproxy.FORMAT).parsed > 3000


def test_nginx_file_both_routes(tmp_path):
    lines = corpus_lines("nginx")
    common = lines[0]
    path = tmp_path / "nginx.log"
    path.write_text("\n".join([common] * 60 + lines + [common] * 10) + "\n", encoding="utf-8")
    stats = assert_same_file(path, nginx.FORMAT)
    assert stats.parsed > 70


def test_integer_overflow_fails_both_routes(tmp_path):
    lines = haproxy_file_lines()
    lines[7] = lines[7].replace(" 200 ", " 9999999999 ")
    path = tmp_path / "overflow.log"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    for log_format in (haproxy.FORMAT, dataclasses.replace(haproxy.FORMAT, shape=None)):
        con = new_connection()
        with pytest.raises(LogError, match=r"overflow\.log: cannot read the file"):
            read_with(con, path, log_format)
        assert con.execute(f"SELECT count(*) FROM {schema.TABLE}").fetchone()[0] == 0


def test_line_numbers_after_deleted_rows(tmp_path):
    path = tmp_path / "mixed.log"
    path.write_text("\n".join(haproxy_file_lines()) + "\n", encoding="utf-8")
    con = new_connection(str(tmp_path / "requests.duckdb"))
    read_with(con, path, haproxy.FORMAT)
    con.execute(f"DELETE FROM {schema.TABLE} WHERE source_line % 3 = 0")
    con.execute("CHECKPOINT")
    second = tmp_path / "second.log"
    second.write_bytes(path.read_bytes())
    stats = read_with(con, second, haproxy.FORMAT)
    con.execute(f"DELETE FROM {schema.TABLE} WHERE source_file <> 'second.log'")
    full_con = new_connection()
    full = read_with(full_con, second, dataclasses.replace(haproxy.FORMAT, shape=None))
    assert stats == full
    assert table_rows(con) == table_rows(full_con)


def test_shape_skipped_for_unfinished_rows(tmp_path):
    path = tmp_path / "mixed.log"
    path.write_text("\n".join(haproxy_file_lines()) + "\n", encoding="utf-8")
    con = new_connection()
    con.execute(f"INSERT INTO {schema.TABLE} (lb, source_file) VALUES ('other', 'other.log')")
    stats = read_with(con, path, haproxy.FORMAT)
    unnumbered = con.execute(
        f"SELECT count(*) FROM {schema.TABLE} WHERE source_line IS NULL"
    ).fetchone()[0]
    assert not shaping.table_allows_shape(con, schema.TABLE)
    assert stats.parsed > 3000
    assert unnumbered == 1
