"""Split HAProxy configuration files into lines of words, as HAProxy 2.6 reads them.

The rules follow ``parse_line()`` in HAProxy 2.6 ``src/tools.c`` and ``readcfgfile()`` in
``src/cfgparse.c``:

- ``#`` outside quotes starts a comment; ``\\r`` and ``\\n`` end the line (CRLF files work).
- Double quotes group words and allow ``\\"``, ``\\\\``, ``\\ ``, ``\\#``, ``\\t``,
  ``\\n``, ``\\r``, ``\\xNN`` and ``\\$``; single quotes are literal.
- Outside single quotes, a backslash escapes the same characters; any other backslash is kept.
- Environment variables (``$VAR``, ``${VAR}``, ``${VAR-default}``) are expanded by HAProxy
  only inside double quotes. lbguard keeps their text as written and lists their names on the
  line, so that callers can report them as unevaluated where they matter.
- There is no line continuation: a trailing backslash stays a word of its own.
- ``.if``/``.elif``/``.else``/``.endif`` blocks and ``.notice``/``.warning``/``.alert``/
  ``.diag`` directives are handled here.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from lbguard.model import Diagnostic, Location, Severity
from lbguard.parsers.files import read_config_file

MAX_LINE_ARGS = 64
"""Maximum words on one line (HAProxy 2.6 ``MAX_LINE_ARGS`` in ``include/haproxy/defaults.h``)."""

HAPROXY_VERSION = (2, 6, 0)
"""HAProxy version whose semantics lbguard models; ``.if version_atleast()`` compares with it."""

_ENV_NAME = re.compile(r"[A-Za-z_.][A-Za-z0-9_]*")


@dataclass(frozen=True)
class ConfigLine:
    """One non-empty configuration line split into words."""

    location: Location
    words: tuple[str, ...]
    text: str
    """The line as written, without its comment, line ending and surrounding blanks."""

    env_vars: tuple[str, ...] = ()
    """Environment variables referenced inside double quotes, kept unexpanded in ``words``."""

    unquoted_vars: tuple[str, ...] = ()
    """``${NAME}`` references outside double quotes, which HAProxy keeps as literal text."""

    def word(self, index: int) -> str:
        """Return word ``index``, or an empty string past the end (as HAProxy's ``args``)."""
        return self.words[index] if index < len(self.words) else ""


@dataclass
class _Words:
    """Words being built by `split_words` for one line."""

    words: list[str] = field(default_factory=list)
    current: list[str] = field(default_factory=list)
    started: bool = False
    env_vars: list[str] = field(default_factory=list)
    unquoted_vars: list[str] = field(default_factory=list)
    end: int = 0
    """Position where the line's content ends: its length, or where a comment starts."""

    def add(self, text: str) -> None:
        self.current.append(text)
        self.started = True

    def end_word(self) -> None:
        if self.started:
            self.words.append("".join(self.current))
        self.current = []
        self.started = False


class LineError(ValueError):
    """A line HAProxy rejects as a whole (unmatched quote, bad escape...)."""

    def __init__(self, message: str, position: int) -> None:
        super().__init__(message)
        self.message = message
        self.position = position
        """1-based column of the offending character."""


_SIMPLE_ESCAPES = {" ": " ", "\\": "\\", "t": "\t", "n": "\n", "r": "\r"}

_SPECIAL = re.compile(r"[\"'\\$#\r\n]")
"""Characters that quote, escape, reference a variable, start a comment or end the line.
Up to the first of them, a line splits on whitespace alone."""

_LINE_END = frozenset("#\r\n")


def split_words(line: str) -> _Words:
    """Split one line into words and the environment variables it references.

    Raise `LineError` with HAProxy's wording for an unmatched quote or brace, an invalid
    variable name or a truncated ``\\x`` sequence.
    """
    plain = _split_plain(line)
    if plain is None:
        return scan_words(line)
    words, end = plain
    return _Words(words=words, end=end)


def _split_plain(line: str) -> tuple[list[str], int] | None:
    """Return the words and content end of a line with no quote, escape or variable
    before its comment or line end; None for any other line.

    Such a line splits on whitespace exactly as `scan_words` splits it, because
    ``str.split`` and ``str.isspace`` use the same whitespace set.
    """
    special = _SPECIAL.search(line)
    if special is None:
        return line.split(), len(line)
    end = special.start()
    if line[end] in _LINE_END:
        return line[:end].split(), end
    return None


def scan_words(line: str) -> _Words:
    """Split one line character by character; `split_words` without its fast path."""
    out = _Words()
    squote = dquote = False
    quote_at = -1
    i = 0
    n = len(line)
    while i < n:
        c = line[i]
        if c in "\r\n":
            break
        if c == "#" and not squote and not dquote:
            break
        if c == '"' and not squote:
            dquote = not dquote
            quote_at = i if dquote else -1
            out.started = True
            i += 1
            continue
        if c == "'" and not dquote:
            squote = not squote
            quote_at = i if squote else -1
            out.started = True
            i += 1
            continue
        if c == "\\" and not squote:
            i = _escape(line, i, dquote, out)
            continue
        if c.isspace() and not squote and not dquote:
            out.end_word()
            while i < n and line[i].isspace() and line[i] not in "\r\n":
                i += 1
            continue
        if c == "$" and dquote:
            i = _variable(line, i, out)
            continue
        if c == "$" and not squote and line.startswith("{", i + 1):
            end = line.find("}", i)
            out.unquoted_vars.append(line[i : end + 1] if end > 0 else line[i:])
        out.add(c)
        i += 1

    if quote_at >= 0:
        raise LineError("unmatched quote", quote_at + 1)
    out.end_word()
    out.end = i
    return out


def _escape(line: str, i: int, dquote: bool, out: _Words) -> int:
    """Emit the escape sequence at ``line[i]`` (a backslash); return the next position."""
    nxt = line[i + 1] if i + 1 < len(line) else ""
    if nxt in _SIMPLE_ESCAPES and nxt:
        out.add(_SIMPLE_ESCAPES[nxt])
        return i + 2
    if nxt in ("#", "'", '"'):
        out.add(nxt)
        return i + 2
    if nxt == "$" and dquote:
        out.add("$")
        return i + 2
    if nxt == "x":
        digits = line[i + 2 : i + 4]
        if len(digits) != 2 or not all(d in "0123456789abcdefABCDEF" for d in digits):
            raise LineError("truncated or invalid hexadecimal sequence", i + 1)
        out.add(chr(int(digits, 16)))
        return i + 4
    out.add("\\")
    return i + 1


def _variable(line: str, i: int, out: _Words) -> int:
    """Keep the environment variable reference at ``line[i]`` (a ``$``) as written."""
    start = i
    i += 1
    brace = i < len(line) and line[i] == "{"
    if brace:
        i += 1
    match = _ENV_NAME.match(line, i)
    if match is None:
        raise LineError("forbidden first char in environment variable name", i + 1)
    out.env_vars.append(match.group())
    i = match.end()
    if brace:
        if line.startswith("[*]", i):
            i += 3
        if i < len(line) and line[i] == "-":
            i = line.find("}", i)
            if i < 0:
                raise LineError("unmatched brace in environment variable name", start + 2)
        if i >= len(line) or line[i] != "}":
            raise LineError("unmatched brace in environment variable name", start + 2)
        i += 1
    out.add(line[start:i])
    return i


# --------------------------------------------------------------------------------------
# Files


def list_config_files(paths: list[Path]) -> tuple[list[Path], list[str]]:
    """Expand directories as ``haproxy -f DIR`` does; return files and missing paths.

    HAProxy 2.6 (``src/haproxy.c``) reads a directory's regular files whose name does not
    start with a dot and whose first ``.cfg`` ends the name, in byte order (``alphasort``).
    """
    files: list[Path] = []
    missing: list[str] = []
    for path in paths:
        if path.is_dir():
            entries = sorted(path.iterdir(), key=lambda entry: entry.name.encode())
            files.extend(entry for entry in entries if _is_dir_config(entry))
        elif path.is_file():
            files.append(path)
        else:
            missing.append(str(path))
    return files, missing


def _is_dir_config(entry: Path) -> bool:
    name = entry.name
    at = name.find(".cfg")
    return not name.startswith(".") and at >= 0 and at + 4 == len(name) and entry.is_file()


@dataclass
class _Conditions:
    """State of nested ``.if`` blocks: one entry per level."""

    levels: list[tuple[bool, bool, bool, Location]] = field(default_factory=list)
    """(this branch active, some branch already taken, ``.else`` seen, ``.if`` location)."""

    @property
    def active(self) -> bool:
        return all(level[0] for level in self.levels)


def read_lines(path: Path, display: str, diagnostics: list[Diagnostic]) -> Iterator[ConfigLine]:
    """Yield the words of every line of one file that HAProxy would parse.

    Problems go to ``diagnostics`` in HAProxy's wording; the line is then skipped as HAProxy
    skips it, and reading goes on.
    """
    raw = read_config_file(path).decode("utf-8", errors="surrogateescape")
    lines = raw.split("\n")
    if lines and lines[-1] == "":
        lines.pop()
    elif lines:
        last = Location(display, len(lines))
        diagnostics.append(
            Diagnostic(
                Severity.ERROR,
                f"parsing [{last.file}:{last.line}]: Missing LF on last line, file might "
                f"have been truncated at position {len(lines[-1]) + 1}.",
                last,
                hint="end the file with a newline; HAProxy 2.6 rejects the last line otherwise",
                code="syntax",
            )
        )
    conditions = _Conditions()
    for number, line in enumerate(lines, start=1):
        stripped = line.lstrip()
        if not stripped:
            continue
        location = Location(display, number)
        env_vars: tuple[str, ...] = ()
        unquoted_vars: tuple[str, ...] = ()
        plain = _split_plain(stripped)
        if plain is not None:
            word_list, end = plain
        else:
            try:
                split = scan_words(stripped)
            except LineError as error:
                error.position += len(line) - len(stripped)
                diagnostics.append(_line_error(location, error, line.rstrip("\r").strip()))
                continue
            word_list, end = split.words, split.end
            env_vars, unquoted_vars = tuple(split.env_vars), tuple(split.unquoted_vars)
        if not word_list:
            continue
        words = tuple(word_list)
        text = stripped[:end].strip()
        if words[0].startswith("."):
            directive = ConfigLine(location, words, text, env_vars)
            _directive(directive, conditions, diagnostics)
            continue
        if conditions.levels and not conditions.active:
            continue
        if len(words) > MAX_LINE_ARGS:
            diagnostics.append(
                Diagnostic(
                    Severity.ERROR,
                    f"parsing [{location.file}:{location.line}]: too many words, truncating "
                    f"after word {MAX_LINE_ARGS}",
                    location,
                    hint="split the line; HAProxy 2.6 rejects it",
                    code="syntax",
                )
            )
            continue
        if words[-1] == "\\" or words[-1].endswith("\\"):
            diagnostics.append(
                Diagnostic(
                    Severity.WARNING,
                    f"parsing [{location.file}:{location.line}]: trailing backslash: HAProxy "
                    "has no line continuation, the backslash stays part of the line",
                    location,
                    hint="join the continued line onto this one",
                    code="syntax",
                )
            )
        yield ConfigLine(location, words, text, env_vars, unquoted_vars)

    if conditions.levels:
        opened = conditions.levels[-1][3]
        diagnostics.append(
            Diagnostic(
                Severity.ERROR,
                f"parsing [{display}:{len(lines)}]: non-terminated '.if' block.",
                opened,
                hint="add the missing '.endif'",
                code="syntax",
            )
        )


def _line_error(location: Location, error: LineError, text: str) -> Diagnostic:
    return Diagnostic(
        Severity.ERROR,
        f"parsing [{location.file}:{location.line}]: {error.message} at position "
        f"{error.position}: {text}",
        location,
        hint="fix the quoting or escaping; HAProxy 2.6 ignores this whole line",
        code="syntax",
    )


def _directive(line: ConfigLine, conditions: _Conditions, diagnostics: list[Diagnostic]) -> None:
    """Apply a ``.if`` family or message directive to the block state."""
    keyword = line.words[0]
    loc = line.location
    prefix = f"parsing [{loc.file}:{loc.line}]:"
    levels = conditions.levels
    if keyword == ".if":
        value = evaluate_condition(line, diagnostics) if conditions.active else False
        levels.append((value, value, False, loc))
        return
    if keyword in (".elif", ".else", ".endif"):
        if not levels:
            diagnostics.append(
                Diagnostic(
                    Severity.ERROR,
                    f"{prefix} lone '{keyword}' with no matching '.if'.",
                    loc,
                    hint=f"remove the '{keyword}' or add the '.if' it belongs to",
                    code="syntax",
                )
            )
            return
        _active, taken, seen_else, opened = levels[-1]
        if keyword == ".endif":
            levels.pop()
            return
        if seen_else:
            diagnostics.append(
                Diagnostic(
                    Severity.ERROR,
                    f"{prefix} '{keyword}' after '.else' is not permitted.",
                    loc,
                    hint="move the branch before the '.else'",
                    code="syntax",
                )
            )
            return
        outer = all(level[0] for level in levels[:-1])
        if keyword == ".else":
            levels[-1] = (not taken, True, True, opened)
            return
        value = not taken and outer and evaluate_condition(line, diagnostics)
        levels[-1] = (value, taken or value, False, opened)
        return
    if not conditions.active:
        return
    if keyword in (".notice", ".warning", ".diag", ".alert"):
        severity = Severity.ERROR if keyword == ".alert" else Severity.INFO
        if keyword == ".warning":
            severity = Severity.WARNING
        diagnostics.append(
            Diagnostic(severity, f"{prefix} '{line.word(1)}'.", loc, code="directive")
        )
        return
    diagnostics.append(
        Diagnostic(
            Severity.ERROR,
            f"{prefix} unknown directive '{keyword}'.",
            loc,
            hint="HAProxy 2.6 knows .if, .elif, .else, .endif, .notice, .warning, .alert "
            "and .diag",
            code="syntax",
        )
    )


_PREDICATE = re.compile(r"^([a-z_]+)\((.*)\)$")


def evaluate_condition(line: ConfigLine, diagnostics: list[Diagnostic]) -> bool:
    """Evaluate a ``.if`` or ``.elif`` condition; unknown terms read as true and are reported.

    Numbers and ``version_atleast``/``version_before`` (against HAProxy 2.6) are exact, as are
    ``streq``/``strneq`` on literal text. ``defined()``, ``feature()`` and the OpenSSL
    predicates depend on the machine that runs HAProxy, so they count as true.
    """
    terms = list(line.words[1:])
    result_any = False
    group = True
    for word in [*terms, "||"]:
        if word in ("||", "or"):
            result_any = result_any or group
            group = True
            continue
        if word in ("&&", "and"):
            continue
        group = group and _evaluate_term(word, line, diagnostics)
    return result_any


def _evaluate_term(word: str, line: ConfigLine, diagnostics: list[Diagnostic]) -> bool:
    negate = False
    while word.startswith("!"):
        negate = not negate
        word = word[1:]
    if re.fullmatch(r"-?\d+", word):
        return (int(word) != 0) != negate
    match = _PREDICATE.match(word)
    if match is None:
        value = bool(word)
        return value != negate
    name, argument = match.group(1), match.group(2)
    args = [part.strip() for part in argument.split(",")]
    if name in ("version_atleast", "version_before"):
        version = _version_tuple(args[0])
        atleast = version <= HAPROXY_VERSION
        value = atleast if name == "version_atleast" else not atleast
        return value != negate
    if name in ("streq", "strneq") and len(args) == 2 and not line.env_vars:
        equal = args[0] == args[1]
        return (equal if name == "streq" else not equal) != negate
    diagnostics.append(
        Diagnostic(
            Severity.INFO,
            f"'.if' term '{word}' depends on the machine that runs HAProxy; the block is read "
            "as if it were true",
            line.location,
            hint="lbguard analyses the lines inside the block; check they apply to your build",
            code="unevaluated",
        )
    )
    return True


def _version_tuple(text: str) -> tuple[int, ...]:
    parts = re.findall(r"\d+", text)
    return tuple(int(part) for part in parts[:3]) or (0,)
