"""Time ``predict`` over a profile of distinct hash keys, for HAProxy and NGINX hashing.

Builds a ROWS-row profile with one distinct key per row (``from_columns``, as the log
reader builds it), then predicts a pool of SERVERS servers with each case below. Each
prediction runs in its own child process so that the peak resident set size reported by
``os.wait4`` belongs to it alone; the profile is built inside the child and its time is
reported separately. The CPU time of the prediction is reported next to its wall-clock
time, because other processes on a busy machine stretch the latter.

Cases: HAProxy ``balance uri`` map-based and with ``hash-type consistent`` over distinct
paths; NGINX ``hash $request_uri`` and ``hash $request_uri consistent`` over distinct
paths; NGINX ``ip_hash`` over distinct client addresses, half IPv4 and half IPv6.

Usage: .venv/bin/python bench/predict_hash.py [--rows N] [--servers N] [--repeat N]
       [--case NAME ...]
Target: about 1 s per prediction at 1,000,000 rows.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time

TARGET_SECONDS = 1.0

CASES = (
    "haproxy-uri",
    "haproxy-uri-consistent",
    "nginx-ip-hash",
    "nginx-hash",
    "nginx-hash-consistent",
)
"""Benchmark cases, in the order they run."""


def haproxy_config(servers: int, consistent: bool) -> str:
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


def nginx_config(servers: int, method: str) -> str:
    lines = ["events {}", "http {", "    upstream be {", f"        {method};"]
    lines += [f"        server 127.0.0.1:{10000 + i};" for i in range(servers)]
    lines += [
        "    }",
        "    server {",
        "        listen 127.0.0.1:8080;",
        "        location / { proxy_pass http://be; }",
        "    }",
        "}",
    ]
    return "\n".join(lines) + "\n"


NGINX_METHODS = {
    "nginx-ip-hash": "ip_hash",
    "nginx-hash": "hash $request_uri",
    "nginx-hash-consistent": "hash $request_uri consistent",
}


def _parse(case: str, servers: int, directory: str):  # type: ignore[no-untyped-def]
    from lbguard.parsers.haproxy import parse_haproxy
    from lbguard.parsers.nginx import parse_nginx

    config = os.path.join(directory, f"bench-{os.getpid()}.cfg")
    with open(config, "w") as handle:
        if case.startswith("haproxy"):
            handle.write(haproxy_config(servers, case.endswith("consistent")))
        else:
            handle.write(nginx_config(servers, NGINX_METHODS[case]))
    lb = parse_haproxy([config]) if case.startswith("haproxy") else parse_nginx(config)
    os.unlink(config)
    return lb


def _addresses(rows: int):  # type: ignore[no-untyped-def]
    """Return ``rows`` distinct client addresses: IPv4 in the first half, IPv6 after."""
    import numpy as np

    half = rows // 2
    # An odd multiplier permutes the integers modulo 2**32, so the IPv4 addresses differ.
    ipv4 = np.arange(half, dtype=np.int64) * 2654435761 % (1 << 32)
    octets = [(ipv4 >> shift) & 255 for shift in (24, 16, 8, 0)]
    text4 = octets[0].astype(str).astype(object)
    for octet in octets[1:]:
        text4 = text4 + "." + octet.astype(str).astype(object)
    ids = np.arange(rows - half, dtype=np.int64)
    text6 = "2001:db8:" + np.char.mod("%x", ids >> 16).astype(object) + "::"
    text6 = text6 + np.char.mod("%x", ids & 0xFFFF).astype(object)
    return np.concatenate([text4, text6])


def child(rows: int, servers: int, case: str, directory: str) -> None:
    """Build the profile, predict once, and print the timings as JSON on stdout."""
    import numpy as np

    from lbguard.predict import predict
    from lbguard.traffic import from_columns

    lb = _parse(case, servers, directory)

    started = time.perf_counter()
    if case == "nginx-ip-hash":
        profile = from_columns(path=np.full(rows, "/", dtype=object), client_ip=_addresses(rows))
    else:
        ids = np.arange(rows).astype(str).astype(object)
        paths = "/catalog/item/" + ids + "/details"
        profile = from_columns(path=paths, query=np.full(rows, "", dtype=object))
    built = time.perf_counter()

    cpu_started = time.process_time()
    prediction = predict(lb, profile)
    finished = time.perf_counter()
    cpu_seconds = time.process_time() - cpu_started

    pool = prediction.pool("be")
    assert pool is not None
    print(
        json.dumps(
            {
                "profile_seconds": built - started,
                "predict_seconds": finished - built,
                "predict_cpu_seconds": cpu_seconds,
                "max_over_mean": pool.max_over_mean,
            }
        )
    )


def run(rows: int, servers: int, case: str) -> dict[str, float]:
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
            "--case",
            case,
        ]
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
    parser.add_argument("--servers", type=int, default=10, help="servers in the pool")
    parser.add_argument("--repeat", type=int, default=3, help="runs per case")
    parser.add_argument(
        "--case", action="append", choices=CASES, help="case to run (default: every case)"
    )
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--dir", default="", help=argparse.SUPPRESS)
    args = parser.parse_args()

    if args.child:
        child(args.rows, args.servers, args.case[0], args.dir)
        return 0

    print(
        f"{args.rows} distinct keys, {args.servers} servers, {args.repeat} runs each; "
        f"target {TARGET_SECONDS} s per prediction"
    )
    for case in args.case or CASES:
        results = [run(args.rows, args.servers, case) for _ in range(args.repeat)]
        best = min(results, key=lambda r: r["predict_seconds"])
        print(
            f"{case:22} predict {best['predict_seconds']:.2f} s "
            f"(CPU {best['predict_cpu_seconds']:.2f} s, best of {args.repeat}), "
            f"profile build {best['profile_seconds']:.2f} s, "
            f"peak RSS {max(r['peak_megabytes'] for r in results):.0f} MB, "
            f"max/mean {best['max_over_mean']:.3f}"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
