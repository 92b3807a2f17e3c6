"""`forest-mlops demo`: the whole loop on one machine (see docs/DEMO.md)."""

from __future__ import annotations

import argparse
import logging
import signal
import sys
from pathlib import Path
from types import FrameType
from typing import Any

from forest_mlops.demo import config as demo_config


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "demo",
        help="run the whole loop locally: data API -> Airflow DAGs -> MLflow -> inference",
        description=(
            "Serve a dataset through the data API, collect a group with the real extraction "
            "DAG, train with the real training DAG (Airflow dag.test(), SQLite metadata), "
            "serve the champion and ask it for predictions. All state lives in --workdir."
        ),
    )
    parser.add_argument(
        "--workdir",
        type=Path,
        default=demo_config.DEFAULT_WORKDIR,
        help="directory for all state; reusable, removable (default: ./demo-work)",
    )
    parser.add_argument(
        "--dataset",
        type=Path,
        help="course-layout CSV to serve (default: the UCI data, cached or downloaded; "
        "synthetic rows when neither works)",
    )
    parser.add_argument(
        "--database-url",
        help="SQLAlchemy URL of the training database (default: SQLite in the work directory)",
    )
    parser.add_argument(
        "--tracking-uri",
        help="MLflow tracking URI (default: a SQLite store in the work directory)",
    )
    parser.add_argument("--group", type=int, default=demo_config.DEFAULT_GROUP)
    parser.add_argument(
        "--min-update-time",
        type=float,
        default=demo_config.DEFAULT_MIN_UPDATE_TIME,
        help="seconds each batch stays current in the data API (default: %(default)s)",
    )
    parser.add_argument(
        "--requests-per-window",
        type=int,
        help="exactly K /data requests per batch window (default: the platform's stop rule: "
        "requests while they bring new rows, most of each batch)",
    )
    parser.add_argument(
        "--profile",
        choices=("quick", "full"),
        default=demo_config.DEFAULT_PROFILE,
        help="training search: quick (demo) or full (the benchmarked one)",
    )
    parser.add_argument(
        "--serve", action="store_true", help="keep the services up after the run until Ctrl-C"
    )
    parser.add_argument("--api-port", type=int, default=0, help="default: 8000 if free")
    parser.add_argument("--inference-port", type=int, default=0, help="default: 8001 if free")
    parser.add_argument("--dags-folder", type=Path, help="default: dags/ of this checkout")
    parser.set_defaults(handler=handle)


def _terminate(signum: int, frame: FrameType | None) -> None:
    # SIGTERM unwinds like Ctrl-C, so the demo stops its children on the way out.
    raise KeyboardInterrupt(f"signal {signum}")


def handle(args: argparse.Namespace) -> int:
    from forest_mlops.demo.console import Console
    from forest_mlops.demo.flow import run_demo

    try:
        config = demo_config.DemoConfig(
            workdir=args.workdir,
            dataset=args.dataset,
            database_url=args.database_url,
            tracking_uri=args.tracking_uri,
            group=args.group,
            min_update_time=args.min_update_time,
            requests_per_window=args.requests_per_window,
            profile=args.profile,
            serve=args.serve,
            api_port=args.api_port,
            inference_port=args.inference_port,
            dags_folder=args.dags_folder,
        )
    except ValueError as exc:
        sys.stderr.write(f"forest-mlops demo: {exc}\n")
        return 2
    # The children's own logs are in the work directory; keep the console for the demo.
    logging.getLogger().setLevel(max(logging.getLogger().level, logging.WARNING))
    signal.signal(signal.SIGTERM, _terminate)
    # Ctrl-C is how the demo is stopped, so it is always honoured: a shell without job control
    # (a CI script, `cmd &` in a script) starts background commands with SIGINT ignored, and
    # Python keeps an inherited SIG_IGN; the demo then sat through every Ctrl-C.
    signal.signal(signal.SIGINT, signal.default_int_handler)
    console = Console()
    try:
        return run_demo(config, console)
    except KeyboardInterrupt:
        console.info("interrupted: the demo's processes are stopped")
        return 130
    except (RuntimeError, ValueError, OSError) as exc:  # ServiceError, DatasetError, ...
        sys.stderr.write(f"\nforest-mlops demo failed: {exc}\n")
        return 1
