"""``lbguard watch``: run the monitoring daemon until SIGTERM; SIGHUP reloads."""

from __future__ import annotations

import argparse

from rich.console import Console

from lbguard.cli.main import ExitCode
from lbguard.errors import LbguardError
from lbguard.monitor.config import load_watch_config
from lbguard.monitor.daemon import WatchDaemon


def register(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = commands.add_parser(
        "watch",
        help="watch configuration files, audit every change and send alerts",
        description="Watch load-balancer configuration files, record a snapshot and an "
        "audit for every change, alert when a change moves traffic or adds findings, and "
        "serve Prometheus metrics. SIGHUP reloads the watch configuration, SIGTERM stops. "
        "Exit code 0: stopped by a signal; 2: configuration or start-up error.",
    )
    parser.add_argument(
        "--config",
        required=True,
        metavar="WATCH.toml",
        help="watch configuration (format in docs/operations.md)",
    )
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> ExitCode:
    errors = Console(stderr=True, highlight=False, markup=False, emoji=False, soft_wrap=True)
    try:
        daemon = WatchDaemon(load_watch_config(args.config))
        daemon.run()
    except LbguardError as error:
        errors.print(f"lbguard: error: {error}")
        return ExitCode.ERROR
    return ExitCode.OK
