"""What the inference service's CPU request is worth under contention: `make load` against the
running release with inference at each given request, in turn, while two CPU-bound pods keep
the cluster's two worker nodes busy.

A pod's CPU request sets its CPU shares: when its node is busy, it gets CPU in proportion to
them. The Airflow scheduler is scaled to zero for the bench, so that no DAG task adds to (or
takes away from) the contention between runs; two pods of the load image, each one process per
core spinning, with the training candidate pods' request (`--busy-request`), one per worker,
stand in for two training candidates. Each run: `kubectl set resources` on the inference
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
import datetime
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from bench.load_cluster import push_image, vs_prometheus, write
from forest_mlops.load import job

RESULTS = Path(__file__).resolve().parent / "results" / "inference-cpu-share.json"
BUSY_NAMESPACE = "forest-bench-busy"
SCRAPE_WAIT_S = 40  # the chart's 15 s scrape interval, twice, and some
SPIN = (
    "import multiprocessing as m, os\n"
    "def spin():\n    while True: pass\n"
    "ps = [m.Process(target=spin) for _ in range(os.cpu_count())]\n"
    "[p.start() for p in ps]\n[p.join() for p in ps]\n"
)


def kubectl(args: argparse.Namespace, *argv: str, stdin: str | None = None) -> str:
    done = subprocess.run(
        ["kubectl", "--context", args.context, *argv],
        input=stdin, capture_output=True, text=True, timeout=600, check=False,
    )  # fmt: skip
    if done.returncode != 0:
        raise SystemExit(f"kubectl {' '.join(argv)}: {done.stderr.strip()}")
    return done.stdout


def busy_pods(image: str, request: str) -> str:
    """The Deployment of the two spinning pods, one per worker node."""
    labels = {"app": "busy"}
    return json.dumps(
        {
            "apiVersion": "apps/v1",
            "kind": "Deployment",
            "metadata": {"name": "busy", "namespace": BUSY_NAMESPACE},
            "spec": {
                "replicas": 2,
                "selector": {"matchLabels": labels},
                "template": {
                    "metadata": {"labels": labels},
                    "spec": {
                        "topologySpreadConstraints": [
                            {
                                "maxSkew": 1,
                                "topologyKey": "kubernetes.io/hostname",
                                "whenUnsatisfiable": "DoNotSchedule",
                                "labelSelector": {"matchLabels": labels},
                            }
                        ],
                        "containers": [
                            {
                                "name": "spin",
                                "image": image,
                                "command": ["python", "-c", SPIN],
                                "resources": {
                                    "requests": {"cpu": request, "memory": "64Mi"},
                                    "limits": {"cpu": "2", "memory": "256Mi"},
                                },
                            }
                        ],
                    },
                },
            },
        }
    )


def model_loaded(args: argparse.Namespace, timeout_s: float = 600) -> None:
    probe = (
        "import json, urllib.request as u; "
        "print(json.load(u.urlopen('http://localhost:8001/model'))['ready'])"
    )
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        done = subprocess.run(
            ["kubectl", "--context", args.context, "-n", args.namespace, "exec",
             f"deploy/{args.release}-inference", "--", "python", "-c", probe],
            capture_output=True, text=True, timeout=60, check=False,
        )  # fmt: skip
        if done.stdout.strip() == "True":
            return
        time.sleep(5)
    raise SystemExit(f"inference did not load its model within {timeout_s:.0f} s")


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
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--busy-request", default="375m", help="each spinning pod's CPU request")
    parser.add_argument("--rate", type=float, default=20.0)
    parser.add_argument("--duration", type=int, default=120)
    parser.add_argument("--context", default=job.DEFAULT_CONTEXT)
    parser.add_argument("--namespace", default=job.DEFAULT_NAMESPACE)
    parser.add_argument("--release", default=job.DEFAULT_RELEASE)
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
    scheduler = f"deploy/{args.release}-airflow-scheduler"
    replicas = kubectl(
        args, "-n", args.namespace, "get", scheduler, "-o", "jsonpath={.spec.replicas}"
    )
    runs = []
    try:
        kubectl(args, "-n", args.namespace, "scale", scheduler, "--replicas=0")
        kubectl(args, "create", "namespace", BUSY_NAMESPACE)
        kubectl(args, "apply", "-f", "-", stdin=busy_pods(image, args.busy_request))
        kubectl(args, "-n", BUSY_NAMESPACE, "rollout", "status", "deploy/busy", "--timeout=300s")
        for _ in range(args.rounds):
            runs += [one_run(args, image, cpu) for cpu in requests]
    finally:
        kubectl(args, "delete", "namespace", BUSY_NAMESPACE, "--ignore-not-found", "--wait=false")
        kubectl(args, "-n", args.namespace, "scale", scheduler, f"--replicas={replicas or 1}")
        set_request(args, original)
    write(
        {
            "benchmark": "inference_cpu_share",
            "measured_on": datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%d"),
            "cpu_count": os.cpu_count(),
            "rate_per_s": args.rate,
            "duration_s": args.duration,
            "busy_pods": {"count": 2, "cpu_request": args.busy_request},
            "runs": runs,
            "by_request": summary(runs, requests),
        },
        args.output,
    )
    print(f"written {args.output}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
