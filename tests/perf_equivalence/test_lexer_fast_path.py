"""The lexer's whitespace fast path splits every line as the character scanner does."""

from __future__ import annotations

from hypothesis import example, given, settings
from hypothesis import strategies as st

from lbguard.parsers.haproxy.lexer import LineError, _Words, scan_words, split_words

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
