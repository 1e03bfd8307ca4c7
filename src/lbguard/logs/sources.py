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
            result.append(LogSource("-", path, sniff_compression(path)))
            continue

        if glob.has_magic(source):
            matches = sorted(glob.glob(source))
            if not matches:
                raise LogError(
                    f"no file matches the pattern {source!r}",
                    hint="check the pattern, and quote it so the shell does not expand it",
                )
        else:
            matches = [source]

        for path in matches:
            if not os.path.isfile(path):
                raise LogError(
                    f"log file not found: {path}",
                    hint="give an existing file, a glob pattern or - for stdin",
                )
            result.append(LogSource(path, path, sniff_compression(path)))
    return result


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

    Raises `LogError` when that part of the file holds only NUL bytes (a sparse or
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
            f"{source.name}: is a binary file: its first "
            f"{_size(len(text))} hold only NUL bytes",
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
