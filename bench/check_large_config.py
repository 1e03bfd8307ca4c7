"""Time ``lbguard check`` end to end on a large synthetic HAProxy configuration.

The configuration has N backends of M servers each, and one frontend that routes to every
backend with its own ``path_beg`` ACL; one shadowed rule and one weight typo are planted so
that the run reports findings. The traffic profile
sends one path to each backend. Each run is a separate ``lbguard`` process, measured by
wall-clock time, by the CPU time (user + system) and by the peak resident set size that
``os.wait4`` reports for it. The table gives the median of the runs; CPU time varies less
than wall-clock time when other processes load the machine.

Runs keep compiled bytecode under bench/out/pycache, as an installed package keeps it,
even when PYTHONDONTWRITEBYTECODE is set; one untimed run per scenario writes it first.

Usage: .venv/bin/python bench/check_large_config.py [--backends N] [--servers N] [--repeat N]
Targets: under 2 s (median wall-clock time) and under 500 MB per run.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

OUT = Path(__file__).parent / "out"
TARGET_SECONDS = 2.0
TARGET_MEGABYTES = 500.0


def write_config(path: Path, backends: int, servers: int) -> None:
    """Write the configuration; server addresses stay on 127.0.0.1 with distinct ports."""
    lines = [
        "global",
        "    maxconn 200000",
        "",
        "defaults",
        "    mode http",
        "    timeout connect 2s",
        "    timeout client 10s",
        "    timeout server 10s",
        "",
        "frontend fe_main",
        "    bind 127.0.0.1:8080",
    ]
    lines += [f"    acl is_svc{i} path_beg /svc{i}/" for i in range(backends)]
    lines += [f"    use_backend be_svc{i} if is_svc{i}" for i in range(backends)]
    # Planted: a rule that the earlier is_svc1 rule shadows (LB101).
    lines.append("    use_backend be_svc0 if { path_beg /svc1/admin }")
    lines.append("    default_backend be_svc0")

    port = 10000
    for i in range(backends):
        lines += ["", f"backend be_svc{i}", "    balance roundrobin"]
        for j in range(servers):
            # Planted: one weight typo (LB202) in the last backend.
            weight = 100 if (i, j) == (backends - 1, 0) else 10 + 10 * (j % 2)
            lines.append(f"    server s{j} 127.0.0.1:{port} check weight {weight}")
            port = port + 1 if port < 65000 else 10000
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")


def write_traffic(path: Path, backends: int) -> None:
    """Write a profile with one path per backend, the first backends weighted higher."""
    lines = ["requests: 1000000", "paths:"]
    lines += [f"  /svc{i}/items: {1 + (backends - i) % 7}" for i in range(backends)]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")


@dataclass(frozen=True)
class Run:
    label: str
    seconds: float
    cpu_seconds: float
    megabytes: float
    exit_code: int


def child_environment() -> dict[str, str]:
    """Return the environment of the measured runs: bytecode cached under bench/out."""
    environment = dict(os.environ)
    environment.pop("PYTHONDONTWRITEBYTECODE", None)
    environment["PYTHONPYCACHEPREFIX"] = str(OUT / "pycache")
    return environment


def measure(label: str, command: list[str]) -> Run:
    """Run one process; return its wall time, CPU time and peak resident set size."""
    start = time.perf_counter()
    process = subprocess.Popen(
        command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=child_environment()
    )
    _, status, usage = os.wait4(process.pid, 0)
    seconds = time.perf_counter() - start
    process.returncode = os.waitstatus_to_exitcode(status)
    stderr = process.stderr.read().decode() if process.stderr else ""
    if process.returncode not in (0, 1):
        raise SystemExit(f"{label} failed with exit code {process.returncode}:\n{stderr}")
    # Linux reports ru_maxrss in kilobytes.
    cpu = usage.ru_utime + usage.ru_stime
    return Run(label, seconds, cpu, usage.ru_maxrss / 1024, process.returncode)


def load_average() -> str:
    """Return the 1, 5 and 15 minute load averages from /proc/loadavg (Linux)."""
    try:
        return " ".join(Path("/proc/loadavg").read_text(encoding="ascii").split()[:3])
    except OSError:
        return "unknown"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--backends", type=int, default=5000)
    parser.add_argument("--servers", type=int, default=10, help="servers per backend")
    parser.add_argument("--repeat", type=int, default=3, help="runs per measurement")
    args = parser.parse_args()

    lbguard = shutil.which("lbguard", path=str(Path(sys.executable).parent))
    if lbguard is None:
        raise SystemExit("lbguard console script not found next to this Python")

    OUT.mkdir(exist_ok=True)
    config = OUT / "large.cfg"
    traffic = OUT / "large-traffic.yaml"
    write_config(config, args.backends, args.servers)
    write_traffic(traffic, args.backends)
    print(
        f"config: {args.backends:,} backends, {args.backends * args.servers:,} servers, "
        f"{args.backends:,} ACL rules, {config.stat().st_size / 1e6:.1f} MB"
    )

    base = [lbguard, "check", str(config)]
    scenarios = {
        "json, with traffic": [
            *base,
            "--traffic",
            str(traffic),
            "--format",
            "json",
            "-o",
            str(OUT / "large-report.json"),
        ],
        "text, with traffic": [*base, "--traffic", str(traffic), "-o", str(OUT / "large.txt")],
        "json, no traffic": [*base, "--format", "json", "-o", str(OUT / "large-nt.json")],
    }

    failed = False
    print(f"load average before: {load_average()}")
    print(
        f"{'scenario':<22} {'median s':>8} {'best s':>8} {'worst s':>8} {'cpu s':>8} "
        f"{'peak MB':>8}  exit"
    )
    for label, command in scenarios.items():
        measure(label, command)
        runs = [measure(label, command) for _ in range(args.repeat)]
        median = statistics.median(run.seconds for run in runs)
        best = min(run.seconds for run in runs)
        worst = max(run.seconds for run in runs)
        cpu = statistics.median(run.cpu_seconds for run in runs)
        peak = max(run.megabytes for run in runs)
        print(
            f"{label:<22} {median:8.2f} {best:8.2f} {worst:8.2f} {cpu:8.2f} {peak:8.0f}  "
            f"{runs[0].exit_code}"
        )
        failed |= median > TARGET_SECONDS or peak > TARGET_MEGABYTES

    print(f"load average after: {load_average()}")
    print(
        f"targets: {TARGET_SECONDS} s, {TARGET_MEGABYTES:.0f} MB: {'MISSED' if failed else 'met'}"
    )
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
