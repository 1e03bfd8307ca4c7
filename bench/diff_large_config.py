"""Time ``lbguard diff`` and measure history growth on a large HAProxy configuration.

The configuration is the one bench/check_large_config.py writes: N backends of M servers
behind one frontend with one ACL and rule per backend. The NEW side changes one server's
weight. Each ``lbguard diff`` and ``lbguard check`` run is a separate process, measured by
its CPU time (user + system, from ``os.wait4``); the table gives the median. Then the
benchmark stores snapshots of the configuration in a fresh history database, as
``lbguard watch`` does on each change, and reports the bytes each snapshot adds.

Usage: .venv/bin/python bench/diff_large_config.py [--backends N] [--servers N] [--repeat N]
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))

from check_large_config import write_config

from lbguard.monitor.history import History
from lbguard.monitor.shares import share_table
from lbguard.parsers import load_config
from lbguard.predict import predict

SNAPSHOTS = 3


def cpu_seconds(command: list[str]) -> tuple[float, int]:
    """Run ``command``; return its CPU time in seconds and its exit code."""
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    _, status, usage = os.wait4(process.pid, 0)
    process.returncode = os.waitstatus_to_exitcode(status)
    return usage.ru_utime + usage.ru_stime, process.returncode


def median_cpu(command: list[str], repeat: int) -> float:
    cpu_seconds(command)  # untimed: writes bytecode and warms the page cache
    return statistics.median(cpu_seconds(command)[0] for _ in range(repeat))


def snapshot_bytes(config: Path, db: Path) -> tuple[float, float]:
    """Store SNAPSHOTS snapshots; return the mean bytes and seconds each one adds."""
    lb = load_config([config])
    shares = share_table(predict(lb))
    with History(db) as history:
        history.connection.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        start_size = db.stat().st_size
        started = time.perf_counter()
        for number in range(SNAPSHOTS):
            history.add_snapshot(lb, shares, f"hash-{number}")
        elapsed = time.perf_counter() - started
        history.connection.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        end_size = db.stat().st_size
    return (end_size - start_size) / SNAPSHOTS, elapsed / SNAPSHOTS


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--backends", type=int, default=2000)
    parser.add_argument("--servers", type=int, default=20)
    parser.add_argument("--repeat", type=int, default=3, help="timed runs per command")
    args = parser.parse_args()

    lbguard = str(Path(sys.executable).with_name("lbguard"))
    with tempfile.TemporaryDirectory(prefix="lbguard-bench-") as temporary:
        directory = Path(temporary)
        old, new = directory / "old.cfg", directory / "new.cfg"
        write_config(old, args.backends, args.servers)
        new.write_text(old.read_text().replace("weight 100\n", "weight 50\n", 1), encoding="utf-8")

        diff = median_cpu([lbguard, "diff", str(old), str(new), "-o", os.devnull], args.repeat)
        check = median_cpu([lbguard, "check", str(old), "-o", os.devnull], args.repeat)
        per_snapshot, seconds = snapshot_bytes(old, directory / "history.db")

    servers = args.backends * args.servers
    print(f"{args.backends} backends x {args.servers} servers ({servers} servers):")
    print(f"  lbguard diff:  {diff:.2f} s CPU (median of {args.repeat})")
    print(f"  lbguard check: {check:.2f} s CPU (median of {args.repeat})")
    print(
        f"  history: {per_snapshot / 1e6:.2f} MB and {seconds:.2f} s per snapshot "
        f"(mean of {SNAPSHOTS})"
    )


if __name__ == "__main__":
    main()
