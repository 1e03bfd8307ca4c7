"""``lbguard check``: audit a configuration and report predicted shares and findings.

The command reads as parse arguments, load the settings, load the configuration, load the
traffic, predict, compare with the logs when given, run the checks, render, and return
the exit code. Everything it decides lives in the packages it calls.
"""

from __future__ import annotations

import argparse
import gc
import logging
import os
import sys
import tempfile
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from rich.console import Console

from lbguard.checks import CheckContext, Rule, resolve_options
from lbguard.checks.runner import run_audit
from lbguard.checks.settings import AuditSettings, load_settings, selector_matches
from lbguard.cli.check_inputs import (
    FAIR_SHARE_RULE,
    TrafficSource,
    UsageError,
    captured_headers,
    check_output_path,
    check_profile_frontends,
    down_server,
    fair_share_factor,
    health_from_down,
    prefix_map,
    resolve_map,
    row_limit,
    traffic_source,
)
from lbguard.cli.main import ExitCode
from lbguard.cli.messages import escaped_logging, print_message, stderr_console
from lbguard.errors import LbguardError
from lbguard.model import LoadBalancer, Product, Severity
from lbguard.parsers import PARSERS, load_config
from lbguard.predict import predict
from lbguard.predict.result import Prediction
from lbguard.report import RENDERERS, CheckReport, RenderOptions
from lbguard.traffic import TrafficProfile, load_profile

if TYPE_CHECKING:
    from lbguard.analysis.compare import Comparison

logger = logging.getLogger(__name__)


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
        type=traffic_source,
        metavar="PROFILE.yaml[#SECTION]",
        help="traffic profile; #SECTION reads the profile under that top-level key, as in "
        "case.yaml#traffic. Without a profile only shares within each pool are predicted",
    )
    parser.add_argument(
        "--down",
        type=down_server,
        action="append",
        default=[],
        metavar="POOL/SERVER",
        help="predict with this server down; repeat for several servers",
    )
    parser.add_argument(
        "--fair-share-factor",
        type=fair_share_factor,
        metavar="FACTOR",
        help="report a server whose share of its pool exceeds FACTOR times its fair share "
        "(its weight share, or its capacity share from the capacity hints); a finite "
        "number of at least 1 (default 1.5)",
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
        help="lowest finding severity that makes the exit code 1 (default: fail-on in "
        "lbguard.toml, else warning)",
    )
    parser.add_argument(
        "--limit",
        type=row_limit,
        default=20,
        metavar="ROWS",
        help="rows per table in the text report; 0 shows all (default: 20)",
    )

    parser.add_argument(
        "--config-file",
        metavar="FILE",
        help="lbguard settings (lbguard.toml or a pyproject.toml with [tool.lbguard]); "
        "default: the nearest one from the current directory upward",
    )
    parser.add_argument(
        "--select",
        action="append",
        default=[],
        metavar="RULES",
        help="run only these rules: comma-separated ids (LB201), id prefixes (LB2), "
        "families (balancing) or names; repeatable",
    )
    parser.add_argument(
        "--ignore",
        action="append",
        default=[],
        metavar="RULES",
        help="skip these rules, written as for --select; repeatable",
    )

    nginx = parser.add_argument_group("nginx")
    nginx.add_argument(
        "--prefix-map",
        action="append",
        default=[],
        metavar="PREFIX=DIR",
        help="read absolute includes under PREFIX from the local folder DIR, for example "
        "/etc/nginx/=./nginx; repeatable",
    )
    nginx.add_argument(
        "--resolve",
        action="append",
        default=[],
        metavar="NAME=IP[,IP]",
        help="addresses of a host name in server and proxy_pass lines (lbguard never "
        "queries DNS); repeatable",
    )

    logs = parser.add_argument_group("logs")
    logs.add_argument(
        "--logs",
        nargs="+",
        default=[],
        metavar="LOG",
        help="access logs to compare with the prediction: their requests are routed "
        "through the configuration and departures become LB6xx findings",
    )
    logs.add_argument(
        "--log-format", metavar="FORMAT", help="format of the logs (default: detected)"
    )
    logs.add_argument(
        "--timezone",
        default="UTC",
        metavar="ZONE",
        help="IANA zone of log timestamps written without one (default: UTC)",
    )
    logs.add_argument(
        "--captured-headers",
        metavar="NAME,...",
        help="names of the HAProxy `capture request header` fields in log order, such as "
        "host,x-forwarded-for, so that host rules can be evaluated on logged requests "
        "(default: the names of the configuration's `capture request header` lines)",
    )
    logs.add_argument(
        "--since",
        metavar="TIME",
        help="compare only requests at or after this ISO 8601 time (UTC unless it has an "
        "offset), for example the reload that made the configuration live",
    )
    logs.add_argument(
        "--until",
        metavar="TIME",
        help="compare only requests before this ISO 8601 time",
    )
    parser.set_defaults(handler=run)


GC_THRESHOLD = (200_000, 50, 100)
"""Collector thresholds for a check run. A run allocates millions of small objects that
live until it ends. With the default first threshold of 700 allocations the collector
rescans the whole model hundreds of times, which tripled the JSON rendering time of the
50,000-server configuration in bench/check_large_config.py."""


def run(args: argparse.Namespace) -> ExitCode:
    gc.set_threshold(*GC_THRESHOLD)
    errors = stderr_console()
    with escaped_logging():
        try:
            return _check(args, errors)
        except LbguardError as error:
            print_message(errors, f"lbguard: error: {error}")
            return ExitCode.ERROR


def _check(args: argparse.Namespace, errors: Console) -> ExitCode:
    settings = load_settings(Path(args.config_file) if args.config_file else None)
    rules = _rules(settings, args.select, args.ignore)
    options = resolve_options(_option_overrides(args, settings))
    fail_on = Severity(args.fail_on) if args.fail_on else settings.fail_on or Severity.WARNING

    lb = _load_config(args)
    if not lb.frontends and not lb.pools:
        for diagnostic in lb.diagnostics:
            print_message(errors, f"lbguard: {diagnostic}")
        raise UsageError(
            f"nothing to analyse in {', '.join(args.config)}: no frontend and no pool",
            hint="check that the files are the load balancer's configuration, or pass --product",
        )
    settings.check_capacity(lb)
    check_output_path(args.output, _inputs(args, lb, settings))

    profile = _load_traffic(args.traffic, lb)
    health = health_from_down(lb, args.down)
    prediction = _predict(lb, profile, health)
    observation = _observe(lb, args, health, errors) if args.logs else None

    context = CheckContext.build(
        lb, prediction, profile, observation=observation, capacity=settings.capacity
    )
    result = run_audit(context, options, rules)
    report = CheckReport(
        lb=lb,
        prediction=prediction,
        findings=result.findings,
        rules=rules,
        options=options,
        fail_on=fail_on,
        suppressed=result.suppressed,
        settings_file=settings.source,
        capacity=settings.capacity,
    )

    _write(report, args.format, args.output, RenderOptions(limit=args.limit))
    print_message(errors, _summary(report, args.output))
    return ExitCode.FINDINGS if report.failing else ExitCode.OK


def _rules(
    settings: AuditSettings, select: Sequence[str], ignore: Sequence[str]
) -> tuple[Rule, ...]:
    """Return the settings' rules narrowed by --select and --ignore."""
    rules = settings.rules()
    chosen = _selectors(select, "--select", rules)
    skipped = _selectors(ignore, "--ignore", rules)
    if chosen:
        rules = tuple(rule for rule in rules if any(selector_matches(rule, s) for s in chosen))
    return tuple(rule for rule in rules if not any(selector_matches(rule, s) for s in skipped))


def _selectors(values: Sequence[str], option: str, rules: Sequence[Rule]) -> list[str]:
    from lbguard.checks import RULES

    selectors = [part.strip() for value in values for part in value.split(",") if part.strip()]
    if values and not selectors:
        raise UsageError(
            f"{option} names no rule",
            hint=f"give {option} rule ids, id prefixes, families or names, or leave it out",
        )
    for selector in selectors:
        if not any(selector_matches(rule, selector) for rule in RULES):
            raise UsageError(
                f"{option} {selector}: no rule matches",
                hint="use rule ids (LB201), id prefixes (LB2), families (balancing) or "
                "names; lbguard explain lists the rules",
            )
    return selectors


def _option_overrides(
    args: argparse.Namespace, settings: AuditSettings
) -> dict[str, dict[str, object]]:
    overrides: dict[str, dict[str, object]] = {
        rule_id: dict(values) for rule_id, values in settings.options.items()
    }
    if args.fair_share_factor is not None:
        overrides.setdefault(FAIR_SHARE_RULE, {})["factor"] = args.fair_share_factor
    return overrides


def _load_config(args: argparse.Namespace) -> LoadBalancer:
    return load_config(
        args.config,
        Product(args.product) if args.product else None,
        prefix_map=prefix_map(args.prefix_map) or None,
        resolve=resolve_map(args.resolve) or None,
    )


def _inputs(
    args: argparse.Namespace, lb: LoadBalancer, settings: AuditSettings
) -> list[tuple[str, str]]:
    """Return every file the run reads, each with the option that named it."""
    inputs = [(path, "configuration") for path in (*args.config, *lb.files)]
    if args.traffic is not None:
        inputs.append((args.traffic.path, "--traffic"))
    inputs += [(path, "--logs") for path in args.logs]
    if settings.source is not None:
        inputs.append((settings.source, "settings"))
    return inputs


def _observe(
    lb: LoadBalancer, args: argparse.Namespace, health: Mapping[str, bool], errors: Console
) -> Comparison:
    """Load the logs and compare their shares with the configuration's prediction."""
    # Imported here: DuckDB and SciPy take a noticeable time to import, and most
    # check runs have no logs.
    from lbguard.analysis.compare import observe_and_compare
    from lbguard.analysis.windows import parse_time
    from lbguard.logs import load_logs
    from lbguard.logs.database import open_database

    since = parse_time(args.since, "--since") if args.since else None
    until = parse_time(args.until, "--until") if args.until else None
    headers, note = captured_headers(args.captured_headers, lb)
    if note is not None:
        print_message(errors, f"lbguard: {note}")
    with open_database() as con:
        load = load_logs(args.logs, con=con, log_format=args.log_format, timezone=args.timezone)
        return observe_and_compare(
            lb,
            load.con,
            load.table,
            health=health or None,
            captured_headers=headers,
            since=since,
            until=until,
        )


def _load_traffic(source: TrafficSource | None, lb: LoadBalancer) -> TrafficProfile | None:
    if source is None:
        return None
    profile = load_profile(source.path, section=source.section)
    check_profile_frontends(lb, profile, source)
    return profile


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
