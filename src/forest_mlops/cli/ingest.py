"""`forest-mlops ingest`: collect batches from the data API into the training database.

The same fetch → validate → load steps as the extraction DAG, without Airflow. Prints one JSON
line per window. Exit codes: 0 done (including "all data collected"); 1 the API could not be
read after the retries (nothing of that window written); 2 bad configuration.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
from typing import Any

log = logging.getLogger(__name__)


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "ingest",
        help="collect batches from the data API into the training database",
        description="GET /data for a group, repeated within a batch window while the responses "
        "still bring enough new rows; validate the rows, and land them in "
        "forest_cover_data (duplicates skipped, bad rows kept in rejected_rows). Flags override "
        "the FOREST_* environment variables.",
    )
    parser.add_argument("--api-url", help="data API base URL (default: $FOREST_API_URL)")
    parser.add_argument(
        "--database-url",
        help="SQLAlchemy URL, mysql+pymysql://... or sqlite:///PATH "
        "(default: $FOREST_DATABASE_URL)",
    )
    parser.add_argument("--group", type=int, help="group number (default: $FOREST_GROUP_NUMBER, 1)")
    parser.add_argument(
        "--until-complete",
        action="store_true",
        help="keep collecting, one window per batch as the API schedules them (GET /batches), "
        "until the API says all data is collected (default: one window)",
    )
    parser.add_argument(
        "--max-requests-per-window",
        type=int,
        # The defaults are named, not restated: they live in forest_mlops.ingestion.fetch,
        # which this module imports only when the command runs (start-up time).
        help="most GET /data calls in a window (default: $FOREST_MAX_REQUESTS_PER_WINDOW, else 40)",
    )
    parser.add_argument(
        "--min-new-rows-fraction",
        type=float,
        help="a window stops after the first response with fewer rows new to it than this "
        "share of the response; 0: always the maximum (default: "
        "$FOREST_MIN_NEW_ROWS_FRACTION, else 0.1)",
    )
    parser.add_argument(
        "--requests-per-window",
        type=int,
        help="exactly K GET /data calls per window instead of the stop rule (default: "
        "$FOREST_REQUESTS_PER_WINDOW, unset)",
    )
    parser.add_argument(
        "--interval",
        type=float,
        help="fixed seconds between windows with --until-complete instead of the API's "
        "announced schedule (default: $FOREST_INGEST_INTERVAL_SECONDS, else the schedule; "
        "300 s when the API announces none)",
    )
    parser.add_argument(
        "--attempts", type=int, help="tries per request (default: $FOREST_FETCH_ATTEMPTS, 5)"
    )
    parser.add_argument(
        "--backoff",
        type=float,
        help="first wait between tries in seconds, doubling (default: "
        "$FOREST_RETRY_BACKOFF_SECONDS, 1)",
    )
    parser.set_defaults(handler=run)


# Settings field -> the attribute of its flag; a flag left out falls back to the environment.
_FLAG_FIELDS = {
    "api_url": "api_url",
    "database_url": "database_url",
    "group_number": "group",
    "max_requests_per_window": "max_requests_per_window",
    "min_new_rows_fraction": "min_new_rows_fraction",
    "requests_per_window": "requests_per_window",
    "ingest_interval_seconds": "interval",
    "fetch_attempts": "attempts",
    "retry_backoff_seconds": "backoff",
}


def _emit(record: dict[str, Any]) -> None:
    sys.stdout.write(json.dumps(record) + "\n")
    sys.stdout.flush()


def run(args: argparse.Namespace) -> int:
    import httpx

    from forest_mlops import database
    from forest_mlops.cli._settings import from_flags
    from forest_mlops.ingestion import FetchError, IngestionSettings, pipeline

    settings = from_flags(IngestionSettings, args, _FLAG_FIELDS, command="ingest")
    if settings is None:
        return 2
    engine = database.create_engine(settings.database_url)
    try:
        database.apply_schema(engine)
        policy = pipeline.retry_policy(settings)
        with httpx.Client(base_url=settings.api_url.rstrip("/"), timeout=policy.timeout) as client:
            collection = pipeline.collect_until_complete(
                engine,
                client,
                settings.group_number,
                interval=settings.ingest_interval_seconds,
                rule=settings.window_rule(),
                policy=policy,
                max_windows=None if args.until_complete else 1,
                on_result=lambda result: _emit(result.summary()),
            )
    except FetchError as exc:
        sys.stderr.write(f"forest-mlops ingest: {exc}\n")
        return 1
    finally:
        engine.dispose()
    if collection.complete:
        _emit({"group_number": settings.group_number, "complete": True})
    return 0
