"""Benchmark ``lbguard logs`` against ``halog -srv`` and GoAccess on the same large logs.

Builds (once, cached in --workdir) a multi-million-line HAProxy ``option httplog`` log by
expanding examples/incident/haproxy.log, the log of a real HAProxy 2.6: template lines are
drawn at random (seeded) and given new, increasing timestamps. It also writes the same
requests as an NGINX ``combined`` log. Then, each in its own child process so that
``os.wait4`` reports that child's peak resident set size:

1. ``halog -srv`` reads the HAProxy log from stdin;
2. lbguard per-server statistics: ``load_logs`` plus one GROUP BY per backend/server and
   status class, whose counts must equal halog's, server by server;
3. ``lbguard logs LOG --format json`` end to end (parse, aggregates, timeline, change
   points);
4. ``goaccess --log-format=COMBINED -o report.json`` on the NGINX log;
5. ``lbguard logs`` on the NGINX log, whose request and status counts must equal
   GoAccess's.

Every measurement runs --repeat times; the median time and the largest peak RSS are kept.

Usage: .venv/bin/python bench/logs_analysis.py [--lines N] [--repeat N] [--workdir DIR]
Target: lbguard lines/s at least halog's, on the same machine and file.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import random
import re
import shutil
import statistics
import subprocess
import sys
import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
TEMPLATES = ROOT / "examples" / "incident" / "haproxy.log"
START = datetime(2026, 3, 2, tzinfo=UTC)
MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")

# Syslog time, host and tag, client, [accept date], then the rest of the httplog line.
LINE = re.compile(
    r"^\w{3} [ \d]\d \d\d:\d\d:\d\d (?P<tag>\S+ \S+) (?P<client>\S+) \[[^\]]+\] (?P<rest>.*)$"
)
REQUEST = re.compile(r'"(?P<request>[^"]*)"$')
FIELDS = re.compile(r"^\S+ \S+ \S+ (?P<status>-?\d+) (?P<bytes>\d+) ")
XFF = re.compile(r"\{[^|}]*\|(?P<xff>[^|}]*)\}")

COUNTS_SCRIPT = """
import json, sys
import duckdb
from lbguard.logs import load_logs
con = duckdb.connect()
con.execute("SET enable_progress_bar = false")
load = load_logs([sys.argv[1]], log_format=sys.argv[2], con=con)
rows = load.con.execute('''
    SELECT coalesce(pool, '-') || '/' || coalesce(server, '<NOSRV>'),
        CASE WHEN status BETWEEN 100 AND 599 THEN (status // 100)::VARCHAR || 'xx'
            ELSE 'other' END,
        count(*)
    FROM requests GROUP BY ALL''').fetchall()
print(json.dumps(rows))
"""


@dataclass(frozen=True)
class Run:
    """One measured child process."""

    seconds: float
    cpu_seconds: float
    """User plus system CPU time of the child, which other load on the machine does not
    inflate the way it inflates wall time."""

    max_rss_mb: float
    output: str


def run_child(command: list[str], stdin_path: Path | None = None) -> Run:
    """Run a command under ``/usr/bin/time -v``, which reports that child's own peak
    resident set size; return its wall time, peak RSS and standard output."""
    report = Path(os.environ.get("TMPDIR", "/tmp")) / f"lbguard-bench-time-{os.getpid()}.txt"
    with open(stdin_path, "rb") if stdin_path else open(os.devnull, "rb") as stdin:
        start = time.perf_counter()
        result = subprocess.run(
            ["/usr/bin/time", "-v", "-o", str(report), *command],
            stdin=stdin,
            capture_output=True,
            check=False,
        )
        seconds = time.perf_counter() - start
    if result.returncode not in (0, 1):
        raise RuntimeError(f"{command[0]} failed: {result.stderr.decode()[-2000:]}")

    text = report.read_text(encoding="utf-8")
    report.unlink()
    match = re.search(r"Maximum resident set size \(kbytes\): (\d+)", text)
    rss = int(match.group(1)) / 1024 if match else float("nan")
    cpu = sum(
        float(value) for value in re.findall(r"(?:User|System) time \(seconds\): ([\d.]+)", text)
    )
    return Run(seconds, cpu, rss, result.stdout.decode("utf-8", errors="replace"))


def measure(command: list[str], repeat: int, stdin_path: Path | None = None) -> Run:
    """Median time and largest peak RSS over ``repeat`` runs, each in a fresh child."""
    runs = [run_child(command, stdin_path) for _ in range(repeat)]
    return Run(
        statistics.median(r.seconds for r in runs),
        statistics.median(r.cpu_seconds for r in runs),
        max(r.max_rss_mb for r in runs),
        runs[-1].output,
    )


def generate(haproxy: Path, nginx: Path, lines: int, seed: int = 7) -> None:
    """Write both logs unless they exist: ``lines`` requests spread over one day."""
    if haproxy.exists() and nginx.exists():
        return
    templates = []
    for text in TEMPLATES.read_text(encoding="utf-8").splitlines():
        match = LINE.match(text)
        if match is None:
            continue  # startup events and other non-request lines
        request = REQUEST.search(text)
        fields = FIELDS.match(match["rest"])
        xff = XFF.search(text)
        if request is None or fields is None or xff is None:
            continue
        templates.append(
            (match["tag"], match["rest"], xff["xff"] or "192.0.2.1", request["request"],
             fields["status"], fields["bytes"])
        )  # fmt: skip

    rng = random.Random(seed)
    step = 86_400 / lines
    partial_h, partial_n = haproxy.with_suffix(".partial"), nginx.with_suffix(".partial")
    with (
        open(partial_h, "w", encoding="ascii", buffering=1 << 20) as out_h,
        open(partial_n, "w", encoding="ascii", buffering=1 << 20) as out_n,
    ):
        batch_h: list[str] = []
        batch_n: list[str] = []
        for index in range(lines):
            when = START + timedelta(seconds=index * step)
            tag, rest, client, request, status, size = templates[rng.randrange(len(templates))]
            port = 1024 + index % 60000
            syslog = f"{MONTHS[when.month - 1]} {when.day:2d} {when:%H:%M:%S}"
            accept = f"{when:%d/%b/%Y:%H:%M:%S}.{when.microsecond // 1000:03d}"
            batch_h.append(f"{syslog} {tag} {client}:{port} [{accept}] {rest}\n")
            status_text = status if int(status) > 0 else "499"
            batch_n.append(
                f'{client} - - [{when:%d/%b/%Y:%H:%M:%S} +0000] "{request}" {status_text} '
                f'{size} "-" "bench/1.0"\n'
            )
            if len(batch_h) == 20_000:
                out_h.write("".join(batch_h))
                out_n.write("".join(batch_n))
                batch_h.clear()
                batch_n.clear()
        out_h.write("".join(batch_h))
        out_n.write("".join(batch_n))
    partial_h.rename(haproxy)
    partial_n.rename(nginx)


def halog_counts(output: str) -> dict[tuple[str, str], int]:
    """Parse ``halog -srv``: ``#srv_name 1xx 2xx 3xx 4xx 5xx other tot_req ...``."""
    counts: dict[tuple[str, str], int] = {}
    for line in output.splitlines():
        if line.startswith("#") or not line.strip():
            continue
        fields = line.split()
        for name, value in zip(("1xx", "2xx", "3xx", "4xx", "5xx", "other"), fields[1:7],
                               strict=True):  # fmt: skip
            if int(value):
                counts[(fields[0], name)] = int(value)
    return counts


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--lines", type=int, default=5_000_000)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--workdir", type=Path, default=ROOT / "bench" / "out")
    args = parser.parse_args()

    args.workdir.mkdir(parents=True, exist_ok=True)
    haproxy = args.workdir / f"incident-{args.lines}.log"
    nginx = args.workdir / f"incident-{args.lines}-combined.log"
    started = time.perf_counter()
    generate(haproxy, nginx, args.lines)
    print(f"logs ready in {time.perf_counter() - started:.1f} s: {haproxy} "
          f"({haproxy.stat().st_size / 1e6:.0f} MB), {nginx}", file=sys.stderr)  # fmt: skip

    load = os.getloadavg()[0]
    python = sys.executable
    lbguard = str(Path(python).parent / "lbguard")
    results: dict[str, Run] = {}

    halog = shutil.which("halog") or "/usr/sbin/halog"
    results["halog -srv"] = measure([halog, "-srv", "-q"], args.repeat, stdin_path=haproxy)
    results["lbguard per-server counts"] = measure(
        [python, "-c", COUNTS_SCRIPT, str(haproxy), "haproxy"], args.repeat
    )
    report = args.workdir / "logs-report.json"
    results["lbguard logs (full report)"] = measure(
        [lbguard, "logs", str(haproxy), "--log-format", "haproxy", "--format", "json",
         "-o", str(report)], args.repeat,
    )  # fmt: skip

    goaccess_report = args.workdir / "goaccess.json"
    results["goaccess (COMBINED)"] = measure(
        ["goaccess", str(nginx), "--log-format=COMBINED", "--no-global-config", "-o",
         str(goaccess_report)], args.repeat,
    )  # fmt: skip
    nginx_report = args.workdir / "logs-report-nginx.json"
    results["lbguard logs nginx (full report)"] = measure(
        [lbguard, "logs", str(nginx), "--log-format", "nginx", "--format", "json",
         "-o", str(nginx_report)], args.repeat,
    )  # fmt: skip

    # Per-server counts: halog keys backend/server, lbguard the same with <NOSRV>.
    expected = halog_counts(results["halog -srv"].output)
    observed = {
        (key, status): count
        for key, status, count in json.loads(results["lbguard per-server counts"].output)
    }
    halog_equal = expected == observed
    differences = sorted(set(expected.items()) ^ set(observed.items()))[:10]

    goaccess = json.loads(goaccess_report.read_text(encoding="utf-8"))
    ours = json.loads(nginx_report.read_text(encoding="utf-8"))
    goaccess_total = int(goaccess["general"]["total_requests"])
    goaccess_equal = goaccess_total == ours["totals"]["requests"]

    size_mb = haproxy.stat().st_size / 1e6
    print(f"machine: {platform.machine()}, {os.cpu_count()} CPUs, Python "
          f"{platform.python_version()}, {platform.platform()}")  # fmt: skip
    print(f"file: {args.lines:,} lines, {size_mb:.0f} MB; median of {args.repeat} runs")
    print(f"load average before the runs: {load:.2f}")
    print(f"{'tool':34} {'wall s':>8} {'CPU s':>8} {'lines/s wall':>13} {'lines/s CPU':>12} "
          f"{'peak RSS MB':>12}")  # fmt: skip
    for name, run in results.items():
        cpu_rate = args.lines / max(run.cpu_seconds, 1e-3)
        print(f"{name:34} {run.seconds:8.2f} {run.cpu_seconds:8.2f} "
              f"{args.lines / run.seconds:13,.0f} {cpu_rate:12,.0f} "
              f"{run.max_rss_mb:12.0f}")  # fmt: skip
    halog_rate = args.lines / results["halog -srv"].seconds
    ours_rate = args.lines / results["lbguard per-server counts"].seconds
    print(f"lbguard per-server counts / halog -srv wall throughput: {ours_rate / halog_rate:.3f}")
    print(f"per-server counts equal to halog's: {halog_equal}"
          + ("" if halog_equal else f" (first differences: {differences})"))  # fmt: skip
    print(f"total requests equal to GoAccess's ({goaccess_total:,}): {goaccess_equal}")
    return 0 if halog_equal and goaccess_equal else 1


if __name__ == "__main__":
    sys.exit(main())
