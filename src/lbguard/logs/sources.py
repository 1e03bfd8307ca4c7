"""Log sources: file names, globs, stdin and compressed files, and their first lines."""

from __future__ import annotations

import glob
import gzip
import io
import os
import shutil
import sys
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from typing import IO

import zstandard

from lbguard.errors import LogError

GZIP_MAGIC = b"\x1f\x8b"
ZSTD_MAGIC = b"\x28\xb5\x2f\xfd"


@dataclass(frozen=True)
class LogSource:
    """One file to read."""

    name: str
    """Name shown in messages and stored in ``source_file`` (``-`` for stdin)."""

    path: str
    """File on disk that DuckDB reads (a temporary copy for stdin)."""

    compression: str
    """``none``, ``gzip`` or ``zstd``, from the file's magic bytes."""


def sniff_compression(path: str) -> str:
    with open(path, "rb") as handle:
        magic = handle.read(4)
    if magic.startswith(GZIP_MAGIC):
        return "gzip"
    if magic.startswith(ZSTD_MAGIC):
        return "zstd"
    return "none"


def expand(sources: Sequence[str], spool_dir: str) -> list[LogSource]:
    """Resolve globs and stdin into readable files, in the order given.

    Stdin is copied to a file in ``spool_dir`` so that DuckDB can scan it like any file.
    """
    result: list[LogSource] = []
    for source in sources:
        if source == "-":
            path = os.path.join(spool_dir, "stdin.log")
            with open(path, "wb") as spool:
                shutil.copyfileobj(sys.stdin.buffer, spool, 1 << 20)
            stdin = LogSource("-", path, sniff_compression(path))
            result.append(_without_bare_cr(stdin, spool_dir, len(result)))
            continue

        if glob.has_magic(source) and not os.path.lexists(source):
            matches = sorted(glob.glob(source))
            if not matches:
                raise LogError(
                    f"no file matches the pattern {source!r}",
                    hint="check the pattern, and quote it so the shell does not expand it",
                )
        else:
            # An existing name is read as it is, even when it holds glob characters.
            matches = [source]

        for path in matches:
            _check_regular(path)
            found = LogSource(path, path, sniff_compression(path))
            result.append(_without_bare_cr(found, spool_dir, len(result)))
    return result


def _check_regular(path: str) -> None:
    if os.path.isdir(path):
        raise LogError(f"{path} is a directory", hint="give the log files in it, or a glob")
    if os.path.exists(path) and not os.path.isfile(path):
        raise LogError(f"{path} is not a regular file", hint="give a log file, or - to read stdin")
    if not os.path.isfile(path):
        raise LogError(
            f"log file not found: {path}",
            hint="give an existing file, a glob pattern or - for stdin",
        )


def _has_bare_cr(source: LogSource) -> bool:
    """True when the file holds a CR that does not end a CRLF pair."""
    previous = b""
    with _open_binary(source) as handle:
        while chunk := handle.read(1 << 20):
            data = previous + chunk
            # A CR at the end of the chunk may pair with an LF in the next one.
            previous = b"\r" if data.endswith(b"\r") else b""
            body = data[:-1] if previous else data
            if body.count(b"\r") != body.count(b"\r\n"):
                return True
    return False


def _without_bare_cr(source: LogSource, spool_dir: str, index: int) -> LogSource:
    """Return ``source``, or a spooled copy in which each CR that does not end a line is a
    space: DuckDB ends a line at a bare CR, which would split the line and shift the line
    numbers after it."""
    if not _has_bare_cr(source):
        return source
    path = os.path.join(spool_dir, f"cr-{index}.log")
    with _open_binary(source) as handle, open(path, "wb") as spool:
        pending = b""
        while chunk := handle.read(1 << 20):
            data = pending + chunk
            pending = b"\r" if data.endswith(b"\r") else b""
            body = data[:-1] if pending else data
            spool.write(body.replace(b"\r\n", b"\n").replace(b"\r", b" "))
        spool.write(b" " if pending else b"")
    return LogSource(source.name, path, "none")


def _open_binary(source: LogSource) -> IO[bytes]:
    if source.compression == "gzip":
        return gzip.GzipFile(source.path, "rb")  # type: ignore[return-value]
    if source.compression == "zstd":
        return zstandard.open(source.path, "rb")  # type: ignore[no-any-return]
    return open(source.path, "rb")


def open_text(source: LogSource) -> IO[str]:
    """Open a source as text, decompressing on the fly."""
    raw: IO[bytes] | gzip.GzipFile
    # The text wrapper owns and closes the binary stream.
    if source.compression == "gzip":
        raw = gzip.GzipFile(source.path, "rb")
    elif source.compression == "zstd":
        raw = zstandard.open(source.path, "rb")
    else:
        raw = open(source.path, "rb")  # noqa: SIM115
    # Lines end at LF only, as DuckDB reads them; a CR inside a line stays in it.
    return io.TextIOWrapper(raw, encoding="utf-8", errors="replace", newline="")


def head_lines(source: LogSource, count: int, max_bytes: int = 1 << 20) -> list[str]:
    """Return up to ``count`` non-empty lines from the first ``max_bytes`` of ``source``.

    Raises `LogError` when that part of the file contains only NUL bytes (a sparse or
    zero-filled file), so that such a file is not read further.
    """
    with open_text(source) as handle:
        try:
            text = handle.read(max_bytes)
        except (OSError, EOFError, zstandard.ZstdError) as error:
            raise LogError(f"{source.name}: cannot decompress the file: {error}") from error
        complete = len(text) < max_bytes
    if text and not text.strip("\x00"):
        raise LogError(
            f"{source.name}: is a binary file: its first {_size(len(text))} "
            "contain only NUL bytes",
            hint="give a text access log",
        )
    pieces = text.split("\n")
    if not complete and len(pieces) > 1:
        pieces.pop()  # cut off by max_bytes
    lines: list[str] = []
    for piece in pieces:
        line = piece.removesuffix("\r")
        if line.strip():
            lines.append(line)
            if len(lines) >= count:
                break
    return lines


def _size(count: int) -> str:
    return f"{count >> 20} MiB" if count >= 1 << 20 else f"{count} bytes"


def make_spool_dir() -> tempfile.TemporaryDirectory[str]:
    return tempfile.TemporaryDirectory(prefix="lbguard-logs-")
