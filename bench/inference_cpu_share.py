"""What the inference service's CPU request is worth under contention: `make load` against the
running release with inference at each given request, in turn, while two CPU-bound pods keep
the cluster's two worker nodes busy.

A pod's CPU request sets its CPU shares: when its node is busy, it gets CPU in proportion to
them. The contention is bench/_busy_workers.py's (the Airflow scheduler stopped, a spinning pod
with `--busy-request` on each worker). Each run: `kubectl set resources` on the inference
Deployment, its rollout, its model loaded again, 40 s for a scrape of the new pod, then the
load Job (forest_mlops.load.job) and Prometheus' view of the same requests
(forest_mlops.load.served). The requests alternate, `--rounds` times, so that a drift of the
machine shows in both. Afterwards everything is put back as it was (the request, the
scheduler's replicas); the busy pods' namespace is deleted.

    python -m bench.inference_cpu_share [--requests 50m,200m] [--rounds 2] [--duration 120]

Writes bench/results/inference-cpu-share.json. Needs the cluster of `make cluster` with the
platform deployed and a champion served; not one of `make bench`'s benchmarks.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path
from typing import Any

from bench._busy_workers import add_arguments, busy_workers, conditions, kubectl, model_loaded
from bench.load_cluster import push_image, vs_prometheus, write
from forest_mlops.load import job

RESULTS = Path(__file__).resolve().parent / "results" / "inference-cpu-share.json"
SCRAPE_WAIT_S = 40  # the chart's 15 s scrape interval, twice, and some


def set_request(args: argparse.Namespace, cpu: str) -> None:
    deployment = f"deploy/{args.release}-inference"
    kubectl(args, "-n", args.namespace, "set", "resources", deployment, f"--requests=cpu={cpu}")
    kubectl(args, "-n", args.namespace, "rollout", "status", deployment, "--timeout=600s")
    model_loaded(args)


def one_run(args: argparse.Namespace, image: str, cpu: str) -> dict[str, Any]:
    set_request(args, cpu)
    time.sleep(SCRAPE_WAIT_S)
    record = job.run_load(
        image=image, rate=args.rate, duration_s=args.duration, context=args.context,
        namespace=args.namespace, release=args.release, keep=False,
    )  # fmt: skip
    seen = vs_prometheus(record, args)
    print(
        f"inference request {cpu}: Locust p50/p95/p99 {record['p50_ms']}/{record['p95_ms']}/"
        f"{record['p99_ms']} ms, the service's p99 {seen['prometheus']['p99_ms']} ms",
        flush=True,
    )
    keys = ("requests", "failures", "achieved_rate_per_s", "p50_ms", "p95_ms", "p99_ms")
    return {
        "inference_cpu_request": cpu,
        "locust": {key: record[key] for key in keys},
        "service_p99_ms": seen["prometheus"]["p99_ms"],
        "p99_relative_error": seen["p99_relative_error"],
    }


def summary(runs: list[dict[str, Any]], requests: list[str]) -> dict[str, Any]:
    out = {}
    for cpu in requests:
        mine = [r for r in runs if r["inference_cpu_request"] == cpu]
        out[cpu] = {
            "locust_p50_ms_median": statistics.median(r["locust"]["p50_ms"] for r in mine),
            "locust_p99_ms_median": statistics.median(r["locust"]["p99_ms"] for r in mine),
            "service_p99_ms_median": statistics.median(r["service_p99_ms"] for r in mine),
        }
    return out


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m bench.inference_cpu_share", description=__doc__
    )
    parser.add_argument("--requests", default="50m,200m", help="inference CPU requests to try")
    add_arguments(parser)
    parser.add_argument("--output", type=Path, default=RESULTS)
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    requests = args.requests.split(",")
    image = push_image()
    inference = json.loads(
        kubectl(args, "-n", args.namespace, "get", f"deploy/{args.release}-inference", "-o", "json")
    )
    (container,) = inference["spec"]["template"]["spec"]["containers"]
    original = container["resources"]["requests"]["cpu"]
    runs = []
    try:
        with busy_workers(args, image, args.busy_request):
            for _ in range(args.rounds):
                runs += [one_run(args, image, cpu) for cpu in requests]
    finally:
        set_request(args, original)
    write(
        {
            "benchmark": "inference_cpu_share",
            **conditions(args),
            "runs": runs,
            "by_request": summary(runs, requests),
        },
        args.output,
    )
    print(f"written {args.output}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
