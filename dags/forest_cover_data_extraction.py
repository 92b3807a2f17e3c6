"""
### forest_cover_data_extraction

Collects the Forest Cover Type batches that the data API hands out and lands them in
`train_data.forest_cover_data`, the table training reads.

Every run handles one batch window of the configured group:

1. **collection_pending**: stops the run (short-circuit) once the API has said "all data
   collected" for the group (a `complete` row in `ingestion_log`);
2. **fetch**: GET /data calls with retries and exponential backoff, repeated while the responses
   still bring rows the window has not seen (each is a random 10 % of the batch): the window
   stops after the first response with fewer than `FOREST_MIN_NEW_ROWS_FRACTION` (0.1) new
   rows, or after `FOREST_MAX_REQUESTS_PER_WINDOW` (40) calls, about 23 calls and 91 % of the
   batch; the API's 400 "all data collected" ends the run as *skipped*;
3. **validate**: every row against `forest_mlops.schema`; bad rows are kept for `rejected_rows`;
4. **load**: one transaction: new rows (duplicates skipped), rejected rows, the `ingestion_log` row
   (rows the batch offered, rows served, new rows stored, requests);
5. **champion_batch_accuracy**: the current champion's accuracy on the rows just landed (they
   are labelled), before training sees them: a StatsD gauge per batch and model version and a
   metric on the champion's MLflow run (`forest_mlops.monitoring.batch_accuracy`; nothing when
   there is no champion yet);
6. **publish**: when new rows landed, updates the Asset `forest_cover_data`, which schedules
   training.

Tasks may run in separate pods: rows travel through the `ingestion_staging` table, XCom carries
only the run id and counts. Configuration comes from the environment at run time (`FOREST_API_URL`,
`FOREST_DATABASE_URL`, `FOREST_GROUP_NUMBER`, `FOREST_MAX_REQUESTS_PER_WINDOW`,
`FOREST_MIN_NEW_ROWS_FRACTION`, or `FOREST_REQUESTS_PER_WINDOW` for a fixed count); the schedule is
`FOREST_INGEST_INTERVAL_SECONDS` (default 300 s, the API's window). See docs/INGESTION.md.
"""

from __future__ import annotations

import datetime as dt
import os
from typing import Any

from airflow.sdk import dag, get_current_context, task
from airflow.sdk.exceptions import AirflowSkipException

from forest_mlops.assets import FOREST_COVER_DATA

# Read from the environment at parse time: no database or network access here.
INTERVAL = dt.timedelta(seconds=float(os.environ.get("FOREST_INGEST_INTERVAL_SECONDS", "300")))


def _engine() -> Any:
    from forest_mlops import database

    return database.create_engine(_settings().database_url)


def _settings() -> Any:
    from forest_mlops.ingestion import IngestionSettings

    return IngestionSettings()


@dag(
    dag_id="forest_cover_data_extraction",
    schedule=INTERVAL,
    start_date=dt.datetime(2026, 1, 1, tzinfo=dt.UTC),
    catchup=False,
    max_active_runs=1,  # one window at a time: runs must not race for the same batch
    # Runs as soon as it is deployed: Airflow's default (dags_are_paused_at_creation) would
    # leave a fresh install collecting, training and serving nothing until someone unpauses.
    is_paused_upon_creation=False,
    tags=["forest-mlops", "ingestion"],
    doc_md=__doc__,
    default_args={
        "retries": 2,
        "retry_delay": dt.timedelta(seconds=30),
        "retry_exponential_backoff": True,
    },
)
def forest_cover_data_extraction() -> None:
    @task.short_circuit
    def collection_pending() -> bool:
        from forest_mlops.ingestion import collection_complete

        engine = _engine()
        try:
            return not collection_complete(engine, _settings().group_number)
        finally:
            engine.dispose()

    @task
    def fetch() -> dict[str, Any]:
        from forest_mlops.ingestion import CollectionComplete, new_run_id, staged_fetch

        context = get_current_context()
        run_id = new_run_id(f"airflow:{context['run_id']}")
        engine = _engine()
        try:
            outcome = staged_fetch(engine, _settings(), run_id)
        finally:
            engine.dispose()
        if isinstance(outcome, CollectionComplete):
            raise AirflowSkipException(outcome.message)
        return outcome

    @task
    def validate(fetched: dict[str, Any]) -> dict[str, Any]:
        from forest_mlops.ingestion import staged_validate

        engine = _engine()
        try:
            return staged_validate(engine, fetched["run_id"])
        finally:
            engine.dispose()

    @task
    def load(validated: dict[str, Any]) -> dict[str, Any]:
        from airflow.sdk.observability import stats

        from forest_mlops.ingestion import staged_load
        from forest_mlops.monitoring.ingestion import batch_row_gauges

        engine = _engine()
        try:
            loaded = staged_load(engine, validated["run_id"])
        finally:
            engine.dispose()
        for name, value in batch_row_gauges(loaded):  # the collection dashboard's rows
            stats.gauge(name, value)
        return loaded

    @task
    def champion_batch_accuracy(loaded: dict[str, Any]) -> dict[str, Any]:
        # Before publish: the training run publish schedules may move the champion, and the
        # point is how the model in service does on rows it has never seen.
        from airflow.sdk.observability import stats

        from forest_mlops.monitoring.batch_accuracy import check_from_environment

        return check_from_environment(loaded, emit=stats.gauge)

    @task(outlets=[FOREST_COVER_DATA])
    def publish(loaded: dict[str, Any]) -> None:
        # A skipped task emits no Asset event: training is not scheduled for nothing.
        if loaded["inserted"] == 0:
            raise AirflowSkipException("no new rows landed: forest_cover_data is unchanged")
        extra = {k: loaded[k] for k in ("run_id", "group_number", "inserted", "duplicate")}
        extra["batches"] = [b["batch_number"] for b in loaded["batches"]]
        get_current_context()["outlet_events"][FOREST_COVER_DATA].extra = extra

    fetched = fetch()
    collection_pending() >> fetched
    # TaskFlow calls return XComArgs at parse time, resolved to the typed values at run time.
    loaded = load(validate(fetched))  # type: ignore[arg-type]
    champion_batch_accuracy(loaded) >> publish(loaded)  # type: ignore[arg-type]


forest_cover_data_extraction()
