"""Read nginx configuration files with crossplane, following ``include`` as nginx does.

crossplane lexes and parses each file. The includes are resolved here rather than by
crossplane because nginx resolves relative include paths against its prefix (the main
file's folder) and users need to map an absolute prefix such as ``/etc/nginx/`` onto a
checked-out folder. Context and argument checks reuse crossplane's directive table.
"""

from __future__ import annotations

import glob
import logging
import os
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import crossplane
from crossplane.analyzer import analyze, enter_block_ctx
from crossplane.errors import NgxParserBaseException
from crossplane.ext.lua import LuaBlockPlugin

from lbguard.model import Diagnostic, Location, Severity

logger = logging.getLogger(__name__)

# Lexes the bodies of ``*_by_lua_block`` directives as Lua code instead of nginx tokens.
LuaBlockPlugin().register_extension()

HTTP_FRAGMENT_DIRECTIVES = frozenset({"upstream", "server", "map", "split_clients", "geo"})
"""Top-level directives that mark a file as a fragment meant for ``include`` inside ``http``."""

MAX_INCLUDE_DEPTH = 32
"""Include nesting deeper than this is reported as a loop."""


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

    def __init__(self, prefix: str, prefix_map: Mapping[str, str]) -> None:
        self.prefix = prefix
        self.prefix_map = sorted(prefix_map.items(), key=lambda item: -len(item[0]))
        self.result = ConfigFiles(directives=())

    def error(self, message: str, location: Location, hint: str = "", code: str = "") -> None:
        self.result.diagnostics.append(
            Diagnostic(Severity.ERROR, message, location, hint=hint, code=code or "syntax")
        )

    def map_path(self, pattern: str) -> str:
        """Apply the prefix map to an absolute include path, or join a relative one."""
        if not os.path.isabs(pattern):
            return os.path.join(self.prefix, pattern)
        for source, target in self.prefix_map:
            base = source.rstrip("/") + "/"
            if pattern == source.rstrip("/") or pattern.startswith(base):
                return os.path.join(target, pattern[len(base) :])
        return pattern

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
            exc = error.get("callback")
            message = error["error"]
            if isinstance(exc, NgxParserBaseException) and exc.strerror:
                message = exc.strerror
            elif isinstance(exc, OSError):
                message = f'open() "{path}" failed ({exc.errno}: {exc.strerror})'
            self.error(
                message,
                Location(error["file"], error["line"] or 0),
                hint="fix the syntax error; nginx -t rejects this file",
            )
        configs = payload["config"]
        if not configs or (configs[0]["status"] == "failed" and not configs[0]["parsed"]):
            return None
        parsed: list[dict[str, Any]] = configs[0]["parsed"]
        return parsed

    def convert(
        self, statements: Sequence[dict[str, Any]], path: str, ctx: tuple[str, ...], depth: int
    ) -> list[Directive]:
        """Check each statement in its context and expand includes."""
        out: list[Directive] = []
        for stmt in statements:
            location = Location(path, int(stmt["line"]))
            term = "{" if "block" in stmt else ";"
            try:
                analyze(path, stmt, term, ctx, strict=False, check_ctx=True, check_args=True)
            except NgxParserBaseException as exc:
                self.error(str(exc.strerror), location, hint=_context_hint(stmt, ctx))
                continue
            if stmt["directive"] == "include" and "block" not in stmt:
                out.extend(self.include(stmt, location, ctx, depth))
                continue
            block: tuple[Directive, ...] | None = None
            if "block" in stmt:
                inner = enter_block_ctx(stmt, ctx)
                block = tuple(self.convert(stmt["block"], path, inner, depth))
            out.append(
                Directive(stmt["directive"], tuple(stmt.get("args") or ()), location, block)
            )
        return out

    def include(
        self, stmt: dict[str, Any], location: Location, ctx: tuple[str, ...], depth: int
    ) -> list[Directive]:
        args = stmt.get("args") or []
        if len(args) != 1:
            self.error('invalid number of arguments in "include" directive', location)
            return []
        if depth >= MAX_INCLUDE_DEPTH:
            self.error(
                f'include nesting deeper than {MAX_INCLUDE_DEPTH} at "{args[0]}"',
                location,
                hint="an included file includes itself; break the loop",
            )
            return []
        pattern = self.map_path(args[0])
        if glob.has_magic(pattern):
            # nginx 1.22 (ngx_conf_include) expands globs with glob(3), sorted; a pattern
            # that matches nothing is not an error and hidden files do not match "*".
            names = sorted(glob.glob(pattern))
        elif os.path.isfile(pattern):
            names = [pattern]
        else:
            reason = "2: No such file or directory"
            if os.path.isdir(pattern):
                reason = "21: Is a directory"
            displayed = args[0] if os.path.isabs(args[0]) else pattern
            self.error(
                f'open() "{displayed}" failed ({reason})',
                location,
                hint=_missing_include_hint(args[0], pattern),
                code="include",
            )
            return []
        out: list[Directive] = []
        for name in names:
            logger.debug("including %s from %s", name, location)
            statements = self.parse_file(name)
            if statements is not None:
                out.extend(self.convert(statements, name, ctx, depth + 1))
        return out


def _missing_include_hint(written: str, resolved: str) -> str:
    if os.path.isabs(written) and written != resolved:
        return f"the prefix map sends it to {resolved}, which does not exist"
    if os.path.isabs(written):
        return (
            "map the absolute prefix onto a local folder (prefix_map, for example "
            "{'/etc/nginx/': 'path/to/checkout/'}) or copy the file there"
        )
    return f"nginx resolves relative includes against the prefix; {resolved} does not exist"


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
    prefix = os.path.dirname(os.path.abspath(path))
    reader = _Reader(prefix, prefix_map or {})
    if not os.path.isfile(path):
        reader.error(
            f'open() "{path}" failed (2: No such file or directory)',
            Location(path, 0),
            hint="check the path of the main configuration file",
            code="include",
        )
        return reader.result
    statements = reader.parse_file(path)
    if statements is None:
        return reader.result
    ctx: tuple[str, ...] = ()
    if _is_http_fragment(statements):
        ctx = ("http",)
        reader.result.fragment = True
        reader.result.diagnostics.append(
            Diagnostic(
                Severity.INFO,
                "no http block: read as a fragment included inside http { }",
                Location(path, 0),
                hint="this is how nginx reads conf.d files; pass the main nginx.conf to "
                "check listen sockets shared with other files",
                code="fragment",
            )
        )
    reader.result.directives = tuple(reader.convert(statements, path, ctx, 0))
    return reader.result
