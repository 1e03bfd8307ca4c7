"""Fixtures for lab tests: product binaries (skip or fail when missing) and backends."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from lbguard.lab import Backends, SyslogReceiver
from lbguard.lab.testing import require_binary


@pytest.fixture(scope="session")
def haproxy_bin() -> str:
    return require_binary("haproxy")


@pytest.fixture(scope="session")
def nginx_bin() -> str:
    return require_binary("nginx")


@pytest.fixture
def three_backends() -> Iterator[Backends]:
    with Backends(["s1", "s2", "s3"], record=True) as backends:
        yield backends


@pytest.fixture
def syslog(tmp_path: Path) -> Iterator[SyslogReceiver]:
    with SyslogReceiver(tmp_path / "haproxy.log") as receiver:
        yield receiver
