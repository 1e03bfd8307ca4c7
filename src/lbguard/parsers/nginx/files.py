"""Read nginx configuration files with crossplane, following ``include`` as nginx does.

crossplane lexes and parses each file. The includes are resolved here rather than by
crossplane because nginx resolves relative include paths against its prefix (the main
file's folder) and users need to map an absolute prefix such as ``/etc/nginx/`` onto a
checked-out folder. Context and argument checks reuse crossplane's directive table, which
lists the directives of stock nginx and NGINX Plus.

Which files are read:

- every path is checked with `lbguard.parsers.files.read_config_file` before crossplane
  opens it, so fifos, devices, ``/proc`` files, huge files and link loops are reported
  instead of hanging or misleading the parser;
- a relative include is read from the main file's folder, as nginx does;
- an absolute include is read when the prefix map (``--prefix-map``) maps it, or when it
  lies inside the main file's folder (checking the live ``/etc/nginx/nginx.conf``);
- any other absolute include (``/etc/nginx/mime.types`` next to a checked-out config) is
  skipped with an info diagnostic that names ``--prefix-map``. Reading this machine's
  file instead would mix the host's configuration into the one being checked; map the
  prefix onto itself (``--prefix-map /etc/nginx/=/etc/nginx/``) to read it on purpose.
"""

from __future__ import annotations

import errno
import glob
import logging
import os
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import crossplane
from crossplane.analyzer import CONTEXTS, DIRECTIVES, analyze, enter_block_ctx
from crossplane.errors import NgxParserBaseException
from crossplane.ext.lua import LuaBlockPlugin

from lbguard.model import Diagnostic, Location, Severity
from lbguard.parsers.files import ConfigFileError, read_config_file
from lbguard.parsers.nginx.includes import IncludePaths

logger = logging.getLogger(__name__)

# Lexes the bodies of ``*_by_lua_block`` directives as Lua code instead of nginx tokens.
LuaBlockPlugin().register_extension()

HTTP_FRAGMENT_DIRECTIVES = frozenset({"upstream", "server", "map", "split_clients", "geo"})
"""Top-level directives that mark a file as a fragment meant for ``include`` inside ``http``."""

MAX_INCLUDE_DEPTH = 32
"""Include nesting deeper than this is reported as a loop."""

MAX_BLOCK_DEPTH = 100
"""Blocks nested deeper than this are reported and skipped. nginx itself sets no limit,
but crossplane parses each level with one Python call and real configurations nest fewer
than ten levels."""

LUA_BLOCK_DIRECTIVES = frozenset(LuaBlockPlugin.directives)
"""``*_by_lua_block`` directives of OpenResty's lua-nginx-module, which crossplane's Lua
extension lexes but its directive table does not list."""

NGINX_ERRNO_NAMES = frozenset({errno.ENOENT, errno.EISDIR, errno.EACCES, errno.ELOOP})
"""Errors that nginx 1.22 itself reports for an include, as ``open() "FILE" failed (N: ...)``."""


@dataclass(frozen=True)
class Directive:
    """One nginx directive with its block, includes already expanded in place."""

    name: str
    args: tuple[str, ...]
    location: Location
    block: tuple[Directive, ...] | None = None
    """Directives inside ``{ }``; None when the directive ends with ``;``."""

    @property
    def text(self) -> str:
        """The directive as written, on one line, without its block."""
        words = [self.name, *(_quote(arg) for arg in self.args)]
        return " ".join(words) + (" {" if self.block is not None else ";")

    def children(self, name: str) -> Iterator[Directive]:
        """Yield the directives named ``name`` directly inside this block, in order."""
        for child in self.block or ():
            if child.name == name:
                yield child

    def first(self, name: str) -> Directive | None:
        return next(self.children(name), None)


def _quote(arg: str) -> str:
    if arg == "" or any(ch.isspace() or ch in ";{}\"'" for ch in arg):
        return '"' + arg.replace("\\", "\\\\").replace('"', '\\"') + '"'
    return arg


@dataclass
class ConfigFiles:
    """The directives of a whole configuration and what went wrong while reading it."""

    directives: tuple[Directive, ...]
    files: list[str] = field(default_factory=list)
    """Files read, in the order nginx reads them."""

    diagnostics: list[Diagnostic] = field(default_factory=list)
    fragment: bool = False
    """True when the main file has no ``http`` block and was read as an ``http`` fragment."""


class _Reader:
    """Parses files on demand and expands includes in nginx's order."""

    def __init__(self, main: str, prefix_map: Mapping[str, str]) -> None:
        self.paths = IncludePaths.for_main(main, prefix_map)
        self.result = ConfigFiles(directives=())

    def report(
        self,
        message: str,
        location: Location,
        hint: str = "",
        code: str = "syntax",
        severity: Severity = Severity.ERROR,
    ) -> None:
        self.result.diagnostics.append(Diagnostic(severity, message, location, hint, code))

    def check_file(self, path: str, location: Location, written: str, main: bool = False) -> bool:
        """Tell whether ``path`` is a regular file to read; report why when it is not.

        ``written`` is the include argument, or the main file's path when ``main`` is set.
        """
        try:
            read_config_file(path, head=0)
        except ConfigFileError as error:
            if error.errno in NGINX_ERRNO_NAMES:
                reason = f"{error.errno}: {os.strerror(error.errno or 0)}"
                shown = written if os.path.isabs(written) else path
                message = f'open() "{shown}" failed ({reason})'
            else:
                message = error.message
            hint = error.hint if main else self.paths.unreadable_hint(error, written, path)
            self.report(message, location, hint, "include")
            return False
        return True

    def parse_file(self, path: str) -> list[dict[str, Any]] | None:
        """Return crossplane's statements of one file, reporting its syntax errors."""
        payload = crossplane.parse(
            path,
            catch_errors=True,
            single=True,
            comments=False,
            check_ctx=False,
            check_args=False,
            onerror=lambda exc: exc,
        )
        if path not in self.result.files:
            self.result.files.append(path)
        for error in payload["errors"]:
            self.report_parse_error(path, error)
        configs = payload["config"]
        if not configs or (configs[0]["status"] == "failed" and not configs[0]["parsed"]):
            return None
        parsed: list[dict[str, Any]] = configs[0]["parsed"]
        return parsed

    def report_parse_error(self, path: str, error: dict[str, Any]) -> None:
        """Report one error of crossplane's payload with its reason and line."""
        exc = error.get("callback")
        message = error["error"]
        line = error["line"] or 0
        hint = "fix the syntax error; nginx -t rejects this file"
        if isinstance(exc, NgxParserBaseException) and exc.strerror:
            message = exc.strerror
        elif isinstance(exc, StopIteration):
            # crossplane's lexer ran out of tokens inside a directive: nginx 1.22 reports
            # this at the last line (ngx_conf_read_token).
            message = 'unexpected end of file, expecting ";" or "}"'
            line = _line_count(path)
        elif isinstance(exc, RecursionError):
            line = _too_deep_line(path)
            message = f"blocks nested deeper than {MAX_BLOCK_DEPTH} levels"
            hint = (
                f"lbguard reads at most {MAX_BLOCK_DEPTH} nested blocks and could not read "
                "this file; flatten the nesting"
            )
        elif not message:
            message = f"crossplane failed with {type(exc).__name__}"
        self.report(message, Location(error["file"], line), hint)

    def convert(
        self,
        statements: Sequence[dict[str, Any]],
        path: str,
        ctx: tuple[str, ...],
        depth: int,
        level: int = 0,
    ) -> list[Directive]:
        """Check each statement in its context and expand includes.

        ``depth`` counts nested includes and ``level`` nested blocks.
        """
        out: list[Directive] = []
        for stmt in statements:
            location = Location(path, int(stmt["line"]))
            name = stmt["directive"]
            term = "{" if "block" in stmt else ";"
            if ctx in CONTEXTS and name not in DIRECTIVES:
                self.unknown_directive(name, location)
            else:
                try:
                    analyze(path, stmt, term, ctx, strict=False, check_ctx=True, check_args=True)
                except NgxParserBaseException as exc:
                    self.report(str(exc.strerror), location, hint=_context_hint(stmt, ctx))
                    continue
            if name == "include" and "block" not in stmt:
                out.extend(self.include(stmt, location, ctx, depth, level))
                continue
            block: tuple[Directive, ...] | None = None
            if "block" in stmt:
                if level >= MAX_BLOCK_DEPTH:
                    self.report(
                        f"blocks nested deeper than {MAX_BLOCK_DEPTH} levels",
                        location,
                        hint=f"lbguard skips this {name} block; flatten the nesting",
                    )
                    continue
                inner = enter_block_ctx(stmt, ctx)
                block = tuple(self.convert(stmt["block"], path, inner, depth, level + 1))
            out.append(Directive(name, tuple(stmt.get("args") or ()), location, block))
        return out

    def unknown_directive(self, name: str, location: Location) -> None:
        """Report a directive that stock nginx does not know; the rest is still read."""
        if name in LUA_BLOCK_DIRECTIVES:
            self.report(
                f'unknown directive "{name}"',
                location,
                hint=f'stock NGINX 1.22 has no "{name}" directive: it needs OpenResty or '
                "lua-nginx-module",
                code="unknown-directive",
                severity=Severity.WARNING,
            )
            return
        self.report(
            f'unknown directive "{name}"',
            location,
            hint=f'stock NGINX 1.22 has no "{name}" directive, so nginx -t rejects it; fix '
            "the name, or load the third-party module that provides it",
            code="unknown-directive",
        )

    def include(
        self,
        stmt: dict[str, Any],
        location: Location,
        ctx: tuple[str, ...],
        depth: int,
        level: int,
    ) -> list[Directive]:
        args = stmt.get("args") or []
        if len(args) != 1:
            self.report('invalid number of arguments in "include" directive', location)
            return []
        written = args[0]
        if depth >= MAX_INCLUDE_DEPTH:
            self.report(
                f'include nesting deeper than {MAX_INCLUDE_DEPTH} at "{written}"',
                location,
                hint="an included file includes itself; break the loop",
            )
            return []
        pattern, mapped = self.paths.map_path(written)
        if os.path.isabs(written) and not mapped and not self.paths.inside_prefix(written):
            if glob.has_magic(written) or self.plain_or_missing(written):
                self.skip_outside(written, location)
            else:
                self.check_file(written, location, written)
            return []
        if glob.has_magic(pattern):
            # nginx 1.22 (ngx_conf_include) expands globs with glob(3), sorted; a pattern
            # that matches nothing is not an error and hidden files do not match "*".
            names = sorted(glob.glob(pattern))
            if not names:
                self.report(
                    f'include "{written}" matches no file',
                    location,
                    hint="nginx accepts an empty include; check the pattern if files "
                    f"were expected ({pattern})",
                    code="include",
                    severity=Severity.INFO,
                )
        else:
            names = [pattern]
        out: list[Directive] = []
        for name in names:
            if not self.check_file(name, location, written):
                continue
            logger.debug("including %s from %s", name, location)
            statements = self.parse_file(name)
            if statements is not None:
                out.extend(self.convert(statements, name, ctx, depth + 1, level))
        return out

    @staticmethod
    def plain_or_missing(path: str) -> bool:
        """Tell whether ``path`` is a regular file or does not exist on this machine."""
        try:
            read_config_file(path, head=0)
        except ConfigFileError as error:
            return error.errno == errno.ENOENT
        return True

    def skip_outside(self, written: str, location: Location) -> None:
        """Report an absolute include outside the main file's folder that is not mapped."""
        self.report(
            f'include "{written}" not read: the absolute path lies outside the main '
            "file's folder and no --prefix-map maps it",
            location,
            hint=self.paths.skipped_hint(written),
            code="include-skipped",
            severity=Severity.INFO,
        )


def _line_count(path: str) -> int:
    try:
        data = read_config_file(path)
    except ConfigFileError:
        return 0
    # nginx counts the position after the last newline as a line of its own.
    return data.count(b"\n") + 1


def _too_deep_line(path: str) -> int:
    """Return the line of the first block nested deeper than `MAX_BLOCK_DEPTH`, or 0."""
    level = 0
    try:
        for token, line, quoted in crossplane.lex(path):
            if quoted:
                continue
            if token == "{":
                level += 1
                if level > MAX_BLOCK_DEPTH:
                    return int(line)
            elif token == "}":
                level -= 1
    except NgxParserBaseException:
        return 0
    return 0


def _context_hint(stmt: dict[str, Any], ctx: tuple[str, ...]) -> str:
    where = " > ".join(ctx) if ctx else "main"
    return f"move {stmt['directive']} into a block where nginx allows it (it is in {where})"


def _is_http_fragment(statements: Sequence[dict[str, Any]]) -> bool:
    names = {stmt["directive"] for stmt in statements}
    if names & {"http", "events", "stream", "mail"}:
        return False
    return bool(names & HTTP_FRAGMENT_DIRECTIVES)


def read_config(path: str, prefix_map: Mapping[str, str] | None = None) -> ConfigFiles:
    """Read the main file ``path`` and everything it includes.

    A main file without an ``http`` block whose top level holds ``upstream``, ``server`` or
    ``map`` is read as a fragment included inside ``http``, as ``conf.d`` files are.
    """
    reader = _Reader(path, prefix_map or {})
    if not reader.check_file(path, Location(path, 0), path, main=True):
        return reader.result
    statements = reader.parse_file(path)
    if statements is None:
        return reader.result
    ctx: tuple[str, ...] = ()
    if _is_http_fragment(statements):
        ctx = ("http",)
        reader.result.fragment = True
        reader.report(
            "no http block: read as a fragment included inside http { }",
            Location(path, 0),
            hint="this is how nginx reads conf.d files; pass the main nginx.conf to "
            "check listen sockets shared with other files",
            code="fragment",
            severity=Severity.INFO,
        )
    reader.result.directives = tuple(reader.convert(statements, path, ctx, 0))
    return reader.result
