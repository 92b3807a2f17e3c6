"""`forest-mlops inference`: serve the registry's champion model over HTTP (inference_api)."""

from __future__ import annotations

import argparse
import logging
import os
from typing import Any

# Flag name -> Settings field; a flag left out falls back to the environment, then the default.
_FLAG_FIELDS = (
    "port",
    "host",
    "tracking_uri",
    "model_name",
    "model_alias",
    "poll_interval",
)


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "inference",
        help="serve predictions of the registered champion model (the inference API)",
        description=(
            "Serve POST /predict, the web page and the operational routes for the model "
            "version the registry alias points at, swapping in new versions as the alias "
            "moves. Flags override the environment (MLFLOW_TRACKING_URI, FOREST_MODEL_NAME, "
            "FOREST_MODEL_ALIAS, INFERENCE_*)."
        ),
    )
    parser.add_argument("--port", type=int, help="default: $INFERENCE_PORT, else 8001")
    parser.add_argument("--host", help="default: $INFERENCE_HOST, else 0.0.0.0")
    parser.add_argument("--tracking-uri", help="MLflow server (default: $MLFLOW_TRACKING_URI)")
    parser.add_argument(
        "--model-name",
        help="registered model (default: $FOREST_MODEL_NAME, else forest-cover-type)",
    )
    parser.add_argument(
        "--model-alias", help="alias to serve (default: $FOREST_MODEL_ALIAS, else champion)"
    )
    parser.add_argument(
        "--poll-interval",
        type=float,
        help="seconds between registry checks (default: $INFERENCE_POLL_INTERVAL, else 30)",
    )
    parser.add_argument(
        "--access-log", action="store_true", help="log every request (off: it costs throughput)"
    )
    parser.set_defaults(handler=handle)


def handle(args: argparse.Namespace) -> int:
    # One model thread per process: OpenMP pools inside a single-record predict cost more than
    # they save, and oversubscribe the CPU limit of the pod. Set before numpy/sklearn load.
    os.environ.setdefault("OMP_NUM_THREADS", "1")

    import uvicorn

    from forest_mlops.cli._settings import from_flags
    from inference_api.app import create_app
    from inference_api.arrival import ArrivalStampingProtocol
    from inference_api.settings import Settings

    settings = from_flags(Settings, args, _FLAG_FIELDS, command="inference")
    if settings is None:
        return 2
    uvicorn.run(
        create_app(settings),
        host=settings.host,
        port=settings.port,
        log_level=logging.getLevelName(logging.getLogger().level).lower(),
        access_log=args.access_log,
        # httptools' protocol, stamping each request with the kernel's receipt of its bytes: the
        # latency histogram starts there.
        http=ArrivalStampingProtocol,
        # One process: the model, the swap and the metrics live in it; scale with replicas.
        workers=1,
    )
    return 0
