"""HAProxy httplog files written with a seeded generator, for analysis and CLI tests.

The files go through the real log reader (`lbguard.logs.load_logs`), so the analysis is
tested on the table exactly as users get it.
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

START = datetime(2026, 3, 2, 21, 50, tzinfo=UTC)


@dataclass(frozen=True)
class Phase:
    """A stretch of log with one request mix."""

    seconds: int
    rate: int
    """Requests per second."""

    servers: Sequence[tuple[str, str, float]]
    """(pool, server, weight) choices."""

    errors: dict[str, float]
    """``pool/server`` to the fraction of its requests answered 503 with no server
    (HAProxy queue timeout, termination ``sQ``)."""

    regions: Sequence[tuple[str, float]] = (("198.51.100.", 0.5), ("203.0.113.", 0.5))
    """Client address prefixes with their weights."""

    region_servers: dict[str, Sequence[tuple[str, str, float]]] | None = None
    """Server choices for the clients of one prefix, instead of ``servers``."""


WEB = [("be_web", f"web{i}", 1.0) for i in range(1, 5)]
SEARCH = [("be_search", "search1", 1.0), ("be_search", "search2", 1.0)]


def haproxy_line(
    when: datetime, client: str, pool: str, server: str | None, *, status: int, total_ms: int
) -> str:
    """Format one ``option httplog`` line with an RFC 3164 syslog prefix and a captured
    X-Forwarded-For header, as HAProxy 2.6 writes it through rsyslog."""
    prefix = f"{when:%b} {when.day:2d} {when:%H:%M:%S} lb1 haproxy[4242]:"
    accept = f"{when:%d/%b/%Y:%H:%M:%S}.{when.microsecond // 1000:03d}"
    if server is None:
        target, timers, term = f"{pool}/<NOSRV>", f"0/{total_ms}/-1/-1/{total_ms}", "sQ--"
    else:
        response = max(total_ms - 2, 0)
        target, timers, term = f"{pool}/{server}", f"0/0/1/{response}/{total_ms}", "----"
    return (
        f"{prefix} 10.0.0.9:{40000 + when.microsecond % 20000} [{accept}] fe_main "
        f"{target} {timers} {status} 512 - - {term} 20/20/4/1/0 0/0 {{{client}}} "
        f'"GET /items/{when.microsecond % 97} HTTP/1.1"'
    )


def write_log(path: Path, phases: Sequence[Phase], seed: int = 7) -> Path:
    """Write the phases one after the other, starting at START."""
    rng = random.Random(seed)
    lines: list[str] = []
    when = START
    for phase in phases:
        prefixes = [prefix for prefix, _ in phase.regions]
        region_weights = [weight for _, weight in phase.regions]
        count = phase.seconds * phase.rate
        step = timedelta(seconds=1 / phase.rate)
        for _ in range(count):
            prefix = rng.choices(prefixes, region_weights)[0]
            client = prefix + str(rng.randint(1, 120))
            choices = (phase.region_servers or {}).get(prefix, phase.servers)
            pool, server = rng.choices(
                [(p, s) for p, s, _ in choices], [w for _, _, w in choices]
            )[0]
            failed = rng.random() < phase.errors.get(f"{pool}/{server}", 0.0)
            lines.append(
                haproxy_line(
                    when,
                    client,
                    pool,
                    None if failed else server,
                    status=503 if failed else 200,
                    total_ms=2000 if failed else rng.randint(5, 60),
                )
            )
            when += step
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def incident_phases() -> list[Phase]:
    """Ten minutes normal; ten minutes in which the 203.0.113.0/24 clients' requests go
    to the two search servers, which fail 30 % of them; ten minutes recovered."""
    normal = [*WEB, ("be_search", "search1", 0.25), ("be_search", "search2", 0.25)]
    return [
        Phase(seconds=600, rate=5, servers=normal, errors={}),
        Phase(
            seconds=600,
            rate=5,
            servers=normal,
            errors={"be_search/search1": 0.3, "be_search/search2": 0.3},
            region_servers={"203.0.113.": SEARCH},
        ),
        Phase(seconds=600, rate=5, servers=normal, errors={}),
    ]
