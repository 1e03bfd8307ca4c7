"""Time ``predict`` over a profile of distinct URIs through ``balance uri``.

Builds a ROWS-row profile with one distinct path per row (``from_columns``, as the log
reader builds it), then predicts a backend of SERVERS servers with ``balance uri``
twice: map-based and ``hash-type consistent``. Each prediction runs in its own child
process so that the peak resident set size reported by ``os.wait4`` belongs to it alone;
the profile is built inside the child and its time is reported separately.

Usage: .venv/bin/python bench/predict_hash.py [--rows N] [--servers N] [--repeat N]
Target: about 1 s per prediction at 1,000,000 rows.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time

TARGET_SECONDS = 1.0


def backend_config(servers: int, consistent: bool) -> str:
    lines = [
        "defaults",
        "    mode http",
        "",
        "frontend fe",
        "    bind 127.0.0.1:8080",
        "    default_backend be",
        "",
        "backend be",
        "    balance uri",
    ]
    if consistent:
        lines.append("    hash-type consistent")
    lines += [f"    server s{i} 127.0.0.1:{10000 + i}" for i in range(servers)]
    return "\n".join(lines) + "\n"


def child(rows: int, servers: int, consistent: bool, directory: str) -> None:
    """Build the profile, predict once, and print the timings as JSON on stdout."""
    import numpy as np

    from lbguard.parsers.haproxy import parse_haproxy
    from lbguard.predict import predict
    from lbguard.traffic import from_columns

    config = os.path.join(directory, f"bench-{os.getpid()}.cfg")
    with open(config, "w") as handle:
        handle.write(backend_config(servers, consistent))
    lb = parse_haproxy([config])
    os.unlink(config)

    started = time.perf_counter()
    ids = np.arange(rows).astype(str).astype(object)
    paths = "/catalog/item/" + ids + "/details"
    profile = from_columns(path=paths, query=np.full(rows, "", dtype=object))
    built = time.perf_counter()

    prediction = predict(lb, profile)
    finished = time.perf_counter()

    pool = prediction.pool("be")
    assert pool is not None
    print(
        json.dumps(
            {
                "profile_seconds": built - started,
                "predict_seconds": finished - built,
                "max_over_mean": pool.max_over_mean,
            }
        )
    )


def run(rows: int, servers: int, consistent: bool) -> dict[str, float]:
    import subprocess
    import tempfile

    with tempfile.TemporaryDirectory() as directory:
        command = [
            sys.executable,
            __file__,
            "--child",
            "--rows",
            str(rows),
            "--servers",
            str(servers),
            "--dir",
            directory,
        ]
        if consistent:
            command.append("--consistent")
        process = subprocess.Popen(command, stdout=subprocess.PIPE)
        assert process.stdout is not None
        output = process.stdout.read()
        _pid, status, usage = os.wait4(process.pid, 0)
        if status != 0:
            raise SystemExit(f"benchmark child failed with status {status}")
    result: dict[str, float] = json.loads(output)
    # ru_maxrss is in kilobytes on Linux.
    result["peak_megabytes"] = usage.ru_maxrss / 1024
    return result


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000, help="profile rows")
    parser.add_argument("--servers", type=int, default=10, help="servers in the backend")
    parser.add_argument("--repeat", type=int, default=3, help="runs per placement")
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--consistent", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--dir", default="", help=argparse.SUPPRESS)
    args = parser.parse_args()

    if args.child:
        child(args.rows, args.servers, args.consistent, args.dir)
        return 0

    print(
        f"balance uri, {args.rows} distinct URIs, {args.servers} servers, "
        f"{args.repeat} runs each; target {TARGET_SECONDS} s per prediction"
    )
    for consistent in (False, True):
        label = "consistent" if consistent else "map-based"
        results = [run(args.rows, args.servers, consistent) for _ in range(args.repeat)]
        best = min(results, key=lambda r: r["predict_seconds"])
        print(
            f"{label:10} predict {best['predict_seconds']:.2f} s (best of {args.repeat}), "
            f"profile build {best['profile_seconds']:.2f} s, "
            f"peak RSS {max(r['peak_megabytes'] for r in results):.0f} MB, "
            f"max/mean {best['max_over_mean']:.3f}"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
