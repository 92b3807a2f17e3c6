"""Where the load generator runs and what CPU it asks for, and what its p99 then says about the
service: `make load` against the running release with Locust on each node choice
(forest_mlops.load.job's CLIENT_NODES) asking for each of `--client-requests`, in turn, while a
CPU-bound pod keeps each worker busy (bench/_busy_workers.py).

The kind nodes are containers with equal CPU shares of the machine's cores; a pod's CPU request
only orders it among the pods of its node. So Locust on a busy worker may wait for that worker's
pods before it sends a request or reads an answer, and that wait is in every latency it reports
but in no histogram of the service's. "any" is where the scheduler puts Locust (a worker: the
control-plane node is tainted), "control-plane" apart from the platform. Each run: the load Job
and Prometheus' view of the same requests (forest_mlops.load.served); the runs alternate,
`--rounds` times, so that a drift of the machine shows in each.

    python -m bench.load_client_node [--rounds 2] [--duration 120] [--client-requests 250m,1]

Writes bench/results/load-client-node.json. Needs the cluster of `make cluster` with the
platform deployed and a champion served; not one of `make bench`'s benchmarks.
"""

from __future__ import annotations

import argparse
import statistics
import sys
from pathlib import Path
from typing import Any

from bench._busy_workers import add_arguments, busy_workers, conditions, model_loaded
from bench.load_cluster import push_image, vs_prometheus, write
from forest_mlops.load import job

RESULTS = Path(__file__).resolve().parent / "results" / "load-client-node.json"


def one_run(args: argparse.Namespace, image: str, variant: dict[str, str]) -> dict[str, Any]:
    record = job.run_load(
        image=image, rate=args.rate, duration_s=args.duration, context=args.context,
        namespace=args.namespace, release=args.release, client_node=variant["node"],
        client_cpu=variant["cpu"], keep=False,
    )  # fmt: skip
    seen = vs_prometheus(record, args)
    print(
        f"{variant['name']}: Locust p50/p95/p99 {record['p50_ms']}/{record['p95_ms']}/"
        f"{record['p99_ms']} ms, the service's p99 {seen['prometheus']['p99_ms']} ms "
        f"({100 * seen['p99_relative_error']:.1f} % off)",
        flush=True,
    )
    keys = ("requests", "failures", "achieved_rate_per_s", "p50_ms", "p95_ms", "p99_ms")
    return {
        "variant": variant["name"],
        "client_node": variant["node"],
        "client_cpu_request": variant["cpu"],
        "locust": {key: record[key] for key in keys},
        "service": seen["prometheus"],
        "p99_relative_error": seen["p99_relative_error"],
    }


def variants(args: argparse.Namespace) -> list[dict[str, str]]:
    return [
        {"name": f"{node}, Locust asking {cpu}", "node": node, "cpu": cpu}
        for node in job.CLIENT_NODES
        for cpu in filter(None, args.client_requests.split(","))
    ]


def summary(runs: list[dict[str, Any]]) -> dict[str, Any]:
    out = {}
    for name in dict.fromkeys(r["variant"] for r in runs):
        mine = [r for r in runs if r["variant"] == name]
        out[name] = {
            "locust_p99_ms_median": statistics.median(r["locust"]["p99_ms"] for r in mine),
            "service_p99_ms_median": round(
                statistics.median(r["service"]["p99_ms"] for r in mine), 1
            ),
            "p99_relative_error_median": round(
                statistics.median(r["p99_relative_error"] for r in mine), 3
            ),
            "p99_relative_error_max": max(r["p99_relative_error"] for r in mine),
        }
    return out


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench.load_client_node", description=__doc__)
    parser.add_argument(
        "--client-requests",
        default=f"{job.CLIENT_CPU_REQUEST},250m",
        help="Locust's CPU requests to try on each node choice (comma-separated)",
    )
    add_arguments(parser)
    parser.add_argument("--output", type=Path, default=RESULTS)
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    image = push_image()
    model_loaded(args)
    runs = []
    with busy_workers(args, image, args.busy_request):
        for _ in range(args.rounds):
            runs += [one_run(args, image, variant) for variant in variants(args)]
    write(
        {
            "benchmark": "load_client_node",
            **conditions(args),
            "runs": runs,
            "by_variant": summary(runs),
        },
        args.output,
    )
    print(f"written {args.output}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
