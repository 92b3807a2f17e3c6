"""`forest-mlops mlflow-auth`: prepare MLflow's basic-auth app (forest_mlops.mlflow_auth).

Run before `mlflow server --app-name basic-auth` (the chart's auth-users init container). Every
secret comes from the environment, never from a flag (flags show up in `ps` and pod specs):

  FOREST_MLFLOW_AUTH_DATABASE_URI   the auth store (MLflow's MySQL database), password included
  MLFLOW_AUTH_ADMIN_PASSWORD        the admin's password (MLflow's own variable)
  FOREST_MLFLOW_TRAIN_PASSWORD      the train user's
  FOREST_MLFLOW_INFERENCE_PASSWORD  the inference user's
  FOREST_MODEL_NAME                 the registered model train writes and inference reads

Exit codes: 0 done; 2 a variable is missing or --login-cache-seconds is negative.
"""

from __future__ import annotations

import argparse
import logging
import os
from pathlib import Path
from typing import Any

from forest_mlops import mlflow_auth

logger = logging.getLogger(__name__)

_REQUIRED = (
    "FOREST_MLFLOW_AUTH_DATABASE_URI",
    "MLFLOW_AUTH_ADMIN_PASSWORD",
    "FOREST_MLFLOW_TRAIN_PASSWORD",
    "FOREST_MLFLOW_INFERENCE_PASSWORD",
    "FOREST_MODEL_NAME",
)


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "mlflow-auth",
        help="write MLflow's basic-auth config and create/update the platform's MLflow users",
        description=(
            "Write the basic-auth app's ini file and create or update the admin, train and "
            "inference users with their grants (idempotent). Secrets come from the "
            "environment: " + ", ".join(_REQUIRED) + "."
        ),
    )
    parser.add_argument(
        "--config-out",
        type=Path,
        required=True,
        help="where to write the ini file (point MLFLOW_AUTH_CONFIG_PATH of the server at it)",
    )
    parser.add_argument(
        "--admin-user", default=os.environ.get("MLFLOW_AUTH_ADMIN_USERNAME", "admin")
    )
    parser.add_argument("--train-user", default="train")
    parser.add_argument("--inference-user", default="inference")
    parser.add_argument(
        "--login-cache-seconds",
        type=_seconds,
        default=mlflow_auth.LOGIN_CACHE_SECONDS,
        help="how long the server keeps a checked login (MLflow's auth_cache_ttl_seconds; "
        "0: check every request; default: %(default)s)",
    )
    parser.set_defaults(handler=handle)


def _seconds(text: str) -> int:
    value = int(text)
    if value < 0:
        raise argparse.ArgumentTypeError(f"must be >= 0, not {value}")
    return value


def handle(args: argparse.Namespace) -> int:
    absent = [name for name in _REQUIRED if not os.environ.get(name)]
    if absent:
        logger.error("mlflow-auth: missing environment variable(s): %s", ", ".join(absent))
        return 2
    uri = os.environ["FOREST_MLFLOW_AUTH_DATABASE_URI"]
    mlflow_auth.write_config(
        args.config_out,
        uri,
        admin_username=args.admin_user,
        login_cache_seconds=args.login_cache_seconds,
    )
    mlflow_auth.ensure_users(
        uri,
        admin=mlflow_auth.Login(args.admin_user, os.environ["MLFLOW_AUTH_ADMIN_PASSWORD"]),
        train=mlflow_auth.Login(args.train_user, os.environ["FOREST_MLFLOW_TRAIN_PASSWORD"]),
        inference=mlflow_auth.Login(
            args.inference_user, os.environ["FOREST_MLFLOW_INFERENCE_PASSWORD"]
        ),
        model_name=os.environ["FOREST_MODEL_NAME"],
    )
    logger.info("mlflow-auth: wrote %s", args.config_out)
    return 0
