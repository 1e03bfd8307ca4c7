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
from lbguard.monitor.redact import redact_model
from lbguard.monitor.render import DiffFormat, render_diff, summary_line
from lbguard.monitor.shares import share_table
from lbguard.parsers import PARSERS, PRODUCT_NAMES, detect_product, load_config
from lbguard.predict import predict
from lbguard.traffic import load_profile

NGINX_MAIN_FILE = "nginx.conf"
"""The main file nginx reads from its configuration folder (``-c`` default in 1.22)."""


class DiffInputError(LbguardError):
    """An OLD or NEW configuration that leaves nothing to compare."""


def register(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = commands.add_parser(
        "diff",
        help="compare two configurations and show how shares move",
        description="Compare two configurations of one load balancer at the model level "
        "(rules, pools, servers, weights, algorithms, hash settings, backup, state and "
        "health) and show how each server's predicted share moves for the same traffic. "
        "Exit code 0: no change; 1: changes; 2: usage or input error.",
    )
    parser.add_argument(
        "old",
        metavar="OLD",
        help="old configuration: a file, an HAProxy directory of *.cfg files, or an nginx "
        "folder holding nginx.conf",
    )
    parser.add_argument("new", metavar="NEW", help="new configuration, as OLD")
    parser.add_argument(
        "--product",
        choices=[product.value for product in PARSERS],
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
    if old.product != new.product:
        raise DiffInputError(
            f"OLD and NEW are different products: {args.old} is "
            f"{PRODUCT_NAMES[old.product]}, {args.new} is {PRODUCT_NAMES[new.product]}",
            hint="compare two configurations of one load balancer",
        )
    old_prediction = predict(old, profile)
    new_prediction = predict(new, profile)
    # Secrets (stats auth, userlist passwords, Authorization headers) never reach output.
    return diff_configs(
        redact_model(old),
        redact_model(new),
        share_table(old_prediction),
        share_table(new_prediction),
        traffic=new_prediction.traffic,
    )


def _load(text: str, product: Product | None, errors: Console) -> LoadBalancer:
    """Load one side; raise DiffInputError when it contains nothing to compare."""
    path = _main_file(Path(text), product)
    lb = load_config([path], product)
    for diagnostic in lb.diagnostics:
        errors.print(f"lbguard: {diagnostic}")
    if not lb.frontends and not lb.pools:
        raise DiffInputError(
            f"nothing to compare in {text}: no frontend and no pool",
            hint="check that the file is the load balancer's configuration and that the "
            "errors above are fixed, or pass --product",
        )
    return lb


def _main_file(path: Path, product: Product | None) -> Path:
    """Return the path to load: an nginx folder stands for its nginx.conf."""
    if not path.is_dir():
        return path
    main = path / NGINX_MAIN_FILE
    if product is Product.NGINX or (product is None and main.is_file()):
        if not main.is_file():
            raise DiffInputError(
                f"{path} is a folder without {NGINX_MAIN_FILE}",
                hint="nginx reads one main file: pass it, and lbguard follows its includes",
            )
        return main
    if product is None and detect_product([path]) is Product.NGINX:
        raise DiffInputError(
            f"{path} contains nginx files but no {NGINX_MAIN_FILE}",
            hint="nginx reads one main file: pass it, and lbguard follows its includes",
        )
    return path


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
