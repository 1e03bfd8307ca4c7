"""Hostile input: overlong lines and NUL-only files."""

from __future__ import annotations

import pytest

from lbguard.errors import LogError
from lbguard.logs import load_logs
from lbguard.logs.reading import MAX_LINE_BYTES

LINE = '127.0.0.1 - - [10/Oct/2023:13:55:36 +0000] "GET /a HTTP/1.1" 200 5 "-" "c"'


def test_overlong_line_is_malformed_and_rest_is_read(tmp_path):
    path = tmp_path / "long.log"
    with path.open("w") as handle:
        handle.write(LINE + "\n")
        handle.write("x" * (3 << 20) + "\n")
        handle.write(LINE + "\n")
        handle.write("y" * (MAX_LINE_BYTES + 1000) + "\n")
        handle.write(LINE + "\n")
    load = load_logs([str(path)])
    stats = load.files[0]
    assert stats.lines == 5
    assert stats.parsed == 3
    assert stats.malformed == 2
    assert [sample.line for sample in stats.samples] == [2, 4]
    assert "longer than 16 MiB" in stats.samples[1].reason
    lines = load.con.execute("SELECT source_line FROM requests ORDER BY 1").fetchall()
    assert [line for (line,) in lines] == [1, 3, 5]


def test_nul_only_file_is_named_binary(tmp_path):
    path = tmp_path / "sparse.log"
    with path.open("wb") as handle:
        handle.truncate(64 << 20)
    with pytest.raises(LogError) as caught:
        load_logs([str(path)])
    assert "binary file" in str(caught.value)
    assert "sparse.log" in str(caught.value)


def test_bare_cr_stays_inside_its_line(tmp_path):
    path = tmp_path / "cr.log"
    broken = LINE.replace('"c"', '"a\rb"')
    path.write_bytes(f"{LINE}\r\n{broken}\n{LINE}\n".encode())
    load = load_logs([str(path)])
    stats = load.files[0]
    assert stats.lines == 3
    assert stats.parsed == 3
    assert stats.malformed == 0
    lines = load.con.execute("SELECT source_line FROM requests ORDER BY 1").fetchall()
    assert [line for (line,) in lines] == [1, 2, 3]


def test_existing_name_with_brackets_is_read_literally(tmp_path):
    path = tmp_path / "access[1].log"
    path.write_text(LINE + "\n")
    load = load_logs([str(path)])
    assert load.parsed == 1


@pytest.mark.parametrize(
    ("target", "words"), [("dir", "is a directory"), ("/dev/zero", "not a regular file")]
)
def test_non_file_is_named_for_what_it_is(tmp_path, target, words):
    name = str(tmp_path) if target == "dir" else target
    with pytest.raises(LogError) as caught:
        load_logs([name])
    assert words in str(caught.value)
