"""Context-manager base of lab resources, and their stop at interpreter exit."""

from __future__ import annotations

import atexit
import logging
import weakref
from types import TracebackType
from typing import Protocol, Self

logger = logging.getLogger(__name__)


class Stoppable(Protocol):
    def stop(self) -> None: ...


_live: weakref.WeakSet[Stoppable] = weakref.WeakSet()


def register(item: Stoppable) -> None:
    """Stop `item` at interpreter exit unless it was stopped (or collected) before."""
    _live.add(item)


def unregister(item: Stoppable) -> None:
    _live.discard(item)


@atexit.register
def _stop_all() -> None:
    for item in list(_live):
        try:
            item.stop()
        except Exception:
            logger.exception("failed to stop %r at exit", item)


class LabResource:
    """A server or process that `start` starts and `stop` stops, also as ``with`` block.

    `start` returns the resource itself; `stop` must be safe to call more than once.
    """

    def start(self) -> Self:
        raise NotImplementedError

    def stop(self) -> None:
        raise NotImplementedError

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()
