"""The contention the cluster benchmarks measure under: a CPU-bound pod on each kind worker, the
Airflow scheduler stopped, as bench/inference_cpu_share.py and bench/load_client_node.py use it.

The Airflow scheduler is scaled to zero, so that no DAG task adds to (or takes away from) the
contention between runs; two pods of the load image, each one process per core spinning, with
the training candidate pods' request (`busy_request`), one per worker, stand in for two
training candidates. Leaving the block puts the scheduler's replicas back and deletes the busy
pods' namespace.

Not a benchmark itself (the leading underscore keeps it out of `python -m bench`).
"""

from __future__ import annotations

import argparse
import contextlib
import datetime
import json
import os
import subprocess
import time
from collections.abc import Iterator
from typing import Any

from forest_mlops.load import job

BUSY_NAMESPACE = "forest-bench-busy"
SPIN = (
    "import multiprocessing as m, os\n"
    "def spin():\n    while True: pass\n"
    "ps = [m.Process(target=spin) for _ in range(os.cpu_count())]\n"
    "[p.start() for p in ps]\n[p.join() for p in ps]\n"
)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The options both benchmarks take: the release, the load and the contention."""
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--busy-request", default="375m", help="each spinning pod's CPU request")
    parser.add_argument("--rate", type=float, default=20.0)
    parser.add_argument("--duration", type=int, default=120)
    parser.add_argument("--context", default=job.DEFAULT_CONTEXT)
    parser.add_argument("--namespace", default=job.DEFAULT_NAMESPACE)
    parser.add_argument("--release", default=job.DEFAULT_RELEASE)


def conditions(args: argparse.Namespace) -> dict[str, Any]:
    """What a result of either benchmark was measured under."""
    return {
        "measured_on": datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%d"),
        "cpu_count": os.cpu_count(),
        "rate_per_s": args.rate,
        "duration_s": args.duration,
        "busy_pods": {"count": 2, "cpu_request": args.busy_request},
        # Where the service's latency histogram starts (inference_api.arrival); results
        # without this key were timed from the app's start.
        "service_latency_from": "kernel receipt",
    }


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
    """Wait until the release's inference serves a model."""
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


@contextlib.contextmanager
def busy_workers(args: argparse.Namespace, image: str, busy_request: str) -> Iterator[None]:
    """The release's scheduler stopped and a spinning pod on each worker, for the block."""
    scheduler = f"deploy/{args.release}-airflow-scheduler"
    replicas = kubectl(
        args, "-n", args.namespace, "get", scheduler, "-o", "jsonpath={.spec.replicas}"
    )
    try:
        kubectl(args, "-n", args.namespace, "scale", scheduler, "--replicas=0")
        kubectl(args, "create", "namespace", BUSY_NAMESPACE)
        kubectl(args, "apply", "-f", "-", stdin=busy_pods(image, busy_request))
        kubectl(args, "-n", BUSY_NAMESPACE, "rollout", "status", "deploy/busy", "--timeout=300s")
        yield
    finally:
        kubectl(args, "delete", "namespace", BUSY_NAMESPACE, "--ignore-not-found", "--wait=false")
        kubectl(args, "-n", args.namespace, "scale", scheduler, f"--replicas={replicas or 1}")
