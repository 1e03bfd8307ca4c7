"""HAProxy lines split by string functions must read exactly as the capturing pattern reads
them, and lines outside the narrower shape must still be read through the pattern."""

from __future__ import annotations

from typing import Any

import duckdb
from hypothesis import given, settings
from hypothesis import strategies as st

from lbguard.logs import haproxy, load_logs
from lbguard.logs import sqlparts as sql
from lbguard.logs.interface import ParseOptions

from .conftest import DATA, rows_by_line


def both_paths(lines: list[str]) -> list[tuple[bool, Any, Any]]:
    """Return (fast path taken, fast struct, capture struct) for each line."""
    extracts = dict(haproxy.plan(ParseOptions()).extracts)
    prefix = sql.quote("^" + haproxy.SYSLOG_PREFIX)
    body = f"substr(line, length(regexp_extract(line, {prefix})) + 1)"
    capture = sql.extract(body, haproxy.BODY_PATTERN, haproxy.NAMES)
    con = duckdb.connect()
    con.execute("CREATE TABLE t (n INTEGER, line VARCHAR)")
    con.executemany("INSERT INTO t VALUES (?, ?)", list(enumerate(lines)))
    query = (
        f"SELECT fast, CASE WHEN fast THEN {haproxy.fast_fields()} END, {capture} FROM ("
        f"SELECT *, {extracts['c']} AS c FROM (SELECT *, {extracts['s']} AS s FROM ("
        f"SELECT n, line, {extracts['fast']} AS fast FROM t))) ORDER BY n"
    )
    return [(bool(fast), quick, slow) for fast, quick, slow in con.execute(query).fetchall()]


def test_fast_path_matches_capture_on_samples():
    lines = [
        line.rstrip("\n")
        for path in sorted((DATA / "haproxy").iterdir())
        for line in path.read_text().splitlines()
    ]
    results = both_paths(lines)
    fast = [(quick, slow) for taken, quick, slow in results if taken]
    valid = [slow for _, _, slow in results if slow is not None and slow["client"] != ""]
    assert len(fast) == len(valid)
    for quick, slow in fast:
        assert quick == slow


PREFIXES = st.sampled_from(
    [
        "",
        "haproxy[674]: ",
        "Feb  6 12:14:14 localhost haproxy[14389]: ",
        "Dec 10 12:01:46 haproxy[19312]: ",
        "<134>1 2019-01-07T13:35:02+00:00 ingress-7d5 ingress 44 - - ",
    ]
)
TIMER = st.sampled_from(["-1", "0", "7", "5007"])
NAME = st.from_regex(r"[a-z][a-z0-9_.~-]{0,8}", fullmatch=True)
HEADER = st.from_regex(r"[A-Za-z0-9 ./:;()|-]{0,20}", fullmatch=True)


@st.composite
def httplog_lines(draw: st.DrawFn) -> str:
    client = draw(st.sampled_from(["10.0.1.2", "::1", "2001:db8::7", "-"]))
    timers = "/".join(draw(TIMER) for _ in range(4)) + "/" + draw(st.sampled_from(["", "+"]))
    timers += draw(TIMER)
    status = draw(st.sampled_from(["200", "503", "-1"]))
    size = draw(st.sampled_from(["0", "2750", "+350"]))
    retries = draw(st.sampled_from(["0", "3", "+1"]))
    blocks = draw(st.lists(HEADER, max_size=2))
    headers = "".join(f" {{{block}}}" for block in blocks)
    request = draw(st.sampled_from(["", "GET /", "GET /a?b=1&c HTTP/1.1", "POST /x{y} HTTP/2"]))
    tls = draw(st.sampled_from(["", " 0/0/0/0/0 1wt.eu/TLSv1.3/TLS_AES_256_GCM_SHA384"]))
    server = draw(st.sampled_from(["srv1", "<NOSRV>", "10.244.13.99:8000"]))
    return (
        f"{draw(PREFIXES)}{client}:{draw(st.integers(1, 65535))} "
        f"[06/Feb/2009:12:14:14.655] {draw(NAME)} {draw(NAME)}/{server} {timers} {status} "
        f"{size} - - {draw(st.sampled_from(['----', 'SC--', 'PH--']))} "
        f'1/1/1/1/{retries} 0/0{headers} "{request}"{tls}'
    )


@st.composite
def tcplog_lines(draw: st.DrawFn) -> str:
    timers = f"{draw(TIMER)}/{draw(TIMER)}/{draw(st.sampled_from(['', '+']))}{draw(TIMER)}"
    return (
        f"{draw(PREFIXES)}10.0.1.2:{draw(st.integers(1, 65535))} "
        f"[06/Feb/2009:12:12:51.443] {draw(NAME)} {draw(NAME)}/srv1 {timers} "
        f"{draw(st.sampled_from(['212', '+0']))} {draw(st.sampled_from(['--', 'cD']))} "
        f"0/0/0/0/{draw(st.sampled_from(['0', '3', '+2']))} 0/0"
    )


@settings(max_examples=60, deadline=None)
@given(st.lists(st.one_of(httplog_lines(), tcplog_lines()), min_size=1, max_size=20))
def test_fast_path_matches_capture_on_generated_lines(lines):
    for line, (taken, quick, slow) in zip(lines, both_paths(lines), strict=True):
        assert taken, line
        assert slow["client"] != "", line
        assert quick == slow, line


def test_lines_outside_fast_shape_use_capture(tmp_path):
    good = (DATA / "haproxy/haproxy-doc-configuration-txt-examples.log").read_text()
    template = good.splitlines()[2]
    lines = [
        # A quote inside a captured header.
        template.replace("{1wt.eu}", '{1wt.eu|say "hi"}'),
        # A port that contains a colon: the capture splits at the last possible colon.
        template.replace("10.0.1.2:33317", "10.0.1.2:33317:"),
        # A request line without its closing quote.
        template.removesuffix('"'),
    ]
    assert [taken for taken, _, _ in both_paths(lines)] == [False, False, False]
    path = tmp_path / "odd.log"
    path.write_text("\n".join(lines) + "\n")
    load = load_logs([str(path)], log_format="haproxy")
    rows = rows_by_line(load)
    assert load.files[0].parsed == 3
    assert rows[("odd.log", 1)]["captured_request_headers"] == ["1wt.eu", 'say "hi"']
    assert rows[("odd.log", 2)]["client_ip"] == "10.0.1.2"
    assert rows[("odd.log", 2)]["client_port"] is None
    assert rows[("odd.log", 3)]["path"] == "/index.html"
    assert rows[("odd.log", 3)]["protocol"] == "HTTP/1.1"


def test_line_numbers_with_blank_and_bad_lines(tmp_path):
    template = (DATA / "haproxy/haproxy-doc-configuration-txt-examples.log").read_text()
    good = template.splitlines()[2]
    lines = []
    for number in range(1, 120_001):
        if number % 997 == 0:
            lines.append("")
        elif number % 25_013 == 0:
            lines.append("not a log line")
        else:
            lines.append(good.replace("33317", str(number)))
    path = tmp_path / "numbered.log"
    path.write_text("\n".join(lines) + "\n")
    load = load_logs([str(path)])
    stats = load.files[0]
    wrong = load.con.execute(
        "SELECT count(*) FROM requests WHERE client_port <> source_line"
    ).fetchone()[0]
    assert stats.lines == 120_000
    assert stats.skipped == 120
    assert stats.malformed == 4
    assert [sample.line for sample in stats.samples] == [25_013, 50_026, 75_039, 100_052]
    assert stats.parsed == 120_000 - 124
    assert wrong == 0
