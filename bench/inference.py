"""Our inference service against `mlflow models serve`, side by side, on the same model.

One run: `forest-mlops train` on the 75k real dev sample (synthetic rows of the same shape when
absent, and the result says so) registers its champion as `forest-cover-type@champion` in a
local MLflow store (SQLite + local artifacts), the model the product ships (bench/_champion.py;
the JSON's `served_model` says which one it was). Then each server starts in turn on
127.0.0.1 on that same registered model:

- ours: `forest-mlops inference` (one uvicorn process);
- MLflow's: `mlflow models serve -m models:/forest-cover-type@champion --env-manager local`
  (its default, one uvicorn worker).

For each it measures single-record requests from 8 concurrent keep-alive clients (requests/s,
p50, p99) and the latency of a 1,000-record request (p50, max over repeats), and checks that
both servers predict the same classes. Clients are threads in this process using http.client,
the same for both servers, and they share the 2 cores with the server under test.

`python -m bench.inference` prints the table and writes bench/results/inference.json.
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

import orjson
import pandas as pd

from bench import _champion
from forest_mlops import schema, synthetic
from forest_mlops.process import VENV_BIN, ManagedProcess, free_port

REPO_ROOT = Path(__file__).resolve().parent.parent
RESULTS = Path(__file__).resolve().parent / "results" / "inference.json"
DEV_SAMPLE = REPO_ROOT.parent / "shared" / "data" / "covertype_dev.csv.gz"
MODEL_NAME = "forest-cover-type"
CLIENTS = 8
DURATION_S = float(os.environ.get("BENCH_INFERENCE_SECONDS", "10"))
WARMUP_S = 2.0
BATCH_ROWS = 1_000
# Issue 16's service-level targets for our server on 2 cores: single-record p99 at CLIENTS
# concurrent clients, and the p50 of a 1,000-record /predict. Wall-clock figures: the load
# average during the run is written beside them.
TARGET_SINGLE_P99_MS = 15.0
TARGET_BATCH_P50_MS = 30.0
BATCH_REPEATS = 30


def training_data(workdir: Path) -> tuple[pd.DataFrame, str]:
    if DEV_SAMPLE.exists():
        path, label = DEV_SAMPLE, "75k real dev sample"
    else:
        path, label = workdir / "synthetic.csv.gz", "75k synthetic rows"
        synthetic.write_csv(path, n_rows=75_000, seed=0)
    frame = pd.read_csv(path)
    for column in schema.CATEGORICAL_COLUMNS:
        frame[column] = frame[column].astype(str)
    return frame, label


class Server:
    def __init__(self, name: str, argv: list[str], env: dict[str, str], log: Path, path: str):
        self.name = name
        self.port = free_port()
        self.path = path
        port_flag = "--port" if name == "ours" else "-p"
        self.process = ManagedProcess(
            name, [*argv, port_flag, str(self.port)], log_path=log, env=env
        )

    def wait_ready(self, url_path: str, timeout: float = 300) -> float:
        started = time.perf_counter()
        deadline = started + timeout
        while time.perf_counter() < deadline:
            if self.process.proc.poll() is not None:
                raise RuntimeError(f"{self.name} exited:\n{self.process.log_tail()}")
            try:
                status, _ = request(self.port, "GET", url_path, None)
                if status == 200:
                    return time.perf_counter() - started
            except OSError:
                pass
            time.sleep(0.3)
        raise TimeoutError(f"{self.name} not ready in {timeout} s:\n{self.process.log_tail()}")


def request(port: int, method: str, path: str, body: bytes | None) -> tuple[int, bytes]:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
    try:
        headers = {"Content-Type": "application/json"} if body is not None else {}
        conn.request(method, path, body=body, headers=headers)
        response = conn.getresponse()
        return response.status, response.read()
    finally:
        conn.close()


def single_bodies(frame: pd.DataFrame, server: str) -> list[bytes]:
    records = frame[list(schema.FEATURE_COLUMNS)].to_dict(orient="records")
    if server == "ours":
        return [orjson.dumps(r) for r in records]
    columns = list(schema.FEATURE_COLUMNS)
    return [
        orjson.dumps({"dataframe_split": {"columns": columns, "data": [[r[c] for c in columns]]}})
        for r in records
    ]


def batch_body(frame: pd.DataFrame, server: str) -> bytes:
    features = frame[list(schema.FEATURE_COLUMNS)]
    if server == "ours":
        return orjson.dumps(features.to_dict(orient="records"))
    return orjson.dumps({"dataframe_split": features.to_dict(orient="split", index=False)})


def load_test(port: int, path: str, bodies: list[bytes], seconds: float) -> dict[str, float]:
    """CLIENTS threads, each on one keep-alive connection, sending bodies for `seconds`."""
    latencies: list[list[float]] = [[] for _ in range(CLIENTS)]
    errors = [0] * CLIENTS
    stop_at = time.perf_counter() + seconds

    def client(index: int) -> None:
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
        headers = {"Content-Type": "application/json"}
        i = index
        while time.perf_counter() < stop_at:
            body = bodies[i % len(bodies)]
            i += CLIENTS
            started = time.perf_counter()
            try:
                conn.request("POST", path, body=body, headers=headers)
                response = conn.getresponse()
                response.read()
                ok = response.status == 200
            except (OSError, http.client.HTTPException):
                conn.close()
                conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
                ok = False
            latencies[index].append(time.perf_counter() - started)
            errors[index] += not ok
        conn.close()

    started = time.perf_counter()
    threads = [threading.Thread(target=client, args=(i,)) for i in range(CLIENTS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    elapsed = time.perf_counter() - started
    all_latencies = sorted(x for part in latencies for x in part)
    return {
        "requests": len(all_latencies),
        "errors": sum(errors),
        "requests_per_s": round(len(all_latencies) / elapsed, 1),
        "p50_ms": round(percentile(all_latencies, 50) * 1000, 2),
        "p99_ms": round(percentile(all_latencies, 99) * 1000, 2),
    }


def batch_latency(port: int, path: str, body: bytes) -> tuple[dict[str, float], bytes]:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=120)
    times = []
    answer = b""
    for _ in range(BATCH_REPEATS + 2):
        started = time.perf_counter()
        conn.request("POST", path, body=body, headers={"Content-Type": "application/json"})
        response = conn.getresponse()
        answer = response.read()
        if response.status != 200:
            raise RuntimeError(f"{response.status}: {answer[:300]!r}")
        times.append(time.perf_counter() - started)
    conn.close()
    times = sorted(times[2:])  # the first two warm the connection and caches
    return {
        "batch_p50_ms": round(statistics.median(times) * 1000, 1),
        "batch_max_ms": round(times[-1] * 1000, 1),
    }, answer


def percentile(sorted_values: list[float], q: float) -> float:
    if not sorted_values:
        return float("nan")
    index = min(len(sorted_values) - 1, round(q / 100 * (len(sorted_values) - 1)))
    return sorted_values[index]


def class_ids(server: str, answer: bytes) -> list[int]:
    data = orjson.loads(answer)
    if server == "ours":
        return [item["cover_type"] for item in data]
    return [int(v) for v in data["predictions"]]


def main() -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="bench-inference-") as tmp:
        workdir = Path(tmp)
        frame, data_label = training_data(workdir)
        tracking_uri = f"sqlite:///{workdir / 'mlflow.db'}"
        started = time.perf_counter()
        served, _ = _champion.train_champion(workdir, tracking_uri)
        print(f"served model: {_champion.label(served)}, trained in "
              f"{time.perf_counter() - started:.0f} s", flush=True)  # fmt: skip
        sample = frame.sample(n=BATCH_ROWS, random_state=1)
        # `mlflow models serve` starts `uvicorn` through the shell: it must be on PATH.
        env = {
            "MLFLOW_TRACKING_URI": tracking_uri,
            "PATH": f"{VENV_BIN}{os.pathsep}{os.environ.get('PATH', '')}",
        }
        commands = {
            "ours": [str(VENV_BIN / "forest-mlops"), "--log-level", "WARNING", "inference",
                     "--host", "127.0.0.1", "--tracking-uri", tracking_uri],
            "mlflow": [str(VENV_BIN / "mlflow"), "models", "serve", "-m",
                       f"models:/{MODEL_NAME}@champion", "--env-manager", "local",
                       "-h", "127.0.0.1"],
        }  # fmt: skip
        labels = {"ours": "ours (forest-mlops)", "mlflow": "mlflow models serve"}
        ready_paths = {"ours": "/ready", "mlflow": "/ping"}
        predict_paths = {"ours": "/predict", "mlflow": "/invocations"}
        rows: list[dict[str, Any]] = []
        predictions: dict[str, list[int]] = {}
        # One server at a time: the one measured has the machine to itself.
        for kind, argv in commands.items():
            server = Server(kind, argv, env, workdir / f"{kind}.log", predict_paths[kind])
            load_before = os.getloadavg()[0]
            try:
                startup = server.wait_ready(ready_paths[kind])
                bodies = single_bodies(sample, kind)
                load_test(server.port, server.path, bodies, WARMUP_S)
                result = load_test(server.port, server.path, bodies, DURATION_S)
                batch, answer = batch_latency(server.port, server.path, batch_body(sample, kind))
            finally:
                server.process.stop()
            predictions[kind] = class_ids(kind, answer)
            rows.append(
                {
                    "server": labels[kind],
                    "startup_s": round(startup, 1),
                    **result,
                    **batch,
                    "load_average_1m": [round(load_before, 1), round(os.getloadavg()[0], 1)],
                }
            )
            print(f"measured {labels[kind]}", flush=True)
    same = predictions["ours"] == predictions["mlflow"]
    ours, theirs = rows
    summary = {
        "benchmark": "inference",
        "cpu_count": os.cpu_count(),
        "model": _champion.label(served),
        "served_model": served,
        "data": f"requests: rows of the {data_label}",
        "clients": CLIENTS,
        "seconds_per_run": DURATION_S,
        "batch_rows": BATCH_ROWS,
        "same_predictions": same,
        "speedup_requests_per_s": round(ours["requests_per_s"] / theirs["requests_per_s"], 2),
        "results": rows,
        "targets": {"p99_ms": TARGET_SINGLE_P99_MS, "batch_p50_ms": TARGET_BATCH_P50_MS},
        "targets_met": ours["p99_ms"] <= TARGET_SINGLE_P99_MS
        and ours["batch_p50_ms"] <= TARGET_BATCH_P50_MS,
    }
    print_table(summary)
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(summary, indent=2) + "\n")
    return summary


def print_table(summary: dict[str, Any]) -> None:
    print(
        f"\nmodel: {summary['model']}; single-record requests from {summary['clients']} "
        f"concurrent clients for {summary['seconds_per_run']:.0f} s; "
        f"{summary['batch_rows']:,}-record requests x {BATCH_REPEATS}"
    )
    header = (
        f"{'server':<22} {'req/s':>8} {'p50 ms':>8} {'p99 ms':>8} {'errors':>7} "
        f"{'1k p50 ms':>10} {'1k max ms':>10}"
    )
    print(header)
    print("-" * len(header))
    for row in summary["results"]:
        print(
            f"{row['server']:<22} {row['requests_per_s']:>8.1f} {row['p50_ms']:>8.2f} "
            f"{row['p99_ms']:>8.2f} {row['errors']:>7} {row['batch_p50_ms']:>10.1f} "
            f"{row['batch_max_ms']:>10.1f}"
        )
    print(
        f"ours / mlflow requests/s: {summary['speedup_requests_per_s']}x; "
        f"same predictions for the {summary['batch_rows']:,} records: {summary['same_predictions']}"
    )
    ours = summary["results"][0]
    print(
        f"targets (ours): single-record p99 <= {TARGET_SINGLE_P99_MS:g} ms, 1,000-record p50 <= "
        f"{TARGET_BATCH_P50_MS:g} ms; met: {summary['targets_met']} (load average "
        f"{ours['load_average_1m'][0]} -> {ours['load_average_1m'][1]})"
    )


if __name__ == "__main__":
    main()
