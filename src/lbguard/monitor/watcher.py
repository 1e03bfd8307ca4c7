"""File-system watching of configuration files with watchdog: inotify, or polling.

The watcher watches the directories that contain the configuration files, not the files
themselves, so that an editor's save-via-rename, a delete and a re-create are all seen. It
only wakes the daemon; the daemon hashes the files to decide whether anything changed.
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

logger = logging.getLogger(__name__)

# Reading a file produces these events; the daemon reads the files it watches, so acting on
# them would wake it again for ever.
_IGNORED_EVENTS = frozenset({EVENT_TYPE_OPENED, EVENT_TYPE_CLOSED_NO_WRITE})

ObserverFactory = Callable[[], BaseObserver]


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
        self._watches: dict[str, ObservedWatch] = {}

    def is_relevant(self, path: str) -> bool:
        """True for a watched file, or for any file directly inside a watched directory."""
        normalized = os.path.abspath(path)
        return normalized in self._files or os.path.dirname(normalized) in self._directories

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
            "watching %d files in %d directories by %s",
            len(self._files),
            len(self._watch_roots()),
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
        self._files = frozenset(os.path.abspath(path) for path in files)
        self._directories = frozenset(os.path.abspath(path) for path in directories)

    def _watch_roots(self) -> set[str]:
        return {os.path.dirname(path) for path in self._files} | set(self._directories)

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
