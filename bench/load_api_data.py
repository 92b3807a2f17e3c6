"""16 concurrent clients, one group each, polling the data API for 60 s.

Starts `forest-mlops api-data` on 127.0.0.1 with 16 groups and a short MIN_UPDATE_TIME (so a
group walks through its 10 batches within the run), then runs 16 async clients, each asking
GET /data?group_number=<its group> again as soon as it has an answer. Checked for every group:
no error (the only non-200 allowed is the 400 "All data has been collected" once the last batch
is over, and it must then stay), the batch sequence starts at 0, never goes back and never
skips a batch, and every row served belongs to the batch it was served as.

`python -m bench.load_api_data` prints the table and writes bench/results/load_api_data.json.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import os
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx
import orjson

from forest_mlops import synthetic
from forest_mlops.dataset import load_dataset
from forest_mlops.process import VENV_BIN, ManagedProcess, free_port

REPO_ROOT = Path(__file__).resolve().parent.parent
RESULTS = Path(__file__).resolve().parent / "results" / "load_api_data.json"
DEV_SAMPLE = REPO_ROOT.parent / "shared" / "data" / "covertype_dev.csv.gz"
DURATION_S = float(os.environ.get("BENCH_LOAD_SECONDS", "60"))
GROUPS = 16
BATCHES = 10
# A group's 10 batches take 10 windows: this puts the end of the data inside the run.
WINDOW_S = round(DURATION_S / (BATCHES + 2), 2)


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(len(ordered) * q))] if ordered else float("nan")


async def client_loop(
    client: httpx.AsyncClient, group: int, deadline: float
) -> list[dict[str, Any]]:
    answers: list[dict[str, Any]] = []
    while time.monotonic() < deadline:
        started = time.monotonic()
        try:
            response = await client.get("/data", params={"group_number": group})
            answer: dict[str, Any] = {"status": response.status_code, "body": response.content}
        except httpx.HTTPError as exc:
            answer = {"status": None, "body": f"{type(exc).__name__}: {exc}".encode()}
        answer["latency"] = time.monotonic() - started
        answers.append(answer)
    return answers


async def run_clients(url: str) -> dict[int, list[dict[str, Any]]]:
    limits = httpx.Limits(max_connections=GROUPS, max_keepalive_connections=GROUPS)
    async with httpx.AsyncClient(base_url=url, limits=limits, timeout=30) as client:
        deadline = time.monotonic() + DURATION_S
        results = await asyncio.gather(
            *(client_loop(client, group, deadline) for group in range(1, GROUPS + 1))
        )
    return dict(zip(range(1, GROUPS + 1), results, strict=True))


def check_group(
    group: int, answers: list[dict[str, Any]], batch_rows: list[set[str]]
) -> dict[str, Any]:
    """The group's batch sequence and errors; rows checked against their batch."""
    batches: list[int] = []
    errors: list[str] = []
    wrong_rows = 0
    collected = False
    for answer in answers:
        if answer["status"] == 200 and not collected:
            body = orjson.loads(answer["body"])
            batches.append(body["batch_number"])
            rows = batch_rows[body["batch_number"]]
            wrong_rows += sum(",".join(row) not in rows for row in body["data"])
        elif answer["status"] == 400 and b"All data has been collected" in answer["body"]:
            collected = True
        else:
            errors.append(f"{answer['status']}: {answer['body'][:200]!r}")
    steps = {b - a for a, b in itertools.pairwise(batches)}
    return {
        "group": group,
        "requests": len(answers),
        "errors": errors[:3],
        "error_count": len(errors),
        "wrong_rows": wrong_rows,
        "batches_seen": sorted(set(batches)),
        "sequence_ok": bool(batches) and batches[0] == 0 and steps <= {0, 1},
        "collected": collected,
    }


def main() -> None:
    with tempfile.TemporaryDirectory(prefix="bench-load-api-data-") as tmp:
        workdir = Path(tmp)
        if DEV_SAMPLE.exists():
            dataset, label = DEV_SAMPLE, "75k real dev sample"
        else:
            dataset, label = workdir / "synthetic.csv.gz", "75k synthetic rows"
            synthetic.write_csv(dataset, n_rows=75_000, seed=0)
        lines = load_dataset(dataset).lines
        port = free_port()
        argv = [
            str(VENV_BIN / "forest-mlops"), "--log-level", "WARNING", "api-data",
            "--dataset", str(dataset), "--min-update-time", str(WINDOW_S),
            "--state", str(workdir / "state.json"), "--port", str(port), "--host", "127.0.0.1",
            "--groups", str(GROUPS), "--batches", str(BATCHES), "--seed", "0",
        ]  # fmt: skip
        server = ManagedProcess("api-data", argv, log_path=workdir / "api-data.log")
        url = f"http://127.0.0.1:{port}"
        try:
            server.wait_http(f"{url}/ready", timeout=300)
            bounds = httpx.get(f"{url}/batches", timeout=30).json()["batch_bounds"]
            batch_rows = [set(lines[b["start"] : b["stop"]]) for b in bounds]
            started = time.monotonic()
            answers = asyncio.run(run_clients(url))
            wall = time.monotonic() - started
        finally:
            server.stop()

    groups = [check_group(g, a, batch_rows) for g, a in answers.items()]
    latencies = [a["latency"] * 1000 for group in answers.values() for a in group]
    total = len(latencies)
    result = {
        "benchmark": "load_api_data",
        "data": label,
        "cpu_count": os.cpu_count(),
        "load_average_1m_at_end": round(os.getloadavg()[0], 1),
        "duration_s": DURATION_S,
        "clients": GROUPS,
        "min_update_time_s": WINDOW_S,
        "requests": total,
        "requests_per_s": round(total / wall, 1),
        "p50_ms": round(percentile(latencies, 0.5), 2),
        "p99_ms": round(percentile(latencies, 0.99), 2),
        "errors": sum(g["error_count"] for g in groups),
        "wrong_rows": sum(g["wrong_rows"] for g in groups),
        "groups_with_a_correct_sequence": sum(g["sequence_ok"] for g in groups),
        "groups_all_collected": sum(g["collected"] for g in groups),
        "groups": groups,
    }
    print(
        f"{'clients':>7} {'requests':>9} {'req/s':>7} {'p50 ms':>7} {'p99 ms':>7} {'errors':>6} "
        f"{'wrong rows':>10} {'sequences ok':>12} {'collected':>9}"
    )
    print(
        f"{GROUPS:>7} {total:>9} {result['requests_per_s']:>7} {result['p50_ms']:>7} "
        f"{result['p99_ms']:>7} {result['errors']:>6} {result['wrong_rows']:>10} "
        f"{result['groups_with_a_correct_sequence']:>9}/{GROUPS} "
        f"{result['groups_all_collected']:>6}/{GROUPS}"
    )
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(result, indent=2) + "\n")
    print(f"\nwritten {RESULTS.relative_to(REPO_ROOT)}")
    bad = [g for g in groups if g["error_count"] or g["wrong_rows"] or not g["sequence_ok"]]
    if bad:
        raise SystemExit(f"{len(bad)} group(s) went wrong, e.g. {bad[0]}")


if __name__ == "__main__":
    main()
