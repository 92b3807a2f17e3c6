"""fetch → validate → load for one batch window, in memory (CLI) or staged (Airflow tasks).

`run_window` and `collect_until_complete` run the steps in one process (`forest-mlops ingest`).
The `staged_*` functions are the bodies of the extraction DAG's tasks: the same steps, with the
rows handed over through the staging table so each task can run in its own pod.
"""

from __future__ import annotations

import logging
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import httpx
import sqlalchemy as sa

from forest_mlops.database import utcnow
from forest_mlops.ingestion import staging
from forest_mlops.ingestion.fetch import (
    CollectionComplete,
    Fetched,
    FetchError,
    RetryPolicy,
    WindowRule,
    fetch_window,
)
from forest_mlops.ingestion.load import (
    STATUS_COMPLETE,
    STATUS_FAILED,
    LoadResult,
    load,
    loaded_result,
    record_status,
)
from forest_mlops.ingestion.schedule import seconds_until_next_batch
from forest_mlops.ingestion.settings import DEFAULT_INTERVAL_SECONDS, IngestionSettings
from forest_mlops.ingestion.validate import validate

log = logging.getLogger(__name__)

# The building blocks below make one request a window unless told otherwise; the platform's
# stop rule is configuration (IngestionSettings.window_rule(): the CLI, the DAG, the chart).
ONE_REQUEST = WindowRule.fixed(1)


def new_run_id(prefix: str = "cli") -> str:
    return f"{prefix}-{utcnow():%Y%m%dT%H%M%S}-{uuid.uuid4().hex[:8]}"


def retry_policy(settings: IngestionSettings) -> RetryPolicy:
    return RetryPolicy(
        attempts=settings.fetch_attempts,
        initial_wait=settings.retry_backoff_seconds,
        max_wait=settings.retry_backoff_max_seconds,
        timeout=settings.http_timeout_seconds,
    )


def _fetch_or_record(
    engine: sa.Engine,
    client: httpx.Client,
    run_id: str,
    group_number: int,
    rule: WindowRule,
    policy: RetryPolicy,
) -> Fetched | CollectionComplete:
    """fetch_window, logging 'failed' and 'complete' attempts in ingestion_log."""
    started_at = utcnow()
    try:
        outcome = fetch_window(client, group_number, rule, policy)
    except FetchError as exc:
        # Nothing of the window is written: only the attempt is logged.
        record_status(engine, run_id, group_number, STATUS_FAILED, str(exc), started_at)
        raise
    if isinstance(outcome, CollectionComplete):
        log.info("group %s: all data collected (%s)", group_number, outcome.message)
        record_status(
            engine, run_id, group_number, STATUS_COMPLETE, outcome.message, outcome.started_at
        )
    return outcome


def run_window(
    engine: sa.Engine,
    client: httpx.Client,
    group_number: int,
    *,
    rule: WindowRule = ONE_REQUEST,
    policy: RetryPolicy | None = None,
    run_id: str | None = None,
) -> LoadResult | CollectionComplete:
    """One batch window: GET /data calls until `rule` stops them, validated, loaded in one
    transaction."""
    run_id = run_id or new_run_id()
    outcome = _fetch_or_record(engine, client, run_id, group_number, rule, policy or RetryPolicy())
    if isinstance(outcome, CollectionComplete):
        return outcome
    return load(engine, run_id, validate(outcome))


@dataclass(frozen=True)
class Collection:
    results: list[LoadResult]
    complete: bool  # the API said all data is collected


def collect_until_complete(
    engine: sa.Engine,
    client: httpx.Client,
    group_number: int,
    *,
    interval: float | None = None,
    fallback_interval: float = DEFAULT_INTERVAL_SECONDS,
    rule: WindowRule = ONE_REQUEST,
    policy: RetryPolicy | None = None,
    max_windows: int | None = None,
    on_result: Callable[[LoadResult], None] | None = None,
    sleep: Callable[[float], None] = time.sleep,
) -> Collection:
    """Run windows until the API says all data is collected.

    Paced by the API's announced schedule (`schedule.seconds_until_next_batch`): each window
    starts when the group's next batch is due. A fixed `interval` replaces the schedule; an API
    that announces none gets `fallback_interval` (its MIN_UPDATE_TIME, 300 s by default, sees
    every batch). A FetchError ends the collection (the windows before it stay loaded).
    """
    results: list[LoadResult] = []
    while max_windows is None or len(results) < max_windows:
        started = time.monotonic()
        outcome = run_window(engine, client, group_number, rule=rule, policy=policy)
        if isinstance(outcome, CollectionComplete):
            return Collection(results, complete=True)
        results.append(outcome)
        if on_result is not None:
            on_result(outcome)
        if outcome.complete:
            return Collection(results, complete=True)
        if max_windows is not None and len(results) >= max_windows:
            break
        if interval is not None:
            wait = max(0.0, interval - (time.monotonic() - started))
        else:
            announced = seconds_until_next_batch(client, group_number)
            wait = (
                max(0.0, fallback_interval - (time.monotonic() - started))
                if announced is None
                else announced
            )
        log.info("group %s: next window in %.1f s", group_number, wait)
        sleep(wait)
    return Collection(results, complete=False)


# --- the bodies of the Airflow tasks (small JSON-able dicts go through XCom) ---


def staged_fetch(
    engine: sa.Engine, settings: IngestionSettings, run_id: str
) -> dict[str, Any] | CollectionComplete:
    """Fetch one window and stage it; CollectionComplete when the API has no more batches."""
    staging.delete_stale(engine)
    policy = retry_policy(settings)
    with httpx.Client(base_url=settings.api_url.rstrip("/"), timeout=policy.timeout) as client:
        outcome = _fetch_or_record(
            engine, client, run_id, settings.group_number, settings.window_rule(), policy
        )
    if isinstance(outcome, CollectionComplete):
        return outcome
    staging.save_fetched(engine, run_id, outcome)
    return {
        "run_id": run_id,
        "group_number": outcome.group_number,
        "requests": len(outcome.responses),
        "rows_received": outcome.rows_received,
        "rows_new": sum(outcome.new_rows),
        "batches": sorted({r.batch_number for r in outcome.responses}),
        "complete": outcome.complete,
    }


def staged_validate(engine: sa.Engine, run_id: str) -> dict[str, Any]:
    validated = validate(staging.read_fetched(engine, run_id))
    staging.save_validated(engine, run_id, validated)
    return {
        "run_id": run_id,
        "rows_received": validated.rows_received,
        "rows_valid": validated.rows_valid,
        "rows_rejected": validated.rows_rejected,
    }


def staged_load(engine: sa.Engine, run_id: str) -> dict[str, Any]:
    """Load the staged run; a retry after a committed load returns that load's result."""
    try:
        validated = staging.read_validated(engine, run_id)
    except staging.StagingMissingError:
        previous = loaded_result(engine, run_id)
        if previous is None:
            raise
        log.info("run %s was already loaded; not loading it twice", run_id)
        return previous.summary()
    return load(engine, run_id, validated, delete_staging=True).summary()
