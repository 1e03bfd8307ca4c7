"""Reading sources: compression, globs, stdin, malformed lines and line numbers."""

from __future__ import annotations

import gzip
import json
import shutil
import subprocess
import sys

import pytest
import zstandard

from lbguard.errors import LogError
from lbguard.logs import list_formats, load_logs, parse_field_map

from .conftest import DATA, rows_by_line

DOC = DATA / "haproxy/haproxy-doc-configuration-txt-examples.log"


def test_gzip_and_zstd_match_plain(tmp_path):
    raw = DOC.read_bytes()
    (tmp_path / "a.log.gz").write_bytes(gzip.compress(raw))
    (tmp_path / "b.log.zst").write_bytes(zstandard.ZstdCompressor().compress(raw))
    load = load_logs([str(tmp_path / "a.log.gz"), str(tmp_path / "b.log.zst")])
    assert [stats.parsed for stats in load.files] == [14, 14]
    rows = rows_by_line(load)
    assert rows[("a.log.gz", 3)]["server"] == "srv1"
    assert rows[("b.log.zst", 16)]["status"] == 503


def test_glob_reads_files_in_order(tmp_path):
    for name in ("x1.log", "x2.log"):
        shutil.copy(DOC, tmp_path / name)
    load = load_logs([str(tmp_path / "x*.log")])
    assert [stats.file.rsplit("/", 1)[-1] for stats in load.files] == ["x1.log", "x2.log"]
    assert load.parsed == 28


def test_glob_without_match_raises(tmp_path):
    with pytest.raises(LogError, match="no file matches"):
        load_logs([str(tmp_path / "none*.log")])


def test_missing_file_raises(tmp_path):
    with pytest.raises(LogError, match="not found"):
        load_logs([str(tmp_path / "missing.log")])


def test_stdin_in_subprocess():
    code = (
        "from lbguard.logs import load_logs; l = load_logs(['-']); "
        "print(l.files[0].file, l.files[0].parsed, "
        "l.con.execute('select server from requests where source_line = 3').fetchone()[0])"
    )
    result = subprocess.run(
        [sys.executable, "-c", code],
        input=DOC.read_bytes(),
        capture_output=True,
        check=True,
        timeout=60,
    )
    assert result.stdout.decode().split() == ["-", "14", "srv1"]


def test_malformed_lines_counted_with_samples(tmp_path):
    good = DOC.read_text().splitlines()[2]
    lines = [
        good,
        good[:60],  # truncated
        good.replace("06/Feb/2009", "36/Feb/2009"),  # bad date
        "garbage \x00 text",
        "",
        good,
    ]
    path = tmp_path / "mixed.log"
    path.write_text("\n".join(lines) + "\n")
    load = load_logs([str(path)], log_format="haproxy")
    stats = load.files[0]
    assert stats.lines == 6
    assert stats.parsed == 2
    assert stats.malformed == 3
    assert stats.skipped == 1
    assert [sample.line for sample in stats.samples] == [2, 3, 4]
    assert stats.samples[1].reason == "invalid date in brackets"
    assert stats.samples[0].file == str(path)
    assert sorted(line for _, line in rows_by_line(load)) == [1, 6]


def test_invalid_utf8_falls_back_to_latin1(tmp_path):
    good = DOC.read_text().splitlines()[2].encode()
    path = tmp_path / "bytes.log"
    path.write_bytes(good + b"\n" + good.replace(b"index", b"ind\xffx") + b"\n")
    load = load_logs([str(path)])
    assert load.files[0].encoding == "latin-1"
    assert load.files[0].parsed == 2


def test_line_numbers_survive_parallel_scan(tmp_path):
    template = DOC.read_text().splitlines()[2]
    lines = [template.replace("33317", str(10000 + i % 50000)) for i in range(200_000)]
    path = tmp_path / "big.log"
    path.write_text("\n".join(lines) + "\n")
    load = load_logs([str(path)])
    wrong = load.con.execute(
        "SELECT count(*) FROM requests WHERE client_port <> 10000 + (source_line - 1) % 50000"
    ).fetchone()[0]
    assert load.files[0].parsed == 200_000
    assert wrong == 0


def test_nginx_log_format_option(tmp_path):
    fmt = '$remote_addr [$time_local] "$request" $status $upstream_addr $upstream_status'
    path = tmp_path / "custom.log"
    path.write_text(
        '10.1.1.1 [07/Feb/2020:11:48:51 +0000] "GET /a?b=1 HTTP/1.1" 502 '
        "10.0.0.1:80, 10.0.0.2:80 : 10.0.1.1:80 502, 504 : -\n"
    )
    load = load_logs([str(path)], nginx_log_format=fmt)
    row = rows_by_line(load)[("custom.log", 1)]
    assert load.files[0].log_format == "nginx"
    assert row["attempts"] == ["10.0.0.1:80", "10.0.0.2:80", "10.0.1.1:80"]
    assert row["attempt_statuses"] == [502, 504, None]
    assert row["server"] == "10.0.1.1:80"
    assert row["upstream_status"] is None
    assert row["lb_error"] is True
    assert row["retries"] == 2
    assert row["query"] == "b=1"


def test_json_field_map(tmp_path):
    path = tmp_path / "app.jsonl"
    records = [
        {"time": "2024-01-01T00:00:00Z", "upstream": "10.0.0.1:80", "code": 200},
        {"time": "2024-01-01T00:00:01Z", "upstream": "10.0.0.2:80", "code": 503},
    ]
    path.write_text("\n".join(json.dumps(r) for r in records) + "\nnot json\n")
    mapping = parse_field_map("server=upstream,status=code,ts=time")
    load = load_logs([str(path)], log_format="json", field_map=mapping)
    rows = rows_by_line(load)
    assert rows[("app.jsonl", 2)]["server"] == "10.0.0.2:80"
    assert rows[("app.jsonl", 2)]["status"] == 503
    assert load.files[0].malformed == 1


def test_field_map_rejects_unknown_column():
    with pytest.raises(LogError, match="unknown column"):
        parse_field_map("backend=upstream")


def test_unknown_timezone_raises():
    with pytest.raises(LogError, match="time zone"):
        load_logs([str(DOC)], timezone="Mars/Olympus")


def test_list_formats_names():
    names = [name for name, _ in list_formats()]
    assert names[:2] == ["haproxy", "nginx"]
    assert "aws-alb" in names
    assert "json" in names
