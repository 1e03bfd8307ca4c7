"""Compare `lbguard.logs.load_logs` with ``halog -srv`` on the same large HAProxy log.

Generates (once, cached in --workdir) a synthetic HAProxy ``option httplog`` log with an
RFC 3164 syslog header, several frontends, backends and servers, captured headers,
``<NOSRV>`` lines, aborted requests, retries and query strings, and an nginx
``combined`` log. Then, each in its own child process so that ``os.wait4`` reports its
own peak resident set size:

- ``halog -srv`` reads the HAProxy log from stdin;
- ``load_logs`` reads the same file, then a GROUP BY counts requests per backend/server
  and status class, and the counts must equal halog's, server by server;
- ``load_logs`` reads the nginx log (lines/s only: combined logs name no server);
- ``load_logs`` reads the HAProxy log into a file-backed database with DuckDB's
  ``memory_limit`` far below the file size, to show that peak memory stays bounded.

Every measurement runs --repeat times; the median is reported, with the child's CPU time
(user + system, from ``os.wait4``), which varies less than wall time on a shared machine.

Usage: .venv/bin/python bench/logs_parse_throughput.py [--lines N] [--nginx-lines N]
           [--repeat N] [--workdir DIR] [--memory-limit 256MB] [--threads N]
Target: lbguard lines/s at least halog's, on the same machine and file.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

HALOG_CANDIDATES = ("/usr/sbin/halog", "/usr/bin/halog")

BACKENDS = {
    "web": [f"web{i}" for i in range(1, 7)],
    "api": [f"api-{zone}{i}" for zone in "ab" for i in range(1, 3)],
    "static": ["static1", "static2", "static3"],
    "legacy": ["10.0.3.11:8080", "10.0.3.12:8080"],
}
FRONTENDS = {"www~": ("web", "static"), "api~": ("api",), "www-http": ("web", "legacy")}
PATHS = (
    "/",
    "/index.html",
    "/search",
    "/api/v2/orders",
    "/api/v2/users/me",
    "/static/app.3f9c.js",
    "/static/site.css",
    "/img/logo.png",
    "/checkout/cart",
    "/login",
)
METHODS = ("GET",) * 8 + ("POST", "HEAD", "PUT", "DELETE")
AGENTS = (
    "Mozilla/5.0 (X11; Linux x86_64; rv:124.0) Gecko/20100101 Firefox/124.0",
    "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 Safari/605.1.15",
    "curl/8.5.0",
    "kube-probe/1.29",
)
MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")


@dataclass(frozen=True)
class Run:
    """One measured child process."""

    seconds: float
    cpu_seconds: float
    """User plus system time of the child and its threads."""

    max_rss_mb: float
    output: str


def haproxy_line(rng: random.Random, when: datetime, pid: int) -> str:
    """Return one httplog line; a day below 10 is space-padded as syslog daemons write it."""
    frontend = rng.choice(tuple(FRONTENDS))
    backend = rng.choice(FRONTENDS[frontend])
    server = rng.choice(BACKENDS[backend])
    client = f"198.51.{rng.randrange(256)}.{rng.randrange(1, 255)}:{rng.randrange(1024, 65536)}"
    tq, tw, tc, tr = rng.randrange(5), 0, rng.randrange(3), rng.randrange(1, 400)
    status, size, term = rng.choice((200,) * 14 + (301, 304, 404, 500)), 0, "----"
    retries = "0"

    draw = rng.random()
    if draw < 0.01:
        server, tc, tr, status, term = "<NOSRV>", -1, -1, 503, "SC--"
    elif draw < 0.015:
        tq, tw, tc, tr, status, term = -1, -1, -1, -1, -1, "CR--"
    elif draw < 0.025:
        tr, status, term = -1, 504, "sH--"
    elif draw < 0.03:
        retries = rng.choice(("1", "+1", "2"))
    if status not in (-1, 304):
        size = rng.randrange(150, 60000)

    total = sum(t for t in (tq, tw, tc, tr) if t > 0) + rng.randrange(3)
    method = rng.choice(METHODS)
    path = rng.choice(PATHS)
    if rng.random() < 0.4:
        path += f"?page={rng.randrange(50)}&q=item{rng.randrange(1000)}"
    request = "" if status == -1 else f"{method} {path} HTTP/1.1"
    headers = ""
    if frontend != "api~":
        xff = f"203.0.113.{rng.randrange(1, 255)}" if rng.random() < 0.5 else ""
        headers = f" {{www.example.com|{xff}|{rng.choice(AGENTS)}}} {{|{size}}}"

    stamp = when.strftime("%d/%b/%Y:%H:%M:%S.") + f"{when.microsecond // 1000:03d}"
    syslog = f"{MONTHS[when.month - 1]} {when.day:2d} {when:%H:%M:%S} lb1 haproxy[{pid}]:"
    return (
        f"{syslog} {client} [{stamp}] {frontend} {backend}/{server} "
        f"{tq}/{tw}/{tc}/{tr}/{total} {status} {size} - - {term} "
        f"{rng.randrange(900)}/{rng.randrange(300)}/{rng.randrange(40)}/{rng.randrange(20)}/"
        f'{retries} 0/0{headers} "{request}"\n'
    )


def nginx_line(rng: random.Random, when: datetime) -> str:
    client = f"198.51.{rng.randrange(256)}.{rng.randrange(1, 255)}"
    path = rng.choice(PATHS)
    if rng.random() < 0.4:
        path += f"?page={rng.randrange(50)}"
    status = rng.choice((200,) * 14 + (301, 304, 404, 502))
    referer = rng.choice(("-", "https://www.example.com/", "https://www.example.com/search"))
    return (
        f'{client} - - [{when:%d/%b/%Y:%H:%M:%S} +0000] "{rng.choice(METHODS)} {path} '
        f'HTTP/1.1" {status} {rng.randrange(150, 60000)} "{referer}" "{rng.choice(AGENTS)}"\n'
    )


def generate(path: Path, lines: int, kind: str, seed: int = 7) -> None:
    """Write ``lines`` lines of ``kind`` (haproxy or nginx) unless the file exists."""
    if path.exists():
        return
    rng = random.Random(seed)
    start = datetime(2024, 3, 1, tzinfo=UTC)
    partial = path.with_suffix(".partial")
    with open(partial, "w", encoding="ascii", buffering=1 << 20) as handle:
        batch: list[str] = []
        for index in range(lines):
            when = start + timedelta(milliseconds=index * 7)
            if kind == "haproxy":
                batch.append(haproxy_line(rng, when, 2000 + index // 100_000))
            else:
                batch.append(nginx_line(rng, when))
            if len(batch) == 10_000:
                handle.write("".join(batch))
                batch.clear()
        handle.write("".join(batch))
    partial.rename(path)


def measure(command: list[str], stdin_path: str | None = None) -> Run:
    """Run ``command`` to completion; return its wall time, peak RSS and stdout.

    The child is reaped with ``os.wait4`` so that the peak RSS is its own.
    """
    with open(stdin_path or os.devnull, "rb") as stdin:
        started = time.perf_counter()
        process = subprocess.Popen(command, stdin=stdin, stdout=subprocess.PIPE)
        assert process.stdout is not None
        output = process.stdout.read()
        _, status, usage = os.wait4(process.pid, 0)
        seconds = time.perf_counter() - started
    process.returncode = os.waitstatus_to_exitcode(status)
    if process.returncode != 0:
        raise SystemExit(f"{command[0]} failed with exit code {process.returncode}")
    # ru_maxrss is in KiB on Linux.
    return Run(seconds, usage.ru_utime + usage.ru_stime, usage.ru_maxrss / 1024, output.decode())


def halog_counts(output: str) -> dict[str, list[int]]:
    """Per ``backend/server``: requests per status class, then the total (``-srv``)."""
    counts: dict[str, list[int]] = {}
    for line in output.splitlines():
        if line.startswith("#") or not line.strip():
            continue
        fields = line.split()
        # Columns 1xx, 2xx, 3xx, 4xx, 5xx, other (-1 and the rest), tot_req.
        values = [int(value) for value in fields[1:8]]
        # TCP sessions appear with no requests; lbguard counts HTTP rows only here too.
        if values[-1]:
            counts[fields[0]] = values
    return counts


def cpu_seconds() -> float:
    """User plus system time of this process and its threads so far."""
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def child(kind: str, path: str, database: str, memory_limit: str, threads: int) -> None:
    """Load one file, count requests per server and status class, print JSON."""
    import duckdb

    from lbguard.logs import load_logs

    con = duckdb.connect(database or ":memory:")
    con.execute("SET TimeZone = 'UTC'")
    # Only the bounded run (a file database) gets the memory limit; the other runs keep
    # DuckDB's default of 80 % of RAM.
    if database and memory_limit:
        con.execute(f"SET memory_limit = '{memory_limit}'")
        con.execute(f"SET temp_directory = '{database}.tmp'")
    if threads:
        con.execute(f"SET threads = {threads}")

    started, cpu_started = time.perf_counter(), cpu_seconds()
    load = load_logs([path], log_format=kind, con=con)
    loaded, cpu_loaded = time.perf_counter(), cpu_seconds()
    classes = ", ".join(
        f"count(*) FILTER (WHERE status // 100 = {digit})" for digit in range(1, 6)
    )
    rows = con.execute(
        f"SELECT pool || '/' || coalesce(server, '<NOSRV>'), {classes}, "
        "count(*) FILTER (WHERE status IS NULL OR status NOT BETWEEN 100 AND 599), "
        f"count(*) FROM {load.table} WHERE lb = 'haproxy-http' GROUP BY ALL"
    ).fetchall()
    counted = time.perf_counter()
    result = {
        "load_seconds": loaded - started,
        "load_cpu_seconds": cpu_loaded - cpu_started,
        "group_seconds": counted - loaded,
        "lines": sum(stats.lines for stats in load.files),
        "parsed": load.parsed,
        "malformed": load.malformed,
        "counts": {row[0]: [int(value) for value in row[1:]] for row in rows},
    }
    print(json.dumps(result))


def machine() -> str:
    model = "unknown CPU"
    with open("/proc/cpuinfo") as cpuinfo:
        for line in cpuinfo:
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    nproc = subprocess.run(["nproc"], capture_output=True, text=True, check=True).stdout
    with open("/proc/meminfo") as meminfo:
        total_kib = int(meminfo.readline().split()[1])
    return f"{model}, nproc {nproc.strip()}, {total_kib / 2**20:.1f} GiB RAM"


def report(name: str, runs: list[Run], lines: int) -> float:
    seconds = statistics.median(run.seconds for run in runs)
    cpu = statistics.median(run.cpu_seconds for run in runs)
    rss = statistics.median(run.max_rss_mb for run in runs)
    rate = lines / seconds
    print(
        f"{name:34s} {seconds:8.2f} s {rate:12,.0f} lines/s  CPU {cpu:7.2f} s "
        f"{lines / cpu:12,.0f} lines/CPU-s  peak RSS {rss:7.0f} MB (median of {len(runs)})"
    )
    return rate


def lbguard_run(args: argparse.Namespace, kind: str, path: Path, database: str = "") -> Run:
    command = [sys.executable, __file__, "--child", kind, str(path)]
    command += ["--threads", str(args.threads)]
    if database:
        command += ["--database", database, "--memory-limit", args.memory_limit]
    return measure(command)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--lines", type=int, default=3_000_000, help="HAProxy log lines")
    parser.add_argument("--nginx-lines", type=int, default=1_000_000, help="nginx log lines")
    parser.add_argument("--repeat", type=int, default=3, help="runs per measurement")
    parser.add_argument("--workdir", default=os.path.join(tempfile.gettempdir(), "lbguard-bench"))
    parser.add_argument(
        "--memory-limit", default="256MB", help="DuckDB memory_limit for the bounded run"
    )
    parser.add_argument("--threads", type=int, default=0, help="DuckDB threads (0: default)")
    parser.add_argument("--child", nargs=2, metavar=("FORMAT", "FILE"), help=argparse.SUPPRESS)
    parser.add_argument("--database", default="", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(args.child[0], args.child[1], args.database, args.memory_limit, args.threads)
        return

    halog = next((path for path in HALOG_CANDIDATES if os.path.exists(path)), None)
    if halog is None:
        raise SystemExit("halog not found; install the haproxy package")
    workdir = Path(args.workdir)
    workdir.mkdir(parents=True, exist_ok=True)
    haproxy_log = workdir / f"haproxy-{args.lines}.log"
    nginx_log = workdir / f"nginx-{args.nginx_lines}.log"
    generate(haproxy_log, args.lines, "haproxy")
    generate(nginx_log, args.nginx_lines, "nginx")
    size_mb = haproxy_log.stat().st_size / 2**20
    print(f"machine: {machine()}")
    print(f"HAProxy log: {haproxy_log} ({args.lines:,} lines, {size_mb:.0f} MB)")

    halog_runs = [measure([halog, "-srv", "-q"], str(haproxy_log)) for _ in range(args.repeat)]
    lbguard_runs = [lbguard_run(args, "haproxy", haproxy_log) for _ in range(args.repeat)]
    expected = halog_counts(halog_runs[0].output)
    results = [json.loads(run.output) for run in lbguard_runs]
    for result in results:
        if result["counts"] != expected:
            raise SystemExit("per-server counts differ between halog and lbguard")
    print(f"per-server counts identical for {len(expected)} servers")
    halog_rate = report("halog -srv", halog_runs, args.lines)
    rate = report("lbguard load_logs + GROUP BY", lbguard_runs, args.lines)
    load = statistics.median(result["load_seconds"] for result in results)
    group = statistics.median(result["group_seconds"] for result in results)
    load_cpu = statistics.median(result["load_cpu_seconds"] for result in results)
    print(
        f"  of which load_logs {load:.2f} s ({load_cpu:.2f} CPU s, "
        f"{args.lines / load:,.0f} lines/s), GROUP BY {group:.2f} s"
    )

    nginx_runs = [lbguard_run(args, "nginx", nginx_log) for _ in range(args.repeat)]
    report("lbguard load_logs, nginx combined", nginx_runs, args.nginx_lines)

    bounded: list[Run] = []
    for index in range(args.repeat):
        database = str(workdir / f"bounded-{index}.duckdb")
        try:
            bounded.append(lbguard_run(args, "haproxy", haproxy_log, database))
        finally:
            for leftover in (database, database + ".wal"):
                if os.path.exists(leftover):
                    os.unlink(leftover)
            shutil.rmtree(database + ".tmp", ignore_errors=True)
    report(f"lbguard, memory_limit {args.memory_limit}, file DB", bounded, args.lines)
    print(f"lbguard / halog throughput: {rate / halog_rate:.3f}")


if __name__ == "__main__":
    main()
