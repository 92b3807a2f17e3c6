"""`make load`: Locust in a Kubernetes Job against the inference Service of a running release,
at a constant rate for a given time (issue 22).

Builds the load image (images/load/Dockerfile) and pushes it to the kind cluster's registry
(scripts/load/image.sh --push; or --image REF to run one already pushed), creates the Job in the
release's namespace (forest_mlops.load.job: labelled so that the chart's
R-inference-clients-egress lets it reach inference:8001; on the control-plane node, apart from
the platform's workers, or with --client-node any wherever the scheduler puts it), follows it to
its end, reads Locust's summary from its log, deletes the Job, then reads what the
service itself recorded for the same requests from the release's Prometheus
(forest_mlops.load.served, through `kubectl port-forward`, once a scrape after the run is in)
and writes bench/results/load-cluster.json: target and achieved rate, requests, failures,
p50/p95/p99/max latency, the UTC epoch window of the requests and `vs_prometheus`
(Prometheus' count, rate and p99 beside Locust's; null with --no-prometheus or a release
without Prometheus). Exits 1 when a request failed or the Job gave no summary.

    python -m bench.load_cluster --rate 20 --duration 60 [--context kind-forest-mlops]
        [--namespace forest-mlops] [--release forest-mlops] [--image REF] [--keep-job]
        [--client-node any|control-plane] [--no-prometheus]

Not one of `make bench`'s benchmarks (bench/__main__.py): it needs the cluster of `make cluster`
with the platform deployed (skaffold run) and a champion served.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime
import json
import logging
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx

from forest_mlops.load import job, served
from forest_mlops.load.summary import LoadSummaryError
from forest_mlops.monitoring.prometheus_query import PrometheusQueryError
from forest_mlops.process import ManagedProcess, ServiceError, free_port

REPO_ROOT = Path(__file__).resolve().parent.parent
RESULTS = Path(__file__).resolve().parent / "results" / "load-cluster.json"


def push_image() -> str:
    """Build and push the load image (scripts/load/image.sh --push); its reference."""
    done = subprocess.run(
        ["bash", "scripts/load/image.sh", "--push"],
        cwd=REPO_ROOT, stdout=subprocess.PIPE, text=True, check=False,
    )  # fmt: skip
    if done.returncode != 0:
        raise SystemExit(f"scripts/load/image.sh --push failed ({done.returncode})")
    return done.stdout.strip().splitlines()[-1]


@contextlib.contextmanager
def prometheus_forward(context: str, namespace: str, release: str) -> Iterator[str]:
    """`kubectl port-forward` to the release's Prometheus on a free local port; its URL."""
    port = free_port()
    argv = [
        "kubectl", "--context", context, "-n", namespace,
        "port-forward", f"svc/{release}-prometheus", f"{port}:9090",
    ]  # fmt: skip
    with tempfile.TemporaryDirectory(prefix="load-forward-") as logs:
        forward = ManagedProcess("port-forward", argv, log_path=Path(logs) / "kubectl.log")
        try:
            url = f"http://127.0.0.1:{port}"
            forward.wait_http(f"{url}/-/ready", timeout=60)
            yield url
        finally:
            forward.stop()


def vs_prometheus(record: dict[str, Any], args: argparse.Namespace) -> dict[str, Any]:
    """served.comparison of the run, once Prometheus has scraped past its end."""
    wait = served.ready_at(record) - time.time()
    if wait > 0:
        print(f"waiting {wait:.0f} s for Prometheus to scrape past the run", flush=True)
        time.sleep(wait)
    with prometheus_forward(args.context, args.namespace, args.release) as url:
        return served.comparison(record, served.served(url, record))


def write(record: dict[str, Any], path: Path = RESULTS) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(record, indent=2) + "\n")


def table(record: dict[str, Any]) -> str:
    head = (
        f"{'target/s':>8} {'held/s':>7} {'requests':>8} {'failed':>6} "
        f"{'p50 ms':>7} {'p95 ms':>7} {'p99 ms':>7} {'window s':>8}"
    )
    row = (
        f"{record['target_rate_per_s']:>8g} {record['achieved_rate_per_s']:>7} "
        f"{record['requests']:>8} {record['failures']:>6} {record['p50_ms']:>7} "
        f"{record['p95_ms']:>7} {record['p99_ms']:>7} {record['measured_s']:>8}"
    )
    seen = record.get("vs_prometheus")
    if not seen:
        return f"{head}\n{row}"
    prometheus = seen["prometheus"]
    return (
        f"{head}\n{row}\n\nthe service, from Prometheus: {prometheus['requests']} requests, "
        f"{prometheus['rate_per_s']}/s ({100 * seen['rate_relative_error']:.1f} % off Locust's), "
        f"p99 {prometheus['p99_ms']} ms ({100 * seen['p99_relative_error']:.1f} % off)"
    )


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench.load_cluster", description=__doc__)
    parser.add_argument("--rate", type=float, default=20.0, help="requests per second")
    parser.add_argument("--duration", type=int, default=60, help="seconds of load")
    parser.add_argument("--context", default=job.DEFAULT_CONTEXT, help="kubeconfig context")
    parser.add_argument("--namespace", default=job.DEFAULT_NAMESPACE)
    parser.add_argument("--release", default=job.DEFAULT_RELEASE)
    parser.add_argument("--image", help="a load image the nodes can pull (default: build, push)")
    parser.add_argument(
        "--client-node",
        choices=job.CLIENT_NODES,
        default=job.DEFAULT_CLIENT_NODE,
        help="where Locust runs: the control-plane node (kind, kubeadm), apart from the "
        "platform's workers, or any node (bench/load_client_node.py compares them)",
    )
    parser.add_argument("--keep-job", action="store_true", help="do not delete the Job")
    parser.add_argument(
        "--no-prometheus", action="store_true", help="do not read the release's Prometheus"
    )
    parser.add_argument("--output", type=Path, default=RESULTS)
    args = parser.parse_args(argv)
    if not args.rate > 0 or args.duration < 1:
        parser.error("--rate must be positive and --duration at least 1 s")
    return args


def main(argv: list[str] | None = None) -> int:
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(message)s")
    args = parse_args(argv)
    image = args.image or push_image()
    try:
        record = job.run_load(
            image=image,
            rate=args.rate,
            duration_s=args.duration,
            context=args.context,
            namespace=args.namespace,
            release=args.release,
            client_node=args.client_node,
            keep=args.keep_job,
        )
    except (job.LoadJobError, LoadSummaryError, TimeoutError) as exc:
        print(f"make load: {exc}", file=sys.stderr)
        return 1
    record["measured_on"] = datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%d")
    record["cpu_count"] = os.cpu_count()
    record["vs_prometheus"] = None
    if not args.no_prometheus and record["requests"]:
        try:
            record["vs_prometheus"] = vs_prometheus(record, args)
        except (OSError, httpx.HTTPError, ServiceError, PrometheusQueryError, LookupError) as exc:
            # Locust's figures stand on their own: written, with the reason on stderr.
            print(f"make load: Prometheus' view not read: {exc}", file=sys.stderr)
    write(record, args.output)
    print(table(record))
    print(f"\nwritten {args.output}")
    if record["failures"]:
        print(f"{record['failures']} requests failed: {record['errors']}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
