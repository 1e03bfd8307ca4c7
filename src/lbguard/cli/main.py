"""Command-line entry point: argument parsing and exit codes only."""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Callable, Sequence
from enum import IntEnum

from lbguard import __version__


class ExitCode(IntEnum):
    """Process exit codes shared by every command."""

    OK = 0
    """No finding reaches the failing severity."""

    FINDINGS = 1
    """At least one finding reaches the failing severity."""

    ERROR = 2
    """Usage error, or input that could not be read."""


Handler = Callable[[argparse.Namespace], ExitCode]
Registrar = Callable[["argparse._SubParsersAction[argparse.ArgumentParser]"], None]


def _registrars() -> list[Registrar]:
    """Return the command registrars in the order ``--help`` lists them."""
    from lbguard.cli import check, diff, history, logs, watch

    return [check.register, logs.register, diff.register, history.register, watch.register]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="lbguard",
        description="Predict and observe load-balancer traffic shares, and find the "
        "misconfigurations that skew them.",
    )
    parser.add_argument("--version", action="version", version=f"lbguard {__version__}")
    parser.add_argument(
        "-v",
        "--verbose",
        action="count",
        default=0,
        help="log progress on stderr; repeat for debug output",
    )
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for register in _registrars():
        register(commands)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)

    level = {0: logging.WARNING, 1: logging.INFO}.get(args.verbose, logging.DEBUG)
    logging.basicConfig(level=level, format="lbguard: %(levelname)s: %(message)s")

    handler: Handler = args.handler
    return int(handler(args))


if __name__ == "__main__":
    sys.exit(main())
