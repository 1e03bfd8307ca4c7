"""Rebuild the routing incident on a real HAProxy and capture its log.

The script starts 21 backend servers and HAProxy on 127.0.0.1, then sends one continuous
stream of requests from clients in five regions while it hot-reloads three configs:

1. baseline: haproxy-good.cfg, the platform as it ran before the change;
2. incident: haproxy-bad.cfg, whose new ``path_search`` ACL also matches every API path,
   so be_search's two servers (maxconn 3 each) receive about half of all requests, queue
   them and answer 503 when the 2 s queue timeout expires;
3. recovery: haproxy-fixed.cfg, the corrected rule.

It writes haproxy.log (rsyslog-style RFC 3164 lines, as received from HAProxy over UDP),
timeline.json (phase times, the bad rule's line, observed shares and error rates) and
traffic.yaml (the request mix as an lbguard traffic profile), and prints per-phase
per-server counts and error rates.

Run from the repository root: ``.venv/bin/python examples/incident/run_incident.py``.
Every process runs on 127.0.0.1 and stops by itself; a full run takes about 3 minutes.
"""

from __future__ import annotations

import argparse
import csv
import ipaddress
import itertools
import json
import random
import re
import statistics
import threading
import time
from collections import Counter, defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import yaml

from lbguard.lab import (
    Backends,
    BackendSpec,
    HAProxyProcess,
    RequestSpec,
    Result,
    SyslogReceiver,
    TrafficGenerator,
)

HERE = Path(__file__).resolve().parent
SYSLOG_PORT = 15140
"""UDP port of the ``log`` line in the configs."""

FRONTEND_PORT = 18080

# Pool → (server name → port, behaviour). All pools run the same application build, so
# every server serves every path; the pools differ in size, speed and maxconn.
POOLS: dict[str, tuple[dict[str, int], BackendSpec]] = {
    "be_web": ({f"web{i}": 19100 + i for i in range(1, 7)}, BackendSpec("", latency=0.025)),
    "be_api": ({f"api{i}": 19200 + i for i in range(1, 7)}, BackendSpec("", latency=0.020)),
    "be_static": (
        {f"static{i}": 19300 + i for i in range(1, 4)}, BackendSpec("", latency=0.003),
    ),
    "be_search": (
        {"search1": 19401, "search2": 19402},
        # A search query takes 100 ms alone and 40 ms more per concurrent query, so two
        # servers at maxconn 3 serve at most about 2 * 3 / 0.18 s = 33 requests/s.
        BackendSpec("", latency=0.100, latency_per_inflight=0.040),
    ),
    "be_reports": ({"reports1": 19501, "reports2": 19502}, BackendSpec("", latency=0.150)),
    "be_admin": ({"admin1": 19601, "admin2": 19602}, BackendSpec("", latency=0.030)),
}  # fmt: skip

# Request shapes by family: (method, host, path, query, weight within the family).
Shape = tuple[str, str, str, str, float]
FAMILIES: dict[str, list[Shape]] = {
    "web": [
        ("GET", "www.example.com", "/", "", 5),
        ("GET", "www.example.com", "/products/1042", "", 4),
        ("GET", "www.example.com", "/products/2210", "", 3),
        ("GET", "www.example.com", "/category/shoes", "sort=price", 3),
        ("GET", "www.example.com", "/cart", "", 2),
        ("POST", "www.example.com", "/checkout", "", 1),
    ],
    "static": [
        ("GET", "static.example.com", "/assets/app.3f9c1e.js", "", 4),
        ("GET", "static.example.com", "/assets/app.3f9c1e.css", "", 4),
        ("GET", "static.example.com", "/static/img/logo.svg", "", 2),
        ("GET", "www.example.com", "/favicon.ico", "", 1),
    ],
    "web_api": [
        ("GET", "www.example.com", "/api/v1/cart", "", 3),
        ("GET", "www.example.com", "/api/v1/recommendations", "item=1042", 2),
        ("POST", "www.example.com", "/api/v1/session", "", 1),
    ],
    "app_api": [
        ("GET", "api.example.com", "/api/v1/products", "page=1", 5),
        ("GET", "api.example.com", "/api/v1/products/1042", "", 4),
        ("GET", "api.example.com", "/api/v1/orders", "", 2),
        ("POST", "api.example.com", "/api/v1/orders", "", 1),
        ("GET", "api.example.com", "/api/v2/feed", "", 3),
        ("GET", "api.example.com", "/api/v2/suggest", "q=sho", 0.5),
    ],
    "search": [
        ("GET", "www.example.com", "/search", "q=shoes", 3),
        ("GET", "www.example.com", "/search", "q=red+dress", 2),
        ("GET", "api.example.com", "/api/v1/search", "q=boots", 2),
    ],
    "reports": [
        ("GET", "www.example.com", "/reports/daily", "date=yesterday", 1),
        ("GET", "www.example.com", "/reports/sales", "", 1),
    ],
    "admin": [
        ("GET", "www.example.com", "/admin/", "", 1),
        ("GET", "www.example.com", "/admin/orders", "", 1),
    ],
}

# Region → (share of all requests, weight of each family). Web browsers dominate in Europe
# and the US; in ap-south and sa-east most requests come from the mobile app's API calls,
# which the bad rule sends to be_search.
REGIONS: dict[str, tuple[float, dict[str, float]]] = {
    "eu-west": (0.30, {"web": 40, "static": 28, "web_api": 14, "app_api": 6, "search": 8,
                       "reports": 3, "admin": 1}),
    "us-east": (0.30, {"web": 38, "static": 27, "web_api": 15, "app_api": 8, "search": 8,
                       "reports": 3, "admin": 1}),
    "eu-central": (0.06, {"web": 40, "static": 28, "web_api": 14, "app_api": 6, "search": 8,
                          "reports": 3, "admin": 1}),
    "ap-south": (0.24, {"web": 8, "static": 6, "web_api": 6, "app_api": 70, "search": 9,
                        "reports": 1}),
    "sa-east": (0.10, {"web": 10, "static": 8, "web_api": 6, "app_api": 66, "search": 9,
                       "reports": 1}),
}  # fmt: skip

CLIENTS_PER_NETWORK = 40
IPV6_SHARE = 0.25
"""Fraction of a region's clients that connect over IPv6 (when it has an IPv6 network)."""


Summary = dict[str, Any]
"""A JSON object of timeline.json."""


@dataclass(frozen=True)
class Phase:
    name: str
    config: str
    duration: float


# HAProxy 2.6 log line (option httplog with two captured request headers), after the
# "Mmm dd hh:mm:ss host haproxy[pid]: " prefix.
LOG_LINE = re.compile(
    r"haproxy\[\d+\]: (?P<client>\S+) \[(?P<date>[^\]]+)\] fe_platform "
    r"(?P<backend>[^/\s]+)/(?P<server>\S+) (?P<timers>\S+) (?P<status>\d{3}) \S+ \S+ \S+ "
    r"(?P<termination>\S{4}) "
)


def load_regions(path: Path) -> dict[str, list[ipaddress.IPv4Network | ipaddress.IPv6Network]]:
    networks: dict[str, list[ipaddress.IPv4Network | ipaddress.IPv6Network]] = defaultdict(list)
    with path.open(newline="") as handle:
        for row in csv.DictReader(handle):
            networks[row["region"]].append(ipaddress.ip_network(row["cidr"]))
    return networks


def pick_clients(
    networks: Sequence[ipaddress.IPv4Network | ipaddress.IPv6Network], rng: random.Random
) -> list[str]:
    """Draw the client addresses of one region: a few per network, 1/4 of them IPv6."""
    clients: list[str] = []
    for network in networks:
        count = CLIENTS_PER_NETWORK
        if network.version == 6:
            count = max(1, int(CLIENTS_PER_NETWORK * IPV6_SHARE / (1 - IPV6_SHARE)))
        hosts = {str(network[rng.randrange(1, network.num_addresses - 1)]) for _ in range(count)}
        clients.extend(sorted(hosts))
    return clients


class Mix:
    """Draws requests: region by share, client within the region, family, then shape."""

    def __init__(self, regions_csv: Path, seed: int) -> None:
        networks = load_regions(regions_csv)
        rng = random.Random(seed)
        self.regions = list(REGIONS)
        self.clients = {name: pick_clients(networks[name], rng) for name in self.regions}

    def __call__(self, rng: random.Random) -> RequestSpec:
        shares = [REGIONS[name][0] for name in self.regions]
        region = rng.choices(self.regions, weights=shares)[0]
        families = REGIONS[region][1]
        family = rng.choices(list(families), weights=list(families.values()))[0]
        shapes = FAMILIES[family]
        method, host, path, query, _ = rng.choices(shapes, weights=[s[4] for s in shapes])[0]
        client = rng.choice(self.clients[region])
        return RequestSpec(
            method=method, host=host, path=path, query=query, client_ip=client, label=region
        )

    def profile(self, requests: int) -> Summary:
        """Return the mix as an lbguard traffic profile: request shapes and clients.

        The profile has the same per-shape and per-region fractions as the replay; it
        drops the correlation between region and shape, which routing does not use.
        """
        shape_weights: dict[Shape, float] = defaultdict(float)
        for share, families in REGIONS.values():
            family_total = sum(families.values())
            for family, family_weight in families.items():
                shapes = FAMILIES[family]
                shape_total = sum(s[4] for s in shapes)
                for shape in shapes:
                    fraction = share * family_weight / family_total * shape[4] / shape_total
                    shape_weights[shape] += fraction

        samples = [
            {"method": m, "host": h, "path": p + (f"?{q}" if q else ""),
             "weight": round(weight, 6)}
            for (m, h, p, q, _), weight in sorted(shape_weights.items())
        ]  # fmt: skip
        networks = load_regions(HERE / "regions.csv")
        clients = []
        for region, (share, _) in REGIONS.items():
            region_clients = [ipaddress.ip_address(c) for c in self.clients[region]]
            for network in networks[region]:
                count = sum(1 for address in region_clients if address in network)
                weight = share * count / len(region_clients)
                clients.append({"cidr": str(network), "count": count, "weight": round(weight, 6)})
        return {
            "description": "Request mix of the incident example: shapes by overall "
            "share, clients by region",
            "requests": requests,
            "samples": samples,
            "clients": clients,
        }


def start_backends() -> Backends:
    specs = [
        BackendSpec(
            name, port=port, latency=template.latency,
            latency_per_inflight=template.latency_per_inflight,
        )
        for servers, template in POOLS.values()
        for name, port in servers.items()
    ]  # fmt: skip
    return Backends(specs)


def server_key(server: str | None) -> str:
    if server is None:
        return "-"
    for pool, (servers, _) in POOLS.items():
        if server in servers:
            return f"{pool}/{server}"
    return server


def percentile(values: Sequence[float], fraction: float) -> float:
    if not values:
        return 0.0
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(fraction * len(ordered)))]


def summarize(results: Sequence[Result]) -> Summary:
    """Summarize client-side results: statuses, error rate, latency, regions, servers."""
    statuses = Counter(r.status for r in results)
    errors = sum(count for status, count in statuses.items() if status >= 500 or status == 0)
    latencies = [r.latency * 1000 for r in results]
    by_region: dict[str, list[Result]] = defaultdict(list)
    for result in results:
        by_region[result.request.label].append(result)
    return {
        "requests": len(results),
        "errors_5xx": errors,
        "error_rate": round(errors / len(results), 4) if results else 0.0,
        "statuses": {str(k): v for k, v in sorted(statuses.items())},
        "latency_ms": {
            "p50": round(percentile(latencies, 0.50), 1),
            "p95": round(percentile(latencies, 0.95), 1),
            "p99": round(percentile(latencies, 0.99), 1),
            "mean": round(statistics.fmean(latencies), 1) if latencies else 0.0,
        },
        "errors_by_region": {
            region: sum(1 for r in items if r.status >= 500 or r.status == 0)
            for region, items in sorted(by_region.items())
        },
        "error_rate_by_region": {
            region: round(
                sum(1 for r in items if r.status >= 500 or r.status == 0) / len(items), 4
            )
            for region, items in sorted(by_region.items())
        },
        "responses_by_server": dict(
            sorted(Counter(server_key(r.server) for r in results if r.server).items())
        ),
    }


def summarize_log(lines: Sequence[str], start: float, end: float) -> Summary:
    """Summarize the log lines whose request date falls in [start, end)."""
    servers: Counter[str] = Counter()
    terminations: Counter[str] = Counter()
    statuses: Counter[str] = Counter()
    count = 0
    for line in lines:
        match = LOG_LINE.search(line)
        if match is None:
            continue
        stamp = datetime.strptime(match["date"], "%d/%b/%Y:%H:%M:%S.%f").astimezone()
        if not start <= stamp.timestamp() < end:
            continue
        count += 1
        servers[f"{match['backend']}/{match['server']}"] += 1
        terminations[match["termination"]] += 1
        statuses[match["status"]] += 1
    total = max(count, 1)
    return {
        "lines": count,
        "share_by_server": {k: round(v / total, 4) for k, v in sorted(servers.items())},
        "lines_by_server": dict(sorted(servers.items())),
        "termination_states": dict(terminations.most_common()),
        "statuses": dict(sorted(statuses.items())),
    }


AFFECTED_FACTOR = 1.5
"""A region counts as most affected when its 5xx rate is at least this multiple of the
platform's rate in the same phase."""


def most_affected_regions(summary: Summary) -> list[str]:
    """Return the regions whose 5xx rate stands out, the one with most 5xx first."""
    threshold = AFFECTED_FACTOR * summary["error_rate"]
    rates, errors = summary["error_rate_by_region"], summary["errors_by_region"]
    affected = [region for region, rate in rates.items() if rate >= threshold > 0]
    return sorted(affected, key=lambda region: errors[region], reverse=True)


def find_line(path: Path, pattern: str) -> tuple[int, str]:
    for number, line in enumerate(path.read_text().splitlines(), start=1):
        if re.search(pattern, line):
            return number, line.strip()
    raise SystemExit(f"{path}: no line matches {pattern!r}")


def iso(timestamp: float) -> str:
    return datetime.fromtimestamp(timestamp, UTC).astimezone().isoformat(timespec="milliseconds")


def print_phase(name: str, summary: Summary, log: Summary) -> None:
    latency = summary["latency_ms"]
    print(
        f"\n== {name}: {summary['requests']} requests, "
        f"5xx {summary['errors_5xx']} ({100 * summary['error_rate']:.1f} %), "
        f"latency p50 {latency['p50']} ms p99 {latency['p99']} ms"
    )
    for key, lines in log["lines_by_server"].items():
        print(f"   {key:<22} {lines:>6}  {100 * log['share_by_server'][key]:5.1f} %")
    print(f"   termination states: {log['termination_states']}")
    print(f"   5xx rate by region: {summary['error_rate_by_region']}")


@dataclass
class Replay:
    """What one replay produced: client results and the reload times."""

    results: list[Result]
    reloads: list[Summary]
    started: float
    finished: float


def replay(phases: Sequence[Phase], mix: Mix, rate: float, seed: int, log_path: Path) -> Replay:
    """Send the whole mix in one stream and hot-reload HAProxy at each phase boundary."""
    total_seconds = sum(p.duration for p in phases)
    total_requests = int(rate * total_seconds)
    generator = TrafficGenerator(
        FRONTEND_PORT, mix, requests=total_requests, concurrency=400, seed=seed,
        rate=rate, max_duration=total_seconds + 5, timeout=15,
    )  # fmt: skip
    results: list[Result] = []
    reloads: list[Summary] = []

    with SyslogReceiver(log_path, port=SYSLOG_PORT) as syslog, start_backends() as backends:
        with HAProxyProcess(HERE / phases[0].config) as haproxy:
            print(
                f"haproxy pid {haproxy.pid} on 127.0.0.1:{FRONTEND_PORT}, "
                f"{len(list(backends))} backends, {total_requests} requests "
                f"at {rate:g}/s over {total_seconds:g} s"
            )
            sender = threading.Thread(target=lambda: results.extend(generator.run()))
            started = time.time()
            sender.start()

            boundary = started
            for previous, phase in itertools.pairwise(phases):
                boundary += previous.duration
                time.sleep(max(0.0, boundary - time.time()))
                reloaded_at = time.time()
                haproxy.reload(HERE / phase.config, timeout=30)
                reloads.append({
                    "at": iso(reloaded_at), "epoch": round(reloaded_at, 3),
                    "config": phase.config, "workers_replaced_at": iso(time.time()),
                })  # fmt: skip
                print(f"{iso(reloaded_at)} reloaded {phase.config}")

            sender.join(timeout=total_seconds + 60)
            finished = time.time()
        syslog.wait_idle(quiet=1.0)

    return Replay(results, reloads, started, finished)


def summarize_phases(phases: Sequence[Phase], run: Replay, log_lines: list[str]) -> list[Summary]:
    """Split the run at the reload times and summarize each phase from both sides."""
    edges = [run.started, *(float(r["epoch"]) for r in run.reloads), run.finished + 1]
    records = []
    for index, phase in enumerate(phases):
        start, end = edges[index], edges[index + 1]
        in_phase = [r for r in run.results if start <= r.started_at < end]
        summary = summarize(in_phase)
        log_summary = summarize_log(log_lines, start, end)
        print_phase(phase.name, summary, log_summary)
        records.append({
            "name": phase.name, "config": phase.config,
            "start": iso(start), "end": iso(min(end, run.finished)),
            "start_epoch": round(start, 3), "end_epoch": round(min(end, run.finished), 3),
            "client": summary, "log": log_summary,
        })  # fmt: skip
    return records


def bad_rule() -> Summary:
    """Locate the wrong ACL and the rule that uses it in haproxy-bad.cfg."""
    bad = HERE / "haproxy-bad.cfg"
    acl_line, acl_text = find_line(bad, r"acl path_search")
    use_line, use_text = find_line(bad, r"use_backend be_search")
    return {
        "file": bad.name, "line": acl_line, "text": acl_text,
        "use_backend_line": use_line, "use_backend_text": use_text,
        "backend": "be_search",
        "why": "the optional group (search|suggest)? lets the regex match every "
               "/api/v<N>/ path, so all API requests reach be_search",
        "fixed_in": "haproxy-fixed.cfg",
    }  # fmt: skip


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rate", type=float, default=120.0, help="requests per second")
    parser.add_argument(
        "--baseline", type=float, default=40.0, help="length of the baseline phase, seconds"
    )
    parser.add_argument(
        "--incident", type=float, default=100.0, help="length of the incident phase, seconds"
    )
    parser.add_argument(
        "--recovery", type=float, default=40.0, help="length of the recovery phase, seconds"
    )
    parser.add_argument(
        "--seed", type=int, default=2200, help="seed of the client addresses and the request draw"
    )
    parser.add_argument(
        "--out",
        type=Path,
        default=HERE,
        help="directory for haproxy.log, timeline.json and traffic.yaml",
    )
    return parser.parse_args()


def main() -> None:
    args = parse_args()
    phases = [
        Phase("baseline", "haproxy-good.cfg", args.baseline),
        Phase("incident", "haproxy-bad.cfg", args.incident),
        Phase("recovery", "haproxy-fixed.cfg", args.recovery),
    ]
    mix = Mix(HERE / "regions.csv", args.seed)
    total_requests = int(args.rate * sum(p.duration for p in phases))

    args.out.mkdir(parents=True, exist_ok=True)
    log_path = args.out / "haproxy.log"
    log_path.unlink(missing_ok=True)
    profile = yaml.safe_dump(mix.profile(total_requests), sort_keys=False, width=99)
    (args.out / "traffic.yaml").write_text(profile)

    run = replay(phases, mix, args.rate, args.seed, log_path)

    log_lines = log_path.read_text().splitlines()
    records = summarize_phases(phases, run, log_lines)
    timeline = {
        "log": log_path.name,
        "log_format": "rsyslog RFC 3164 prefix + HAProxy 2.6 option httplog, "
                      "captured request headers {Host|X-Forwarded-For}",
        "syslog_host": "lb1",
        "frontend": "fe_platform",
        "regions": "regions.csv",
        "traffic_profile": "traffic.yaml",
        "rate_per_second": args.rate,
        "seed": args.seed,
        "requests_sent": len(run.results),
        "log_lines": len(log_lines),
        "phases": records,
        "reloads": run.reloads,
        "bad_rule": bad_rule(),
        "overloaded_servers": [f"be_search/{name}" for name in POOLS["be_search"][0]],
        "starved_servers": [f"be_api/{name}" for name in POOLS["be_api"][0]],
        "most_affected_regions": most_affected_regions(records[1]["client"]),
    }  # fmt: skip
    (args.out / "timeline.json").write_text(json.dumps(timeline, indent=2) + "\n")
    print(f"\nwrote {log_path} ({len(log_lines)} lines) and {args.out / 'timeline.json'}")


if __name__ == "__main__":
    main()
