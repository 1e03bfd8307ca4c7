"""Messages on stderr for the ``check`` and ``explain`` commands.

Error messages repeat file names, command-line values and configuration text, so each
one passes through `lbguard.report.interface.clean_message`, the escaping the reports use:
an escape sequence or a NUL byte in an input never reaches the terminal as is.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager

from rich.console import Console

from lbguard.report.interface import clean_message


def stderr_console() -> Console:
    """Return a console for messages on stderr that interprets no markup."""
    return Console(stderr=True, highlight=False, markup=False, emoji=False, soft_wrap=True)


def print_message(console: Console, text: str) -> None:
    """Print one message, with its control characters escaped."""
    console.print(clean_message(text))


class _EscapingFilter(logging.Filter):
    """Escape control characters in a log record's message before a handler formats it."""

    def filter(self, record: logging.LogRecord) -> bool:
        record.msg = clean_message(record.getMessage())
        record.args = None
        return True


@contextmanager
def escaped_logging() -> Iterator[None]:
    """Escape the messages that the root logger's handlers write while the block runs.

    Log messages of the packages a command calls name files and values too, for example
    a log file that is not valid UTF-8.
    """
    escaping = _EscapingFilter()
    handlers = list(logging.getLogger().handlers)
    for handler in handlers:
        handler.addFilter(escaping)
    try:
        yield
    finally:
        for handler in handlers:
            handler.removeFilter(escaping)
