"""`forest-mlops mlflow-metrics`: serve the MLflow server's request metrics
(forest_mlops.mlflow_metrics) without MLflow's login, for the chart's sidecar.

Exit codes: 0 stopped by a signal; 2 the directory does not exist.
"""

from __future__ import annotations

import argparse
import logging
from pathlib import Path
from typing import Any

logger = logging.getLogger(__name__)


def register(subparsers: Any) -> None:
    from forest_mlops.mlflow_metrics import DEFAULT_PORT

    parser = subparsers.add_parser(
        "mlflow-metrics",
        help="serve the MLflow server's Prometheus metrics (its --expose-prometheus directory)",
        description=(
            "Read the multiprocess metric files `mlflow server --expose-prometheus DIR` writes "
            "and serve them at /metrics, without MLflow's login."
        ),
    )
    parser.add_argument(
        "--directory", type=Path, required=True, help="the server's --expose-prometheus DIR"
    )
    parser.add_argument("--host", default="0.0.0.0", help="address to listen on")
    parser.add_argument("--port", type=int, default=DEFAULT_PORT, help="port to listen on")
    parser.set_defaults(handler=handle)


def handle(args: argparse.Namespace) -> int:
    from forest_mlops import mlflow_metrics

    try:
        mlflow_metrics.serve(args.directory, host=args.host, port=args.port)
    except ValueError as exc:
        logger.error("mlflow-metrics: %s", exc)
        return 2
    return 0
