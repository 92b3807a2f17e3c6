"""`forest-mlops api-data`: serve a dataset batch by batch over HTTP (the course data API)."""

from __future__ import annotations

import argparse
import logging
import os
import sys
from pathlib import Path
from typing import Any

logger = logging.getLogger(__name__)

# Flag name -> Settings field; a flag left out falls back to the environment, then the default.
_FLAG_FIELDS = (
    "dataset",
    "min_update_time",
    "state_path",
    "port",
    "host",
    "groups",
    "batches",
    "sample_fraction",
    "seed",
)


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "api-data",
        help="serve the dataset batch by batch (the course data API contract)",
        description=(
            "Serve a course-layout CSV over HTTP: GET /data?group_number=N returns a random "
            "sample of the group's current batch, moving to the next batch after "
            "--min-update-time seconds. Flags override the environment (API_DATA_*, "
            "MIN_UPDATE_TIME)."
        ),
    )
    parser.add_argument("--dataset", type=Path, help="course-layout CSV (.csv or .csv.gz)")
    parser.add_argument(
        "--min-update-time", type=float, help="seconds a batch stays current (default: 300)"
    )
    parser.add_argument("--state", dest="state_path", type=Path, help="JSON state file")
    parser.add_argument("--port", type=int, help="default: 8000")
    parser.add_argument("--host", help="default: 0.0.0.0")
    parser.add_argument("--groups", type=int, help="number of groups (default: 10)")
    parser.add_argument("--batches", type=int, help="number of batches (default: 10)")
    parser.add_argument(
        "--sample-fraction", type=float, help="share of a batch per response (default: 0.1)"
    )
    parser.add_argument("--seed", type=int, help="sampling seed (default: random)")
    parser.add_argument(
        "--access-log", action="store_true", help="log every request (off: it costs throughput)"
    )
    parser.set_defaults(handler=handle)


def handle(args: argparse.Namespace) -> int:
    import uvicorn

    from api_data.app import create_app
    from api_data.batches import LayoutError
    from api_data.settings import Settings
    from forest_mlops.cli._settings import from_flags
    from forest_mlops.dataset import DatasetError

    if args.dataset is None and not os.environ.get("API_DATA_DATASET"):
        sys.stderr.write(
            "forest-mlops api-data: no dataset: pass --dataset PATH or set API_DATA_DATASET "
            "(get one with `forest-mlops data download` or `forest-mlops data synthetic`)\n"
        )
        return 2
    settings = from_flags(Settings, args, _FLAG_FIELDS, command="api-data")
    if settings is None:
        return 2
    try:
        app = create_app(settings)
    except (DatasetError, LayoutError) as exc:
        sys.stderr.write(f"forest-mlops api-data: cannot serve the dataset: {exc}\n")
        return 1
    uvicorn.run(
        app,
        host=settings.host,
        port=settings.port,
        log_level=logging.getLevelName(logging.getLogger().level).lower(),
        access_log=args.access_log,
        # One process: the group state and its lock live in it.
        workers=1,
    )
    return 0
