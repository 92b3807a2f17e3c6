"""Ingestion throughput: one 5,800-row batch, half of it already stored, into MariaDB.

A real `forest-mlops api-data` process serves a 58,000-row dataset (the real dev sample when
present, else synthetic) with --sample-fraction 1, so a response is a whole 5,800-row batch.
Before each round the database holds every other row of that batch; the round then runs
fetch (GET /data), validate (schema.parse_record + row hash) and load (one transaction) as
`forest-mlops ingest` does, and the rows the round inserted are deleted again for the next.

Reported: the median of the rounds for each step, rows/s of the load and of the whole window,
and, for comparison, the load with SQLAlchemy's executemany (pymysql escapes every value in
Python) instead of forest_mlops.database's multi-row literal INSERT, and the load into SQLite.

`python -m bench.ingestion` prints the table and writes bench/results/ingestion.json.
MariaDB: $FOREST_TEST_MYSQL_URL (default root@127.0.0.1:3306), as the tests.
"""

from __future__ import annotations

import json
import os
import statistics
import tempfile
import time
import uuid
from collections.abc import Callable
from functools import partial
from pathlib import Path
from typing import Any

import sqlalchemy as sa

from forest_mlops import database, schema, synthetic
from forest_mlops.ingestion.fetch import Fetched, RetryPolicy, WindowRule, fetch_window, make_client
from forest_mlops.ingestion.load import load
from forest_mlops.ingestion.validate import Validated, validate
from tests.ingestion.servers import start_data_api, write_dataset

REPO_ROOT = Path(__file__).resolve().parent.parent
RESULTS = Path(__file__).resolve().parent / "results" / "ingestion.json"
DEV_SAMPLE = REPO_ROOT.parent / "shared" / "data" / "covertype_dev.csv.gz"
MYSQL_URL = os.environ.get("FOREST_TEST_MYSQL_URL", "mysql+pymysql://root@127.0.0.1:3306")
BATCH_ROWS = 5_800
ROUNDS = int(os.environ.get("BENCH_INGESTION_ROUNDS", "7"))
# The API serves the whole batch in one response here, so one request is the window; the stop
# rule (which would make a second, duplicate-only request to find that out) is not measured.
ONE_REQUEST = WindowRule.fixed(1)


def dataset(workdir: Path) -> tuple[str, Path, list[list[str]]]:
    """58,000 course-layout rows: 10 batches of 5,800."""
    path = workdir / "covertype_58k.csv"
    if DEV_SAMPLE.exists():
        return "real dev sample", path, write_dataset(DEV_SAMPLE, path, BATCH_ROWS * 10)
    generated = synthetic.write_csv(workdir / "synthetic.csv", n_rows=BATCH_ROWS * 10, seed=0)
    return "synthetic", path, write_dataset(generated, path, BATCH_ROWS * 10)


CPU: dict[str, list[float]] = {}
SERVER_CPU: list[float] = []


def mariadb_cpu_seconds() -> float | None:
    """CPU seconds used so far by the local mariadbd/mysqld process, when there is one.

    An upper bound for the load's share: other clients of the same server count too.
    """
    for proc in Path("/proc").glob("[0-9]*"):
        try:
            if (proc / "comm").read_text().strip() not in ("mariadbd", "mysqld"):
                continue
            fields = (proc / "stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    return None


def timed(fn: Callable[[], Any], step: str | None = None) -> tuple[Any, float]:
    """Run fn; returns its result and wall seconds, and records this process's CPU seconds."""
    started, cpu = time.perf_counter(), time.process_time()
    result = fn()
    if step:
        CPU.setdefault(step, []).append(time.process_time() - cpu)
    return result, time.perf_counter() - started


def executemany_load(engine: sa.Engine, run_id: str, validated: Validated) -> int:
    """The straightforward load: SQLAlchemy executemany, pymysql escaping each value."""
    data = database.tables(engine).data
    inserted = 0
    with engine.begin() as conn:
        for batch in validated.batches:
            constants = {
                "batch_number": batch.batch_number,
                "group_number": validated.group_number,
                "ingestion_run_id": run_id,
                "timestamp": database.utcnow(),
            }
            rows = [
                {**dict(zip(schema.COLUMNS, r, strict=True)), "row_hash": h, **constants}
                for r, h in zip(batch.records, batch.hashes, strict=True)
            ]
            inserted += conn.execute(database.insert_ignore(data), rows).rowcount
    return inserted


def prepare(engine: sa.Engine, batch_rows: list[list[str]]) -> None:
    """The round's starting point: exactly every other row of the batch stored."""
    with engine.begin() as conn:
        conn.execute(sa.delete(database.tables(engine).data))
    database.insert_rows(engine, batch_rows[::2], batch_number=0, group_number=1, run_id="seed")


def run_rounds(engine: sa.Engine, api_url: str, batch_rows: list[list[str]]) -> dict[str, Any]:
    policy = RetryPolicy(attempts=3, initial_wait=0.1, timeout=30)
    steps: dict[str, list[float]] = {
        "fetch": [],
        "validate": [],
        "load": [],
        "load_executemany": [],
    }
    counts: dict[str, int] = {}
    with make_client(api_url, policy) as client:
        for round_number in range(ROUNDS):
            prepare(engine, batch_rows)
            fetched, fetch_s = timed(partial(fetch_window, client, 1, ONE_REQUEST, policy), "fetch")
            validated, validate_s = timed(partial(validate, fetched), "validate")
            server_before = mariadb_cpu_seconds()
            result, load_s = timed(
                partial(load, engine, f"bench-{round_number}", validated), "load"
            )
            server_after = mariadb_cpu_seconds()
            if server_before is not None and server_after is not None:
                SERVER_CPU.append(server_after - server_before)
            steps["fetch"].append(fetch_s)
            steps["validate"].append(validate_s)
            steps["load"].append(load_s)
            counts = {
                "received": result.received,
                "inserted": result.inserted,
                "duplicate": result.duplicate,
            }
            prepare(engine, batch_rows)
            inserted, many_s = timed(partial(executemany_load, engine, "bench-many", validated))
            assert inserted == counts["inserted"], (inserted, counts)
            steps["load_executemany"].append(many_s)
    medians = {name: statistics.median(values) for name, values in steps.items()}
    received = counts["received"]
    window = medians["fetch"] + medians["validate"] + medians["load"]
    cpu = {k: statistics.median(v) for k, v in CPU.items()}
    server = statistics.median(SERVER_CPU) if SERVER_CPU else None
    return {
        **counts,
        "median_s": {k: round(v, 4) for k, v in medians.items()},
        # The fastest round: the closest to an uncontended machine when others share it.
        "best_s": {k: round(min(v), 4) for k, v in steps.items()},
        # This process's CPU time (the server's is not included): unlike wall time, it does
        # not depend on what else the machine runs.
        "client_cpu_median_s": {k: round(v, 4) for k, v in cpu.items()},
        "server_cpu_median_s": round(server, 4) if server is not None else None,
        # What the load would take with both sides to itself: client CPU + server CPU.
        "load_cpu_rows_per_s": round(received / (cpu["load"] + server)) if server else None,
        "share_of_window": {
            k: round(medians[k] / window, 3) for k in ("fetch", "validate", "load")
        },
        "load_rows_per_s": round(received / medians["load"]),
        "load_rows_per_s_best": round(received / min(steps["load"])),
        "window_rows_per_s": round(received / window),
        "load_executemany_rows_per_s": round(received / medians["load_executemany"]),
    }


def sqlite_load(workdir: Path, api_url: str, batch_rows: list[list[str]]) -> dict[str, Any]:
    engine = database.create_engine(f"sqlite:///{workdir / 'bench.db'}")
    database.apply_schema(engine)
    policy = RetryPolicy(attempts=3, initial_wait=0.1, timeout=30)
    times = []
    with make_client(api_url, policy) as client:
        fetched = fetch_window(client, 1, ONE_REQUEST, policy)
    assert isinstance(fetched, Fetched)
    validated = validate(fetched)
    for round_number in range(ROUNDS):
        prepare(engine, batch_rows)
        _, seconds = timed(partial(load, engine, f"bench-{round_number}", validated))
        times.append(seconds)
    engine.dispose()
    median = statistics.median(times)
    return {"load_median_s": round(median, 4), "load_rows_per_s": round(BATCH_ROWS / median)}


def main() -> None:
    admin = sa.create_engine(MYSQL_URL)
    name = f"fmbench_{uuid.uuid4().hex[:8]}"
    with admin.begin() as conn:
        conn.execute(sa.text(f"CREATE DATABASE `{name}` CHARACTER SET utf8mb4"))
    with tempfile.TemporaryDirectory() as tmp:
        workdir = Path(tmp)
        source, path, rows = dataset(workdir)
        batch_rows = rows[:BATCH_ROWS]
        api = start_data_api(path, rows, workdir, min_update_time=3600, sample_fraction=1.0, seed=0)
        engine = database.create_engine(f"{MYSQL_URL}/{name}")
        try:
            database.apply_schema(engine)
            mariadb = run_rounds(engine, api.url, batch_rows)
            sqlite = sqlite_load(workdir, api.url, batch_rows)
        finally:
            engine.dispose()
            api.process.stop()
            with admin.begin() as conn:
                conn.execute(sa.text(f"DROP DATABASE IF EXISTS `{name}`"))
            admin.dispose()
    report = {
        "benchmark": "ingestion",
        "cpu_count": os.cpu_count(),
        "dataset": source,
        "batch_rows": BATCH_ROWS,
        "already_stored": BATCH_ROWS // 2,
        "rounds": ROUNDS,
        "load_average_1_5_15": [round(x, 2) for x in os.getloadavg()],
        "mariadb": mariadb,
        "sqlite": sqlite,
    }
    RESULTS.parent.mkdir(exist_ok=True)
    RESULTS.write_text(json.dumps(report, indent=2) + "\n")
    m = mariadb["median_s"]
    share = mariadb["share_of_window"]
    print(
        f"ingestion of one {BATCH_ROWS}-row batch, half already stored ({source}; "
        f"median of {ROUNDS} rounds; {mariadb['inserted']} inserted, "
        f"{mariadb['duplicate']} duplicates)"
    )
    best = mariadb["best_s"]
    print(f"{'step':<28}{'seconds':>10}{'share':>8}{'rows/s':>10}{'best s':>10}{'best rows/s':>12}")
    for step in ("fetch", "validate", "load"):
        rate = round(BATCH_ROWS / m[step])
        print(
            f"{step:<28}{m[step]:>10.3f}{share[step]:>8.0%}{rate:>10}"
            f"{best[step]:>10.3f}{round(BATCH_ROWS / best[step]):>12}"
        )
    print(
        f"{'whole window':<28}{sum(m[s] for s in ('fetch', 'validate', 'load')):>10.3f}"
        f"{'':>8}{mariadb['window_rows_per_s']:>10}"
    )
    print(
        f"{'load, executemany (before)':<28}{m['load_executemany']:>10.3f}{'':>8}"
        f"{mariadb['load_executemany_rows_per_s']:>10}"
    )
    if mariadb["load_cpu_rows_per_s"]:
        cpu_s = mariadb["client_cpu_median_s"]["load"] + mariadb["server_cpu_median_s"]
        print(
            f"{'load, CPU only (client+db)':<28}{cpu_s:>10.3f}{'':>8}"
            f"{mariadb['load_cpu_rows_per_s']:>10}"
        )
    print(
        f"{'load into SQLite':<28}{sqlite['load_median_s']:>10.3f}{'':>8}"
        f"{sqlite['load_rows_per_s']:>10}"
    )
    print(f"load average during the run: {report['load_average_1_5_15']}")
    print(f"wrote {RESULTS.relative_to(REPO_ROOT)}")


if __name__ == "__main__":
    main()
