"""Sustained load on the inference service with a model swap in the middle.

Starts a real `mlflow server` (SQLite backend, local artifact directory, proxied artifacts),
runs `forest-mlops train` against it on the 75k real dev sample (synthetic rows when absent; the
JSON says so) so that version 1 is the champion the product ships (bench/_champion.py), registers
the same model again as version 2, starts `forest-mlops inference` (poll interval 1 s) on
127.0.0.1, then sends single-record POST /predict requests at a fixed rate (open loop: a request
is started every 1/RATE s whatever the latency, at most MAX_IN_FLIGHT at once) for
BENCH_LOAD_SECONDS (default 60). Half-way it moves the `champion` alias to version 2, as a
training run would; the service downloads and loads the full model again while it serves.

Reported: requests sent, failures (any non-200 or transport error; the goal is 0), the rate
held, p50/p99/max latency overall and in the 5 s after the alias moved, when the new version
was first served and whether any later answer came from the old one.

`python -m bench.load_inference` prints the table and writes bench/results/load_inference.json.
"""

from __future__ import annotations

import asyncio
import json
import os
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import httpx
import orjson

from bench import _champion
from forest_mlops import mlflow_server
from forest_mlops.process import VENV_BIN, ManagedProcess, free_port
from tests.inference import models

REPO_ROOT = Path(__file__).resolve().parent.parent
RESULTS = Path(__file__).resolve().parent / "results" / "load_inference.json"
DURATION_S = float(os.environ.get("BENCH_LOAD_SECONDS", "60"))
RATE = float(os.environ.get("BENCH_LOAD_RATE", "30"))  # requests per second
MAX_IN_FLIGHT = 64
MODEL_NAME = "forest-cover-type"


def start_mlflow(workdir: Path) -> tuple[ManagedProcess, str]:
    port = free_port()
    argv = mlflow_server.server_command(
        backend_store_uri=f"sqlite:///{workdir / 'mlflow.db'}",
        artifacts_destination=(workdir / "artifacts").as_uri(),
        host="127.0.0.1",
        port=port,
    )
    argv[0] = str(VENV_BIN / "mlflow")
    env = mlflow_server.server_env(s3_endpoint_url=None)
    process = ManagedProcess("mlflow", argv, log_path=workdir / "mlflow.log", env=env)
    url = f"http://127.0.0.1:{port}"
    process.wait_http(f"{url}/health", timeout=180)
    return process, url


def start_inference(workdir: Path, tracking_uri: str) -> tuple[ManagedProcess, str]:
    port = free_port()
    argv = [
        str(VENV_BIN / "forest-mlops"), "--log-level", "WARNING", "inference",
        "--host", "127.0.0.1", "--port", str(port), "--tracking-uri", tracking_uri,
        "--model-name", MODEL_NAME, "--poll-interval", "1",
    ]  # fmt: skip
    process = ManagedProcess("inference", argv, log_path=workdir / "inference.log")
    url = f"http://127.0.0.1:{port}"
    process.wait_http(f"{url}/health", timeout=120)
    deadline = time.monotonic() + 120
    while httpx.get(f"{url}/ready", timeout=10).status_code != 200:
        if time.monotonic() > deadline:
            raise TimeoutError(f"no model served:\n{process.log_tail()}")
        time.sleep(0.5)
    return process, url


def register_again(tracking_uri: str, version: str) -> str:
    """The champion's model as a new version: the swap loads the full model a second time."""
    from mlflow import MlflowClient

    # MLflow's own copy. Through MLflow 3.17's server, get_model_version answers without the
    # model_id of a version whose source is a logged model (models:/m-...), and
    # create_model_version with that source and no model_id is refused (checked against a
    # real `mlflow server`; the SQLite store accepts it).
    again = MlflowClient(tracking_uri).copy_model_version(
        f"models:/{MODEL_NAME}/{version}", MODEL_NAME
    )
    return str(again.version)


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(len(ordered) * q))] if ordered else float("nan")


async def load(url: str, bodies: list[bytes], swap: threading.Event) -> list[dict[str, Any]]:
    """Open-loop requests at RATE/s for DURATION_S; `swap` is set half-way."""
    outcomes: list[dict[str, Any]] = []
    limits = httpx.Limits(max_connections=MAX_IN_FLIGHT, max_keepalive_connections=MAX_IN_FLIGHT)
    in_flight = asyncio.Semaphore(MAX_IN_FLIGHT)
    async with httpx.AsyncClient(base_url=url, limits=limits, timeout=30) as client:

        async def one(index: int) -> None:
            async with in_flight:
                started = time.monotonic()
                try:
                    response = await client.post(
                        "/predict",
                        content=bodies[index % len(bodies)],
                        headers={"Content-Type": "application/json"},
                    )
                    ok = response.status_code == 200
                    version = response.json()["model_version"] if ok else None
                    error = None if ok else f"HTTP {response.status_code}: {response.text[:200]}"
                except httpx.HTTPError as exc:
                    ok, version, error = False, None, f"{type(exc).__name__}: {exc}"
                outcomes.append(
                    {
                        "at": started,
                        "latency": time.monotonic() - started,
                        "ok": ok,
                        "version": version,
                        "error": error,
                    }
                )

        begin = time.monotonic()
        tasks = []
        index = 0
        while (now := time.monotonic()) - begin < DURATION_S:
            if not swap.is_set() and now - begin >= DURATION_S / 2:
                swap.set()
            tasks.append(asyncio.create_task(one(index)))
            index += 1
            await asyncio.sleep(max(0.0, begin + index / RATE - time.monotonic()))
        await asyncio.gather(*tasks)
    return outcomes


def main() -> None:
    with tempfile.TemporaryDirectory(prefix="bench-load-inference-") as tmp:
        workdir = Path(tmp)
        mlflow_process, tracking = start_mlflow(workdir)
        inference_process = None
        try:
            served, csv = _champion.train_champion(workdir, tracking)
            label = "SYNTHETIC rows" if served["synthetic"] else "real dev sample"
            frame = models.read_rows(csv, 5000)
            version_2 = register_again(tracking, served["version"])
            inference_process, url = start_inference(workdir, tracking)
            features = frame.drop(columns=["Cover_Type"]).head(500)
            bodies = [orjson.dumps(r) for r in features.to_dict(orient="records")]

            swap = threading.Event()
            moved: dict[str, float] = {}

            def move_alias() -> None:
                swap.wait()
                from mlflow import MlflowClient

                MlflowClient(tracking).set_registered_model_alias(MODEL_NAME, "champion", version_2)
                moved["at"] = time.monotonic()

            mover = threading.Thread(target=move_alias, daemon=True)
            mover.start()
            outcomes = asyncio.run(load(url, bodies, swap))
            mover.join(60)
        finally:
            if inference_process is not None:
                inference_process.stop()
            mlflow_process.stop()

    outcomes.sort(key=lambda o: o["at"])
    begin = outcomes[0]["at"]
    span = outcomes[-1]["at"] + outcomes[-1]["latency"] - begin
    failures = [o for o in outcomes if not o["ok"]]
    latencies = [o["latency"] * 1000 for o in outcomes]
    # The swap is judged by when answers arrived (a request sent before the move may be
    # answered after it by either version).
    for o in outcomes:
        o["done"] = o["at"] + o["latency"]
    by_answer = sorted(outcomes, key=lambda o: o["done"])
    first_new = next((o for o in by_answer if o["version"] == version_2), None)
    after_swap = [
        o["latency"] * 1000
        for o in outcomes
        if moved and moved["at"] <= o["done"] <= moved["at"] + 5
    ]
    old_after_new = (
        sum(
            1
            for o in by_answer
            if o["at"] > first_new["done"] and o["version"] == served["version"]
        )
        if first_new
        else None
    )
    result = {
        "benchmark": "load_inference",
        "data": label,
        "model": _champion.label(served),
        "served_model": served,
        "cpu_count": os.cpu_count(),
        "load_average_1m_at_end": round(os.getloadavg()[0], 1),
        "duration_s": DURATION_S,
        "target_rate_per_s": RATE,
        "requests": len(outcomes),
        "achieved_rate_per_s": round(len(outcomes) / span, 1),
        "failed": len(failures),
        "failures_sample": [f["error"] for f in failures[:5]],
        "p50_ms": round(percentile(latencies, 0.50), 2),
        "p99_ms": round(percentile(latencies, 0.99), 2),
        "max_ms": round(max(latencies), 2),
        "swap": {
            "alias_moved_at_s": round(moved["at"] - begin, 1) if moved else None,
            "new_version_first_served_at_s": round(first_new["done"] - begin, 1)
            if first_new
            else None,
            "p99_ms_in_5_s_after_move": round(percentile(after_swap, 0.99), 2),
            # Requests sent after the first answer from the new version, answered by the old.
            "old_version_answers_to_later_requests": old_after_new,
            "answers_by_version": {
                v: sum(1 for o in outcomes if o["version"] == v)
                for v in (served["version"], version_2)
            },
        },
    }
    print(
        f"{'requests':>9} {'rate/s':>7} {'failed':>6} {'p50 ms':>7} {'p99 ms':>7} {'max ms':>7} "
        f"{'swap p99 ms':>11} {'v2 served after':>15}"
    )
    swap_info = result["swap"]
    print(
        f"{result['requests']:>9} {result['achieved_rate_per_s']:>7} {result['failed']:>6} "
        f"{result['p50_ms']:>7} {result['p99_ms']:>7} {result['max_ms']:>7} "
        f"{swap_info['p99_ms_in_5_s_after_move']:>11} "
        f"{swap_info['new_version_first_served_at_s']!s:>13} s"
    )
    print(f"answers by version: {swap_info['answers_by_version']}")
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(result, indent=2) + "\n")
    print(f"\nwritten {RESULTS.relative_to(REPO_ROOT)}")
    if failures:
        raise SystemExit(f"{len(failures)} requests failed, e.g. {failures[0]['error']}")


if __name__ == "__main__":
    main()
