"""``lbguard explain``: show what a rule checks, why, how to fix it, and its examples.

``lbguard explain --format markdown -o docs/rules.md`` regenerates the rules page from
the same metadata.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from lbguard.checks import RULES, Rule, find_rule
from lbguard.cli.main import ExitCode
from lbguard.cli.messages import escaped_logging, print_message, stderr_console
from lbguard.errors import LbguardError
from lbguard.report.rules_doc import explain_text, rules_markdown


def register(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = commands.add_parser(
        "explain",
        help="describe audit rules: what they detect, why, the fix, and examples",
        description="Describe one or more audit rules, or every rule when none is named. "
        "Exit code 0; an unknown rule id or name makes it exit with 2 before it prints "
        "anything.",
    )
    parser.add_argument(
        "rules", nargs="*", metavar="RULE", help="rule id (LB201) or dotted name; default: all"
    )
    parser.add_argument(
        "--format",
        choices=["text", "markdown"],
        default="text",
        help="text for the terminal, markdown for the rules page (default: text)",
    )
    parser.add_argument("-o", "--output", metavar="FILE", help="write to FILE instead of stdout")
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> ExitCode:
    errors = stderr_console()
    with escaped_logging():
        try:
            rules = _rules(args.rules)
            text = _render(rules, args.format, everything=not args.rules)
            _write(text, args.output)
        except LbguardError as error:
            print_message(errors, f"lbguard: error: {error}")
            return ExitCode.ERROR
    return ExitCode.OK


def _rules(keys: list[str]) -> tuple[Rule, ...]:
    if not keys:
        return RULES
    rules = []
    for key in keys:
        rule = find_rule(key)
        if rule is None:
            raise LbguardError(
                f"unknown rule {key!r}",
                hint="run lbguard explain without arguments to list every rule",
            )
        rules.append(rule)
    return tuple(rules)


def _render(rules: tuple[Rule, ...], fmt: str, everything: bool) -> str:
    if fmt == "markdown":
        return rules_markdown(rules)
    if everything:
        index = "\n".join(f"{rule.id}  {rule.name:<42} {rule.severity}" for rule in rules)
        return index + "\n\n" + "\n".join(explain_text(rule) for rule in rules)
    return "\n".join(explain_text(rule) for rule in rules)


def _write(text: str, output: str | None) -> None:
    if output is None:
        sys.stdout.write(text)
        return
    try:
        Path(output).write_text(text, encoding="utf-8")
    except OSError as error:
        raise LbguardError(
            f"cannot write {output}: {error.strerror}", hint="choose a writable file with -o"
        ) from None
