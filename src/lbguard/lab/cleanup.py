"""Stop every lab process and server still running when the interpreter exits."""

from __future__ import annotations

import atexit
import logging
import weakref
from typing import Protocol

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
