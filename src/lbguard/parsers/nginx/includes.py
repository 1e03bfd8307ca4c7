"""Resolution of nginx ``include`` arguments to local paths, and hints when one fails.

nginx resolves a relative include against its prefix, the main file's folder. An absolute
include is read through the user's ``--prefix-map`` (``/etc/nginx/`` to a checked-out
folder), or as it is when it lies inside the main file's folder.
"""

from __future__ import annotations

import errno
import glob
import os
from collections.abc import Mapping
from dataclasses import dataclass

from lbguard.parsers.files import ConfigFileError


@dataclass(frozen=True)
class IncludePaths:
    """The main file's folder and the prefix map that resolve include arguments."""

    prefix: str
    """Absolute folder of the main file."""

    shown_prefix: str
    """The main file's folder as given, for the options a hint suggests."""

    prefix_map: tuple[tuple[str, str], ...]
    """(absolute prefix, local folder) pairs, longest prefix first."""

    @classmethod
    def for_main(cls, main: str, prefix_map: Mapping[str, str]) -> IncludePaths:
        return cls(
            prefix=os.path.dirname(os.path.abspath(main)),
            shown_prefix=os.path.dirname(main) or ".",
            prefix_map=tuple(sorted(prefix_map.items(), key=lambda item: -len(item[0]))),
        )

    def map_path(self, pattern: str) -> tuple[str, bool]:
        """Return the local path of an include and whether the prefix map mapped it."""
        if not os.path.isabs(pattern):
            return os.path.join(self.prefix, pattern), False
        for source, target in self.prefix_map:
            base = source.rstrip("/") + "/"
            if pattern == source.rstrip("/") or pattern.startswith(base):
                return os.path.join(target, pattern[len(base) :]), True
        return pattern, False

    def inside_prefix(self, path: str) -> bool:
        return os.path.commonpath([self.prefix, os.path.abspath(path)]) == self.prefix

    def unreadable_hint(self, error: ConfigFileError, written: str, resolved: str) -> str:
        """Return the next step for an include argument ``written`` that failed to open."""
        if error.errno != errno.ENOENT:
            return error.hint
        if os.path.isabs(written) and written != resolved:
            return f"--prefix-map sends it to {resolved}, which does not exist"
        if os.path.isabs(written):
            return "check the path"
        return f"nginx resolves relative includes against the prefix; {resolved} does not exist"

    def skipped_hint(self, written: str) -> str:
        """Return the ``--prefix-map`` option that would read an unmapped absolute include."""
        source = self.local_prefix(written)
        if source is not None:
            return f"pass --prefix-map {source}={self.shown_prefix}/ to read it from here"
        folder = os.path.dirname(written.rstrip("/")) + "/"
        return (
            f"pass --prefix-map {folder}=DIR to read it from a local copy, or "
            f"--prefix-map {folder}={folder} to read this machine's file"
        )

    def local_prefix(self, written: str) -> str | None:
        """Return the absolute prefix whose remainder names files in the main file's folder.

        For ``/etc/nginx/conf.d/*.conf`` next to a local ``conf.d/`` this is ``/etc/nginx/``.
        The longest remainder is tried first, and a bare ``*.conf`` never matches.
        """
        parts = written.strip("/").split("/")
        for start in range(1, len(parts)):
            tail = parts[start:]
            if len(tail) == 1 and glob.has_magic(tail[0]):
                break
            remainder = os.path.join(self.prefix, *tail)
            if glob.glob(remainder) if glob.has_magic(remainder) else os.path.exists(remainder):
                return "/" + "/".join(parts[:start]) + "/"
        return None
