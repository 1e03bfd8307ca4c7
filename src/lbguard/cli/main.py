"""Command-line entry point: argument parsing and exit codes only."""

from __future__ import annotations

import argparse
import importlib
import logging
import sys
from collections.abc import Callable, Sequence
from enum import IntEnum
from typing import NoReturn

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


COMMANDS = {
    "check": "lbguard.cli.check",
    "explain": "lbguard.cli.explain",
    "logs": "lbguard.cli.logs",
    "diff": "lbguard.cli.diff",
    "history": "lbguard.cli.history",
    "watch": "lbguard.cli.watch",
}
"""Command name to the module whose ``register`` adds it, in the order ``--help`` lists
them. Each module imports what its command needs (``logs`` imports SciPy and DuckDB), so a
run imports only the module of the command it runs."""


def chosen_command(argv: Sequence[str]) -> str | None:
    """Return the command that *argv* runs; None for help, a version request or no command.

    No top-level option takes a value, so the first word that is not an option is the
    command.
    """
    for word in argv:
        if word in ("-h", "--help", "--version"):
            return None
        if not word.startswith("-"):
            return word if word in COMMANDS else None
    return None


def _registrars(argv: Sequence[str] | None) -> list[Registrar]:
    """Return the registrar of the command *argv* runs, or of every command.

    Every command is registered when *argv* is None or runs none, so that help and usage
    errors list them all.
    """
    command = None if argv is None else chosen_command(argv)
    names = [command] if command is not None else list(COMMANDS)
    return [importlib.import_module(COMMANDS[name]).register for name in names]


class ArgumentParser(argparse.ArgumentParser):
    """An argument parser whose usage errors escape control characters.

    argparse repeats the offending argument in its message, so an escape sequence typed on
    the command line would otherwise reach the terminal as is.
    """

    def error(self, message: str) -> NoReturn:
        from lbguard.report.interface import clean_message

        self.print_usage(sys.stderr)
        self.exit(ExitCode.ERROR, f"{self.prog}: error: {clean_message(message)}\n")


def build_parser(argv: Sequence[str] | None = None) -> argparse.ArgumentParser:
    """Build the parser; with *argv*, only the command that *argv* runs is registered."""
    parser = ArgumentParser(
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
    commands: argparse._SubParsersAction[argparse.ArgumentParser] = parser.add_subparsers(
        dest="command", metavar="COMMAND", required=True, parser_class=ArgumentParser
    )
    for register in _registrars(argv):
        register(commands)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    words = sys.argv[1:] if argv is None else argv
    parser = build_parser(words)
    args = parser.parse_args(words)

    # -v raises only lbguard's own loggers: HTTP client libraries log whole URLs at INFO,
    # and webhook URLs carry secrets.
    level = {0: logging.WARNING, 1: logging.INFO}.get(args.verbose, logging.DEBUG)
    logging.basicConfig(level=logging.WARNING, format="lbguard: %(levelname)s: %(message)s")
    logging.getLogger("lbguard").setLevel(level)

    handler: Handler = args.handler
    return int(handler(args))


if __name__ == "__main__":
    sys.exit(main())
