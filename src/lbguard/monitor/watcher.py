"""File-system watching of configuration files with watchdog: inotify, or polling.

The watcher watches the directories that contain the configuration files, not the files
themselves, so that an editor's save-via-rename, a delete and a re-create are all seen. It
only wakes the daemon; the daemon hashes the files to decide whether anything changed.

A configuration file reached through symbolic links is watched along the whole chain: the
link, every link met while resolving it, and the file it resolves to. A Kubernetes
ConfigMap volume holds ``haproxy.cfg -> ..data/haproxy.cfg`` and updates by renaming a new
``..data`` link over the old one, so the event names ``..data``, not ``haproxy.cfg``.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable, Iterable
from pathlib import Path

from watchdog.events import (
    EVENT_TYPE_CLOSED_NO_WRITE,
    EVENT_TYPE_OPENED,
    FileSystemEvent,
    FileSystemEventHandler,
)
from watchdog.observers import Observer
from watchdog.observers.api import BaseObserver, ObservedWatch
from watchdog.observers.polling import PollingObserver

from lbguard.monitor.text import plural

logger = logging.getLogger(__name__)

# Reading a file produces these events; the daemon reads the files it watches, so acting on
# them would wake it again for ever.
_IGNORED_EVENTS = frozenset({EVENT_TYPE_OPENED, EVENT_TYPE_CLOSED_NO_WRITE})

ObserverFactory = Callable[[], BaseObserver]

MAX_SYMLINKS = 40
"""Links followed while resolving one path, as Linux's MAXSYMLINKS (40) allows."""


def symlink_chain(path: str | Path) -> list[str]:
    """Return the absolute path, every symbolic link met while resolving it, and the
    path it resolves to, without duplicates; only the path itself when no link is met."""
    current = os.path.abspath(path)
    chain = [current]
    for _ in range(MAX_SYMLINKS):
        parts = current.split(os.sep)
        for index in range(2, len(parts) + 1):
            prefix = os.sep.join(parts[:index])
            if not os.path.islink(prefix):
                continue
            try:
                target = os.readlink(prefix)
            except OSError:
                return list(dict.fromkeys(chain))
            chain.append(prefix)
            current = os.path.normpath(
                os.path.join(os.path.dirname(prefix), target, *parts[index:])
            )
            break
        else:
            break
    chain.append(current)
    return list(dict.fromkeys(chain))


def is_directory_config(name: str) -> bool:
    """True for a file name that a configuration directory contributes.

    Directories are read as ``haproxy -f DIR`` reads them (HAProxy 2.6, ``src/haproxy.c``):
    names that do not start with a dot and end in ``.cfg``. Other files in the directory,
    such as a log file, wake nothing.
    """
    return not name.startswith(".") and name.endswith(".cfg")


class _Handler(FileSystemEventHandler):
    def __init__(self, watcher: ConfigWatcher) -> None:
        self.watcher = watcher

    def on_any_event(self, event: FileSystemEvent) -> None:
        if event.event_type in _IGNORED_EVENTS:
            return
        for raw in (event.src_path, getattr(event, "dest_path", "")):
            path = os.fsdecode(raw) if raw else ""
            if path and self.watcher.is_relevant(path):
                logger.debug("file event %s on %s", event.event_type, path)
                self.watcher.on_change(path)
                return


class ConfigWatcher:
    """Watches configuration files and directories and calls ``on_change`` with a path."""

    def __init__(
        self,
        on_change: Callable[[str], None],
        *,
        method: str = "auto",
        poll_interval: float = 1.0,
        native: ObserverFactory = Observer,
    ) -> None:
        self.on_change = on_change
        self.method = method
        self.poll_interval = poll_interval
        self.native = native
        self.method_in_use = ""
        self._observer: BaseObserver | None = None
        self._handler = _Handler(self)
        self._files: frozenset[str] = frozenset()
        self._directories: frozenset[str] = frozenset()
        self._resolved_directories: frozenset[str] = frozenset()
        self._watches: dict[str, ObservedWatch] = {}

    def is_relevant(self, path: str) -> bool:
        """True for a watched file or a link on its way, or for a configuration file
        directly inside a watched directory."""
        normalized = os.path.abspath(path)
        if normalized in self._files:
            return True
        directory, name = os.path.split(normalized)
        return directory in self._directories and is_directory_config(name)

    def start(self, files: Iterable[Path], directories: Iterable[Path]) -> str:
        """Start watching; return the method in use, ``inotify`` or ``poll``."""
        self._set_targets(files, directories)
        if self.method != "poll":
            try:
                self._observer = self._start_observer(self.native())
                self.method_in_use = "inotify"
            except OSError as error:
                if self.method == "inotify":
                    raise
                logger.warning(
                    "cannot start inotify watching (%s); falling back to polling every %.1f s",
                    error,
                    self.poll_interval,
                )
        if self._observer is None:
            polling = PollingObserver(timeout=self.poll_interval)
            self._observer = self._start_observer(polling)
            self.method_in_use = "poll"
        logger.info(
            "watching %s in %s by %s",
            plural(len(self._files), "file"),
            plural(len(self._watch_roots()), "directory", "directories"),
            self.method_in_use,
        )
        return self.method_in_use

    def update(self, files: Iterable[Path], directories: Iterable[Path]) -> None:
        """Watch a new set of paths, and watch again directories that were re-created."""
        self._set_targets(files, directories)
        if self._observer is None:
            return
        wanted = self._watch_roots()
        for root in list(self._watches):
            if root not in wanted or not os.path.isdir(root):
                self._unschedule(root)
        self._schedule_missing()

    def rewatch(self) -> None:
        """Drop and recreate every watch; a directory deleted and re-created under the same
        name needs a new inotify watch."""
        if self._observer is None:
            return
        for root in list(self._watches):
            self._unschedule(root)
        self._schedule_missing()

    def stop(self) -> None:
        if self._observer is not None:
            self._observer.stop()
            self._observer.join(timeout=5)
            self._observer = None
        self._watches.clear()

    def _set_targets(self, files: Iterable[Path], directories: Iterable[Path]) -> None:
        paths: set[str] = set()
        for path in files:
            paths.update(symlink_chain(path))
        listed: set[str] = set()
        resolved: set[str] = set()
        for path in directories:
            chain = symlink_chain(path)
            # The links on the way are watched as paths, the directory as a whole only at
            # its resolved path, so that one directory gets one watch.
            paths.update(chain[1:-1])
            listed.update(chain)
            resolved.add(chain[-1])
        self._files = frozenset(paths)
        self._directories = frozenset(listed)
        self._resolved_directories = frozenset(resolved)

    def _watch_roots(self) -> set[str]:
        return {os.path.dirname(path) for path in self._files} | set(self._resolved_directories)

    def _start_observer(self, observer: BaseObserver) -> BaseObserver:
        observer.daemon = True
        try:
            observer.start()
            self._observer = observer
            self._watches.clear()
            self._schedule_missing(raise_errors=True)
        except OSError:
            self._observer = None
            observer.stop()
            raise
        return observer

    def _schedule_missing(self, *, raise_errors: bool = False) -> None:
        assert self._observer is not None
        for root in sorted(self._watch_roots() - set(self._watches)):
            if not os.path.isdir(root):
                logger.warning("cannot watch %s: directory not found; rescans cover it", root)
                continue
            try:
                self._watches[root] = self._observer.schedule(self._handler, root)
            except OSError as error:
                if raise_errors:
                    raise
                logger.warning("cannot watch %s (%s); rescans cover it", root, error)

    def _unschedule(self, root: str) -> None:
        watch = self._watches.pop(root)
        if self._observer is None:
            return
        try:
            self._observer.unschedule(watch)
        except (KeyError, OSError) as error:
            logger.debug("unscheduling %s failed: %s", root, error)
