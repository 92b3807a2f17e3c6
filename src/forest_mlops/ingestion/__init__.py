"""Collect batches from the data API into train_data: fetch → validate → load.

`pipeline` runs the steps (in one process, or staged for the Airflow tasks); `fetch`, `validate`
and `load` are the steps; `staging` hands rows between tasks through MySQL.
"""

from forest_mlops.ingestion.fetch import (
    CollectionComplete,
    Fetched,
    FetchError,
    RetryPolicy,
    WindowRule,
    fetch_window,
)
from forest_mlops.ingestion.load import (
    LoadResult,
    collection_complete,
    holds_synthetic_data,
    load,
)
from forest_mlops.ingestion.pipeline import (
    collect_until_complete,
    new_run_id,
    run_window,
    staged_fetch,
    staged_load,
    staged_validate,
)
from forest_mlops.ingestion.settings import IngestionSettings
from forest_mlops.ingestion.validate import Validated, validate

__all__ = [
    "CollectionComplete",
    "FetchError",
    "Fetched",
    "IngestionSettings",
    "LoadResult",
    "RetryPolicy",
    "Validated",
    "WindowRule",
    "collect_until_complete",
    "collection_complete",
    "fetch_window",
    "holds_synthetic_data",
    "load",
    "new_run_id",
    "run_window",
    "staged_fetch",
    "staged_load",
    "staged_validate",
    "validate",
]
