"""Runs inside the Airflow child process: the real DAGs with Airflow's in-process runner.

Started by `airflow_runner` with AIRFLOW_HOME and the forest-mlops variables already in the
environment (Airflow reads its configuration when it is first imported, so this cannot run in
the demo's own process). It runs `forest_cover_data_extraction` once per batch window, the way
the scheduler would, until the group's batches are all collected, then
`forest_cover_model_training` once, and reports each run as an event (see `events`).

    python -m forest_mlops.demo.airflow_child --events PATH --group N --batches 10 \
        --interval 5.5 [--go-file PATH] [--skip-extraction] [--skip-training]
"""

from __future__ import annotations

import argparse
import datetime as dt
import importlib
import json
import logging
import os
import sys
import time
from collections.abc import Sequence
from dataclasses import asdict
from pathlib import Path
from typing import Any

from forest_mlops import database
from forest_mlops.demo.collection import CollectionState, read_collection
from forest_mlops.demo.events import EventWriter

log = logging.getLogger(__name__)

EXTRACTION_DAG_ID = "forest_cover_data_extraction"
TRAINING_DAG_ID = "forest_cover_model_training"


class DagRunFailed(RuntimeError):
    pass


def _collection_fields(state: CollectionState) -> dict[str, Any]:
    return {
        "batches": [asdict(batch) for batch in state.batches],
        "stored_rows": state.stored_rows,
        "received_rows": state.received_rows,
        "complete": state.complete,
        "failed_attempts": state.failed_attempts,
    }


def _task_states(dag_run: Any) -> dict[str, str]:
    return {ti.task_id: str(ti.state) for ti in dag_run.get_task_instances()}


def _run_dag(dag: Any, events: EventWriter, event: str, **fields: Any) -> dict[str, Any]:
    started = time.monotonic()
    dag_run = dag.test()
    if dag_run is None:
        raise DagRunFailed(f"{dag.dag_id}: dag.test() returned no run")
    result = {
        "dag_id": dag.dag_id,
        "run_id": dag_run.run_id,
        "state": str(dag_run.state),
        "tasks": _task_states(dag_run),
        "seconds": round(time.monotonic() - started, 2),
        **fields,
    }
    events.emit(event, **result)
    if result["state"] != "success":
        raise DagRunFailed(
            f"{dag.dag_id} run {dag_run.run_id} ended {result['state']}: tasks {result['tasks']}"
        )
    return result


def _until_next_window(state: CollectionState, run_started: float, interval: float) -> float:
    """Seconds to wait before the next run, so that its requests fall in the next window.

    The API opens a batch's window at the first request that serves it, which is some
    seconds into a run (the tasks before fetch), so the wait counts from when the last
    attempt started fetching, as the ingestion log records it; and, like the scheduler, at
    least one interval from the start of the previous run.
    """
    waits = [run_started + interval - time.monotonic()]
    if state.last_attempt_at is not None:
        fetched_at = state.last_attempt_at.replace(tzinfo=dt.UTC).timestamp()
        waits.append(fetched_at + interval - time.time())
    return max(0.0, *waits)


def collect(
    dag: Any,
    events: EventWriter,
    *,
    group: int,
    batches: int,
    interval: float,
    max_runs: int,
) -> CollectionState:
    """Run the extraction DAG once per batch window until every batch of the group is in."""
    engine = database.engine_from_env()
    state = read_collection(engine, group)
    if state.has_all_batches(batches):
        events.emit("collection_done", runs=0, already=True, **_collection_fields(state))
        return state
    if state.batches:  # an interrupted earlier run collected these
        events.emit("collection", run=0, **_collection_fields(state))
    for run in range(1, max_runs + 1):
        started = time.monotonic()
        _run_dag(dag, events, "extraction_run", run=run)
        state = read_collection(engine, group)
        events.emit("collection", run=run, **_collection_fields(state))
        if state.has_all_batches(batches):
            events.emit("collection_done", runs=run, already=False, **_collection_fields(state))
            return state
        time.sleep(_until_next_window(state, started, interval))
    raise DagRunFailed(
        f"group {group} still incomplete after {max_runs} extraction runs "
        f"(batches seen: {[b.batch for b in state.batches]})"
    )


def _warm_up(skip_training: bool) -> None:
    """Do the slow first-time work now, while the demo is still starting its services.

    dag.test() talks to Airflow's execution API in-process; that app builds its versioned
    routes on its first request, which takes 15-20 s on 2 cores and would otherwise land on
    the first task of the first run. One /health request pays it here instead. The task
    code's libraries are imported for the same reason.
    """
    try:
        import httpx
        from airflow.sdk.execution_time.supervisor import in_process_api_server

        transport = in_process_api_server().transport
        with httpx.Client(transport=transport, base_url="http://in-process.invalid") as client:
            client.get("/health")
    except Exception as exc:  # an internal of Airflow's: without it runs are only slower
        log.info("could not warm Airflow's in-process execution API: %s", exc)
    modules = ["forest_mlops.ingestion"]
    if not skip_training:
        modules += ["forest_mlops.training.workflow", "mlflow.sklearn", "matplotlib.pyplot"]
    for module in modules:
        importlib.import_module(module)


def _wait_for_release(path: Path, timeout: float) -> dict[str, str] | None:
    """Wait for the demo's go file; returns the environment it carries (JSON), or None."""
    deadline = time.monotonic() + timeout
    while not path.exists():
        if time.monotonic() > deadline:
            return None
        time.sleep(0.1)
    content = json.loads(path.read_text(encoding="utf-8"))
    return {str(key): str(value) for key, value in content.items()}


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="forest_mlops.demo.airflow_child")
    parser.add_argument("--events", type=Path, required=True)
    parser.add_argument("--group", type=int, required=True)
    parser.add_argument("--batches", type=int, required=True)
    parser.add_argument("--interval", type=float, required=True)
    parser.add_argument("--go-file", type=Path, help="wait for this file before any DAG run")
    parser.add_argument("--go-timeout", type=float, default=600.0)
    parser.add_argument("--max-runs", type=int, default=0)
    parser.add_argument("--skip-extraction", action="store_true")
    parser.add_argument("--skip-training", action="store_true")
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    events = EventWriter(args.events)
    if "AIRFLOW_HOME" not in os.environ:
        events.emit("error", message="AIRFLOW_HOME is not set: run this through the demo")
        return 2

    started = time.monotonic()
    from airflow.dag_processing.dagbag import DagBag

    bag = DagBag(dag_folder=os.environ["AIRFLOW__CORE__DAGS_FOLDER"])
    if bag.import_errors:
        events.emit("error", message=f"the DAG files do not import: {bag.import_errors}")
        return 2
    wanted = [
        dag_id
        for dag_id, skipped in (
            (EXTRACTION_DAG_ID, args.skip_extraction),
            (TRAINING_DAG_ID, args.skip_training),
        )
        if not skipped
    ]
    missing = [dag_id for dag_id in wanted if dag_id not in bag.dags]
    if missing:
        events.emit("error", message=f"DAGs not found in {bag.dag_folder}: {missing}")
        return 2
    _warm_up(args.skip_training)
    events.emit("airflow_ready", seconds=round(time.monotonic() - started, 2))
    if args.go_file is not None:
        late_env = _wait_for_release(args.go_file, args.go_timeout)
        if late_env is None:
            events.emit("error", message=f"not released within {args.go_timeout:.0f} s")
            return 2
        # Settings the demo only knew after this process started (e.g. whether the data is
        # synthetic); the tasks read their settings from the environment when they run.
        os.environ.update(late_env)

    try:
        if not args.skip_extraction:
            collect(
                bag.dags[EXTRACTION_DAG_ID],
                events,
                group=args.group,
                batches=args.batches,
                interval=args.interval,
                max_runs=args.max_runs or 3 * args.batches + 3,
            )
        if not args.skip_training:
            events.emit("training_start")
            _run_dag(bag.dags[TRAINING_DAG_ID], events, "training_run")
    except DagRunFailed as exc:
        events.emit("error", message=str(exc))
        return 1
    events.emit("finished", seconds=round(time.monotonic() - started, 2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
