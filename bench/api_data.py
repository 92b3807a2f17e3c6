"""Throughput and latency of GET /data on a real `forest-mlops api-data` process.

For each dataset (the 75k real dev sample when present; 581,012 rows: the real UCI file at
data/covertype.csv.gz when present, else generated with forest_mlops.synthetic) it starts the
server on 127.0.0.1, then runs 1 and 8 concurrent keep-alive clients for a bounded time and
number of requests, and reports requests/s and p50/p99 latency. It also times the in-process
cost of a response body (sample + join of pre-encoded rows) against encoding the same rows
with orjson from Python lists, the naive way.

`python -m bench.api_data` prints the table and writes bench/results/api_data.json.
"""

from __future__ import annotations

import http.client
import json
import os
import statistics
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import httpx
import orjson

from api_data.batches import BatchData, BatchLayout
from forest_mlops import synthetic
from forest_mlops.dataset import load_dataset
from forest_mlops.process import VENV_BIN, ManagedProcess, free_port

REPO_ROOT = Path(__file__).resolve().parent.parent
RESULTS = Path(__file__).resolve().parent / "results" / "api_data.json"
DEV_SAMPLE = REPO_ROOT.parent / "shared" / "data" / "covertype_dev.csv.gz"
FULL_REAL = REPO_ROOT / "data" / "covertype.csv.gz"
FULL_ROWS = 581_012
CLIENTS = (1, 8)
DURATION_S = float(os.environ.get("BENCH_API_DATA_SECONDS", "8"))
MAX_REQUESTS = 2_000  # per client count: the loop is bounded in count as well as time


def datasets(workdir: Path) -> list[tuple[str, Path]]:
    found: list[tuple[str, Path]] = []
    if FULL_REAL.exists():
        found.append(("581k real (UCI)", FULL_REAL))
    else:
        path = workdir / "covertype_synthetic_581k.csv"
        synthetic.write_csv(path, n_rows=FULL_ROWS, seed=0)
        found.append(("581k synthetic", path))
    if DEV_SAMPLE.exists():
        found.append(("75k real dev sample", DEV_SAMPLE))
    else:
        path = workdir / "covertype_synthetic_75k.csv"
        synthetic.write_csv(path, n_rows=75_000, seed=0)
        found.append(("75k synthetic", path))
    return found


def encode_costs(path: Path, repeats: int = 30) -> dict[str, float]:
    """Milliseconds per body: pre-encoded sample+join vs orjson over Python lists."""
    dataset = load_dataset(path)
    layout = BatchLayout.build(len(dataset), 10, 0.1)
    data = BatchData(dataset, layout, seed=0)
    rows = [dataset.row(i) for i in range(layout.batch_rows(0))]
    started = time.perf_counter()
    for _ in range(repeats):
        data.sample_json(0)
    pre_encoded = (time.perf_counter() - started) / repeats * 1000
    started = time.perf_counter()
    for _ in range(repeats):
        indexes = data.sample_indexes(0)
        orjson.dumps({"group_number": 1, "batch_number": 0, "data": [rows[i] for i in indexes]})
    naive = (time.perf_counter() - started) / repeats * 1000
    return {"pre_encoded_ms": round(pre_encoded, 3), "orjson_from_lists_ms": round(naive, 3)}


def run_clients(host: str, port: int, clients: int) -> dict[str, float]:
    """`clients` threads, each on one keep-alive connection, until the time or count runs out.

    The clients use the standard library's http.client: it reads a 470 KB body with far less
    CPU than httpx, and the clients share the machine's cores with the server.
    """
    latencies: list[float] = []
    sizes: list[int] = []
    lock = threading.Lock()
    deadline = time.monotonic() + DURATION_S
    budget = [MAX_REQUESTS]

    def client(group: int) -> None:
        connection = http.client.HTTPConnection(host, port, timeout=60)
        try:
            path = f"/data?group_number={group}"
            while time.monotonic() < deadline:
                with lock:
                    if budget[0] <= 0:
                        return
                    budget[0] -= 1
                started = time.perf_counter()
                connection.request("GET", path)
                response = connection.getresponse()
                body = response.read()
                elapsed = time.perf_counter() - started
                if response.status != 200:
                    raise RuntimeError(f"{path}: {response.status} {body[:200]!r}")
                with lock:
                    latencies.append(elapsed)
                    sizes.append(len(body))
        finally:
            connection.close()

    threads = [threading.Thread(target=client, args=(i % 10 + 1,)) for i in range(clients)]
    started = time.monotonic()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    wall = time.monotonic() - started
    ordered = sorted(latencies)
    return {
        "clients": clients,
        "requests": len(ordered),
        "requests_per_s": round(len(ordered) / wall, 1),
        "p50_ms": round(ordered[len(ordered) // 2] * 1000, 2),
        "p99_ms": round(ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))] * 1000, 2),
        "mean_body_kb": round(statistics.fmean(sizes) / 1024, 1),
    }


def bench_dataset(label: str, path: Path, workdir: Path) -> dict[str, Any]:
    port = free_port()
    argv = [
        str(VENV_BIN / "forest-mlops"), "--log-level", "WARNING", "api-data",
        "--dataset", str(path), "--min-update-time", "3600", "--port", str(port),
        "--host", "127.0.0.1", "--seed", "0",
    ]  # fmt: skip
    started = time.monotonic()
    server = ManagedProcess("api-data", argv, log_path=workdir / f"server-{port}.log")
    url = f"http://127.0.0.1:{port}"
    try:
        server.wait_http(f"{url}/ready", timeout=300)
        startup = time.monotonic() - started
        layout = httpx.get(f"{url}/batches", timeout=30).json()
        runs = [run_clients("127.0.0.1", port, clients) for clients in CLIENTS]
    finally:
        server.stop()
    return {
        "dataset": label,
        "rows": layout["rows"],
        "rows_per_response": layout["sample_size"],
        "startup_s": round(startup, 1),
        "runs": runs,
        "encoding": encode_costs(path),
    }


def main() -> None:
    with tempfile.TemporaryDirectory(prefix="bench-api-data-") as tmp:
        workdir = Path(tmp)
        results = [bench_dataset(label, path, workdir) for label, path in datasets(workdir)]
    header = (
        f"{'dataset':<22} {'rows/resp':>9} {'clients':>7} {'req/s':>8} {'p50 ms':>8} "
        f"{'p99 ms':>8} {'body KB':>8}"
    )
    print(header)
    print("-" * len(header))
    for result in results:
        for run in result["runs"]:
            print(
                f"{result['dataset']:<22} {result['rows_per_response']:>9} {run['clients']:>7} "
                f"{run['requests_per_s']:>8} {run['p50_ms']:>8} {run['p99_ms']:>8} "
                f"{run['mean_body_kb']:>8}"
            )
    print()
    for result in results:
        enc = result["encoding"]
        print(
            f"{result['dataset']}: server start {result['startup_s']} s; body of one response "
            f"in-process: pre-encoded {enc['pre_encoded_ms']} ms vs orjson from lists "
            f"{enc['orjson_from_lists_ms']} ms"
        )
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    document = {
        "benchmark": "api_data",
        "cpu_count": os.cpu_count(),
        "seconds_per_run": DURATION_S,
        "results": results,
    }
    RESULTS.write_text(json.dumps(document, indent=2) + "\n")
    print(f"\nwritten {RESULTS.relative_to(REPO_ROOT)}")


if __name__ == "__main__":
    main()
