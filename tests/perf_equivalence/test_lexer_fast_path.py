"""The lexer's whitespace fast path splits every line as the character scanner does."""

from __future__ import annotations

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from lbguard.model import Diagnostic
from lbguard.parsers.haproxy.lexer import LineError, _Words, read_lines, scan_words, split_words

WHITESPACE = " \t\x0b\x0c\x1c\x1d\x1e\x1f\x85\xa0\u1680\u2000\u2028\u3000"
SPECIAL = "\"'\\#$\r\n{}x"

line_text = st.text(
    alphabet=st.sampled_from([*WHITESPACE, *SPECIAL, "a", "B", "/", "é", "\udc80"]),
    max_size=40,
)


def outcome(split: object, line: str) -> tuple[object, ...]:
    """Return what a splitter produces for *line*: its words and lists, or its error."""
    try:
        words: _Words = split(line)  # type: ignore[operator]
    except LineError as error:
        return ("error", error.message, error.position)
    return ("words", words.words, words.end, words.env_vars, words.unquoted_vars)


@given(line_text)
@settings(max_examples=3000)
@example("    server s1 127.0.0.1:80 check weight 10")
@example("acl a path_beg /x # comment 'quoted'")
@example("bind :80\r")
@example("   \x1c  a\x85b  ")
def test_split_words_equals_scan(line: str) -> None:
    assert outcome(split_words, line) == outcome(scan_words, line)


def test_split_and_isspace_agree_on_every_code_point() -> None:
    # The fast path relies on str.split() breaking exactly where str.isspace() is true.
    disagreeing = [
        code
        for code in range(0x110000)
        if chr(code).isspace() != (len(f"a{chr(code)}b".split()) == 2)
    ]
    assert disagreeing == []


# Lines that start no ".if" block and stay under HAProxy's word limit, so that every line
# with words comes out of read_lines.
file_line = st.text(
    alphabet=st.sampled_from([*WHITESPACE, *SPECIAL, "a", "B", "/", "é"]), max_size=30
).filter(lambda line: not line.lstrip().startswith("."))


@given(st.lists(file_line, max_size=8))
@settings(max_examples=500, deadline=None)
def test_read_lines_equals_scan(
    tmp_path_factory: pytest.TempPathFactory, lines: list[str]
) -> None:
    path = tmp_path_factory.mktemp("lexer") / "haproxy.cfg"
    text = "".join(line.replace("\n", "") + "\n" for line in lines)
    path.write_bytes(text.encode("utf-8", errors="surrogateescape"))

    expected = []
    for number, line in enumerate(text.split("\n")[:-1], start=1):
        stripped = line.lstrip()
        try:
            scanned = scan_words(stripped)
        except LineError:
            continue
        if scanned.words:
            content = stripped[: scanned.end].strip()
            expected.append((number, tuple(scanned.words), content, tuple(scanned.env_vars)))

    diagnostics: list[Diagnostic] = []
    actual = [
        (line.location.line, line.words, line.text, line.env_vars)
        for line in read_lines(path, "haproxy.cfg", diagnostics)
    ]
    assert actual == expected
