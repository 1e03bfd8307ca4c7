"""``lbguard check``: audit a configuration and report predicted shares and findings.

The command reads as parse arguments, load the configuration, load the traffic, predict,
run the checks, render, and return the exit code. Everything it decides lives in the
packages it calls.
"""

from __future__ import annotations

import argparse
import gc
import logging
import os
import sys
import tempfile
from collections.abc import Mapping
from pathlib import Path

from rich.console import Console

from lbguard.checks import RULES, CheckContext, resolve_options, run_checks
from lbguard.cli.main import ExitCode
from lbguard.errors import LbguardError
from lbguard.model import LoadBalancer, Product, Severity
from lbguard.parsers import PARSERS, load_config
from lbguard.predict import predict
from lbguard.predict.result import Prediction
from lbguard.report import RENDERERS, CheckReport, RenderOptions
from lbguard.traffic import TrafficProfile, load_profile

logger = logging.getLogger(__name__)

_FAIR_SHARE_RULE = "LB201"


class UsageError(LbguardError):
    """A command-line value that names nothing in the configuration."""


def register(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = commands.add_parser(
        "check",
        help="predict traffic shares and report misconfigurations",
        description="Predict how the load balancer spreads requests over its servers and "
        "report the rules and settings that concentrate load. Exit code 0: no finding at "
        "or above --fail-on; 1: such findings; 2: usage or input error.",
    )
    parser.add_argument("config", nargs="+", metavar="CONFIG", help="configuration files")
    parser.add_argument(
        "--product",
        choices=[product.value for product in PARSERS],
        help="product that reads the configuration (default: detected from the content)",
    )
    parser.add_argument(
        "--traffic",
        metavar="PROFILE.yaml",
        help="traffic profile; without one only shares within each pool are predicted",
    )
    parser.add_argument(
        "--down",
        action="append",
        default=[],
        metavar="POOL/SERVER",
        help="predict with this server down; repeat for several servers",
    )
    parser.add_argument(
        "--fair-share-factor",
        type=float,
        metavar="FACTOR",
        help="report a server whose share of its pool exceeds FACTOR times its fair share "
        "(default 1.5)",
    )
    parser.add_argument(
        "--format", choices=sorted(RENDERERS), default="text", help="report format"
    )
    parser.add_argument(
        "-o", "--output", metavar="FILE", help="write the report to FILE instead of stdout"
    )
    parser.add_argument(
        "--fail-on",
        choices=[severity.value for severity in Severity],
        default=Severity.WARNING.value,
        help="lowest finding severity that makes the exit code 1 (default: warning)",
    )
    parser.add_argument(
        "--limit",
        type=int,
        default=20,
        metavar="ROWS",
        help="rows per table in the text report; 0 shows all (default: 20)",
    )
    parser.set_defaults(handler=run)


GC_THRESHOLD = (200_000, 50, 100)
"""Collector thresholds for a check run. A run allocates millions of small objects that
live until it ends. With the default first threshold of 700 allocations the collector
rescans the whole model hundreds of times, which tripled the JSON rendering time of the
50,000-server configuration in bench/check_large_config.py."""


def run(args: argparse.Namespace) -> ExitCode:
    gc.set_threshold(*GC_THRESHOLD)
    errors = Console(stderr=True, highlight=False, markup=False, emoji=False, soft_wrap=True)
    try:
        return _check(args, errors)
    except LbguardError as error:
        errors.print(f"lbguard: error: {error}")
        return ExitCode.ERROR


def _check(args: argparse.Namespace, errors: Console) -> ExitCode:
    options = resolve_options(_option_overrides(args))
    lb = _load_config(args.config, args.product)
    if not lb.frontends and not lb.pools:
        for diagnostic in lb.diagnostics:
            errors.print(f"lbguard: {diagnostic}")
        raise UsageError(
            f"nothing to analyse in {', '.join(args.config)}: no frontend and no pool",
            hint="check that the files are the load balancer's configuration, or pass --product",
        )

    profile = _load_traffic(args.traffic)
    health = _health(lb, args.down)
    prediction = _predict(lb, profile, health)

    context = CheckContext.build(lb, prediction, profile)
    findings = run_checks(context, options)
    report = CheckReport(
        lb=lb,
        prediction=prediction,
        findings=tuple(findings),
        rules=RULES,
        options=options,
        fail_on=Severity(args.fail_on),
    )

    _write(report, args.format, args.output, RenderOptions(limit=args.limit))
    errors.print(_summary(report, args.output))
    return ExitCode.FINDINGS if report.failing else ExitCode.OK


def _option_overrides(args: argparse.Namespace) -> dict[str, dict[str, object]]:
    overrides: dict[str, dict[str, object]] = {}
    if args.fair_share_factor is not None:
        overrides[_FAIR_SHARE_RULE] = {"factor": args.fair_share_factor}
    return overrides


def _load_config(paths: list[str], product: str | None) -> LoadBalancer:
    return load_config(paths, Product(product) if product else None)


def _load_traffic(path: str | None) -> TrafficProfile | None:
    if path is None:
        return None
    return load_profile(path)


def _health(lb: LoadBalancer, down: list[str]) -> dict[str, bool]:
    """Turn ``--down POOL/SERVER`` values into the prediction's health mapping."""
    pools = {pool.name: pool for pool in lb.pools}
    health: dict[str, bool] = {}
    for key in down:
        pool_name, slash, server_name = key.partition("/")
        pool = pools.get(pool_name)
        if not slash or pool is None or pool.server(server_name) is None:
            raise UsageError(
                f"--down {key}: no server {server_name or key!r} in pool {pool_name!r}",
                hint="name the server as POOL/SERVER, as the configuration names them, "
                "for example be_web/web1",
            )
        health[key] = False
    return health


def _predict(
    lb: LoadBalancer, profile: TrafficProfile | None, health: Mapping[str, bool]
) -> Prediction:
    return predict(lb, profile, health or None)


def _write(report: CheckReport, fmt: str, output: str | None, options: RenderOptions) -> None:
    """Render to stdout, or to a temporary file beside FILE that replaces FILE only when
    complete, so that a failed run never leaves a truncated report."""
    render = RENDERERS[fmt]
    if output is None:
        render(report, sys.stdout, options)
        return

    target = Path(output)
    temporary: Path | None = None
    try:
        descriptor, name = tempfile.mkstemp(
            dir=target.parent, prefix=f".{target.name}.", suffix=".tmp"
        )
        temporary = Path(name)
        with os.fdopen(descriptor, "w", encoding="utf-8") as stream:
            render(report, stream, options)
        # mkstemp creates the file readable by its owner only, so give the report the mode
        # that a plain open() would.
        temporary.chmod(0o666 & ~_umask())
        temporary.replace(target)
        temporary = None
    except OSError as error:
        raise UsageError(
            f"cannot write the report to {output}: {error.strerror}",
            hint="choose a writable file with -o",
        ) from None
    finally:
        if temporary is not None:
            temporary.unlink(missing_ok=True)


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def _summary(report: CheckReport, output: str | None) -> str:
    """Return the one-line summary printed on stderr."""
    total = len(report.findings)
    counts = ", ".join(
        _plural(report.count(level), str(level))
        for level in sorted(Severity, key=lambda s: -s.rank)
    )
    text = f"lbguard: {_plural(total, 'finding')} ({counts})"
    text += f"; {len(report.failing)} at or above --fail-on {report.fail_on}"
    if output:
        text += f"; report written to {output}"
    return text


def _plural(count: int, noun: str) -> str:
    if count == 1 or noun == "info":
        return f"{count} {noun}"
    return f"{count} {noun}s"
