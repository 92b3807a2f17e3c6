"""Locust's own latency floor: what `make load` reports when the server does (almost) nothing.

`make e2e` compares `make load`'s Locust p99 with the inference service's histogram p99 for the
same requests, and Locust's is the larger by a few milliseconds: it times the whole round trip
(its greenlets, the kernel, uvicorn's HTTP work) where the histogram times only the app. This
measures that difference on its own: the load Job's exact Locust arguments
(forest_mlops.load.job.locust_args, the checkout's locustfile) against tests/load/predict_stub.py
(uvicorn, an ASGI app that parses the body with the service's own parser and answers `{}`) on
127.0.0.1, at the rate `make load` uses, twice:

- `as_found`: nothing added to whatever the machine is doing (its load average is recorded);
- `cores_busy`: with one CPU-bound process per core added, as on the kind cluster, where the
  platform's pods share the 2 cores with the load Job.

Whatever Locust reports here is latency that no server-side histogram can see. The stub's own
work is tens of microseconds (no model), so the figures are the client's and the loopback's.

`python -m bench.load_floor` prints the table and writes bench/results/load_floor.json.
"""

from __future__ import annotations

import json
import multiprocessing
import os
import subprocess
import tempfile
import time
from pathlib import Path
from typing import Any

from forest_mlops.load import job, summary
from forest_mlops.process import VENV_BIN, ManagedProcess, free_port

REPO_ROOT = Path(__file__).resolve().parent.parent
RESULTS = Path(__file__).resolve().parent / "results" / "load_floor.json"
LOCUSTFILE = REPO_ROOT / "src/forest_mlops/load/locustfile.py"
RATE = 20.0  # the Makefile's RATE default and make e2e's LOAD_RATE
DURATION_S = int(os.environ.get("BENCH_LOAD_FLOOR_SECONDS", "60"))


def _spin() -> None:  # pragma: no cover - runs in a child process until terminated
    while True:
        pass


def run_locust(url: str) -> dict[str, Any]:
    completed = subprocess.run(
        [
            str(VENV_BIN / "locust"),
            *job.locust_args(url, rate=RATE, duration_s=DURATION_S, locustfile=str(LOCUSTFILE)),
        ],
        capture_output=True,
        text=True,
        timeout=DURATION_S + 90,
        check=True,
        cwd=REPO_ROOT,
    )
    return summary.parse_log(completed.stdout)


def measure(url: str, busy_cores: int) -> dict[str, Any]:
    spinners = [multiprocessing.Process(target=_spin, daemon=True) for _ in range(busy_cores)]
    for spinner in spinners:
        spinner.start()
    try:
        load_before = os.getloadavg()[0]
        found = run_locust(url)
        load_after = os.getloadavg()[0]
    finally:
        for spinner in spinners:
            spinner.terminate()
            spinner.join()
    return {
        "busy_cores_added": busy_cores,
        "load_average_1m": [round(load_before, 2), round(load_after, 2)],
        **{key: found[key] for key in ("requests", "failures", "p50_ms", "p95_ms", "p99_ms")},
        "max_ms": round(found["max_ms"], 1),
    }


def main() -> dict[str, Any]:
    port = free_port()
    logs = tempfile.TemporaryDirectory(prefix="load-floor-")
    argv = [
        str(VENV_BIN / "uvicorn"), "tests.load.predict_stub:app",
        "--host", "127.0.0.1", "--port", str(port), "--log-level", "warning",
    ]  # fmt: skip
    server = ManagedProcess(
        "predict-stub",
        argv,
        log_path=Path(logs.name) / "uvicorn.log",
        cwd=REPO_ROOT,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        server.wait_http(f"{url}/health", timeout=60)
        conditions = {
            "as_found": measure(url, 0),
            "cores_busy": measure(url, os.cpu_count() or 2),
        }
    finally:
        server.stop()
        logs.cleanup()
    result = {
        "benchmark": "load_floor",
        "rate_per_s": RATE,
        "users": summary.users_for(RATE),
        "duration_s": DURATION_S,
        "server": "tests/load/predict_stub.py under uvicorn (no model)",
        "conditions": conditions,
        "measured_on": time.strftime("%Y-%m-%d"),
        "cpu_count": os.cpu_count(),
    }
    RESULTS.write_text(json.dumps(result, indent=2) + "\n")
    return result


def print_table(result: dict[str, Any]) -> None:
    rate, seconds = result["rate_per_s"], result["duration_s"]
    print(f"Locust against a no-op server, {rate:g} req/s, {seconds} s")
    print(f"{'condition':<10} {'load 1m':>12} {'requests':>9} {'p50':>6} {'p95':>6} {'p99':>6}")
    for name, c in result["conditions"].items():
        load = "-".join(f"{x:g}" for x in c["load_average_1m"])
        print(
            f"{name:<10} {load:>12} {c['requests']:>9} {c['p50_ms']:>4}ms {c['p95_ms']:>4}ms "
            f"{c['p99_ms']:>4}ms"
        )


if __name__ == "__main__":
    print_table(main())
