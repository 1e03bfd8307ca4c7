"""``lbguard watch``: run the monitoring daemon until SIGTERM; SIGHUP reloads.

The module imports only the standard library at first: the command installs its signal
handlers before it imports the daemon (prediction, numpy, watchdog, httpx), so that a
SIGHUP sent by a service manager during start-up cannot end the process.
"""

from __future__ import annotations

import argparse
import logging
import signal
from types import FrameType

from lbguard.cli.main import ExitCode

logger = logging.getLogger("lbguard.cli.watch")

THIRD_PARTY_LOGGERS = ("httpx", "httpcore", "watchdog", "urllib3", "asyncio")
"""Libraries whose INFO and DEBUG records would log webhook URLs with their tokens, or
a line for every file event (which loops when the log file is in a watched folder)."""


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


class _EarlySignals:
    """Records SIGHUP, SIGTERM and SIGINT until the daemon installs its own handlers."""

    def __init__(self) -> None:
        self.stop: str = ""
        self.reload = False
        signal.signal(signal.SIGHUP, self._on_reload)
        signal.signal(signal.SIGTERM, self._on_stop)
        signal.signal(signal.SIGINT, self._on_stop)

    def _on_reload(self, _signum: int, _frame: FrameType | None) -> None:
        self.reload = True

    def _on_stop(self, signum: int, _frame: FrameType | None) -> None:
        self.stop = signal.Signals(signum).name


def quiet_third_party_loggers() -> None:
    """Keep ``-v``/``-vv`` to lbguard's own loggers and other libraries at WARNING."""
    root = logging.getLogger()
    package = logging.getLogger("lbguard")
    if package.level == logging.NOTSET:
        package.setLevel(root.level)
    root.setLevel(max(root.level, logging.WARNING))
    for name in THIRD_PARTY_LOGGERS:
        logging.getLogger(name).setLevel(logging.WARNING)


def run(args: argparse.Namespace) -> ExitCode:
    early = _EarlySignals()
    quiet_third_party_loggers()
    logger.debug("signal handlers installed")

    from rich.console import Console

    from lbguard.errors import LbguardError
    from lbguard.monitor.config import load_watch_config
    from lbguard.monitor.daemon import WatchDaemon

    errors = Console(stderr=True, highlight=False, markup=False, emoji=False, soft_wrap=True)
    try:
        daemon = WatchDaemon(load_watch_config(args.config))
        daemon.install_signal_handlers()
        if early.stop:
            logger.info("received %s during start-up, stopping", early.stop)
            return ExitCode.OK
        if early.reload:
            # The watch configuration was read after the signal, so nothing is stale;
            # the reload still runs, as requested.
            logger.info("received SIGHUP during start-up, reloading after the start")
            daemon.request_reload()
        daemon.run(handle_signals=False)
    except LbguardError as error:
        errors.print(f"lbguard: error: {error}")
        return ExitCode.ERROR
    return ExitCode.OK
