"""``lbguard diff``: semantic diff of two configurations with the share impact.

Exit code 0: no semantic change and no share moved; 1: changes; 2: usage or input error.
"""

from __future__ import annotations

import argparse
import gc
import sys
from pathlib import Path

from rich.console import Console

from lbguard.cli.main import ExitCode
from lbguard.errors import LbguardError
from lbguard.model import LoadBalancer, Product
from lbguard.monitor.diff import ConfigDiff, diff_configs
from lbguard.monitor.render import DiffFormat, render_diff, summary_line
from lbguard.monitor.shares import share_table
from lbguard.parsers import load_config
from lbguard.predict import predict
from lbguard.traffic import load_profile


def register(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = commands.add_parser(
        "diff",
        help="compare two configurations and show how shares move",
        description="Compare two configurations of one load balancer at the model level "
        "(rules, pools, servers, weights, algorithms, hash settings, backup, state and "
        "health) and show how each server's predicted share moves for the same traffic. "
        "Exit code 0: no change; 1: changes; 2: usage or input error.",
    )
    parser.add_argument("old", metavar="OLD", help="old configuration file or directory")
    parser.add_argument("new", metavar="NEW", help="new configuration file or directory")
    parser.add_argument(
        "--product",
        choices=[product.value for product in Product],
        help="product that reads both configurations (default: detected from the content)",
    )
    parser.add_argument(
        "--traffic",
        metavar="PROFILE.yaml",
        help="traffic profile for both predictions; without one only shares within each "
        "pool are compared",
    )
    parser.add_argument(
        "--format",
        choices=[item.value for item in DiffFormat],
        default=DiffFormat.TEXT.value,
        help="output format (default: text)",
    )
    parser.add_argument("-o", "--output", metavar="FILE", help="write the diff to FILE")
    parser.set_defaults(handler=run)


GC_THRESHOLD = (200_000, 50, 100)
"""Collector thresholds for a diff run, as for ``lbguard check``: both models live until the
run ends, and the default first threshold of 700 allocations rescans them thousands of
times while the second one is parsed."""


def run(args: argparse.Namespace) -> ExitCode:
    gc.set_threshold(*GC_THRESHOLD)
    errors = Console(stderr=True, highlight=False, markup=False, emoji=False, soft_wrap=True)
    try:
        diff = _diff(args, errors)
        _write(render_diff(diff, DiffFormat(args.format)), args.output)
    except LbguardError as error:
        errors.print(f"lbguard: error: {error}")
        return ExitCode.ERROR

    errors.print(f"lbguard diff: {summary_line(diff)}")
    return ExitCode.FINDINGS if diff.changed else ExitCode.OK


def _diff(args: argparse.Namespace, errors: Console) -> ConfigDiff:
    product = Product(args.product) if args.product else None
    profile = load_profile(args.traffic) if args.traffic else None
    old = _load(args.old, product, errors)
    new = _load(args.new, product, errors)
    old_prediction = predict(old, profile)
    new_prediction = predict(new, profile)
    return diff_configs(
        old,
        new,
        share_table(old_prediction),
        share_table(new_prediction),
        traffic=new_prediction.traffic,
    )


def _load(path: str, product: Product | None, errors: Console) -> LoadBalancer:
    lb = load_config([Path(path)], product)
    for diagnostic in lb.diagnostics:
        errors.print(f"lbguard: {diagnostic}")
    return lb


def _write(text: str, output: str | None) -> None:
    if output is None:
        sys.stdout.write(text)
        return
    try:
        Path(output).write_text(text, encoding="utf-8")
    except OSError as error:
        raise LbguardError(
            f"cannot write {output}: {error.strerror or error}",
            hint="choose a writable path for -o",
        ) from error
